"""The Evidently side of ``drift.py``: ``DataDriftPreset`` on the same two Parquet files.

As a script it runs inside its own virtual environment (``.bench/evidently-venv``),
started by ``drift.py --with-peers`` through ``measure_offline`` with telemetry off and,
where the kernel allows, no network. It reads the reference and current tables, runs the
preset ``--repeat`` times, and writes one JSON object to the file named by ``--out``::

    DO_NOT_TRACK=1 .bench/evidently-venv/bin/python benchmarks/evidently_drift.py \\
        ref.parquet cur.parquet --repeat 1 --out /tmp/evidently.json

- ``import_s``: importing Evidently; ``read_s``: both Parquet files into pandas.
- ``drift_s``: the best ``Report.run`` (statistics of both sides and every column's test).
- ``peak_rss_mib``: this program's peak resident memory, imports included (``VmHWM``;
  ``ru_maxrss`` would also count the launching process, which Linux carries over ``exec``).
- ``verdicts``: per column, the test Evidently chose (in ctloop's names where one matches),
  its score (a p-value for hypothesis tests), the threshold and Evidently's own verdict.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from peers import ensure_venv, offline_prefix, run_child

REQUIREMENTS = ("evidently==0.7.*", "pandas<3", "pyarrow")
NO_TELEMETRY = {"DO_NOT_TRACK": "1", "ITERATIVE_DO_NOT_TRACK": "1"}

# Evidently's method names → ctloop's test names (``None``: no ctloop counterpart).
TESTS = {
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "PSI": "psi",
    "Z-test p_value": "ztest",
}


def run(reference_path: str, current_path: str, repeat: int) -> dict[str, Any]:
    """Import, read, run the preset ``repeat`` times; every figure as one dict."""
    start = time.perf_counter()
    import evidently
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    import_s = time.perf_counter() - start
    start = time.perf_counter()
    reference, current = pd.read_parquet(reference_path), pd.read_parquet(current_path)
    read_s = time.perf_counter() - start
    times, snapshot = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        report = Report([DataDriftPreset()], include_tests=True)
        snapshot = report.run(current_data=current, reference_data=reference)
        times.append(time.perf_counter() - start)
    assert snapshot is not None
    summary = snapshot.dict()
    return {
        "version": evidently.__version__,
        "import_s": round(import_s, 3),
        "read_s": round(read_s, 3),
        "drift_s": round(min(times), 3),
        "peak_rss_mib": peak_rss_mib(),
        **verdicts(summary),
    }


def peak_rss_mib() -> float:
    """Peak resident memory of this program since its ``exec``, in MiB.

    Linux's ``VmHWM``; elsewhere ``ru_maxrss``, which also counts what the parent process
    had resident when it started this one.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def verdicts(summary: dict[str, Any]) -> dict[str, Any]:
    """Per-column test, score, threshold and verdict, and the data-set verdict."""
    columns: dict[str, dict[str, Any]] = {}
    dataset: dict[str, Any] = {}
    for metric in summary["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            method = config["method"]
            columns[config["column"]] = {
                "test": TESTS.get(method, method),
                "score": round(float(metric["value"]), 4),
                "threshold": config["threshold"],
            }
        elif config["type"].endswith(":DriftedColumnsCount"):
            dataset = {"drifted_share": round(float(metric["value"]["share"]), 4)}
    for test in summary["tests"]:
        params = test["metric_config"]["params"]
        if params["type"].endswith(":ValueDrift"):
            columns[params["column"]]["drifted"] = test["status"] == "FAIL"
        elif params["type"].endswith(":DriftedColumnsCount"):
            dataset["dataset_drifted"] = test["status"] == "FAIL"
    return {**dataset, "verdicts": columns}


# --- launcher side: runs in ctloop's environment, standard library only ----------------


def ensure_evidently() -> Path:
    """The Python of ``.bench/evidently-venv``, created with Evidently on first use."""
    return ensure_venv("evidently-venv", REQUIREMENTS, "import evidently, pyarrow")


def measure_offline(
    python: Path, reference: Path, current: Path, repeat: int, env: dict[str, str]
) -> dict[str, Any]:
    """Run this script with ``python`` on the two files, offline; its JSON as a dict."""
    with tempfile.TemporaryDirectory(prefix="evidently-bench-") as tmp:
        out = Path(tmp) / "result.json"
        script = [str(python), str(Path(__file__).resolve()), str(reference), str(current)]
        options = ["--repeat", str(repeat), "--out", str(out)]
        run_child([*offline_prefix(), *script, *options], env | NO_TELEMETRY, tmp)
        result: dict[str, Any] = json.loads(out.read_text())
    return result


def main() -> None:
    """Parse the arguments, run, write the JSON file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference")
    parser.add_argument("current")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", required=True)
    options = parser.parse_args()
    result = run(options.reference, options.current, options.repeat)
    with open(options.out, "w", encoding="utf-8") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
