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
from dataclasses import dataclass, field, replace

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


class InferenceStatistics:
    """Thread-safe counters by model version (requests are answered on the event loop,
    models run in worker threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[int, VersionStatistics] = {}

    def answered(self, version: int, *, rows: int, ns: int, now: float | None = None) -> None:
        """Count a request of ``rows`` rows that ``version`` answered in ``ns``."""
        with self._lock:
            s = self._versions.get(version, VersionStatistics())
            self._versions[version] = replace(
                s,
                inference_count=s.inference_count + rows,
                last_inference_ms=_ms(now),
                success=s.success.add(ns),
            )

    def failed(self, version: int, *, ns: int, now: float | None = None) -> None:
        """Count a request for ``version`` that failed (bad input or the model raised)."""
        with self._lock:
            s = self._versions.get(version, VersionStatistics())
            self._versions[version] = replace(s, last_inference_ms=_ms(now), fail=s.fail.add(ns))

    def executed(self, version: int, *, ns: int) -> None:
        """Count one call of ``version``'s model that took ``ns``."""
        with self._lock:
            s = self._versions.get(version, VersionStatistics())
            self._versions[version] = replace(
                s,
                execution_count=s.execution_count + 1,
                compute_infer=s.compute_infer.add(ns),
            )

    def snapshot(self) -> dict[int, VersionStatistics]:
        """The statistics of every version counted so far."""
        with self._lock:
            return dict(self._versions)


def _ms(now: float | None) -> int:
    return round((time.time() if now is None else now) * 1000)
