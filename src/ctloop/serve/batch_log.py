"""Batching in the background: the engine behind the prediction and feedback loggers.

:meth:`BatchLogger.append` never blocks the caller beyond a short lock: it adds an item
to a bounded in-memory queue (or drops it, counted, when the queue is full). A daemon
thread takes the queued items when ``flush_rows`` rows wait or ``flush_seconds`` have
passed, and hands them to :meth:`BatchLogger.write`; a failing write is retried a few
times, then its rows are dropped and counted. Errors never reach the caller: they are
counted in :attr:`errors`, the latest kept in :attr:`last_error`.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Self

__all__ = ["BatchLogger"]

_log = logging.getLogger(__name__)


class BatchLogger(ABC):
    """Queue items of ``rows`` rows each; write them in batches from a daemon thread.

    Subclasses implement :meth:`write` (store one batch of items).

    >>> class Printer(BatchLogger):
    ...     def write(self, items): print(len(items))
    >>> p = Printer(flush_rows=2)
    >>> p.append("a", rows=1), p.close()
    1
    (True, True)
    """

    def __init__(
        self,
        *,
        flush_rows: int = 1000,
        flush_seconds: float = 5.0,
        max_queue_rows: int = 100_000,
        max_attempts: int = 3,
        retry_seconds: float = 0.5,
        thread_name: str = "ctloop-batch-log",
    ) -> None:
        if flush_rows < 1 or flush_seconds <= 0 or max_queue_rows < 1 or max_attempts < 1:
            raise ValueError(
                f"flush_rows={flush_rows}, flush_seconds={flush_seconds}, max_queue_rows="
                f"{max_queue_rows} and max_attempts={max_attempts} must all be positive"
            )
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_queue_rows = max_queue_rows
        self.max_attempts = max_attempts
        self.retry_seconds = retry_seconds
        self._items: list[tuple[Any, int]] = []
        self._queued_rows = 0
        self._writing_rows = 0
        self._condition = threading.Condition()
        self._closing = False
        self._flush_requested = False
        self._logged_rows = 0
        self._dropped = 0
        self._errors = 0
        self.last_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._thread.start()

    # -- counters ---------------------------------------------------------------------
    @property
    def logged_rows(self) -> int:
        """Rows written to the store so far."""
        return self._logged_rows

    @property
    def dropped(self) -> int:
        """Rows given up: refused by a full queue, or in a batch whose writes all failed."""
        return self._dropped

    @property
    def errors(self) -> int:
        """Failed write attempts (each retry counts)."""
        return self._errors

    @property
    def pending_rows(self) -> int:
        """Rows queued or being written."""
        return self._queued_rows + self._writing_rows

    # -- the caller's side ------------------------------------------------------------
    def append(self, item: Any, *, rows: int) -> bool:
        """Queue ``item`` (of ``rows`` rows); ``False`` (and counted) when it was dropped."""
        with self._condition:
            if self._closing or self._queued_rows + self._writing_rows + rows > self.max_queue_rows:
                self._dropped += rows
                return False
            self._items.append((item, rows))
            self._queued_rows += rows
            if self._queued_rows >= self.flush_rows:
                self._condition.notify_all()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Write what is queued now and wait for it; ``False`` if ``timeout`` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            self._flush_requested = True
            self._condition.notify_all()
            while self._queued_rows or self._writing_rows:
                left = None if deadline is None else deadline - time.monotonic()
                if (left is not None and left <= 0) or not self._thread.is_alive():
                    return False
                self._condition.wait(left)
        return True

    def close(self, timeout: float | None = 30.0) -> bool:
        """Write everything queued, then stop the thread; ``False`` if ``timeout`` ran
        out first (the rest stays unwritten). Later appends are dropped."""
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the thread's side ------------------------------------------------------------
    @abstractmethod
    def write(self, items: Sequence[Any]) -> None:
        """Store one batch of queued items (raise on failure: the batch is retried)."""

    def _run(self) -> None:
        while True:
            batch, closing = self._next_batch()
            if batch:
                self._write_with_retries(batch)
            if closing and not batch:
                return

    def _next_batch(self) -> tuple[list[tuple[Any, int]], bool]:
        deadline = time.monotonic() + self.flush_seconds
        with self._condition:
            while not self._ready_to_write():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._condition.wait(left)
            batch, self._items = self._items, []
            self._writing_rows, self._queued_rows = self._queued_rows, 0
            self._flush_requested = False
            return batch, self._closing

    def _ready_to_write(self) -> bool:
        return self._closing or self._flush_requested or self._queued_rows >= self.flush_rows

    def _write_with_retries(self, batch: list[tuple[Any, int]]) -> None:
        rows = sum(r for _, r in batch)
        for attempt in range(1, self.max_attempts + 1):
            try:
                self.write([item for item, _ in batch])
            except Exception as exc:  # the caller must never see a store failure
                self._errors += 1
                self.last_error = exc
                _log.warning("writing a batch of %d logged rows failed: %s", rows, exc)
                if attempt < self.max_attempts and not self._closing:
                    time.sleep(self.retry_seconds * 2 ** (attempt - 1))
                continue
            self._finish(rows, written=True)
            return
        self._finish(rows, written=False)

    def _finish(self, rows: int, *, written: bool) -> None:
        with self._condition:
            if written:
                self._logged_rows += rows
            else:
                self._dropped += rows
            self._writing_rows = 0
            self._condition.notify_all()
