"""Failures answered by the prediction server's exception handlers: a bug in a route is a
500 that names it, with the request id, counted in the metrics, and the server lives."""

from __future__ import annotations

from fastapi import Request, Response

from ctloop.serve._answers import read_request
from tests.serve.conftest import LiveServer


def test_an_unexpected_failure_is_a_500_naming_it_and_the_server_survives(
    server: LiveServer,
) -> None:
    @server.app.post("/explode")
    async def explode(request: Request) -> Response:
        await read_request(request, "native", 1000)
        raise RuntimeError("a bug in a route")

    answer = server.client.post("/explode", content=b"{}", headers={"x-request-id": "r-42"})
    assert answer.status_code == 500
    assert answer.json() == {
        "error": "the server failed: RuntimeError: a bug in a route",
        "field": None,
    }
    assert answer.headers["x-request-id"] == "r-42"
    metrics = server.client.get("/metrics").text
    assert 'ctloop_prediction_errors_total{kind="server",model_version=""} 1.0' in metrics
    assert 'ctloop_requests_total{model_version="",protocol="native",status="500"} 1.0' in metrics
    assert server.client.get("/ping").status_code == 200


def test_a_client_mistake_inside_a_route_keeps_its_request_id(server: LiveServer) -> None:
    answer = server.client.post("/predict", content=b"{", headers={"x-request-id": "r-7"})
    assert answer.status_code == 400 and answer.headers["x-request-id"] == "r-7"
    assert answer.json()["field"] == "body" and "JSON" in answer.json()["error"]
