"""Shared test fixtures; backends' servers live in tests/fixtures/."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.markers",
    "tests.fixtures.postgres",
    "tests.fixtures.s3",
    "tests.fixtures.ctloop_server",
]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ctloop home (SQLite, local artifacts, in-process steps) in ``tmp_path``."""
    monkeypatch.setenv("CTLOOP_HOME", str(tmp_path / "home"))
    for name in ("CTLOOP_STORE_URL", "CTLOOP_ARTIFACT_URL", "CTLOOP_EXECUTOR", "CTLOOP_SERVER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """One local Ray (2 CPUs, quiet) for a test module; ctloop attaches to it."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield
    ray.shutdown()
