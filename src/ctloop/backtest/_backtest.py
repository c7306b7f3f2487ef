"""Running a training pipeline once per fold, and once per fold on a fixed model.

Each fold is a run of the user's own pipeline, with the fold's periods as its parameters
``train_start``, ``train_end``, ``test_start`` and ``test_end`` (ISO dates; the training
period is ``[train_start, train_end)``, ``train_start`` None meaning the beginning). The
pipeline trains on the first period and logs its metrics on the second (the
``evaluate`` step logs ``eval.<metric>``). With ``static`` on, every fold is run a second
time with the first fold's training period, so the same model is scored on every later
period: the answer to "what does retraining buy?". Its training steps are cache hits
after the first fold, so the static line costs little more than scoring.

Every run is tagged ``ctloop.backtest`` (the backtest's id), ``ctloop.backtest.fold`` and
``ctloop.backtest.line`` (``retrained``, ``static`` or ``cadence``), and recorded with trigger
``backtest``.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.backtest._folds import Fold
from ctloop.backtest._slices import SliceMetrics, read_slices
from ctloop.errors import ConfigError, CtloopError
from ctloop.store.records import MetricRecord, TagRecord

if TYPE_CHECKING:
    from ctloop.pipeline import Pipeline
    from ctloop.store.workspace import Workspace

__all__ = ["PARAMETERS", "BacktestResult", "FoldResult", "run_backtest"]

#: the parameters each fold gives the pipeline
PARAMETERS = ("train_start", "train_end", "test_start", "test_end")
#: the headline metric when none is named: the first of these a fold logged
DEFAULT_METRICS = ("eval.auc", "auc", "eval.rmse", "rmse")


@dataclass(frozen=True)
class FoldResult:
    """One fold's runs and metrics (the latest value of each key its run logged)."""

    fold: Fold
    run_id: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    static_run_id: str | None = None
    static_metrics: dict[str, float] = field(default_factory=dict)
    static_error: str | None = None
    slices: SliceMetrics = field(default_factory=dict)
    static_slices: SliceMetrics = field(default_factory=dict)
    cadence_run_id: str | None = None  # the model of the last retraining (--retrain-every)
    cadence_metrics: dict[str, float] = field(default_factory=dict)
    cadence_error: str | None = None


@dataclass(frozen=True)
class BacktestResult:
    """What a backtest measured: per fold, the retrained and the static metric."""

    id: str
    reference: str
    metric: str
    higher_is_better: bool
    folds: list[FoldResult]
    settings: dict[str, Any] = field(default_factory=dict)
    slices: tuple[str, ...] = ()
    retrain_every: int | None = None

    def line(self, static: bool = False, *, cadence: bool = False) -> list[float | None]:
        """The headline metric per fold, retrained (or static, or retrained every
        ``retrain_every`` folds with ``cadence``)."""
        if cadence:
            return [f.cadence_metrics.get(self.metric) for f in self.folds]
        return [(f.static_metrics if static else f.metrics).get(self.metric) for f in self.folds]

    def mean(self, static: bool = False, *, cadence: bool = False) -> float | None:
        """The mean headline metric over the folds that have it."""
        return _mean(self.line(static, cadence=cadence))

    @property
    def slice_metric(self) -> str:
        """The headline metric's name inside an evaluation (``eval.auc`` -> ``auc``)."""
        return self.metric.rpartition(".")[2]

    def slice_values(self, column: str) -> list[str]:
        """The values of slice ``column``, the most rows (over all folds) first."""
        rows: dict[str, float] = {}
        for f in self.folds:
            for value, numbers in f.slices.get(column, {}).items():
                rows[value] = rows.get(value, 0.0) + numbers.get("rows", 0.0)
        return sorted(rows, key=lambda v: (-rows[v], v))

    def slice_line(self, column: str, value: str, static: bool = False) -> list[float | None]:
        """The headline metric per fold in one slice value, retrained (or static)."""
        return [
            (f.static_slices if static else f.slices)
            .get(column, {})
            .get(value, {})
            .get(self.slice_metric)
            for f in self.folds
        ]

    def slice_rows(self, column: str, value: str) -> int:
        """The rows of one slice value, summed over the folds' scored periods."""
        return int(sum(f.slices.get(column, {}).get(value, {}).get("rows", 0) for f in self.folds))

    def gains(self) -> list[float | None]:
        """Per fold, what retraining bought over the static model (positive: better)."""
        sign = 1.0 if self.higher_is_better else -1.0
        return [
            None if r is None or s is None else sign * (r - s)
            for r, s in zip(self.line(), self.line(static=True), strict=True)
        ]

    def stale_after(self, tolerance: float = 0.01, smooth: int = 3) -> Fold | None:
        """The first fold where the static model trails retraining by more than
        ``tolerance`` and keeps trailing (the mean gain over it and the ``smooth - 1``
        folds after it, so that one noisy period does not count; fewer at the end):
        the first model's age there is how often to retrain at the latest. None: the
        static model kept up over the whole backtest."""
        gains = self.gains()
        for index in range(len(gains)):
            window = gains[index : index + smooth]  # shorter at the end
            if None in window or window[0] <= tolerance:  # type: ignore[operator]
                continue
            if sum(window) / len(window) > tolerance:  # type: ignore[arg-type]
                return self.folds[index].fold
        return None

    @property
    def failed(self) -> list[FoldResult]:
        """Folds whose retrained or static run failed."""
        return [f for f in self.folds if f.error or f.static_error or f.cadence_error]

    def summary(self) -> str:
        """One line for a person: the mean metric of each line and the difference."""
        retrained, static = self.mean(), self.mean(static=True)
        text = f"backtest {self.id[:8]} of {self.reference}: {len(self.folds)} fold(s), "
        text += f"mean {self.metric} retrained {_shown(retrained)}"
        if static is not None:
            gain = (retrained or 0.0) - static
            better = gain if self.higher_is_better else -gain
            text += f", static {_shown(static)} ({'+' if better >= 0 else ''}{better:.4f} "
            text += "for retraining)"
        if self.retrain_every:
            text += f", retrained every {self.retrain_every} folds "
            text += _shown(self.mean(cadence=True))
        stale = _stale(self)
        if stale is not None:
            text += f"; the first model fell behind from {stale['test_start']} "
            text += f"({stale['model_age_days']} days after its training data ended)"
        if self.failed:
            text += f"; {len(self.failed)} fold(s) failed"
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the report's data)."""
        return {
            "id": self.id,
            "reference": self.reference,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "mean_retrained": self.mean(),
            "mean_static": self.mean(static=True),
            "retrain_every": self.retrain_every,
            "mean_cadence": self.mean(cadence=True) if self.retrain_every else None,
            "settings": self.settings,
            "slices": list(self.slices),
            "stale_after": _stale(self),
            "folds": [asdict(f) for f in self.folds],
        }


