"""``ctloop replay``: a history served week by week through a policy's monitor, trigger,
gate and refit, against the model never retrained and fixed schedules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ctloop.errors import ConfigError
from ctloop.replay import (
    Policy,
    ReplayResult,
    load_policies,
    run_replay,
    trainer_for,
    write_report,
)
from ctloop.store.workspace import Workspace
from tests.replay import problems

REPO = Path(__file__).resolve().parents[2]
PROBLEMS = Path(problems.__file__)
QUICK = {"attribution_rows": 500, "bootstrap_samples": 100}  # a test's budget
FAST = Policy.from_mapping(
    "fast", {"on": ["degraded"], "window": "sliding:2w", "monitoring": QUICK}
)


def replay(data: pd.DataFrame, *policies: Policy, **options: object) -> ReplayResult:
    trainer = trainer_for(problems.train, label="late", time_column="day")
    return run_replay(
        data, trainer, time_column="day", label="late", every="1w", label_delay="1w",
        start="2024-02-05", policies=policies or (FAST,), schedules=(1, 2, 4), **options,
    )  # fmt: skip


@pytest.fixture(scope="module")
def drifted() -> ReplayResult:
    held = Policy.from_mapping(
        "held", {"on": ["degraded"], "window": "sliding:8w", "monitoring": QUICK}
    )
    # the same policy whose gate lets a candidate lose up to 0.5 of AUC on the gated period
    lenient = Policy.from_mapping(
        "lenient",
        {"on": ["degraded"], "window": "sliding:8w", "gate": {"allowed_drop": 0.5},
         "monitoring": QUICK},
    )  # fmt: skip
    return replay(problems.drifting(), FAST, held, lenient)


def test_the_loop_retrains_when_the_relation_flips_and_says_why(drifted: ReplayResult) -> None:
    fast = drifted.policies[0]
    # the switch on 03-04 is labelled by 03-18: labels arrive a week late
    assert [r.period for r in fast.retrains] == ["2024-03-18"]
    first = fast.retrains[0]
    assert first.promoted and first.gate == "passed" and first.fits == 2
    assert (
        first.reasons[0].startswith("degraded: auc is ")
        and "against a baseline" in first.reasons[0]
    )
    assert (fast.mean or 0) > (drifted.static.mean or 0) + 0.2
    weekly = drifted.weekly(fast)
    assert len(weekly.retrains) == len(drifted.periods) == 9
    assert fast.monitor["incidents"] >= 1 and fast.monitor["verdicts"]["degraded"] >= 1
    verdict = drifted.verdict(fast)
    assert 0.5 < verdict["gap_closed"] <= 1.1 and verdict["retrain_share"] < 0.5
    assert len(drifted.equal_schedules(fast)) == 4  # one per phase
    assert all(len(s.retrains) == len(fast.retrains) for s in drifted.equal_schedules(fast))


def test_the_gate_keeps_the_champion_when_the_candidate_is_no_better(
    drifted: ReplayResult,
) -> None:
    held = drifted.policies[1]  # eight weeks of the old relation outvote one of the new
    rejected = [r for r in held.retrains if not r.promoted]
    assert [r.period for r in rejected] == ["2024-03-18"]
    assert rejected[0].gate.startswith("rejected: ") and "exceeds 0" in rejected[0].gate
    assert rejected[0].fits == 1
    assert held.values[6] == drifted.static.values[6]  # the champion served on
    assert [r.period for r in held.retrains if r.promoted] == ["2024-03-25"]
    line = drifted.summary_line()["policies"]["held"]
    assert line["gate_rejected"] == ["2024-03-18"] and line["retrains"] == 2


def test_a_gate_with_an_allowed_drop_promotes_a_candidate_that_loses_less(
    drifted: ReplayResult,
) -> None:
    held, lenient = drifted.policies[1], drifted.policies[2]
    # the candidate `held` rejected on 03-18 loses less than 0.5: promoted, refit
    assert [(r.period, r.promoted, r.gate) for r in lenient.retrains][:1] == [
        ("2024-03-18", True, "passed")
    ]
    assert lenient.retrains[0].fits == 2
    assert "gate allowed_drop 0.5" in lenient.description
    assert lenient.values[:6] == held.values[:6]  # the same champion until then
    assert lenient.values[6] != held.values[6]  # the refit served a week earlier


def test_a_stable_history_makes_no_retrain_and_no_incident() -> None:
    result = replay(problems.stable(), FAST)
    fast = result.policies[0]
    assert fast.retrains == [] and fast.monitor["incidents"] == 0
    assert fast.values == result.static.values
    assert result.equal_schedules(fast) == []


def test_age_schedule_and_min_gap_conditions_fire_as_declared() -> None:
    aged = Policy.from_mapping(
        "aged", {"on": ["max_age"], "max_age": "3w", "gate": False, "monitoring": QUICK}
    )
    gapped = Policy.from_mapping(
        "gapped",
        {"on": ["schedule"], "every": "1w", "min_gap": "2w", "refit_after_gate": False,
         "monitoring": QUICK},
    )  # fmt: skip
    result = replay(problems.stable(), aged, gapped)
    aged_line, gapped_line = result.policies
    assert [r.period for r in aged_line.retrains] == ["2024-02-26", "2024-03-18"]
    assert aged_line.retrains[0].reasons == ("max_age: the model has served since 2024-02-05",)
    assert aged_line.retrains[0].gate == "no gate"
    assert [r.period for r in gapped_line.retrains][:2] == ["2024-02-19", "2024-03-04"]
    assert all(r.fits == 1 for r in gapped_line.retrains)


def test_a_recency_window_needs_a_trainer_that_takes_weights() -> None:
    recency = Policy.from_mapping(
        "recent", {"on": ["max_age"], "max_age": "2w", "window": "recency:1w", "monitoring": QUICK}
    )
    trainer = trainer_for(problems.weighted, label="late", time_column="day")
    data = problems.drifting()
    result = run_replay(
        data, trainer, time_column="day", label="late", start="2024-03-04", policies=[recency]
    )
    assert len(result.policies[0].retrains) >= 2
    with pytest.raises(ConfigError, match="takes no sample_weight"):
        replay(data, recency)


def test_bad_columns_and_periods_are_named() -> None:
    data = problems.stable()
    trainer = trainer_for(problems.train, label="late", time_column="day")
    with pytest.raises(ConfigError, match="--label 'delayed' is not a column"):
        run_replay(data, trainer, time_column="day", label="delayed", policies=[FAST])
    with pytest.raises(ConfigError, match="--time-column 'x' holds values that are not times"):
        run_replay(data.assign(x="soon"), trainer, time_column="x", label="late", policies=[FAST])
    with pytest.raises(ConfigError, match="--label-delay '1 week' is not a period"):
        run_replay(
            data, trainer, time_column="day", label="late", label_delay="1 week", policies=[FAST]
        )


def test_the_report_charts_every_line_and_marks_each_retrain(
    drifted: ReplayResult, tmp_path: Path
) -> None:
    page = write_report(drifted, tmp_path / "replay.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert page.count('class="line"') == 6  # static, three policies, every period on each window
    retrains = sum(len(p.retrains) for p in drifted.policies)
    assert page.count('class="retrain"') == retrains
    assert 'fill="white"' in page  # the gate's rejection, hollow
    assert "Why each retrain fired" in page and "degraded: auc is" in page


def test_the_users_pipeline_trains_each_window_as_a_recorded_run(tmp_path: Path) -> None:
    data = problems.drifting(days=63)
    path = tmp_path / "history.parquet"
    data.to_parquet(path)
    workspace = Workspace.in_memory(tmp_path / "artifacts")
    try:
        trainer = trainer_for(
            problems.training, label="late", time_column="day", workspace=workspace,
            params={"path": str(path)},
        )  # fmt: skip
        result = run_replay(
            data, trainer, time_column="day", label="late", start="2024-02-19",
            policies=[FAST], schedules=(1,),
        )  # fmt: skip
        runs = workspace.metadata.list_runs()
    finally:
        workspace.close()
    assert len(result.periods) == 2 and all(v is not None for v in result.static.values)
    assert runs and {r.trigger for r in runs} == {"replay"}
    assert {r.parameters["train_end"] for r in runs} >= {
        "2024-02-12T00:00:00",
        "2024-02-19T00:00:00",
    }
    with pytest.raises(ConfigError, match="takes no parameter train_start, train_end"):
        trainer_for(problems.untimed, label="late", time_column="day", workspace=workspace)


def _ctloop(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    env["CTLOOP_HOME"] = str(cwd / "home")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "ctloop", "replay", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_cli_compares_policies_from_ctloop_yaml_in_one_json_line(tmp_path: Path) -> None:
    problems.drifting().to_parquet(tmp_path / "history.parquet")
    (tmp_path / "ctloop.yaml").write_text(
        "retraining:\n  default: quick\n  policies:\n"
        "    quick: {on: [degraded], window: sliding:2w, monitoring: "
        "{attribution_rows: 500, bootstrap_samples: 100}}\n"
    )
    proc = _ctloop(
        tmp_path, "history.parquet", "--pipeline", f"{PROBLEMS}:train", "--time-column", "day",
        "--label", "late", "--start", "2024-02-05", "--schedules", "1,4", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    quick = found["policies"]["quick"]
    assert found["periods"] == 9 and quick["retrains"] >= 1
    assert quick["why"][0].startswith("2024-03-18: degraded: auc is")
    assert set(found["schedules"]["sliding:2w"]) == {"every period", "every 4 periods"}
    assert (tmp_path / "replay.html").read_text().count('class="line"') == 3
    bad = _ctloop(
        tmp_path, "history.parquet", "--pipeline", f"{PROBLEMS}:train", "--time-column", "when",
        "--label", "late",
    )  # fmt: skip
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "--time-column 'when' is not a column of the data" in bad.stderr


def test_drift_where_the_model_looks_retrains_a_drift_policy_only() -> None:
    drift = Policy.from_mapping(
        "drift", {"on": ["drift"], "min_gap": "4w", "window": "sliding:2w", "monitoring": QUICK}
    )
    result = replay(problems.shifted(), FAST, drift)
    fast, drifted = result.policies
    assert fast.retrains == []  # the metric held
    assert drifted.retrains[0].period == "2024-03-18"
    assert drifted.retrains[0].reasons[0].startswith("drift: feature 'x' drifted against the")
    assert [r.period for r in drifted.retrains][1:2] in ([], ["2024-04-15"], ["2024-04-22"])


def test_models_trained_by_forked_workers_give_the_same_replay() -> None:
    data = problems.drifting(days=70)
    serial = replay(data, FAST)
    forked = replay(data, FAST, workers=2)
    assert forked.policies[0].values == serial.policies[0].values
    assert [s.values for s in forked.schedules["sliding:2w"]] == [
        s.values for s in serial.schedules["sliding:2w"]
    ]


def test_periods_smaller_than_min_rows_are_judged_over_weeks_and_fits_reach_back() -> None:
    seen: list[int] = []

    def counted(rows: pd.DataFrame) -> object:
        seen.append(len(rows))
        return problems.train(rows)

    # ten rows a day: a week holds 70, fewer than the monitor's min_rows (200)
    quiet = Policy.from_mapping(
        "quiet", {"on": ["degraded", "drift"], "window": "sliding:2w", "monitoring": QUICK}
    )
    result = run_replay(
        problems.stable(days=126, per_day=10),
        trainer_for(counted, label="late", time_column="day"),
        time_column="day", label="late", every="1w", label_delay="1w",
        start="2024-02-05", policies=[quiet], schedules=(1,),
    )  # fmt: skip
    line = result.policies[0]
    verdicts = line.monitor["verdicts"]
    # the first weeks after the static model's cut hold too few of its unseen rows, then
    # three weeks together are judged: ok, and nothing retrains on a stable history
    assert verdicts.get("no-data", 0) in (2, 3) and verdicts["ok"] >= 9
    assert line.retrains == [] and line.monitor["incidents"] == 0
    assert line.values == result.static.values
    # sliding:2w is 140 rows here: each fit reaches back to 200 labelled rows
    assert min(seen[1:]) >= 200 and seen[0] == 280  # the static model: all before 01-29


def test_a_weekly_history_retrains_on_a_judged_span_and_says_why() -> None:
    # ten rows a week whose level climbs: a model never retrained falls behind, and a
    # week (10 rows) is too few to judge, so twenty weeks of unseen rows are judged together
    weeks = pd.date_range("2020-01-06", periods=300, freq="W-MON").repeat(10)
    rng = np.random.default_rng(2)
    trend = (weeks - weeks[0]).days.to_numpy() / 7 * 0.05
    data = pd.DataFrame(
        {"week": weeks, "x": rng.normal(size=len(weeks)), "z": rng.normal(size=len(weeks))}
    )
    data["level"] = trend + data["x"] + rng.normal(scale=0.3, size=len(weeks))

    def linear(rows: pd.DataFrame) -> object:
        from sklearn.linear_model import LinearRegression

        return LinearRegression().fit(rows[["x", "z"]], rows["level"])

    drift = load_policies([], {})[0]
    result = run_replay(
        data, trainer_for(linear, label="level", time_column="week"), time_column="week",
        label="level", every="1w", label_delay="1w", policies=[drift], schedules=(1, 4),
    )  # fmt: skip
    loop = result.policies[0]
    assert result.metric == "rmse" and loop.retrains
    assert (loop.mean or 0) < (result.static.mean or 0) / 2
    first = loop.retrains[0].reasons[0]
    assert first.startswith("degraded: rmse is ") and "worse" in first
    assert loop.monitor["verdicts"].get("degraded", 0) >= 1
