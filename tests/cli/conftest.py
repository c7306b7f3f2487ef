"""Drive the real ``ctloop`` command in a subprocess, against a fresh home."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tests" / "pipeline" / "sample_pipelines.py"


@dataclass
class Cli:
    """Runs ``python -m ctloop`` with a private home in ``cwd``."""

    cwd: Path
    env: dict[str, str]

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "ctloop", *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"ctloop {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "ctloop", *args],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def start_interruptible(self, marker: Path) -> subprocess.Popen[str]:
        """Start ``ctloop run`` of the sample pipeline ``interruptible`` and wait (up to
        60 s) until its step has written ``<marker>.started``; it finishes once
        ``marker`` exists."""
        proc = self.popen("run", f"{SAMPLES}:interruptible", "-p", f"marker={marker}")
        started = Path(str(marker) + ".started")
        deadline = time.time() + 60
        while not started.exists() and time.time() < deadline:
            time.sleep(0.05)
        return proc


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    env["CTLOOP_HOME"] = str(tmp_path / "home")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["CALLS_FILE"] = str(tmp_path / "calls.txt")
    env["COLUMNS"] = "200"
    return Cli(tmp_path, env)


@pytest.fixture
def data_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 5, 120)
    path = tmp_path / "data.csv"
    pd.DataFrame({"x": x, "y": 2 * x - 1}).to_csv(path, index=False)
    return path


def damage_parquet_pages(path: Path) -> None:
    """Overwrite bytes in the middle of the data pages of the last row group of ``path``,
    keeping the footer intact: the file opens (its row count is known) but its rows do
    not decode."""
    import pyarrow.parquet as pq

    metadata = pq.ParquetFile(path).metadata
    data = bytearray(path.read_bytes())
    group = metadata.row_group(metadata.num_row_groups - 1)
    for index in range(group.num_columns):
        column = group.column(index)
        middle = column.data_page_offset + column.total_compressed_size // 2
        data[middle : middle + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))
    assert pq.ParquetFile(path).metadata.num_rows == metadata.num_rows  # the footer still reads
