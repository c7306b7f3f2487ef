"""The demo's outcome: each replayed week, each retraining, each incident, and the
summary lines that ``ctloop demo`` prints and the report and docs quote.

>>> week = WeekResult(9, "2013-03-05", 1200, 0.70, 0.74, [1], 0)
>>> DemoSummary([week], 0, 0, [], [], Path(), 1.0).margin()
0.04
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.demo._outcomes import INGEST_TRIGGER

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace

__all__ = ["INGEST_TRIGGER", "RETRAIN_TRIGGER", "DemoSummary", "WeekResult", "summarise"]

RETRAIN_TRIGGER = "flights-retrain/decay"
"""The trigger whose firings are the loop's retrainings (the broken week's run is fired
by hand on ``flights-retrain/manual``)."""


@dataclass
class WeekResult:
    """One replayed week: the AUC of the static and of the served model, what happened.

    ``champion`` is the version that served the week's primary traffic, ``champion_auc``
    its AUC on the requests it answered, ``baseline`` the AUC the monitor holds it to (its
    registering run's evaluation) and ``degraded`` whether it really fell short of it on
    all of them by more than the allowed drop (``None``: no baseline, or too few rows;
    see :func:`ctloop.demo._outcomes.really_degraded`)."""

    week: int
    start: str
    requests: int
    static_auc: float
    served_auc: float
    served_versions: list[int]
    errors: int
    events: list[str] = field(default_factory=list)
    champion: int = 0
    champion_auc: float | None = None
    baseline: float | None = None
    degraded: bool | None = None


@dataclass
class DemoSummary:
    """The outcome: per-week results, retrains, promotions, alert records, firings (each
    with its ``outcome``: released, rejected, failed), deployment changes (canaries
    started, promoted, rolled back), incidents, the report's path."""

    weeks: list[WeekResult]
    retrains: int
    promotions: int
    alerts: list[dict[str, Any]]
    firings: list[dict[str, Any]]
    report: Path
    seconds: float
    deployments: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)

    def count(self, action: str) -> int:
        """How many deployment changes were ``action`` (``canary``, ``promote``, …)."""
        return sum(1 for d in self.deployments if d["action"] == action)

    def mean_auc(self, which: str) -> float:
        """Mean weekly AUC of ``static`` or ``served``."""
        values = [getattr(w, f"{which}_auc") for w in self.weeks]
        return sum(values) / max(len(values), 1)

    def margin(self) -> float:
        """How much higher the loop's mean weekly AUC is than the static model's."""
        return round(self.mean_auc("served") - self.mean_auc("static"), 6)

    def retrain_outcomes(self) -> Counter[str]:
        """The retrainings by outcome: ``released``, ``rejected``, ``failed``, …"""
        return Counter(
            str(f.get("outcome") or f["status"])
            for f in self.firings
            if f["trigger"] == RETRAIN_TRIGGER
        )

    def incidents_by_cause(self) -> Counter[str]:
        """Incidents opened, by kind of cause (``degraded``, ``drift``, ``attribution``)."""
        return Counter(str(i["kind"]) for i in self.incidents)

    def degraded_weeks(self) -> list[int]:
        """The weeks whose champion really fell short of its baseline."""
        return [w.week for w in self.weeks if w.degraded]

    def lines(self) -> list[str]:
        """The summary as ``ctloop demo`` prints it, one fact a line."""
        outcomes = self.retrain_outcomes()
        causes = self.incidents_by_cause()
        by_cause = ", ".join(f"{kind} {n}" for kind, n in sorted(causes.items())) or "none"
        degraded = self.degraded_weeks()
        return [
            f"mean weekly AUC over {len(self.weeks)} weeks: static {self.mean_auc('static'):.4f}, "
            f"the loop {self.mean_auc('served'):.4f} (margin {self.margin():+.4f})",
            f"retraining: {self.retrains} fired; {outcomes['released']} released as canaries "
            f"({self.promotions} promoted, {self.count('auto-rollback')} rolled back), "
            f"{outcomes['rejected']} rejected by the gate, {outcomes['failed']} failed",
            f"incidents opened: {len(self.incidents)} ({by_cause}); the served model really "
            f"degraded in {len(degraded)} week(s)"
            + (f" ({', '.join(map(str, degraded))})" if degraded else "")
            + f"; {len(self.alerts)} alert records",
            self.data_line(),
        ]

    def data_line(self) -> str:
        """What each retraining trained on: ``data: 45 weeks ingested as 37 versions of
        flights; retrainings trained on flights@12: 2013-05-07 … (56 spans), …``."""
        ingested = sum(1 for f in self.firings if f["trigger"] == INGEST_TRIGGER)
        used = [
            f"{f['data']} ({f.get('outcome') or f['status']})"
            for f in self.firings
            if f["trigger"] == RETRAIN_TRIGGER and f.get("data")
        ]
        return f"data: {ingested} new-data run(s) on source flights; retrainings trained on " + (
            "; ".join(used) or "nothing yet"
        )


def summarise(
    workspace: Workspace, results: list[WeekResult], seconds: float, model: str = "flights"
) -> DemoSummary:
    """The summary of a replay from what ``workspace`` recorded: firings (with their
    outcomes), deployment changes, incidents and alert records of ``model``."""
    from ctloop.demo._outcomes import cause_kind, retrain_outcome, training_data
    from ctloop.monitor._incidents import list_incidents

    alerts = [
        {"created_at": a.created_at.isoformat(), "severity": a.severity, "cause": a.cause}
        for a in workspace.alerts.list()
    ]
    firings = []
    for f in workspace.triggers.list_firings():
        outcome = retrain_outcome(workspace, f.id)
        firings.append(
            {
                "trigger": f.trigger,
                "kind": f.kind,
                "status": f.status,
                "run_id": f.run_id,
                "reason": f.reason,
                "outcome": outcome.kind,
                "outcome_text": outcome.text,
                "data": training_data(workspace, f.run_id),
            }
        )
    retrains = sum(1 for f in firings if f["trigger"] == RETRAIN_TRIGGER)
    deployments = [
        {
            "created_at": d.created_at.isoformat(),
            "action": d.action,
            "by": d.created_by,
            "reason": d.reason,
        }
        for d in workspace.deployments.history(model)
    ]
    promotions = sum(1 for d in deployments if d["action"] == "promote")
    incidents = [
        {
            "kind": cause_kind(i.key),
            "cause": i.cause,
            "status": i.status,
            "windows": i.count,
            "worst": i.worst,
        }
        for i in list_incidents(workspace, model)
    ]
    return DemoSummary(
        results, retrains, promotions, alerts, firings, Path(), seconds, deployments, incidents
    )
