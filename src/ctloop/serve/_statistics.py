"""Per-version inference statistics of one prediction server, as the Open Inference
Protocol's statistics extension (Triton's ``/v2/models/{name}/stats``) reports them.

The prediction core counts each request it answers (``success``) or rejects (``fail``)
with the time it took, the rows it predicted (``inference_count``) and each call of the
model (``execution_count``, fewer than requests when micro-batching joins them) with the
time spent in it (``compute_infer``). Requests mirrored to a shadow version are not
counted: the statistics describe what clients were answered.

>>> stats = InferenceStatistics()
>>> stats.executed(3, ns=400)
>>> stats.answered(3, rows=2, ns=1000, now=1.5)
>>> s = stats.snapshot()[3]
>>> (s.inference_count, s.execution_count, s.success.count, s.last_inference_ms)
(2, 1, 1, 1500)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

__all__ = ["Duration", "InferenceStatistics", "VersionStatistics"]


@dataclass(frozen=True)
class Duration:
    """How many events of one kind happened and their total time in nanoseconds."""

    count: int = 0
    ns: int = 0

    def add(self, ns: int) -> Duration:
        """This duration with one more event of ``ns`` nanoseconds."""
        return Duration(self.count + 1, self.ns + max(0, ns))


@dataclass(frozen=True)
class VersionStatistics:
    """What one model version did since the server started."""

    inference_count: int = 0
    execution_count: int = 0
    last_inference_ms: int = 0
    success: Duration = field(default_factory=Duration)
    fail: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)


class _Counts:
    """One version's counters, updated in place under the statistics' lock (a request
    changes a few integers instead of building new frozen records)."""

    __slots__ = (
        "compute_count",
        "compute_ns",
        "executions",
        "fail_count",
        "fail_ns",
        "inferences",
        "last_ms",
        "success_count",
        "success_ns",
    )

    def __init__(self) -> None:
        self.inferences = self.executions = self.last_ms = 0
        self.success_count = self.success_ns = self.fail_count = self.fail_ns = 0
        self.compute_count = self.compute_ns = 0

    def frozen(self) -> VersionStatistics:
        return VersionStatistics(
            inference_count=self.inferences,
            execution_count=self.executions,
            last_inference_ms=self.last_ms,
            success=Duration(self.success_count, self.success_ns),
            fail=Duration(self.fail_count, self.fail_ns),
            compute_infer=Duration(self.compute_count, self.compute_ns),
        )


class InferenceStatistics:
    """Thread-safe counters by model version (requests are answered on the event loop,
    models run in worker threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[int, _Counts] = {}

    def _counts(self, version: int) -> _Counts:
        counts = self._versions.get(version)
        if counts is None:
            counts = self._versions[version] = _Counts()
        return counts

    def answered(self, version: int, *, rows: int, ns: int, now: float | None = None) -> None:
        """Count a request of ``rows`` rows that ``version`` answered in ``ns``."""
        with self._lock:
            c = self._counts(version)
            c.inferences += rows
            c.last_ms = _ms(now)
            c.success_count += 1
            c.success_ns += max(0, ns)

    def failed(self, version: int, *, ns: int, now: float | None = None) -> None:
        """Count a request for ``version`` that failed (bad input or the model raised)."""
        with self._lock:
            c = self._counts(version)
            c.last_ms = _ms(now)
            c.fail_count += 1
            c.fail_ns += max(0, ns)

    def executed(self, version: int, *, ns: int) -> None:
        """Count one call of ``version``'s model that took ``ns``."""
        with self._lock:
            c = self._counts(version)
            c.executions += 1
            c.compute_count += 1
            c.compute_ns += max(0, ns)

    def snapshot(self) -> dict[int, VersionStatistics]:
        """The statistics of every version counted so far."""
        with self._lock:
            return {version: c.frozen() for version, c in self._versions.items()}


def _ms(now: float | None) -> int:
    return round((time.time() if now is None else now) * 1000)
