"""``ctloop ci`` on the flights example, as a pull request runs it: in a copy of the
example folder, on a CI sample of real flights, it runs the example's tests, the drift
check, the pipeline and the gate, writes ci-report.md and JUnit XML, and exits 0; the
second run is gated against the champion the first one promoted."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pandas as pd

from tests.examples.conftest import FLIGHTS_EXAMPLE

PROJECT_FILES = ["pipeline.py", "schema.yaml", "ctloop.yaml", "ci_sample.py", "tests"]


def project(tmp_path: Path, table: pd.DataFrame) -> Path:
    """A copy of the example with a data/flights.parquet of ``table``, smaller settings."""
    folder = tmp_path / "flights"
    folder.mkdir()
    for name in PROJECT_FILES:
        source = FLIGHTS_EXAMPLE / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(source, folder / name)
    (folder / "data").mkdir()
    table.to_parquet(folder / "data" / "flights.parquet", index=False)
    settings = (folder / "ctloop.yaml").read_text()
    (folder / "ctloop.yaml").write_text(settings.replace("n_trials: 2", "n_trials: 1"))
    return folder


def run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    env |= {"OMP_NUM_THREADS": "1", "CTLOOP_HOME": str(folder / ".ctloop")}
    return subprocess.run(
        [sys.executable, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=600
    )


def test_ctloop_ci_on_the_flights_example_writes_its_report_and_junit(
    prepare_data: ModuleType, tmp_path: Path
) -> None:
    # the fixture's first 100 flights a month are too few to rank: 1,500 drawn at random
    everything, weather = prepare_data.read_source()
    first_months = everything[everything["month"] <= 3].groupby("month")
    picked = first_months.sample(1500, random_state=0)
    table = prepare_data.build_table(picked.sort_index().reset_index(drop=True), weather)
    folder = project(tmp_path, table)
    sampled = run(folder, "ci_sample.py", "--rows-per-month", "1000")
    assert sampled.returncode == 0, sampled.stderr
    first = run(folder, "-m", "ctloop", "ci")
    assert first.returncode == 0, (folder / "ci-report.md").read_text() + first.stderr
    for check in ("tests", "drift", "pipeline", "gate"):
        assert f"ok   {check}" in first.stdout
    report = (folder / "ci-report.md").read_text()
    assert report.startswith("## ctloop ci: passed (environment `test`)")
    assert "| overall | auc |" in report and "no champion" in report
    assert "| origin=JFK (" in report  # per-slice rows
    assert "8 columns tested, drifted: none" in report

    second = run(folder, "-m", "ctloop", "ci")
    assert second.returncode == 0, (folder / "ci-report.md").read_text() + second.stderr
    report = (folder / "ci-report.md").read_text()
    assert "no champion" not in report  # the first run's model is the champion now
    assert "| overall | auc |" in report and "| +0.0000 |" in report  # the same model again
    suites = {s.get("name"): s for s in ET.parse(folder / "ci-junit.xml").getroot()}
    ours = suites["ctloop-ci"]
    assert [c.get("name") for c in ours] == ["drift", "pipeline", "gate"]
    assert ours.get("failures") == "0"
    project_tests = [s for name, s in suites.items() if name != "ctloop-ci"]
    assert sum(int(s.get("tests", 0)) for s in project_tests) == 7
