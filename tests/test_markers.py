"""The service markers: a test that needs PostgreSQL, S3, Ray or Chromium carries the
marker, so ``pytest -m "not postgres"`` runs without a database server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def collected(*args: str) -> set[str]:
    """The node ids pytest collects from ``tests/`` with ``args``."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {line for line in proc.stdout.splitlines() if "::" in line}


def test_service_markers_select_and_leave_out_the_tests_that_need_them() -> None:
    everything = collected("tests/pipeline/test_ray_executor.py", "tests/triggers/test_store.py")
    postgres = collected("-m", "postgres", "tests/triggers/test_store.py")
    ray = collected("-m", "ray", "tests/pipeline/test_ray_executor.py")
    left = collected(
        "-m",
        "not postgres and not ray",
        "tests/pipeline/test_ray_executor.py",
        "tests/triggers/test_store.py",
    )
    assert postgres and all("[postgresql]" in node for node in postgres)
    assert ray and all("test_ray_executor" in node for node in ray)
    assert left and not left & (postgres | ray)
    assert left | postgres | ray == everything
    assert not any("[postgresql]" in node for node in left)
