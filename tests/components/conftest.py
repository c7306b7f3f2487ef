"""Fixtures for the components' tests: a fresh ctloop home and a small flights table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def flights() -> pd.DataFrame:
    """200 flights: distance (float), carrier (string), dep_delay (int)."""
    rng = np.random.default_rng(11)
    return pd.DataFrame(
        {
            "distance": rng.uniform(100.0, 2500.0, 200).round(1),
            "carrier": rng.choice(["AA", "B6", "DL", "UA"], 200),
            "dep_delay": rng.integers(-10, 120, 200),
        }
    )
