"""Requests generated from the server's OpenAPI schema (schemathesis): whatever a client
sends, the answer is never a server error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.serve import _models
from tests.serve.conftest import ServingStore, live_server


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The schema of a live server (version 1 of ``flights``), to generate requests from."""
    tmp = tmp_path_factory.mktemp("fuzz")
    store = ServingStore(f"sqlite:///{tmp / 'metadata.db'}", str(tmp / "artifacts"), tmp)
    store.register(_models.classifier(), alias="champion")
    with live_server(store.config(log_predictions=False)) as live:
        yield schemathesis.openapi.from_url(f"{live.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_request_gets_a_server_error(case: schemathesis.Case) -> None:
    response = case.call(timeout=30)
    case.validate_response(response, checks=[not_a_server_error])
    if case.path in ("/predict", "/invocations", "/feedback") and response.status_code >= 400:
        assert "error" in response.json()
