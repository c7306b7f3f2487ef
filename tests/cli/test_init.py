"""``ctloop init`` writes a project whose own tests pass: each template is generated into
a temporary folder and its ``make test`` runs there against the installed ctloop (this
checkout's environment on PATH, not a fresh virtual environment: that keeps the test
under a minute)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cli.conftest import Cli

EXPECTED = {
    ".github/workflows/ci.yml",
    ".gitlab-ci.yml",
    ".gitignore",
    "Makefile",
    "README.md",
    "ctloop.yaml",
    "data/ci.csv",
    "data/train.csv",
    "pipeline.py",
    "pyproject.toml",
    "requirements.txt",
    "schema.yaml",
    "tests/conftest.py",
    "tests/test_data.py",
    "tests/test_model.py",
    "tests/test_service.py",
}


def make_test(project: Path, env: dict[str, str], *target: str) -> subprocess.CompletedProcess[str]:
    """``make test`` in ``project`` (or ``pytest TARGET`` there), with this environment's
    ``python`` first on PATH."""
    run_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    run_env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    command = ["python", "-m", "pytest", "-q", *target] if target else ["make", "test"]
    return subprocess.run(
        command, cwd=project, env=run_env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize(
    ("name", "template"), [("churn", "tabular"), ("house-prices", "regression")]
)
def test_a_generated_project_passes_its_own_tests(cli: Cli, name: str, template: str) -> None:
    created = json.loads(cli("init", name, "--template", template, "--json").stdout)
    project = cli.cwd / name
    assert set(created["files"]) == EXPECTED
    assert {
        p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()
    } == EXPECTED

    settings = yaml.safe_load((project / "ctloop.yaml").read_text())
    assert set(settings["environments"]) == {"test", "staging", "prod"}
    assert settings["environments"]["prod"]["approval"] == "required"
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text())
    assert set(workflow["jobs"]) == {"test", "staging", "prod"}
    steps = [step.get("run", "") for step in workflow["jobs"]["test"]["steps"]]
    assert "make test" in steps and any(s.startswith("ctloop ci") for s in steps)
    assert (
        "${{ github.event.pull_request.number }}"
        in (project / ".github/workflows/ci.yml").read_text()
    )
    gitlab = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    assert gitlab["test"]["artifacts"]["reports"]["junit"] == "ci-junit.xml"
    assert f"MODEL_NAME = {name!r}".replace("'", '"') in (project / "pipeline.py").read_text()

    result = make_test(project, cli.env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "12 passed" in result.stdout


def test_a_broken_generated_project_fails_its_tests_by_name(cli: Cli) -> None:
    cli("init", "churn")
    project = cli.cwd / "churn"
    schema = project / "schema.yaml"
    schema.write_text(schema.read_text().replace("[basic, standard, premium]", "[basic, standard]"))
    result = make_test(project, cli.env, "tests/test_data.py")
    assert result.returncode != 0
    assert "check schema failed" in result.stdout and "column 'plan'" in result.stdout


def test_bad_names_templates_and_folders_are_refused_in_a_sentence(cli: Cli) -> None:
    bad = cli("init", "Churn!", check=False)
    assert bad.returncode != 0 and "project name 'Churn!' is not usable" in bad.stderr
    unknown = cli("init", "churn", "--template", "vision", check=False)
    assert "template 'vision' is unknown; choose one of regression, tabular" in unknown.stderr
    (cli.cwd / "taken").mkdir()
    (cli.cwd / "taken" / "notes.txt").write_text("mine")
    taken = cli("init", "churn", "--directory", "taken", check=False)
    assert "taken already exists and is not empty" in taken.stderr
    assert (cli.cwd / "taken" / "notes.txt").read_text() == "mine"
    assert "Traceback" not in bad.stderr + unknown.stderr + taken.stderr
