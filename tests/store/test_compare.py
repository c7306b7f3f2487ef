"""Comparing real runs of a small training pipeline, and reading their metric history."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctloop import log_metric, log_param, pipeline, step
from ctloop.errors import NotFoundError, ParameterError
from ctloop.store import MetadataStore, open_metadata_store
from ctloop.store.compare import MetricRow, ParamRow, compare_runs, metric_history


@step
def prepare(rows: int = 10) -> int:
    return rows


@step
def train(rows: int, epochs: int = 3, lr: float = 0.1) -> float:
    loss = 1.0
    for epoch in range(epochs):
        loss *= 1 - lr
        log_metric("loss", loss, step=epoch)
    log_metric("rows", rows)
    log_param("optimizer", "sgd")
    return loss


@step
def evaluate(loss: float) -> float:
    log_metric("score", 1 - loss)
    return 1 - loss


@pipeline
def training(rows: int = 10, epochs: int = 3, lr: float = 0.1) -> None:
    evaluate(train(prepare(rows), epochs=epochs, lr=lr))


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MetadataStore:
    monkeypatch.setenv("CTLOOP_HOME", str(tmp_path / "home"))
    for name in ("CTLOOP_STORE_URL", "CTLOOP_ARTIFACT_URL", "CTLOOP_EXECUTOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return open_metadata_store(f"sqlite:///{tmp_path / 'home' / 'metadata.db'}")


def _run(**params: object) -> str:
    run_id: str = training.run(**params).run_id
    return run_id


def _params(rows: tuple[ParamRow, ...]) -> dict[str, tuple[tuple[object, ...], bool]]:
    return {row.key: (row.values, row.differs) for row in rows}


def _metric(rows: tuple[MetricRow, ...], key: str) -> MetricRow:
    return next(row for row in rows if row.key == key)


def test_compare_lists_each_parameter_and_last_metric_value(store: MetadataStore) -> None:
    slow, fast = _run(lr=0.1), _run(lr=0.5)
    cmp = compare_runs(store, [slow, fast[:8]])

    assert [r.id for r in cmp.runs] == [slow, fast]
    assert {(r.pipeline, r.status, r.trigger) for r in cmp.runs} == {
        ("training", "succeeded", "manual")
    }
    assert all(r.duration_s is not None and r.duration_s >= 0 for r in cmp.runs)
    assert _params(cmp.params) == {
        "rows": ((10, 10), False),
        "epochs": ((3, 3), False),
        "lr": ((0.1, 0.5), True),
        "train/optimizer": (("sgd", "sgd"), False),
    }
    assert [row.key for row in cmp.params][-1] == "train/optimizer"  # pipeline's own first
    loss = _metric(cmp.metrics, "train/loss")
    assert (loss.step_name, loss.name) == ("train", "loss")
    assert loss.values == pytest.approx((0.9**3, 0.5**3))  # the last epoch's value
    assert (loss.min, loss.max) == pytest.approx((0.125, 0.729))
    assert loss.differs
    assert _metric(cmp.metrics, "evaluate/score").values == pytest.approx((0.271, 0.875))
    rows = _metric(cmp.metrics, "train/rows")
    assert (rows.values, rows.differs, rows.min, rows.max) == ((10.0, 10.0), False, 10.0, 10.0)


def test_only_differences_keeps_the_rows_that_differ(store: MetadataStore) -> None:
    first, second = _run(epochs=2), _run(epochs=4)
    cmp = compare_runs(store, [first, second]).only_differences()

    assert [row.key for row in cmp.params] == ["epochs"]
    assert [row.key for row in cmp.metrics] == ["train/loss", "evaluate/score"]
    assert _metric(cmp.metrics, "train/loss").values == pytest.approx((0.81, 0.9**4))
    assert len(cmp.runs) == 2


def test_a_cached_rerun_shows_the_metrics_of_the_run_it_reused(store: MetadataStore) -> None:
    first, again = _run(), _run()
    assert {x.status for x in store.list_executions(again)} == {"cached"}

    cmp = compare_runs(store, ["latest", first])

    assert [r.id for r in cmp.runs] == [again, first]
    assert _metric(cmp.metrics, "train/loss").values == pytest.approx((0.729, 0.729))
    assert not any(row.differs for row in cmp.params + cmp.metrics)
    assert cmp.only_differences().metrics == ()


def test_a_metric_one_run_did_not_log_differs(store: MetadataStore) -> None:
    none, some = _run(epochs=0), _run(epochs=2)
    cmp = compare_runs(store, [none, some])

    loss = _metric(cmp.metrics, "train/loss")
    assert loss.values[0] is None
    assert loss.values[1] == pytest.approx(0.81)
    assert loss.min == loss.max == pytest.approx(0.81)
    assert loss.differs


def test_history_is_ordered_by_pipeline_step_then_key_then_index(store: MetadataStore) -> None:
    run_id = _run(epochs=3, lr=0.5)
    points = metric_history(store, run_id)

    assert [(p.step_name, p.key, p.step) for p in points] == [
        ("train", "loss", 0),
        ("train", "loss", 1),
        ("train", "loss", 2),
        ("train", "rows", None),
        ("evaluate", "score", None),
    ]
    assert [p.value for p in points[:3]] == pytest.approx([0.5, 0.25, 0.125])
    assert all(p.timestamp.tzinfo is not None for p in points)


def test_history_filters_by_key_and_by_step(store: MetadataStore) -> None:
    run_id = _run(epochs=2)

    assert [p.step for p in metric_history(store, run_id[:8], key="loss")] == [0, 1]
    assert [p.key for p in metric_history(store, "latest", step="evaluate")] == ["score"]
    assert metric_history(store, run_id, step="prepare") == []
    with pytest.raises(NotFoundError, match=r"no step 'nope'; its steps: prepare, train"):
        metric_history(store, run_id, step="nope")
    with pytest.raises(NotFoundError, match=r"no metric 'acc'; its metrics: loss, rows, score"):
        metric_history(store, run_id, key="acc")
    with pytest.raises(NotFoundError, match=r"step 'evaluate' of run .* no metric 'loss'"):
        metric_history(store, run_id, key="loss", step="evaluate")


def test_comparing_needs_two_distinct_existing_runs(store: MetadataStore) -> None:
    run_id = _run()

    with pytest.raises(ParameterError, match="two or more runs, got 1"):
        compare_runs(store, [run_id])
    with pytest.raises(ParameterError, match=f"both name run {run_id[:8]}"):
        compare_runs(store, [run_id, "latest"])
    with pytest.raises(NotFoundError, match="no run id starts with 'ffffffff'"):
        compare_runs(store, [run_id, "ffffffff"])
