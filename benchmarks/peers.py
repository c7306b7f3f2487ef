"""What every benchmark needs to measure a peer tool fairly (standard library only).

Peers (ZenML, MLflow, Evidently) are installed once into throwaway virtual environments
under ``.bench/`` and run in child processes with a clean environment and, where Linux
user namespaces allow it, no network at all (``unshare -rn``).

>>> offline_prefix() in ([], [offline_prefix()[0], "-rn"])  # doctest: +SKIP
True
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # the virtual environments are made as the tests make them

from tests.fixtures.venvs import BENCH, ensure_venv, run_child  # noqa: E402

__all__ = [
    "BENCH",
    "ROOT",
    "best_timings",
    "clean_env",
    "ensure_venv",
    "offline_prefix",
    "run_child",
]


def offline_prefix() -> list[str]:
    """``unshare -rn`` (no network) where this kernel lets us; otherwise nothing."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    probe = subprocess.run([unshare, "-rn", "true"], capture_output=True)
    return [unshare, "-rn"] if probe.returncode == 0 else []


def clean_env(*prefixes: str) -> dict[str, str]:
    """This environment minus settings that would point a tool at a real state folder
    (``CTLOOP_*``, ``PYTHON*`` and the given prefixes)."""
    drop = ("CTLOOP_", "PYTHON", *prefixes)
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def best_timings(samples: list[dict[str, Any]], digits: int = 3) -> dict[str, Any]:
    """Each timing's best (minimum) over the samples; other fields from the first one."""
    best: dict[str, Any] = dict(samples[0])
    for key, value in samples[0].items():
        if key.endswith("_s") and isinstance(value, int | float):
            best[key] = round(min(float(s[key]) for s in samples), digits)
    best["samples"] = len(samples)
    return best
