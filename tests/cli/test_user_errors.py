"""A user's mistake or a broken input file is one sentence and an exit code, never a
traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.cli.conftest import Cli, damage_parquet_pages


def one_sentence(stderr: str) -> str:
    """The error line of a failed command; fails on a traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


# -- data get -------------------------------------------------------------------------


def test_data_get_into_an_existing_file_names_the_file(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a\n")
    cli("data", "add", "raw", "a.txt")
    proc = cli("data", "get", "raw", "a.txt", check=False)
    assert proc.returncode == 1
    message = one_sentence(proc.stderr)
    assert "a.txt" in message and "not a folder" in message
    assert (tmp_path / "a.txt").read_text() == "a\n"  # left alone


def test_data_get_through_a_file_in_the_way_names_it(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "b.csv").write_text("x\n1\n")
    cli("data", "add", "raw", str(folder))
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").write_text("in the way\n")  # a file where the snapshot has a folder
    proc = cli("data", "get", "raw", str(out), check=False)
    assert proc.returncode == 1
    assert "sub" in one_sentence(proc.stderr)


# -- ctloop.yaml ----------------------------------------------------------------------


def test_settings_file_that_is_not_utf8_names_the_byte(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "ctloop.yaml").write_bytes(b"executor: local\n# caf\xe9\n")
    proc = cli("runs", "list", check=False)
    assert proc.returncode == 1
    message = one_sentence(proc.stderr)
    assert "ctloop.yaml" in message and "UTF-8" in message
    assert "offset 21" in message and "0xe9" in message


# -- damaged Parquet ------------------------------------------------------------------


@pytest.fixture
def damaged_parquet(tmp_path: Path) -> Path:
    rng = np.random.default_rng(2)
    rows = 30_000
    frame = pd.DataFrame(
        {
            "distance": rng.uniform(100.0, 2500.0, rows).round(1),
            "carrier": rng.choice(["AA", "B6", "DL", "UA"], rows),
            "n": rng.integers(0, 1000, rows),
        }
    )
    path = tmp_path / "damaged.parquet"
    frame.to_parquet(path, row_group_size=rows // 3)
    frame.to_csv(tmp_path / "good.csv", index=False)
    damage_parquet_pages(path)
    return path


@pytest.mark.parametrize("command", ["stats", "schema", "validate", "drift"])
def test_data_commands_call_a_damaged_parquet_file_damaged(
    cli: Cli, damaged_parquet: Path, command: str
) -> None:
    args = {
        "stats": ["stats", str(damaged_parquet)],
        "schema": ["schema", str(damaged_parquet)],
        "validate": ["validate", str(damaged_parquet), "--schema", "schema.yaml"],
        "drift": ["drift", "good.csv", str(damaged_parquet)],
    }[command]
    cli("data", "schema", "good.csv", "-o", "schema.yaml")
    proc = cli("data", *args, check=False)
    assert proc.returncode == 1
    message = one_sentence(proc.stderr)
    assert "damaged.parquet" in message and "damaged" in message.replace("damaged.parquet", "")


# -- data add and symbolic links --------------------------------------------------------


@pytest.fixture
def linked_folder(tmp_path: Path) -> Path:
    outside = tmp_path / "secret.txt"
    outside.write_text("not for the store\n")
    folder = tmp_path / "raw"
    (folder / "nested").mkdir(parents=True)
    (folder / "a.csv").write_text("x\n1\n")
    os.symlink(folder / "a.csv", folder / "nested" / "same.csv")  # inside: fine
    os.symlink(outside, folder / "leak.txt")
    return folder


def test_data_add_refuses_a_link_out_of_the_folder(cli: Cli, linked_folder: Path) -> None:
    proc = cli("data", "add", "raw", str(linked_folder), check=False)
    assert proc.returncode == 1
    message = one_sentence(proc.stderr)
    assert "leak.txt" in message and "secret.txt" in message and "--follow-links" in message
    listed = json.loads(cli("data", "versions", "--json").stdout)
    assert listed == []


def test_data_add_keeps_links_inside_the_folder(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    (folder / "nested").mkdir(parents=True)
    (folder / "a.csv").write_text("x\n1\n")
    os.symlink(Path("..") / "a.csv", folder / "nested" / "same.csv")
    added = json.loads(cli("data", "add", "raw", str(folder), "--json").stdout)
    assert added["files"] == 2


def test_data_add_follows_links_when_asked(cli: Cli, linked_folder: Path, tmp_path: Path) -> None:
    added = json.loads(
        cli("data", "add", "raw", str(linked_folder), "--follow-links", "--json").stdout
    )
    assert added["files"] == 3
    cli("data", "get", "raw", str(tmp_path / "out"))
    assert (tmp_path / "out" / "leak.txt").read_text() == "not for the store\n"
