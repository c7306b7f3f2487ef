"""The flights example's backtest pipeline on a sample of the real 2013 flights."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from ctloop.backtest import plan_folds, run_backtest
from ctloop.pipeline._loading import load_pipeline
from ctloop.store.workspace import Workspace

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flights"


def _prepare_data() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "flights_prepare_data", EXAMPLE / "prepare_data.py"
    )
    assert spec is not None and spec.loader is not None
    module = sys.modules.get("flights_prepare_data") or importlib.util.module_from_spec(spec)
    if "flights_prepare_data" not in sys.modules:
        sys.modules["flights_prepare_data"] = module
        spec.loader.exec_module(module)
    return module


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace.open(
        f"sqlite:///{tmp_path / 'meta.db'}", artifacts=str(tmp_path / "artifacts")
    ) as ws:
        yield ws


def test_the_flights_backtest_scores_each_week_per_carrier(
    tmp_path: Path, workspace: Workspace
) -> None:
    prepare = _prepare_data()
    flights, weather = prepare.read_source()
    early = flights[flights["month"] <= 3]
    table = prepare.build_table(early.sample(n=6000, random_state=0), weather)
    path = tmp_path / "flights.parquet"
    table.to_parquet(path, index=False)
    pipeline_obj, reference = load_pipeline(f"{EXAMPLE / 'backtest.py'}:training")
    folds = plan_folds("2013-03-01", "2013-03-15", every="1w", gap="1w")
    result = run_backtest(
        pipeline_obj, folds, workspace=workspace, reference=reference,
        params={"path": str(path)}, slices=["carrier"],
    )  # fmt: skip
    assert not result.failed, [f.error or f.static_error for f in result.failed]
    assert result.metric == "eval.auc" and len(result.folds) == 2
    assert all(0.5 < v < 0.95 for v in result.line() + result.line(static=True))  # type: ignore[operator]
    run = workspace.metadata.get_run(result.folds[1].run_id)
    assert (run.parameters["train_end"], run.parameters["test_start"]) == (
        "2013-03-01",
        "2013-03-08",
    )
    carriers = result.slice_values("carrier")
    assert {"UA", "B6", "EV"} <= set(carriers)
    assert result.slice_rows("carrier", "UA") > 50
