"""What ``/metrics`` costs a prediction server per request and per scrape, in one process
(its own registry, as ``ctloop serve`` runs with one worker) and in prometheus-client's
multiprocess mode (the files ``ctloop serve --workers N`` shares between its workers).

    python benchmarks/serve_metrics.py                # 200,000 requests
    python benchmarks/serve_metrics.py --requests 50000 --workers 4

Each mode runs in a fresh process (the mode is chosen when prometheus-client is
imported). A request is what the server counts for one lone one-row request: its
counter and latency histogram (``ServingMetrics.observe_request``), the batch-size
histogram and the predicted rows. ``request_us`` is the CPU microseconds of that per
request; ``scrape_ms`` the CPU milliseconds of one ``render`` after the requests, where
in multiprocess mode ``--workers`` processes have each written their files (the scrape
reads them all). Prints one JSON line with both modes side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(requests: int) -> dict[str, float]:
    """This process's CPU time of ``requests`` counted requests and of one scrape."""
    from ctloop.serve._metrics import ServingMetrics

    metrics = ServingMetrics()
    metrics.set_serving("flights", {"primary": 3, "canary": None, "shadow": None})
    for _ in range(1000):  # the label children made
        metrics.observe_request("mlflow", 200, "3", 0.004)
        metrics.batch_size.observe(1)
        metrics.rows.labels("3").inc(1)
    rows = metrics.rows.labels("3")
    start = time.process_time()
    for i in range(requests):
        metrics.batch_size.observe(1)
        rows.inc(1)
        metrics.observe_request("mlflow", 200, "3", 0.001 + (i % 7) * 0.003)
    spent = time.process_time() - start
    metrics.render()
    start, scrapes = time.process_time(), 50
    for _ in range(scrapes):
        metrics.render()
    scrape = (time.process_time() - start) / scrapes
    return {"request_us": round(spent / requests * 1e6, 3), "scrape_ms": round(scrape * 1e3, 3)}


def run_child(requests: int, folder: str | None) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    if folder is not None:
        env["PROMETHEUS_MULTIPROC_DIR"] = folder
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [os.path.join(REPO, "src"), env.get("PYTHONPATH")])
    )
    command = [sys.executable, __file__, "--child", "--requests", str(requests)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=2, help="processes writing files")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.requests)))
        return
    one = run_child(args.requests, None)
    with tempfile.TemporaryDirectory(prefix="ctloop-metrics-bench-") as folder:
        for _ in range(args.workers - 1):  # the other workers' files
            run_child(1000, folder)
        shared = run_child(args.requests, folder)
    line = {
        "benchmark": "serve_metrics",
        "requests": args.requests,
        "workers": args.workers,
        "in_process": one,
        "multiprocess": shared,
        "request_us_added": round(shared["request_us"] - one["request_us"], 3),
        "load1": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(line))


if __name__ == "__main__":
    sys.exit(main())
