"""A request the model cannot predict fails alone: batched with others, it does not take
their answers with it, and a missing value the model cannot take is the client's 422."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.serve.conftest import ROW, LiveServer


def test_a_missing_value_is_a_422_naming_the_column(server: LiveServer) -> None:
    answer = server.client.post("/predict", json={"records": [ROW, {**ROW, "x": None}]})
    assert answer.status_code == 422
    body = answer.json()
    assert body["field"] == "x"
    assert "column 'x' has no value in row 1" in body["error"]
    assert "send a value for 'x'" in body["error"]


def test_one_bad_request_in_a_batch_fails_alone(server: LiveServer) -> None:
    bodies = [{"records": [ROW], "request_id": f"good-{i}"} for i in range(24)]
    bodies.insert(12, {"records": [{**ROW, "n": None}], "request_id": "bad"})

    def send(body: dict[str, object]) -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            return client.post("/predict", json=body)

    for _ in range(3):  # concurrent requests share batches; a few rounds make sure
        with ThreadPoolExecutor(len(bodies)) as pool:
            answers = list(pool.map(send, bodies))
        statuses = {b["request_id"]: a.status_code for b, a in zip(bodies, answers)}
        assert statuses.pop("bad") == 422
        assert set(statuses.values()) == {200}
    metrics = server.client.get("/metrics").text
    assert 'ctloop_prediction_errors_total{kind="model"' not in metrics
