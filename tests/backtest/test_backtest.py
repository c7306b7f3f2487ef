"""``ctloop backtest``: folds by rolling origin, each a run, a static line, a report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctloop.backtest import consecutive_periods, plan_folds, run_backtest, write_report
from ctloop.errors import ConfigError
from ctloop.pipeline._loading import load_pipeline
from ctloop.store.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
PIPELINES = Path(__file__).resolve().parent / "pipelines.py"


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace.open(
        f"sqlite:///{tmp_path / 'meta.db'}", artifacts=str(tmp_path / "artifacts")
    ) as ws:
        yield ws


def test_folds_expand_or_slide_leave_a_gap_and_stop_at_the_end() -> None:
    expanding = plan_folds("2024-02", "2024-03", every="1w", gap="3d", train_from="2024-01-01")
    assert [(f.train_start, f.train_end, f.test_start) for f in expanding[:2]] == [
        ("2024-01-01", "2024-01-29", "2024-02-01"),
        ("2024-01-01", "2024-02-05", "2024-02-08"),
    ]
    assert expanding[-1].test_end == "2024-03-01" and len(expanding) == 5
    monthly = plan_folds("2024-02", "2024-05", every="1mo", window="sliding:1mo")
    assert [(f.train_start, f.test_start, f.test_end) for f in monthly] == [
        ("2024-01-01", "2024-02-01", "2024-03-01"),
        ("2024-02-01", "2024-03-01", "2024-04-01"),
        ("2024-03-01", "2024-04-01", "2024-05-01"),
    ]


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"every": "soon"}, "--every 'soon' is not a period"),
        ({"window": "rolling"}, "--window 'rolling' is not a window"),
        ({"end": "2024-01"}, "--to 2024-01 must come after --from 2024-02"),
        ({"end": "March"}, "--to 'March' is not a date"),
        ({"every": "1d", "end": "2060-01"}, "more than 5000 folds"),
    ],
)
def test_bad_fold_options_are_named(options: dict, named: str) -> None:
    arguments = {"start": "2024-02", "end": "2024-03", **options}
    with pytest.raises(ConfigError, match=named):
        plan_folds(**arguments)


def test_folds_and_replay_periods_step_the_same_calendar() -> None:
    import pandas as pd

    from ctloop.replay import Clock

    # one helper steps both: a backtest's test periods are a replay's served periods
    folds = plan_folds("2024-01-31", "2024-05-15", every="1mo")
    times = pd.Series(pd.date_range("2023-12-01", "2024-05-14", freq="D"))
    clock = Clock.of(times, every="1mo", label_delay="1w", start="2024-01-31", end="2024-05-15")
    assert [(f.test_start, f.test_end) for f in folds] == [
        (str(p.start.date()), str(p.end.date())) for p in clock.periods
    ]
    assert folds[1].test_start == "2024-02-29"  # a month on from the 31st, as pandas says
    assert folds[-1].test_end == "2024-05-15"  # the last period is cut at the end


def test_consecutive_periods_refuses_too_many_and_a_step_that_does_not_move() -> None:
    from datetime import date, timedelta

    with pytest.raises(ConfigError, match="over three"):
        consecutive_periods(
            date(2024, 1, 1), date(2024, 2, 1), lambda d: d + timedelta(days=7),
            limit=3, too_many="over three",
        )  # fmt: skip
    with pytest.raises(ConfigError, match="does not move the clock on"):
        consecutive_periods(date(2024, 1, 1), date(2024, 2, 1), lambda d: d, limit=9, too_many="")


def test_retraining_beats_the_static_model_after_the_relation_flips(
    workspace: Workspace,
) -> None:
    pipeline_obj, reference = load_pipeline(f"{PIPELINES}:training")
    folds = plan_folds("2024-02-12", "2024-04-08", every="2w", window="sliding:2w")
    result = run_backtest(pipeline_obj, folds, workspace=workspace, reference=reference)
    assert result.metric == "eval.auc" and result.higher_is_better and not result.failed
    retrained, static = result.line(), result.line(static=True)
    assert len(retrained) == len(static) == 4
    assert retrained[-1] > 0.8 and static[-1] < 0.2  # after 2024-03-01 the first model is wrong
    assert result.mean() > result.mean(static=True)
    fold = result.folds[1]
    run = workspace.metadata.get_run(fold.run_id)
    assert run.trigger == "backtest"
    assert (
        run.parameters["train_start"] == "2024-02-12" and run.parameters["test_end"] == "2024-03-11"
    )
    tags = {t.key: t.value for t in workspace.metadata.get_tags(fold.static_run_id)}
    assert tags["ctloop.backtest"] == result.id and tags["ctloop.backtest.line"] == "static"
    assert tags["ctloop.backtest.fold"] == "1"
    assert result.folds[0].static_run_id == result.folds[0].run_id  # fold 1: one model
    static_run = workspace.metadata.get_run(fold.static_run_id)
    assert static_run.parameters["train_end"] == folds[0].train_end  # the first fold's model
    fitted = {e.step: e.status for e in workspace.metadata.list_executions(static_run.id)}
    assert fitted["fit"] == "cached"  # the static line trains once


def test_a_pipeline_without_fold_parameters_or_a_metric_never_logged_is_named(
    workspace: Workspace,
) -> None:
    untimed, _ = load_pipeline(f"{PIPELINES}:untimed")
    folds = plan_folds("2024-02", "2024-02-15", every="1w")
    with pytest.raises(ConfigError, match="takes no parameter train_start, train_end"):
        run_backtest(untimed, folds, workspace=workspace)
    training, _ = load_pipeline(f"{PIPELINES}:training")
    with pytest.raises(
        ConfigError, match=r"no fold logged the metric .mape.; logged: eval\.accuracy"
    ):
        run_backtest(training, folds, workspace=workspace, metric="mape", static=False)


def test_the_cli_writes_the_report_and_a_failed_fold_exits_1(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    env["CTLOOP_HOME"] = str(tmp_path / "home")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    command = [
        sys.executable, "-m", "ctloop", "backtest", f"{PIPELINES}:training",
        "--from", "2024-04-16", "--to", "2024-05-13", "--every", "2w", "--window", "sliding:2w",
        "--out", str(tmp_path / "report.html"), "--json",
    ]  # fmt: skip
    proc = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    # the data ends on 2024-04-29: the second fold (from 04-30) scores no rows and fails
    assert proc.returncode == 1, proc.stderr
    found = json.loads(proc.stdout)
    assert found["folds"][0]["error"] is None and found["folds"][0]["metrics"]["eval.auc"] > 0.8
    assert "no rows to score" in found["folds"][1]["error"]
    assert "error: fold 2 (2024-04-30)" in proc.stderr and "Traceback" not in proc.stderr
    page = (tmp_path / "report.html").read_text()
    assert (
        "Backtest of" in page
        and page.count('class="point-retrained"') == 1
        and "no rows to score" in page
    )
    assert json.loads((tmp_path / "report.json").read_text())["folds"] == found["folds"]


def test_the_report_shows_each_slice_over_time_and_when_the_first_model_fell_behind(
    workspace: Workspace, tmp_path: Path
) -> None:
    pipeline_obj, reference = load_pipeline(f"{PIPELINES}:sliced")
    folds = plan_folds("2024-02-05", "2024-04-01", every="2w", window="sliding:3w")
    result = run_backtest(
        pipeline_obj, folds, workspace=workspace, reference=reference, slices=["region"]
    )
    assert result.metric == "eval.auc" and not result.failed and result.slices == ("region",)
    assert result.slice_values("region") == ["south", "north"]  # two rows in three are south
    north, south = result.slice_line("region", "north"), result.slice_line("region", "south")
    static_north = result.slice_line("region", "north", static=True)
    static_south = result.slice_line("region", "south", static=True)
    # the fold from 2024-03-04 scores after the flip: north's static model is wrong there,
    # south's is not, and retraining (three weeks, all after the flip) learns both
    assert folds[2].test_start == "2024-03-04" and folds[2].train_start == "2024-02-12"
    assert static_north[2] < 0.2 and north[3] > 0.8
    assert min(south + static_south) > 0.8  # type: ignore[type-var]
    assert result.slice_rows("region", "north") == 4 * 14 * 40
    assert result.stale_after() == result.stale_after(smooth=1) == folds[2]
    assert result.to_dict()["stale_after"]["model_age_days"] == 28  # 2024-02-05 → 03-04

    page = write_report(result, tmp_path / "bt.html").read_text()
    assert "auc by region" in page and page.count('class="point-north"') == 4
    assert "The first model fell behind from" in page
    data = json.loads((tmp_path / "bt.json").read_text())
    fold = data["folds"][3]
    assert data["slices"] == ["region"] and data["id"] == result.id
    assert fold["slices"]["region"]["north"]["auc"] == north[3]
    assert fold["static_slices"]["region"]["north"]["rows"] == 14 * 40


def test_a_slice_the_pipeline_did_not_evaluate_is_named(workspace: Workspace) -> None:
    folds = plan_folds("2024-02-05", "2024-02-19", every="2w", window="sliding:3w")
    sliced, _ = load_pipeline(f"{PIPELINES}:sliced")
    with pytest.raises(ConfigError, match=r"no slice 'carrier' \(it has: region\)"):
        run_backtest(sliced, folds, workspace=workspace, slices=["carrier"], static=False)
    training, _ = load_pipeline(f"{PIPELINES}:training")
    with pytest.raises(ConfigError, match=r"stored no Evaluation.*slices=\['region'\]"):
        run_backtest(training, folds, workspace=workspace, slices=["region"], static=False)


def test_retraining_every_two_folds_scores_each_fold_with_the_last_retrained_model(
    workspace: Workspace, tmp_path: Path
) -> None:
    pipeline_obj, reference = load_pipeline(f"{PIPELINES}:training")
    folds = plan_folds("2024-02-12", "2024-04-08", every="2w", window="sliding:2w")
    result = run_backtest(
        pipeline_obj, folds, workspace=workspace, reference=reference, retrain_every=2
    )
    retrained, static, cadence = result.line(), result.line(static=True), result.line(cadence=True)
    assert cadence[0] == retrained[0] and cadence[2] == retrained[2]  # retrained there
    assert cadence[1] == static[1]  # fold 2 is scored by fold 1's model, the static one
    late = result.folds[3]
    run = workspace.metadata.get_run(late.cadence_run_id)
    assert run.parameters["train_end"] == folds[2].train_end  # fold 3's model on fold 4
    assert run.parameters["test_start"] == folds[3].test_start
    steps = {e.step: e.status for e in workspace.metadata.list_executions(run.id)}
    assert steps["fit"] == "cached"  # the retrained line fitted it already
    tags = {t.key: t.value for t in workspace.metadata.get_tags(run.id)}
    assert tags["ctloop.backtest.line"] == "cadence"
    # the flip on 2024-03-01: fold 3's model (trained after it) keeps up on fold 4
    assert cadence[3] > 0.8 and static[3] < 0.2
    assert result.to_dict()["mean_cadence"] == pytest.approx(sum(cadence) / 4)  # type: ignore[arg-type]
    page = write_report(result, tmp_path / "bt.html").read_text()
    assert page.count('class="point-cadence"') == 4 and "retrained every 2 folds" in page
    again = run_backtest(  # every step a cache hit now: the metrics come from the reuses
        pipeline_obj, folds, workspace=workspace, reference=reference, retrain_every=2
    )
    assert again.line() == retrained and again.line(cadence=True) == cadence
    assert again.line(static=True) == static
    with pytest.raises(ConfigError, match="--retrain-every 0"):
        run_backtest(pipeline_obj, folds, workspace=workspace, retrain_every=0)
