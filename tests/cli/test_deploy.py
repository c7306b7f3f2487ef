"""``ctloop deploy``, ``ctloop deployments`` and ``ctloop feedback``, run as a user would."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ctloop.store.workspace import Workspace
from tests.cli.conftest import Cli
from tests.store.test_metadata_contract import make_artifact


@pytest.fixture
def workspace(cli: Cli) -> Workspace:
    """The CLI home's workspace, with 'flights' v1 (champion) and v2 (challenger)."""
    home = Path(cli.env["CTLOOP_HOME"])
    workspace = Workspace.open(
        f"sqlite:///{home / 'metadata.db'}", artifacts=str(home / "artifacts")
    )
    artifacts = [make_artifact(type="Model") for _ in range(2)]
    workspace.metadata.put_artifacts(artifacts)
    for artifact in artifacts:
        workspace.registry.register_version("flights", artifact.id)
    workspace.registry.set_alias("flights", "champion", 1)
    workspace.registry.set_alias("flights", "challenger", 2)
    return workspace


def test_deploy_canary_promote_and_history(cli: Cli, workspace: Workspace) -> None:
    first = json.loads(cli("deploy", "flights", "--reason", "first release", "--json").stdout)
    assert (first["name"], first["model"], first["primary"], first["canary"]) == (
        "flights",
        "flights",
        "champion",
        None,
    )
    canary = cli(
        "deploy", "flights", "--canary", "challenger", "--traffic", "10", "--no-sticky",
        "--max-error-rate", "0.02", "--max-p99-ms", "50", "--window", "30", "--json",
    )  # fmt: skip
    state = json.loads(canary.stdout)
    assert state["canary"] == {"version": 2, "traffic": 10.0, "sticky": False}
    assert state["rollback"] == {
        "max_error_rate": 0.02,
        "max_p99_ms": 50.0,
        "window_s": 30.0,
        "min_requests": 20,
    }
    shown = cli("deployments", "show", "flights").stdout
    assert "canary v2 at 10% (not sticky)" in shown
    cli("deploy", "flights", "--promote-canary", "--reason", "no errors in a day")
    history = json.loads(cli("deployments", "history", "flights", "--json").stdout)
    assert [h["action"] for h in history] == ["deploy", "canary", "promote"]
    assert history[-1]["reason"] == "no errors in a day" and history[-1]["created_by"]
    assert history[-1]["state"]["canary"] is None
    assert workspace.registry.get_by_alias("flights", "champion").version == 2
    table = cli("deployments", "history", "flights").stdout
    assert "promote" in table and "no errors in a day" in table
    listed = json.loads(cli("deployments", "list", "--json").stdout)
    assert [(d["name"], d["action"]) for d in listed] == [("flights", "promote")]


def test_shadow_stop_and_refusals(cli: Cli, workspace: Workspace) -> None:
    cli("deploy", "flights", "--primary", "1")
    shadow = json.loads(cli("deploy", "flights", "--shadow", "challenger", "--json").stdout)
    assert shadow["shadow"] == {"version": 2} and shadow["primary"] == "1"
    refused = cli("deploy", "flights", "--stop-canary", check=False)
    assert refused.returncode == 1 and "no canary to stop" in refused.stderr
    both = cli("deploy", "flights", "--stop-canary", "--stop-shadow", check=False)
    assert both.returncode == 1 and "one change per command" in both.stderr
    cli("deploy", "flights", "--stop-shadow")
    assert [r.action for r in workspace.deployments.history("flights")] == [
        "deploy",
        "shadow",
        "stop",
    ]
    missing = cli("deployments", "show", "taxi", check=False)
    assert missing.returncode == 1 and "'taxi' does not exist" in missing.stderr


def test_feedback_ingest(cli: Cli, workspace: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    pd.DataFrame({"request_id": ["a", "b", "c"], "label": [1, 0, 1]}).to_csv(path, index=False)
    out = json.loads(cli("feedback", "ingest", str(path), "--model", "flights", "--json").stdout)
    assert out["rows"] == 3 and out["model"] == "flights"
    assert [b.rows for b in workspace.logs.feedback("flights")] == [3]
