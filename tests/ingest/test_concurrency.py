"""Ingesters racing and ingesters killed: several processes ingesting one source at once
store each span (and each row) once, on SQLite and on a real PostgreSQL, and kill -9 in
the middle of an ingest leaves the watermark where it was and no half version.

The racers are spawned processes released together by a barrier; their workers are
module-level functions so that the children can import them."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import timedelta
from multiprocessing.managers import SyncManager
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

import pytest

from ctloop.errors import NotFoundError
from ctloop.ingest import IngestResult, ingest_source, parse_sources
from ctloop.store.workspace import Workspace
from tests.ingest.test_ingest import START, land

RACERS = 4
REPO = Path(__file__).resolve().parents[2]


def _sources(root: Path) -> dict[str, Any]:
    return parse_sources(
        {
            "flights": {"files": "landing/date={YYYY}-{MM}-{DD}/*.parquet", "expect": "daily"},
            "orders": {
                "sql": "SELECT * FROM orders WHERE id > :watermark ORDER BY id",
                "url": "sqlite:///shop.db",
                "cursor": "id",
                "batch_rows": 500,
            },
        },
        root,
    )


def ingest_worker(barrier: Any, store_url: str, root: str, source: str) -> dict[str, Any]:
    """Ingest ``source`` once, released at the same moment as the other racers."""
    with Workspace.open(store_url, artifacts=str(Path(root) / "artifacts")) as workspace:
        workspace.metadata.list_data_versions()  # connect and migrate before the race
        spec = _sources(Path(root))[source]
        barrier.wait(timeout=120)
        result: IngestResult = ingest_source(workspace, spec, staging_root=Path(root) / "tmp")
        return {"new": result.new_spans, "rows": result.rows, "version": result.version}


@pytest.fixture(scope="module")
def processes() -> Iterator[tuple[Pool, SyncManager]]:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(RACERS) as pool:
        yield pool, manager


def race(processes: tuple[Pool, SyncManager], *args: str) -> list[dict[str, Any]]:
    pool, manager = processes
    barrier = manager.Barrier(RACERS)
    jobs = [(barrier, *args)] * RACERS
    return pool.starmap_async(ingest_worker, jobs).get(timeout=300)


def make_shop(root: Path, rows: int, first: int = 1) -> None:
    with sqlite3.connect(root / "shop.db") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER, amount REAL)")
        conn.executemany(
            "INSERT INTO orders VALUES (?, ?)", [(i, i / 2) for i in range(first, first + rows)]
        )
    conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    return str(request.getfixturevalue("fresh_postgres_url"))


def stored_spans(store_url: str, root: Path, name: str) -> list[list[str]]:
    """The spans each version of ``name`` added, version by version, and checks that no
    span was stored twice (its version would be 2)."""
    with Workspace.open(store_url, artifacts=str(root / "artifacts")) as workspace:
        added, seen = [], set()
        for version in workspace.metadata.list_data_versions(name):
            record = workspace.metadata.get_artifact(version.artifact_id)
            (manifest,) = [f for f in record.files if f.path == "_spans.json"]
            spans = json.loads(workspace.artifacts.get_bytes(manifest.digest))["spans"]
            assert all(entry["version"] == 1 for entry in spans.values())
            added.append(sorted(set(spans) - seen))
            seen |= set(spans)
        return added


def test_racing_ingesters_store_each_span_once(
    processes: tuple[Pool, SyncManager], store_url: str, tmp_path: Path
) -> None:
    for offset in range(20):
        land(tmp_path / "landing", START + timedelta(days=offset))
    results = race(processes, store_url, str(tmp_path), "flights")
    reported = sorted(span for r in results for span in r["new"])
    assert reported == [(START + timedelta(days=d)).isoformat() for d in range(20)]
    assert [len(spans) for spans in stored_spans(store_url, tmp_path, "flights")] == [20]

    for offset in range(20, 23):
        land(tmp_path / "landing", START + timedelta(days=offset))
    results = race(processes, store_url, str(tmp_path), "flights")
    assert sorted(span for r in results for span in r["new"]) == [
        (START + timedelta(days=d)).isoformat() for d in range(20, 23)
    ]
    assert [len(spans) for spans in stored_spans(store_url, tmp_path, "flights")] == [20, 3]


def test_racing_ingesters_of_a_sql_source_store_each_row_once(
    processes: tuple[Pool, SyncManager], store_url: str, tmp_path: Path
) -> None:
    from ctloop.artifacts._data_versions import get_data_version
    from ctloop.ingest import read_spans

    make_shop(tmp_path, 3000)
    first = race(processes, store_url, str(tmp_path), "orders")
    make_shop(tmp_path, 1000, first=3001)
    second = race(processes, store_url, str(tmp_path), "orders")
    assert sorted(r["rows"] or 0 for r in first) == [0, 0, 0, 3000]
    assert sorted(r["rows"] or 0 for r in second) == [0, 0, 0, 1000]
    with Workspace.open(store_url, artifacts=str(tmp_path / "artifacts")) as workspace:
        folder = get_data_version(
            "orders",
            tmp_path / "checkout",
            metadata=workspace.metadata,
            artifacts=workspace.artifacts,
            cache_dir=tmp_path / "cache",
        )
    ids = read_spans(folder, "all")["id"]
    assert len(ids) == 4000 and ids.is_unique


# -- kill -9 ---------------------------------------------------------------------------
INGEST_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ctloop.ingest import ingest_source
    from ctloop.store.workspace import Workspace
    from tests.ingest.test_concurrency import _sources

    root = Path(sys.argv[1])
    with Workspace.open(f"sqlite:///{root / 'meta.db'}", artifacts=str(root / "artifacts")) as ws:
        print(ingest_source(ws, _sources(root)[sys.argv[2]], staging_root=root / "tmp").summary())
    """
)


