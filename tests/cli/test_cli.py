"""The ``ctloop`` command end to end, as a user types it."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from ctloop.store.statuses import ExecutionStatus
from tests.cli.conftest import SAMPLES, Cli

REGRESSION = f"{SAMPLES}:regression"


def test_version_and_help(cli: Cli) -> None:
    from ctloop import __version__

    assert cli("--version").stdout.strip() == f"ctloop {__version__}"
    help_text = cli("--help").stdout
    for command in ("run", "resume", "runs", "lineage", "artifacts", "data", "gc"):
        assert command in help_text


def test_run_then_cached_rerun_and_inspection(cli: Cli, data_csv: Path) -> None:
    first = json.loads(
        cli("run", REGRESSION, "-p", f"path={data_csv}", "-p", "degree=1", "--json").stdout
    )
    assert first["status"] == "succeeded"
    assert set(first["steps"].values()) == {"succeeded"}
    second = cli("run", REGRESSION, "-p", f"path={data_csv}", "-p", "degree=1")
    assert "all steps reused from cache" in second.stdout

    runs = json.loads(cli("runs", "list", "--json").stdout)
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"]
    assert runs[1]["id"] == first["run_id"]

    shown = json.loads(cli("runs", "show", first["run_id"][:8], "--json").stdout)
    assert shown["run"]["parameters"]["degree"] == 1
    steps = {x["step"]: x for x in shown["executions"]}
    assert set(steps) == {"load", "split", "fit", "score"}
    assert set(steps["split"]["outputs"]) == {"train", "test"}
    assert any(m["key"] == "mse" for m in shown["metrics"])

    human = cli("runs", "show", first["run_id"][:8]).stdout
    assert "regression" in human and "score" in human

    logs = cli("runs", "logs", first["run_id"][:8], "load").stdout
    assert f"loading {data_csv}" in logs

    coef_id = steps["fit"]["outputs"]["output"]
    art = json.loads(cli("artifacts", "show", coef_id[:10], "--json").stdout)
    assert art["artifact"]["type"] == "Array"
    assert {e["kind"] for e in art["events"]} == {"output", "input"}

    lineage = json.loads(cli("lineage", coef_id, "--json").stdout)
    labels = {n["label"] for n in lineage["nodes"] if n["kind"] == "execution"}
    assert labels == {"load", "split", "fit"}
    tree = cli("lineage", first["run_id"]).stdout
    assert "score" in tree and "load" in tree


def test_bad_parameter_value_is_a_clear_error(cli: Cli, data_csv: Path) -> None:
    proc = cli("run", REGRESSION, "-p", "degree=two", check=False)
    assert proc.returncode == 2
    assert "'degree' expects int" in proc.stderr and "'two'" in proc.stderr
    proc = cli("run", REGRESSION, "-p", "depth=3", check=False)
    assert proc.returncode == 2 and "no parameter 'depth'" in proc.stderr
    proc = cli("run", REGRESSION, "-p", "path=missing.csv", check=False)
    assert proc.returncode == 2 and "missing.csv" in proc.stderr


def test_failed_step_exits_nonzero_with_traceback(cli: Cli) -> None:
    proc = cli("run", f"{SAMPLES}:branches", check=False)
    assert proc.returncode == 1
    assert "step 'boom'" in proc.stderr and "ValueError: bad value 3" in proc.stderr
    assert "ctloop resume" in proc.stderr or "resume" in proc.stderr


def test_unsupported_type_and_cycle_errors(cli: Cli) -> None:
    proc = cli("run", f"{SAMPLES}:unsupported", check=False)
    assert proc.returncode == 1 and "Opaque" in proc.stderr
    proc = cli("run", f"{SAMPLES}:cyclic", check=False)
    assert proc.returncode == 1 and "cycle" in proc.stderr


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kill_9_mid_step_then_resume(
    backend: str, cli: Cli, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "postgresql":
        cli.env["CTLOOP_STORE_URL"] = request.getfixturevalue("fresh_postgres_url")
    marker = tmp_path / "release"
    proc = cli.start_interruptible(marker)
    assert Path(str(marker) + ".started").exists(), proc.stderr.read() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)

    runs = json.loads(cli("runs", "list", "--json").stdout)
    assert runs[0]["status"] == "failed"  # dead process detected, not "running" forever
    assert "stopped without finishing" in runs[0]["error"]
    run_id = runs[0]["id"]

    Path(tmp_path / "calls.txt").write_text("")
    marker.write_text("go")
    resumed = json.loads(cli("resume", run_id[:8], "--json").stdout)
    assert resumed["status"] == "succeeded"
    assert resumed["steps"] == {"number": "cached", "killable": "succeeded", "total": "succeeded"}
    assert (tmp_path / "calls.txt").read_text().split() == ["killable5", "total"]
    shown = json.loads(cli("runs", "show", run_id, "--json").stdout)
    killable = [x for x in shown["executions"] if x["step"] == "killable"]
    assert [x["status"] for x in killable] == ["failed", "succeeded"]


def test_data_versions_add_list_get_and_use_in_lineage(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    folder.mkdir()
    (folder / "a.csv").write_text("x,y\n1,2\n")
    (folder / "b.csv").write_text("x,y\n3,4\n")
    v1 = json.loads(cli("data", "add", "raw", str(folder), "-m", "first", "--json").stdout)
    assert v1["version"] == 1 and v1["files"] == 2
    again = json.loads(cli("data", "add", "raw", str(folder), "--json").stdout)
    assert again["unchanged"] and again["version"] == 1
    (folder / "b.csv").write_text("x,y\n3,5\n")
    v2 = json.loads(cli("data", "add", "raw", str(folder), "--json").stdout)
    assert v2["version"] == 2 and v2["digest"] != v1["digest"]
    versions = json.loads(cli("data", "versions", "raw", "--json").stdout)
    assert [v["version"] for v in versions] == [1, 2]
    out = tmp_path / "out"
    cli("data", "get", "raw@1", str(out))
    assert sorted(p.name for p in out.rglob("*.csv")) == ["a.csv", "b.csv"]
    assert next(out.rglob("b.csv")).read_text() == "x,y\n3,4\n"
    proc = cli("data", "get", "raw@9", str(out), check=False)
    assert proc.returncode != 0 and "raw@9" in proc.stderr


def test_gc_deletes_old_runs_and_unshared_blobs(cli: Cli, data_csv: Path) -> None:
    cli("run", REGRESSION, "-p", f"path={data_csv}", "-p", "degree=1")
    cli("run", REGRESSION, "-p", f"path={data_csv}", "-p", "degree=2")
    dry = json.loads(cli("gc", "--keep-last", "1", "--dry-run", "--json").stdout)
    assert dry["dry_run"] and len(dry["runs_deleted"]) == 1
    assert dry["artifacts_deleted"] == 2  # fit and score of degree=1; load/split shared
    assert len(json.loads(cli("runs", "list", "--json").stdout)) == 2
    done = json.loads(cli("gc", "--keep-last", "1", "--json").stdout)
    assert done["runs_deleted"] == dry["runs_deleted"] and done["bytes_freed"] > 0
    runs = json.loads(cli("runs", "list", "--json").stdout)
    assert len(runs) == 1 and runs[0]["parameters"]["degree"] == 2
    rerun = json.loads(
        cli("run", REGRESSION, "-p", f"path={data_csv}", "-p", "degree=2", "--json").stdout
    )
    assert set(rerun["steps"].values()) == {"cached"}  # kept artifacts still load
    bad = cli("gc", "--older-than", "soon", check=False)
    assert bad.returncode == 2 and "30d" in bad.stderr


def test_gc_removes_temp_files_of_dead_writers_after_grace(cli: Cli, data_csv: Path) -> None:
    cli("run", REGRESSION, "-p", f"path={data_csv}")
    tmp = cli.cwd / "home" / "artifacts" / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    stale = tmp / "dead-writer"
    stale.write_bytes(b"x" * 1000)
    kept = json.loads(cli("gc", "--json").stdout)
    assert kept["runs_deleted"] == [] and stale.exists()  # younger than the 1h grace
    old = time.time() - 7200
    os.utime(stale, (old, old))
    freed = json.loads(cli("gc", "--json").stdout)
    assert not stale.exists() and freed["bytes_freed"] >= 1000
    rerun = json.loads(cli("run", REGRESSION, "-p", f"path={data_csv}", "--json").stdout)
    assert set(rerun["steps"].values()) == {"cached"}


def test_sigterm_marks_the_run_failed_at_once_and_resume_finishes(cli: Cli, tmp_path: Path) -> None:
    marker = tmp_path / "release"
    proc = cli.start_interruptible(marker)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    run = json.loads(cli("runs", "show", "latest", "--json").stdout)
    assert run["run"]["status"] == "failed" and "interrupted" in run["run"]["error"]
    killable = [x for x in run["executions"] if x["step"] == "killable"]
    assert killable[-1]["status"] == "failed"
    marker.write_text("go")
    resumed = json.loads(cli("resume", "latest", "--json").stdout)
    assert resumed["status"] == "succeeded" and resumed["run_id"] == run["run"]["id"]
    assert resumed["steps"]["number"] == "cached"  # kept from before the signal, not re-run


def test_every_status_a_run_reports_is_an_execution_status(cli: Cli, tmp_path: Path) -> None:
    statuses = set(ExecutionStatus)
    marker = tmp_path / "release"
    proc = cli.start_interruptible(marker)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    marker.write_text("go")
    reported = [json.loads(cli("resume", "latest", "--json").stdout)]
    again = cli("run", f"{SAMPLES}:interruptible", "-p", f"marker={marker}", "--json")
    reported += [json.loads(again.stdout)]
    reported += [json.loads(cli("run", f"{SAMPLES}:branches", "--json", check=False).stdout)]
    seen = {status for result in reported for status in result["steps"].values()}
    assert {"cached", "succeeded", "failed", "skipped"} <= seen
    assert seen <= statuses
    for run in json.loads(cli("runs", "list", "--json").stdout):
        shown = json.loads(cli("runs", "show", run["id"], "--json").stdout)
        assert {x["status"] for x in shown["executions"]} <= statuses


def test_logs_of_a_failed_step_and_metrics_of_a_cached_run(cli: Cli, data_csv: Path) -> None:
    cli("run", f"{SAMPLES}:branches", check=False)
    failed = json.loads(cli("runs", "logs", "latest", "boom", "--json").stdout)
    assert failed["status"] == "failed"
    assert "about to fail" in failed["log"] and "ValueError: bad value 3" in failed["log"]
    cli("run", REGRESSION, "-p", f"path={data_csv}")
    cli("run", REGRESSION, "-p", f"path={data_csv}")
    shown = json.loads(cli("runs", "show", "latest", "--json").stdout)
    assert {x["status"] for x in shown["executions"]} == {"cached"}
    assert any(m["key"] == "mse" for m in shown["metrics"])
    missing = cli("runs", "logs", "latest", "nope", check=False)
    assert missing.returncode == 1 and "load, score, split" in missing.stderr
