"""MLflow's logging routes answered directly (without FastAPI's router): the same answers,
errors, roles and audit entries as the routed path, and a write that waits for SQLite's
lock in a thread, never on the event loop."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.middleware.base import BaseHTTPMiddleware

from ctloop.server import create_app
from ctloop.store.workspace import Workspace
from tests.server.conftest import in_process, role_keys, start

BASE = "/api/2.0/mlflow"


async def _pass_through(request: Any, call_next: Any) -> Any:
    return await call_next(request)


def _workspace(folder: Path) -> Workspace:
    return Workspace.open(f"sqlite:///{folder / 'm.db'}", artifacts=str(folder / "a"))


@pytest.fixture
def twins(tmp_path: Path) -> Iterator[tuple[Any, Any, dict[str, str]]]:
    """Two servers on one workspace: the direct routes on, and off (a middleware)."""
    workspace = _workspace(tmp_path)
    keys = role_keys(workspace)
    direct, routed = create_app(workspace), create_app(workspace)
    routed.add_middleware(BaseHTTPMiddleware, dispatch=_pass_through)
    assert direct.direct_routes and not routed.direct_routes
    with in_process(direct) as one, in_process(routed) as other:
        yield one, other, keys
    workspace.close()


def _run_id(client: Any, key: str) -> str:
    answer = client.post(
        f"{BASE}/runs/create", json={"experiment_id": "0"}, headers={"Authorization": key}
    )
    run_id: str = answer.json()["run"]["info"]["run_id"]
    return run_id


def test_direct_and_routed_answers_are_the_same(twins: Any) -> None:
    direct, routed, keys = twins
    editor, viewer = f"Bearer {keys['editor']}", f"Bearer {keys['viewer']}"
    run_id = _run_id(direct, editor)
    point = {"run_id": run_id, "key": "loss", "value": 0.5, "timestamp": 1_700_000_000_000}
    cases: list[tuple[str, Any, str | None]] = [
        ("log-metric", point, editor),
        ("log-metric", {**point, "step": 3, "value": "NaN"}, editor),
        ("log-metric", {**point, "run_uuid": run_id, "run_id": None}, editor),
        ("log-metric", {**point, "value": "high"}, editor),
        ("log-metric", {**point, "value": None}, editor),
        ("log-metric", {**point, "step": "three"}, editor),
        ("log-metric", {**point, "key": ""}, editor),
        ("log-metric", {**point, "run_id": "f" * 32}, editor),
        ("log-metric", {"key": "loss", "value": 1}, editor),
        ("log-metric", point, viewer),
        ("log-metric", point, None),
        ("log-metric", point, "Bearer ctl_not-a-key"),
        ("log-metric", point, f"Bearer {keys['revoked']}"),
        ("log-metric", b"{not json", editor),
        ("log-metric", b"[1, 2]", editor),
        ("log-parameter", {"run_id": run_id, "key": "lr", "value": "0.1"}, editor),
        ("log-parameter", {"run_id": run_id, "key": "lr", "value": "0.2"}, editor),
        ("set-tag", {"run_id": run_id, "key": "team", "value": "a"}, editor),
        ("set-tag", {"run_id": run_id, "key": "ctloop.mlflow.x", "value": "a"}, editor),
        ("log-batch", {"run_id": run_id, "metrics": [point] * 1001}, editor),
        ("log-batch", {"run_id": run_id, "metrics": "no"}, editor),
        ("log-batch", {"run_id": run_id, "metrics": [point, {**point, "step": 1}]}, editor),
        ("log-batch", {"run_id": run_id, "metrics": [point, {**point, "value": "x"}]}, editor),
        ("log-batch", {"run_id": "f" * 32, "metrics": [point]}, editor),
        ("log-batch", {"run_id": run_id, "metrics": [point]}, viewer),
        ("log-batch", {"run_id": run_id, "metrics": [point], "params": [{"key": "lr",
         "value": "0.1"}], "tags": [{"key": "t", "value": "v"}]}, editor),
    ]  # fmt: skip
    for path, body, key in cases:
        answers = []
        for client in (direct, routed):
            headers = {} if key is None else {"Authorization": key}
            content = body if isinstance(body, bytes) else None
            json_body = None if content is not None else body
            answer = client.post(
                f"{BASE}/runs/{path}", json=json_body, content=content, headers=headers
            )
            assert answer.status_code < 500, answer.text
            answers.append(
                (answer.status_code, answer.json(), answer.headers.get("www-authenticate"))
            )
        assert answers[0] == answers[1], (path, body, key)
    history = direct.get(
        f"{BASE}/metrics/get-history",
        params={"run_id": run_id, "metric_key": "loss"},
        headers={"Authorization": editor},
    ).json()["metrics"]
    # each twin wrote the two good points and the NaN one, the metrics batch's two and the
    # mixed batch's one
    assert [(m["step"], m["value"]) for m in history] == (
        [(0, 0.5)] * 8 + [(1, 0.5)] * 2 + [(3, "NaN")] * 2
    )
    entries = direct.get("/api/v1/audit", params={"action": "mlflow.run.log", "limit": 100},
                         headers={"Authorization": f"Bearer {keys['admin']}"}).json()  # fmt: skip
    details = sorted(str(e["detail"]) for e in entries["items"])
    assert details == sorted(
        [str({"method": "POST", "metrics": 1})] * 6
        + [str({"method": "POST", "params": 1})] * 2
        + [str({"method": "POST", "tags": 1})] * 2
        + [str({"method": "POST", "metrics": 2, "params": 0, "tags": 0})] * 2
        + [str({"method": "POST", "metrics": 1, "params": 1, "tags": 1})] * 2
    )


def test_a_directly_logged_point_is_stored_with_its_audit_entry(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path)
    keys = role_keys(workspace)
    with in_process(create_app(workspace)) as client:
        editor = f"Bearer {keys['editor']}"
        run_id = _run_id(client, editor)
        for step in range(3):
            answer = client.post(
                f"{BASE}/runs/log-metric",
                json={"run_id": run_id, "key": "auc", "value": (7 + step) / 10, "step": step,
                      "timestamp": 1_700_000_000_000 + step},
                headers={"Authorization": editor},
            )  # fmt: skip
            assert (answer.status_code, answer.content) == (200, b"{}")
        run = client.get(
            f"{BASE}/runs/get", params={"run_id": run_id}, headers={"Authorization": editor}
        ).json()["run"]
    assert run["data"]["metrics"] == [
        {"key": "auc", "value": 0.9, "timestamp": 1_700_000_000_002, "step": 2}
    ]
    points = workspace.metadata.get_metrics(run_id, "auc")
    assert [(m.step, round(m.value, 6)) for m in points] == [(0, 0.7), (1, 0.8), (2, 0.9)]
    assert workspace.metadata.latest_metric_values("auc", [run_id]) == {run_id: 0.9}
    entries = [e for e in workspace.audit.list(action="mlflow.run.log")]
    assert len(entries) == 3
    entry = entries[0]
    assert (entry.actor, entry.object, entry.status, entry.remote) == (
        "editor-key",
        f"run {run_id}",
        200,
        "testclient",
    )
    assert entry.detail == {"method": "POST", "metrics": 1}
    assert entry.key_id is not None and entry.at.tzinfo is not None
    workspace.close()


def test_a_write_waiting_for_the_lock_does_not_stop_the_server(tmp_path: Path) -> None:
    """Another process holding SQLite's write lock: the point waits for it in a thread,
    the server keeps answering reads meanwhile, and the point is written once."""
    workspace = _workspace(tmp_path)
    keys = role_keys(workspace)
    server, thread, url = start(create_app(workspace))
    headers = {"Authorization": f"Bearer {keys['editor']}"}
    try:
        with httpx.Client(base_url=url + BASE, headers=headers, timeout=60) as client:
            run_id = client.post("/runs/create", json={"experiment_id": "0"}).json()["run"]
            run_id = run_id["info"]["run_id"]
            point = {"run_id": run_id, "key": "loss", "value": 1.0, "timestamp": 0}
            assert client.post("/runs/log-metric", json=point).status_code == 200
            holder = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            answered: list[httpx.Response] = []
            writer = threading.Thread(
                target=lambda: answered.append(
                    client.post("/runs/log-metric", json={**point, "step": 1})
                )
            )
            writer.start()
            time.sleep(0.3)
            assert not answered  # it waits for the lock
            started = time.monotonic()
            read = client.get("/runs/get", params={"run_id": run_id})
            assert read.status_code == 200 and time.monotonic() - started < 2
            holder.execute("COMMIT")
            holder.close()
            writer.join(30)
            assert answered and answered[0].status_code == 200, answered
    finally:
        server.should_exit = True
        thread.join(30)
    assert [m.step for m in workspace.metadata.get_metrics(run_id, "loss")] == [0, 1]
    workspace.close()


def test_eight_clients_logging_point_by_point_lose_nothing(tmp_path: Path) -> None:
    """Points written on the event loop and params written in threads, by 8 clients at
    once: every answered point and its audit entry are stored."""
    workspace = _workspace(tmp_path)
    keys = role_keys(workspace)
    server, thread, url = start(create_app(workspace))
    headers = {"Authorization": f"Bearer {keys['editor']}"}
    barrier = threading.Barrier(8)
    runs: dict[int, str] = {}
    failures: list[str] = []

    def log(worker: int) -> None:
        with httpx.Client(base_url=url + BASE, headers=headers, timeout=60) as client:
            created = client.post("/runs/create", json={"experiment_id": "0"}).json()
            run_id = runs[worker] = created["run"]["info"]["run_id"]
            barrier.wait(timeout=30)
            for step in range(30):
                point = {"run_id": run_id, "key": "loss", "value": step / 30, "step": step,
                         "timestamp": 1_700_000_000_000 + step}  # fmt: skip
                answers = [client.post("/runs/log-metric", json=point)]
                if step % 6 == 0:
                    param = {"run_id": run_id, "key": f"p{step}", "value": str(worker)}
                    answers.append(client.post("/runs/log-parameter", json=param))
                failures.extend(a.text for a in answers if a.status_code != 200)

    try:
        workers = [threading.Thread(target=log, args=(w,)) for w in range(8)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(120)
    finally:
        server.should_exit = True
        thread.join(30)
    assert failures == []
    store = workspace.metadata
    for worker, run_id in runs.items():
        assert [m.step for m in store.get_metrics(run_id, "loss")] == list(range(30))
        assert {p.key: p.value for p in store.get_params(run_id)} == {
            f"p{s}": str(worker) for s in range(0, 30, 6)
        }
        assert store.latest_metric_values("loss", [run_id]) == {run_id: 29 / 30}
    logged = workspace.audit.list(action="mlflow.run.log", limit=1000)
    assert len(logged) == 8 * (30 + 5)
    workspace.close()
