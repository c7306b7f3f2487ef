"""The ``new_spans`` trigger: the scheduler ingests a source and starts its pipeline on
each new or late-changed span, whoever ingested it, with the spans as a parameter."""

from __future__ import annotations

import os
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from ctloop.config import Settings
from ctloop.store.workspace import Workspace
from ctloop.triggers import Scheduler, load_specs
from tests.ingest.test_ingest import START, land
from tests.ingest.test_ingest_cli import ctloop

PIPELINE = """\
from pathlib import Path

from ctloop import data_version, pipeline, step
from ctloop.ingest import read_spans


@step
def total(data: Path, spans: list[str]) -> dict:
    return {"spans": spans, "rows": len(read_spans(data, "all"))}


@pipeline
def training(spans: list[str]):
    return total(data_version("flights"), spans)
"""


def _configure(root: Path, source: str = "flights") -> None:
    settings = {
        "sources": {
            "flights": {
                "files": "landing/date={YYYY}-{MM}-{DD}/*.parquet",
                "late_window": "1d",
            }
        },
        "pipelines": {
            "train": {
                "pipeline": f"{root / 'pipeline.py'}:training",
                "triggers": [{"name": "spans", "new_spans": source, "parameter": "spans"}],
            }
        },
    }
    (root / "ctloop.yaml").write_text(yaml.safe_dump(settings))


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pipeline.py").write_text(textwrap.dedent(PIPELINE))
    monkeypatch.chdir(project)
    for key in [k for k in os.environ if k.startswith("CTLOOP_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("CTLOOP_HOME", str(project / ".ctloop"))
    return project


def _scheduler(root: Path) -> Scheduler:
    settings = Settings.load(root)
    return Scheduler(load_specs(settings), Workspace.from_settings(settings), settings=settings)


def _run_of(sched: Scheduler, firing_id: int | None) -> tuple[str, dict]:
    assert firing_id is not None
    sched.wait()
    firing = sched.store.get_firing(firing_id)
    assert firing.status == "succeeded" and firing.run_id is not None
    run = sched.workspace.metadata.get_run(firing.run_id)
    return run.trigger, run.parameters


def test_new_and_late_spans_start_the_pipeline_once_each(root: Path) -> None:
    _configure(root)
    for offset in range(2):
        land(root / "landing", START + timedelta(days=offset))
    sched = _scheduler(root)
    (baseline,) = sched.evaluate()
    assert baseline.outcome == "baseline" and "2 span(s)" in baseline.detail
    versions = sched.workspace.metadata.list_data_versions("flights")
    assert [v.version for v in versions] == [1]  # the scheduler ingested what was there
    assert [e.outcome for e in sched.evaluate()] == ["idle"]  # nothing new: nothing fires

    land(root / "landing", START + timedelta(days=2))
    (fired,) = sched.evaluate()
    assert fired.outcome == "fired" and "1 new span(s) (2013-03-03)" in fired.detail
    assert _run_of(sched, fired.firing_id) == ("new-data", {"spans": ["2013-03-03"]})
    assert [e.outcome for e in sched.evaluate()] == ["idle"]  # the same span fires once

    land(root / "landing", START + timedelta(days=2), value=100)  # a late correction
    (late,) = sched.evaluate()
    assert late.outcome == "fired" and "1 late change(s) (2013-03-03)" in late.detail
    assert _run_of(sched, late.firing_id)[1] == {"spans": ["2013-03-03"]}
    assert sched.workspace.metadata.get_data_version("flights").version == 3


def test_spans_ingested_by_hand_fire_too_and_an_unknown_source_is_named(root: Path) -> None:
    _configure(root)
    land(root / "landing", START)
    sched = _scheduler(root)
    assert [e.outcome for e in sched.evaluate()] == ["baseline"]
    land(root / "landing", START + timedelta(days=1))
    ctloop(root, "ingest", "run")  # another job ingested the new day first
    (fired,) = sched.evaluate()
    assert fired.outcome == "fired" and "2013-03-02" in fired.detail
    assert _run_of(sched, fired.firing_id)[1] == {"spans": ["2013-03-02"]}

    _configure(root, source="weather")
    (error,) = _scheduler(root).evaluate()
    assert error.outcome == "error"
    assert "watches source 'weather', which" in error.detail and "declared: flights" in error.detail
