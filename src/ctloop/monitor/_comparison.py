"""Is one model version worse than another on labelled requests, beyond sampling noise?

:func:`compare_versions` measures a metric on each version's labelled requests and how
much worse the canary is than the primary (``worse_by``, in the metric's units; positive:
worse), with one-sided bounds at ``confidence`` on that difference:

- AUC: DeLong's variance of each side's AUC — added (independent samples) when each
  version answered its own requests, or with their covariance (paired) when both versions
  scored the same requests (a shadow, or a log holding both predictions);
- any other metric: a seeded bootstrap of the difference, resampling each side on its own
  (independent) or the shared requests together (paired).

The same inputs always give the same bounds (the bootstrap's seed is fixed).

>>> import numpy as np
>>> y = np.array([0, 0, 1, 1] * 50)
>>> found = compare_versions((y, y * 0.6 + 0.2), (y, y * 0.5 + 0.25), metric="auc")
>>> found.worse_by, found.method
(0.0, 'DeLong, independent samples')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Comparison", "compare_versions", "delong_auc"]

Side = tuple[Any, Any]  # (labels, predictions)
Score = Callable[[np.ndarray, np.ndarray], "float | None"]


@dataclass(frozen=True)
class Comparison:
    """A canary's metric against the primary's: each value on ``rows`` requests, how much
    worse the canary is (``worse_by``; positive: worse) and one-sided bounds on that at
    ``confidence`` (``low``: worse by at least; ``high``: by at most; None when noise is
    not accounted for or cannot be measured), and how they were measured (``method``)."""

    metric: str
    primary_value: float | None
    canary_value: float | None
    primary_rows: int
    canary_rows: int
    worse_by: float | None
    low: float | None
    high: float | None
    confidence: float | None
    method: str
    paired: bool = False

    def shown_worse_than(self, allowed_drop: float) -> bool:
        """Whether the canary is worse by more than ``allowed_drop`` — with confidence
        when a bound was measured, else on the point values.

        >>> Comparison("auc", 0.7, 0.68, 400, 900, 0.02, -0.03, 0.07, 0.95, "").shown_worse_than(0)
        False
        """
        if self.worse_by is None:
            return False
        measured = self.low if self.low is not None else self.worse_by
        return measured > allowed_drop

    def describe(self) -> str:
        """The numbers in one line: both values, the rows, the difference and its bounds."""
        if self.worse_by is None or self.primary_value is None or self.canary_value is None:
            return f"{self.metric} not measured on both sides"
        both = f"on {self.canary_rows} and {self.primary_rows} labelled requests"
        if self.paired:
            both = f"on the same {self.canary_rows} labelled requests"
        text = f"{self.metric} {self.canary_value:.4f} vs {self.primary_value:.4f} {both}"
        text += f", worse by {self.worse_by:.4f}"
        if self.low is not None and self.high is not None and self.confidence is not None:
            text += (
                f" ({self.confidence:.0%} one-sided bounds {self.low:.4f} to {self.high:.4f}, "
                f"{self.method})"
            )
        return text


def compare_versions(
    primary: Side,
    canary: Side,
    *,
    metric: str,
    task: str = "classification",
    confidence: float | None = 0.95,
    samples: int = 1000,
    paired: tuple[Any, Any, Any] | None = None,
    seed: int = 0,
) -> Comparison:
    """Compare ``canary`` with ``primary`` (each ``(labels, predictions)`` of the requests
    it answered) on ``metric``; with ``paired`` — ``(labels, primary predictions, canary
    predictions)`` of the same requests — the comparison is made on those instead, which
    cancels the requests' own difficulty and is tighter. ``confidence=None`` compares the
    point values only. See the module docstring for the methods.

    >>> y = np.array([0, 1] * 300)
    >>> worse = compare_versions((y, y * 1.0), (y, 1.0 - y), metric="auc")
    >>> worse.worse_by, worse.shown_worse_than(0.0)
    (1.0, True)
    """
    from ctloop.evaluate._metrics import is_higher_better

    sign = 1.0 if is_higher_better(metric) else -1.0
    if paired is not None:
        labels, first, second = (np.asarray(a) for a in paired)
        primary, canary = (labels, first), (labels, second)
    y_p, p_p = _arrays(primary, task)
    y_c, p_c = _arrays(canary, task)
    score = _score_function(task, metric)
    value_p, value_c = score(y_p, p_p), score(y_c, p_c)
    worse_by = None if value_p is None or value_c is None else sign * (value_p - value_c)
    low = high = None
    method = "point values"
    if worse_by is not None and confidence is not None:
        if metric == "auc" and task == "classification":
            spread = (
                _delong_spread(y_p, p_p, p_c)
                if paired is not None
                else _independent_delong_spread(y_p, p_p, y_c, p_c)
            )
            method = "DeLong, " + ("paired" if paired is not None else "independent samples")
            if spread is not None:
                from scipy.stats import norm

                margin = float(norm.ppf(confidence)) * spread
                low, high = worse_by - margin, worse_by + margin
        else:
            method = f"bootstrap of {samples}, " + (
                "paired" if paired is not None else "independent samples"
            )
            draws = _bootstrap_differences(
                score, (y_p, p_p), (y_c, p_c), sign, samples, seed, paired=paired is not None
            )
            if draws is not None:
                low, high = (float(q) for q in np.quantile(draws, [1 - confidence, confidence]))
    return Comparison(
        metric=metric,
        primary_value=value_p,
        canary_value=value_c,
        primary_rows=len(y_p),
        canary_rows=len(y_c),
        worse_by=worse_by,
        low=low,
        high=high,
        confidence=confidence,
        method=method,
        paired=paired is not None,
    )


def delong_auc(labels: Any, scores: Any) -> tuple[float, np.ndarray, np.ndarray] | None:
    """ROC-AUC with DeLong's structural components: ``(auc, v10, v01)`` where ``v10`` has
    one value per positive and ``v01`` one per negative, so that the AUC's variance is
    ``var(v10) / m + var(v01) / n`` (DeLong, DeLong & Clarke-Pearson, 1988; ties count
    half, as ``roc_auc_score``). None with one class only.

    >>> auc, v10, v01 = delong_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> auc, v10.tolist(), v01.tolist()
    (0.75, [0.5, 1.0], [1.0, 0.5])
    """
    from scipy.stats import rankdata

    y = np.asarray(labels).astype(float).astype(int)
    s = np.asarray(scores, dtype=float)
    positives, negatives = s[y == 1], s[y == 0]
    m, n = len(positives), len(negatives)
    if m == 0 or n == 0:
        return None
    ranks = rankdata(np.concatenate([positives, negatives]))
    # a positive's rank among all, less its rank among the positives, counts the
    # negatives below it (ties half): its share of the AUC
    v10 = (ranks[:m] - rankdata(positives)) / n
    v01 = 1.0 - (ranks[m:] - rankdata(negatives)) / m
    return float(v10.mean()), v10, v01


def _independent_delong_spread(
    y_p: np.ndarray, p_p: np.ndarray, y_c: np.ndarray, p_c: np.ndarray
) -> float | None:
    """The standard error of AUC(primary) - AUC(canary) on disjoint requests."""
    variances = [_delong_variance(y, p) for y, p in ((y_p, p_p), (y_c, p_c))]
    if None in variances:
        return None
    return float(np.sqrt(sum(v for v in variances if v is not None)))


def _delong_variance(labels: np.ndarray, scores: np.ndarray) -> float | None:
    found = delong_auc(labels, scores)
    if found is None or min(len(found[1]), len(found[2])) < 2:
        return None
    _auc, v10, v01 = found
    return float(v10.var(ddof=1) / len(v10) + v01.var(ddof=1) / len(v01))


def _delong_spread(labels: np.ndarray, first: np.ndarray, second: np.ndarray) -> float | None:
    """The standard error of AUC(first) - AUC(second) scored on the same requests: the
    components' covariance between the two versions is taken off."""
    found = [delong_auc(labels, scores) for scores in (first, second)]
    if found[0] is None or found[1] is None or min(len(found[0][1]), len(found[0][2])) < 2:
        return None
    v10 = found[0][1] - found[1][1]
    v01 = found[0][2] - found[1][2]
    return float(np.sqrt(v10.var(ddof=1) / len(v10) + v01.var(ddof=1) / len(v01)))


