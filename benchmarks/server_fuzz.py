"""Schemathesis over ``ctloop server``'s REST API v1 with an admin key, 1,000 examples per
operation: the thorough run of ``tests/server/test_security.py``'s fuzz test.

    python benchmarks/server_fuzz.py                  # 1,000 examples per operation
    python benchmarks/server_fuzz.py --examples 100   # a quicker look

Serves a SQLite workspace holding a run with params and metrics, an artifact with files
and a registered model (``tests/server/_data.py``, as the test seeds it) on 127.0.0.1,
then runs ``st run`` over ``/api/v1/openapi.json`` with the ``not_a_server_error`` check,
every phase (examples, coverage, fuzzing, stateful), deterministic generation, one worker.
Prints one JSON line: the operations tested, the cases generated and passed, the failures
(``5xx`` answers), the seconds it took and schemathesis's own summary lines; the report of
any failure (with a ``curl`` line to reproduce it) is printed above it, on stderr.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # the workspace is seeded as the tests seed it


def fuzz(examples: int) -> dict[str, Any]:
    """Seed a workspace, serve it, run schemathesis over it; the figures of the run."""
    from ctloop.server import create_app
    from ctloop.store.workspace import Workspace
    from tests.server._data import run_with_model
    from tests.server.conftest import role_keys, start

    with tempfile.TemporaryDirectory(prefix="bench-server-fuzz-") as folder:
        tmp = Path(folder)
        workspace = Workspace.open(f"sqlite:///{tmp / 'metadata.db'}", artifacts=str(tmp / "a"))
        keys = role_keys(workspace)
        run_with_model(workspace)
        server, thread, url = start(create_app(workspace))
        command = [
            str(Path(sys.executable).with_name("st")),
            "run",
            f"{url}/api/v1/openapi.json",
            "--checks",
            "not_a_server_error",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            str(examples),
            "--generation-deterministic",
            "--no-color",
            "--workers",
            "1",
            "--header",
            f"Authorization: Bearer {keys['admin']}",
        ]
        started = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=tmp, capture_output=True, text=True, check=False)
        finally:
            server.should_exit = True
            thread.join(30)
            workspace.close()
    seconds = time.perf_counter() - started
    report = done.stdout + done.stderr
    if done.returncode != 0:
        print(report, file=sys.stderr)
    return {
        "benchmark": "server_fuzz",
        "examples_per_operation": examples,
        "operations_tested": _number(r"Tested: (\d+)", report),
        "generated": _number(r"(\d+) generated", report),
        "passed": _number(r"(\d+) passed", report),
        "failures": _number(r"(\d+) failures?", report) or 0,
        "seconds": round(seconds, 1),
        "exit_code": done.returncode,
        "summary": [line.strip() for line in report.splitlines()[-12:] if line.strip()],
        "goal": "no 5xx: " + ("met" if done.returncode == 0 else "not met"),
    }


def _number(pattern: str, text: str) -> int | None:
    found = re.findall(pattern, text)
    return int(found[-1]) if found else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000)
    args = parser.parse_args(argv)
    print(json.dumps(fuzz(args.examples)))


if __name__ == "__main__":
    main()
