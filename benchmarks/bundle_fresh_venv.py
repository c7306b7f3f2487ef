"""A bundle of the flights model, installed into a fresh virtual environment and served
from the bundle alone. Prints one JSON line::

    python benchmarks/bundle_fresh_venv.py            # about 2-5 minutes: pip installs

Trains the flights example's model (``examples/flights/pipeline.py:fit_model``, gradient
boosted trees, on the first two months of ``examples/flights/data/flights.parquet``),
registers it in a temporary workspace, writes ``ctloop bundle flights@champion``, then
in a new ``python -m venv`` installs ctloop from this checkout and the bundle's
``requirements.txt``, starts the venv's ``ctloop serve BUNDLE`` from an empty folder,
and predicts over HTTP on 127.0.0.1. Reports the bundle's size (without dependencies),
the install and start-up times, and whether the served predictions match the model's.
The peer figure is MLflow's: ``mlflow models build-docker`` builds an image of about
3 GB for a 1 kB model (mlflow#5927).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    sys.path.insert(0, str(REPO / "examples" / "flights"))
    from pipeline import features, fit_model  # type: ignore[import-not-found]

    from ctloop.artifacts import save_value
    from ctloop.artifacts.model import Model
    from ctloop.bundle import build_bundle
    from ctloop.store.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="ctloop-bundle-bench-"))
    data = pd.read_parquet(REPO / "examples" / "flights" / "data" / "flights.parquet")
    train = data[pd.to_datetime(data["date"]).dt.month <= 2]
    X, _ = features(train)
    model = Model.from_estimator(fit_model(train), X)
    rows = X.head(50)
    expected = [float(p) for p in model.predict(rows)]
    with Workspace.open(f"sqlite:///{tmp / 'ws.db'}", artifacts=str(tmp / "art")) as ws:
        record = save_value(model, ws.artifacts, staging_root=tmp / "staging")
        ws.metadata.put_artifacts([record])
        version = ws.registry.register_version("flights", record.id)
        ws.registry.set_alias("flights", "champion", version.version)
        info = build_bundle(ws, "flights@champion", tmp / "bundle", ctloop_requirement=str(REPO))
    venv = tmp / "venv"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "-r", str(tmp / "bundle" / "requirements.txt")], check=True)
    installed = time.perf_counter() - started
    predictions, start_s = serve_and_predict(venv, tmp, rows)
    deps = sum(p.stat().st_size for p in (venv / "lib").rglob("*") if p.is_file())
    print(
        json.dumps(
            {
                "benchmark": "bundle_fresh_venv",
                "bundle_files": len(info.files),
                "bundle_mb": round(info.size / 1e6, 3),
                "model_mb": round(record.size / 1e6, 3),
                "deps_mb": round(deps / 1e6, 1),
                "install_s": round(installed, 1),
                "serve_start_s": round(start_s, 1),
                "rows": len(rows),
                "predictions_match": all(
                    abs(a - b) < 1e-9 for a, b in zip(predictions, expected, strict=True)
                ),
                "peer": "mlflow models build-docker: ~3 GB image for a 1 kB model (mlflow#5927)",
            }
        )
    )


def serve_and_predict(venv: Path, tmp: Path, rows: pd.DataFrame) -> tuple[list[float], float]:
    """Start the venv's ``ctloop serve BUNDLE`` in an empty folder; predict ``rows``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    empty = tmp / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CTLOOP_", "PYTHON"))}
    env["CTLOOP_HOME"] = str(tmp / "scratch")
    command = [str(venv / "bin" / "ctloop"), "serve", str(tmp / "bundle"), "--port", str(port)]
    started = time.perf_counter()
    server = subprocess.Popen(command, cwd=empty, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit(f"ctloop serve exited {server.returncode}")
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        start_s = time.perf_counter() - started
        body = {"records": json.loads(rows.astype(object).to_json(orient="records"))}
        answer = httpx.post(f"{url}/predict", json=body, timeout=30)
        answer.raise_for_status()
        return [float(p) for p in answer.json()["predictions"]], start_s
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
