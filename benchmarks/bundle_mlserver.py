"""A bundle served by MLServer with the runtime its ``mlserver/model-settings.json``
names, answering a V2 request with the same predictions as ``ctloop serve``. Prints one
JSON line::

    python benchmarks/bundle_mlserver.py        # first run: minutes (pip installs, once)

Trains the flights example's model (as ``bundle_fresh_venv.py`` does), writes
``ctloop bundle flights@champion``, and installs MLServer 1.7.1 with the bundle's
``requirements.txt`` (ctloop from this checkout) into ``.bench/mlserver-bundle-venv``
(made once, reused while the requirements stay the same). Then starts
``mlserver start BUNDLE/mlserver`` from that venv and ``ctloop serve BUNDLE`` from this
one, sends the same Open Inference Protocol request (one tensor per column, 50 rows, no
content types) to both on 127.0.0.1 and compares the answers. MLServer's own V2 server answers with its
pandas codec (one ``prediction`` output); ctloop with ``predictions``.

Then the same for a model with a :class:`~ctloop.artifacts.model.Transform` (the test
suite's ``tests.serve._transforms.Renaming``, carried in the bundle's ``code/``): raw
fields in, the transform's ``probability`` and ``late`` out of both servers.
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
from typing import Any

import httpx
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fixtures.venvs import ensure_venv  # noqa: E402

MLSERVER = ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop<0.22"]
ROWS = 50


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ctloop-bundle-mlserver-"))
    bundle, rows = build_flights_bundle(tmp)
    requirements = [
        line
        for line in (bundle / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    started = time.perf_counter()
    python = ensure_venv(
        "mlserver-bundle-venv", [*MLSERVER, *requirements], "import mlserver, ctloop.bundle"
    )
    install_s = time.perf_counter() - started
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CTLOOP_", "PYTHON"))}
    env["CTLOOP_HOME"] = str(tmp / "scratch")
    plain = compare(python, bundle, v2_request(rows), env, tmp, {"predictions": "prediction"})
    transformed_bundle, raw = build_transform_bundle(tmp)
    outputs = {"probability": "probability", "late": "late"}
    transformed = compare(python, transformed_bundle, v2_request(raw), env, tmp, outputs)
    print(
        json.dumps(
            {
                "benchmark": "bundle_mlserver",
                "mlserver": "1.7.1",
                "implementation": json.loads(
                    (bundle / "mlserver" / "model-settings.json").read_text()
                )["implementation"],
                "install_s": round(install_s, 1),
                "flights": plain,
                "transform": transformed,
            }
        )
    )


def compare(
    python: Path,
    bundle: Path,
    body: dict[str, Any],
    env: dict[str, str],
    tmp: Path,
    names: dict[str, str],
) -> dict[str, Any]:
    """Serve ``bundle`` with MLServer and with ctloop, send both ``body``; compare each
    ctloop output with MLServer's output of the name ``names`` maps it to."""
    http, grpc, metrics = free_ports(3)
    mlserver_env = env | {
        "MLSERVER_HOST": "127.0.0.1",
        "MLSERVER_HTTP_PORT": str(http),
        "MLSERVER_GRPC_PORT": str(grpc),
        "MLSERVER_METRICS_PORT": str(metrics),
    }
    mlserver = [str(python.parent / "mlserver"), "start", str(bundle / "mlserver")]
    name = json.loads((bundle / "bundle.json").read_text())["model"]
    theirs, mlserver_start_s = answer(mlserver, mlserver_env, tmp, http, body, name, "mlserver")
    port = free_ports(1)[0]
    ctloop = [sys.executable, "-m", "ctloop", "serve", str(bundle), "--port", str(port)]
    ours, ctloop_start_s = answer(ctloop, env, tmp, port, body, name, "ctloop")
    rows = len(body["inputs"][0]["data"])
    diffs, match = [], True
    for mine_name, their_name in names.items():
        mine, their = tensor(ours, mine_name), tensor(theirs, their_name)
        match = match and len(mine) == len(their) == rows
        diffs += [abs(a - b) for a, b in zip(mine, their, strict=False)]
    return {
        "rows": rows,
        "mlserver_start_s": round(mlserver_start_s, 1),
        "ctloop_start_s": round(ctloop_start_s, 1),
        "ctloop_outputs": [o["name"] for o in ours["outputs"]],
        "mlserver_outputs": [o["name"] for o in theirs["outputs"]],
        "max_abs_diff": max(diffs),
        "predictions_match": match and max(diffs) < 1e-9,
    }


