"""What the demo's loop did, in the words a person acts on: how each retraining ended
(released, rejected by the gate, or failed at a step), the incidents the monitor opened
and resolved, and the weeks the served model really degraded.

A gate rejection is the loop working: the challenger was not better, so production keeps
its champion. Only a run that broke (a bad week of data, a crashed step) is a failure.

>>> gate_reasons("GateFailedError: model 'flights' was not registered: the candidate "
...              "model failed 1 gate check(s):\\n  - overall: auc may drop by 0.03: "
...              "0.61 vs champion 0.66: drop 0.05 > 0.03\\nimprove the model")
['overall: auc may drop by 0.03: 0.61 vs champion 0.66: drop 0.05 > 0.03']
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctloop.monitor._incidents import Incident
    from ctloop.store.workspace import Workspace

__all__ = [
    "INGEST_TRIGGER",
    "RetrainOutcome",
    "cause_kind",
    "gate_reasons",
    "incident_changes",
    "incidents_by_cause",
    "really_degraded",
    "retrain_outcome",
    "training_data",
]

INGEST_TRIGGER = "flights-ingest/new-data"
"""The ``new_spans`` trigger whose firings record each ingested week (its runs are not
retrainings)."""


@dataclass(frozen=True)
class RetrainOutcome:
    """How one retraining firing ended: ``kind`` is ``released`` (a challenger went out:
    a canary or a new champion), ``rejected`` (the gate kept the champion), ``failed``
    (the run broke) or ``running``; ``text`` says it in a line."""

    kind: str
    text: str


def retrain_outcome(workspace: Workspace, firing_id: int) -> RetrainOutcome:
    """The outcome of firing ``firing_id``, read from its run's steps and tags."""
    from ctloop.store.statuses import ExecutionStatus, FiringStatus

    firing = workspace.triggers.get_firing(firing_id)
    if firing.status in FiringStatus.active():
        return RetrainOutcome("running", "still running")
    if firing.run_id is None:
        return RetrainOutcome("failed", f"failed before its run started ({firing.reason})")
    metadata = workspace.metadata
    tags = {t.key: t.value for t in metadata.get_tags(firing.run_id)}
    if firing.trigger == INGEST_TRIGGER and firing.status == FiringStatus.SUCCEEDED:
        return RetrainOutcome("ingested", f"ingested: {firing.reason}")
    if firing.status == FiringStatus.SUCCEEDED:
        return RetrainOutcome("released", f"released {tags.get('released', '(nothing)')}")
    failed = [
        e for e in metadata.list_executions(firing.run_id) if e.status == ExecutionStatus.FAILED
    ]
    error = failed[0].error or "" if failed else ""
    if tags.get("gate") == "failed" or "GateFailedError" in error:
        reasons = gate_reasons(error) or ["see the gate step's log"]
        return RetrainOutcome("rejected", f"rejected by the gate: {'; '.join(reasons)}")
    if not failed:
        return RetrainOutcome("failed", f"failed ({firing.reason})")
    return RetrainOutcome("failed", f"failed at {failed[0].step}: {_first_error(error)}")


def training_data(workspace: Workspace, run_id: str | None) -> str:
    """The data versions a run read and the spans it tagged, ``flights@12: 2013-05-07 …
    2013-07-01 (56 spans)`` ("" for a run that read none)."""
    from ctloop.store._lineage import run_lineage

    if run_id is None:
        return ""
    try:
        lineage = run_lineage(workspace.metadata, run_id)
    except Exception:  # a run that never started a step has no lineage
        return ""
    names = sorted(
        {n for node in lineage.nodes.values() for n in node.details.get("data_versions", [])}
    )
    tags = {t.key: t.value for t in workspace.metadata.get_tags(run_id)}
    spans = tags.get("spans", "")
    return ", ".join(names) + (f": {spans}" if spans and names else spans)


def gate_reasons(error: str) -> list[str]:
    """The failed checks listed in a ``GateFailedError`` message (its ``- …`` lines)."""
    lines = (line.strip() for line in error.splitlines())
    return [line[2:] for line in lines if line.startswith("- ")]


def _first_error(error: str) -> str:
    """The exception's own line of a step's error (the last ``Name: message`` line)."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    found = [line for line in lines if "Error: " in line or "Exception: " in line]
    text = found[-1] if found else (lines[-1] if lines else "no error recorded")
    return text[:240]


def cause_kind(key: str) -> str:
    """The kind of an incident from its key (``flights:drift`` → ``drift``); keys written
    before incidents were grouped by kind carried the cause after it.

    >>> cause_kind("flights:drift"), cause_kind("flights:degraded:auc"), cause_kind("drift")
    ('drift', 'degraded', 'drift')
    """
    parts = key.split(":")
    return parts[1] if len(parts) > 1 else key


def incidents_by_cause(incidents: Sequence[Incident]) -> dict[str, int]:
    """How many incidents opened per kind of cause (``degraded``, ``drift``, …)."""
    return dict(Counter(cause_kind(i.key) for i in incidents))


def incident_changes(before: Sequence[Incident], after: Sequence[Incident]) -> list[str]:
    """Lines for the incidents that opened or resolved between two listings."""
    known = {(i.key, i.opened_at): i.status for i in before}
    lines = []
    for incident in after:
        was = known.get((incident.key, incident.opened_at))
        if was is None:
            lines.append(f"incident opened: {incident.cause}")
        if incident.status == "resolved" and was != "resolved":
            lines.append(f"incident resolved after {incident.count} window(s): {incident.cause}")
    return lines


def really_degraded(
    labels: Sequence[int],
    scores: Sequence[float],
    baseline: float | None,
    monitoring: dict[str, Any],
) -> bool | None:
    """Whether the served model's AUC on all of a week's labelled requests fell below the
    AUC it is held to (``baseline``) by more than the drop allowed (``monitoring:`` of
    ``ctloop.yaml``: ``allowed_drop`` and ``drop_is``, the gate's ``auc may drop by``):
    the truth, measured on every request, that the monitor's verdicts are held against.
    Unlike the monitor it makes no allowance for noise, so it counts a borderline week
    the monitor may rightly leave alone. ``None`` with no baseline or fewer rows than
    ``min_rows``.

    >>> really_degraded([0, 1] * 150, [0.4, 0.6] * 150, 0.9, {"allowed_drop": 0.03})
    False
    >>> really_degraded([0, 1] * 150, [0.6, 0.4] * 150, 0.9, {"allowed_drop": 0.03})
    True
    """
    import numpy as np

    from ctloop.monitor._checks import performance
    from ctloop.monitor._settings import MonitorSettings

    settings = MonitorSettings.from_mapping({**monitoring, "confidence": None})
    values = np.asarray(scores, dtype=float)
    keep = ~np.isnan(values)
    if baseline is None or int(keep.sum()) < settings.min_rows:
        return None
    found = performance(
        np.asarray(labels)[keep],
        values[keep],
        task="classification",
        baseline={"auc": baseline},
        settings=settings,
    )
    return bool(found["degraded"])
