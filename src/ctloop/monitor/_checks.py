"""The checks of one monitoring window, on data frames and statistics (no store).

- ``feature_drift``: skew (window vs training statistics) or drift (window vs the previous
  window), per feature, with the tests and thresholds of ``MonitorSettings``.
- ``performance``: the model's metric on the labelled rows against a baseline.
- ``attribution_shares`` and ``attribution_shift``: how much the model leans on each
  feature (permutation importance, normalised to shares) and how far that moved.

>>> import pandas as pd
>>> from ctloop.data import compute_statistics
>>> stats = compute_statistics(pd.DataFrame({"x": [float(i) for i in range(300)]}))
>>> feature_drift(stats, stats, ["x"], MonitorSettings()).drifted_columns
()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ctloop.monitor._settings import MonitorSettings

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ctloop.data import DatasetStatistics, DriftReport

DEFAULT_METRIC = {"classification": "auc", "regression": "rmse"}


def feature_drift(
    reference: DatasetStatistics,
    current: DatasetStatistics,
    features: Sequence[str],
    settings: MonitorSettings,
) -> DriftReport:
    """Test each of ``features`` that both sides have, with distances by default.

    Distance tests are used whatever the sample size (``small_sample=0``): hypothesis
    tests at p < 0.05 raise false alarms on every twentieth stable feature. A numeric
    PSI threshold is raised by :func:`psi_noise`, the PSI two samples of these sizes
    show on average when nothing changed, so a small window's noise is no drift.
    """
    from ctloop.data import ColumnTest, DriftConfig, detect_drift
    from ctloop.data._statistics import CATEGORICAL_TYPES, NUMERIC_TYPES

    tests = {}
    for name in features:
        if name not in reference or reference[name].type not in (
            *NUMERIC_TYPES,
            *CATEGORICAL_TYPES,
        ):
            continue
        kind = "numeric" if reference[name].type in NUMERIC_TYPES else "categorical"
        test, threshold = settings.drift_test_for(name, kind)
        if test == "psi" and kind == "numeric" and threshold is not None:
            threshold = round(threshold + psi_noise(reference.num_rows, current.num_rows), 4)
        tests[name] = ColumnTest(test, threshold)
    config = DriftConfig(
        tests=tests,
        small_sample=0,
        columns=tuple(f for f in features if f in reference and f in current),
        exclude=settings.ignored(),
    )
    return detect_drift(reference, current, config=config)


def psi_noise(reference_rows: int, current_rows: int) -> float:
    """The PSI that two samples of these sizes, drawn from one distribution, show on
    average over its ten bins: ``9 * (1/n + 1/m)`` (PSI is close to the chi-square
    distance of the two histograms, whose expectation that is). 0.05 for a window of 200
    rows against 2,000 training rows, 0.002 for 5,000 against 60,000.

    >>> round(psi_noise(2000, 200), 4), round(psi_noise(60000, 5000), 4)
    (0.0495, 0.002)
    """
    from ctloop.data._statistical_tests import PSI_BINS

    sizes = [n for n in (reference_rows, current_rows) if n > 0]
    return (PSI_BINS - 1) * sum(1.0 / n for n in sizes)


def performance(
    labels: Any,
    predictions: Any,
    *,
    task: str,
    baseline: Mapping[str, float],
    settings: MonitorSettings,
) -> dict[str, Any]:
    """The window's metric on labelled rows, compared with ``baseline`` (same metric).

    ``degraded`` is True when the metric is worse than the baseline by more than
    ``settings.allowed_drop`` — a share of the baseline (``drop_is: relative``, the
    default) or in the metric's units (``absolute``) — and, with ``confidence`` set, the
    baseline lies outside the window's bootstrap interval at that level (so a small
    window's sampling noise is no alarm); without a baseline it is False.

    >>> performance([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3], task="classification",
    ...             baseline={"auc": 0.9}, settings=MonitorSettings())["degraded"]
    False
    """
    from ctloop.evaluate._metrics import is_higher_better

    metric = settings.metric or DEFAULT_METRIC.get(task, "rmse")
    score = _scorer(task, metric)
    value, note = score(labels, predictions)
    reference = baseline.get(metric)
    drop = relative = None
    beyond_noise = True
    if value is not None and reference is not None:
        drop = (reference - value) if is_higher_better(metric) else (value - reference)
        relative = drop / abs(reference) if reference else None
    measured = relative if settings.drop_is == "relative" and relative is not None else drop
    over = measured is not None and measured > settings.allowed_drop
    interval = None
    if over and settings.confidence is not None:
        interval = _bootstrap_interval(score, labels, predictions, settings)
        if interval is not None and reference is not None:
            low, high = interval
            beyond_noise = (high < reference) if is_higher_better(metric) else (low > reference)
    return {
        "metric": metric,
        "value": value,
        "baseline": reference,
        "drop": drop,
        "relative_drop": relative,
        "drop_is": settings.drop_is,
        "allowed_drop": settings.allowed_drop,
        "interval": list(interval) if interval is not None else None,
        "degraded": over and beyond_noise,
        "within_noise": over and not beyond_noise,
        "rows": len(predictions),
        "note": note,
    }


def _scorer(task: str, metric: str) -> Any:
    """``score(labels, predictions) -> (value, note)`` for the task's ``metric``."""
    from ctloop.evaluate._metrics import classification_metrics, regression_metrics

    def score(labels: Any, predictions: Any) -> tuple[float | None, str | None]:
        if task == "classification":
            found = classification_metrics(_binary(labels), predictions, metrics=[metric])
        else:
            found = regression_metrics(labels, predictions, metrics=[metric])
        return found.values[metric], found.notes.get(metric)

    score.metric = metric if task == "classification" else None  # type: ignore[attr-defined]
    return score


