"""``ctloop models …`` end to end, as a user types it, against a fresh home.

The commands run through ``tests/registry/_cli.py``: the real ``ctloop`` app with the
``models`` group added, in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
ENTRY = REPO / "tests" / "registry" / "_cli.py"
REGRESSION = f"{REPO / 'tests' / 'pipeline' / 'sample_pipelines.py'}:regression"

Ctloop = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def ctloop(tmp_path: Path) -> Ctloop:
    """Run ``ctloop ARGS`` in a subprocess with a private home; fails on a non-zero exit
    unless ``check=False``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    env.update(CTLOOP_HOME=str(tmp_path / "home"), COLUMNS="200")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")

    def call(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, str(ENTRY), *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"ctloop {' '.join(args)} exited {proc.returncode}\n{proc.stderr}")
        return proc

    return call


def as_json(ctloop: Ctloop, *args: str) -> Any:
    return json.loads(ctloop(*args, "--json").stdout)


@pytest.fixture
def model_artifact(ctloop: Ctloop, tmp_path: Path) -> tuple[str, str]:
    """(run id, id of the fitted coefficients) of one run of the sample regression."""
    x = np.random.default_rng(3).uniform(0, 5, 120)
    pd.DataFrame({"x": x, "y": 2 * x - 1}).to_csv(tmp_path / "data.csv", index=False)
    run = as_json(ctloop, "run", REGRESSION, "-p", f"path={tmp_path / 'data.csv'}")
    shown = as_json(ctloop, "runs", "show", run["run_id"])
    fit = next(x for x in shown["executions"] if x["step"] == "fit")
    return run["run_id"], next(iter(fit["outputs"].values()))


def test_register_promote_roll_back_and_inspect(
    ctloop: Ctloop, model_artifact: tuple[str, str]
) -> None:
    run_id, artifact_id = model_artifact
    first = as_json(ctloop, "models", "register", "curve", artifact_id[:10], "-d", "baseline")
    assert (first["version"], first["run_id"], first["artifact_id"]) == (1, run_id, artifact_id)
    as_json(ctloop, "models", "register", "curve", artifact_id, "--tag", "algo=polyfit")
    text = ctloop("models", "register", "curve", artifact_id, "--run", run_id[:8]).stdout
    assert "registered curve@3" in text

    for version in ("1", "2", "3"):
        ctloop("models", "alias", "curve", "champion", version, "--reason", f"promote {version}")
    again = as_json(ctloop, "models", "alias", "curve", "champion", "3")
    assert again == {"moved": False, "move": None}
    back = as_json(ctloop, "models", "rollback", "curve", "--reason", "bad canary")
    assert (back["from_version"], back["to_version"], back["kind"]) == (3, 2, "rollback")
    assert "champion: v2 → v1" in ctloop("models", "rollback", "curve").stdout

    shown = as_json(ctloop, "models", "show", "curve")
    assert shown["model"]["aliases"] == {"champion": 1}
    assert [v["version"] for v in shown["versions"]] == [1, 2, 3]
    assert shown["versions"][1]["tags"] == {"algo": "polyfit"}
    listed = as_json(ctloop, "models", "list")
    assert [(m["name"], m["latest_version"]) for m in listed] == [("curve", 3)]
    versions = as_json(ctloop, "models", "versions", "curve")
    assert versions[0]["aliases"] == ["champion"] and versions[0]["description"] == "baseline"
    history = as_json(ctloop, "models", "history", "curve", "--alias", "champion")
    assert [(m["from_version"], m["to_version"]) for m in history] == [
        (None, 1),
        (1, 2),
        (2, 3),
        (3, 2),
        (2, 1),
    ]
    assert history[0]["reason"] == "promote 1"
    table = ctloop("models", "history", "curve").stdout
    assert "rollback" in table and "bad canary" in table
    assert "champion=v1" in ctloop("models", "list").stdout
    assert "v3" in ctloop("models", "versions", "curve").stdout


def test_alias_delete_and_errors_are_sentences(
    ctloop: Ctloop, model_artifact: tuple[str, str]
) -> None:
    _, artifact_id = model_artifact
    ctloop("models", "register", "curve", artifact_id)
    ctloop("models", "alias", "curve", "challenger", "1")
    deleted = as_json(ctloop, "models", "alias", "curve", "challenger", "--delete")
    assert (deleted["move"]["kind"], deleted["move"]["to_version"]) == ("delete", None)

    missing = ctloop("models", "show", "taxi", check=False)
    assert missing.returncode == 1 and "model 'taxi' is not registered" in missing.stderr
    no_version = ctloop("models", "alias", "curve", "champion", "9", check=False)
    assert no_version.returncode == 1 and "no version 9" in no_version.stderr
    nothing = ctloop("models", "rollback", "curve", check=False)
    assert nothing.returncode == 1 and "no move to roll back" in nothing.stderr
    bad_alias = ctloop("models", "alias", "curve", "9lives", "1", check=False)
    assert bad_alias.returncode == 2 and "alias '9lives' is not valid" in bad_alias.stderr
    both = ctloop("models", "alias", "curve", "champion", check=False)
    assert both.returncode == 2 and "--delete" in both.stderr
    bad_tag = ctloop("models", "register", "curve", artifact_id, "--tag", "oops", check=False)
    assert bad_tag.returncode == 2 and "key=value" in bad_tag.stderr
    unknown = ctloop("models", "register", "curve", "ffffffff", check=False)
    assert unknown.returncode == 1 and "ffffffff" in unknown.stderr


def test_empty_registry_says_how_to_start(ctloop: Ctloop) -> None:
    assert "ctloop models register" in ctloop("models", "list").stdout
    assert as_json(ctloop, "models", "list") == []
