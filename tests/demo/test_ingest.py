"""The demo's data as a declared source: its ctloop.yaml declares the landing folder as
daily spans with a ``new_spans`` trigger ahead of the retraining, each replayed week
lands as seven daily partitions, and a model trained by the retraining pipeline's steps
traces back to the data version and the exact spans it read."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from ctloop.config import Settings
from ctloop.demo._loop import DemoConfig, _flights_table, _fresh_workdir, _land, _weeks
from ctloop.ingest import ingest_source, parse_sources
from ctloop.store._lineage import upstream
from ctloop.store.workspace import Workspace
from ctloop.triggers import pipeline_specs

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flights"

PIPELINE = """\
from ctloop import data_version, pipeline
from continuous import SOURCE, fit_flights, load_spans


@pipeline
def fit_on_spans(weeks: int = 1):
    return fit_flights(load_spans(data_version(SOURCE), weeks=weeks))
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in [k for k in os.environ if k.startswith("CTLOOP_")]:
        monkeypatch.delenv(key)
    root = _fresh_workdir(DemoConfig(example=EXAMPLE, workdir=tmp_path / "work"))
    monkeypatch.chdir(root)
    monkeypatch.setenv("CTLOOP_HOME", str(root / ".ctloop"))
    return root


def test_the_demo_settings_declare_the_source_and_its_new_data_trigger(workdir: Path) -> None:
    settings = yaml.safe_load((workdir / "ctloop.yaml").read_text())
    source = parse_sources(settings["sources"], workdir)["flights"]
    assert source.expect == "daily" and source.grain == "day"
    assert settings["sources"]["flights"]["files"] == "landing/date={YYYY}-{MM}-{DD}/*.parquet"
    assert settings["sources"]["flights"]["late_window"] == "2d"
    ingest, retrain = pipeline_specs(settings["pipelines"])
    # the ingesting trigger is evaluated first, so a retraining fired in the same
    # evaluation reads the week just ingested
    assert (ingest.name, retrain.name) == ("flights-ingest", "flights-retrain")
    (new_data,) = ingest.triggers
    assert new_data.kind == "new_spans" and new_data.source == "flights"
    assert new_data.options["parameter"] == "spans"
    assert ingest.reference.endswith("continuous.py:ingested")
    assert "folder" not in retrain.parameters and retrain.parameters["weeks"] == 12


def test_a_week_lands_as_seven_daily_partitions_that_ingest_as_spans(workdir: Path) -> None:
    weeks = _weeks(_flights_table(EXAMPLE))
    written = _land(weeks, 1, workdir / "landing")
    assert [p.parent.name for p in written] == [f"date=2013-01-{d:02d}" for d in range(8, 15)]
    assert not list((workdir / "landing").rglob(".*"))  # no temporary file left behind
    settings = Settings.load(workdir)
    source = parse_sources(settings.sources, settings.root)["flights"]
    workspace = Workspace.from_settings(settings)
    result = ingest_source(workspace, source, staging_root=settings.home / "tmp")
    assert result.version == 1 and len(result.new_spans) == 7 and not result.failed

    # the broken week: a renamed column fails its spans at the schema check, naming both
    _land(weeks, 2, workdir / "landing", rename={"carrier": "airline"})
    broken = ingest_source(workspace, source, staging_root=settings.home / "tmp")
    assert sorted(broken.failed) == [f"2013-01-{d:02d}" for d in range(15, 22)]
    why = broken.failed["2013-01-15"]
    assert f"{workdir}/landing/date=2013-01-15/flights.parquet of span 2013-01-15" in why
    assert "lacks column(s) 'carrier'" in why
    assert workspace.metadata.get_data_version("flights").version == 1


def _pipeline_module(folder: Path) -> ModuleType:
    (folder / "fit_on_spans.py").write_text(PIPELINE)
    sys.path.insert(0, str(EXAMPLE))
    try:
        spec = importlib.util.spec_from_file_location("fit_on_spans", folder / "fit_on_spans.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLE))
    return module


def test_a_retrained_model_traces_back_to_the_ingested_spans(workdir: Path) -> None:
    from ctloop.demo._outcomes import training_data

    weeks = _weeks(_flights_table(EXAMPLE))
    for week in (0, 1, 2):
        _land(weeks, week, workdir / "landing")
    settings = Settings.load(workdir)
    source = parse_sources(settings.sources, settings.root)["flights"]
    workspace = Workspace.from_settings(settings)
    ingest_source(workspace, source, staging_root=settings.home / "tmp")

    result = _pipeline_module(workdir).fit_on_spans.run(weeks=1, workspace=workspace)

    (model,) = result.outputs["fit_flights"].values()
    lineage = upstream(workspace.metadata, model.id)
    used = {n for node in lineage.nodes.values() for n in node.details.get("data_versions", [])}
    assert used == {"flights@1"}
    tags = {t.key: t.value for t in workspace.metadata.get_tags(result.run_id)}
    assert tags["spans"] == "2013-01-15 … 2013-01-21 (7 spans)"  # the newest week only
    assert tags["span_versions"] == "v1"
    assert training_data(workspace, result.run_id) == (
        "flights@1: 2013-01-15 … 2013-01-21 (7 spans)"
    )
