"""Every endpoint of the OpenAPI document × every role × no key: 401 or 403 where it
must be, never a 500."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.server.conftest import LiveServer

#: the least role each (method, path) needs
ADMIN_ONLY = re.compile(r"^/api/v1/(keys|audit|approvals/[^/]+/(approve|reject))")
BODY = {"value": "v", "version": 1, "name": "probe", "role": "viewer"}
RANKS = {"viewer": 0, "editor": 1, "admin": 2}


def needed(method: str, path: str) -> str:
    """The role the API promises each endpoint needs."""
    if ADMIN_ONLY.match(path):
        return "admin"
    if path.startswith("/api/v1/workspace/") and method == "post":
        return "viewer"  # a store call: each method has its own role (reads are viewers')
    return "viewer" if method == "get" else "editor"


def endpoints(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(method, concrete path) of every operation, path parameters filled in."""
    found = []
    for path, operations in document["paths"].items():
        concrete = path.replace("{version}", "1").replace("{alias}", "staging")
        concrete = re.sub(r"\{[^}]+\}", "missing", concrete)
        found += [(method, concrete) for method in operations]
    return found


def test_the_openapi_document_is_served_and_lists_every_resource(live: LiveServer) -> None:
    with live.client() as client:
        document = client.get("/openapi.json").json()
    paths = set(document["paths"])
    for expected in (
        "/api/v1/runs",
        "/api/v1/artifacts/{artifact_id}/download",
        "/api/v1/audit",
        "/api/v1/models/{name}/aliases/{alias}",
        "/api/v1/triggers/firings",
    ):
        assert expected in paths
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


@pytest.mark.parametrize("caller", [None, "expired", "revoked", "viewer", "editor", "admin"])
def test_every_endpoint_refuses_what_it_must_and_never_fails(
    live: LiveServer, caller: str | None
) -> None:
    with live.client() as anonymous:
        document = anonymous.get("/openapi.json").json()
    with live.client(caller) as client:
        for method, path in endpoints(document):
            body = BODY if method in ("put", "post") else None
            response = client.request(method, path.removeprefix("/api/v1"), json=body)
            status = response.status_code
            assert status < 500, (method, path, response.text)
            assert set(response.json()) >= {"error"} or status < 400, (method, path)
            if caller in (None, "expired", "revoked"):
                assert status == 401, (method, path, status)
                assert response.headers["www-authenticate"] == "Bearer"
            elif RANKS[caller] < RANKS[needed(method, path)]:
                assert status == 403, (method, path, status)
            else:
                assert status not in (401, 403), (method, path, response.text)


def test_expired_and_revoked_keys_are_refused_with_the_reason(live: LiveServer) -> None:
    with live.client("expired") as expired, live.client("revoked") as revoked:
        assert "expired" in expired.get("/runs").json()["error"]
        assert "revoked" in revoked.get("/runs").json()["error"]


def test_a_malformed_header_is_a_401_that_does_not_repeat_it(live: LiveServer) -> None:
    secret = live.keys["admin"]
    with live.client() as client:
        for header in (secret, f"Basic {secret}", "Bearer nope", "Bearer"):
            response = client.get("/runs", headers={"Authorization": header})
            assert response.status_code == 401
            assert secret not in response.text


#: MLflow's POST routes that only read (searches), which a viewer may call
MLFLOW_READ_POSTS = re.compile(r"/(search|get-latest-versions)$")
MLFLOW_BODY = {
    "experiment_id": "0",
    "run_id": "missing",
    "name": "probe",
    "key": "k",
    "value": "1",
    "alias": "staging",
    "version": "1",
}


def mlflow_endpoints() -> list[tuple[str, str]]:
    """(method, concrete path) of every MLflow route (they are not in the OpenAPI
    document), as the server mounts them, path parameters filled in."""
    from fastapi.routing import APIRoute

    from ctloop.server._mlflow._artifacts import artifacts_router
    from ctloop.server._mlflow._experiments import experiments_router
    from ctloop.server._mlflow._models import logged_models_router
    from ctloop.server._mlflow._registry import registry_router
    from ctloop.server._mlflow._tracking import tracking_router

    mounted = [
        (prefix, router)
        for root in ("/api/2.0", "/ajax-api/2.0")
        for prefix, router in [
            *(
                (f"{root}/mlflow", make())
                for make in (
                    experiments_router,
                    tracking_router,
                    logged_models_router,
                    registry_router,
                )
            ),
            (f"{root}/mlflow-artifacts", artifacts_router()),
        ]
    ]
    found = []
    for prefix, router in mounted:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            concrete = (prefix + route.path).replace("{path:path}", "0/missing/artifacts/a.txt")
            concrete = re.sub(r"\{[^}]+\}", "missing", concrete)
            found += [(method.lower(), concrete) for method in sorted(route.methods)]
    return found


def mlflow_needed(method: str, path: str) -> str:
    """The role each MLflow route needs: reads and searches a viewer's, writes an editor's."""
    if method == "get" or MLFLOW_READ_POSTS.search(path):
        return "viewer"
    return "editor"


@pytest.fixture(scope="module")
def mlflow_routes() -> list[tuple[str, str]]:
    return mlflow_endpoints()


def test_the_mlflow_routes_are_all_found(mlflow_routes: list[tuple[str, str]]) -> None:
    paths = {path for _, path in mlflow_routes}
    for root in ("/api/2.0", "/ajax-api/2.0"):
        for expected in ("/mlflow/runs/log-metric", "/mlflow/registered-models/alias"):
            assert root + expected in paths
        assert f"{root}/mlflow-artifacts/artifacts/0/missing/artifacts/a.txt" in paths
    assert len(mlflow_routes) > 100


@pytest.mark.parametrize("caller", [None, "expired", "revoked", "viewer", "editor", "admin"])
def test_every_mlflow_route_refuses_what_it_must_in_mlflow_s_shape_and_never_fails(
    live: LiveServer, caller: str | None, mlflow_routes: list[tuple[str, str]]
) -> None:
    headers = {} if caller is None else {"Authorization": f"Bearer {live.keys[caller]}"}
    with httpx.Client(base_url=live.url, headers=headers, timeout=60) as client:
        for method, path in mlflow_routes:
            body = MLFLOW_BODY if method != "get" else None
            params = MLFLOW_BODY if method == "get" else None
            response = client.request(method, path, json=body, params=params)
            status = response.status_code
            assert status < 500, (method, path, response.text)
            if status >= 400:
                assert set(response.json()) >= {"error_code", "message"}, (method, path)
            if caller in (None, "expired", "revoked"):
                assert status == 401, (method, path, status)
                assert response.json()["error_code"] == "UNAUTHENTICATED"
            elif RANKS[caller] < RANKS[mlflow_needed(method, path)]:
                assert status == 403, (method, path, status)
                assert response.json()["error_code"] == "PERMISSION_DENIED"
            else:
                assert status not in (401, 403), (method, path, response.text)
