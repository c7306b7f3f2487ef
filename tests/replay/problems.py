"""Small time-stamped problems with a known answer, and the trainers a replay runs.

``drifting``: 150 rows a day; the label follows ``x`` until :data:`SWITCH` and ``-x``
after, so a model retrained after the switch recovers and the first model does not.
``stable``: the same relation every day, so a good policy never retrains. ``per_day``
rows a day (fewer than the monitor's ``min_rows`` a week: a window judged over weeks).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from ctloop import pipeline, step
from ctloop.components import fit

SWITCH = pd.Timestamp("2024-03-04")
DATA = Path(__file__).with_name("drifting.parquet")


def drifting(
    days: int = 98, seed: int = 7, switch: pd.Timestamp | None = SWITCH, per_day: int = 150
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    day = pd.date_range("2024-01-01", periods=days, freq="D").repeat(per_day)
    x, z = rng.normal(size=len(day)), rng.normal(size=len(day))
    sign = np.ones(len(day)) if switch is None else np.where(day >= switch, -1.0, 1.0)
    late = (sign * x + rng.normal(scale=0.8, size=len(day)) > 0).astype(int)
    return pd.DataFrame({"day": day, "x": x, "z": z, "late": late})


def stable(days: int = 98, seed: int = 3, per_day: int = 150) -> pd.DataFrame:
    return drifting(days, seed, switch=None, per_day=per_day)


def train(rows: pd.DataFrame) -> LogisticRegression:
    """A plain training function: a fitted estimator on the rows' features."""
    return LogisticRegression().fit(rows[["x", "z"]], rows["late"])


def weighted(rows: pd.DataFrame, sample_weight: np.ndarray | None = None) -> LogisticRegression:
    return LogisticRegression().fit(rows[["x", "z"]], rows["late"], sample_weight=sample_weight)


@step
def window(path: str, train_start: str | None, train_end: str) -> pd.DataFrame:
    data = pd.read_parquet(path)
    after = data["day"] >= pd.Timestamp(train_start) if train_start else True
    rows = data[after & (data["day"] < pd.Timestamp(train_end))]
    return rows[["x", "z", "late"]].reset_index(drop=True)


@pipeline
def training(
    path: str = str(DATA), train_start: str | None = None, train_end: str = "2024-02-01"
) -> None:
    """The user's pipeline: its rows of the window, and ctloop's fit step."""
    rows = window(path, train_start, train_end)
    fit(rows, label="late", estimator="sklearn.linear_model.LogisticRegression")


@pipeline
def untimed(path: str = str(DATA)) -> None:
    fit(window(path, None, "2024-02-01"), label="late", estimator="x.Y")


def shifted(days: int = 98, seed: int = 5) -> pd.DataFrame:
    """The relation never changes, but ``x`` moves up by 1.5 from :data:`SWITCH` on."""
    frame = stable(days, seed)
    moved = np.where(frame["day"] >= SWITCH, 1.5, 0.0)
    rng = np.random.default_rng(seed + 1)
    late = frame["x"] + moved - 1.5 * (moved > 0) + rng.normal(scale=0.8, size=len(frame)) > 0
    return frame.assign(x=frame["x"] + moved, late=late.astype(int))
