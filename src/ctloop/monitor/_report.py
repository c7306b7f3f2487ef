"""``MonitorReport``: what one monitoring window showed, stored as a ``MonitorReport`` artifact.

>>> r = MonitorReport(model="flights", version=3, model_artifact_id="a1", verdict="no-data",
...                   window={"spec": "1d", "start": None, "end": "2026-01-02T00:00:00+00:00",
...                           "rows": 0})
>>> MonitorReport.from_dict(r.to_dict()) == r
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctloop.data import DriftReport

FORMAT_VERSION = 1
VERDICTS = ("ok", "drift", "degraded", "no-data")


@dataclass(frozen=True)
class MonitorReport:
    """One window of one model version: verdict, reasons and the numbers behind them.

    ``skew`` compares the window with the training statistics, ``drift`` with the
    previous window (both ``DriftReport.to_dict()`` forms, or None when not computed);
    ``performance`` and ``attribution`` are the dicts of ``ctloop.monitor._checks``;
    ``statistics`` holds the window's and the training data's statistics (dict forms)
    for the HTML report.
    """

    __ctloop_artifact__ = "MonitorReport"  # artifact type, see ctloop.artifacts.records

    model: str
    version: int
    model_artifact_id: str
    verdict: str
    window: dict[str, Any]
    previous_window: dict[str, Any] | None = None
    reasons: tuple[str, ...] = ()
    skew: dict[str, Any] | None = None
    drift: dict[str, Any] | None = None
    performance: dict[str, Any] | None = None
    attribution: dict[str, Any] | None = None
    statistics: dict[str, Any] = field(default_factory=dict)

    @property
    def drifted_features(self) -> tuple[str, ...]:
        """Features that drifted against the training data or the previous window (of
        a comparison whose drift counts: not of features the model barely uses)."""
        found: dict[str, None] = {}
        for part in (self.skew, self.drift):
            if part is not None and not part.get("counts", True):
                continue
            for column in (part or {}).get("columns", ()):
                if column["drifted"]:
                    found[column["column"]] = None
        return tuple(found)

    def skew_report(self) -> DriftReport | None:
        """``skew`` as a ``DriftReport``."""
        return _drift_report(self.skew)

    def drift_report(self) -> DriftReport | None:
        """``drift`` as a ``DriftReport``."""
        return _drift_report(self.drift)

    def summary(self) -> dict[str, Any]:
        """The short JSON form: verdict, reasons, window, drifted features, metric."""
        perf = self.performance or {}
        return {
            "model": self.model,
            "version": self.version,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "window": dict(self.window),
            "drifted_features": list(self.drifted_features),
            "metric": perf.get("metric"),
            "metric_value": perf.get("value"),
            "metric_baseline": perf.get("baseline"),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``from_dict`` reads it back."""
        data = {k: v for k, v in self.__dict__.items()}
        data["reasons"] = list(self.reasons)
        return {"format_version": FORMAT_VERSION, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MonitorReport:
        """Read what ``to_dict`` wrote."""
        values = {k: v for k, v in data.items() if k != "format_version"}
        values["reasons"] = tuple(values.get("reasons", ()))
        return cls(**values)


def _drift_report(data: dict[str, Any] | None) -> DriftReport | None:
    from ctloop.data import DriftReport

    if data is None:
        return None
    # the monitor adds each column's importance share; the drift report does not keep it
    columns = [{k: v for k, v in c.items() if k != "importance"} for c in data["columns"]]
    return DriftReport.from_dict({**data, "columns": columns})
