"""Pure parts of the server (cursors, downsampling, the bind rule) and the API on an
in-memory workspace, in process."""

from __future__ import annotations

from typing import Any

import pytest

from ctloop import errors
from ctloop.errors import ConfigError
from ctloop.server import check_bind, is_loopback
from ctloop.server._errors import BadRequestError, status_of
from ctloop.server._paging import decode_cursor, encode_cursor, page_of
from ctloop.server._runs import downsample
from ctloop.store.workspace import Workspace
from tests.server._data import run_with_model
from tests.server.conftest import in_process


def test_downsampling_keeps_the_ends_and_spreads_the_rest() -> None:
    points = list(range(101))
    assert downsample(points, 5) == [0, 25, 50, 75, 100]
    assert downsample(points, 1) == [100]
    assert downsample(points[:3], 10) == [0, 1, 2]


def test_pages_of_a_sorted_list_cover_it_once() -> None:
    items = list(range(10))
    seen, cursor = [], None
    while True:
        page = page_of(items, key=lambda n: [n], cursor=cursor, limit=3)
        seen += page["items"]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == items
    assert decode_cursor(encode_cursor(["a", 1])) == ["a", 1]
    for garbage in ("!!", encode_cursor([]), "e30"):
        with pytest.raises(BadRequestError, match="cursor"):
            decode_cursor(garbage)


def test_without_auth_only_loopback_addresses_are_allowed() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.3.2.1", "::1", "localhost", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.com"))
    check_bind("0.0.0.0", auth=True)
    with pytest.raises(ConfigError, match=r"refusing to serve without auth on 0\.0\.0\.0"):
        check_bind("0.0.0.0", auth=False)


def test_the_api_runs_on_an_in_memory_workspace(
    memory_app: tuple[Any, Workspace, dict[str, str]],
) -> None:
    client, workspace, keys = memory_app
    run, artifact, _ = run_with_model(workspace)
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    assert client.get("/api/v1/runs").status_code == 401
    page = client.get("/api/v1/runs", headers=admin).json()
    assert [item["id"] for item in page["items"]] == [run.id] and page["next_cursor"] is None
    models = client.get("/api/v1/models", headers=admin).json()["items"]
    assert [m["name"] for m in models] == ["flights"]
    assert (
        client.get("/api/v1/models/flights/versions/1", headers=admin).json()["artifact_id"]
        == artifact.id
    )
    for path in (
        "/api/v1/deployments",
        "/api/v1/alerts",
        "/api/v1/triggers",
        "/api/v1/triggers/firings",
    ):
        assert client.get(path, headers=admin).json() == {"items": [], "next_cursor": None}
    assert client.get("/api/v1/models/taxi", headers=admin).status_code == 404
    wrong = client.post("/api/v1/runs", headers=admin)
    assert wrong.status_code == 405 and wrong.json()["field"] is None


def test_without_auth_anyone_may_write_and_is_audited_as_anonymous() -> None:
    from ctloop.server import create_app

    with Workspace.in_memory() as workspace:
        run_with_model(workspace)
        client = in_process(create_app(workspace, auth=False, production_aliases={"live"}))
        assert client.put("/api/v1/models/flights/aliases/champion", json={"version": 1}).is_success
        entry = workspace.audit.list()[0]
        assert (entry.actor, entry.action, entry.key_id) == ("anonymous", "alias.set", None)


def test_the_package_exports_exactly_its_public_names() -> None:
    import ctloop.server

    public = {name for name in vars(ctloop.server) if not name.startswith("_")}
    assert public - {"annotations"} == set(ctloop.server.__all__)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.ConflictError("version 3 is no longer the latest"), 409),
        (errors.IntegrityError("already exists"), 409),
        (errors.NotFoundError("no run r1"), 404),
        (errors.StoreUnavailableError("the database is down"), 503),
        (ConfigError("bad window"), 400),
        (RuntimeError("a bug"), 500),
    ],
)
def test_each_error_family_answers_its_status(error: Exception, status: int) -> None:
    assert status_of(error) == status


def test_mlflow_s_tracking_routes_are_matched_first(
    memory_app: tuple[Any, Workspace, dict[str, str]],
) -> None:
    # a request is matched against the routers in order: a client logging metric by
    # metric should not be tried against every route of API v1 first
    client, _, _ = memory_app
    routers = [r.original_router for r in client.app.routes if hasattr(r, "original_router")]
    assert "/runs/log-metric" in [getattr(route, "path", "") for route in routers[0].routes]


def test_an_mlflow_route_renders_its_answer_in_the_endpoint_s_thread() -> None:
    from fastapi import APIRouter, FastAPI
    from fastapi.testclient import TestClient

    from ctloop.server._mlflow._protocol import MlflowRoute

    router = APIRouter(route_class=MlflowRoute)

    @router.get("/answer")
    def answer() -> dict[str, Any]:
        return {"value": float("nan"), "steps": [1, 2], "name": "loss"}

    route = next(r for r in router.routes if isinstance(r, MlflowRoute))
    assert route.response_model is None  # no second trip to a thread to validate it
    app = FastAPI()
    app.include_router(router)
    with TestClient(app) as client:
        got = client.get("/answer")
    assert got.status_code == 200 and got.headers["content-type"] == "application/json"
    assert got.json() == {"value": None, "steps": [1, 2], "name": "loss"}  # NaN as FastAPI
