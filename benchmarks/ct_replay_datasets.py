"""``ctloop replay`` with its default policy on real time-stamped data of other shapes.

Each data set ships inside a PyPI package, installed once into ``.bench/datasets-venv``
(``vega_datasets`` 0.9.0 and ``statsmodels``); this script copies its CSV out of that
venv's site-packages, writes it as a user would (a CSV with a time column, and a training
file ``train.py`` whose ``train(rows)`` fits scikit-learn's gradient-boosted trees on the
rows it is given), and runs ``ctloop replay`` on it with the defaults (the built-in
``drift`` policy, ``--every 1w --label-delay 1w``, the start a fifth into the data).
One JSON line per data set: the static model, the loop, every period's retraining and
the fixed schedules with as many retrains (``equal_schedules``), each retrain's reasons
as the replay wrote them, incidents and alerts, and the verdict::

    python benchmarks/ct_replay_datasets.py                     # every data set
    python benchmarks/ct_replay_datasets.py --dataset co2 --end 2002-01-01   # all of it

The data sets:

- ``seattle_temp`` (regression, daily 2012-2015, seasonal): the day's maximum
  temperature in Seattle from its minimum, precipitation, wind, the weather class and
  the calendar (month, day of the year).
- ``co2`` (regression, weekly 1958-2001, a trend under a seasonal cycle): Mauna Loa's
  weekly CO2 from the calendar (year, month, week of the year). Trees cannot extrapolate
  the trend, so a model never retrained falls behind every year. Replayed from the
  default start (1967) to 1976 unless ``--end`` says otherwise.
- ``seattle_rain`` (classification, daily 2012-2015): whether it rains in Seattle from
  the day's temperatures, wind and month. The relation is the same every year: a
  stable set, on which the loop should stay quiet.
- ``affairs`` (classification, stable by construction): statsmodels' ``fair`` survey
  (6,366 answers; label: any affair), each answer given a day of 2010-2013 at random, so
  that every week is drawn from the same population; the loop should neither retrain nor
  alert.

``loop_not_worse`` is the goal: the loop's mean metric is no worse than the static
model's (``--tolerance`` of it, default 0).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.venvs import ensure_venv  # noqa: E402

VENV = "datasets-venv"
REQUIREMENTS = ["vega_datasets==0.9.0", "statsmodels==0.15.0"]

TRAIN = '''\
"""Gradient-boosted trees on every column but the label and the time column."""

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoosting{kind}
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

LABEL, TIME = {label!r}, "date"


def train(rows):
    features = rows.drop(columns=[LABEL, TIME])
    text = [c for c in features if not pd.api.types.is_numeric_dtype(features[c])]
    encode = ColumnTransformer(
        [("text", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan), text)],
        remainder="passthrough",
    )
    trees = HistGradientBoosting{kind}(max_iter=100, random_state=0)
    return Pipeline([("encode", encode), ("trees", trees)]).fit(features, rows[LABEL])
'''


def site_packages() -> Path:
    """The site-packages of the venv holding the packages' data."""
    python = ensure_venv(VENV, REQUIREMENTS, "import vega_datasets, statsmodels.datasets")
    found = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return Path(found.stdout.strip())


def seattle(packages: Path) -> pd.DataFrame:
    table = pd.read_csv(packages / "vega_datasets" / "_data" / "seattle-weather.csv")
    date = pd.to_datetime(table["date"], format="%Y/%m/%d")
    return table.assign(date=date, month=date.dt.month, day_of_year=date.dt.day_of_year)


def seattle_temp(packages: Path) -> tuple[pd.DataFrame, str]:
    table = seattle(packages)
    columns = ["date", "precipitation", "temp_min", "wind", "weather", "month", "day_of_year"]
    return table[[*columns, "temp_max"]], "temp_max"


def seattle_rain(packages: Path) -> tuple[pd.DataFrame, str]:
    table = seattle(packages)
    rain = (table["precipitation"] > 0).astype(int)
    return table[["date", "temp_max", "temp_min", "wind", "month"]].assign(rain=rain), "rain"


def co2(packages: Path) -> tuple[pd.DataFrame, str]:
    table = pd.read_csv(packages / "statsmodels" / "datasets" / "co2" / "co2.csv")
    date = pd.to_datetime(table["date"].astype(str), format="%Y%m%d")
    table = table.assign(
        date=date, year=date.dt.year, month=date.dt.month,
        week_of_year=date.dt.isocalendar().week.astype(int),
    )  # fmt: skip
    return table[table["co2"].notna()][["date", "year", "month", "week_of_year", "co2"]], "co2"


