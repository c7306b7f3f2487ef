"""``ctloop runs compare`` and ``ctloop runs metrics`` on runs of a real pipeline file."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from tests.cli.conftest import REPO, Cli

TRAIN_PY = textwrap.dedent(
    """
    from ctloop import log_metric, log_param, pipeline, step


    @step
    def train(epochs: int = 3, lr: float = 0.1) -> float:
        loss = 1.0
        for epoch in range(epochs):
            loss *= 1 - lr
            log_metric("loss", loss, step=epoch)
        log_param("optimizer", "sgd")
        log_metric("epochs_run", epochs)
        return loss


    @step
    def evaluate(loss: float) -> float:
        log_metric("score", 1 - loss)
        return 1 - loss


    @pipeline
    def training(epochs: int = 3, lr: float = 0.1, seed: int = 7):
        evaluate(train(epochs=epochs, lr=lr))
    """
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, str, str]:
    """A project with two runs of ``training``: lr 0.1 (older) and lr 0.5 (latest)."""
    root = tmp_path_factory.mktemp("compare")
    (root / "train.py").write_text(TRAIN_PY)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTLOOP_")}
    env["CTLOOP_HOME"] = str(root / "home")
    env["CTLOOP_STORE_URL"] = f"sqlite:///{root / 'metadata.db'}"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["COLUMNS"] = "200"
    cli = Cli(root, env)
    slow = json.loads(cli("run", "train.py:training", "-p", "lr=0.1", "--json").stdout)
    fast = json.loads(cli("run", "train.py:training", "-p", "lr=0.5", "--json").stdout)
    return cli, slow["run_id"], fast["run_id"]


def test_compare_json_names_values_and_differences(project: tuple[Cli, str, str]) -> None:
    cli, slow, fast = project
    out = json.loads(cli("runs", "compare", slow[:8], "latest", "--json").stdout)

    assert [r["id"] for r in out["runs"]] == [slow, fast]
    assert {r["status"] for r in out["runs"]} == {"succeeded"}
    params = {p["key"]: (p["values"], p["differs"]) for p in out["params"]}
    assert params == {
        "epochs": ([3, 3], False),
        "lr": ([0.1, 0.5], True),
        "seed": ([7, 7], False),
        "train/optimizer": (["sgd", "sgd"], False),
    }
    metrics = {m["key"]: m for m in out["metrics"]}
    assert list(metrics) == ["train/epochs_run", "train/loss", "evaluate/score"]
    loss = metrics["train/loss"]
    assert (loss["step_name"], loss["name"], loss["differs"]) == ("train", "loss", True)
    assert loss["values"] == pytest.approx([0.729, 0.125])  # the last epoch's values
    assert (loss["min"], loss["max"]) == pytest.approx((0.125, 0.729))
    assert metrics["train/epochs_run"]["differs"] is False


def test_compare_only_diff_keeps_differing_rows(project: tuple[Cli, str, str]) -> None:
    cli, slow, fast = project
    out = json.loads(cli("runs", "compare", slow, fast, "--only-diff", "--json").stdout)

    assert [p["key"] for p in out["params"]] == ["lr"]
    assert [m["key"] for m in out["metrics"]] == ["train/loss", "evaluate/score"]

    text = cli("runs", "compare", slow, fast, "--only-diff").stdout
    assert "lr" in text and "train/loss" in text
    assert "seed" not in text and "train/optimizer" not in text


def test_compare_table_marks_rows_that_differ(project: tuple[Cli, str, str]) -> None:
    cli, slow, fast = project
    text = cli("runs", "compare", slow, fast).stdout
    rows = _rows(text)

    assert text.splitlines()[0].split() == ["key", slow[:8], fast[:8], "min", "max"]
    assert rows["lr"] == ["≠", "lr", "0.1", "0.5"]
    assert rows["train/loss"] == ["≠", "train/loss", "0.729", "0.125", "0.125", "0.729"]
    assert rows["seed"] == ["seed", "7", "7"]
    assert rows["train/epochs_run"] == ["train/epochs_run", "3", "3", "3", "3"]
    assert rows["status"] == ["status", "succeeded", "succeeded"]
    assert rows["parameters"] == ["parameters"] and rows["metrics"] == ["metrics"]


def _rows(table: str) -> dict[str, list[str]]:
    """A printed table's cells by row key (the ≠ mark, when there, comes before the key)."""
    rows = [line.split() for line in table.splitlines() if line.strip()]
    return {cells[1] if cells[0] == "≠" else cells[0]: cells for cells in rows}


def test_metrics_shows_the_history_of_a_run(project: tuple[Cli, str, str]) -> None:
    cli, slow, _ = project
    points = json.loads(cli("runs", "metrics", slow[:8], "--json").stdout)
    assert [(p["step_name"], p["key"], p["step"]) for p in points] == [
        ("train", "epochs_run", None),
        ("train", "loss", 0),
        ("train", "loss", 1),
        ("train", "loss", 2),
        ("evaluate", "score", None),
    ]
    curve = json.loads(cli("runs", "metrics", "latest", "--key", "loss", "--json").stdout)
    assert [p["value"] for p in curve] == pytest.approx([0.5, 0.25, 0.125])
    scores = json.loads(cli("runs", "metrics", slow, "--step", "evaluate", "--json").stdout)
    assert [(p["key"], round(p["value"], 6)) for p in scores] == [("score", 0.271)]

    table = cli("runs", "metrics", "latest", "--key", "loss").stdout
    rows = [line.split()[:4] for line in table.splitlines()[1:]]
    assert rows == [
        ["train", "loss", "0", "0.5"],
        ["train", "loss", "1", "0.25"],
        ["train", "loss", "2", "0.125"],
    ]


def test_compare_needs_two_runs_and_known_ones(project: tuple[Cli, str, str]) -> None:
    cli, slow, _ = project
    one = cli("runs", "compare", slow, check=False)
    assert one.returncode == 2
    assert "comparing needs two or more runs, got 1" in one.stderr

    unknown = cli("runs", "compare", slow, "ffffffff", check=False)
    assert unknown.returncode != 0
    assert "no run id starts with 'ffffffff'" in unknown.stderr
    assert unknown.stdout == ""

    twice = cli("runs", "compare", slow, slow[:8], check=False)
    assert twice.returncode == 2 and "name each run to compare once" in twice.stderr


def test_metrics_names_what_a_run_has_when_asked_for_something_else(
    project: tuple[Cli, str, str],
) -> None:
    cli, slow, _ = project
    key = cli("runs", "metrics", slow, "--key", "accuracy", check=False)
    assert key.returncode != 0
    assert "no metric 'accuracy'; its metrics: epochs_run, loss, score" in key.stderr
    step = cli("runs", "metrics", slow, "--step", "fit", check=False)
    assert step.returncode != 0
    assert "no step 'fit'; its steps: train, evaluate" in step.stderr


def test_runs_help_lists_the_new_commands(project: tuple[Cli, str, str]) -> None:
    cli, _, _ = project
    help_text = cli("runs", "--help").stdout
    assert "compare" in help_text and "metrics" in help_text
