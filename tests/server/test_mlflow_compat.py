"""MLflow's own client (3.x, in its own virtual environment) against a live
``ctloop server``: the quickstart, autolog, logging and registering a model, aliases,
searches, MLflow's error codes and roles; then ctloop's own API reads what it wrote.

The client lives in ``.bench/mlflow-compat-venv`` (``mlflow-skinny``, scikit-learn,
pandas, scipy and skops, which MLflow 3 saves scikit-learn models with), made once."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from ctloop.server import create_app
from ctloop.store.workspace import Workspace
from tests.fixtures.venvs import ensure_venv
from tests.server.conftest import LiveServer, in_process, role_keys, start

REQUIREMENTS = ["mlflow-skinny", "scikit-learn", "pandas", "scipy", "skops"]

PRELUDE = """
import json, os, sys, warnings
warnings.filterwarnings("ignore")
import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True)
def out(**values):
    print("RESULT " + json.dumps(values), flush=True)
"""


@pytest.fixture(scope="module")
def python() -> Path:
    """The Python of the client's virtual environment."""
    return ensure_venv("mlflow-compat-venv", REQUIREMENTS, "import mlflow.sklearn, skops.io")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The team server on its own SQLite workspace."""
    tmp = tmp_path_factory.mktemp("mlflow-compat")
    workspace = Workspace.open(f"sqlite:///{tmp / 'metadata.db'}", artifacts=str(tmp / "art"))
    keys = role_keys(workspace)
    uvicorn_server, thread, url = start(create_app(workspace))
    try:
        yield LiveServer(url, workspace, keys)
    finally:
        uvicorn_server.should_exit = True
        thread.join(30)
        workspace.close()


def client_run(python: Path, server: LiveServer, script: str, role: str = "admin") -> Any:
    """Run ``script`` with MLflow's client pointed at ``server`` with a key of ``role``;
    the value it passed to ``out``."""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": server.url,
        "MLFLOW_TRACKING_TOKEN": server.keys[role],
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    }
    env.pop("PYTHONPATH", None)
    code = PRELUDE + textwrap.dedent(script)
    proc = subprocess.run(
        [str(python), "-c", code],
        env=env,
        cwd=Path(str(server.workspace.artifact_url)).parent,  # the files it writes stay there
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


def test_the_quickstart_logs_registers_and_loads_a_model(python: Path, server: LiveServer) -> None:
    result = client_run(
        python,
        server,
        """
        mlflow.set_experiment("quickstart")
        params = {"solver": "lbfgs", "max_iter": 300, "random_state": 8888}
        model = LogisticRegression(**params).fit(X, y)
        with mlflow.start_run() as run:
            mlflow.log_params(params)
            mlflow.log_metric("accuracy", float(model.score(X, y)))
            for step in range(5):
                mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
            mlflow.set_tag("Training Info", "Basic LR model for iris data")
            signature = mlflow.models.infer_signature(X, model.predict(X))
            info = mlflow.sklearn.log_model(
                sk_model=model, name="iris_model", signature=signature,
                input_example=X[:3], registered_model_name="quickstart-iris",
            )
        loaded = mlflow.pyfunc.load_model(info.model_uri)
        history = MlflowClient().get_metric_history(run.info.run_id, "loss")
        got = MlflowClient().get_run(run.info.run_id)
        out(run_id=run.info.run_id, model_id=info.model_id,
            predictions=loaded.predict(X[:3]).tolist(), expected=model.predict(X[:3]).tolist(),
            history=[[m.step, m.value] for m in history], params=got.data.params,
            status=got.info.status, tags=got.data.tags,
            model_metrics=sorted(m.key for m in mlflow.get_logged_model(info.model_id).metrics))
        """,
    )
    assert result["predictions"] == result["expected"]
    assert result["history"] == [[s, 1.0 / (s + 1)] for s in range(5)]
    assert result["params"] == {"solver": "lbfgs", "max_iter": "300", "random_state": "8888"}
    assert result["status"] == "FINISHED"
    assert result["model_metrics"] == ["accuracy", "loss"]  # the client links step 0 to it
    assert result["tags"]["Training Info"] == "Basic LR model for iris data"

    # the same run, read with ctloop's own API
    with server.client("viewer") as api:
        run = api.get(f"/runs/{result['run_id']}").json()
        assert run["pipeline"] == "quickstart" and run["status"] == "succeeded"
        assert run["params"]["max_iter"] == "300"
        assert run["metrics"]["loss"]["step"] == 4 and run["metrics"]["accuracy"]["value"] > 0.9
        points = api.get(f"/runs/{result['run_id']}/metrics/loss").json()["points"]
        assert sorted({p["step"] for p in points}) == [0, 1, 2, 3, 4]
        model_step = next(e for e in run["executions"] if e["id"] == result["model_id"])
        assert model_step["step"] == "mlflow-model" and model_step["status"] == "succeeded"
        version = api.get("/models/quickstart-iris/versions/1").json()
        assert version["run_id"] == result["run_id"]
        assert version["execution_id"] == result["model_id"]
        artifact = api.get(f"/artifacts/{version['artifact_id']}").json()
        assert artifact["type"] == "mlflow.model"
        assert artifact["properties"]["mlflow_format"] == "skops"
        assert artifact["properties"]["needs_pickle"] is False
        assert {"MLmodel", "model.skops"} <= {f["path"] for f in artifact["files"]}
        skops = api.get(f"/artifacts/{version['artifact_id']}/download?path=model.skops")
        assert skops.status_code == 200 and skops.content[:2] == b"PK"
    with server.client("admin") as admin:
        audit = admin.get("/audit", params={"limit": 500}).json()["items"]
    assert {"mlflow.run.create", "mlflow.run.log", "model.register"} <= {a["action"] for a in audit}


def test_autolog_records_a_scikit_learn_fit(python: Path, server: LiveServer) -> None:
    result = client_run(
        python,
        server,
        """
        mlflow.set_experiment("autolog")
        mlflow.sklearn.autolog(log_models=True, log_input_examples=False, silent=True)
        with mlflow.start_run() as run:
            LogisticRegression(C=0.5, max_iter=250).fit(X, y)
        got = MlflowClient().get_run(run.info.run_id)
        files = [f.path for f in MlflowClient().list_artifacts(run.info.run_id)]
        models = mlflow.search_logged_models(
            experiment_ids=[run.info.experiment_id], output_format="list")
        out(run_id=run.info.run_id, params=got.data.params, metrics=got.data.metrics,
            files=files, models=[m.name for m in models])
        """,
    )
    assert result["params"]["C"] == "0.5" and result["params"]["max_iter"] == "250"
    assert "training_accuracy_score" in result["metrics"]
    assert result["models"] == ["model"]
    with server.client("viewer") as api:
        run = api.get(f"/runs/{result['run_id']}").json()
        assert run["params"]["C"] == "0.5"
        assert "training_accuracy_score" in run["metrics"]


def test_registry_aliases_searches_and_artifacts(python: Path, server: LiveServer) -> None:
    result = client_run(
        python,
        server,
        """
        client = MlflowClient()
        mlflow.set_experiment("registry")
        runs = []
        for c in (0.1, 1.0, 10.0):
            with mlflow.start_run(run_name=f"c={c}") as run:
                model = LogisticRegression(C=c, max_iter=300).fit(X, y)
                mlflow.log_param("C", c)
                mlflow.log_metric("accuracy", float(model.score(X, y)))
                mlflow.sklearn.log_model(model, name="model")
                with open("notes.txt", "w") as f:
                    f.write(f"C is {c}")
                mlflow.log_artifact("notes.txt", artifact_path="docs")
                runs.append(run.info.run_id)
            mlflow.register_model(f"runs:/{run.info.run_id}/model", "flights")
        client.set_registered_model_alias("flights", "champion", 2)
        client.set_registered_model_alias("flights", "challenger", 3)
        champion = client.get_model_version_by_alias("flights", "champion")
        client.delete_registered_model_alias("flights", "challenger")
        try:
            client.get_model_version_by_alias("flights", "challenger")
            gone = None
        except MlflowException as exc:
            gone = exc.error_code
        latest = client.get_latest_versions("flights")
        best = mlflow.search_runs(
            experiment_names=["registry"], filter_string="metrics.accuracy > 0.5 and params.C != '0.1'",
            order_by=["params.C DESC"], output_format="list")
        named = client.search_runs(
            [best[0].info.experiment_id], filter_string="attributes.run_name = 'c=1.0'")
        versions = client.search_model_versions("name = 'flights'")
        notes = mlflow.artifacts.download_artifacts(run_id=runs[0], artifact_path="docs/notes.txt")
        out(runs=runs, champion=[champion.version, champion.run_id], gone=gone,
            latest=[v.version for v in latest], best=[r.data.params["C"] for r in best],
            named=[r.info.run_name for r in named], versions=sorted(v.version for v in versions),
            notes=open(notes).read(), aliases=client.get_registered_model("flights").aliases,
            listed=[f.path for f in client.list_artifacts(runs[0], "docs")])
        """,
    )
    runs = result["runs"]
    assert result["champion"] == ["2", runs[1]]
    assert result["gone"] == "RESOURCE_DOES_NOT_EXIST"
    assert result["latest"] == ["3"]
    assert result["best"] == ["10.0", "1.0"]
    assert result["named"] == ["c=1.0"]
    assert result["versions"] == ["1", "2", "3"]
    assert result["notes"] == "C is 0.1"
    assert result["aliases"] == {"champion": "2"}
    assert result["listed"] == ["docs/notes.txt"]
    with server.client("viewer") as api:
        history = api.get("/models/flights/aliases").json()["history"]["items"]
        assert [(m["alias"], m["kind"]) for m in history] == [
            ("champion", "set"),
            ("challenger", "set"),
            ("challenger", "delete"),
        ]
        assert api.get("/models/flights/versions/1").json()["run_id"] == runs[0]


def test_mlflow_error_codes_reach_the_client(python: Path, server: LiveServer) -> None:
    result = client_run(
        python,
        server,
        """
        client = MlflowClient()
        def code(call):
            try:
                call()
            except MlflowException as exc:
                return [exc.error_code, exc.get_http_status_code()]
            return None
        client.create_experiment("twice")
        run = client.create_run(client.get_experiment_by_name("twice").experiment_id)
        client.log_param(run.info.run_id, "p", "1")
        out(
            exists=code(lambda: client.create_experiment("twice")),
            missing_run=code(lambda: client.get_run("0" * 32)),
            missing_model=code(lambda: client.get_registered_model("nope")),
            changed=code(lambda: client.log_param(run.info.run_id, "p", "2")),
            missing_experiment=client.get_experiment_by_name("never"),
        )
        """,
    )
    assert result["exists"] == ["RESOURCE_ALREADY_EXISTS", 400]
    assert result["missing_run"] == ["RESOURCE_DOES_NOT_EXIST", 404]
    assert result["missing_model"] == ["RESOURCE_DOES_NOT_EXIST", 404]
    assert result["changed"] == ["INVALID_PARAMETER_VALUE", 400]
    assert result["missing_experiment"] is None


def test_a_viewer_key_reads_but_cannot_log(python: Path, server: LiveServer) -> None:
    result = client_run(
        python,
        server,
        """
        client = MlflowClient()
        try:
            client.create_experiment("viewer-made")
            refused = None
        except MlflowException as exc:
            refused = [exc.error_code, exc.get_http_status_code(), str(exc)]
        out(refused=refused, read=[e.name for e in client.search_experiments()])
        """,
        role="viewer",
    )
    code, status, message = result["refused"]
    assert (code, status) == ("PERMISSION_DENIED", 403)
    assert "editor role" in message
    assert "Default" in result["read"]
    with server.client("admin") as admin:
        refusals = admin.get("/audit", params={"limit": 500}).json()["items"]
    assert any(a["action"] == "refused" and a["status"] == 403 for a in refusals)


def test_a_production_alias_needs_an_admin(python: Path, server: LiveServer) -> None:
    result = client_run(
        python,
        server,
        """
        client = MlflowClient()
        with mlflow.start_run():
            model = LogisticRegression(max_iter=300).fit(X, y)
            mlflow.sklearn.log_model(model, name="model", registered_model_name="guarded")
        try:
            client.set_registered_model_alias("guarded", "production", 1)
            refused = None
        except MlflowException as exc:
            refused = exc.error_code
        client.set_registered_model_alias("guarded", "staging", 1)
        out(refused=refused, aliases=client.get_registered_model("guarded").aliases)
        """,
        role="editor",
    )
    assert result["refused"] == "PERMISSION_DENIED"
    assert result["aliases"] == {"staging": "1"}


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[tuple[Any, Workspace, dict[str, str]]]:
    """An in-process client of a server on a SQLite workspace."""
    workspace = Workspace.open(f"sqlite:///{tmp_path / 'm.db'}", artifacts=str(tmp_path / "a"))
    keys = role_keys(workspace)
    with in_process(create_app(workspace)) as client:
        yield client, workspace, keys
    workspace.close()


def test_a_batch_of_1000_metrics_is_one_insert(sqlite_app: Any) -> None:
    client, _, keys = sqlite_app
    headers = {"Authorization": f"Bearer {keys['editor']}"}
    base = "/api/2.0/mlflow"
    run = client.post(f"{base}/runs/create", json={"experiment_id": "0"}, headers=headers)
    run_id = run.json()["run"]["info"]["run_id"]
    metrics = [{"key": "m", "value": i / 7, "timestamp": 1_700_000_000_000 + i, "step": i}
               for i in range(1000)]  # fmt: skip
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        answer = client.post(
            f"{base}/runs/log-batch", json={"run_id": run_id, "metrics": metrics}, headers=headers
        )
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert answer.status_code == 200, answer.text
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT INTO METRICS")]
    assert len(inserts) == 1
    history = client.get(
        f"{base}/metrics/get-history", params={"run_id": run_id, "metric_key": "m"}, headers=headers
    ).json()["metrics"]
    assert [m["step"] for m in history] == list(range(1000))
    assert history[7]["value"] == 1.0 and history[3]["timestamp"] == 1_700_000_000_003


def test_answers_are_mlflow_errors_never_500s(sqlite_app: Any) -> None:
    client, _, keys = sqlite_app
    headers = {"Authorization": f"Bearer {keys['editor']}"}
    base = "/api/2.0/mlflow"
    run = client.post(f"{base}/runs/create", json={"experiment_id": "0"}, headers=headers)
    run_id = run.json()["run"]["info"]["run_id"]
    metric, param = {"key": "m", "value": 1, "timestamp": 0, "step": 0}, {"key": "p", "value": "v"}
    cases = [
        ("post", "/runs/create", {"experiment_id": "404"}, "RESOURCE_DOES_NOT_EXIST", 404),
        ("post", "/runs/log-batch", {"run_id": "x", "metrics": "no"}, "RESOURCE_DOES_NOT_EXIST", 404),
        ("get", "/experiments/get", None, "INVALID_PARAMETER_VALUE", 400),
        ("post", "/runs/log-batch", {"run_id": run_id, "metrics": [metric] * 1001},
         "INVALID_PARAMETER_VALUE", 400),
        ("post", "/runs/log-batch", {"run_id": run_id, "params": [param] * 101},
         "INVALID_PARAMETER_VALUE", 400),
        ("post", "/runs/log-batch", {"run_id": run_id, "metrics": [metric] * 900,
         "params": [param] * 100, "tags": [param] * 100},
         "INVALID_PARAMETER_VALUE", 400),
        ("post", "/runs/search", {"experiment_ids": ["0"], "filter": "metrics.a >>> 1"},
         "INVALID_PARAMETER_VALUE", 400),
        ("get", "/no/such/endpoint", None, "ENDPOINT_NOT_FOUND", 404),
        ("post", "/model-versions/create", {"name": "nope", "source": "x"},
         "RESOURCE_DOES_NOT_EXIST", 404),
    ]  # fmt: skip
    for method, path, body, code, status in cases:
        answer = client.request(method, base + path, json=body, headers=headers)
        assert (answer.status_code, answer.json()["error_code"]) == (status, code), (
            path,
            answer.text,
        )
    anonymous = client.get(f"{base}/experiments/search")
    assert anonymous.status_code == 401 and anonymous.json()["error_code"] == "UNAUTHENTICATED"
    upload = client.put(
        "/api/2.0/mlflow-artifacts/artifacts/0/abc/artifacts/../../etc",
        content=b"x",
        headers=headers,
    )
    assert upload.status_code in (400, 404) and "error_code" in upload.json()


def test_a_pickled_mlflow_model_is_recorded_as_such_and_not_served(
    python: Path, server: LiveServer
) -> None:
    from ctloop.errors import ServingError
    from ctloop.serve._config import ServeConfig
    from ctloop.serve._server import check_servable

    client_run(
        python,
        server,
        """
        with mlflow.start_run():
            model = LogisticRegression(max_iter=300).fit(X, y)
            mlflow.sklearn.log_model(model, name="model", registered_model_name="pickled",
                                     serialization_format="cloudpickle")
        out(done=True)
        """,
    )
    workspace = server.workspace
    version = workspace.registry.get_version("pickled", 1)
    artifact = workspace.metadata.get_artifact(version.artifact_id)
    assert artifact.properties["mlflow_format"] == "cloudpickle"
    assert artifact.properties["needs_pickle"] is True
    assert "sklearn" in artifact.properties["mlflow_flavors"]
    assert workspace.store_url is not None and workspace.artifact_url is not None
    config = ServeConfig(
        "pickled@1", store_url=workspace.store_url, artifact_url=workspace.artifact_url
    )
    with pytest.raises(ServingError, match=r"mlflow\.model artifact, not a Model"):
        check_servable(config)
