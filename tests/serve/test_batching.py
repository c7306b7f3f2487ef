"""The micro-batcher: concurrent calls share model calls; results go back to their
callers; a failing model fails only the batch it was called for."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pytest

from ctloop.serve._batching import MicroBatcher

T = TypeVar("T")


class Recorder:
    """A model that doubles ``x`` and remembers the size of each call."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        self.calls.append(len(frame))
        return frame["x"].to_numpy() * 2


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def test_concurrent_calls_are_joined_and_split_back() -> None:
    model = Recorder()
    batches: list[int] = []

    async def go() -> list[list[float]]:
        batcher = MicroBatcher(max_batch_size=8, max_wait_ms=50, on_batch=batches.append)
        frames = [pd.DataFrame({"x": [float(i)] * (1 + i % 2)}) for i in range(12)]
        out = await asyncio.gather(*(batcher.predict(model.predict_frame, f) for f in frames))
        await batcher.close()
        return [o.tolist() for o in out]

    results = run(go())
    assert results == [[2.0 * i] * (1 + i % 2) for i in range(12)]
    assert sum(model.calls) == 18 and len(model.calls) < 12
    assert max(model.calls) <= 8 + 1  # a batch stops growing once it reaches the limit
    assert batches == model.calls


def test_a_lone_request_is_not_delayed_for_company() -> None:
    model = Recorder()

    async def go() -> list[float]:
        batcher = MicroBatcher(max_batch_size=32, max_wait_ms=3_600_000)
        call = batcher.predict(model.predict_frame, pd.DataFrame({"x": [1.0]}))
        # with nobody else waiting, the hour-long wait does not apply (else: TimeoutError)
        out = await asyncio.wait_for(call, 60)
        await batcher.close()
        return list(out.tolist())

    assert run(go()) == [2.0] and model.calls == [1]


