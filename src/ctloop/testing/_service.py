"""Service tests: the model's prediction server answers the native, MLflow and KServe V2
protocols with its signature, for the given rows, within a latency budget.

>>> with serve_model(model, name="churn") as served:  # doctest: +SKIP
...     check_service(served.url, rows, model_name="churn", latency_budget_ms=200)
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctloop.testing._failures import CheckFailed
from ctloop.testing._predict import as_frame

__all__ = ["ServedModel", "check_service", "serve_model"]


@dataclass(frozen=True)
class ServedModel:
    """A prediction server running for a test: its ``url`` and the ``name`` it serves."""

    url: str
    name: str


@contextmanager
def serve_model(
    model: Any, *, name: str = "model", start_timeout: float = 30.0
) -> Iterator[ServedModel]:
    """Serve ``model`` (a ctloop ``Model``) with ``ctloop serve``'s app on 127.0.0.1 and
    a free port, from a private temporary workspace, until the block ends."""
    import uvicorn

    from ctloop.artifacts import save_value
    from ctloop.serve._app import create_app
    from ctloop.serve._config import ServeConfig
    from ctloop.serve._server import uvicorn_options
    from ctloop.store.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="ctloop-service-test-") as tmp:
        root = Path(tmp)
        url, artifacts = f"sqlite:///{root / 'metadata.db'}", str(root / "artifacts")
        workspace = Workspace.open(url, artifacts=artifacts)
        try:
            record = save_value(model, workspace.artifacts, staging_root=root / "staging")
            workspace.metadata.put_artifacts([record])
            version = workspace.registry.register_version(name, record.id).version
        finally:
            workspace.close()
        config = ServeConfig(
            f"{name}@{version}",
            store_url=url,
            artifact_url=artifacts,
            cache_dir=str(root / "cache"),
            poll_seconds=0,
            log_predictions=False,
        )
        options = {**uvicorn_options("127.0.0.1", 0), "log_level": "warning"}
        server = uvicorn.Server(uvicorn.Config(create_app(config), **options))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + start_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError(f"the prediction server for {name!r} did not start")
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield ServedModel(f"http://127.0.0.1:{port}", name)
        finally:
            server.should_exit = True
            thread.join(30)


def check_service(
    url: str,
    rows: Any,
    *,
    model_name: str,
    latency_budget_ms: float = 500.0,
    expected: Any = None,
    tolerance: float = 1e-6,
    headers: dict[str, str] | None = None,
) -> dict[str, float]:
    """Post ``rows`` to the server at ``url`` on each protocol (``/predict``,
    ``/invocations``, ``/v2/models/NAME/infer``) and raise :class:`CheckFailed` when one
    does not answer 200 with one prediction per row, when the V2 metadata does not list
    the rows' columns as inputs, when protocols disagree (or differ from ``expected``),
    or when an answer takes longer than ``latency_budget_ms``. Returns each protocol's
    latency in milliseconds."""
    import httpx

    frame = as_frame(rows)
    records = frame.to_dict(orient="records")
    bodies = {
        "native": ("/predict", {"records": records}),
        "mlflow": (
            "/invocations",
            {"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}},
        ),
        "v2": (f"/v2/models/{model_name}/infer", {"inputs": _v2_inputs(frame)}),
    }
    latencies, answers = {}, {}
    with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
        _check_signature(client, model_name, list(frame.columns))
        for protocol, (path, body) in bodies.items():
            client.post(path, json=body)  # warm: the budget is for a served model
            start = time.perf_counter()
            response = client.post(path, json=body)
            latencies[protocol] = (time.perf_counter() - start) * 1000
            answers[protocol] = _predictions(protocol, path, response, len(frame))
    _check_agreement(answers, expected, tolerance)
    slow = {p: ms for p, ms in latencies.items() if ms > latency_budget_ms}
    if slow:
        detail = ", ".join(f"{p} {ms:.1f} ms" for p, ms in slow.items())
        raise CheckFailed(
            "service_latency",
            f"{len(frame)} rows took longer than the {latency_budget_ms:g} ms budget: {detail}",
        )
    return latencies


def _check_signature(client: Any, model_name: str, columns: list[str]) -> None:
    response = client.get(f"/v2/models/{model_name}")
    if response.status_code != 200:
        raise CheckFailed(
            "service_signature",
            f"GET /v2/models/{model_name} answered {response.status_code}: {response.text[:200]}",
        )
    inputs = [tensor["name"] for tensor in response.json().get("inputs", [])]
    missing = sorted(set(inputs) - set(columns))
    if missing:
        raise CheckFailed(
            "service_signature",
            f"the served signature needs inputs {missing} that the test rows lack",
        )


def _predictions(protocol: str, path: str, response: Any, count: int) -> np.ndarray:
    if response.status_code != 200:
        raise CheckFailed(
            "service_protocols",
            f"POST {path} ({protocol}) answered {response.status_code}: {response.text[:300]}",
        )
    document = response.json()
    values = document["outputs"][0]["data"] if protocol == "v2" else document["predictions"]
    if len(values) != count:
        raise CheckFailed(
            "service_protocols",
            f"POST {path} ({protocol}) answered {len(values)} predictions for {count} rows",
        )
    return np.asarray(values, dtype=float)


def _check_agreement(answers: dict[str, np.ndarray], expected: Any, tolerance: float) -> None:
    reference = answers["native"] if expected is None else np.asarray(expected, dtype=float)
    for protocol, values in answers.items():
        gap = np.abs(values - reference)
        if (gap > tolerance).any():
            row = int(np.argmax(gap))
            against = "the native protocol" if expected is None else "the expected values"
            raise CheckFailed(
                "service_protocols",
                f"{protocol} predictions differ from {against} at {int((gap > tolerance).sum())} "
                f"rows (row {row}: {values[row]:.6g} vs {reference[row]:.6g})",
            )


_V2_TYPES = {"f": "FP64", "i": "INT64", "u": "INT64", "b": "BOOL"}


def _v2_inputs(frame: Any) -> list[dict[str, Any]]:
    tensors = []
    for column in frame.columns:
        values = frame[column]
        datatype = _V2_TYPES.get(values.dtype.kind, "BYTES")
        data = values.astype(str).tolist() if datatype == "BYTES" else values.tolist()
        tensors.append({"name": column, "shape": [len(frame)], "datatype": datatype, "data": data})
    return tensors