def build_flights_bundle(tmp: Path) -> tuple[Path, pd.DataFrame]:
    """The flights model's bundle (ctloop from this checkout) and rows to predict."""
    sys.path.insert(0, str(REPO / "examples" / "flights"))
    from pipeline import features, fit_model  # type: ignore[import-not-found]

    from ctloop.artifacts import save_value
    from ctloop.artifacts.model import Model
    from ctloop.bundle import build_bundle
    from ctloop.store.workspace import Workspace

    data = pd.read_parquet(REPO / "examples" / "flights" / "data" / "flights.parquet")
    train = data[pd.to_datetime(data["date"]).dt.month <= 2]
    X, _ = features(train)
    model = Model.from_estimator(fit_model(train), X)
    with Workspace.open(f"sqlite:///{tmp / 'ws.db'}", artifacts=str(tmp / "art")) as ws:
        record = save_value(model, ws.artifacts, staging_root=tmp / "staging")
        ws.metadata.put_artifacts([record])
        version = ws.registry.register_version("flights", record.id)
        ws.registry.set_alias("flights", "champion", version.version)
        build_bundle(ws, "flights@champion", tmp / "bundle", ctloop_requirement=str(REPO))
    return tmp / "bundle", X.head(ROWS)


def build_transform_bundle(tmp: Path) -> tuple[Path, pd.DataFrame]:
    """The bundle of a model with a transform, and raw rows for it."""
    from ctloop.bundle import build_bundle
    from ctloop.store.workspace import Workspace
    from tests.serve import _models, _transforms

    folder = tmp / "with-transform"
    folder.mkdir()
    with Workspace.open(f"sqlite:///{folder / 'ws.db'}", artifacts=str(folder / "art")) as ws:
        version = _models.register(ws, "delays", _transforms.transformed(), folder)
        ws.registry.set_alias("delays", "champion", version)
        build_bundle(ws, "delays@champion", folder / "bundle", ctloop_requirement=str(REPO))
    return folder / "bundle", pd.DataFrame(_transforms.RAW)


def v2_request(rows: pd.DataFrame) -> dict[str, Any]:
    """One tensor per column, text as BYTES without a content type: the bundle's
    model-settings.json tells MLServer to decode those as text."""
    inputs = []
    for name in rows.columns:
        column = rows[name]
        if pd.api.types.is_bool_dtype(column):
            datatype, values = "BOOL", [bool(v) for v in column]
        elif pd.api.types.is_integer_dtype(column):
            datatype, values = "INT64", [int(v) for v in column]
        elif pd.api.types.is_float_dtype(column):
            datatype, values = "FP64", [float(v) for v in column]
        else:
            datatype, values = "BYTES", [str(v) for v in column]
        tensor: dict[str, Any] = {
            "name": str(name),
            "shape": [len(values)],
            "datatype": datatype,
            "data": values,
        }
        inputs.append(tensor)
    return {"inputs": inputs}


def answer(
    command: list[str],
    env: dict[str, str],
    tmp: Path,
    port: int,
    body: Any,
    model: str,
    name: str,
) -> tuple[dict[str, Any], float]:
    """Start ``command``, wait for V2 readiness of ``model`` on ``port``, send ``body``;
    its answer."""
    log = tmp / f"{model}-{name}.log"
    started = time.perf_counter()
    with log.open("wb") as out:
        server = subprocess.Popen(command, cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{name} did not come up:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/v2/models/{model}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        start_s = time.perf_counter() - started
        reply = httpx.post(f"{url}/v2/models/{model}/infer", json=body, timeout=60)
        if reply.status_code != 200:
            raise SystemExit(f"{name} answered {reply.status_code}: {reply.text[:2000]}")
        return reply.json(), start_s
    finally:
        server.terminate()
        server.wait(60)


def tensor(document: dict[str, Any], name: str) -> list[float]:
    for output in document["outputs"]:
        if output["name"] == name:
            return [float(v) for v in output["data"]]
    raise SystemExit(f"no output {name!r} in {document}")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


if __name__ == "__main__":
    main()
