"""What ``ctloop serve --auth`` costs a prediction: the same model served with and
without API keys, one-row requests one after another. Prints one JSON line::

    python benchmarks/serve_auth.py                   # 3,000 requests per server
    python benchmarks/serve_auth.py --requests 10000

The model is a logistic regression on a generated table of two columns, registered in
a temporary SQLite workspace with one viewer key. Both servers are ``ctloop serve
bench@champion --no-log-predictions`` (one worker, batching on), one with ``--auth``;
each is warmed with 200 requests first, and then they take requests in turn, so a busy
machine slows both alike. With ``--auth`` a key is looked up once and then
kept (see ``ctloop.serve._auth``), so the figures should differ by the cost of hashing
the key and one dependency call, not by a database query.
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
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

BODY = {"records": [{"x": 0.3, "n": 4}]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ctloop-bench-auth-") as tmp, ExitStack() as stack:
        env, key = _workspace(Path(tmp))
        plain = stack.enter_context(_served(env, [], None, Path(tmp) / "plain"))
        keyed = stack.enter_context(_served(env, ["--auth"], key, Path(tmp) / "keyed"))
        times = _alternate([plain, keyed], args.requests)
    no_auth, auth = (_summary(t) for t in times)
    ratio = auth["p50_ms"] / no_auth["p50_ms"]
    print(json.dumps({"benchmark": "serve_auth", "requests": args.requests,
                      "no_auth": no_auth, "auth": auth, "p50_ratio": round(ratio, 3)}))  # fmt: skip


def _workspace(tmp: Path) -> tuple[dict[str, str], str]:
    from sklearn.linear_model import LogisticRegression

    from ctloop.artifacts import save_value
    from ctloop.artifacts.model import Model
    from ctloop.store._keys import Role
    from ctloop.store.workspace import Workspace

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=300), "n": rng.integers(0, 9, 300)})
    label = (frame.x + 0.1 * frame.n > 0.5).astype(int)
    model = Model.from_estimator(LogisticRegression().fit(frame, label), frame)
    url, artifacts = f"sqlite:///{tmp / 'metadata.db'}", str(tmp / "artifacts")
    with Workspace.open(url, artifacts=artifacts) as ws:
        record = save_value(model, ws.artifacts, staging_root=tmp / "staging")
        ws.metadata.put_artifacts([record])
        version = ws.registry.register_version("bench", record.id).version
        ws.registry.set_alias("bench", "champion", version)
        key = ws.keys.create("bench", Role.VIEWER).secret
    env = {**os.environ, "CTLOOP_STORE_URL": url, "CTLOOP_ARTIFACT_URL": artifacts}
    return env, key


@contextmanager
def _served(
    env: dict[str, str], extra: list[str], key: str | None, cache: Path
) -> Iterator[httpx.Client]:
    """A client of ``ctloop serve bench@champion`` (plus ``extra``), warmed with 200
    predictions; the server stops when the block ends."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    command = [sys.executable, "-m", "ctloop", "serve", "bench@champion", "--port", str(port),
               "--no-log-predictions", "--poll-seconds", "0", "--cache-dir", str(cache),
               *extra]  # fmt: skip
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
            _wait(client, server)
            for _ in range(200):
                client.post("/predict", json=BODY).raise_for_status()
            yield client
    finally:
        server.terminate()
        server.wait(30)


def _alternate(clients: list[httpx.Client], requests: int) -> list[list[float]]:
    """Milliseconds of ``requests`` predictions per client, taken in turn, so a busy
    machine slows every server alike."""
    times: list[list[float]] = [[] for _ in clients]
    for _ in range(requests):
        for client, taken in zip(clients, times):
            start = time.perf_counter()
            client.post("/predict", json=BODY).raise_for_status()
            taken.append((time.perf_counter() - start) * 1000)
    return times


def _summary(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {
        "p50_ms": round(statistics.median(times), 3),
        "p99_ms": round(times[int(len(times) * 0.99) - 1], 3),
        "requests_per_s": round(len(times) / (sum(times) / 1000), 1),
    }


def _wait(client: httpx.Client, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the server stopped before answering")
        try:
            if client.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not come up in 120 s")


if __name__ == "__main__":
    main()
