"""The web UI of ``ctloop server`` with 10,000 runs × 50 metrics and a 500-step run.

    python benchmarks/ui.py                 # 10,000 runs × 50 metrics, a 500-step run
    python benchmarks/ui.py --runs 2000     # a quicker look

Fills a fresh SQLite workspace (as ``server_lists.py`` does: 50 metrics of one point and
5 params per run), adds a synthetic run of 500 steps (step i reads step i-1's output and
step 0's table), starts ``ctloop server --no-auth`` on 127.0.0.1 and measures:

- ``runs_server_ms``: the server's answer for ``GET /runs`` (the HTML page, newest 50),
  and ``runs_sorted_server_ms`` for ``/runs?sort=-metrics.m0&columns=m0,m1,m2``, p50/p99
  of 20 requests each (``httpx``, one kept-alive connection);
- ``runs_fcp_ms``: first contentful paint of ``/runs`` in headless Chromium (Debian's,
  driven by Playwright), the median of 5 loads, from the browser's performance timings;
- ``js_css_gzip_bytes``: the JS and CSS each page ships, compressed with gzip;
- ``lineage_interactive_ms``: from navigation start until the lineage page of the
  500-step run has drawn its first nodes and their first hop (``#lineage[data-ready]``),
  median of 5 loads.

Goals (the web UI's issue): server < 100 ms, FCP < 500 ms, < 300 KB of JS+CSS per page,
lineage interactive < 1 s. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_lists import fill, free_port

CHROMIUM = "/usr/bin/chromium"
STEPS = 500


def long_run(url: str, artifacts: str, steps: int) -> str:
    """A run of ``steps`` steps in a chain, every step also reading step 0's table."""
    from datetime import timedelta

    from ctloop.store.records import (
        ArtifactRecord,
        EventRecord,
        ExecutionRecord,
        RunRecord,
        new_id,
        utcnow,
    )
    from ctloop.store.workspace import Workspace

    with Workspace.open(url, artifacts=artifacts) as workspace:
        meta, start = workspace.metadata, utcnow()
        end = start + timedelta(seconds=steps)
        run = RunRecord(
            new_id(), "long", "v1", "bench:long", {}, "manual", "bench", "bench",
            os.getpid(), "succeeded", start, ended_at=end,
        )  # fmt: skip
        meta.create_run(run)
        made: list[ArtifactRecord] = []
        events: list[EventRecord] = []
        for i in range(steps):
            execution = ExecutionRecord(
                new_id(), run.id, f"step_{i:03d}", "f", "c", f"k{i}", "succeeded",
                started_at=start, ended_at=start,
            )  # fmt: skip
            meta.create_execution(execution)
            out = ArtifactRecord(new_id(), "Dataset", "m", "1", new_id(), f"mem://{i}", 10, ())
            if made:
                events.append(EventRecord(execution.id, made[-1].id, "input", "previous"))
            if i > 1:
                events.append(EventRecord(execution.id, made[0].id, "input", "table"))
            events.append(EventRecord(execution.id, out.id, "output", "output"))
            made.append(out)
        meta.put_artifacts(made)
        meta.add_events(events)
        return run.id


def wait_until_up(client: httpx.Client, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ctloop server exited {proc.returncode}")
        try:
            client.get("/runs")
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("ctloop server did not answer in 120 s")


def timed(client: httpx.Client, path: str, times: int = 20) -> dict[str, float]:
    found = []
    for _ in range(times):
        t = time.perf_counter()
        client.get(path).raise_for_status()
        found.append((time.perf_counter() - t) * 1000)
    ordered = sorted(found)
    return {"p50": round(statistics.median(ordered), 1), "p99": round(ordered[-1], 1)}


def shipped(client: httpx.Client, path: str) -> int:
    """Bytes of the page's scripts and stylesheets, gzip-compressed."""
    html = client.get(path).text
    assets = re.findall(r'(?:src|href)="(/ui/static/[^"]+\.(?:js|css))"', html)
    return sum(len(gzip.compress(client.get(a).content)) for a in dict.fromkeys(assets))


def browser_timings(base: str, long_run_id: str) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{base}/runs")  # warm the server and the browser once
        fcp, lineage = [], []
        for _ in range(5):
            page.goto(f"{base}/runs", wait_until="load")
            fcp.append(
                page.evaluate(
                    "() => new Promise(done => new PerformanceObserver((l, o) => {"
                    " const e = l.getEntries().find(x => x.name === 'first-contentful-paint');"
                    " if (e) { o.disconnect(); done(e.startTime); } })"
                    ".observe({type: 'paint', buffered: true}))"
                )
            )
            page.goto(f"{base}/lineage/{long_run_id}")
            page.wait_for_selector("#lineage[data-ready]")
            lineage.append(page.evaluate("performance.now()"))
        browser.close()
    return {
        "runs_fcp_ms": round(statistics.median(fcp), 1),
        "lineage_interactive_ms": round(statistics.median(lineage), 1),
    }


def measure(runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as folder:
        tmp = Path(folder)
        url, artifacts = f"sqlite:///{tmp / 'metadata.db'}", str(tmp / "artifacts")
        fill_s = fill(url, artifacts, runs)
        long_run_id = long_run(url, artifacts, STEPS)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
        env |= {"CTLOOP_STORE_URL": url, "CTLOOP_ARTIFACT_URL": artifacts}
        env["CTLOOP_HOME"] = str(tmp / "home")
        port = free_port()
        command = [sys.executable, "-m", "ctloop", "server", "--no-auth", "--port", str(port)]
        log = open(tmp / "server.log", "wb")  # noqa: SIM115 (closed below)
        proc = subprocess.Popen(command, env=env, cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                wait_until_up(client, proc)
                figures: dict[str, Any] = {
                    "runs_server_ms": timed(client, "/runs"),
                    "runs_sorted_server_ms": timed(
                        client, "/runs?sort=-metrics.m0&columns=m0,m1,m2"
                    ),
                    "js_css_gzip_bytes": {
                        "runs": shipped(client, "/runs"),
                        "run": shipped(client, f"/runs/{long_run_id}"),
                        "lineage": shipped(client, f"/lineage/{long_run_id}"),
                    },
                }
            figures |= browser_timings(base, long_run_id)
        finally:
            proc.terminate()
            proc.wait(30)
            log.close()
    return {
        "benchmark": "ui",
        "backend": "sqlite",
        "runs": runs,
        "metrics_per_run": 50,
        "lineage_steps": STEPS,
        "fill_s": round(fill_s, 1),
        **figures,
        "goals_met": figures["runs_server_ms"]["p50"] < 100
        and figures["runs_fcp_ms"] < 500
        and max(figures["js_css_gzip_bytes"].values()) < 300_000
        and figures["lineage_interactive_ms"] < 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    print(json.dumps(measure(args.runs)))


if __name__ == "__main__":
    main()
