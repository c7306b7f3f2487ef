"""``ctloop ci`` in a generated project: tests, the pipeline on the CI sample in the
``test`` environment, the gate; a report and JUnit XML either way, exit 1 on failure."""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.cli.conftest import Cli


def project_cli(cli: Cli) -> Cli:
    cli("init", "churn")
    env = {k: v for k, v in cli.env.items() if k != "PYTHONPATH"}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return Cli(cli.cwd / "churn", {**env, "PYTHONPATH": cli.env["PYTHONPATH"]})


def test_a_passing_change_writes_its_report_and_a_failing_gate_exits_1(cli: Cli) -> None:
    project = project_cli(cli)
    passed = project("ci", "--tests", "tests/test_data.py", timeout=300)
    report = (project.cwd / "ci-report.md").read_text()
    assert "## ctloop ci: passed (environment `test`)" in report
    assert "| gate | passed |" in report and "| drift | passed |" in report
    assert "| overall | auc | 0.7" in report and "no champion" in report
    assert "data/ci.csv vs data/train.csv: 4 columns tested, drifted: none" in report
    assert "wrote ci-report.md and ci-junit.xml" in passed.stdout
    assert (project.cwd / ".ctloop" / "test" / "metadata.db").is_file()

    import pandas as pd

    shifted = pd.read_csv(project.cwd / "data" / "ci.csv")
    shifted["tenure_months"] += 40  # older customers paying more: a drifted sample
    shifted["monthly_charges"] *= 2
    shifted.to_csv(project.cwd / "data" / "shifted.csv", index=False)
    settings = project.cwd / "ctloop.yaml"
    text = settings.read_text().replace("current: data/ci.csv", "current: data/shifted.csv")
    settings.write_text(
        text.replace("path: data/ci.csv", "path: data/ci.csv\n        min_auc: 0.99")
    )
    failed = project("ci", "--tests", "tests/test_data.py", check=False, timeout=300)
    assert failed.returncode == 1
    report = (project.cwd / "ci-report.md").read_text()
    assert "## ctloop ci: FAILED" in report and "| gate | **failed** |" in report
    assert "FAIL overall: auc >= 0.99" in report
    assert "vs champion" in report  # the first run's model is the champion now
    auc = next(line for line in report.splitlines() if line.startswith("| overall | auc |"))
    candidate, champion, delta = (cell.strip() for cell in auc.split("|")[3:6])
    assert candidate == champion and delta == "+0.0000"  # same data, same seed, same model
    assert "| drift | **failed** |" in report
    assert "check drift failed: 2 of 4 columns drifted (share 0.50 > 0.25)" in report
    suites = ET.parse(project.cwd / "ci-junit.xml").getroot()
    gate = suites.find("./testsuite[@name='ctloop-ci']/testcase[@name='gate']/failure")
    assert gate is not None and "auc >= 0.99" in (gate.text or "")
    drift = suites.find("./testsuite[@name='ctloop-ci']/testcase[@name='drift']/failure")
    assert drift is not None and "tenure_months" in (drift.text or "")
    assert suites.find("./testsuite[@name='pytest']") is not None


def test_a_folder_without_environments_is_told_so(cli: Cli) -> None:
    result = cli("ci", check=False)
    assert result.returncode != 0
    assert "ctloop ci needs a ctloop.yaml with environments" in result.stderr
    assert "Traceback" not in result.stderr
