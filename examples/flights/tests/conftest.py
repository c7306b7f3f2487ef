"""The flights example's own tests, as `ctloop ci` runs them (pytest in this folder):
the CI sample (``python ci_sample.py``) and a model fitted on its training months."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import features, fit_model  # noqa: E402

SAMPLE = ROOT / "data" / "ci-sample.parquet"


@pytest.fixture(scope="session", autouse=True)
def one_thread_per_model() -> Iterator[None]:
    """Fit with one OpenMP thread: on a busy CI runner, the trees' default of a thread
    per core waits on the others and fits a 2,000-row sample 50 times slower."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="session")
def ci_data() -> pd.DataFrame:
    """The CI sample: flights of the first months of 2013."""
    if not SAMPLE.is_file():
        pytest.fail(f"{SAMPLE} does not exist; write it with `python ci_sample.py`")
    return pd.read_parquet(SAMPLE)


@pytest.fixture(scope="session")
def train(ci_data: pd.DataFrame) -> pd.DataFrame:
    """The sample's first two months, as the pipeline's CI parameters train on."""
    return ci_data[pd.to_datetime(ci_data["date"]).dt.month <= 2].reset_index(drop=True)


@pytest.fixture(scope="session")
def held_out(ci_data: pd.DataFrame) -> pd.DataFrame:
    """The sample's third month, later than every flight trained on."""
    return ci_data[pd.to_datetime(ci_data["date"]).dt.month == 3].reset_index(drop=True)


@pytest.fixture(scope="session")
def model(train: pd.DataFrame) -> Pipeline:
    """The example's model, fitted on the sample's training months."""
    return fit_model(train)


@pytest.fixture(scope="session")
def rows(held_out: pd.DataFrame) -> pd.DataFrame:
    """Model inputs of 200 held-out flights."""
    return features(held_out)[0].head(200)