def ingest_in_subprocess(root: Path, source: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-c", INGEST_SCRIPT, str(root), source],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def kill_when(proc: subprocess.Popen[str], started: Any) -> None:
    """SIGKILL ``proc`` as soon as ``started()`` is true (it is mid-ingest then)."""
    deadline = time.monotonic() + 60
    while not started():
        assert proc.poll() is None, f"the ingest ended before it was killed: {proc.communicate()}"
        assert time.monotonic() < deadline, "the ingest never started writing"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def latest(root: Path, name: str) -> tuple[int, dict[str, Any]] | None:
    with Workspace.open(f"sqlite:///{root / 'meta.db'}", artifacts=str(root / "artifacts")) as ws:
        try:
            version = ws.metadata.get_data_version(name)
        except NotFoundError:
            return None
        record = ws.metadata.get_artifact(version.artifact_id)
        (manifest,) = [f for f in record.files if f.path == "_spans.json"]
        return version.version, json.loads(ws.artifacts.get_bytes(manifest.digest))


def test_kill_9_mid_sql_ingest_leaves_the_watermark_and_no_half_version(tmp_path: Path) -> None:
    make_shop(tmp_path, 100)
    with Workspace.open(
        f"sqlite:///{tmp_path / 'meta.db'}", artifacts=str(tmp_path / "artifacts")
    ) as workspace:
        spec = _sources(tmp_path)["orders"]
        ingest_source(workspace, spec, staging_root=tmp_path / "tmp")
    before = latest(tmp_path, "orders")
    assert before is not None and before[1]["watermark"] == {"type": "int", "value": "100"}

    make_shop(tmp_path, 60_000, first=101)
    proc = ingest_in_subprocess(tmp_path, "orders")
    kill_when(proc, lambda: any((tmp_path / "tmp").glob("ingest-*/part-00000.parquet")))
    assert latest(tmp_path, "orders") == before  # same version, same watermark

    again = ingest_in_subprocess(tmp_path, "orders")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert "60,000 new row(s)" in out
    after = latest(tmp_path, "orders")
    assert after is not None and after[0] == 2
    assert after[1]["watermark"] == {"type": "int", "value": "60100"}


def test_kill_9_mid_file_ingest_leaves_no_version(tmp_path: Path) -> None:
    for offset in range(120):
        land(tmp_path / "landing", START + timedelta(days=offset), rows=500)
    blobs = tmp_path / "artifacts"
    proc = ingest_in_subprocess(tmp_path, "flights")
    kill_when(proc, lambda: blobs.is_dir() and sum(1 for p in blobs.rglob("*") if p.is_file()) > 3)
    assert latest(tmp_path, "flights") is None

    again = ingest_in_subprocess(tmp_path, "flights")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert "version 1, 120 new span(s)" in out
    after = latest(tmp_path, "flights")
    assert after is not None and after[0] == 1 and len(after[1]["spans"]) == 120
