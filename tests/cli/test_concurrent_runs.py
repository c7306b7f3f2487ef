"""Eight pipeline runs started at the same moment all succeed, on both stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import SAMPLES, Cli


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_eight_runs_at_once(
    backend: str, cli: Cli, data_csv: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "postgresql":
        cli.env["CTLOOP_STORE_URL"] = request.getfixturevalue("fresh_postgres_url")
    procs = [
        cli.popen(
            "run",
            f"{SAMPLES}:regression",
            "-p",
            f"path={data_csv}",
            "-p",
            f"degree={1 + i % 3}",
            "--json",
        )
        for i in range(8)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "database is locked" not in err
        assert json.loads(out)["status"] == "succeeded"
    runs = json.loads(cli("runs", "list", "--json", "--limit", "50").stdout)
    assert len(runs) == 8 and {r["status"] for r in runs} == {"succeeded"}
