"""Judging a canary on labelled live traffic: wait, promote, roll back (with an alert),
time out; the scheduler settles canaries; the ``release`` step starts one."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest

from ctloop.components import RegisteredVersion, release
from ctloop.config import Settings
from ctloop.errors import MonitorError
from ctloop.monitor import MonitorSettings
from ctloop.monitor._canary import CanarySettings, active_canaries, judge_canary, settle_canary
from ctloop.pipeline.tracking import use_workspace
from ctloop.store._deployments import deploy, load_deployment, start_canary
from ctloop.store.records import utcnow
from ctloop.store.workspace import Workspace
from ctloop.triggers import Scheduler
from tests.monitor.conftest import FEATURES, Project, make_rows
from tests.monitor.test_cli import ctloop


@pytest.fixture
def canary(project: Project) -> Project:
    """``flights`` v1 champion and v2 (the same artifact) as a 30 % canary of deployment
    ``flights``; the judge wants 200 labelled requests a side."""
    workspace = project.workspace
    workspace.registry.register_version("flights", project.model_artifact_id)
    deploy(workspace, "flights", "flights", reason="first release")
    start_canary(workspace, "flights", 2, traffic=30, reason="v2 passed the gate")
    monitoring = {"min_rows": 50, "canary": {"min_rows": 200, "allowed_drop": 0.02}}
    return replace(project, settings=replace(project.settings, monitoring=monitoring))


def serve(
    project: Project,
    version: int,
    rows: int,
    seed: int,
    *,
    invert: bool = False,
    deployment: str = "flights",
) -> None:
    """Log ``rows`` requests answered by ``version`` in ``deployment`` now, and their
    labels; an inverted model scores the opposite of the truth."""
    from ctloop.serve._feedback import FeedbackLogger
    from ctloop.serve._prediction_log import PredictionLogger

    frame = make_rows(rows, seed)
    predictions = project.model.predict(frame[FEATURES])
    if invert:
        predictions = 1.0 - np.asarray(predictions)
    ids = [f"v{version}-{seed}-{i}" for i in range(rows)]
    now = utcnow().timestamp()
    with PredictionLogger(project.workspace, "flights", flush_rows=10**6) as logger:
        features = frame[FEATURES].reset_index(drop=True)
        logger.log(version, deployment, ids, features, np.asarray(predictions), now)
    with FeedbackLogger(project.workspace, "flights", flush_rows=10**6) as feedback:
        feedback.log(ids, frame["label"].tolist(), now)


def champion(project: Project) -> int:
    return project.workspace.registry.get_by_alias("flights", "champion").version


def test_too_few_labels_means_wait_and_nothing_changes(canary: Project) -> None:
    serve(canary, 1, 400, seed=20)
    serve(canary, 2, 60, seed=21)

    judged = settle_canary(canary.workspace, "flights", settings=canary.settings)

    assert judged is not None and judged.decision == "wait"
    assert (judged.primary_rows, judged.canary_rows) == (400, 60)
    assert "judging at 200" in judged.reason
    assert load_deployment(canary.workspace, "flights").canary is not None
    assert champion(canary) == 1


def test_a_canary_as_good_as_the_primary_is_promoted(canary: Project) -> None:
    serve(canary, 1, 600, seed=22)
    serve(canary, 2, 300, seed=23)

    judged = settle_canary(canary.workspace, "flights", settings=canary.settings)

    assert judged is not None and judged.decision == "promote", judged.reason
    assert judged.metric == "auc" and judged.canary_value is not None
    assert abs(judged.canary_value - judged.primary_value) < 0.02
    assert champion(canary) == 2
    state = load_deployment(canary.workspace, "flights")
    assert state is not None and state.canary is None
    last = canary.workspace.deployments.history("flights")[-1]
    assert (last.action, last.created_by) == ("promote", "monitor")
    assert "auc" in last.reason and "300 and 600 labelled requests" in last.reason
    assert active_canaries(canary.workspace) == []


def test_a_worse_canary_is_rolled_back_with_an_alert(canary: Project) -> None:
    serve(canary, 1, 600, seed=24)
    serve(canary, 2, 300, seed=25, invert=True)

    judged = settle_canary(canary.workspace, "flights", settings=canary.settings)

    assert judged is not None and judged.decision == "rollback"
    assert judged.better is False and "worse by" in judged.reason
    assert champion(canary) == 1
    last = canary.workspace.deployments.history("flights")[-1]
    assert last.action == "auto-rollback" and last.state["canary"] is None
    (alert,) = canary.workspace.alerts.list(subject="flights")
    assert alert.cause == "canary flights@2 rolled back"
    assert alert.details["canary_value"] == judged.canary_value
    assert (
        settle_canary(canary.workspace, "flights", settings=canary.settings) is None
    )  # nothing left to judge


def test_a_canary_without_labels_is_rolled_back_after_max_wait(canary: Project) -> None:
    serve(canary, 1, 300, seed=26)
    settings = replace(canary.settings, monitoring={"canary": {"min_rows": 200, "max_wait": "2d"}})

    soon = judge_canary(
        canary.workspace, "flights", settings=settings, now=utcnow() + timedelta(days=1)
    )
    late = settle_canary(
        canary.workspace, "flights", settings=settings, now=utcnow() + timedelta(days=3)
    )

    assert soon is not None and soon.decision == "wait"
    assert late is not None and late.decision == "rollback"
    assert "within max_wait 48.0 h" in late.reason
    assert load_deployment(canary.workspace, "flights").canary is None


def test_the_scheduler_settles_every_active_canary(canary: Project) -> None:
    serve(canary, 1, 500, seed=27)
    serve(canary, 2, 250, seed=28)
    events = []

    Scheduler([], canary.workspace, settings=canary.settings, on_event=events.append).evaluate()

    (event,) = [e for e in events if e.trigger == "canary/flights"]
    assert event.outcome == "promoted" and "auc" in event.detail
    assert champion(canary) == 2


def test_the_cli_shows_the_judgement_and_applies_it(canary: Project) -> None:
    serve(canary, 1, 500, seed=29)
    serve(canary, 2, 250, seed=30, invert=True)
    config = "monitoring:\n  canary: {min_rows: 200}\n"
    (canary.home.parent / "ctloop.yaml").write_text(config)

    shown = ctloop(canary, "monitor", "canary", "flights", "--json")
    applied = ctloop(canary, "monitor", "canary", "flights", "--apply")

    found = json.loads(shown.stdout)
    assert (found["decision"], found["applied"], found["canary_version"]) == ("rollback", False, 2)
    assert applied.stdout.startswith("rollback: canary v2 vs v1")
    assert load_deployment(canary.workspace, "flights").canary is None


def test_release_starts_a_canary_or_promotes_directly(project: Project) -> None:
    registry = project.workspace.registry
    second = registry.register_version("flights", project.model_artifact_id)
    third = registry.register_version("flights", project.model_artifact_id)
    as_version = lambda v: RegisteredVersion("flights", v.version, v.artifact_id)  # noqa: E731

    with use_workspace(project.workspace):
        started = release(as_version(second), strategy="canary", traffic=25)
        direct = release(as_version(third), strategy="direct", reason="hotfix")

    assert started == "canary flights@2 (25% of flights)"
    history = project.workspace.deployments.history("flights")
    assert [r.action for r in history] == ["deploy", "canary"]
    assert history[-1].state["canary"] == {"version": 2, "traffic": 25.0, "sticky": True}
    assert direct == "champion flights@3" and champion(project) == 3


def test_release_without_a_champion_is_direct(home: object) -> None:
    from tests.monitor.conftest import training

    result = training.run()
    artifact_id = result.outputs["train_and_evaluate"]["model"].id
    workspace = Workspace.from_settings(Settings.load())
    first = workspace.registry.register_version("flights", artifact_id)

    with use_workspace(workspace):
        done = release(RegisteredVersion("flights", first.version, artifact_id), strategy="canary")

    assert done == "champion flights@1"
    assert workspace.registry.get_by_alias("flights", "champion").version == 1


def test_bad_canary_settings_are_refused_with_the_key() -> None:
    with pytest.raises(MonitorError, match=r"unknown key.*min_row"):
        MonitorSettings.from_mapping({"canary": {"min_row": 10}})
    with pytest.raises(MonitorError, match=r"max_wait.*'soon'"):
        CanarySettings.from_mapping({"max_wait": "soon"})
    with pytest.raises(MonitorError, match="allowed_drop >= 0"):
        CanarySettings.from_mapping({"allowed_drop": -0.1})
    assert CanarySettings.from_mapping({"max_wait": None}).max_wait_s is None


def test_requests_of_other_deployments_do_not_count(canary: Project) -> None:
    serve(canary, 1, 500, seed=31)
    serve(canary, 2, 250, seed=32)
    serve(canary, 2, 400, seed=33, invert=True, deployment="flights-eu")

    judged = judge_canary(canary.workspace, "flights", settings=canary.settings)

    assert judged is not None and (judged.primary_rows, judged.canary_rows) == (500, 250)
    assert judged.decision == "promote"
