"""Artifacts saved before a module became private still load: stored metadata names a
record class by its module, and ``ctloop._moved`` maps each old module to its new one."""

from __future__ import annotations

import dataclasses
import doctest
import importlib.util
from pathlib import Path

import pandas as pd
import pytest

import ctloop._moved
from ctloop._moved import MOVED, current_module
from ctloop.artifacts import load_value, save_value
from ctloop.data import compute_statistics, infer_schema
from ctloop.errors import ArtifactError
from ctloop.store._fs_artifacts import LocalArtifactStore


@pytest.mark.parametrize("old", sorted(MOVED))
def test_each_moved_module_is_gone_and_its_new_home_exists(old: str) -> None:
    assert importlib.util.find_spec(current_module(old)) is not None
    assert importlib.util.find_spec(old) is None, f"{old} exists again; drop it from MOVED"


@pytest.mark.parametrize("old", sorted(MOVED))
def test_a_moved_module_logs_under_its_old_name(old: str) -> None:
    # logger names are user configuration: logging.getLogger("ctloop.serve.app") still works
    spec = importlib.util.find_spec(current_module(old))
    assert spec is not None and spec.origin is not None
    source = Path(spec.origin).read_text(encoding="utf-8")
    assert "getLogger(__name__)" not in source, f"{current_module(old)} logs as its private name"


def test_the_prediction_server_logs_as_ctloop_serve_app() -> None:
    import logging

    from ctloop.serve import _app, _errors

    assert _app.log is logging.getLogger("ctloop.serve.app")
    assert _errors.log is _app.log


def test_a_pipeline_referenced_by_its_old_module_path_loads() -> None:
    # a run records its pipeline as "module:name"; one recorded before the rename resumes
    from ctloop.monitor._job import monitor
    from ctloop.pipeline._loading import load_pipeline

    found, _ = load_pipeline("ctloop.monitor.job:monitor")

    assert found is monitor


def test_the_docstring_examples_run() -> None:
    result = doctest.testmod(ctloop._moved)
    assert result.attempted > 0 and result.failed == 0


def test_a_schema_saved_under_its_old_module_path_loads(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
    schema = infer_schema(compute_statistics(frame))
    store = LocalArtifactStore(tmp_path / "artifacts")
    record = save_value(schema, store, staging_root=tmp_path / "staging")
    module, _, name = record.properties["class"].partition(":")
    (old,) = [old for old, new in MOVED.items() if new == module]
    saved_before = dataclasses.replace(
        record, properties={**record.properties, "class": f"{old}:{name}"}
    )

    loaded = load_value(saved_before, store, cache_dir=tmp_path / "cache")

    assert type(loaded) is type(schema)
    assert loaded.to_dict() == schema.to_dict()


def test_a_class_outside_ctloop_is_still_refused(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    store = LocalArtifactStore(tmp_path / "artifacts")
    record = save_value(compute_statistics(frame), store, staging_root=tmp_path / "staging")
    forged = dataclasses.replace(
        record, properties={**record.properties, "class": "os:DatasetStatistics"}
    )

    with pytest.raises(ArtifactError, match="neither part of ctloop nor registered"):
        load_value(forged, store, cache_dir=tmp_path / "cache")