def _bootstrap_differences(
    score: Score,
    primary: tuple[np.ndarray, np.ndarray],
    canary: tuple[np.ndarray, np.ndarray],
    sign: float,
    samples: int,
    seed: int,
    *,
    paired: bool,
) -> np.ndarray | None:
    """``samples`` resampled values of how much worse the canary is; None when fewer
    than half of the resamples could be scored."""
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(samples):
        rows_p = rng.integers(0, len(primary[0]), len(primary[0]))
        rows_c = rows_p if paired else rng.integers(0, len(canary[0]), len(canary[0]))
        value_p = score(primary[0][rows_p], primary[1][rows_p])
        value_c = score(canary[0][rows_c], canary[1][rows_c])
        if value_p is not None and value_c is not None:
            draws.append(sign * (value_p - value_c))
    if len(draws) < samples // 2:
        return None
    return np.asarray(draws)


def _arrays(side: Side, task: str) -> tuple[np.ndarray, np.ndarray]:
    labels, predictions = side
    y = np.asarray(labels)
    if task == "classification":
        y = y.astype(float).astype(int)
    else:
        y = y.astype(float)
    return y, np.asarray(predictions, dtype=float)


_FAST: dict[str, Score] = {
    "rmse": lambda y, p: float(np.sqrt(np.mean((y - p) ** 2))) if len(y) else None,
    "mae": lambda y, p: float(np.mean(np.abs(y - p))) if len(y) else None,
}


def _score_function(task: str, metric: str) -> Score:
    """``score(labels, predictions) -> value`` for ``metric``: numpy for AUC, RMSE and
    MAE (the same values as the evaluation's, fast enough to bootstrap), the evaluation's
    own metric functions for the rest."""
    if metric == "auc" and task == "classification":

        def auc(y: np.ndarray, p: np.ndarray) -> float | None:
            found = delong_auc(y, p)
            return None if found is None else found[0]

        return auc
    if metric in _FAST and task != "classification":
        return _FAST[metric]
    from ctloop.monitor._checks import _scorer

    general = _scorer(task, metric)

    def score(y: np.ndarray, p: np.ndarray) -> float | None:
        value, _note = general(y, p)
        return None if value is None else float(value)

    return score
