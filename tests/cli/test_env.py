"""``ctloop env`` on a project with test, staging and prod environments: a model trained
in test is promoted to staging, refused in prod until an admin approves it, then
promoted there with its lineage back to the run in test."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from ctloop.artifacts import load_value
from ctloop.pipeline._runner import run_pipeline
from ctloop.store.workspace import Workspace
from tests.cli.conftest import Cli
from tests.registry.gated_training import flights, gated_training

SETTINGS = """\
environments:
  test:
    store_url: sqlite:///.ctloop/test/metadata.db
    artifact_url: .ctloop/test/artifacts
  staging:
    store_url: sqlite:///.ctloop/staging/metadata.db
    artifact_url: .ctloop/staging/artifacts
    endpoint: http://127.0.0.1:8081
  prod:
    store_url: sqlite:///.ctloop/prod/metadata.db
    artifact_url: .ctloop/prod/artifacts
    endpoint: http://127.0.0.1:8082
    requires_approval: true
"""


def open_env(root: Path, name: str) -> Workspace:
    return Workspace.open(
        f"sqlite:///{root / '.ctloop' / name / 'metadata.db'}",
        artifacts=str(root / ".ctloop" / name / "artifacts"),
    )


@pytest.fixture
def project(cli: Cli) -> tuple[Cli, str]:
    """The project folder with its settings and a champion trained in test (its run id)."""
    (cli.cwd / "ctloop.yaml").write_text(SETTINGS)
    with open_env(cli.cwd, "test") as workspace:
        result = run_pipeline(gated_training, {}, workspace=workspace)
    return cli, result.run_id


def test_a_model_moves_test_to_staging_to_prod_behind_an_approval(
    project: tuple[Cli, str],
) -> None:
    cli, run_id = project
    listed = cli("env", "list").stdout
    assert "staging" in listed and "http://127.0.0.1:8082" in listed and "required" in listed

    staged = cli("env", "promote", "flights@champion", "--to", "staging").stdout
    assert "promoted flights@1 (test) -> flights@1 (staging), champion points at it" in staged

    refused = cli("env", "promote", "flights@champion", "--to", "prod", check=False)
    assert refused.returncode == 1
    message = " ".join(refused.stderr.split())
    assert "promoting flights@1 from staging to prod needs an approval: request #1" in message
    assert 'ctloop env approve flights@1 --to prod --reason "..."' in message
    with open_env(cli.cwd, "prod") as prod:
        assert prod.registry.list_models() == []  # nothing moved
        assert [a.state for a in prod.approvals.list()] == ["requested"]

    cli("env", "approve", "flights@1", "--to", "prod", "--reason", "reviewed ci-report")
    done = json.loads(cli("env", "promote", "flights@champion", "--to", "prod", "--json").stdout)
    assert done["version"]["version"] == 1 and done["approval"]["state"] == "deployed"
    assert done["approval"]["reason"] == "reviewed ci-report"

    with open_env(cli.cwd, "prod") as prod, open_env(cli.cwd, "test") as test:
        version = prod.registry.resolve("flights@champion")
        assert version.tags["ctloop.origin.run_id"] == run_id  # prod traces back to test
        assert version.tags["ctloop.origin.environment"] == "test"
        assert version.tags["ctloop.source.environment"] == "staging"
        trained = test.registry.resolve("flights@champion")
        source = test.metadata.get_artifact(trained.artifact_id)
        copied = prod.metadata.get_artifact(version.artifact_id)
        assert copied.digest == source.digest == version.tags["ctloop.digest"]
        assert copied.properties["promotion"]["ctloop.source.version"] == "flights@1"
        lineage = json.loads(prod.artifacts.get_bytes(version.tags["ctloop.lineage"]))
        assert lineage["upstream"]["lineage"]["model_version"]["run_id"] == run_id
        rows = flights(20).drop(columns="late")[["dep_delay"]]
        in_prod = load_value(copied, prod.artifacts, cache_dir=cli.cwd / "cache")
        in_test = load_value(source, test.artifacts, cache_dir=cli.cwd / "cache")
        assert (in_prod.predict(rows) == in_test.predict(rows)).all()

    status = json.loads(cli("env", "status", "--json").stdout)
    prod_status = next(e for e in status if e["environment"] == "prod")
    assert prod_status["models"] == [
        {
            "model": "flights",
            "alias": "champion",
            "version": 1,
            "from": "flights@1",
            "source": "staging",
            "origin_run_id": run_id,
        }
    ]
    assert prod_status["approvals"][0]["state"] == "deployed"
    text = cli("env", "status", "--env", "prod").stdout
    assert "flights@champion = v1 <- flights@1 (staging)" in text
    assert "deployed by" in text and "reviewed ci-report" in text


def test_a_rejected_version_stays_out_and_says_why(project: tuple[Cli, str]) -> None:
    cli, _ = project
    cli("env", "promote", "flights@champion", "--to", "staging")
    rejected = cli("env", "reject", "flights@1", "--to", "prod", "--reason", "AUC fell").stdout
    assert "rejected #1 flights@1 staging -> prod: rejected by" in rejected
    refused = cli("env", "promote", "flights@1", "--to", "prod", check=False)
    message = " ".join(refused.stderr.split())
    assert "request #2" in message and "(#1 was rejected by" in message and "AUC fell" in message
    waited = cli("env", "promote", "flights@1", "--to", "prod", "--wait", "1s", check=False)
    assert waited.returncode == 1 and "needs an approval" in waited.stderr


def test_bad_settings_and_names_are_sentences(cli: Cli) -> None:
    (cli.cwd / "ctloop.yaml").write_text(SETTINGS)
    unknown = cli("env", "promote", "flights@champion", "--to", "production", check=False)
    assert unknown.returncode == 1
    assert "ctloop.yaml has no environment 'production'; known: test, staging, prod" in (
        " ".join(unknown.stderr.split())
    )
    (cli.cwd / "ctloop.yaml").write_text(SETTINGS + textwrap.indent("approval: maybe\n", "    "))
    bad = cli("env", "list", check=False)
    assert "environments.prod.approval must be 'required' or 'none', not 'maybe'" in (
        " ".join(bad.stderr.split())
    )
    assert "Traceback" not in bad.stderr
