"""The flights model trained continuously: the retraining pipeline of the level-2 loop.

Labelled flights land one folder a day (``landing/date=2013-03-05/flights.parquet``: the
flights of a day with their actual arrival delays, a week after they flew), declared in
``ctloop.yaml`` as the source ``flights`` (daily spans, ``expect: daily``). Ingesting it
(``ctloop ingest run flights``, or the scheduler's ``new_spans`` trigger) makes each
week's data a data version; a ``new_spans`` trigger starts ``received`` on the new
spans. The retraining pipeline trains on the newest 7 x ``weeks`` daily spans of the
latest data version, so its model traces back to those exact spans::

    load_spans -> statistics -> validate (schema.yaml; stops on schema skew)
                -> split_newest (train on all but the newest week, hold the newest out)
                -> fit_flights (the candidate) -> champion_model -> evaluate (overall
                   and per carrier, candidate and champion on the same held-out week)
                -> fit_flights on every week, the newest included (refit_after_gate)
                -> gate (absolute AUC floor; may lose at most ``max_drop`` against the
                   champion, overall and per carrier unless ``gate_slices=False``; the
                   candidate's numbers, the refit's infra validation)
                -> register (the refit, as challenger) -> release

The candidate never saw the held-out week, so its score there is an out-of-time
measurement: the gate judges it, and the monitor later holds the released model to it
(the run's evaluation is its baseline). The model released is the refit on all the weeks,
as fresh as the data (``refit_after_gate=False`` releases the candidate itself). A model
that fails the gate is not registered, and production keeps its champion.
``release`` promotes the challenger to champion (``release_as=direct``, the default) or
starts it as a canary on ``canary_traffic`` percent of the requests (``release_as=canary``);
the scheduler then judges the canary on its labelled requests against the champion's and
promotes or rolls it back (``ctloop.monitor._canary``). Run it by hand with::

    ctloop ingest run flights
    ctloop run examples/flights/continuous.py:retrain -p weeks=8
    ctloop run examples/flights/continuous.py:retrain -p release_as=canary

``ctloop demo`` runs it from the scheduler when monitoring sees the model decay.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ctloop import FilePath, data_version, log_metric, pipeline, set_tag, step
from ctloop.artifacts.model import Model
from ctloop.components import (
    champion_model,
    evaluate,
    gate,
    register,
    release,
    statistics,
    validate,
)

HERE = Path(__file__).resolve().parent

try:  # run as a file by ctloop (its folder is on sys.path) or imported as a module
    from pipeline import FEATURES, features, fit_model
except ImportError:  # pragma: no cover
    from examples.flights.pipeline import FEATURES, features, fit_model

LABEL = "late"
_NEVER = 2**62  # min_slice_rows that no slice reaches


SOURCE = "flights"
"""The source of ``ctloop.yaml`` the pipelines read (one span a day)."""


@step(cache=False)
def load_spans(data: Path, weeks: int = 8) -> pd.DataFrame:
    """The newest 7 x ``weeks`` daily spans of the ingested source, as one table; the
    spans and their versions are tagged on the run (``spans``)."""
    from ctloop.ingest import read_spans, select_spans

    selection = f"rolling:{7 * weeks}"
    chosen = select_spans(data, selection)
    set_tag("spans", chosen.describe())
    set_tag("span_versions", _versions(chosen.versions))
    print(f"training data: {chosen.source} spans {chosen.describe()}")
    return read_spans(data, selection)


@step(cache=False)
def received(data: Path, spans: list[str]) -> dict[str, int]:
    """What a new-data firing brought: rows per new (or late-changed) span."""
    from ctloop.ingest import read_spans

    if not spans:
        raise ValueError("no spans given; the new_spans trigger passes them as 'spans'")
    first, last = min(spans), max(spans)
    frame = read_spans(data, f"{first}..{last}", span_column="span")
    rows = frame[frame["span"].isin(spans)].groupby("span").size()
    set_tag("spans", f"{first} … {last} ({len(spans)} spans)" if len(spans) > 1 else first)
    log_metric("rows", int(rows.sum()))
    return {str(span): int(n) for span, n in rows.items()}


def _versions(versions: dict[str, int]) -> str:
    """``v1`` when every span is in its first version, else the spans ingested again."""
    late = {span: v for span, v in versions.items() if v > 1}
    return ", ".join(f"{span} v{v}" for span, v in late.items()) if late else "v1"


@step(outputs=("train", "holdout"))
def split_newest(data: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All weeks but the newest to train on; the newest week held out for the gate."""
    week = (pd.to_datetime(data["date"]) - pd.Timestamp("2013-01-01")).dt.days // 7
    newest = week == week.max()
    return data[~newest].reset_index(drop=True), data[newest].reset_index(drop=True)


@step
def fit_flights(train: pd.DataFrame, max_depth: int = 6, learning_rate: float = 0.1) -> Model:
    """The late-arrival classifier as a ``Model`` (signature, example, training statistics)."""
    from ctloop.data import compute_statistics

    X, _ = features(train)
    estimator = fit_model(train, max_depth=max_depth, learning_rate=learning_rate)
    log_metric("train_rows", len(X))
    return Model.from_estimator(
        estimator, X, task="classification", training_statistics=compute_statistics(X)
    )


@step
def labelled(data: pd.DataFrame) -> pd.DataFrame:
    """Model inputs plus the ``late`` label: the table ``evaluate`` scores."""
    X, y = features(data)
    return X.assign(**{LABEL: y.to_numpy()})


@pipeline
def retrain(
    weeks: int = 8,
    schema_path: FilePath = FilePath(HERE / "schema.yaml"),
    model_name: str = "flights",
    min_auc: float = 0.6,
    max_drop: float = 0.03,
    max_depth: int = 6,
    release_as: str = "direct",
    canary_traffic: float = 20.0,
    refit_after_gate: bool = True,
    gate_slices: bool = True,
) -> None:
    """Validate the newest labelled weeks, train, gate against the champion, refit on
    all of them, release."""
    data = load_spans(data_version(SOURCE), weeks=weeks)
    anomalies = validate(statistics(data), schema_path=schema_path)
    train_rows, holdout = split_newest(data)
    train_rows.after(anomalies)
    candidate = fit_flights(train_rows, max_depth=max_depth)
    champion = champion_model(name=model_name)
    evaluation = evaluate(
        candidate, labelled(holdout), label=LABEL, slices=["carrier"], baseline=champion
    )
    model = candidate
    if refit_after_gate:
        model = fit_flights(data, max_depth=max_depth).after(anomalies, evaluation)
    blessing = gate(
        evaluation,
        model,
        absolute=[f"auc >= {min_auc}"],
        change=[f"auc may drop by {max_drop}"],
        # every carrier with 1,000 held-out rows is held to the rule too, unless
        # gate_slices=False (the overall AUC only, as `ctloop replay` gates a policy)
        min_slice_rows=1000 if gate_slices else _NEVER,
    )
    release(
        register(model, blessing, name=model_name),
        strategy=release_as,
        traffic=canary_traffic,
        reason="retrained: not worse than the champion on the newest week",
    )


@pipeline
def ingested(spans: list[str]) -> None:
    """Started by the ``new_spans`` trigger: records the new spans of the source's latest
    data version (the run's lineage names that version)."""
    received(data_version(SOURCE), spans)


__all__ = ["FEATURES", "SOURCE", "ingested", "retrain"]
