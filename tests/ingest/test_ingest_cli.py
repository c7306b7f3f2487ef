"""``ctloop ingest`` as a user runs it, and a pipeline that trains on ingested spans."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from tests.ingest.test_ingest import START, land

REPO = Path(__file__).resolve().parents[2]

SETTINGS = """\
sources:
  flights:
    files: "landing/date={YYYY}-{MM}-{DD}/*.parquet"
    expect: daily
    late_window: 1d
"""

PIPELINE = """\
from pathlib import Path

import pandas as pd

from ctloop import data_version, pipeline, set_tag, step
from ctloop.ingest import read_spans, select_spans


@step
def load(data: Path) -> pd.DataFrame:
    set_tag("spans", select_spans(data, "rolling:2").describe())
    return read_spans(data, "rolling:2", span_column="span")


@step
def total(frame: pd.DataFrame) -> int:
    return int(frame["x"].sum())


@pipeline
def training():
    return total(load(data_version("flights")))
"""


def ctloop(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-m", "ctloop", *args], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"ctloop {' '.join(args)}: {proc.returncode}\n{proc.stderr}")
    return proc


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "ctloop.yaml").write_text(SETTINGS)
    for offset in range(3):
        land(tmp_path / "landing", START + timedelta(days=offset), value=10 * offset)
    return tmp_path


def test_run_status_and_a_gap_reported_with_exit_code_1(project: Path) -> None:
    out = ctloop(project, "ingest", "run", "--json")
    (result,) = json.loads(out.stdout)
    assert (result["version"], len(result["new_spans"])) == (1, 3)
    again = ctloop(project, "ingest", "run")
    assert again.stdout.strip() == "flights: nothing new (version 1)"

    land(project / "landing", START + timedelta(days=4))  # 2013-03-04 never lands
    gap = ctloop(project, "ingest", "run", check=False)
    assert gap.returncode == 1
    assert "flights: version 2, 1 new span(s) (2013-03-05)" in gap.stdout
    assert "1 are missing: 2013-03-04" in gap.stderr
    assert "Traceback" not in gap.stderr

    (status,) = json.loads(ctloop(project, "ingest", "status", "--json").stdout)
    assert (status["watermark"], status["missing"], status["spans"]) == (
        "2013-03-05",
        ["2013-03-04"],
        4,
    )
    versions = json.loads(ctloop(project, "data", "versions", "flights", "--json").stdout)
    assert [v["message"] for v in versions][-1] == "ingest: 1 new span(s), 0 late re-ingest(s)"


def test_backfill_and_bad_arguments_are_sentences(project: Path) -> None:
    out = ctloop(
        project, "ingest", "backfill", "flights", "--from", "2013-03-02", "--to", "2013-03-02"
    )
    assert "1 new span(s) (2013-03-02)" in out.stdout
    wrong = ctloop(
        project,
        "ingest",
        "backfill",
        "flights",
        "--from",
        "March",
        "--to",
        "2013-03-02",
        check=False,
    )
    assert wrong.returncode != 0 and "--from 'March' is not a span" in wrong.stderr
    unknown = ctloop(project, "ingest", "run", "weather", check=False)
    assert unknown.returncode != 0 and "no source named 'weather'" in unknown.stderr
    assert "Traceback" not in wrong.stderr + unknown.stderr


def test_a_pipeline_reads_the_spans_it_names_with_lineage_to_the_version(project: Path) -> None:
    ctloop(project, "ingest", "run")
    (project / "pipeline.py").write_text(textwrap.dedent(PIPELINE))
    ctloop(project, "run", "pipeline.py:training")
    runs = json.loads(ctloop(project, "runs", "list", "--json").stdout)
    run_id = runs[0]["id"]
    shown = json.loads(ctloop(project, "runs", "show", run_id, "--json").stdout)
    tags = {t["key"]: t["value"] for t in shown["tags"]}
    assert tags["spans"] == "2013-03-02 … 2013-03-03 (2 spans)"  # the spans the step read
    load = next(e for e in shown["executions"] if e["step"] == "load")
    (version,) = json.loads(ctloop(project, "data", "versions", "flights", "--json").stdout)
    assert load["inputs"]["data"] == version["artifact_id"]  # lineage: the exact version


def test_a_damaged_file_is_named_and_the_run_exits_1(project: Path) -> None:
    broken = project / "landing" / "date=2013-03-04" / "part-0.parquet"
    broken.parent.mkdir()
    broken.write_bytes(b"PAR1 not really")
    out = ctloop(project, "ingest", "run", check=False)
    assert out.returncode == 1
    assert "3 new span(s)" in out.stdout  # the good spans went in
    assert "span 2013-03-04 was not ingested" in out.stderr and "cannot be read" in out.stderr
    assert "Traceback" not in out.stderr
