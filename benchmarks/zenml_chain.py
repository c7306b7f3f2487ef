"""The ZenML side of ``pipeline_overhead.py``: the same 20-step chain, run by ZenML.

Runs inside its own virtual environment (``.bench/zenml-venv``), started by
``pipeline_overhead.py --with-peers`` with a throwaway ``ZENML_CONFIG_PATH`` and analytics
off, and writes its figures as JSON to the file named by its first argument::

    ZENML_CONFIG_PATH=$(mktemp -d) ZENML_ANALYTICS_OPT_IN=false \\
        .bench/zenml-venv/bin/python benchmarks/zenml_chain.py /tmp/zenml.json

The local store (SQLite database, default stack) is created before the clock starts
and reported as ``store_init_s``, so ``first_run_s`` is the pipeline run alone.
"""

from __future__ import annotations

import json
import sys
import time

STEPS = 20

t0 = time.perf_counter()
from zenml import pipeline, step  # noqa: E402
from zenml.client import Client  # noqa: E402

import_s = time.perf_counter() - t0


@step
def increment(value: int) -> int:
    return value + 1


@pipeline
def chain(start: int = 0) -> None:
    value = increment(start)
    for _ in range(STEPS - 1):
        value = increment(value)


def _timed_run() -> tuple[float, object]:
    start = time.perf_counter()
    run = chain()
    return time.perf_counter() - start, run


def main(out_path: str) -> None:
    import zenml

    t = time.perf_counter()
    _ = Client().active_stack  # creates the local SQLite store and the default stack
    store_init_s = time.perf_counter() - t
    first_s, first = _timed_run()
    cached_s, cached = _timed_run()
    steps = list(cached.steps.values())
    result = {
        "version": zenml.__version__,
        "import_s": round(import_s, 3),
        "store_init_s": round(store_init_s, 3),
        "first_run_s": round(first_s, 3),
        "cached_run_s": round(cached_s, 3),
        "per_step_s": round(first_s / STEPS, 4),
        "cached_per_step_s": round(cached_s / STEPS, 4),
        "first_status": str(first.status),
        "cached_steps": sum(1 for s in steps if str(s.status).endswith("cached")),
    }
    with open(out_path, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main(sys.argv[1])
