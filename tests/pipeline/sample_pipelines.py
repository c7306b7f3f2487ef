"""Small real pipelines used by the engine and CLI tests.

Steps record each call in a file named by ``CALLS_FILE`` so tests can see which steps
actually ran (and which were served from the cache).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ctloop import FilePath, data_version, log_metric, log_param, pipeline, set_tag, step


def _note(name: str) -> None:
    target = os.environ.get("CALLS_FILE")
    if target:
        with open(target, "a") as fh:
            fh.write(name + "\n")


@step
def load(path: FilePath) -> pd.DataFrame:
    _note("load")
    print(f"loading {path}")
    return pd.read_csv(path)


@step(outputs=("train", "test"))
def split(data: pd.DataFrame, test_fraction: float = 0.25) -> tuple[pd.DataFrame, pd.DataFrame]:
    _note("split")
    cut = int(len(data) * (1 - test_fraction))
    return data.iloc[:cut], data.iloc[cut:]


@step
def fit(train: pd.DataFrame, degree: int = 1) -> np.ndarray:
    _note("fit")
    coef = np.polyfit(train["x"], train["y"], degree)
    log_param("degree", degree)
    log_metric("train_rows", len(train))
    set_tag("kind", "polyfit")
    return coef


@step
def score(coef: np.ndarray, test: pd.DataFrame) -> dict:
    _note("score")
    pred = np.polyval(coef, test["x"])
    mse = float(np.mean((pred - test["y"]) ** 2))
    for i in range(3):
        log_metric("mse", mse, step=i)
    return {"mse": mse, "rows": len(test)}


@pipeline
def regression(path: FilePath = FilePath("data.csv"), degree: int = 1, test_fraction: float = 0.25):
    data = load(path)
    train, test = split(data, test_fraction=test_fraction)
    coef = fit(train, degree=degree)
    score(coef, test)


@step
def number(value: int) -> int:
    _note(f"number{value}")
    return value


@step
def boom(value: int, fail: bool = True) -> int:
    _note("boom")
    print("about to fail")
    if fail or Path(os.environ.get("BOOM_FILE", "/nonexistent")).exists():
        raise ValueError(f"bad value {value}")
    return value


@step
def total(a: int, b: int) -> int:
    _note("total")
    return a + b


@step
def slow(value: int, seconds: float = 0.0) -> int:
    _note(f"slow{value}")
    time.sleep(seconds)
    return value


@pipeline
def branches(fail: bool = True):
    """Two branches: one fails, the other must still finish."""
    ok = number(1)
    total(ok, number(2))
    bad = boom(number(3), fail=fail)
    total(bad, ok)


@pipeline
def parallel(seconds: float = 1.0):
    """Four independent sleepers: a process pool runs them at the same time."""
    values = [slow(i, seconds=seconds) for i in range(4)]
    total(values[0], values[1])


class Opaque:
    """A type no materializer handles."""


@step
def opaque() -> Opaque:
    return Opaque()


@pipeline
def unsupported():
    opaque()


@pipeline
def cyclic():
    a = number(1)
    b = total(a, a)
    a.after(b)


@step
def killable(value: int, marker: str = "") -> int:
    """Waits for a marker file to exist before finishing (so a test can kill it)."""
    _note(f"killable{value}")
    if marker:
        Path(marker + ".started").write_text("1")
        deadline = time.time() + 60
        while not Path(marker).exists() and time.time() < deadline:
            time.sleep(0.05)
    return value * 10


@pipeline
def interruptible(marker: str = ""):
    first = number(5)
    second = killable(first, marker=marker)
    total(second, first)


@step
def count_rows(folder: Path) -> int:
    """Rows in every CSV file of a data version (fails while ``BOOM_FILE`` exists)."""
    if Path(os.environ.get("BOOM_FILE", "/nonexistent")).exists():
        raise RuntimeError("the data source is broken")
    files = [folder] if folder.is_file() else sorted(folder.rglob("*.csv"))
    return sum(len(pd.read_csv(f)) for f in files)


@step
def doubled(rows: int) -> int:
    return rows * 2


@pipeline
def versioned(ref: str = "raw"):
    doubled(count_rows(data_version(ref)))


@step(cache=False)
def cores_given() -> dict:
    """The cores the pool gave this step, and what its native thread pools may take."""
    from ctloop.workers import task_cores

    return {"cores": task_cores(), "omp": os.environ.get("OMP_NUM_THREADS")}


@pipeline
def cores() -> None:
    cores_given()
