"""A SQLite workspace of 10,000 succeeded runs × 50 metrics and 2 params, written in a
few seconds: each table of the store's schema filled by one ``INSERT … SELECT`` over a
recursive row generator, so SQLite makes the rows, not Python.

Run ``n`` (0 = oldest) is of pipeline ``pipeline_{n % 5}``, started ``n`` seconds after
:data:`START` and took ``1 + n % 7`` seconds; its metric ``m{k}`` is :func:`metric`,
logged once (no step) at the run's end, its parameters are ``n`` and ``fold = n % 3`` (and its logged params ``p0 = n``, ``p1 = n % 3``). The tests
compute what a page must show from the same formulas.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ctloop.store.workspace import Workspace

RUNS = 10_000
METRICS = 50
PIPELINES = 5
START = datetime(2026, 1, 1, tzinfo=UTC)


def metric(n: int, k: int) -> float:
    """The value of metric ``m{k}`` of run ``n``."""
    return ((n * 7919 + k * 104_729) % 1000) / 1000


def run_id(n: int) -> str:
    """Run ``n``'s id: 32 hex digits, in the order of the runs (so the inserts append to
    every index), whose first 8 differ between runs."""
    return f"{n:08x}{(n * 2654435761) % 2**32:08x}{0:016x}"


_TIME = "strftime('%Y-%m-%d %H:%M:%S', '2026-01-01 00:00:00', '+' || {} || ' seconds') || '.000000'"
_ID = "printf('%08x%08x%016x', n, (n * 2654435761) % 4294967296, 0)"
_NUMBERS = "WITH RECURSIVE runs_n(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM runs_n WHERE n < {})"
_KEYS = ", keys_k(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM keys_k WHERE k < {})"


def fill(workspace: Workspace, url: str) -> None:
    """Write the runs, their params and metrics (and each run's latest metric values) into
    the empty SQLite workspace ``workspace`` at ``url``."""
    import sqlite3

    workspace.metadata.list_runs(limit=1)  # the schema is created on first use
    numbers = _NUMBERS.format(RUNS - 1)
    keys = _KEYS.format(METRICS - 1)
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        conn.execute("PRAGMA synchronous = OFF")  # a throwaway database
        conn.execute("PRAGMA cache_size = -262144")  # 256 MB: the indexes stay in memory
        conn.execute(
            f"{numbers} INSERT INTO runs (id, pipeline, pipeline_version, reference, parameters, "
            '"trigger", user, host, pid, status, started_at, ended_at, executor) '
            f"SELECT {_ID}, 'pipeline_' || (n % {PIPELINES}), 'v1', 'bulk.py:p', "
            "json_object('n', n, 'fold', n % 3), 'manual', 'bulk', 'bulk', 1, 'succeeded', "
            f"{_TIME.format('n')}, {_TIME.format('(n + 1 + n % 7)')}, 'local' FROM runs_n"
        )
        conn.execute(
            f"{numbers}, keys_k(k) AS (SELECT 0 UNION ALL SELECT 1) "
            'INSERT INTO params (run_id, execution_id, "key", value) '
            f"SELECT {_ID}, '', 'p' || k, CASE k WHEN 0 THEN CAST(n AS TEXT) "
            "ELSE CAST(n % 3 AS TEXT) END FROM runs_n, keys_k"
        )
        # the runs' rowids are 1 + n (inserted in order): their metrics are read off them
        value = "(((runs.rowid - 1) * 7919 + k * 104729) % 1000) / 1000.0"
        conn.execute(
            f"WITH RECURSIVE {keys.removeprefix(', ')} INSERT INTO metrics (run_id, execution_id, "
            f"\"key\", value, step, timestamp) SELECT id, NULL, 'm' || k, {value}, NULL, ended_at "
            "FROM runs, keys_k ORDER BY runs.rowid, k"
        )
        conn.execute(
            'INSERT INTO latest_metrics (run_id, "key", value, own, step, timestamp) '
            'SELECT run_id, "key", value, 1, 0, timestamp FROM metrics'
        )


def many_runs_workspace(folder: Path) -> Workspace:
    """A new workspace in ``folder`` holding the runs."""
    url = f"sqlite:///{folder / 'metadata.db'}"
    workspace = Workspace.open(url, artifacts=str(folder / "artifacts"))
    fill(workspace, url)
    return workspace
