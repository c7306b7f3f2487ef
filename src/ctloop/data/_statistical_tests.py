"""Two-sample tests and distances computed from statistics alone, never from rows.

Numeric tests read both columns' ``Cdf`` (exact at every histogram bin edge, linear in
between; see ``ctloop.data._numeric_sketch``):

- ``ks``: Kolmogorov–Smirnov statistic, the largest gap between the two CDFs at the knots of
  either; it is below the raw-sample statistic by at most the largest share of rows between
  two neighbouring knots. The p-value is SciPy's asymptotic one (``kstwo``, as ``ks_2samp``
  with ``method="asymp"``).
- ``wasserstein``: the 1-Wasserstein distance (area between the two CDFs) divided by the
  reference's standard deviation (``normed``, as Evidently does); off by at most the widest
  gap between neighbouring knots over that standard deviation.
- ``psi``: population stability index over ten reference-quantile bins.

Categorical tests read ``CategoryCounts``; values no longer tracked by a Misra–Gries summary
are pooled as one "other" category:

- ``chisquare``: Pearson's chi-square on the 2 × k count table
  (``scipy.stats.chi2_contingency`` without Yates' correction).
- ``jensenshannon``: Jensen–Shannon distance of the two frequency vectors, natural
  logarithm (0 … √ln 2 ≈ 0.83), as SciPy and Evidently compute it, so a 0.1 threshold means
  the same in both.
- ``linf``: the largest absolute difference of two frequencies.
- ``psi``: population stability index of the frequencies.

PSI replaces an empty bin's share by ``PSI_EPSILON`` (1e-4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats
from scipy.spatial import distance

from ctloop.data._category_sketch import CategoryCounts
from ctloop.data._statistics import NumericStatistics

PSI_EPSILON = 1e-4
PSI_BINS = 10


@dataclass(frozen=True)
class TestResult:
    """What a test found: its statistic and, for hypothesis tests, the p-value.

    >>> TestResult(0.2, 0.01).p_value
    0.01
    """

    __test__ = False  # not a pytest test class

    statistic: float
    p_value: float | None = None


def ks(reference: NumericStatistics, current: NumericStatistics) -> TestResult:
    """Two-sample Kolmogorov–Smirnov test from two CDF summaries.

    >>> a = NumericStatistics.from_values(np.arange(100.0))
    >>> ks(a, a)
    TestResult(statistic=0.0, p_value=1.0)
    """
    ref, cur = reference.cdf, current.cdf
    points = np.concatenate([ref.x, cur.x])
    gaps = [np.abs(ref.at(points, left=side) - cur.at(points, left=side)) for side in (False, True)]
    statistic = float(max(gap.max() for gap in gaps))
    size = round(reference.count * current.count / (reference.count + current.count))
    return TestResult(statistic, float(scipy_stats.kstwo.sf(statistic, size)))


def wasserstein(reference: NumericStatistics, current: NumericStatistics) -> TestResult:
    """1-Wasserstein distance divided by the reference's standard deviation.

    A constant reference (standard deviation 0) gives the plain distance.

    >>> a = NumericStatistics.from_values(np.array([0.0, 2.0]))
    >>> b = NumericStatistics.from_values(np.array([1.0, 3.0]))
    >>> round(wasserstein(a, b).statistic, 2)
    1.0
    """
    ref, cur = reference.cdf, current.cdf
    points = np.unique(np.concatenate([ref.x, cur.x]))
    # both CDFs are linear between neighbouring points: integrate |difference| exactly
    start = (ref.at(points) - cur.at(points))[:-1]
    end = (ref.at(points, left=True) - cur.at(points, left=True))[1:]
    total = np.abs(start) + np.abs(end)
    crossing = (start**2 + end**2) / (2 * np.where(total > 0, total, 1.0))
    area = np.where(start * end >= 0, total / 2, crossing) * np.diff(points)
    scale = reference.std if reference.std > 0 else 1.0
    return TestResult(float(area.sum()) / scale)


def numeric_psi(reference: NumericStatistics, current: NumericStatistics) -> TestResult:
    """Population stability index over ten bins cut at the reference's deciles.

    >>> a = NumericStatistics.from_values(np.arange(1000.0))
    >>> numeric_psi(a, a).statistic
    0.0
    """
    inner = np.linspace(0, 1, PSI_BINS + 1)[1:-1]
    edges = np.unique(reference.quantiles(inner))
    shares = []
    for side in (reference, current):
        cdf = side.cdf.at(edges)
        shares.append(np.diff(np.concatenate([[0.0], cdf, [1.0]])))
    return TestResult(_psi(shares[0], shares[1]))


def _frequencies(reference: CategoryCounts, current: CategoryCounts) -> np.ndarray:
    """A 2 × k table of counts over the union of values (plus pooled untracked rows)."""
    ref, cur = reference.as_dict(), current.as_dict()
    values = list(dict.fromkeys([*ref, *cur]))
    table = np.array([[ref.get(v, 0) for v in values], [cur.get(v, 0) for v in values]])
    other = np.array([[reference.total - reference.tracked], [current.total - current.tracked]])
    if other.any():
        table = np.hstack([table, other])
    return table[:, table.sum(axis=0) > 0]


def chisquare(reference: CategoryCounts, current: CategoryCounts) -> TestResult:
    """Pearson's chi-square test of homogeneity on the two count vectors.

    >>> a = CategoryCounts.from_counts(np.array(["x", "y"]), np.array([5, 5]))
    >>> chisquare(a, a)
    TestResult(statistic=0.0, p_value=1.0)
    """
    table = _frequencies(reference, current)
    if table.shape[1] < 2:
        return TestResult(0.0, 1.0)
    result = scipy_stats.chi2_contingency(table, correction=False)
    return TestResult(float(result.statistic), float(result.pvalue))


def jensenshannon(reference: CategoryCounts, current: CategoryCounts) -> TestResult:
    """Jensen–Shannon distance (natural logarithm) between the two frequency vectors.

    >>> a = CategoryCounts.from_counts(np.array(["x"]), np.array([3]))
    >>> b = CategoryCounts.from_counts(np.array(["y"]), np.array([3]))
    >>> round(jensenshannon(a, b).statistic, 4)  # disjoint: the maximum, sqrt(ln 2)
    0.8326
    """
    table = _frequencies(reference, current)
    return TestResult(float(distance.jensenshannon(table[0], table[1])))


def linf(reference: CategoryCounts, current: CategoryCounts) -> TestResult:
    """Largest absolute difference between a value's two frequencies.

    >>> a = CategoryCounts.from_counts(np.array(["x", "y"]), np.array([1, 1]))
    >>> b = CategoryCounts.from_counts(np.array(["x"]), np.array([1]))
    >>> linf(a, b).statistic
    0.5
    """
    table = _frequencies(reference, current)
    shares = table / table.sum(axis=1, keepdims=True)
    return TestResult(float(np.abs(shares[0] - shares[1]).max()))


def categorical_psi(reference: CategoryCounts, current: CategoryCounts) -> TestResult:
    """Population stability index of the two frequency vectors.

    >>> a = CategoryCounts.from_counts(np.array(["x", "y"]), np.array([1, 1]))
    >>> categorical_psi(a, a).statistic
    0.0
    """
    table = _frequencies(reference, current)
    shares = table / table.sum(axis=1, keepdims=True)
    return TestResult(_psi(shares[0], shares[1]))


def _psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Σ (current − reference) · ln(current / reference), empty shares set to epsilon."""
    ref = np.maximum(reference, PSI_EPSILON)
    cur = np.maximum(current, PSI_EPSILON)
    return float(np.sum((cur - ref) * np.log(cur / ref)))
