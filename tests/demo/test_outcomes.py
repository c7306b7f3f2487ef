"""How the demo tells a retraining's end: a gate rejection is the loop keeping its champion,
a crashed step is a failure; incidents and really degraded weeks are counted apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctloop import pipeline, step
from ctloop.artifacts.model import Model
from ctloop.components import register
from ctloop.config import Settings
from ctloop.demo._outcomes import (
    gate_reasons,
    incident_changes,
    incidents_by_cause,
    really_degraded,
    retrain_outcome,
)
from ctloop.evaluate import Blessing, Comparison
from ctloop.monitor._incidents import list_incidents
from ctloop.store._triggers import FiringClaim
from ctloop.store.statuses import FiringStatus
from ctloop.store.workspace import Workspace

DROP = "0.6102 vs champion 0.6603: drop 0.0501 exceeds 0.03"


@step
def tiny_model() -> Model:
    from sklearn.linear_model import LogisticRegression

    X = pd.DataFrame({"x": np.arange(20.0)})
    return Model.from_estimator(LogisticRegression().fit(X, np.arange(20) % 2), X)


@step
def worse_blessing() -> Blessing:
    check = Comparison(
        "auc", "overall", None, None, 0.61, 0.66, "auc may drop by 0.03", False, DROP
    )
    return Blessing(False, True, (check,))


@step
def broken_week() -> pd.DataFrame:
    raise KeyError("column 'carrier' is not in the week's data")


@pipeline
def rejected_retrain() -> None:
    register(tiny_model(), worse_blessing(), name="flights")


@pipeline
def crashed_retrain() -> None:
    broken_week()


def _fired(workspace: Workspace, run_id: str | None, status: str) -> int:
    claim = FiringClaim("flights-retrain/decay", "flights-retrain", "monitor", run_id or "k", "d")
    firing = workspace.triggers.claim(claim).firing
    assert firing is not None
    workspace.triggers.update_firing(firing.id, run_id=run_id)
    workspace.triggers.finish_firing(firing.id, status)
    return firing.id


def test_a_gate_rejection_is_told_apart_from_a_failed_step(home: Path) -> None:
    workspace = Workspace.from_settings(Settings.load())
    with pytest.raises(Exception, match="not registered"):
        rejected_retrain.run()
    with pytest.raises(Exception, match="carrier"):
        crashed_retrain.run()
    runs = {r.pipeline: r.id for r in workspace.metadata.list_runs()}

    rejected = retrain_outcome(
        workspace, _fired(workspace, runs["rejected_retrain"], FiringStatus.FAILED)
    )
    crashed = retrain_outcome(
        workspace, _fired(workspace, runs["crashed_retrain"], FiringStatus.FAILED)
    )
    unstarted = retrain_outcome(workspace, _fired(workspace, None, FiringStatus.FAILED))

    assert rejected.kind == "rejected"
    assert rejected.text == f"rejected by the gate: overall: auc may drop by 0.03: {DROP}"
    assert crashed.kind == "failed"
    assert crashed.text.startswith("failed at broken_week: ") and "'carrier'" in crashed.text
    assert unstarted.kind == "failed" and "before its run started" in unstarted.text


def test_gate_reasons_are_the_listed_checks() -> None:
    message = (
        "ctloop.errors.GateFailedError: model 'flights' was not registered: the candidate "
        "model failed 2 gate check(s):\n  - overall: auc >= 0.6: 0.58 below\n"
        "  - slice carrier=EV: auc may drop by 0.03: drop 0.04 exceeds 0.03\nimprove the model"
    )
    assert gate_reasons(message) == [
        "overall: auc >= 0.6: 0.58 below",
        "slice carrier=EV: auc may drop by 0.03: drop 0.04 exceeds 0.03",
    ]
    assert gate_reasons("ValueError: boom") == []


def _record(workspace: Workspace, key: str, step_name: str, cause: str) -> None:
    workspace.alerts.record(
        source="monitor", subject="flights", severity="warning", cause=cause,
        details={"incident": {"step": step_name, "value": 0.3, "clean_windows": 0}},
        dedup_key=key, cooldown_s=0,
    )  # fmt: skip


def test_incidents_are_counted_by_cause_and_their_changes_named() -> None:
    workspace = Workspace.in_memory()
    _record(workspace, "flights:drift:humid", "opened", "flights v1: drift in 'humid'")
    before = list_incidents(workspace, "flights")
    _record(workspace, "flights:drift:humid", "repeated", "flights v1: drift in 'humid'")
    _record(workspace, "flights:degraded:auc", "opened", "auc is 0.58 against 0.66")
    _record(workspace, "flights:drift:humid", "resolved", "resolved: drift in 'humid'")
    after = list_incidents(workspace, "flights")

    assert incidents_by_cause(after) == {"drift": 1, "degraded": 1}
    assert incident_changes(before, after) == [
        "incident resolved after 2 window(s): flights v1: drift in 'humid'",
        "incident opened: auc is 0.58 against 0.66",
    ]
    assert incident_changes(after, after) == []


def test_a_week_is_really_degraded_when_its_auc_falls_past_the_allowed_drop() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 1200)
    # the probability a weak model gives: an AUC of 0.68
    informative = 1 / (1 + np.exp(-(labels + rng.normal(scale=1.6, size=1200))))
    settings = {"allowed_drop": 0.03, "drop_is": "absolute", "confidence": 0.95}

    assert really_degraded(labels, informative, 0.70, settings) is False  # within 0.03
    assert really_degraded(labels, informative, 0.72, settings) is True  # 0.04 below
    # the truth makes no allowance for noise: a small week's 0.044 drop counts
    assert really_degraded(labels[:220], informative[:220], 0.71, settings) is True
    assert really_degraded(labels, informative, 0.72, {"allowed_drop": 0.1}) is False  # relative
    assert really_degraded(labels[:100], informative[:100], 0.80, settings) is None  # min_rows
    assert really_degraded(labels, informative, None, settings) is None
