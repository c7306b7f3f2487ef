"""The server and its OpenAPI document agree: schemathesis, with every check and every
phase (stateful included), finds no server error and no request the document calls
valid that the server refuses, or invalid that it accepts.

The run here is small enough for CI (``CTLOOP_FUZZ_EXAMPLES`` examples per operation,
15 by default); ``CTLOOP_FUZZ_EXAMPLES=1000 pytest tests/serve/test_fuzz.py`` is the
thorough one. The constraints JSON Schema cannot state are taught to the generator in
:mod:`tests.serve.spec_hooks`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve.conftest import LiveServer, ServingStore, live_server

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("CTLOOP_FUZZ_EXAMPLES", "15"))


@pytest.fixture
def logged(champion: ServingStore) -> Iterator[LiveServer]:
    """The champion served with prediction and feedback logging on."""
    with live_server(champion.config()) as live:
        yield live


def test_the_document_is_exact_for_the_served_model(server: LiveServer) -> None:
    document = server.client.get("/openapi.json").json()
    native = document["paths"]["/predict"]["post"]
    body = native["requestBody"]["content"]["application/json"]["schema"]
    record = body["properties"]["records"]["oneOf"][0]["items"]
    assert record["required"] == ["x", "n", "color", "flag"]
    assert record["properties"]["n"]["type"] == "integer"
    assert record["properties"]["n"]["maximum"] == 2**63 - 1
    assert record["properties"]["color"]["type"] == ["string", "null"]  # one-hot ignores it
    assert record["properties"]["x"]["type"] == "number"  # the regression needs x
    assert {"400", "413", "422"} <= set(native["responses"])
    infer = document["paths"]["/v2/models/{model_name}/infer"]["post"]
    (name,) = [p for p in infer["parameters"] if p["name"] == "model_name"]
    assert name["schema"]["enum"] == ["flights"] and "404" in infer["responses"]
    feedback = document["paths"]["/feedback"]["post"]["requestBody"]
    label = feedback["content"]["application/json"]["schema"]["oneOf"][0]
    assert label["properties"]["label"]["type"] == "integer"
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]


def test_schemathesis_finds_nothing_with_every_check(logged: LiveServer) -> None:
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{logged.url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(EXAMPLES),
        "--generation-deterministic",
        "--no-color",
        "--workers",
        "1",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.serve.spec_hooks", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=max(1800, 4 * EXAMPLES)
    )
    report = proc.stdout + proc.stderr
    assert proc.returncode == 0, report[-6000:]
    assert "Tested: 22" in report and "Stateful" in report
    assert "No issues found" in report or "passed" in report, report[-2000:]