def affairs(packages: Path) -> tuple[pd.DataFrame, str]:
    table = pd.read_csv(packages / "statsmodels" / "datasets" / "fair" / "fair.csv")
    rng = np.random.default_rng(0)
    days = pd.date_range("2010-01-01", "2013-12-31", freq="D")
    date = days[rng.integers(0, len(days), size=len(table))]
    label = (table.pop("affairs") > 0).astype(int)
    return table.assign(date=date, affair=label), "affair"


DATASETS: dict[str, tuple[Callable[[Path], tuple[pd.DataFrame, str]], str, str]] = {
    "seattle_temp": (seattle_temp, "Regressor", "regression, daily, seasonal"),
    "co2": (co2, "Regressor", "regression, weekly, trend and season"),
    "seattle_rain": (seattle_rain, "Classifier", "classification, daily, stable by year"),
    "affairs": (affairs, "Classifier", "classification, stable by construction"),
}
#: where a replay stops unless --end says otherwise: CO2's 1,800 weeks after the default
#: start train a model a week for every schedule, an hour on two busy cores
ENDS = {"co2": "1976-01-01"}


def replay(name: str, packages: Path, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Write ``name`` as a user would and run ``ctloop replay`` on it with defaults."""
    build, kind, shape = DATASETS[name]
    table, label = build(packages)
    home = folder / name
    home.mkdir(parents=True, exist_ok=True)
    table.to_csv(home / "data.csv", index=False)
    (home / "train.py").write_text(TRAIN.format(kind=kind, label=label))
    command = [
        str(Path(sys.executable).parent / "ctloop"), "replay", "data.csv",
        "--pipeline", "train.py:train", "--time-column", "date", "--label", label,
        "--workers", str(args.workers), "--json",
    ]  # fmt: skip
    end = args.end or ENDS.get(name)
    if end:
        command += ["--end", end]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.cores), "CTLOOP_HOME": str(home / ".ctloop")}
    done = subprocess.run(command, cwd=home, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"dataset": name, "error": (done.stdout + done.stderr).strip()[-2000:]}
    (home / "replay.out").write_text(done.stdout + done.stderr)
    line = json.loads(done.stdout)
    (policy, loop), *_ = line["policies"].items()
    window = next(iter(line["schedules"].values()))
    higher = line["metric"] in ("auc", "accuracy", "f1", "r2", "precision", "recall")
    static, mine = line["static"], loop["mean"]
    margin = args.tolerance * abs(static or 0.0)
    not_worse = (
        mine is not None
        and static is not None
        and (mine >= static - margin if higher else mine <= static + margin)
    )
    return {
        "benchmark": "ct_replay_datasets",
        "dataset": name,
        "shape": shape,
        "rows": len(table),
        "periods": line["periods"],
        "end": end,
        "metric": line["metric"],
        "policy": policy,
        "mean": {
            "static": static,
            "ctloop": mine,
            "every_period": window["every period"]["mean"],
        },
        "retrains": {
            "ctloop": loop["retrains"],
            "every_period": window["every period"]["retrains"],
        },
        "promotions": loop["promotions"],
        "gap_closed": loop["gap_closed"],
        "equal_schedules": loop["equal_schedules"],
        "beats_equal_schedules": loop["beats_equal_schedules"],
        "why": loop["why"],
        "gate_rejected": loop["gate_rejected"],
        "incidents": loop["incidents"],
        "incident_causes": loop["incident_causes"],
        "alerts": loop.get("alerts"),
        "verdicts": loop["verdicts"],
        "loop_not_worse": not_worse,
        "seconds": line["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", action="append", choices=sorted(DATASETS), default=[])
    parser.add_argument("--end", default=None, help="where each replay stops (default: its end)")
    parser.add_argument("--workers", type=int, default=1, help="processes that train models")
    parser.add_argument("--cores", type=int, default=1, help="native threads for fits")
    parser.add_argument("--tolerance", type=float, default=0.0, help="share of static allowed")
    parser.add_argument("--keep", type=Path, default=None, help="write the data sets here")
    args = parser.parse_args()
    packages = site_packages()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        for name in args.dataset or list(DATASETS):
            print(json.dumps(replay(name, packages, args, folder)), flush=True)


if __name__ == "__main__":
    main()
