"""Fixtures for the components' tests: a fresh ctloop home and a small flights table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ctloop home (SQLite, local artifacts, in-process steps) in ``tmp_path``."""
    monkeypatch.setenv("CTLOOP_HOME", str(tmp_path / "home"))
    for name in ("CTLOOP_STORE_URL", "CTLOOP_ARTIFACT_URL", "CTLOOP_EXECUTOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


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
