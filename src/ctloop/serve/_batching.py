"""Adaptive micro-batching: concurrent small requests predicted as one frame.

Each request is validated on its own first (a bad one fails alone); the batcher then
concatenates the prepared frames that arrive together, calls ``predict_frame`` once per
model version in a worker thread, and hands each request its own slice of the result.
It waits for more requests (up to ``max_wait_ms``) only while other requests are in
flight, so a lone request is never delayed; a lone request of a model whose calls are
quick (under ``inline_below_ms``) is predicted on the event loop itself, sparing the two
thread wake-ups of a worker-thread call (on a busy machine, each one waits for a core).

>>> import asyncio, numpy as np, pandas as pd
>>> async def demo():
...     batcher = MicroBatcher(max_batch_size=8, max_wait_ms=2)
...     double = lambda frame: frame["x"].to_numpy() * 2
...     out = await asyncio.gather(*(batcher.predict(double, pd.DataFrame({"x": [i]}))
...                                  for i in range(3)))
...     await batcher.close()
...     return [o.tolist() for o in out]
>>> asyncio.run(demo())
[[0], [2], [4]]
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "BatchFn",
    "MicroBatcher",
    "PredictFn",
    "frames_runner",
    "predict_in_thread",
    "split_rows",
]

PredictFn = Callable[["pd.DataFrame"], "np.ndarray"]
"""A model version's ``predict_frame``."""

BatchFn = Callable[[list[Any]], list[Any]]
"""Runs one batch in a worker thread: the payloads of its requests in, one result (or
exception, raised to that request alone) per payload out."""


