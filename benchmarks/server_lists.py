"""Paging through runs on ``ctloop server`` with 10,000 runs × 50 metrics, on SQLite and
PostgreSQL.

    python benchmarks/server_lists.py                       # both, 10,000 runs × 50 metrics
    python benchmarks/server_lists.py --runs 2000           # a quicker look
    python benchmarks/server_lists.py --backends postgres   # one backend

For each backend, fills a fresh workspace (each run has 50 metrics of one point and 5
params; PostgreSQL is a throwaway server started from the Debian package's binaries the
way the test suite starts one, see ``tests/fixtures/postgres.py``, and vacuumed and
analyzed once filled, as autovacuum leaves a table that stopped growing), starts
``ctloop server`` on it (one process, 127.0.0.1, an API key required) and walks
the lists a runs page and the web UI make, timing each page as a client sees it
(``httpx``, one kept-alive connection):

- ``list``: ``GET /api/v1/runs?limit=100``, every page by its cursor (100 pages);
- ``list_pipeline``: the same, filtered by one pipeline of ten;
- ``search_sorted``: ``GET /api/v1/runs/search?sort=-metrics.m0&metrics=m0,m1,m2&limit=50``,
  the first 20 pages by offset (a sort by a metric over every run);
- ``search_where``: ``…/runs/search?where=m1 > 0.5&limit=50``, the first 20 pages.

Prints one JSON line with both backends side by side: p50 and p99 per page of each list,
in milliseconds, and whether every p99 is under the goal of 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # the PostgreSQL server is started as the tests start one

GOAL_P99_MS = 50.0
METRICS, PARAMS, PIPELINES = 50, 5, 10


def fill(url: str, artifacts: str, runs: int) -> float:
    """``runs`` succeeded runs with ``METRICS`` metrics and ``PARAMS`` params each, in
    chunks of 500 runs per transaction; seconds it took."""
    from datetime import timedelta

    from ctloop.store.records import MetricRecord, ParamRecord, RunRecord, new_id, utcnow
    from ctloop.store.workspace import Workspace

    t = time.perf_counter()
    start = utcnow()
    with Workspace.open(url, artifacts=artifacts) as workspace:
        store = workspace.metadata
        for first in range(0, runs, 500):
            metrics: list[MetricRecord] = []
            params: list[ParamRecord] = []
            for n in range(first, min(first + 500, runs)):
                at = start + timedelta(seconds=n)
                run = RunRecord(
                    id=new_id(),
                    pipeline=f"pipeline_{n % PIPELINES}",
                    pipeline_version="bench",
                    reference="benchmarks/server_lists.py",
                    parameters={"n": n},
                    trigger="manual",
                    user="bench",
                    host="bench",
                    pid=os.getpid(),
                    status="succeeded",
                    started_at=at,
                    ended_at=at + timedelta(seconds=1),
                )
                store.create_run(run)
                metrics += [
                    MetricRecord(run.id, f"m{k}", ((n * 7919 + k) % 1000) / 1000)
                    for k in range(METRICS)
                ]
                params += [ParamRecord(run.id, f"p{k}", str(n + k)) for k in range(PARAMS)]
            store.log_batch(metrics=metrics, params=params)
        if url.startswith("postgresql"):  # what autovacuum does to a table that stopped growing
            from ctloop.store._sql_engine import engine_for

            with engine_for(url).connect() as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT")
                connection.exec_driver_sql("VACUUM ANALYZE")
    return time.perf_counter() - t


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def bootstrap(env: dict[str, str], cwd: Path) -> str:
    made = subprocess.run(
        [sys.executable, "-m", "ctloop", "server", "bootstrap"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        raise RuntimeError(f"ctloop server bootstrap failed:\n{made.stdout}{made.stderr}")
    return made.stdout.split()[0]


def wait_until_up(client: httpx.Client, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ctloop server exited {proc.returncode}")
        try:
            client.get("/api/v1/runs", params={"limit": 1})
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("ctloop server did not answer in 120 s")


def timed_pages(client: httpx.Client, path: str, params: dict[str, Any], pages: int) -> list[float]:
    """Milliseconds per page of ``path``, following ``next_cursor`` (or the offset)."""
    times, cursor, offset = [], None, 0
    for _ in range(pages):
        query = dict(params)
        if "offset" in params:
            query["offset"] = offset
        elif cursor:
            query["cursor"] = cursor
        t = time.perf_counter()
        answer = client.get(path, params=query)
        times.append((time.perf_counter() - t) * 1000)
        answer.raise_for_status()
        body = answer.json()
        items = body.get("items") or body.get("runs") or []
        if not items:
            raise RuntimeError(f"{path} {query} gave an empty page: {str(body)[:200]}")
        cursor = body.get("next_cursor")
        offset += len(items)
        if not (body.get("next_offset") if "offset" in params else cursor):
            break  # the last page
    return times


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "pages": len(times),
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(p99, 2),
    }


def measure(backend: str, runs: int) -> dict[str, Any]:
    """The figures of one backend: a fresh workspace, filled, then paged through."""
    with tempfile.TemporaryDirectory(prefix="bench-server-lists-") as folder:
        tmp = Path(folder)
        if backend == "sqlite":
            return measure_on(f"sqlite:///{tmp / 'metadata.db'}", tmp, runs)
        from tests.fixtures.postgres import start_postgres_server

        server = start_postgres_server()
        try:
            return measure_on(server.create_database("bench"), tmp, runs)
        finally:
            server.stop()


def measure_on(url: str, tmp: Path, runs: int) -> dict[str, Any]:
    """Fill the workspace at ``url`` (artifacts under ``tmp``), serve it, page through it."""
    artifacts = str(tmp / "artifacts")
    fill_s = fill(url, artifacts, runs)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    env |= {"CTLOOP_STORE_URL": url, "CTLOOP_ARTIFACT_URL": artifacts}
    env["CTLOOP_HOME"] = str(tmp / "home")
    token = bootstrap(env, tmp)
    port = free_port()
    command = [sys.executable, "-m", "ctloop", "server", "--port", str(port)]
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(command, env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60
        ) as client:
            wait_until_up(client, proc)
            pages = max(1, runs // 100)
            figures = {
                "list": timed_pages(client, "/api/v1/runs", {"limit": 100}, pages),
                "list_pipeline": timed_pages(
                    client,
                    "/api/v1/runs",
                    {"limit": 100, "pipeline": "pipeline_3"},
                    pages // PIPELINES or 1,
                ),
                "search_sorted": timed_pages(
                    client,
                    "/api/v1/runs/search",
                    {"sort": "-metrics.m0", "metrics": "m0,m1,m2", "limit": 50, "offset": 0},
                    20,
                ),
                "search_where": timed_pages(
                    client,
                    "/api/v1/runs/search",
                    {"where": "m1 > 0.5", "limit": 50, "offset": 0},
                    20,
                ),
            }
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    results: dict[str, Any] = {name: summary(times) for name, times in figures.items()}
    results["fill_s"] = round(fill_s, 1)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument(
        "--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres"
    )
    args = parser.parse_args(argv)
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = sorted(set(backends) - {"sqlite", "postgres"})
    if unknown or not backends:
        parser.error(f"--backends {args.backends!r}: use sqlite, postgres or both")
    figures = {backend: measure(backend, args.runs) for backend in backends}
    worst = {
        backend: max(v["p99_ms"] for v in results.values() if isinstance(v, dict))
        for backend, results in figures.items()
    }
    line = {
        "benchmark": "server_lists",
        "runs": args.runs,
        "metrics_per_run": METRICS,
        **figures,
        "goal": f"every list's p99 < {GOAL_P99_MS:.0f} ms per page: "
        + ", ".join(
            f"{backend} {'met' if ms < GOAL_P99_MS else 'not met'} (worst {ms} ms)"
            for backend, ms in worst.items()
        ),
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main()
