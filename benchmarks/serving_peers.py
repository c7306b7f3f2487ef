"""BentoML and MLServer serving the flights pipeline, for ``benchmarks/serving.py
--with-peers`` (standard library only here; each peer runs in its own ``.bench/`` venv).

Each peer serves the same fitted pipeline (pickled by ``serving.py`` with the
scikit-learn version it was fitted with; the venvs pin that version) in one worker, with
its own protocol, its adaptive batching on (at most 32 rows, as ctloop) and off:

- ``bentoml`` / ``bentoml_nobatch``: BentoML 1.4.40, ``bentoml serve`` of a service whose
  ``predict`` API takes ``{"records": [row]}`` and returns the positive-class
  probabilities, ``batchable=True, max_batch_size=32, max_latency_ms=1000`` or not
  batchable;
- ``mlserver`` / ``mlserver_inprocess``: MLServer 1.7.1 with ``mlserver-sklearn``
  (``predict_fn: predict_proba``), an Open Inference Protocol request with the pandas
  codec (one input per column), adaptive batching on (``max_batch_size: 32``,
  ``max_batch_time: 0.002``) in its default inference worker process, or off with
  inference in the server process (``parallel_workers: 0``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from peers import ensure_venv

BENTOML = ["bentoml==1.4.40", "pandas"]
MLSERVER = ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop<0.22"]
"""MLServer 1.7.1's inference workers die at start with uvloop 0.22 and later."""

BENTO_SERVICE = """
import os, pickle
import bentoml

MODEL = os.environ["FLIGHTS_MODEL"]
BATCH = os.environ.get("FLIGHTS_BATCH") == "1"


@bentoml.service(workers=1)
class Flights:
    def __init__(self) -> None:
        import pandas as pd
        self.pd = pd
        with open(MODEL, "rb") as f:
            self.model = pickle.load(f)["model"]

    def _proba(self, records: list) -> list:
        return self.model.predict_proba(self.pd.DataFrame(records))[:, 1].tolist()

    if BATCH:
        @bentoml.api(batchable=True, max_batch_size=32, max_latency_ms=1000)
        def predict(self, records: list) -> list:
            return self._proba(records)
    else:
        @bentoml.api
        def predict(self, records: list) -> list:
            return self._proba(records)
"""


def peer_venvs(sklearn_version: str) -> dict[str, Path]:
    """The Python of each peer's venv (installed on first use)."""
    pin = f"scikit-learn=={sklearn_version}"
    return {
        "bentoml": ensure_venv("bentoml-venv", [*BENTOML, pin], "import bentoml, sklearn"),
        "mlserver": ensure_venv(
            "mlserver-venv", [*MLSERVER, pin], "import mlserver, mlserver_sklearn, sklearn"
        ),
    }


def bentoml_setup(tmp: Path, pickled: Path, batch: bool) -> tuple[Path, dict[str, str]]:
    """The service folder and the environment that selects the model and batching."""
    folder = tmp / f"bento-{'batch' if batch else 'nobatch'}"
    folder.mkdir(exist_ok=True)
    (folder / "service.py").write_text(BENTO_SERVICE)
    env = {
        "FLIGHTS_MODEL": str(pickled),
        "FLIGHTS_BATCH": "1" if batch else "0",
        "BENTOML_HOME": str(tmp / "bentoml-home"),
        "BENTOML_DO_NOT_TRACK": "True",
        "DO_NOT_TRACK": "1",
    }
    return folder, env


def bentoml_command(python: Path, port: int) -> list[str]:
    """``bentoml serve service:Flights`` on ``port`` (run in the service folder)."""
    serve = ["serve", "service:Flights", "--host", "127.0.0.1", "--port", str(port)]
    return [str(python.parent / "bentoml"), *serve]


def bentoml_bodies(records: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps({"records": [row]}).encode() for row in records]


def mlserver_setup(
    tmp: Path, model_joblib: Path, ports: tuple[int, int, int], *, batch: bool
) -> Path:
    """An MLServer folder (settings, model settings) serving ``model_joblib``."""
    folder = tmp / f"mlserver-{'batch' if batch else 'inprocess'}"
    folder.mkdir(exist_ok=True)
    http, grpc, metrics = ports
    settings: dict[str, Any] = {
        "host": "127.0.0.1",
        "http_port": http,
        "grpc_port": grpc,
        "metrics_port": metrics,
        "debug": False,
    }
    model: dict[str, Any] = {
        "name": "flights",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(model_joblib), "extra": {"predict_fn": "predict_proba"}},
    }
    if batch:
        model |= {"max_batch_size": 32, "max_batch_time": 0.002}
    else:
        settings["parallel_workers"] = 0
    (folder / "settings.json").write_text(json.dumps(settings))
    (folder / "model-settings.json").write_text(json.dumps(model))
    return folder


def mlserver_command(python: Path, folder: Path) -> list[str]:
    return [str(python.parent / "mlserver"), "start", str(folder)]


def mlserver_bodies(records: list[dict[str, Any]]) -> list[bytes]:
    """Open Inference Protocol requests, one row, decoded by MLServer's pandas codec."""
    bodies = []
    for row in records:
        inputs: list[dict[str, Any]] = []
        for name, value in row.items():
            if isinstance(value, str):
                spec = {"datatype": "BYTES", "parameters": {"content_type": "str"}}
            elif isinstance(value, int):
                spec = {"datatype": "INT64"}
            else:
                spec = {"datatype": "FP64"}
            inputs.append({"name": name, "shape": [1], "data": [value], **spec})
        request = {"parameters": {"content_type": "pd"}, "inputs": inputs}
        bodies.append(json.dumps(request).encode())
    return bodies


def probability(name: str, answer: Any) -> float:
    """The positive-class probability in a peer's answer to a one-row request."""
    if name.startswith("mlserver"):
        data = answer["outputs"][0]["data"]
        return float(data[-1])
    value = answer[0]
    return float(value[-1] if isinstance(value, list) else value)
