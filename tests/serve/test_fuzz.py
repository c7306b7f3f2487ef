"""Requests generated from the server's OpenAPI schema (schemathesis): whatever a client
sends, the answer is never a server error."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.serve.conftest import LiveServer

FUZZED = {"/predict", "/invocations", "/feedback", "/v2/models/{model_name}/infer"}


def test_no_generated_request_gets_a_server_error(server: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    paths = {op.path for op in operations}
    assert paths >= FUZZED and "/v2/models/{model_name}" in paths
    answered: list[int] = []

    for operation in operations:
        checked = operation.path in FUZZED

        @given(case=operation.as_strategy())
        @settings(
            max_examples=40 if checked else 5,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(timeout=30)
            case.validate_response(response, checks=[not_a_server_error])
            answered.append(response.status_code)
            if case.path in FUZZED and response.status_code >= 400:
                assert "error" in response.json()

        fuzz()
    assert answered and max(answered) < 500
    assert any(400 <= status < 500 for status in answered)
