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
BENCH = ROOT / ".bench"


def run_child(
    cmd: list[str], env: dict[str, str] | None, cwd: Path | str | None, timeout: float = 1800
) -> None:
    """Run ``cmd``; raise ``RuntimeError`` with the tail of its output if it fails."""
    proc = subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n" + "\n".join(tail))


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


def ensure_venv(name: str, requirements: list[str], probe: str) -> Path:
    """The Python of ``.bench/<name>``, created with ``requirements`` on first use;
    ``probe`` is an import statement that succeeds once they are installed."""
    venv = BENCH / name
    python = venv / "bin" / "python"
    check = [str(python), "-c", probe]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"installing {' '.join(requirements)} into {venv} (once) …", file=sys.stderr)
    run_child([shutil.which("python3") or sys.executable, "-m", "venv", str(venv)], None, ROOT)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--upgrade"]
    run_child([*pip, "pip"], dict(os.environ), ROOT, timeout=600)
    run_child([*pip, *requirements], dict(os.environ), ROOT)
    return python


def best_timings(samples: list[dict[str, Any]], digits: int = 3) -> dict[str, Any]:
    """Each timing's best (minimum) over the samples; other fields from the first one."""
    best: dict[str, Any] = dict(samples[0])
    for key, value in samples[0].items():
        if key.endswith("_s") and isinstance(value, int | float):
            best[key] = round(min(float(s[key]) for s in samples), digits)
    best["samples"] = len(samples)
    return best