class Slow(Recorder):
    """A model whose every call takes ``seconds`` in its worker thread."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        time.sleep(self.seconds)
        return super().predict_frame(frame)


def test_lone_requests_one_after_another_never_wait_for_the_batch_window() -> None:
    model = Slow(0.0)
    latencies: list[float] = []

    async def go() -> None:  # off the event loop (inline off): the queue and its window
        batcher = MicroBatcher(max_batch_size=32, max_wait_ms=500, inline_below_ms=0)
        for i in range(20):
            start = time.perf_counter()
            await batcher.predict(model.predict_frame, pd.DataFrame({"x": [float(i)]}))
            latencies.append(time.perf_counter() - start)
        await batcher.close()

    run(go())
    assert model.calls == [1] * 20
    assert sorted(latencies)[10] < 0.1, latencies  # the median: far below the 0.5 s window


def test_a_request_after_a_batch_waits_neither_for_the_answered_ones_nor_the_window() -> None:
    model = Slow(0.1)
    times: dict[str, float] = {}

    async def go() -> None:
        batcher = MicroBatcher(max_batch_size=32, max_wait_ms=2_000, inline_below_ms=0)
        start = time.perf_counter()
        first = [
            batcher.predict(model.predict_frame, pd.DataFrame({"x": [float(i)]})) for i in range(4)
        ]
        batch = asyncio.gather(*first)
        await asyncio.sleep(0.03)  # the four are being predicted: the next one queues
        await asyncio.gather(
            batch, batcher.predict(model.predict_frame, pd.DataFrame({"x": [9.0]}))
        )
        times["both"] = time.perf_counter() - start
        await batcher.close()

    run(go())
    assert model.calls == [4, 1]  # under concurrency the batch formed
    # two calls of 0.1 s one after the other; waiting out the 2 s window would show
    assert times["both"] < 1.0, times


def test_versions_are_never_mixed_in_one_call() -> None:
    first, second = Recorder(), Recorder()

    async def go() -> list[float]:
        batcher = MicroBatcher(max_batch_size=64, max_wait_ms=50)
        calls = [
            batcher.predict((first if i % 2 else second).predict_frame, pd.DataFrame({"x": [i]}))
            for i in range(10)
        ]
        out = await asyncio.gather(*calls)
        await batcher.close()
        return [float(o[0]) for o in out]

    assert run(go()) == [2.0 * i for i in range(10)]
    assert sum(first.calls) == sum(second.calls) == 5


def test_a_failing_model_fails_its_callers_and_the_batcher_goes_on() -> None:
    good = Recorder()

    def broken(frame: pd.DataFrame) -> np.ndarray:
        raise ValueError("boom")

    async def go() -> tuple[list[object], list[float]]:
        batcher = MicroBatcher(max_batch_size=8, max_wait_ms=20)
        failed = await asyncio.gather(
            *(batcher.predict(broken, pd.DataFrame({"x": [1]})) for _ in range(3)),
            return_exceptions=True,
        )
        later = await batcher.predict(good.predict_frame, pd.DataFrame({"x": [4.0]}))
        await batcher.close()
        return list(failed), list(later.tolist())

    failed, later = run(go())
    assert all(isinstance(f, ValueError) for f in failed) and later == [8.0]


def test_large_requests_skip_the_queue() -> None:
    model = Recorder()

    async def go() -> None:
        batcher = MicroBatcher(max_batch_size=4, max_wait_ms=5)
        out = await batcher.predict(model.predict_frame, pd.DataFrame({"x": [1.0] * 10}))
        assert out.tolist() == [2.0] * 10
        await batcher.close()

    run(go())
    assert model.calls == [10]


def test_categories_survive_concatenation() -> None:
    dtype = pd.CategoricalDtype(["a", "b"])
    seen: list[pd.DataFrame] = []

    def codes(frame: pd.DataFrame) -> np.ndarray:
        seen.append(frame)
        return frame["c"].cat.codes.to_numpy()

    async def go() -> list[list[int]]:
        batcher = MicroBatcher(max_batch_size=8, max_wait_ms=50)
        frames = [pd.DataFrame({"c": pd.Series([v], dtype=dtype)}) for v in "abba"]
        out = await asyncio.gather(*(batcher.predict(codes, f) for f in frames))
        await batcher.close()
        return [o.tolist() for o in out]

    assert run(go()) == [[0], [1], [1], [0]]
    assert all(f["c"].dtype == dtype for f in seen)


@pytest.mark.parametrize("size", [0, -3])
def test_batch_size_is_at_least_one(size: int) -> None:
    assert MicroBatcher(max_batch_size=size).max_batch_size == 1


class ThreadRecorder(Recorder):
    """A :class:`Recorder` that also remembers the thread of each call."""

    def __init__(self, pause: float = 0.0) -> None:
        super().__init__()
        self.threads: list[str] = []
        self.pause = pause

    def predict_frame(self, frame: pd.DataFrame) -> np.ndarray:
        import threading
        import time

        self.threads.append(threading.current_thread().name)
        time.sleep(self.pause)
        return super().predict_frame(frame)


def test_a_lone_quick_call_is_predicted_on_the_event_loop() -> None:
    import threading

    model = ThreadRecorder()

    async def go() -> list[list[float]]:
        batcher = MicroBatcher(max_batch_size=8, max_wait_ms=50, inline_below_ms=1_000)
        out = [await batcher.predict(model.predict_frame, pd.DataFrame({"x": [i]})) for i in (1, 2)]
        await batcher.close()
        return [o.tolist() for o in out]

    assert run(go()) == [[2], [4]]
    # the first call's time is unknown: a worker thread; the second is known to be quick
    loop_thread = threading.current_thread().name
    assert model.threads[0] != loop_thread and model.threads[1] == loop_thread


def test_concurrent_calls_are_batched_even_when_inline_calls_are_allowed() -> None:
    model = ThreadRecorder()

    async def go() -> None:
        batcher = MicroBatcher(max_batch_size=16, max_wait_ms=50, inline_below_ms=1_000)
        await batcher.predict(model.predict_frame, pd.DataFrame({"x": [0]}))  # now quick
        frames = [pd.DataFrame({"x": [i]}) for i in range(8)]
        out = await asyncio.gather(*(batcher.predict(model.predict_frame, f) for f in frames))
        assert [o.tolist() for o in out] == [[2 * i] for i in range(8)]
        await batcher.close()

    run(go())
    assert model.calls[0] == 1 and sum(model.calls[1:]) == 8 and len(model.calls) < 5


def test_a_slow_model_stays_off_the_event_loop() -> None:
    import threading

    model = ThreadRecorder(pause=0.03)

    async def go() -> None:
        batcher = MicroBatcher(max_batch_size=8, max_wait_ms=5, inline_below_ms=20)
        for i in range(3):
            await batcher.predict(model.predict_frame, pd.DataFrame({"x": [i]}))
        await batcher.close()

    run(go())
    assert threading.current_thread().name not in model.threads


def test_a_failing_inline_call_fails_alone() -> None:
    calls = {"n": 0}

    def flaky(frame: pd.DataFrame) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ValueError("boom")
        return frame["x"].to_numpy()

    async def go() -> list[object]:
        batcher = MicroBatcher(max_batch_size=8, max_wait_ms=5, inline_below_ms=1_000)
        out: list[object] = []
        for i in range(3):
            try:
                out.append((await batcher.predict(flaky, pd.DataFrame({"x": [i]}))).tolist())
            except ValueError as exc:
                out.append(str(exc))
        await batcher.close()
        return out

    assert run(go()) == [[0], "boom", [2]]
