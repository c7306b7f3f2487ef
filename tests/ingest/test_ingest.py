"""Ingesting a file source span by span: new spans, nothing new, late changes, gaps,
backfills, and reading spans back in a pipeline step."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from ctloop.errors import ConfigError, DataVersionError
from ctloop.ingest import (
    SourceSpec,
    ingest_source,
    parse_sources,
    read_spans,
    select_spans,
    source_status,
)
from ctloop.ingest import _ingest as ingest_module
from ctloop.store.workspace import Workspace
from tests.fixtures.s3 import S3Location

START = date(2013, 3, 1)


def land(folder: Path, day: date, rows: int = 3, *, value: int = 0, fmt: str = "parquet") -> Path:
    """Write one day's file into the landing folder, as an upstream job would."""
    target = folder / f"date={day.isoformat()}" / f"part-0.{fmt}"
    target.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({"day": [day.isoformat()] * rows, "x": range(value, value + rows)})
    if fmt == "parquet":
        frame.to_parquet(target, index=False)
    else:
        frame.to_csv(target, index=False)
    return target


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace.open(
        f"sqlite:///{tmp_path / 'meta.db'}", artifacts=str(tmp_path / "artifacts")
    ) as ws:
        yield ws


def spec(tmp_path: Path, **entry: object) -> SourceSpec:
    declared = {"files": "landing/date={YYYY}-{MM}-{DD}/*.parquet", **entry}
    return SourceSpec.parse("flights", declared, tmp_path)


def test_new_spans_become_one_data_version_and_nothing_new_makes_none(
    tmp_path: Path, workspace: Workspace
) -> None:
    for offset in range(3):
        land(tmp_path / "landing", START + timedelta(days=offset))
    source = spec(tmp_path)
    first = ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    assert (first.version, first.new_spans) == (1, ["2013-03-01", "2013-03-02", "2013-03-03"])
    again = ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    assert again.unchanged and again.version == 1
    assert [v.version for v in workspace.metadata.list_data_versions("flights")] == [1]

    land(tmp_path / "landing", START + timedelta(days=3))
    third = ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    assert (third.version, third.new_spans, third.late_spans) == (2, ["2013-03-04"], [])
    record = workspace.metadata.get_data_version("flights")
    assert record.source == source.files  # where the data came from, not a staging folder
    files = workspace.metadata.get_artifact(record.artifact_id).files
    assert sorted(f.path for f in files) == [
        "_spans.json",
        *(f"span=2013-03-0{d}/part-0.parquet" for d in range(1, 5)),
    ]


def test_a_span_changed_within_the_late_window_is_ingested_again_as_a_new_version(
    tmp_path: Path, workspace: Workspace
) -> None:
    landing = tmp_path / "landing"
    for offset in range(5):
        land(landing, START + timedelta(days=offset))
    source = spec(tmp_path, late_window="2d")
    ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    land(landing, START + timedelta(days=3), value=100)  # inside 2 days of the newest span
    land(landing, START, value=100)  # four days older than the newest: too late
    result = ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    assert (result.version, result.new_spans, result.late_spans) == (2, [], ["2013-03-04"])

    folder = tmp_path / "checkout"
    from ctloop.artifacts._data_versions import get_data_version

    get_data_version(
        "flights", folder, metadata=workspace.metadata, artifacts=workspace.artifacts,
        cache_dir=tmp_path / "cache",
    )  # fmt: skip
    root = folder if (folder / "_spans.json").exists() else folder / "flights"
    manifest = json.loads((root / "_spans.json").read_text())
    assert manifest["spans"]["2013-03-04"] == {"version": 2}
    assert manifest["spans"]["2013-03-01"] == {"version": 1}
    late = read_spans(root, "2013-03-04..2013-03-04")
    assert late["x"].tolist() == [100, 101, 102]
    kept = read_spans(root, "2013-03-01..2013-03-01")
    assert kept["x"].tolist() == [0, 1, 2]  # the too-late change was not taken
    status = source_status(workspace, source)
    assert status.late == {"2013-03-04": 2}


def test_touching_a_file_without_changing_it_is_no_late_change(
    tmp_path: Path, workspace: Workspace
) -> None:
    path = land(tmp_path / "landing", START)
    source = spec(tmp_path, late_window="7d")
    ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    os.utime(path, (1e9, 1e9))
    assert ingest_source(workspace, source, staging_root=tmp_path / "tmp").unchanged


def test_a_missing_day_is_reported_not_silently_skipped(
    tmp_path: Path, workspace: Workspace
) -> None:
    for offset in (0, 1, 4):
        land(tmp_path / "landing", START + timedelta(days=offset))
    source = spec(tmp_path, expect="daily")
    result = ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    assert result.missing == ["2013-03-03", "2013-03-04"]
    assert result.new_spans == ["2013-03-01", "2013-03-02", "2013-03-05"]
    status = source_status(workspace, source)
    assert (status.watermark, status.missing, status.pending) == (
        "2013-03-05",
        ["2013-03-03", "2013-03-04"],
        [],
    )


