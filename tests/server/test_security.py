"""``ctloop server`` under attack and under load: schemathesis over the API with a valid
key, path traversal in artifact paths, expired and revoked keys, key material in the
logs, and eight clients writing runs at once on SQLite.

The schemathesis run here is sized for CI (``CTLOOP_FUZZ_EXAMPLES`` examples per
operation, 10 by default); ``CTLOOP_FUZZ_EXAMPLES=1000 pytest --timeout 3600 -s
tests/server/test_security.py -k schemathesis`` is the thorough one (about 20 minutes).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import uvicorn

from ctloop.server import create_app
from ctloop.store.workspace import Workspace
from tests.server._data import run_with_model
from tests.server.conftest import LiveServer, role_keys

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("CTLOOP_FUZZ_EXAMPLES", "10"))
MLFLOW = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"

#: artifact paths that must never be taken for a file's, each with what it tries
TRAVERSALS = {
    "parent": "../../etc/passwd",
    "inner-parent": "model/../../secret",
    "absolute": "/etc/passwd",
    "url-encoded": "%2e%2e%2fetc%2fpasswd",
    "backslashes": "..\\..\\windows\\win.ini",
    "drive": "C:/windows/win.ini",
    "nul": "model.json\x00.txt",
}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A team server on SQLite with a run, an artifact and a registered model in it."""
    from tests.server.conftest import start

    tmp = tmp_path_factory.mktemp("secure")
    workspace = Workspace.open(f"sqlite:///{tmp / 'metadata.db'}", artifacts=str(tmp / "art"))
    keys = role_keys(workspace)
    run_with_model(workspace)
    server, thread, url = start(create_app(workspace))
    try:
        yield LiveServer(url, workspace, keys)
    finally:
        server.should_exit = True
        thread.join(30)
        workspace.close()


def test_schemathesis_with_an_admin_key_finds_no_server_error(seeded: LiveServer) -> None:
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{seeded.url}/api/v1/openapi.json",
        "--checks",
        "not_a_server_error",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(EXAMPLES),
        "--generation-deterministic",
        "--no-color",
        "--workers",
        "1",
        "--header",
        f"Authorization: Bearer {seeded.keys['admin']}",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-6000:]
    print(report[-800:])  # the summary, for a thorough run with -s
    tested = re.search(r"Tested: (\d+)", report)
    assert tested is not None and int(tested.group(1)) >= 25, report[-2000:]  # every route
    generated = re.search(r"(\d+) generated, (\d+) passed", report)
    assert generated is not None and generated.group(1) == generated.group(2), report[-2000:]
    assert int(generated.group(1)) > 10 * EXAMPLES, report[-2000:]


def _mlflow_run(client: httpx.Client) -> str:
    made = client.post(f"{MLFLOW}/runs/create", json={"experiment_id": "0"})
    assert made.status_code == 200, made.text
    run_id: str = made.json()["run"]["info"]["run_id"]
    return run_id


@pytest.mark.parametrize("bad", TRAVERSALS.values(), ids=TRAVERSALS.keys())
def test_a_path_climbing_out_of_an_artifact_is_a_400_on_upload_and_download(
    seeded: LiveServer, bad: str
) -> None:
    artifact = seeded.workspace.registry.get_version("flights", 1).artifact_id
    headers = {"Authorization": f"Bearer {seeded.keys['editor']}"}
    with httpx.Client(base_url=seeded.url, headers=headers, timeout=30) as client:
        v1 = client.get(f"/api/v1/artifacts/{artifact}/download", params={"path": bad})
        assert v1.status_code == 400, v1.text
        assert v1.json()["field"] == "path" and "cannot be a file's" in v1.json()["error"]
        run_id = _mlflow_run(client)
        url = f"{ARTIFACTS}/0/{run_id}/artifacts/{quote(bad, safe='')}"
        upload = client.put(url, content=b"stolen?")
        assert upload.status_code == 400, upload.text
        assert upload.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        download = client.get(url)
        assert download.status_code == 400, download.text
        assert client.get(f"{ARTIFACTS}", params={"path": f"0/{run_id}/artifacts"}).json() == {
            "files": []
        }  # nothing was stored under any name


