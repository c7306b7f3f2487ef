"""The prediction server over real HTTP: three protocols, error answers, request ids,
metrics, logging of predictions and feedback."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ctloop.artifacts._logs import read_feedback, read_predictions
from tests.serve import _models
from tests.serve.conftest import ROW, LiveServer, ServingStore, live_server

COLUMNS = ["x", "n", "color", "flag"]


def expected(rows: list[dict[str, object]]) -> list[float]:
    """What the model predicts for ``rows`` when called directly."""
    return _models.classifier().predict(rows).tolist()


def test_native_predict_accepts_records_and_columns(server: LiveServer) -> None:
    rows = [ROW, {**ROW, "x": -2.0, "color": "blue"}]
    by_records = server.client.post("/predict", json={"records": rows})
    columns = {c: [r[c] for r in rows] for c in COLUMNS}
    by_columns = server.client.post("/predict", json={"columns": columns})
    assert by_records.status_code == by_columns.status_code == 200
    body = by_records.json()
    assert body["predictions"] == pytest.approx(expected(rows))
    assert by_columns.json()["predictions"] == body["predictions"]
    assert body["model_version"] == 1 and by_records.headers["x-model-version"] == "1"


def test_every_answer_carries_a_request_id(server: LiveServer) -> None:
    given = server.client.post("/predict", json={"records": [ROW], "request_id": "abc"})
    generated = server.client.post("/predict", json={"records": [ROW]})
    header = server.client.post("/predict", json={"records": [ROW]}, headers={"x-request-id": "h1"})
    assert given.json()["request_id"] == given.headers["x-request-id"] == "abc"
    new_id = generated.json()["request_id"]
    assert len(new_id) == 32 and generated.headers["x-request-id"] == new_id
    assert header.json()["request_id"] == "h1"
    bad = server.client.post("/predict", content=b"{", headers={"x-request-id": "e1"})
    assert bad.headers["x-request-id"] == "e1"


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": COLUMNS, "data": [[ROW[c] for c in COLUMNS]]}},
        {"dataframe_records": [ROW]},
        {"instances": [ROW]},
        {"inputs": {c: [ROW[c]] for c in COLUMNS}},
    ],
    ids=["dataframe_split", "dataframe_records", "instances", "inputs"],
)
def test_mlflow_invocations_layouts(server: LiveServer, body: dict[str, object]) -> None:
    answer = server.client.post("/invocations", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == pytest.approx(expected([ROW]))


def test_mlflow_invocations_csv(server: LiveServer) -> None:
    csv = "x,n,color,flag\n0.1,3,red,True\n-2.0,3,blue,True\n"
    answer = server.client.post("/invocations", content=csv, headers={"content-type": "text/csv"})
    assert answer.status_code == 200, answer.text
    rows = [ROW, {**ROW, "x": -2.0, "color": "blue"}]
    assert answer.json()["predictions"] == pytest.approx(expected(rows))


def test_health_version_and_v2_metadata(server: LiveServer) -> None:
    c = server.client
    assert c.get("/ping").status_code == c.get("/health").status_code == 200
    assert c.get("/version").json()["version"] == 1
    assert c.get("/v2/health/live").json() == {"live": True}
    assert c.get("/v2/health/ready").json() == {"ready": True}
    assert c.get("/v2/models/flights/ready").json()["ready"] is True
    meta = c.get("/v2/models/flights").json()
    assert {i["name"]: i["datatype"] for i in meta["inputs"]} == {
        "x": "FP64",
        "n": "INT64",
        "color": "BYTES",
        "flag": "BOOL",
    }
    missing = c.get("/v2/models/other")
    assert missing.status_code == 404 and "other" in missing.json()["error"]


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/predict", {"records": [{**ROW, "x": "high"}]}, 422, "x"),
        ("/predict", {"records": [{k: v for k, v in ROW.items() if k != "n"}]}, 422, "n"),
        ("/predict", {"records": [{**ROW, "extra": 1}]}, 422, "extra"),
        ("/predict", {"records": [{**ROW, "flag": "yes"}]}, 422, "flag"),
        ("/predict", {"rows": [ROW]}, 400, "rows"),
        ("/predict", {"records": {"x": 1}}, 400, "records"),
        ("/predict", [1, 2], 400, "body"),
        ("/invocations", {"dataframe_split": {"columns": ["x"], "data": [[1, 2]]}}, 400, "data"),
        ("/invocations", {"nothing": 1}, 400, "dataframe_split"),
        (
            "/v2/models/flights/infer",
            {"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1.0]}]},
            400,
            "x",
        ),
        ("/v2/models/flights/infer", {"inputs": []}, 400, "inputs"),
        ("/v2/models/nope/infer", {"inputs": []}, 404, "model_name"),
        ("/feedback", {"label": 1}, 400, "request_id"),
    ],
)
def test_client_mistakes_get_4xx_naming_the_field(
    server: LiveServer, path: str, body: object, status: int, field: str
) -> None:
    answer = server.client.post(path, json=body)
    assert answer.status_code == status, answer.text
    document = answer.json()
    assert document["field"] == field and document["error"]


def test_bad_json_and_oversized_bodies(champion: ServingStore) -> None:
    with live_server(champion.config(max_body_bytes=2000)) as live:
        bad = live.client.post(
            "/predict", content=b'{"records": [', headers={"content-type": "application/json"}
        )
        big = live.client.post("/predict", json={"records": [ROW] * 100})
        after = live.client.post("/predict", json={"records": [ROW]})
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]
    assert big.status_code == 413 and big.json()["field"] == "body"
    assert after.status_code == 200


def test_concurrent_requests_are_batched_and_match_one_by_one(champion: ServingStore) -> None:
    rng = np.random.default_rng(3)
    rows = [
        {
            "x": float(rng.normal()),
            "n": int(rng.integers(0, 10)),
            "color": str(rng.choice(["red", "green", "blue"])),
            "flag": bool(rng.random() < 0.5),
        }
        for _ in range(96)
    ]
    config = champion.config(max_batch_size=16, max_wait_ms=10)
    with live_server(config) as live, ThreadPoolExecutor(32) as pool:

        def one(row: dict[str, object]) -> float:
            answer = live.client.post("/predict", json={"records": [row]})
            assert answer.status_code == 200, answer.text
            return float(answer.json()["predictions"][0])

        got = list(pool.map(one, rows))
        metrics = live.client.get("/metrics").text
    assert got == pytest.approx(expected(rows), abs=1e-12)
    assert _histogram_sum(metrics, "ctloop_batch_size_rows") == 96
    assert _histogram_count(metrics, "ctloop_batch_size_rows") < 96  # some were batched


def test_a_bad_request_does_not_fail_its_batch(champion: ServingStore) -> None:
    config = champion.config(max_batch_size=64, max_wait_ms=50)
    bodies = [{"records": [ROW]} if i % 5 else {"records": [{**ROW, "n": 1.5}]} for i in range(40)]
    with live_server(config) as live, ThreadPoolExecutor(40) as pool:
        statuses = list(
            pool.map(lambda b: live.client.post("/predict", json=b).status_code, bodies)
        )
    assert statuses == [200 if i % 5 else 422 for i in range(40)]


def test_metrics_count_requests_by_protocol_status_and_version(champion: ServingStore) -> None:
    with live_server(champion.config()) as live:
        live.client.post("/predict", json={"records": [ROW]})
        live.client.post("/invocations", json={"dataframe_records": [ROW]})
        live.client.post("/predict", json={"records": [{**ROW, "x": "bad"}]})
        text = live.client.get("/metrics").text
    assert 'ctloop_requests_total{model_version="1",protocol="native",status="200"} 1.0' in text
    assert 'ctloop_requests_total{model_version="1",protocol="mlflow",status="200"} 1.0' in text
    assert 'protocol="native",status="422"' in text
    assert 'ctloop_prediction_errors_total{kind="client",model_version=""} 1.0' in text
    assert "ctloop_request_latency_seconds_bucket" in text
    assert 'ctloop_model_version_info{model="flights",model_version="1",role="primary"} 1.0' in text
    assert "ctloop_prediction_log_errors 0.0" in text


def test_predictions_and_feedback_are_logged(champion: ServingStore) -> None:
    with live_server(champion.config()) as live:
        live.client.post("/predict", json={"records": [ROW], "request_id": "r1"})
        live.client.post("/predict", json={"records": [ROW, ROW], "request_id": "r2"})
        sent = live.client.post("/feedback", json=[{"request_id": "r1", "label": 1}])
        assert sent.status_code == 200 and sent.json()["accepted"] == 1
    # stopping the server flushed both logs
    logged = read_predictions(champion.workspace, "flights")
    assert sorted(logged.request_id) == ["r1", "r2-0", "r2-1"]
    assert set(logged.model_version) == {1} and set(logged.deployment) == {"flights"}
    assert logged.prediction.tolist() == pytest.approx(expected([ROW]) * 3)
    labels = read_feedback(champion.workspace, "flights")
    assert labels.request_id.tolist() == ["r1"] and labels.label.tolist() == [1]


def test_without_batching_predictions_are_the_same(champion: ServingStore) -> None:
    with live_server(champion.config(batch=False, log_predictions=False)) as live:
        answer = live.client.post("/predict", json={"records": [ROW] * 3})
    assert answer.json()["predictions"] == pytest.approx(expected([ROW] * 3))


def _histogram_sum(text: str, name: str) -> float:
    return _sample(text, f"{name}_sum")


def _histogram_count(text: str, name: str) -> float:
    return _sample(text, f"{name}_count")


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not in the metrics")


def test_model_failure_is_a_500_and_the_server_survives(store: ServingStore) -> None:
    store.register(_models.constant(0.5, broken=True), alias="champion")
    with live_server(store.config(log_predictions=False)) as live:
        failed = live.client.post("/predict", json={"records": [ROW]})
        bad_input = live.client.post("/predict", json={"records": [{**ROW, "x": "a"}]})
        time.sleep(0)  # the server keeps answering
        health = live.client.get("/health")
    assert failed.status_code == 500 and "broken" in failed.json()["error"]
    assert bad_input.status_code == 422
    assert health.status_code == 200


def test_a_compiled_model_answers_plain_records_and_logs_their_inputs(
    store: ServingStore,
) -> None:
    import pickle

    from ctloop.artifacts.model._onnx import compile_onnx

    model = pickle.loads(pickle.dumps(_models.classifier()))  # a copy to compile
    validation, _ = _models.training_frame(200, seed=6)
    assert compile_onnx(model, validation).accepted
    store.register(model, alias="champion")
    rows = [{**ROW, "x": i / 10, "color": ["red", "green", "mauve"][i % 3]} for i in range(40)]
    with live_server(store.config(max_wait_ms=10)) as live, ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(
                lambda i: live.client.post(
                    "/predict", json={"records": [rows[i]], "request_id": f"q{i}"}
                ),
                range(len(rows)),
            )
        )
    assert all(a.status_code == 200 for a in answers)
    got = [a.json()["predictions"][0] for a in answers]
    assert got == pytest.approx(expected(rows), abs=1e-4)  # the native model's answers
    logged = read_predictions(store.workspace, "flights")
    logged = logged.set_index("request_id").loc[[f"q{i}" for i in range(len(rows))]]
    assert logged["x"].tolist() == pytest.approx([r["x"] for r in rows])
    assert logged["color"].tolist() == [r["color"] for r in rows]
    assert logged["prediction"].tolist() == pytest.approx(got, abs=1e-6)


def _deep(levels: int) -> str:
    return "[" * levels + "1" + "]" * levels


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/predict", '{"records": [{"x": %s, "n": 3, "color": "red", "flag": true}]}'),
        ("/invocations", '{"dataframe_split": {"columns": ["x"], "data": [[%s]]}}'),
        ("/v2/models/flights/infer", '{"inputs": [{"name": "x", "shape": [1], "data": %s}]}'),
        ("/feedback", '{"request_id": "r1", "label": %s}'),
    ],
)
def test_deeply_nested_json_is_a_400_not_a_crash(server: LiveServer, path: str, body: str) -> None:
    for levels in (950, 1010):
        answer = server.client.post(
            path, content=body % _deep(levels), headers={"content-type": "application/json"}
        )
        assert answer.status_code == 400, answer.text
        assert "more than 64 levels" in answer.json()["error"]
    assert server.client.get("/health").status_code == 200


@pytest.mark.parametrize("value", [2**63, 2**64, -(2**63) - 1], ids=str)
def test_an_integer_past_64_bits_is_a_422_naming_column_and_row(
    server: LiveServer, value: int
) -> None:
    rows = [ROW, {**ROW, "n": value}]
    split = {"columns": COLUMNS, "data": [[row[c] for c in COLUMNS] for row in rows]}
    csv = f"x,n,color,flag\n0.1,3,red,True\n0.1,{value},red,True\n"
    answers = [
        server.client.post("/predict", json={"records": rows}),
        server.client.post(
            "/predict", json={"columns": {c: [r[c] for r in rows] for c in COLUMNS}}
        ),
        server.client.post("/invocations", json={"dataframe_split": split}),
        server.client.post("/invocations", content=csv, headers={"content-type": "text/csv"}),
    ]
    for answer in answers:
        assert answer.status_code == 422, answer.text
        document = answer.json()
        assert document["field"] == "n" and "row 1" in document["error"], document
        assert "64-bit" in document["error"]


def test_invocations_refuse_other_content_types_with_415(server: LiveServer) -> None:
    answer = server.client.post(
        "/invocations", content='{"dataframe_records": []}', headers={"content-type": "text/plain"}
    )
    assert answer.status_code == 415
    document = answer.json()
    assert document["field"] == "content-type"
    assert "application/json" in document["error"] and "text/csv" in document["error"]


def test_unknown_routes_and_methods_answer_with_error_and_field(server: LiveServer) -> None:
    missing = server.client.get("/predictions")
    assert missing.status_code == 404
    assert missing.json() == {"error": missing.json()["error"], "field": None}
    assert "GET /predictions" in missing.json()["error"]
    wrong = server.client.get("/predict")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert wrong.json()["field"] is None and "POST" in wrong.json()["error"]
    v2 = server.client.get("/v2/nothing")  # the V2 routes answer in their own form
    assert v2.status_code == 404 and v2.json()["error"]


def test_a_malformed_parameter_answers_with_error_and_field(server: LiveServer) -> None:
    # FastAPI checks typed parameters itself; its answer takes the same form
    @server.app.get("/echo-rows")
    async def echo(rows: int) -> dict[str, int]:
        return {"rows": rows}

    answer = server.client.get("/echo-rows", params={"rows": "many"})
    assert answer.status_code == 422
    document = answer.json()
    assert document["field"] == "rows" and "integer" in document["error"]


_V2_ROW = [
    {"name": "x", "datatype": "FP64", "shape": [1], "data": [0.5]},
    {"name": "n", "datatype": "INT64", "shape": [1], "data": [3]},
    {"name": "color", "datatype": "BYTES", "shape": [1], "data": ["red"]},
    {"name": "flag", "datatype": "BOOL", "shape": [1], "data": [True]},
]


@pytest.mark.parametrize(
    "bad_id",
    ["\x1f", "a\nb", "ok\n", " padded", "\u00ff\u00ab", "\U0001f600", "x" * 201],
    ids=["control", "newline", "trailing-newline", "space", "latin-1", "emoji", "too-long"],
)
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/predict", lambda rid: {"records": [ROW], "request_id": rid}, "request_id"),
        ("/invocations", lambda rid: {"dataframe_records": [ROW], "request_id": rid}, "request_id"),
        ("/v2/models/flights/infer", lambda rid: {"id": rid, "inputs": _V2_ROW}, "id"),
        ("/feedback", lambda rid: {"request_id": rid, "label": 1}, "request_id"),
    ],
    ids=["native", "mlflow", "v2", "feedback"],
)
def test_a_request_id_that_cannot_be_a_header_is_a_400(
    server: LiveServer, path: str, body: object, field: str, bad_id: str
) -> None:
    answer = server.client.post(path, json=body(bad_id))  # type: ignore[operator]
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field and "printable ASCII" in answer.json()["error"]
    assert server.client.get("/ping").status_code == 200  # the connection and server live


def test_a_request_id_of_printable_ascii_is_echoed_unchanged(server: LiveServer) -> None:
    rid = "run 7/row:42 [a-b]"
    answer = server.client.post("/predict", json={"records": [ROW], "request_id": rid})
    assert answer.status_code == 200
    assert answer.json()["request_id"] == answer.headers["x-request-id"] == rid


def test_an_extreme_value_with_a_missing_optional_one_is_answered(server: LiveServer) -> None:
    """A request the document calls valid (``color`` may be null, ``x`` any number) is
    answered whatever the process's warning filters: numeric overflow inside the model is
    its arithmetic, not the client's missing value."""
    row = {**ROW, "x": 1e308, "color": None}
    answer = server.client.post("/predict", json={"records": [row]})
    assert answer.status_code == 200, answer.text
    (prediction,) = answer.json()["predictions"]
    assert 0.0 <= prediction <= 1.0