def test_a_backfill_ingests_only_its_range(tmp_path: Path, workspace: Workspace) -> None:
    for offset in range(6):
        land(tmp_path / "landing", START + timedelta(days=offset))
    source = spec(tmp_path)
    result = ingest_source(
        workspace, source, staging_root=tmp_path / "tmp", start="2013-03-02", end="2013-03-03"
    )
    assert result.new_spans == ["2013-03-02", "2013-03-03"]
    status = source_status(workspace, source)
    assert status.pending == ["2013-03-01", "2013-03-04", "2013-03-05", "2013-03-06"]


def test_versions_of_a_span_take_the_highest_only(tmp_path: Path, workspace: Workspace) -> None:
    for version, value in ((1, 0), (2, 50)):
        target = tmp_path / "in" / "span-7" / f"ver-{version}" / "data.csv"
        target.parent.mkdir(parents=True)
        pd.DataFrame({"x": [value]}).to_csv(target, index=False)
    source = SourceSpec.parse("events", {"files": "in/span-{SPAN}/ver-{VERSION}/*.csv"}, tmp_path)
    assert source.grain == "number"
    result = ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    assert result.new_spans == ["7"]
    record = workspace.metadata.get_data_version("events")
    (data_file,) = [
        f
        for f in workspace.metadata.get_artifact(record.artifact_id).files
        if f.path != "_spans.json"
    ]
    assert data_file.path == "span=0000000007/data.csv"
    assert b"50" in workspace.artifacts.get_bytes(data_file.digest)


def spans_folder(tmp_path: Path, days: list[int], expect: str | None = "daily") -> Path:
    folder = tmp_path / "flights"
    for day in days:
        part = folder / f"span={(START + timedelta(days=day)).isoformat()}"
        part.mkdir(parents=True)
        pd.DataFrame({"x": [day]}).to_parquet(part / "a.parquet")
    spans = {(START + timedelta(days=d)).isoformat(): {"version": 1} for d in days}
    manifest = {"source": "flights", "span": "day", "expect": expect, "spans": spans}
    (folder / "_spans.json").write_text(json.dumps(manifest))
    return folder


@pytest.mark.parametrize(
    ("selection", "days"),
    [
        ("latest", [5]),
        ("all", [0, 1, 2, 3, 4, 5]),
        ("rolling:3", [3, 4, 5]),
        ("2013-03-02..2013-03-04", [1, 2, 3]),
    ],
)
def test_selections_read_the_spans_they_name(
    tmp_path: Path, selection: str, days: list[int]
) -> None:
    folder = spans_folder(tmp_path, list(range(6)))
    frame = read_spans(folder, selection, span_column="span")
    assert frame["x"].tolist() == days
    assert frame["span"].iloc[0] == (START + timedelta(days=days[0])).isoformat()


def test_a_selection_with_a_gap_is_refused_when_every_span_is_expected(tmp_path: Path) -> None:
    folder = spans_folder(tmp_path, [0, 1, 3, 4])
    with pytest.raises(DataVersionError, match=r"gaps: 2013-03-03; ingest them"):
        select_spans(folder, "rolling:3")
    assert select_spans(folder, "rolling:2").spans == ["2013-03-04", "2013-03-05"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"files": "in/*.csv"}, r"sources.flights.files has no span placeholders"),
        ({"files": "in/{YYYY}/{WEEK}/*.csv"}, r"unknown placeholder\(s\) WEEK"),
        ({"files": "in/{YYYY}-{MM}/*.csv", "span": "day"}, r"span 'day' needs .*\{DD\}"),
        ({"files": "in/{YYYY}-{MM}-{DD}/*.csv", "expect": "hourly"}, r"can expect 'daily'"),
        ({"files": "in/{YYYY}-{MM}-{DD}/*", "late_window": "soon"}, r"late_window 'soon'"),
        ({"files": "in/{YYYY}-{MM}-{DD}/*", "cursor": "x"}, r"unknown key\(s\) cursor"),
    ],
)
def test_a_bad_declaration_names_the_field(tmp_path: Path, entry: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_sources({"flights": entry}, tmp_path)


def test_a_date_that_does_not_exist_names_the_file(tmp_path: Path, workspace: Workspace) -> None:
    bad = tmp_path / "landing" / "date=2013-02-30" / "part-0.parquet"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"x")
    with pytest.raises(DataVersionError, match=r"date=2013-02-30/part-0.parquet names no real"):
        ingest_source(workspace, spec(tmp_path), staging_root=tmp_path / "tmp")