def test_a_good_path_still_uploads_and_downloads(seeded: LiveServer) -> None:
    headers = {"Authorization": f"Bearer {seeded.keys['editor']}"}
    with httpx.Client(base_url=seeded.url, headers=headers, timeout=30) as client:
        run_id = _mlflow_run(client)
        url = f"{ARTIFACTS}/0/{run_id}/artifacts/model/100%25 done.txt"
        assert client.put(url, content=b"ok").status_code == 200
        assert client.get(url).content == b"ok"


#: a number past 64 bits, where each route takes a number (found by schemathesis: SQLite
#: cannot bind it, and the answer was a 500)
HUGE = 2**70
HUGE_NUMBERS = {
    "approval": ("GET", f"/api/v1/approvals/{HUGE}", None, "approval_id"),
    "approve": ("POST", f"/api/v1/approvals/{HUGE}/approve", {"reason": "ok"}, "approval_id"),
    "reject": ("POST", f"/api/v1/approvals/{HUGE}/reject", {"reason": "no"}, "approval_id"),
    "version": ("GET", f"/api/v1/models/flights/versions/{HUGE}", None, "version"),
    "card": ("GET", f"/api/v1/models/flights/versions/{HUGE}/card", None, "version"),
    "alias": ("PUT", "/api/v1/models/flights/aliases/champion", {"version": HUGE}, "version"),
}


