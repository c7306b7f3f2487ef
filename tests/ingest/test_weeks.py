"""Weekly spans: files named by ISO week (``{YYYY}-W{WW}``) or by the day a week starts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from ctloop.errors import ConfigError, DataVersionError
from ctloop.ingest import ingest_source, parse_sources, read_spans, source_status
from ctloop.ingest._spans import parse_span
from ctloop.store.workspace import Workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace.open(
        f"sqlite:///{tmp_path / 'meta.db'}", artifacts=str(tmp_path / "artifacts")
    ) as ws:
        yield ws


def land(path: Path, first: date, value: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    days = [(first + timedelta(days=d)).isoformat() for d in range(7)]
    pd.DataFrame({"day": days, "x": range(value, value + 7)}).to_parquet(path, index=False)


def test_iso_weeks_are_spans_that_start_on_monday_and_a_missing_week_is_named(
    tmp_path: Path, workspace: Workspace
) -> None:
    for week in (9, 10, 12):  # 2013-W09 starts on Monday 25 February
        monday = date.fromisocalendar(2013, week, 1)
        land(tmp_path / "landing" / f"2013-W{week:02d}" / "part-0.parquet", monday)
    entry = {"files": "landing/{YYYY}-W{WW}/*.parquet", "expect": "weekly"}
    source = parse_sources({"weeks": entry}, tmp_path)["weeks"]
    assert source.grain == "week"  # inferred from {YYYY} and {WW}
    result = ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    assert result.new_spans == ["2013-02-25", "2013-03-04", "2013-03-18"]
    assert result.missing == ["2013-03-11"]  # 2013-W11
    assert source_status(workspace, source).watermark == "2013-03-18"
    backfill = ingest_source(
        workspace,
        source,
        staging_root=tmp_path / "tmp",
        start=parse_span("week", "2013-W10", "--from"),
    )
    assert backfill.unchanged  # nothing changed in W10 and after


def test_weeks_named_by_their_first_day_expect_one_every_seven_days(
    tmp_path: Path, workspace: Workspace
) -> None:
    start = date(2013, 1, 1)  # a Tuesday: weeks need not start on Monday
    for week in range(4):
        first = start + timedelta(days=7 * week)
        land(tmp_path / "landing" / f"week={first.isoformat()}" / "flights.parquet", first, week)
    entry = {
        "files": "landing/week={YYYY}-{MM}-{DD}/*.parquet",
        "span": "week",
        "expect": "weekly",
        "late_window": "7d",
    }
    source = parse_sources({"flights": entry}, tmp_path)["flights"]
    first = ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    assert first.new_spans == ["2013-01-01", "2013-01-08", "2013-01-15", "2013-01-22"]
    assert first.missing == []
    land(tmp_path / "landing" / "week=2013-01-15" / "flights.parquet", date(2013, 1, 15), 100)
    late = ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    assert late.late_spans == ["2013-01-15"]  # within 7 days of the newest week

    from ctloop.artifacts._data_versions import get_data_version

    folder = tmp_path / "checkout"
    get_data_version(
        "flights", folder, metadata=workspace.metadata, artifacts=workspace.artifacts,
        cache_dir=tmp_path / "cache",
    )  # fmt: skip
    root = folder if (folder / "_spans.json").exists() else folder / "flights"
    frame = read_spans(root, "rolling:2", span_column="week")
    assert frame["week"].unique().tolist() == ["2013-01-15", "2013-01-22"]
    assert frame["x"].iloc[0] == 100
    land(tmp_path / "landing" / "week=2013-02-05" / "flights.parquet", date(2013, 2, 5))
    gap = ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    assert gap.missing == ["2013-01-29"]
    get_data_version(
        "flights", tmp_path / "again", metadata=workspace.metadata,
        artifacts=workspace.artifacts, cache_dir=tmp_path / "cache",
    )  # fmt: skip
    again = tmp_path / "again"
    again = again if (again / "_spans.json").exists() else again / "flights"
    with pytest.raises(DataVersionError, match=r"expects weekly spans.*gaps: 2013-01-29"):
        read_spans(again, "all")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"files": "in/{YYYY}-{MM}/*.csv", "span": "week"}, r"span 'week' needs \{YYYY\} and"),
        ({"files": "in/{YYYY}-W{WW}/*.csv", "expect": "daily"}, r"can expect 'weekly'"),
    ],
)
def test_a_bad_weekly_declaration_names_the_field(
    tmp_path: Path, entry: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_sources({"flights": entry}, tmp_path)


def test_a_week_that_does_not_exist_names_the_file(tmp_path: Path, workspace: Workspace) -> None:
    land(tmp_path / "landing" / "2013-W54" / "part-0.parquet", date(2013, 12, 30))
    source = parse_sources({"w": {"files": "landing/{YYYY}-W{WW}/*.parquet"}}, tmp_path)["w"]
    with pytest.raises(DataVersionError, match=r"2013-W54/part-0.parquet names no real date"):
        ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    with pytest.raises(ConfigError, match=r"write one like 2013-03-04 or 2013-W10"):
        parse_span("week", "2013-W99", "--from")
