"""A workspace for the operations pages: model ``flights`` (v1 champion, v2 a canary and
a shadow), six daily monitoring windows of logged predictions with labels where the
``signal`` feature shifts from the fourth day on, the alerts that raised (one delivered,
one failing), a deployment with a rolled-back and a live canary, four triggers declared in
``ctloop.yaml`` (two evaluated, one of which fired and started a run) and one the store
remembers that is declared no more, and a data set of two versions that fed runs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from ctloop import data_version, pipeline, step
from ctloop.config import Settings
from ctloop.server import create_app
from ctloop.store.workspace import Workspace
from tests.monitor.conftest import END, make_rows, training
from tests.server.conftest import role_keys, start

MODEL = "flights"
DAYS = 6
SHIFT_FROM = 3  # windows 3, 4 and 5 (0-based) have ``signal`` shifted
SHIFTED = "signal"
#: the project's ctloop.yaml: four triggers of one pipeline
CTLOOP_YAML = """\
pipelines:
  retrain:
    pipeline: train.py:training
    parameters: {rows: 3000}
    triggers:
      - {name: drifted, monitor: {model: flights, on: [drift, degraded]}, every: 2h}
      - {name: nightly, schedule: "0 3 * * *", cooldown: 6h}
      - {name: new-events, new_files: "incoming/*.csv", parameter: files}
      - {name: by-hand, manual: true}
"""
#: when the drifted trigger's monitoring job last ran, before the server started
MONITORED_AGO = timedelta(minutes=30)


@dataclass
class OpsServer:
    """The running server and what was put in its workspace."""

    url: str
    workspace: Workspace
    keys: dict[str, str]
    windows: list[str]  # the monitoring runs, oldest window first
    training_run: str
    data_runs: dict[int, str]  # data set version -> run it fed


@step
def count_rows(data: Path) -> int:
    """The rows of the data set version's CSV."""
    return len((data / "events.csv").read_text().splitlines()) - 1


@pipeline
def events_report() -> None:
    count_rows(data_version("events"))


@pytest.fixture(scope="module")
def ops_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsServer]:
    tmp: Path = tmp_path_factory.mktemp("ops")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CTLOOP_HOME", str(tmp / "home"))
        for name in ("CTLOOP_STORE_URL", "CTLOOP_ARTIFACT_URL", "CTLOOP_EXECUTOR"):
            patch.delenv(name, raising=False)
        patch.delenv("CTLOOP_SERVER", raising=False)
        patch.chdir(tmp)
        (tmp / "ctloop.yaml").write_text(CTLOOP_YAML)
        settings = Settings.load()
        workspace = Workspace.from_settings(settings)
        built = _fill(workspace, settings, tmp)
    server, thread, url = start(create_app(workspace, project_root=tmp))
    try:
        yield OpsServer(url, workspace, role_keys(workspace), *built)
    finally:
        server.should_exit = True
        thread.join(30)
        workspace.close()


def _fill(
    workspace: Workspace, settings: Settings, tmp: Path
) -> tuple[list[str], str, dict[int, str]]:
    trained = [training.run(workspace=workspace, rows=rows) for rows in (3000, 2000)]
    for result in trained:
        artifact = result.outputs["train_and_evaluate"]["model"].id
        workspace.registry.register_version(MODEL, artifact, run_id=result.run_id)
    workspace.registry.set_alias(MODEL, "champion", 1, by="setup", reason="first model")
    windows = _monitor(workspace, settings, trained[0])
    _alert_deliveries(workspace)
    _deployments(workspace)
    training_run = _trigger(workspace, trained[1].run_id)
    return windows, training_run, _data_sets(workspace, tmp)


def _monitor(workspace: Workspace, settings: Settings, trained: object) -> list[str]:
    """Six daily windows logged as served predictions with their labels, each judged."""
    from ctloop.monitor import run_monitor
    from tests.monitor.conftest import Project

    model = trained.load("train_and_evaluate", "model")  # type: ignore[attr-defined]
    project = Project(settings.home, settings, workspace, model, "", None)  # type: ignore[arg-type]
    runs = []
    for day in range(DAYS):
        start_at = END - timedelta(days=DAYS - day)
        shift = 2.5 if day >= SHIFT_FROM else 0.0
        project.log(make_rows(400, 10 + day, shift=shift), start_at, timedelta(days=1), labels=True)
        end = start_at + timedelta(days=1)
        found = run_monitor(workspace, MODEL, "1d", end=end, settings=settings)
        runs.append(found.run_id)
    return runs


def _alert_deliveries(workspace: Workspace) -> None:
    alerts = workspace.alerts.list(MODEL)
    assert alerts, "the shifted windows raised no alert"
    workspace.alerts.update_delivery(alerts[0].id, "slack", "sent", 1)
    workspace.alerts.update_delivery(alerts[-1].id, "webhook", "failed", 3, "HTTP 503 from hook")


def _deployments(workspace: Workspace) -> None:
    from ctloop.store import _deployments as deployments

    deployments.deploy(workspace, "flights-prod", MODEL, reason="first release", user="ops")
    deployments.start_canary(workspace, "flights-prod", 2, 20, reason="v2 offline", user="ops")
    deployments.rollback_canary(
        workspace,
        "flights-prod",
        reason="canary v2 vs v1: auc 0.61 is 0.12 below 0.73 on 240 and 950 labelled requests",
        user="monitor",
        automatic=True,
    )
    deployments.start_canary(workspace, "flights-prod", 2, 10, reason="retry at 10 %", user="ops")
    deployments.start_shadow(workspace, "flights-prod", 2, reason="compare live", user="ops")


def _trigger(workspace: Workspace, run_id: str) -> str:
    from ctloop.store._triggers import FiringClaim
    from ctloop.store.records import utcnow

    store = workspace.triggers
    checked = (utcnow() - MONITORED_AGO).isoformat()
    store.save_state(
        "retrain/drifted", "train.py:training", "monitor", cursor={"checked_at": checked}
    )
    store.save_state("retrain/nightly", "train.py:training", "schedule", cursor={})
    store.save_state("old/gone", "old.py:gone", "schedule", cursor={})
    claimed = store.claim(
        FiringClaim(
            "retrain/drifted",
            "train.py:training",
            "monitor",
            "window-2026-03-01",
            f"feature {SHIFTED!r} drifted",
        )
    )
    assert claimed.firing is not None
    store.update_firing(claimed.firing.id, status="running", run_id=run_id)
    store.finish_firing(claimed.firing.id, "succeeded")
    return run_id


def _data_sets(workspace: Workspace, tmp: Path) -> dict[int, str]:
    from ctloop.artifacts._data_versions import add_data_version

    fed = {}
    for version, rows in ((1, 3), (2, 5)):
        folder = tmp / f"events-{version}"
        folder.mkdir()
        lines = ["day,clicks", *(f"{d},{d * 10}" for d in range(rows))]
        (folder / "events.csv").write_text("\n".join(lines) + "\n")
        add_data_version(
            "events",
            folder,
            metadata=workspace.metadata,
            artifacts=workspace.artifacts,
            staging_root=tmp / "staging",
            message=f"{rows} days",
        )
        fed[version] = events_report.run(workspace=workspace).run_id
    return fed