@pytest.mark.parametrize(
    ("method", "path", "body", "field"), HUGE_NUMBERS.values(), ids=HUGE_NUMBERS.keys()
)
def test_a_number_no_column_holds_is_a_422_naming_it(
    seeded: LiveServer, method: str, path: str, body: dict[str, object] | None, field: str
) -> None:
    headers = {"Authorization": f"Bearer {seeded.keys['admin']}"}
    with httpx.Client(base_url=seeded.url, headers=headers, timeout=30) as client:
        answer = client.request(method, path, json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == field
        assert "less than or equal to 2147483647" in answer.json()["error"]
        below = client.request(
            method,
            path.replace(str(HUGE), str(-HUGE)),
            json=body and {k: -HUGE if v == HUGE else v for k, v in body.items()},
        )
        assert below.status_code == 422, below.text
        assert "greater than or equal to 1" in below.json()["error"]
        small = {k: 99 if v == HUGE else v for k, v in body.items()} if body else None
        in_range = client.request(method, path.replace(str(HUGE), "99"), json=small)
        assert in_range.status_code == 404, in_range.text  # no such approval or version
    assert seeded.workspace.registry.get_version("flights", 1)  # nothing moved


@pytest.mark.parametrize(
    ("store", "method", "kwargs"),
    [
        ("approvals", "get", {"approval_id": HUGE}),
        ("metadata", "list_runs", {"limit": -HUGE}),
    ],
)
def test_the_workspace_protocol_answers_an_integer_past_64_bits_with_a_400(
    seeded: LiveServer, store: str, method: str, kwargs: dict[str, object]
) -> None:
    headers = {"Authorization": f"Bearer {seeded.keys['admin']}"}
    with httpx.Client(base_url=seeded.url, headers=headers, timeout=30) as client:
        answer = client.post(f"/api/v1/workspace/{store}/{method}", json={"kwargs": kwargs})
    assert answer.status_code == 400, answer.text
    assert answer.json()["type"] == "OverflowError"  # the caller's number, not the server


@pytest.mark.parametrize("which", ["expired", "revoked"])
def test_expired_and_revoked_keys_are_refused_on_every_protocol(
    seeded: LiveServer, which: str
) -> None:
    headers = {"Authorization": f"Bearer {seeded.keys[which]}"}
    with httpx.Client(base_url=seeded.url, headers=headers, timeout=30) as client:
        answers = [
            client.get("/api/v1/runs"),
            client.get("/api/v1/keys"),
            client.post("/api/v1/workspace/metadata/list_runs", json={"args": [], "kwargs": {}}),
            client.get(f"{MLFLOW}/experiments/search", params={"max_results": 1}),
            client.put(f"{ARTIFACTS}/0/x/artifacts/a.txt", content=b"x"),
        ]
    for answer in answers:
        assert answer.status_code == 401, (answer.request.url, answer.text)
        assert which in answer.text and seeded.keys[which] not in answer.text


def test_key_material_is_never_in_the_server_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Everything the server logs, at DEBUG with uvicorn's access log on, holds no key:
    not the keys used, not a key refused, not one created over the API."""
    caplog.set_level(logging.DEBUG)
    workspace = Workspace.open(f"sqlite:///{tmp_path / 'm.db'}", artifacts=str(tmp_path / "a"))
    keys = role_keys(workspace)
    run_with_model(workspace)
    config = uvicorn.Config(
        create_app(workspace), host="127.0.0.1", port=0, log_level="debug", log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive()
        threading.Event().wait(0.01)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    secrets = list(keys.values())
    try:
        for secret in [*secrets, "ctl_" + "z" * 43]:
            for header in (f"Bearer {secret}", secret, f"Token {secret}", f"Bearer {secret} x"):
                with httpx.Client(base_url=url, headers={"Authorization": header}) as client:
                    client.get("/api/v1/runs")
                    client.put("/api/v1/runs/nope/tags/t", json={"value": "v"})
                    client.get("/api/v1/nothing")
                    client.post(f"{MLFLOW}/runs/create", json={"experiment_id": "0"})
                    client.post("/api/v1/workspace/keys/list", json={"args": [], "kwargs": {}})
        admin = {"Authorization": f"Bearer {keys['admin']}"}
        created = httpx.post(
            f"{url}/api/v1/keys", json={"name": "n", "role": "viewer"}, headers=admin
        )
        secrets.append(created.json()["key"])
    finally:
        server.should_exit = True
        thread.join(30)
        workspace.close()
    out, err = capfd.readouterr()
    logged = "\n".join([caplog.text, out, err])
    assert "GET /api/v1/runs" in logged  # the access log was on and captured
    leaked = [s[:8] for s in secrets if s in logged or s[len("ctl_") :] in logged]
    assert leaked == []


def test_eight_clients_creating_runs_at_once_lose_nothing(seeded: LiveServer) -> None:
    headers = {"Authorization": f"Bearer {seeded.keys['editor']}"}
    barrier = threading.Barrier(8)
    made: dict[int, list[str]] = {}
    failures: list[str] = []

    def write(worker: int) -> None:
        mine = made.setdefault(worker, [])
        with httpx.Client(base_url=seeded.url, headers=headers, timeout=60) as client:
            barrier.wait(timeout=30)
            for i in range(10):
                run_id = _mlflow_run(client)
                batch = {
                    "run_id": run_id,
                    "params": [{"key": "worker", "value": str(worker)}],
                    "metrics": [
                        {"key": "loss", "value": s / 10, "timestamp": 1_700_000_000_000, "step": s}
                        for s in range(20)
                    ],
                    "tags": [{"key": "i", "value": str(i)}],
                }
                answer = client.post(f"{MLFLOW}/runs/log-batch", json=batch)
                if answer.status_code != 200:
                    failures.append(answer.text)
                mine.append(run_id)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    run_ids = [r for runs in made.values() for r in runs]
    assert len(run_ids) == len(set(run_ids)) == 80
    store = seeded.workspace.metadata
    assert set(run_ids) <= {r.id for r in store.list_runs()}
    for worker, runs in made.items():
        for run_id in runs:
            assert len(store.get_metrics(run_id, "loss")) == 20
            assert [(p.key, p.value) for p in store.get_params(run_id)] == [("worker", str(worker))]
            assert "i" in {t.key for t in store.get_tags(run_id)}