def run_backtest(
    pipeline_obj: Pipeline,
    folds: Sequence[Fold],
    *,
    workspace: Workspace,
    reference: str | None = None,
    params: Mapping[str, Any] | None = None,
    metric: str | None = None,
    static: bool = True,
    slices: Sequence[str] = (),
    retrain_every: int | None = None,
    settings: Mapping[str, Any] | None = None,
    on_fold: Callable[[FoldResult], None] | None = None,
) -> BacktestResult:
    """Run ``pipeline_obj`` on every fold (and on the static line) in ``workspace``.

    ``retrain_every`` adds a third line: each fold scored by the model of the last
    retraining, every ``retrain_every`` folds (its training steps are cache hits of the
    retrained line). ``slices`` names columns the pipeline's ``evaluate`` step sliced by; each fold keeps
    the metrics per value of each (see :mod:`ctloop.backtest._slices`). A fold whose run
    fails is recorded with its error and the others go on; a pipeline that lacks a fold
    parameter, a ``metric`` no fold logged, or a slice a run did not evaluate raises
    :class:`~ctloop.errors.ConfigError` naming it."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ctloop-backtest-") as cache:
        return _run_folds(
            pipeline_obj, folds, workspace=workspace, reference=reference, params=params,
            metric=metric, static=static, slices=tuple(slices), settings=settings,
            retrain_every=retrain_every,
            on_fold=on_fold, cache_dir=Path(cache),
        )  # fmt: skip


def _run_folds(
    pipeline_obj: Pipeline,
    folds: Sequence[Fold],
    *,
    workspace: Workspace,
    reference: str | None,
    params: Mapping[str, Any] | None,
    metric: str | None,
    static: bool,
    slices: tuple[str, ...],
    settings: Mapping[str, Any] | None,
    on_fold: Callable[[FoldResult], None] | None,
    cache_dir: Path,
    retrain_every: int | None = None,
) -> BacktestResult:
    from ctloop.pipeline._runner import run_pipeline

    if retrain_every is not None and retrain_every < 1:
        raise ConfigError(
            f"--retrain-every {retrain_every}: give a whole number of folds, 1 or more"
        )

    if not folds:
        raise ConfigError("the backtest has no folds; check --from, --to and --every")
    _check_parameters(pipeline_obj, params or {})
    backtest_id = uuid.uuid4().hex
    first = folds[0]
    results: list[FoldResult] = []
    for position, fold in enumerate(folds):

        def one(
            train: Fold, line: str, fold: Fold = fold
        ) -> tuple[str | None, dict, str | None, SliceMetrics]:
            values = {
                **dict(params or {}),
                "train_start": train.train_start,
                "train_end": train.train_end,
                "test_start": fold.test_start,
                "test_end": fold.test_end,
            }
            try:
                result = run_pipeline(
                    pipeline_obj, values, trigger="backtest", reference=reference,
                    workspace=workspace,
                )  # fmt: skip
            except CtloopError as exc:
                run_id = getattr(exc, "run_id", None)
                _tag(workspace, run_id, backtest_id, fold, line)
                return run_id, {}, str(exc), {}
            _tag(workspace, result.run_id, backtest_id, fold, line)
            found = read_slices(workspace, result.run_id, slices, cache_dir=cache_dir)
            return result.run_id, _latest_metrics(workspace, result.run_id), None, found

        run_id, metrics, error, sliced = one(fold, "retrained")
        if not static:
            outcome = FoldResult(fold, run_id, metrics, error, slices=sliced)
        elif fold is first:  # the first fold's model is the static one
            outcome = FoldResult(
                fold, run_id, metrics, error, run_id, metrics, error, sliced, sliced
            )
        else:
            static_id, static_metrics, static_error, static_sliced = one(first, "static")
            outcome = FoldResult(
                fold, run_id, metrics, error, static_id, static_metrics, static_error,
                sliced, static_sliced,
            )  # fmt: skip
        if retrain_every:
            anchor = folds[position - position % retrain_every]
            if anchor is fold:
                cadence = (run_id, metrics, error)
            elif anchor is first and static:
                cadence = (outcome.static_run_id, outcome.static_metrics, outcome.static_error)
            else:
                cadence = one(anchor, "cadence")[:3]
            outcome = replace(
                outcome, cadence_run_id=cadence[0], cadence_metrics=cadence[1],
                cadence_error=cadence[2],
            )  # fmt: skip
        results.append(outcome)
        if on_fold is not None:
            on_fold(outcome)
    chosen = _headline(metric, results)
    return BacktestResult(
        id=backtest_id,
        reference=reference or pipeline_obj.name,
        metric=chosen,
        higher_is_better=_higher_is_better(chosen),
        folds=results,
        settings=dict(settings or {}),
        slices=slices,
        retrain_every=retrain_every,
    )


def _check_parameters(pipeline_obj: Pipeline, params: Mapping[str, Any]) -> None:
    accepted = inspect.signature(pipeline_obj.fn).parameters
    missing = [p for p in PARAMETERS if p not in accepted]
    if missing:
        raise ConfigError(
            f"pipeline '{pipeline_obj.name}' takes no parameter {', '.join(missing)}; a "
            "backtest gives each fold train_start, train_end, test_start and test_end "
            "(ISO dates; train on [train_start, train_end), score [test_start, test_end))"
        )
    clash = [p for p in params if p in PARAMETERS]
    if clash:
        raise ConfigError(
            f"-p {', '.join(clash)} is set by each fold of the backtest; leave it out"
        )


def _tag(workspace: Workspace, run_id: str | None, backtest: str, fold: Fold, line: str) -> None:
    if run_id is None:
        return
    tags = {"ctloop.backtest": backtest, "ctloop.backtest.fold": str(fold.index)}
    tags["ctloop.backtest.line"] = line
    workspace.metadata.log_batch(tags=[TagRecord(run_id, k, v) for k, v in tags.items()])


def _latest_metrics(workspace: Workspace, run_id: str) -> dict[str, float]:
    """The latest value of each metric of the run, a cached step's taken from the
    execution it reused (a cached step logs nothing: a backtest run again in the same
    workspace would otherwise find no metrics)."""
    latest: dict[str, tuple[tuple[int, float], float]] = {}
    for point in (*_reused_metrics(workspace, run_id), *workspace.metadata.get_metrics(run_id)):
        order = (point.step or 0, point.timestamp.timestamp())
        held = latest.get(point.key)
        if held is None or order >= held[0]:
            latest[point.key] = (order, point.value)
    return {key: value for key, (_, value) in sorted(latest.items())}


def _reused_metrics(workspace: Workspace, run_id: str) -> list[MetricRecord]:
    metadata = workspace.metadata
    found: list[MetricRecord] = []
    for execution in metadata.list_executions(run_id):
        source_id, hops = execution.cached_from, 0
        while source_id is not None and hops < 8:  # a reuse of a reuse: follow it back
            source = metadata.get_execution(source_id)
            found += [p for p in metadata.get_metrics(source.run_id) if p.execution_id == source.id]
            source_id, hops = source.cached_from, hops + 1
    return found


def _headline(metric: str | None, results: Sequence[FoldResult]) -> str:
    logged = sorted({k for r in results for k in (*r.metrics, *r.static_metrics)})
    if metric is not None:
        for name in (metric, f"eval.{metric}"):
            if name in logged:
                return name
        if not logged and all(r.error for r in results):
            return metric
        raise ConfigError(
            f"no fold logged the metric {metric!r}; logged: {', '.join(logged) or 'none'}"
        )
    for name in DEFAULT_METRICS:
        if name in logged:
            return name
    if logged:
        return logged[0]
    return "eval.auc"  # every fold failed: the report shows the errors


def _higher_is_better(metric: str) -> bool:
    from ctloop.evaluate._metrics import is_higher_better

    try:
        return bool(is_higher_better(metric.rpartition(".")[2]))
    except (KeyError, ValueError, CtloopError):
        return True


def _shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def _stale(result: BacktestResult) -> dict[str, Any] | None:
    fold = result.stale_after()
    if fold is None or not result.folds:
        return None
    trained = result.folds[0].fold.train_end
    age = (date.fromisoformat(fold.test_start) - date.fromisoformat(trained)).days
    return {"fold": fold.index + 1, "test_start": fold.test_start, "model_age_days": age}