async def predict_in_thread(
    predict: PredictFn, frame: pd.DataFrame, executor: Executor | None = None
) -> np.ndarray:
    """``predict(frame)`` in a worker thread, off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(executor, predict, frame)


@dataclass
class _Pending:
    key: Hashable
    run: BatchFn
    payload: Any
    rows: int
    future: asyncio.Future[Any] = field(repr=False)


class MicroBatcher:
    """Collects concurrent calls into batches of at most ``max_batch_size`` rows;
    ``on_batch(rows)`` is told the size of each batch.

    :meth:`predict` batches prepared frames for a ``predict_frame``; :meth:`submit`
    batches any payload for a :data:`BatchFn` (calls with the same ``key`` share one).

    A call that finds no other in flight, of at most ``max_batch_size`` rows, for a
    ``key`` whose calls have taken under ``inline_below_ms`` (a moving average; 0 turns
    this off), runs on the event loop at once: the loop would only wait for it, and
    answering it there spares the hand-over to a worker thread and back. Requests that
    arrive meanwhile wait at most one such call, then batch as usual.
    """

    def __init__(
        self,
        *,
        max_batch_size: int = 32,
        max_wait_ms: float = 2.0,
        executor: Executor | None = None,
        on_batch: Callable[[int], None] | None = None,
        inline_below_ms: float = 20.0,
    ) -> None:
        self.max_batch_size = max(1, max_batch_size)
        self.max_wait_s = max(0.0, max_wait_ms) / 1000
        self.executor = executor
        self.on_batch = on_batch
        self.inline_below_s = max(0.0, inline_below_ms) / 1000
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._in_flight = 0
        self._call_seconds: dict[Hashable, float] = {}
        """Moving average of each key's call time; a key not called yet is unknown."""

    async def predict(self, predict: PredictFn, frame: pd.DataFrame) -> np.ndarray:
        """The predictions for ``frame`` (already prepared), possibly batched."""
        key = ("frames", _owner(predict))
        result: np.ndarray = await self.submit(key, frames_runner(predict), frame, len(frame))
        return result

    async def submit(self, key: Hashable, run: BatchFn, payload: Any, rows: int) -> Any:
        """``run``'s result for ``payload`` (``rows`` rows), batched with other calls
        of the same ``key``."""
        if rows >= self.max_batch_size:
            self._report(rows)
            loop = asyncio.get_running_loop()
            (result,) = await loop.run_in_executor(self.executor, run, [payload])
            if isinstance(result, BaseException):
                raise result
            return result
        self._in_flight += 1
        try:
            if self._in_flight == 1 and self._quick(key):
                await asyncio.sleep(0)  # requests that came with this one reach the batcher
                if self._in_flight == 1:
                    return self._run_inline(key, run, payload, rows)
            queue = self._start()
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            queue.put_nowait(_Pending(key, run, payload, rows, future))
            return await future
        finally:
            self._in_flight -= 1

    def _quick(self, key: Hashable) -> bool:
        seconds = self._call_seconds.get(key)
        return seconds is not None and seconds < self.inline_below_s

    def _run_inline(self, key: Hashable, run: BatchFn, payload: Any, rows: int) -> Any:
        self._report(rows)
        start = time.perf_counter()
        try:
            (result,) = run([payload])
        finally:
            self._timed(key, start)
        if isinstance(result, BaseException):
            raise result
        return result

    def _timed(self, key: Hashable, start: float) -> None:
        seconds = time.perf_counter() - start
        known = self._call_seconds.get(key)
        self._call_seconds[key] = seconds if known is None else 0.8 * known + 0.2 * seconds

    def _start(self) -> asyncio.Queue[_Pending]:
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._run(self._queue))
        return self._queue

    async def _run(self, queue: asyncio.Queue[_Pending]) -> None:
        while True:
            batch = await self._collect(queue)
            groups: dict[Hashable, list[_Pending]] = {}
            for item in batch:
                groups.setdefault(item.key, []).append(item)
            await asyncio.gather(*(self._run_group(g) for g in groups.values()))

    async def _collect(self, queue: asyncio.Queue[_Pending]) -> list[_Pending]:
        batch = [await queue.get()]
        rows = batch[0].rows
        deadline = time.monotonic() + self.max_wait_s
        while rows < self.max_batch_size:
            if queue.empty():
                remaining = deadline - time.monotonic()
                if self._in_flight <= len(batch) or remaining <= 0:
                    break  # nobody else is waiting: do not delay this batch
                try:
                    item = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                item = queue.get_nowait()
            batch.append(item)
            rows += item.rows
        return batch

    async def _run_group(self, group: list[_Pending]) -> None:
        live = [p for p in group if not p.future.done()]
        if not live:
            return
        self._report(sum(p.rows for p in live))
        loop = asyncio.get_running_loop()
        payloads = [p.payload for p in live]
        start = time.perf_counter()
        try:
            results = await loop.run_in_executor(self.executor, live[0].run, payloads)
            self._timed(live[0].key, start)
        except Exception as exc:
            if len(live) == 1:
                results = [exc]
            else:  # one request's input may have failed the whole batch: judge each alone
                results = await loop.run_in_executor(
                    self.executor, _one_by_one, live[0].run, payloads
                )
        for item, result in zip(live, results, strict=True):
            if item.future.done():
                continue
            if isinstance(result, BaseException):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)

    def _report(self, rows: int) -> None:
        if self.on_batch is not None:
            self.on_batch(rows)

    async def close(self) -> None:
        """Stop the worker; pending requests get ``CancelledError``."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None


def frames_runner(predict: PredictFn) -> BatchFn:
    """A :data:`BatchFn` predicting prepared frames: one call of ``predict`` on their
    concatenation, split back per frame."""

    def run(frames: list[Any]) -> list[Any]:
        result = predict(_concat(frames))
        return split_rows(result, [len(f) for f in frames])

    return run


def _one_by_one(run: BatchFn, payloads: list[Any]) -> list[Any]:
    """Each payload run as a batch of its own: its result, or the exception it raised."""
    results: list[Any] = []
    for payload in payloads:
        try:
            results.append(run([payload])[0])
        except Exception as exc:  # handed to this request alone
            results.append(exc)
    return results


def split_rows(values: Any, sizes: list[int]) -> list[Any]:
    """``values`` cut into consecutive pieces of ``sizes`` rows."""
    pieces, start = [], 0
    for size in sizes:
        pieces.append(values[start : start + size])
        start += size
    return pieces


def _owner(predict: PredictFn) -> int:
    # bound methods are new objects on each access: group by the model they belong to
    return id(getattr(predict, "__self__", predict))


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if len(frames) == 1:
        return frames[0]
    import pandas as pd

    frame = pd.concat(frames, ignore_index=True)
    for name, dtype in frames[0].dtypes.items():
        # categories seen in training are the same in every frame; concat keeps them
        if isinstance(dtype, pd.CategoricalDtype) and frame[name].dtype != dtype:
            frame[name] = frame[name].astype("category")
    return frame
