"""NaN and infinite metrics through ``ctloop server`` with MLflow's own client (3.x, in
``.bench/mlflow-compat-venv``): a diverged trial logs ``nan`` point by point and in a batch,
reads it back as NaN from the run and its history, and a search orders it as MLflow does
(after every number, before runs without the metric) and never matches it in a filter;
a registered model's card and ctloop's own API answer strict JSON for those points. On
SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import math
import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctloop.server import create_app
from ctloop.store.workspace import Workspace
from tests.fixtures.venvs import ensure_venv
from tests.server.conftest import LiveServer, role_keys, start

REQUIREMENTS = ["mlflow-skinny", "scikit-learn", "pandas", "scipy", "skops"]

SCRIPT = """
import json, math, warnings
warnings.filterwarnings("ignore")
import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric

def shown(value):  # JSON has no NaN: the script reports it by name
    return repr(value) if isinstance(value, float) and not math.isfinite(value) else value

client = MlflowClient()
experiment = mlflow.set_experiment("diverged").experiment_id
ids = {}
for name, values in [
    ("fine", [0.9, 0.5]), ("diverged", [0.8, float("nan")]), ("exploded", [float("inf")]),
    ("negative", [float("-inf")]), ("bare", []),
]:
    with mlflow.start_run(run_name=name) as run:
        ids[name] = run.info.run_id
        for step, value in enumerate(values):
            mlflow.log_metric("loss", value, step=step)
        if name == "bare":
            mlflow.log_metric("other", 1.0)
with mlflow.start_run(run_name="batched") as run:
    ids["batched"] = run.info.run_id
    now = 1_700_000_000_000
    client.log_batch(run.info.run_id, metrics=[
        Metric("grad", float("nan"), now, 0), Metric("grad", float("inf"), now, 1),
        Metric("grad", float("-inf"), now, 2), Metric("grad", 2.5, now, 3),
        Metric("loss", float("nan"), now, 0),
    ])

from sklearn.linear_model import LogisticRegression
with mlflow.start_run(run_name="model") as run:  # a model of a run that diverged once
    mlflow.log_metric("val_loss", float("nan"), step=0)
    mlflow.log_metric("val_loss", 0.4, step=1)
    fitted = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    info = mlflow.sklearn.log_model(fitted, name="model", registered_model_name="diverged")
ids_of_model = run.info.run_id

history = [shown(m.value) for m in client.get_metric_history(ids["batched"], "grad")]
latest = {n: shown(client.get_run(i).data.metrics.get("loss")) for n, i in ids.items()}
names = {i: n for n, i in ids.items()} | {ids_of_model: "model"}
def search(order=None, where=""):
    runs = client.search_runs([experiment], where, order_by=order)
    return [names[r.info.run_id] for r in runs]
print("RESULT " + json.dumps({
    "history": history,
    "latest": latest,
    "asc": search(["metrics.loss ASC"]),
    "desc": search(["metrics.loss DESC"]),
    "below_one": sorted(search(where="metrics.loss < 1")),
    "huge": search(where="metrics.loss > 1e308"),
    "val_loss": [shown(m.value) for m in client.get_metric_history(ids_of_model, "val_loss")],
}), flush=True)
"""


@pytest.fixture(scope="module")
def python() -> Path:
    """The Python of the client's virtual environment."""
    return ensure_venv("mlflow-compat-venv", REQUIREMENTS, "import mlflow.sklearn, skops.io")


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The team server on its own workspace: SQLite (points written on the event loop) or
    PostgreSQL (every write in a thread)."""
    tmp = tmp_path_factory.mktemp("mlflow-nan")
    database = f"nan_metrics_{os.getpid()}"
    postgres = request.getfixturevalue("postgres_server") if request.param == "postgres" else None
    url = (
        f"sqlite:///{tmp / 'metadata.db'}"
        if postgres is None
        else postgres.create_database(database)
    )
    workspace = Workspace.open(url, artifacts=str(tmp / "art"))
    keys = role_keys(workspace)
    uvicorn_server, thread, address = start(create_app(workspace))
    try:
        yield LiveServer(address, workspace, keys)
    finally:
        uvicorn_server.should_exit = True
        thread.join(30)
        workspace.close()
        if postgres is not None:
            postgres.drop_database(database)


def _client_run(python: Path, server: LiveServer) -> Any:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": server.url,
        "MLFLOW_TRACKING_TOKEN": server.keys["admin"],
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    }
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [str(python), "-c", textwrap.dedent(SCRIPT)],
        env=env,
        cwd=Path(str(server.workspace.artifact_url)).parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


def test_nan_and_infinities_round_trip_and_sort_as_in_mlflow(
    python: Path, server: LiveServer
) -> None:
    result = _client_run(python, server)
    assert result["history"] == ["nan", "inf", "-inf", 2.5]
    assert result["latest"] == {
        "fine": 0.5,
        "diverged": "nan",
        "exploded": "inf",
        "negative": "-inf",
        "bare": None,
        "batched": "nan",
    }
    # numbers first in the asked direction, then NaN, then runs without it (newest first)
    assert result["asc"] == ["negative", "fine", "exploded", "batched", "diverged", "model", "bare"]
    assert result["desc"] == [
        "exploded",
        "fine",
        "negative",
        "batched",
        "diverged",
        "model",
        "bare",
    ]
    assert result["below_one"] == ["fine", "negative"]
    assert result["huge"] == ["exploded"]
    assert result["val_loss"] == ["nan", 0.4]

    # ctloop's own API reads the same points, in strict JSON (which has no NaN)
    stored = server.workspace.metadata.latest_metric_values("loss")
    nan_runs = sorted(run_id for run_id, value in stored.items() if math.isnan(value))
    assert len(nan_runs) == 2
    paths = (
        f"/runs/{nan_runs[0]}",
        f"/runs/{nan_runs[0]}/metrics/loss",
        "/runs/search?sort=metrics.loss&metrics=loss",
        "/runs/search?where=loss%20%3C%201&metrics=loss",
        "/models/diverged/versions/1/card",
    )
    with server.client("viewer") as client:
        for path in paths:
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.text)
            json.loads(answer.text, parse_constant=_refuse)
        history = client.get(f"/runs/{nan_runs[0]}/metrics/loss").json()
    assert history["points"][-1]["value"] == "NaN"  # as MLflow's REST answers spell it


def _refuse(constant: str) -> Any:
    raise AssertionError(f"the answer holds {constant}, which JSON does not have")
