"""A canary that fails is answered for by the primary: ``ctloop serve`` in its own process
on 127.0.0.1, a canary taking every request, whose transform (preprocess, postprocess) or
model raises, or which refuses input the primary accepts. Every protocol answers the
primary's outputs, the failure is logged with the request id, counted in
``ctloop_canary_fallbacks_total`` and against the canary's rollback policy; input the
primary refuses too stays the client's 422."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ctloop.store._deployments import RollbackPolicy, deploy, start_canary
from ctloop.store.workspace import Workspace
from tests.serve import _canaries, _models, _transforms
from tests.serve._process import serve_process, workspace_urls
from tests.serve.test_transform_serving import by_protocol, outputs

RAW = _transforms.RAW
LENIENT = RollbackPolicy(max_error_rate=1.0, window_s=600, min_requests=10_000)
"""A policy that never rolls back (an error rate cannot exceed 1)."""


@dataclass(frozen=True)
class Served:
    url: str
    log: Path
    workspace: Workspace

    def metric(self, cause: str) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        pattern = rf'ctloop_canary_fallbacks_total\{{cause="{cause}",model_version="2"\}} (\S+)'
        found = re.search(pattern, text)
        return 0.0 if found is None else float(found.group(1))


@contextlib.contextmanager
def serving(tmp: Path, policy: RollbackPolicy, poll_seconds: float = 0) -> Iterator[Served]:
    """``ctloop serve flights@champion`` with version 2 (the flaky canary) at 100 %."""
    store_url, artifacts = workspace_urls(tmp)
    workspace = Workspace.open(store_url, artifacts=artifacts)
    try:
        primary = _models.register(workspace, "flights", _transforms.transformed(), tmp)
        workspace.registry.set_alias("flights", "champion", primary)
        canary = _models.register(workspace, "flights", _canaries.canary(), tmp)
        deploy(workspace, "flights", "flights", "champion")
        start_canary(workspace, "flights", canary, traffic=100, sticky=False, policy=policy)
        options = ("--no-log-predictions", "--poll-seconds", str(poll_seconds))
        with serve_process(tmp, "flights@champion", *options) as process:
            yield Served(process.url, process.log, workspace)
    finally:
        workspace.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("canary-fallback"), LENIENT) as served:
        yield served


def answered_by(protocol: str, answer: httpx.Response) -> str:
    if protocol == "v2":
        return str(answer.json()["model_version"])
    return answer.headers["x-model-version"]


def test_a_healthy_request_is_answered_by_the_canary(served: Served) -> None:
    for protocol, answer in by_protocol(served.url, RAW).items():
        assert answer.status_code == 200, (protocol, answer.text)
        assert answered_by(protocol, answer) == "2", protocol
        assert outputs(protocol, answer)["probability"] == [_canaries.CANARY_VALUE] * 3


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"fail": "preprocess"}, "the canary's preprocess is broken"),
        ({"fail": "postprocess"}, "the canary's postprocess is broken"),
        ({"x": 150.0}, "the canary's model is broken"),
    ],
    ids=["preprocess", "postprocess", "predict"],
)
def test_a_failing_canary_is_answered_for_by_the_primary_on_every_protocol(
    served: Served, change: dict[str, Any], words: str
) -> None:
    rows = [{**row, "fail": "no", **change} for row in RAW]
    before = served.metric("error")
    primary = _transforms.expected() if "x" not in change else None
    answers = by_protocol(served.url, rows)
    for protocol, answer in answers.items():
        assert answer.status_code == 200, (protocol, answer.text)
        assert answered_by(protocol, answer) == "1", protocol
        got = outputs(protocol, answer)
        assert list(got) == ["probability", "late"], protocol
        if primary is not None:
            assert got["probability"] == pytest.approx(primary["probability"], abs=1e-12)
    assert served.metric("error") == before + len(answers)
    time.sleep(0.2)  # the log lines are written as the answers go out
    log = served.log.read_text()
    for protocol, answer in answers.items():
        request_id = answer.headers["x-request-id"]
        line = next((li for li in log.splitlines() if f"request {request_id}:" in li), None)
        assert line is not None, (protocol, log[-2000:])
        assert "canary version 2 failed, answered by the primary version 1" in line
        assert words in line, line


def test_input_only_the_canary_refuses_is_answered_by_the_primary(served: Served) -> None:
    rows = [{**row, "fail": "refuse"} for row in RAW]
    before = served.metric("refused")
    answers = by_protocol(served.url, rows)
    for protocol, answer in answers.items():
        assert answer.status_code == 200, (protocol, answer.text)
        assert answered_by(protocol, answer) == "1", protocol
    assert served.metric("refused") == before + len(answers)
    time.sleep(0.2)
    request_id = answers["v2"].headers["x-request-id"]
    assert f"request {request_id}: canary version 2 refused input the primary accepts" in (
        served.log.read_text()
    )


def test_input_the_primary_refuses_too_stays_the_client_s_422(served: Served) -> None:
    rows = [{**RAW[0], "fail": "refuse"}, {**RAW[1], "colour": 3, "fail": "refuse"}]
    before = served.metric("refused"), served.metric("error")
    for protocol, answer in by_protocol(served.url, rows).items():
        assert answer.status_code == 422, (protocol, answer.text)
        assert answer.json()["field"] == "colour", (protocol, answer.text)
    assert (served.metric("refused"), served.metric("error")) == before


def test_canary_failures_count_against_its_rollback_policy(tmp_path: Path) -> None:
    policy = RollbackPolicy(max_error_rate=0.2, window_s=300, min_requests=5)
    with serving(tmp_path, policy, poll_seconds=0.2) as served:
        rows = [{**row, "fail": "postprocess"} for row in RAW]
        for _ in range(3):
            for protocol, answer in by_protocol(served.url, rows).items():
                assert answer.status_code == 200, (protocol, answer.text)
        deadline = time.monotonic() + 30
        while True:
            record = served.workspace.deployments.latest("flights")
            if record is not None and record.action == "auto-rollback":
                break
            assert time.monotonic() < deadline, served.log.read_text()[-3000:]
            time.sleep(0.1)
        assert "error rate 1.000 > 0.2" in record.reason
        after = httpx.post(f"{served.url}/predict", json={"records": RAW}, timeout=10)
        assert after.status_code == 200 and after.headers["x-model-version"] == "1"