def _rank_auc(labels: np.ndarray, scores: np.ndarray) -> tuple[float | None, str | None]:
    """ROC-AUC as the Mann-Whitney statistic of the scores' ranks (ties averaged, as
    ``roc_auc_score``); None with one class only.

    >>> import numpy as np
    >>> _rank_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    (0.75, None)
    """
    from scipy.stats import rankdata

    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None, "one class only"
    ranks = rankdata(scores)
    total = float(ranks[labels == 1].sum()) - positives * (positives + 1) / 2
    return total / (positives * negatives), None


def _bootstrap_interval(
    score: Any, labels: Any, predictions: Any, settings: MonitorSettings
) -> tuple[float, float] | None:
    """The central ``confidence`` interval of the metric over bootstrap resamples of the
    window's rows (seeded: one window always gets one answer); None when undefined."""
    import numpy as np

    y, p = np.asarray(labels), np.asarray(predictions, dtype=float)
    rng = np.random.default_rng(0)
    values = []
    if getattr(score, "metric", None) == "auc":
        y = _binary(y)
        score = _rank_auc  # the same value as roc_auc_score, a hundred times faster
    for _ in range(settings.bootstrap_samples):
        rows = rng.integers(0, len(y), len(y))
        value, _note = score(y[rows], p[rows])
        if value is not None:
            values.append(value)
    if len(values) < settings.bootstrap_samples // 2:
        return None
    tail = (1 - float(settings.confidence or 0.95)) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


def attribution_shares(
    model: Any,
    features: pd.DataFrame,
    labels: Any,
    *,
    task: str,
    settings: MonitorSettings,
    random_state: int = 0,
) -> dict[str, float]:
    """Each feature's share of the model's permutation importance on a labelled sample.

    ``model`` is a ``ctloop.artifacts.model.Model`` (or anything with ``predict`` giving
    the positive-class probability or the regression value); at most
    ``settings.attribution_rows`` rows are used, three shuffles each.
    """
    from ctloop.evaluate._attribution import permutation_importance

    sample = features.sample(
        n=min(len(features), settings.attribution_rows), random_state=random_state
    )
    truth = _binary(labels) if task == "classification" else labels
    truth = truth[features.index.get_indexer(sample.index)]
    found = permutation_importance(
        _Scorer(model, task),
        sample,
        truth,
        task=task,
        metric=settings.metric,
        n_repeats=3,
        random_state=random_state,
    )
    return shares({a.feature: a.mean_drop for a in found})


def shares(importance: Mapping[str, float]) -> dict[str, float]:
    """Importances clipped at zero and scaled to sum to one (all zero stays zero).

    >>> shares({"a": 3.0, "b": 1.0, "c": -0.5})
    {'a': 0.75, 'b': 0.25, 'c': 0.0}
    """
    clipped = {k: max(0.0, float(v)) for k, v in importance.items()}
    total = sum(clipped.values())
    return {k: (v / total if total > 0 else 0.0) for k, v in clipped.items()}


def attribution_shift(
    reference: Mapping[str, float], current: Mapping[str, float], *, threshold: float
) -> dict[str, Any]:
    """Total variation distance between two share vectors, and the features that moved.

    ``changed`` lists features whose share moved by more than half the threshold, largest
    move first (or, when none did, the three that moved most); ``drifted`` is True when the
    distance exceeds ``threshold``.

    >>> attribution_shift({"a": 0.9, "b": 0.1}, {"a": 0.1, "b": 0.9}, threshold=0.3)["drifted"]
    True
    """
    names = list(dict.fromkeys([*reference, *current]))
    moves = {n: current.get(n, 0.0) - reference.get(n, 0.0) for n in names}
    distance = 0.5 * sum(abs(m) for m in moves.values())
    by_move = sorted(names, key=lambda n: -abs(moves[n]))
    # a shift spread over many features names the three that moved most
    changed = [n for n in by_move if abs(moves[n]) > threshold / 2] or by_move[:3]
    return {
        "reference": dict(reference),
        "current": dict(current),
        "distance": distance,
        "threshold": threshold,
        "drifted": distance > threshold,
        "changed": changed,
        "top_reference": max(reference, key=lambda n: reference[n]) if reference else None,
        "top_current": max(current, key=lambda n: current[n]) if current else None,
    }


class _Scorer:
    """A ``Model`` seen through the interface permutation importance expects."""

    def __init__(self, model: Any, task: str) -> None:
        self.model, self.task, self.classes_ = model, task, [0, 1]

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return self._predict(features)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        import numpy as np

        positive = self._predict(features)
        return np.column_stack([1.0 - positive, positive])

    def _predict(self, features: pd.DataFrame) -> np.ndarray:
        import numpy as np

        return np.asarray(self.model.predict(features), dtype=float)


def _binary(labels: Any) -> np.ndarray:
    """Labels as 0/1 integers (booleans and 0/1 floats from Parquet included)."""
    import numpy as np

    return np.asarray(labels).astype(float).astype(int)