@pytest.mark.s3
def test_a_source_in_s3_is_ingested_like_a_folder(
    tmp_path: Path, workspace: Workspace, s3_location: S3Location
) -> None:
    client = s3_location.server.client()
    for offset in range(2):
        local = land(tmp_path / "landing", START + timedelta(days=offset), value=offset)
        key = f"landing/date={(START + timedelta(days=offset)).isoformat()}/part-0.parquet"
        client.upload_file(str(local), s3_location.bucket, key)
    entry = {
        "files": f"s3://{s3_location.bucket}/landing/date={{YYYY}}-{{MM}}-{{DD}}/*.parquet",
        "late_window": "1d",
        "options": s3_location.options,
    }
    source = SourceSpec.parse("flights", entry, tmp_path)
    result = ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    assert result.failed == {}
    assert result.new_spans == ["2013-03-01", "2013-03-02"]
    assert ingest_source(workspace, source, staging_root=tmp_path / "tmp").unchanged
    changed = land(tmp_path / "other", START + timedelta(days=1), value=7)
    client.upload_file(str(changed), s3_location.bucket, "landing/date=2013-03-02/part-0.parquet")
    late = ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    assert late.late_spans == ["2013-03-02"]


def test_a_damaged_file_fails_its_span_alone_and_is_retried_next_run(
    tmp_path: Path, workspace: Workspace
) -> None:
    landing = tmp_path / "landing"
    land(landing, START)
    broken = land(landing, START + timedelta(days=1))
    broken.write_bytes(broken.read_bytes()[:-20])  # footer cut off
    source = spec(tmp_path)
    result = ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    assert result.new_spans == ["2013-03-01"]
    assert list(result.failed) == ["2013-03-02"]
    assert "part-0.parquet of span 2013-03-02 cannot be read" in result.failed["2013-03-02"]
    land(landing, START + timedelta(days=1))  # the upstream job writes it again
    retried = ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    assert (retried.new_spans, retried.failed) == (["2013-03-02"], {})


def test_columns_that_break_the_schema_fail_the_span_naming_them(
    tmp_path: Path, workspace: Workspace
) -> None:
    landing = tmp_path / "landing"
    land(landing, START)
    source = spec(tmp_path)
    ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    odd = landing / "date=2013-03-02" / "part-0.parquet"
    odd.parent.mkdir()
    pd.DataFrame({"day": ["2013-03-02"], "x": ["seven"], "extra": [1]}).to_parquet(odd)
    result = ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    assert result.unchanged
    assert re.search(
        r"span 2013-03-02: 'x' is (large_)?string \(was int64\)", result.failed["2013-03-02"]
    )
    taken = ingest_source(workspace, source, staging_root=tmp_path / "tmp", accept_schema=True)
    assert taken.new_spans == ["2013-03-02"]


def test_an_unchanged_source_is_checked_without_reading_its_files(
    tmp_path: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    for offset in range(3):
        land(tmp_path / "landing", START + timedelta(days=offset))
    source = spec(tmp_path)
    ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    land(tmp_path / "landing", START + timedelta(days=3))
    read: list[str] = []
    real_store = ingest_module._check_and_put

    def counting_store(ws: Workspace, path: Path, shown: str) -> tuple[dict, str, int]:
        read.append(Path(path).parent.name)
        return real_store(ws, path, shown)

    monkeypatch.setattr(ingest_module, "_check_and_put", counting_store)
    result = ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    assert result.new_spans == ["2013-03-04"]
    assert read == ["date=2013-03-04"]  # the three kept spans were not read again


def test_small_files_are_read_once_and_big_ones_stream_to_the_same_blobs(
    tmp_path: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "landing"
    paths = [land(landing, START + timedelta(days=d), rows=500) for d in range(2)]
    digests = {p.parent.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    streamed: list[str] = []
    real_put_file = type(workspace.artifacts).put_file

    def counting_put_file(store: object, path: Path) -> tuple[str, int]:
        streamed.append(Path(path).parent.name)
        return real_put_file(store, path)  # type: ignore[arg-type]

    monkeypatch.setattr(type(workspace.artifacts), "put_file", counting_put_file)
    ingest_source(workspace, spec(tmp_path), staging_root=tmp_path / "tmp")
    assert streamed == []  # both files are far below the in-memory limit: one read each
    monkeypatch.setattr(ingest_module, "_IN_MEMORY", 0)  # every file is "big" now
    second = SourceSpec.parse("copy", {"files": spec(tmp_path).files}, tmp_path)
    result = ingest_source(workspace, second, staging_root=tmp_path / "tmp")
    assert result.new_spans == ["2013-03-01", "2013-03-02"]
    assert sorted(streamed) == ["date=2013-03-01", "date=2013-03-02"]
    for name in ("flights", "copy"):
        record = workspace.metadata.get_data_version(name)
        stored = {
            f.path.split("/")[0]: f.digest
            for f in workspace.metadata.get_artifact(record.artifact_id).files
            if f.path != "_spans.json"
        }
        assert stored == {f"span={k[5:]}": v for k, v in digests.items()}
