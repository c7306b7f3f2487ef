"""``ctloop serve --auth``: the workspace's API keys on the prediction server, a real
server on 127.0.0.1 answering real clients."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import event

from ctloop.store._keys import Role
from ctloop.store.records import utcnow
from tests.serve.conftest import ROW, LiveServer, ServingStore, live_server

_V2_ROW = [
    {"name": "x", "datatype": "FP64", "shape": [1], "data": [0.5]},
    {"name": "n", "datatype": "INT64", "shape": [1], "data": [3]},
    {"name": "color", "datatype": "BYTES", "shape": [1], "data": ["red"]},
    {"name": "flag", "datatype": "BOOL", "shape": [1], "data": [True]},
]
#: (method, path, body) of every prediction and model read: a viewer key is enough
READS = [
    ("POST", "/predict", {"records": [ROW]}),
    ("POST", "/invocations", {"dataframe_records": [ROW]}),
    ("POST", "/v2/models/flights/infer", {"inputs": _V2_ROW}),
    ("GET", "/version", None),
    ("GET", "/v2/models/flights", None),
    ("GET", "/v2/models/flights/config", None),
    ("POST", "/v2/repository/index", None),
]
FEEDBACK = ("POST", "/feedback", {"request_id": "r1", "label": 1})
OPEN = ["/ping", "/health", "/metrics", "/v2", "/v2/health/live", "/v2/health/ready"]


@pytest.fixture
def keys(champion: ServingStore) -> dict[str, str]:
    """A key of each role, an expired and a revoked one, in the served workspace."""
    ws = champion.workspace
    made = {role.value: ws.keys.create(f"{role}-key", role).secret for role in Role}
    past = utcnow() - timedelta(seconds=1)
    made["expired"] = ws.keys.create("old", Role.ADMIN, expires_at=past).secret
    revoked = ws.keys.create("gone", Role.ADMIN)
    ws.keys.revoke(revoked.record.id)
    made["revoked"] = revoked.secret
    return made


@pytest.fixture
def guarded(champion: ServingStore, keys: dict[str, str]) -> Iterator[LiveServer]:
    """The champion served with --auth (keys kept 0.3 s, so a revocation shows quickly)."""
    with live_server(champion.config(auth=True, key_cache_seconds=0.3)) as live:
        yield live


def call(live: LiveServer, method: str, path: str, body: object, key: str | None) -> object:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return live.client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), [*READS, FEEDBACK])
def test_without_a_key_every_model_endpoint_is_a_401_naming_authorization(
    guarded: LiveServer, method: str, path: str, body: object
) -> None:
    answer = guarded.client.request(method, path, json=body)
    assert answer.status_code == 401, answer.text
    document = answer.json()
    assert document["field"] == "authorization"
    assert "Authorization: Bearer ctl_" in document["error"]
    assert answer.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "body"), READS)
def test_a_viewer_key_predicts_and_reads_the_model(
    guarded: LiveServer, keys: dict[str, str], method: str, path: str, body: object
) -> None:
    answer = call(guarded, method, path, body, keys["viewer"])
    assert answer.status_code == 200, answer.text  # type: ignore[attr-defined]


def test_feedback_needs_an_editor_key(guarded: LiveServer, keys: dict[str, str]) -> None:
    refused = call(guarded, *FEEDBACK, keys["viewer"])
    assert refused.status_code == 403  # type: ignore[attr-defined]
    document = refused.json()  # type: ignore[attr-defined]
    assert document["field"] == "authorization" and "editor role" in document["error"]
    assert keys["viewer"] not in refused.text  # type: ignore[attr-defined]
    for role in ("editor", "admin"):
        answer = call(guarded, *FEEDBACK, keys[role])
        assert answer.status_code == 200, answer.text  # type: ignore[attr-defined]
        assert answer.json()["accepted"] == 1  # type: ignore[attr-defined]


def test_probes_and_metrics_need_no_key(guarded: LiveServer) -> None:
    for path in OPEN:
        assert guarded.client.get(path).status_code == 200, path


def test_the_openapi_document_is_open_and_names_the_bearer_scheme(guarded: LiveServer) -> None:
    document = guarded.client.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert document["paths"]["/predict"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in document["paths"]["/health"]["get"]


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("expired", "expired"),
        ("revoked", "revoked"),
        ("ctl_" + "x" * 43, "not known"),
    ],
)
def test_expired_revoked_and_unknown_keys_are_refused(
    guarded: LiveServer, keys: dict[str, str], key: str, says: str
) -> None:
    secret = keys.get(key, key)
    for path in ("/predict", "/v2/models/flights/infer"):
        body = {"records": [ROW]} if path == "/predict" else {"inputs": _V2_ROW}
        answer = call(guarded, "POST", path, body, secret)
        assert answer.status_code == 401, answer.text  # type: ignore[attr-defined]
        assert says in answer.json()["error"]  # type: ignore[attr-defined]
        assert secret not in answer.text  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "header", ["ctl_abc", "Basic dXNlcjpwYXNz", "Bearer not-a-ctloop-key", "Bearer", "Token"]
)
def test_a_malformed_authorization_header_is_a_401_that_does_not_repeat_it(
    guarded: LiveServer, header: str
) -> None:
    answer = guarded.client.post(
        "/predict", json={"records": [ROW]}, headers={"Authorization": header}
    )
    assert answer.status_code == 401
    assert answer.json()["field"] == "authorization"
    secret = header.partition(" ")[2]
    assert not secret or secret not in answer.json()["error"]


def test_a_revoked_key_stops_working_within_the_cache_time(
    champion: ServingStore, guarded: LiveServer, keys: dict[str, str]
) -> None:
    ws = champion.workspace
    created = ws.keys.create("short-lived", Role.VIEWER)
    assert call(guarded, "POST", "/predict", {"records": [ROW]}, created.secret).status_code == 200  # type: ignore[attr-defined]
    ws.keys.revoke(created.record.id)
    time.sleep(0.4)
    answer = call(guarded, "POST", "/predict", {"records": [ROW]}, created.secret)
    assert answer.status_code == 401 and "revoked" in answer.json()["error"]  # type: ignore[attr-defined]


def test_a_kept_key_costs_no_database_query(champion: ServingStore, keys: dict[str, str]) -> None:
    config = champion.config(auth=True, key_cache_seconds=60, log_predictions=False)
    with live_server(config) as live:
        engine = live.app.state.serving.guard.keys._engine
        statements: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        for _ in range(20):
            assert (
                call(live, "POST", "/predict", {"records": [ROW]}, keys["viewer"]).status_code
                == 200
            )  # type: ignore[attr-defined]
        time.sleep(0.2)  # the last-used write, once a minute, is off the event loop
    # the first request looks the key up and records its use; the 19 others read nothing
    assert len([s for s in statements if "api_keys" in s]) <= 2, statements


def test_keys_are_never_logged(
    champion: ServingStore, keys: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with live_server(champion.config(auth=True)) as live:
        for key in keys.values():
            call(live, "POST", "/predict", {"records": [ROW]}, key)
            call(live, *FEEDBACK, key)
            live.client.get("/nothing", headers={"Authorization": f"Bearer {key}"})
    logged = "\n".join(r.getMessage() + str(r.args) for r in caplog.records)
    assert caplog.records  # the server did log (startup at least)
    assert not any(key in logged for key in keys.values())


def test_serve_auth_off_loopback_has_no_warning_and_without_auth_warns(
    champion: ServingStore,
) -> None:
    # the warning is printed before the model is looked up; a missing model ends the run
    def run(*extra: str) -> str:
        command = [sys.executable, "-m", "ctloop", "serve", "nosuch@champion", *extra]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=champion.tmp)
        assert done.returncode != 0 and "nosuch" in done.stderr, done.stderr
        return done.stderr

    assert "no authentication" in run("--host", "0.0.0.0", "--port", "1")
    keyless = run("--host", "0.0.0.0", "--port", "1", "--auth")
    assert "no authentication" not in keyless
    assert "no usable API key" in keyless  # the champion's workspace has no key yet
    champion.workspace.keys.create("scoring", Role.VIEWER)
    assert "no usable API key" not in run("--host", "0.0.0.0", "--port", "1", "--auth")
