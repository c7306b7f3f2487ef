"""MLflow's scoring protocol as MLflow's own client speaks it, against a live server:
missing values written as ``NaN``, infinities, and ``inputs`` as rows of values.

The client runs in its own virtual environment (``.bench/mlflow-client-venv``, with
``mlflow-skinny``, pandas and scipy), made once and reused across runs."""

from __future__ import annotations

import functools
import json
import math
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest

from ctloop.artifacts.model import Model
from tests.fixtures.venvs import ensure_venv
from tests.serve import _models
from tests.serve.conftest import LiveServer, ServingStore, live_server

CLIENT_SCRIPT = """
import json, sys
import numpy as np, pandas as pd
from mlflow.pyfunc.scoring_server.client import ScoringServerClient

client = ScoringServerClient(sys.argv[1], int(sys.argv[2]))
client.wait_server_ready(timeout=30)
frame = pd.DataFrame({"x": [0.5, np.nan, -1.0], "n": [3, 4, 5]})
print(json.dumps(dict(client.invoke(frame))))
"""

FRAME = pd.DataFrame({"x": [0.5, np.nan, -1.0], "n": [3, 4, 5]})
"""What the client script sends: a missing value in the float column."""


@functools.cache
def tolerant_model() -> Model:
    """Gradient boosting on x (float) and n (integer): it reads missing values."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    frame, label = _models.training_frame()
    features = frame[["x", "n"]]
    estimator = HistGradientBoostingRegressor(max_iter=20, random_state=0)
    return Model.from_estimator(estimator.fit(features, label), features)


def expected(frame: pd.DataFrame) -> list[float]:
    """What the model predicts for ``frame`` when called directly."""
    return tolerant_model().predict(frame).tolist()


@pytest.fixture(scope="module")
def tolerant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The gradient-boosting model served as ``flights@champion``."""
    tmp = tmp_path_factory.mktemp("tolerant")
    store = ServingStore(f"sqlite:///{tmp / 'metadata.db'}", str(tmp / "artifacts"), tmp)
    store.register(tolerant_model(), alias="champion")
    with live_server(store.config(log_predictions=False)) as live:
        yield live


@pytest.fixture(scope="session")
def mlflow_python() -> Path:
    """The Python of a virtual environment with MLflow's scoring client."""
    return ensure_venv(
        "mlflow-client-venv",
        ["mlflow-skinny", "pandas", "scipy"],  # its client looks for scipy.sparse
        "import mlflow.pyfunc.scoring_server.client, scipy.sparse",
    )


def test_mlflow_scoring_client_gets_predictions_for_a_frame_with_nan(
    tolerant: LiveServer, mlflow_python: Path, tmp_path: Path
) -> None:
    address = urlsplit(tolerant.url)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DO_NOT_TRACK": "1"}
    env |= {"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_TRACKING_URI": str(tmp_path / "mlruns")}
    proc = subprocess.run(
        [str(mlflow_python), "-c", CLIENT_SCRIPT, str(address.hostname), str(address.port)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answer["predictions"] == pytest.approx(expected(FRAME))
    assert answer["model_version"] == 1


def test_nan_and_infinity_tokens_are_missing_and_infinite_values(tolerant: LiveServer) -> None:
    body = '{"dataframe_split": {"columns": ["x", "n"], "data": [[NaN, 3], [Infinity, 4], [-Infinity, 5]]}}'
    answer = tolerant.client.post(
        "/invocations", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 200, answer.text
    frame = pd.DataFrame({"x": [math.nan, math.inf, -math.inf], "n": [3, 4, 5]})
    assert answer.json()["predictions"] == pytest.approx(expected(frame))


def test_inputs_as_rows_of_values_follow_the_signature_order(tolerant: LiveServer) -> None:
    rows = tolerant.client.post("/invocations", json={"inputs": [[0.5, 3], [-1.0, 5]]})
    assert rows.status_code == 200, rows.text
    frame = pd.DataFrame({"x": [0.5, -1.0], "n": [3, 5]})
    assert rows.json()["predictions"] == pytest.approx(expected(frame))
    short = tolerant.client.post("/invocations", json={"inputs": [[0.5, 3], [-1.0]]})
    assert short.status_code == 422
    assert "row 1 has 1 values" in short.json()["error"] and "x, n" in short.json()["error"]
