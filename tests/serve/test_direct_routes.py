"""The prediction endpoints answered directly (``ServingApp.direct_routes``) answer
exactly as FastAPI's router and middleware stack do: the same status, body, headers and
metrics, for good requests and for every kind of client mistake."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ctloop.serve._app import create_app
from tests.serve.conftest import ROW, LiveServer, ServingStore, live_app

HEADERS = ("content-type", "x-model-version", "x-request-id")


class _Passing:
    """A middleware that only passes requests on: the app then routes every request."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            _Passing.calls.append(scope["path"])
        await self.app(scope, receive, send)

    calls: list[str] = []


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveServer]]:
    """The same model served twice: answered directly, and through the router."""
    from tests.serve import _models

    tmp = tmp_path_factory.mktemp("direct")
    store = ServingStore(f"sqlite:///{tmp / 'metadata.db'}", str(tmp / "artifacts"), tmp)
    store.register(_models.classifier(), alias="champion")
    config = store.config(log_predictions=False, max_body_bytes=2_000)
    direct, routed = create_app(config), create_app(config)
    routed.add_middleware(_Passing)
    assert set(direct.direct_routes) == {"/predict", "/invocations"}
    assert not routed.direct_routes
    with live_app(direct) as one, live_app(routed) as other:
        yield one, other


CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/predict", {"json": {"records": [ROW], "request_id": "r1"}}),
    ("POST", "/predict", {"json": {"columns": {k: [v] for k, v in ROW.items()}}}),
    ("POST", "/invocations", {"json": {"dataframe_records": [ROW, ROW]}}),
    ("POST", "/invocations", {"content": "x,n,color,flag\n0.1,3,red,True\n"}),
    ("POST", "/predict", {"content": b"{"}),  # not JSON: 400
    ("POST", "/predict", {"json": {"records": [ROW], "extra": 1}}),  # unknown field: 400
    ("POST", "/predict", {"json": {"records": [{"x": 1.0}]}}),  # missing columns: 422
    ("POST", "/predict", {"json": {"records": [{**ROW, "x": "many"}]}}),  # bad value: 422
    ("POST", "/predict", {"json": {"records": []}}),  # no rows: 422
    ("POST", "/predict", {"json": {"records": [ROW], "request_id": "\n"}}),  # bad id: 400
    ("POST", "/predict", {"json": {"records": [ROW] * 60}}),  # over max_body_bytes: 413
    ("POST", "/invocations", {"content": b"{}", "headers": {"content-type": "text/xml"}}),
    ("POST", "/invocations", {"content": b"{}", "headers": {"content-type": ""}}),  # 415
    ("POST", "/predict", {"json": {"records": [ROW]}, "headers": {"x-event-time": "soon"}}),
    ("POST", "/predict", {"content": b"[" * 70 + b"]" * 70}),  # too deep: 400
    ("GET", "/predict", {}),  # 405
    ("POST", "/predict/", {"json": {"records": [ROW]}}),  # another path: the router's answer
]


@pytest.mark.parametrize(("method", "path", "send"), CASES)
def test_direct_answers_match_the_routed_ones(
    servers: tuple[LiveServer, LiveServer], method: str, path: str, send: dict[str, Any]
) -> None:
    direct, routed = servers
    headers = {"x-request-id": "same-id", **send.get("headers", {})}
    if "content" in send and "headers" not in send and path == "/invocations":
        headers["content-type"] = "text/csv"
    options = {k: v for k, v in send.items() if k != "headers"}
    ours = direct.client.request(method, path, headers=headers, follow_redirects=False, **options)
    theirs = routed.client.request(method, path, headers=headers, follow_redirects=False, **options)
    assert ours.status_code == theirs.status_code, ours.text
    assert ours.content == theirs.content
    for name in HEADERS:
        assert ours.headers.get(name) == theirs.headers.get(name), name
    if ours.status_code >= 400 and ours.headers.get("content-type") == "application/json":
        assert set(ours.json()) == {"error", "field"}


def test_direct_answers_are_counted_in_the_metrics(
    servers: tuple[LiveServer, LiveServer],
) -> None:
    direct, _ = servers
    good = direct.client.post("/predict", json={"records": [ROW]})
    bad = direct.client.post("/predict", json={"records": [{"x": 1.0}]})
    assert (good.status_code, bad.status_code) == (200, 422)
    text = direct.client.get("/metrics").text
    assert _sample(text, 'model_version="1",protocol="native",status="200"') >= 1
    assert _sample(text, 'model_version="",protocol="native",status="422"') >= 1


def test_a_middleware_sees_every_request(servers: tuple[LiveServer, LiveServer]) -> None:
    _, routed = servers
    before = _Passing.calls.count("/predict")
    assert routed.client.post("/predict", json={"records": [ROW]}).status_code == 200
    assert _Passing.calls.count("/predict") == before + 1


def test_a_server_that_checks_keys_routes_every_request(champion: ServingStore) -> None:
    app = create_app(champion.config(auth=True, log_predictions=False))
    assert not app.direct_routes


def _sample(metrics: str, labels: str) -> float:
    lines = [
        line
        for line in metrics.splitlines()
        if line.startswith("ctloop_requests_total{") and labels in line
    ]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)
