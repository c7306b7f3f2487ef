"""A SQL source on SQLite, DuckDB and a real PostgreSQL: each run stores the rows past the
watermark as one more span, in record batches, and a bad query or cursor is one sentence."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq
import pytest

from ctloop.artifacts._data_versions import get_data_version
from ctloop.errors import ConfigError, DataVersionError, NotFoundError
from ctloop.ingest import (
    SqlSourceSpec,
    ingest_source,
    parse_sources,
    read_spans,
    select_spans,
    source_status,
)
from ctloop.store.workspace import Workspace

if TYPE_CHECKING:
    from sqlalchemy import Engine

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
QUERY = "SELECT id, amount, updated_at FROM orders WHERE updated_at > :watermark ORDER BY id"


@dataclass
class Database:
    """A database with an ``orders`` table that a test adds rows to, as an application would."""

    url: str
    execute: Callable[[str, list[dict[str, Any]]], None]

    def add(self, first: int, count: int, at: datetime) -> None:
        rows = [
            {"id": i, "amount": i * 1.5, "updated_at": at + timedelta(seconds=i)}
            for i in range(first, first + count)
        ]
        self.execute("INSERT INTO orders VALUES (:id, :amount, :updated_at)", rows)

    def touch(self, order: int, at: datetime) -> None:
        self.execute(
            "UPDATE orders SET updated_at = :at, amount = -1 WHERE id = :id",
            [{"id": order, "at": at}],
        )


def _sqlalchemy_database(url: str, created: str) -> tuple[Database, Engine]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(created))

    def execute(sql: str, rows: list[dict[str, Any]]) -> None:
        with engine.begin() as conn:
            conn.execute(text(sql), rows)

    return Database(url, execute), engine


def _duckdb_database(path: Path) -> Database:
    import duckdb

    def execute(sql: str, rows: list[dict[str, Any]]) -> None:
        with duckdb.connect(str(path)) as conn:
            for row in rows:
                conn.execute(sql.replace(":", "$"), row)

    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER, amount DOUBLE, updated_at TIMESTAMPTZ)")
    return Database(f"duckdb:///{path}", execute)


@pytest.fixture(params=["sqlite", "duckdb", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "duckdb":
        yield _duckdb_database(tmp_path / "shop.duckdb")
        return
    if request.param == "sqlite":
        url, stamp = f"sqlite:///{tmp_path / 'shop.db'}", "TIMESTAMP"
    else:
        url, stamp = request.getfixturevalue("fresh_postgres_url"), "TIMESTAMPTZ"
    database, engine = _sqlalchemy_database(
        url, f"CREATE TABLE orders (id INTEGER, amount DOUBLE PRECISION, updated_at {stamp})"
    )
    yield database
    engine.dispose()


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace.open(
        f"sqlite:///{tmp_path / 'meta.db'}", artifacts=str(tmp_path / "artifacts")
    ) as ws:
        yield ws


def orders(database: Database, tmp_path: Path, **entry: Any) -> SqlSourceSpec:
    declared = {"sql": QUERY, "url": database.url, "cursor": "updated_at", **entry}
    (spec,) = parse_sources({"orders": declared}, tmp_path).values()
    assert isinstance(spec, SqlSourceSpec)
    return spec


def checkout(workspace: Workspace, tmp_path: Path, ref: str = "orders") -> Path:
    dest = tmp_path / "checkout" / ref.replace("@", "-")
    return get_data_version(
        ref,
        dest,
        metadata=workspace.metadata,
        artifacts=workspace.artifacts,
        cache_dir=tmp_path / "cache",
    )


def test_each_run_stores_the_rows_past_the_watermark_as_one_version(
    database: Database, workspace: Workspace, tmp_path: Path
) -> None:
    database.add(1, 5, T0)
    source = orders(database, tmp_path)
    first = ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    assert (first.version, first.rows, first.new_spans) == (1, 5, ["1"])
    assert first.watermark is not None and first.watermark.startswith("2024-05-01")
    assert "08:00:05" in first.watermark
    again = ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    assert again.unchanged and again.version == 1 and again.watermark == first.watermark

    database.add(6, 3, T0 + timedelta(hours=1))
    database.touch(2, T0 + timedelta(hours=2))  # an update moves a row past the watermark
    second = ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    assert (second.version, second.rows, second.new_spans) == (2, 4, ["2"])
    assert "10:00:00" in (second.watermark or "")

    folder = checkout(workspace, tmp_path)
    manifest = json.loads((folder / "_spans.json").read_text())
    assert manifest["cursor"] == "updated_at"
    assert manifest["spans"]["0000000002"] == {"version": 1, "rows": 4}
    latest = read_spans(folder, "latest")
    assert (
        sorted(latest["id"]) == [2, 6, 7, 8]
        and latest.loc[latest["id"] == 2, "amount"].item() == -1
    )
    assert len(read_spans(folder, "all")) == 9  # every row as it was ingested, updates too
    assert select_spans(folder, "all").spans == ["1", "2"]
    assert workspace.metadata.get_data_version("orders").source == source.where
    status = source_status(workspace, source)
    assert (status.version, status.spans, status.watermark) == (2, 2, second.watermark)


def test_rows_stream_in_batches_into_row_groups_and_start_skips_older_rows(
    database: Database, workspace: Workspace, tmp_path: Path
) -> None:
    database.add(1, 7, T0)
    source = orders(database, tmp_path, batch_rows=2, start=T0 + timedelta(seconds=2))
    result = ingest_source(workspace, source, staging_root=tmp_path / "tmp")
    assert result.rows == 5  # ids 3 … 7: after the start
    folder = checkout(workspace, tmp_path)
    (part,) = (folder / "span=0000000001").iterdir()
    assert pq.ParquetFile(part).metadata.num_row_groups == 3  # batches of 2, 2 and 1 rows
    assert list(read_spans(folder, "all")["id"]) == [3, 4, 5, 6, 7]


def test_a_bad_query_or_cursor_is_one_sentence_naming_source_and_column(
    database: Database, workspace: Workspace, tmp_path: Path
) -> None:
    database.add(1, 2, T0)
    wrong_cursor = orders(database, tmp_path, cursor="changed_at")
    with pytest.raises(DataVersionError) as caught:
        ingest_source(workspace, wrong_cursor, staging_root=tmp_path / "tmp")
    assert str(caught.value).startswith("source 'orders': the query returns no column 'changed_at'")
    assert "id, amount, updated_at" in str(caught.value)

    typo = orders(database, tmp_path, sql=QUERY.replace("amount,", "amount, totl,"))
    with pytest.raises(DataVersionError, match=r"source 'orders': the query failed") as caught:
        ingest_source(workspace, typo, staging_root=tmp_path / "tmp")
    assert "totl" in str(caught.value) and "\n" not in str(caught.value)
    assert "fix 'sql:'" in str(caught.value)

    missing = orders(database, tmp_path, sql="SELECT * FROM orderz WHERE updated_at > :watermark")
    with pytest.raises(DataVersionError, match=r"source 'orders'.*orderz"):
        ingest_source(workspace, missing, staging_root=tmp_path / "tmp")
    with pytest.raises(NotFoundError):
        workspace.metadata.get_data_version("orders")  # nothing was stored


def test_no_rows_at_all_make_no_version_and_an_empty_result_still_checks_the_cursor(
    database: Database, workspace: Workspace, tmp_path: Path
) -> None:
    result = ingest_source(workspace, orders(database, tmp_path), staging_root=tmp_path / "tmp")
    assert result.unchanged and result.version is None and result.rows is None
    with pytest.raises(DataVersionError, match="no column 'changed_at'"):
        ingest_source(
            workspace, orders(database, tmp_path, cursor="changed_at"), staging_root=tmp_path
        )


def test_sql_source_declarations_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def parse(**entry: Any) -> Any:
        declared = {"sql": QUERY, "url": "sqlite:///shop.db", "cursor": "updated_at", **entry}
        return parse_sources(
            {"orders": {k: v for k, v in declared.items() if v is not None}}, tmp_path
        )

    assert parse()["orders"].url == f"sqlite:///{tmp_path / 'shop.db'}"
    with pytest.raises(ConfigError, match=r"sources.orders.sql never uses :watermark"):
        parse(sql="SELECT * FROM orders")
    with pytest.raises(ConfigError, match=r"sources.orders.cursor must name the column"):
        parse(cursor=None)
    with pytest.raises(ConfigError, match=r"sources.orders.url must be a SQLAlchemy URL"):
        parse(url="shop.db")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) span for a SQL source"):
        parse(span="day")
    with pytest.raises(ConfigError, match=r"both 'files:' and 'sql:'"):
        parse(files="landing/{YYYY}-{MM}-{DD}/*.csv")
    with pytest.raises(ConfigError, match=r"\$\{SHOP_PASSWORD\}, which is not set"):
        parse(url="postgresql+psycopg://ml:${SHOP_PASSWORD}@db/shop")
    monkeypatch.setenv("SHOP_PASSWORD", "s3cret")
    spec = parse(url="postgresql+psycopg://ml:${SHOP_PASSWORD}@db/shop")["orders"]
    assert spec.url == "postgresql+psycopg://ml:s3cret@db/shop"
    assert "s3cret" not in spec.where and "s3cret" not in repr(spec)


def test_an_unreachable_database_is_named_without_its_password(
    workspace: Workspace, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    url = f"postgresql+psycopg://ml:s3cret@127.0.0.1:{port}/shop"
    (spec,) = parse_sources(
        {"orders": {"sql": QUERY, "url": url, "cursor": "updated_at"}}, tmp_path
    ).values()
    with pytest.raises(
        DataVersionError, match=rf"source 'orders': cannot connect to .*:{port}"
    ) as caught:
        ingest_source(workspace, spec, staging_root=tmp_path / "tmp")
    assert "s3cret" not in str(caught.value)
