"""Fixtures for engine tests: a fresh ctloop home per test and a call log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


class Calls:
    """Reads the steps that actually ran (written by tests/pipeline/sample_pipelines.py)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def take(self) -> list[str]:
        if not self.path.exists():
            return []
        names = self.path.read_text().split()
        self.path.unlink()
        return names


@pytest.fixture(params=["sqlite", "postgresql"])
def home(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ctloop home; every engine test runs on SQLite and on a real PostgreSQL."""
    monkeypatch.setenv("CTLOOP_HOME", str(tmp_path / "home"))
    if request.param == "postgresql":
        monkeypatch.setenv("CTLOOP_STORE_URL", request.getfixturevalue("fresh_postgres_url"))
    else:
        monkeypatch.delenv("CTLOOP_STORE_URL", raising=False)
    monkeypatch.delenv("CTLOOP_ARTIFACT_URL", raising=False)
    monkeypatch.delenv("CTLOOP_EXECUTOR", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Calls]:
    path = tmp_path / "calls.txt"
    monkeypatch.setenv("CALLS_FILE", str(path))
    yield Calls(path)


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    """A 200-row table with a known linear relation y = 3x + 1 + noise."""
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 10, 200)
    frame = pd.DataFrame({"x": x, "y": 3 * x + 1 + rng.normal(0, 0.1, 200)})
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path
