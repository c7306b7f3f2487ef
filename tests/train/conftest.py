"""Small real data for training tests: slices of scikit-learn's breast cancer data."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def cancer() -> pd.DataFrame:
    """569 tumours, 30 float features and ``malignant`` (0/1); a few features only."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame = frame.rename(columns=lambda c: c.replace(" ", "_"))
    columns = ["mean_radius", "mean_texture", "mean_smoothness", "worst_concavity"]
    return frame[columns].assign(malignant=1 - frame["target"])


@pytest.fixture(scope="session")
def train_valid(cancer: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    shuffled = cancer.sample(frac=1.0, random_state=0).reset_index(drop=True)
    return shuffled.iloc[:400], shuffled.iloc[400:]
