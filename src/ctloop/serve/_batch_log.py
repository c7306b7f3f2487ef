"""Batching in the background: the engine behind the prediction and feedback loggers.

:meth:`BatchLogger.append` never blocks the caller beyond a short lock: it adds an item
to a bounded in-memory queue (or drops it, counted, when the queue is full: that is
back-pressure). A daemon thread takes the queued items when ``flush_rows`` rows wait or
``flush_seconds`` have passed, and hands them to :meth:`BatchLogger.write`.

No row that was queued is lost silently. A failing write is retried a few times; then
the batch is split in halves (and an item into its rows, where the subclass can) and
each part written on its own, so that one row the store cannot take never takes the
valid rows with it. The rows no part could write go to :meth:`BatchLogger.dead_letter`
(a file in the artifact store); only when that fails too are they dropped, counted and
logged as an error. Errors never reach the caller: failed write attempts are counted in
:attr:`errors`, the latest kept in :attr:`last_error`; :meth:`counts` tells, per outcome,
how many rows went where.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Self, TypedDict

__all__ = ["OUTCOMES", "BatchLogger", "BatchOptions"]

_log = logging.getLogger("ctloop.serve.batch_log")

OUTCOMES = ("accepted", "written", "rejected", "dead_letter", "dropped")
"""What becomes of a logged row, as :meth:`BatchLogger.counts` counts it: ``accepted``
(queued), ``written`` (stored), ``rejected`` (refused before it was queued, see
:meth:`BatchLogger.reject`), ``dead_letter`` (kept in a dead-letter file because the
store would not take it) and ``dropped`` (a full queue, a closed logger, or neither the
store nor the dead-letter file would take it)."""

Queued = tuple[Any, int]
"""A queued item and its number of rows."""


class BatchOptions(TypedDict, total=False):
    """When a :class:`BatchLogger` writes, how much it queues and how it retries; the
    keyword arguments of every logger built on it."""

    flush_rows: int
    flush_seconds: float
    max_queue_rows: int
    max_attempts: int
    retry_seconds: float


class BatchLogger(ABC):
    """Queue items of ``rows`` rows each; write them in batches from a daemon thread.

    Subclasses implement :meth:`write` (store one batch of items) and, to keep the rows
    a store refuses, :meth:`dead_letter`; :meth:`partition` and :meth:`split_rows` say
    how a batch may be divided.

    >>> class Printer(BatchLogger):
    ...     def write(self, items): print(len(items))
    >>> p = Printer(flush_rows=2)
    >>> p.append("a", rows=1), p.close()
    1
    (True, True)
    >>> p.counts()["written"]
    1
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
        self._counts = dict.fromkeys(OUTCOMES, 0)
        self._errors = 0
        self.last_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=thread_name, daemon=True)
        self._thread.start()

    # -- counters ---------------------------------------------------------------------
    @property
    def logged_rows(self) -> int:
        """Rows written to the store so far."""
        return self._counts["written"]

    @property
    def dropped(self) -> int:
        """Rows given up: refused by a full queue or a closed logger, or that neither
        the store nor the dead-letter file would take."""
        return self._counts["dropped"]

    @property
    def dead_lettered(self) -> int:
        """Rows the store would not take, kept in a dead-letter file instead."""
        return self._counts["dead_letter"]

    @property
    def errors(self) -> int:
        """Failed write attempts (each retry, and each part of a split batch, counts)."""
        return self._errors

    @property
    def pending_rows(self) -> int:
        """Rows queued or being written."""
        return self._queued_rows + self._writing_rows

    def counts(self) -> dict[str, int]:
        """Rows by outcome (the keys of :data:`OUTCOMES`, in that order)."""
        with self._condition:
            return dict(self._counts)

    def reject(self, rows: int) -> None:
        """Count ``rows`` that the caller refused before queueing them (a client's
        mistake answered with an error)."""
        self._count("rejected", rows)

    def _count(self, outcome: str, rows: int) -> None:
        with self._condition:
            self._counts[outcome] += rows

    # -- the caller's side ------------------------------------------------------------
    def append(self, item: Any, *, rows: int) -> bool:
        """Queue ``item`` (of ``rows`` rows); ``False`` (and counted) when it was dropped."""
        with self._condition:
            if self._closing or self._queued_rows + self._writing_rows + rows > self.max_queue_rows:
                self._counts["dropped"] += rows
                return False
            self._items.append((item, rows))
            self._queued_rows += rows
            self._counts["accepted"] += rows
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
        """Write everything queued, then stop the thread; later appends are dropped.

        ``False`` if ``timeout`` ran out first: what was still queued then goes to the
        dead-letter file, and the rows being written are reported as an error."""
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            return True
        with self._condition:
            queued, self._items = self._items, []
            self._queued_rows = 0
            writing = self._writing_rows
        _log.error(
            "the log writer did not finish within %s s; %d rows were still being written "
            "and may be lost if the process exits now",
            timeout,
            writing,
        )
        self._bury(queued, TimeoutError(f"the log writer did not finish within {timeout} s"))
        return False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what subclasses provide ------------------------------------------------------
    @abstractmethod
    def write(self, items: Sequence[Any]) -> None:
        """Store one batch of queued items (raise on failure: the batch is retried, then
        split). One call stores all of them or none, so that a retry writes no row twice."""

    def partition(self, batch: Sequence[Queued]) -> list[list[Queued]]:
        """The batch as groups to write apart (e.g. one per model version, or per label
        type); each group is one :meth:`write`. By default, the whole batch."""
        return [list(batch)]

    def split_rows(self, item: Any) -> list[Queued]:
        """``item`` as one item per row, to write apart when the item as a whole cannot
        be written; an empty list (the default) when it cannot be split."""
        return []

    def dead_letter(self, items: Sequence[Any], error: BaseException | None) -> str:
        """Keep the rows of ``items``, which the store would not take (the last failure
        was ``error``), where an operator can find them; returns where. By default there
        is no such place, and the rows are dropped (counted and logged)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no dead-letter file")

    # -- the thread's side ------------------------------------------------------------
    def _run(self) -> None:
        while True:
            batch, closing = self._next_batch()
            if batch:
                self._write_batch(batch)
            if closing and not batch:
                return

    def _next_batch(self) -> tuple[list[Queued], bool]:
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

    def _write_batch(self, batch: list[Queued]) -> None:
        try:
            try:
                groups = self.partition(batch)
            except Exception:  # a subclass's bug must not lose the batch
                _log.exception("could not divide a batch of logged rows; writing it whole")
                groups = [batch]
            for group in groups:
                if self._attempt(group, self.max_attempts):
                    continue
                self._bury(self._salvage(group), self.last_error)
        finally:
            with self._condition:
                self._writing_rows = 0
                self._condition.notify_all()

    def _attempt(self, group: list[Queued], attempts: int) -> bool:
        """Write ``group`` (up to ``attempts`` times); counts it when written."""
        rows = _rows(group)
        for attempt in range(1, attempts + 1):
            try:
                self.write([item for item, _ in group])
            except Exception as exc:  # the caller must never see a store failure
                self._errors += 1
                self.last_error = exc
                if attempts > 1:
                    _log.warning(
                        "writing a batch of %d logged rows failed (attempt %d of %d): %s",
                        rows,
                        attempt,
                        attempts,
                        exc,
                    )
                if attempt < attempts and not self._closing:
                    time.sleep(self.retry_seconds * 2 ** (attempt - 1))
                continue
            self._count("written", rows)
            return True
        return False

    def _salvage(self, group: list[Queued]) -> list[Queued]:
        """Write what can be written of ``group``, which failed as a whole: its halves
        apart, down to single rows; returns the parts that could not be written."""
        if len(group) == 1:
            item, rows = group[0]
            parts = self.split_rows(item) if rows > 1 else []
            return self._salvage(parts) if len(parts) > 1 else group
        middle = len(group) // 2
        failed: list[Queued] = []
        for half in (group[:middle], group[middle:]):
            if not self._attempt(half, 1):
                failed += self._salvage(half)
        return failed

    def _bury(self, failed: list[Queued], error: BaseException | None) -> None:
        """Keep the rows of ``failed`` in the dead-letter file, or count them dropped."""
        rows = _rows(failed)
        if not rows:
            return
        try:
            where = self.dead_letter([item for item, _ in failed], error)
        except Exception as exc:  # the last resort failed: say so loudly
            self._count("dropped", rows)
            _log.error(
                "%d logged rows could not be written (%s) nor kept in a dead-letter file "
                "(%s); they are lost",
                rows,
                error,
                exc,
            )
            return
        self._count("dead_letter", rows)
        _log.error(
            "%d logged rows could not be written (%s); they are kept in %s", rows, error, where
        )


def _rows(group: Sequence[Queued]) -> int:
    return sum(rows for _, rows in group)
