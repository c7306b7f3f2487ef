"""Model evaluation and validation steps: ``evaluate`` and ``gate``.

``evaluate`` scores the candidate model and, when given, the champion (``baseline``) on
the same held-out rows, overall and per slice, with feature attributions; the result is
an ``Evaluation`` artifact. ``gate`` checks that evaluation against absolute thresholds
and against the champion, loads the candidate in a fresh process (infra validation), and
returns a ``Blessing`` artifact that says whether the model may go on, with every
comparison and its numbers.

A failed gate is stored like a passed one, so it can be inspected (``ctloop models card``,
``ctloop runs show``); ``ctloop.components.register`` refuses a model whose blessing
failed, which fails the run there: nothing is registered. Pass ``fail=True`` to ``gate``
to fail the run at the gate itself (the blessing is then only in the step's log and tags).

>>> from ctloop import pipeline
>>> from ctloop.components import champion_model, promote, register
>>> @pipeline
... def training(path: str = "flights.parquet"):
...     train_rows, test_rows = split(load(path))  # doctest: +SKIP
...     model = fit(train_rows)  # doctest: +SKIP
...     champion = champion_model(name="flights")  # doctest: +SKIP
...     ev = evaluate(model, test_rows, label="late", slices=["carrier"], baseline=champion)  # doctest: +SKIP
...     blessing = gate(ev, model, absolute=["auc >= 0.7"], change=["auc may drop by 0.01"])  # doctest: +SKIP
...     promote(register(model, blessing, name="flights"))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from ctloop.artifacts.model import Model
from ctloop.artifacts.model.infra import InfraResult, check_model_in_subprocess
from ctloop.errors import ParameterError
from ctloop.evaluate import Blessing, Evaluation, SliceSpec, evaluate_model
from ctloop.evaluate import gate as gate_evaluation
from ctloop.pipeline import step
from ctloop.pipeline.tracking import track_metric, track_tag

__all__ = ["describe_blessing", "evaluate", "gate", "slice_specs"]

SliceParam = str | dict[str, Any] | SliceSpec


@step
def evaluate(
    model: Model,
    data: Any,
    label: str,
    slices: list[SliceParam] | None = None,
    baseline: Model | None = None,
    metrics: list[str] | None = None,
    task: str | None = None,
    positive_label: Any = 1,
    attributions: bool = True,
    attribution_metric: str | None = None,
    contributions: bool = True,
    random_state: int = 0,
) -> Evaluation:
    """Metrics of ``model`` on ``data`` (a held-out table with the ``label`` column),
    overall and per slice, with feature attributions; ``baseline`` (the champion, or
    ``None``) is scored on the same rows into ``Evaluation.baseline``.

    ``slices`` holds column names (one slice per value) or dicts of
    :class:`~ctloop.evaluate.SliceSpec` fields, e.g. ``{"column": "distance", "bins":
    [0, 500, 1500, "inf"]}``. The overall metrics are logged as ``eval.<metric>`` (and
    the baseline's as ``baseline.<metric>``).

    >>> evaluate(model, test, label="late", slices=["carrier", {"column": "origin", "top": 5}])  # doctest: +SKIP
    """
    evaluation = evaluate_model(
        model,
        _frame(data),
        label=label,
        task=task,
        slices=slice_specs(slices),
        metrics=metrics,
        positive_label=positive_label,
        attributions=attributions,
        attribution_metric=attribution_metric,
        random_state=random_state,
        contributions=contributions,
        baseline=baseline,
    )
    _log_metrics("eval", evaluation.metrics)
    if evaluation.baseline is not None:
        _log_metrics("baseline", evaluation.baseline.metrics)
    return evaluation


@step
def gate(
    evaluation: Evaluation,
    model: Model | None = None,
    absolute: list[str] | None = None,
    change: list[str] | None = None,
    min_slice_rows: int = 30,
    infra_validation: bool = True,
    infra_timeout: float = 120.0,
    fail: bool = False,
) -> Blessing:
    """The blessing of the model behind ``evaluation``: absolute thresholds
    (``"auc >= 0.70"``), change thresholds against the champion evaluated on the same
    rows (``"auc may drop by 0.01"``, overall and in every slice with at least
    ``min_slice_rows`` rows), and infra validation of ``model`` (loaded in a fresh process
    with only its declared requirements and called with its input example).

    Without a champion only the absolute thresholds apply, and the blessing's notes say
    so. The verdict is printed, logged as metric ``gate.passed`` (1 or 0) and returned; a
    failed blessing stops the pipeline at ``register``, or here with ``fail=True``.

    >>> gate(ev, model, absolute=["auc >= 0.7"], change=["auc may drop by 0.01"])  # doctest: +SKIP
    """
    infra = _infra(model, infra_validation, infra_timeout)
    blessing = gate_evaluation(
        evaluation,
        evaluation.baseline,
        absolute=list(absolute or ()),
        change=list(change or ()),
        min_slice_rows=min_slice_rows,
        infra=infra,
    )
    print(describe_blessing(blessing))
    track_metric("gate.passed", 1.0 if blessing.passed else 0.0)
    track_tag("gate", "passed" if blessing.passed else "failed")
    if fail:
        blessing.raise_for_failure()
    return blessing


def slice_specs(slices: list[SliceParam] | None) -> list[SliceSpec]:
    """Slice specifications from column names, dicts of ``SliceSpec`` fields or specs.

    >>> [s.column for s in slice_specs(["carrier", {"column": "distance", "bins": [0, 500, "inf"]}])]
    ['carrier', 'distance']
    """
    found = []
    for item in slices or ():
        if isinstance(item, SliceSpec):
            found.append(item)
        elif isinstance(item, str):
            found.append(SliceSpec(item))
        elif isinstance(item, dict) and "column" in item:
            found.append(SliceSpec.from_dict(item))
        else:
            raise ParameterError(
                f"slice {item!r} is not a column name or a dict with a 'column' key; write "
                "e.g. 'carrier' or {'column': 'distance', 'bins': [0, 500, 'inf']}"
            )
    return found


def describe_blessing(blessing: Blessing) -> str:
    """The verdict and one line per check, as printed by ``gate``.

    >>> print(describe_blessing(Blessing(True, False, (), ("no champion: change thresholds not applied",))))
    gate passed (no champion yet: only absolute thresholds)
      note: no champion: change thresholds not applied
    """
    champion = "" if blessing.champion_present else " (no champion yet: only absolute thresholds)"
    lines = [f"gate {'passed' if blessing.passed else 'FAILED'}{champion}"]
    for c in blessing.comparisons:
        lines.append(f"  {'ok  ' if c.passed else 'FAIL'} {c.where}: {c.threshold}: {c.reason}")
    if blessing.infra is not None:
        infra = blessing.infra
        verdict = "ok  " if infra.passed else "FAIL"
        lines.append(
            f"  {verdict} infra validation: {infra.reason or 'loaded and predicted'}"
            f" ({infra.seconds:.1f} s)"
        )
    lines += [f"  note: {note}" for note in blessing.notes]
    return "\n".join(lines)


def _infra(model: Model | None, wanted: bool, timeout: float) -> InfraResult | None:
    if model is None or not wanted:
        return None
    return check_model_in_subprocess(model, timeout=timeout)


def _frame(data: Any) -> Any:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "to_pandas"):  # Arrow tables and polars frames
        return data.to_pandas()
    raise ParameterError(
        f"evaluate got data of type {type(data).__name__}; pass a table (pandas, polars or "
        "Arrow) with the feature columns and the label"
    )


def _log_metrics(prefix: str, metrics: dict[str, float | None]) -> None:
    for name, value in metrics.items():
        if value is not None:
            track_metric(f"{prefix}.{name}", value)
