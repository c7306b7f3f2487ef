"""How much time ctloop itself adds to a pipeline run, and how that compares with ZenML.

The pipeline is a chain of 20 trivial steps (step i returns its input + 1), so nearly all
of the time measured is the orchestrator's: recording runs and executions, hashing code
and inputs, storing and loading artifacts. Prints one JSON line::

    python benchmarks/pipeline_overhead.py                # ctloop only
    python benchmarks/pipeline_overhead.py --with-peers   # and ZenML, in .bench/zenml-venv
    python benchmarks/pipeline_overhead.py --repeat 5     # best of 5 (default 3)

Each measurement runs in a fresh process with a fresh, temporary state folder
(``CTLOOP_HOME``; ``ZENML_CONFIG_PATH`` for ZenML), in-process execution for both:

- ``first_run_s``: the first run of the pipeline (every step executes); creating the
  metadata store is reported apart as ``store_init_s`` for both tools.
- ``cached_run_s``: the same run again, every step a cache hit.
- ``per_step_s``: ``first_run_s / 20``; ``cached_per_step_s`` likewise.
- ``help_s``: wall time of ``ctloop --help`` in a subprocess (best of 5).

ZenML (``zenml[local]``) is installed on first use into ``.bench/zenml-venv`` (needs
``pip`` access to a package index once). It runs with analytics off and, where Linux user
namespaces allow it, in a network namespace of its own (``unshare -rn``), so it cannot
reach the network. If ZenML cannot be installed or run, its entry is ``{"error": ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from peers import best_timings, clean_env, ensure_venv, offline_prefix, run_child

STEPS = 20
ROOT = Path(__file__).resolve().parents[1]
ZENML_SCRIPT = Path(__file__).resolve().parent / "zenml_chain.py"


# --- ctloop side: runs in a child process (``--measure-ctloop``) -----------------------


def measure_ctloop_once() -> dict[str, Any]:
    """Time a first and a cached run of the chain in this (fresh) process and home."""
    t = time.perf_counter()
    import ctloop
    from ctloop import pipeline, step

    import_s = time.perf_counter() - t

    @step
    def increment(value: int) -> int:
        return value + 1

    @pipeline
    def chain(start: int = 0) -> None:
        value = increment(start)
        for _ in range(STEPS - 1):
            value = increment(value)

    from ctloop.store.workspace import Workspace

    t = time.perf_counter()
    Workspace.open().metadata.list_runs()  # create the store, as ZenML's is created apart
    store_init_s = time.perf_counter() - t
    t = time.perf_counter()
    first = chain.run(executor="local", cache=True)
    first_s = time.perf_counter() - t
    t = time.perf_counter()
    cached = chain.run(executor="local", cache=True)
    cached_s = time.perf_counter() - t
    return {
        "version": ctloop.__version__,
        "import_s": import_s,
        "store_init_s": store_init_s,
        "first_run_s": first_s,
        "cached_run_s": cached_s,
        "first_status": str(first.status),
        "cached_steps": len(cached.cached_steps),
    }


def ctloop_figures(repeat: int) -> dict[str, Any]:
    """Best of ``repeat`` fresh-process measurements of ctloop, plus ``ctloop --help``."""
    samples = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="ctloop-bench-") as tmp:
            out = Path(tmp) / "result.json"
            env = clean_env("ZENML_") | {"CTLOOP_HOME": str(Path(tmp) / "home")}
            cmd = [sys.executable, str(Path(__file__).resolve()), "--measure-ctloop", str(out)]
            run_child(cmd, env, Path(tmp), timeout=600)
            samples.append(json.loads(out.read_text()))
    figures = _best(samples)
    figures["help_s"] = round(_help_time(), 3)
    return figures


def _help_time(tries: int = 5) -> float:
    script = Path(sys.executable).with_name("ctloop")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "ctloop"]
    best = float("inf")
    for _ in range(tries):
        t = time.perf_counter()
        subprocess.run([*cmd, "--help"], capture_output=True, check=True, env=clean_env("ZENML_"))
        best = min(best, time.perf_counter() - t)
    return best


# --- ZenML side: its own virtual environment ------------------------------------------


def zenml_figures(repeat: int) -> dict[str, Any]:
    """Best of ``repeat`` ZenML measurements, or ``{"error": ...}`` saying what failed."""
    try:
        python = ensure_zenml_venv()
        samples = [_zenml_once(python) for _ in range(repeat)]
    except (OSError, RuntimeError, subprocess.SubprocessError, ValueError) as exc:
        return {"error": str(exc)}
    figures = _best(samples)
    figures["network_isolated"] = bool(offline_prefix())
    return figures


def ensure_zenml_venv() -> Path:
    """The Python of ``.bench/zenml-venv``, created with ``zenml[local]`` if missing."""
    return ensure_venv("zenml-venv", ["zenml[local]"], "import zenml")


def _zenml_once(python: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="zenml-bench-") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        out = Path(tmp) / "result.json"
        env = clean_env("ZENML_") | {
            "ZENML_CONFIG_PATH": str(Path(tmp) / "config"),
            "ZENML_ANALYTICS_OPT_IN": "false",
            "ZENML_LOGGING_VERBOSITY": "WARN",
            "ZENML_ENABLE_REPO_INIT_WARNINGS": "false",
            "ZENML_DISABLE_INTERACTIVE_INPUT": "true",
        }
        cmd = [*offline_prefix(), str(python), str(ZENML_SCRIPT), str(out)]
        run_child(cmd, env, work, timeout=600)
        return json.loads(out.read_text())


def _best(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Best timings plus the per-step figures."""
    best = best_timings(samples)
    first, cached = float(best["first_run_s"]), float(best["cached_run_s"])
    best["per_step_s"] = round(first / STEPS, 4)
    best["cached_per_step_s"] = round(cached / STEPS, 4)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--with-peers", action="store_true", help="also measure ZenML")
    parser.add_argument("--repeat", type=int, default=3, help="measurements per tool (best)")
    parser.add_argument("--measure-ctloop", metavar="OUT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure_ctloop:
        Path(args.measure_ctloop).write_text(json.dumps(measure_ctloop_once()))
        return 0

    load_avg = round(os.getloadavg()[0], 2)  # other work on the machine skews timings
    ours = ctloop_figures(args.repeat)
    report: dict[str, Any] = {
        "benchmark": "pipeline_overhead",
        "steps": STEPS,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_avg_1m": load_avg,
        "ctloop": ours,
    }
    if args.with_peers:
        zenml = zenml_figures(args.repeat)
        report["zenml"] = zenml
        if "error" not in zenml:
            report["zenml_vs_ctloop_per_step"] = round(
                float(zenml["per_step_s"]) / float(ours["per_step_s"]), 1
            )
            report["zenml_vs_ctloop_cached_per_step"] = round(
                float(zenml["cached_per_step_s"]) / float(ours["cached_per_step_s"]), 1
            )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
