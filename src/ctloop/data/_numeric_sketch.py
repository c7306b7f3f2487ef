"""Mergeable summaries of a numeric column whose size does not grow with the number of rows.

Two histograms, both merged *exactly* (the histogram of ``a ∪ b`` equals the merge of the
histograms of ``a`` and ``b``), are read together as one CDF:

``NumericHistogram`` — equi-width bins on a power-of-two grid: bin ``i`` holds the values
``x`` with ``floor(x / 2**exponent) == i``, and the exponent is the smallest one at which
``[min, max]`` fits in ``max_bins`` bins (the finer of two histograms is coarsened by
shifting bin indices). Its bins are narrower than ``2 · (max − min) / (max_bins − 1)``.

``LogHistogram`` — geometric bins of fixed edges ``±2**(k / 32)`` (each 2.2 % wide relative
to the value) down to 2**-40 times the largest magnitude, and one count of the values
below; it keeps resolution where an outlier has made the equi-width bins coarse.

``Cdf`` — the empirical CDF known exactly at every bin edge of both histograms and linear in
between. Error bounds: a quantile is off by at most the narrower of the two bins holding it
(``2 · (max − min) / (max_bins − 1)`` or 2.2 % of the value); a CDF value, hence a
Kolmogorov–Smirnov statistic, by at most the share of rows between two neighbouring edges;
a Wasserstein distance by at most the widest gap between neighbouring edges where the two
CDFs differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_MIN_EXPONENT = -1074  # 2**-1074 is the smallest positive float64
PER_OCTAVE = 32  # geometric bins per doubling: edges 2**(1/32) ≈ 1.022 apart
LOG_OCTAVES = 40  # doublings below the largest magnitude kept in geometric bins


def _grid_exponent(low: float, high: float, max_bins: int) -> int:
    """The smallest power-of-two bin width at which ``[low, high]`` fits in ``max_bins`` bins.

    >>> _grid_exponent(0.0, 1.0, 4)
    -1
    """
    largest = max(abs(low), abs(high))
    # below one unit in the last place a finer grid only splits identical values
    floor = math.frexp(largest)[1] - 52 if largest > 0 else _MIN_EXPONENT
    half_span = high / 2 - low / 2  # halved: the full span of ±1e308 would overflow
    if half_span <= 0:
        return floor
    exponent = math.ceil(math.log2(half_span) + 1 - math.log2(max_bins))
    while _bin_index(high, exponent) - _bin_index(low, exponent) + 1 > max_bins:
        exponent += 1
    return max(exponent, floor)


def _bin_index(value: float, exponent: int) -> int:
    """Index of the bin holding ``value`` on the grid of width ``2**exponent``.

    >>> _bin_index(0.75, -1), _bin_index(-1e-300, 10)
    (1, -1)
    """
    return int(_scaled_floor(np.array([value]), exponent)[0])


def _scaled_floor(values: np.ndarray, exponent: int) -> np.ndarray:
    """``floor(values / 2**exponent)`` as floats, exact (scaling by a power of two is)."""
    scaled = np.floor(np.ldexp(values, -exponent))
    if exponent > 0:  # only then can a tiny negative value underflow to -0.0 (floor -1)
        scaled = np.where((values < 0) & (scaled == 0), -1.0, scaled)
    return scaled


@dataclass(frozen=True, eq=False)
class NumericHistogram:
    """Counts of finite values on a power-of-two grid; merges exactly.

    >>> h = NumericHistogram.from_values(np.array([0.0, 1.0, 2.0, 3.0]), max_bins=4)
    >>> h.width, h.counts.tolist()
    (1.0, [1, 1, 1, 1])
    """

    exponent: int = 0
    offset: int = 0
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    max_bins: int = 2048

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NumericHistogram):
            return NotImplemented
        same_grid = (self.exponent, self.offset, self.max_bins) == (
            other.exponent,
            other.offset,
            other.max_bins,
        )
        return same_grid and np.array_equal(self.counts, other.counts)

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def from_values(cls, values: np.ndarray, *, max_bins: int = 2048) -> NumericHistogram:
        """Histogram of finite float values (the caller drops NaN and ±inf).

        >>> NumericHistogram.from_values(np.array([5.0]), max_bins=8).total
        1
        """
        if values.size == 0:
            return cls(max_bins=max_bins)
        low, high = float(values.min()), float(values.max())
        exponent = _grid_exponent(low, high, max_bins)
        offset = _bin_index(low, exponent)
        index = _scaled_floor(values, exponent).astype(np.int64) - offset
        return cls(exponent, offset, np.bincount(index).astype(np.int64), max_bins)

    @property
    def total(self) -> int:
        """Number of values counted."""
        return int(self.counts.sum())

    @property
    def width(self) -> float:
        """Width of one bin."""
        return math.ldexp(1.0, self.exponent)

    def coarsen(self, exponent: int) -> NumericHistogram:
        """The same counts on a grid of width ``2**exponent`` (not finer than this one).

        >>> NumericHistogram(0, 0, np.array([1, 2, 3])).coarsen(1).counts.tolist()
        [3, 3]
        """
        shift = exponent - self.exponent
        if shift <= 0 or self.counts.size == 0:
            return self
        # indices are below 2**63, so a shift by 63 already floors them to 0 or -1
        index = (np.arange(self.counts.size, dtype=np.int64) + self.offset) >> min(shift, 63)
        offset = self.offset >> shift
        counts = np.bincount(index - offset, weights=self.counts).astype(np.int64)
        return NumericHistogram(exponent, offset, counts, self.max_bins)

    def merge(self, other: NumericHistogram, low: float, high: float) -> NumericHistogram:
        """Histogram of both inputs; ``low``/``high`` are the union's exact min and max.

        >>> a = NumericHistogram.from_values(np.array([0.0, 1.0]), max_bins=4)
        >>> b = NumericHistogram.from_values(np.array([3.0]), max_bins=4)
        >>> a.merge(b, 0.0, 3.0).counts.tolist()
        [1, 1, 0, 1]
        """
        if other.counts.size == 0:
            return self
        if self.counts.size == 0:
            return other
        max_bins = min(self.max_bins, other.max_bins)
        exponent = max(self.exponent, other.exponent, _grid_exponent(low, high, max_bins))
        left, right = self.coarsen(exponent), other.coarsen(exponent)
        offset = min(left.offset, right.offset)
        size = max(left.offset + left.counts.size, right.offset + right.counts.size) - offset
        counts = np.zeros(size, dtype=np.int64)
        counts[left.offset - offset : left.offset - offset + left.counts.size] += left.counts
        counts[right.offset - offset : right.offset - offset + right.counts.size] += right.counts
        return NumericHistogram(exponent, offset, counts, max_bins)

    def sparse(self) -> tuple[np.ndarray, np.ndarray]:
        """Absolute indices and counts of the non-empty bins.

        >>> NumericHistogram(0, 3, np.array([2, 0, 1])).sparse()[0].tolist()
        [3, 5]
        """
        nonzero = np.flatnonzero(self.counts)
        return nonzero + self.offset, self.counts[nonzero]

    def intervals(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lower edges, upper edges and counts of the non-empty bins, left to right."""
        index, counts = self.sparse()
        return index * self.width, (index + 1) * self.width, counts

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``from_dict`` reads it back."""
        return {
            "exponent": self.exponent,
            "offset": self.offset,
            "counts": self.counts.tolist(),
            "max_bins": self.max_bins,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NumericHistogram:
        """Read what ``to_dict`` wrote."""
        counts = np.asarray(data["counts"], dtype=np.int64)
        return cls(int(data["exponent"]), int(data["offset"]), counts, int(data["max_bins"]))


def log_floor(low: float, high: float) -> int:
    """Exponent under which ``LogHistogram`` pools values: 40 octaves below the largest.

    >>> log_floor(-3.0, 1.0)
    -38
    """
    largest = max(abs(low), abs(high))
    return math.frexp(largest)[1] - LOG_OCTAVES if largest > 0 else _MIN_EXPONENT


@dataclass(frozen=True, eq=False)
class LogHistogram:
    """Counts on the fixed geometric grid ``±2**(k / 32)`` for ``|x| >= 2**floor``.

    Smaller values (zeros included) are one count, ``small``. With ``floor = log_floor(...)``
    that is below 2**-40 times the largest magnitude, which bounds the bins to 2 × 40 × 32.

    >>> h = LogHistogram.from_values(np.array([-1.0, 0.0, 1.0, 1.0]), floor=-3)
    >>> h.small, h.total, LogHistogram.from_dict(h.to_dict()) == h
    (1, 4, True)
    """

    positive: tuple[int, np.ndarray] = (0, np.zeros(0, dtype=np.int64))  # first k, counts
    negative: tuple[int, np.ndarray] = (0, np.zeros(0, dtype=np.int64))  # k of |x|
    small: int = 0
    floor: int = _MIN_EXPONENT

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LogHistogram):
            return NotImplemented
        return (self.small, self.floor) == (other.small, other.floor) and all(
            mine[0] == theirs[0] and np.array_equal(mine[1], theirs[1])
            for mine, theirs in ((self.positive, other.positive), (self.negative, other.negative))
        )

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def from_values(cls, values: np.ndarray, *, floor: int = _MIN_EXPONENT) -> LogHistogram:
        """Histogram of finite float values; ``|x| < 2**floor`` counts as ``small``."""
        threshold = math.ldexp(1.0, floor)
        positive, negative = values[values >= threshold], -values[values <= -threshold]
        small = values.size - positive.size - negative.size
        return cls(_geometric_counts(positive), _geometric_counts(negative), small, floor)

    @property
    def total(self) -> int:
        """Number of values counted."""
        return int(self.positive[1].sum() + self.negative[1].sum()) + self.small

    def raise_floor(self, floor: int) -> LogHistogram:
        """The same counts with bins below ``2**floor`` folded into ``small``.

        >>> LogHistogram.from_values(np.array([0.5, 4.0]), floor=-3).raise_floor(0).small
        1
        """
        if floor <= self.floor:
            return self
        positive, folded_positive = _fold(self.positive, floor * PER_OCTAVE)
        negative, folded_negative = _fold(self.negative, floor * PER_OCTAVE)
        return LogHistogram(
            positive, negative, self.small + folded_positive + folded_negative, floor
        )

    def merge(self, other: LogHistogram, floor: int) -> LogHistogram:
        """Histogram of both inputs; ``floor`` is at least both inputs' (the union's)."""
        left, right = self.raise_floor(floor), other.raise_floor(floor)
        return LogHistogram(
            _add_counts(left.positive, right.positive),
            _add_counts(left.negative, right.negative),
            left.small + right.small,
            max(floor, self.floor, other.floor),
        )

    def intervals(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Lower edges, upper edges and counts of the non-empty bins, left to right."""
        parts = []
        for sign, (first, counts) in ((-1.0, self.negative), (1.0, self.positive)):
            k = np.flatnonzero(counts) + first
            low, high = np.exp2(k / PER_OCTAVE), np.exp2((k + 1) / PER_OCTAVE)
            found = counts[k - first]
            parts.append((-high[::-1], -low[::-1], found[::-1]) if sign < 0 else (low, high, found))
            if sign < 0 and self.small:
                edge = math.ldexp(1.0, self.floor)
                parts.append((np.array([-edge]), np.array([edge]), np.array([self.small])))
        return tuple(np.concatenate(p) for p in zip(*parts))  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (non-empty bins only); ``from_dict`` reads it back."""
        data: dict[str, Any] = {"small": self.small, "floor": self.floor}
        for name, (first, counts) in (("positive", self.positive), ("negative", self.negative)):
            k = np.flatnonzero(counts)
            data[name] = {"bins": (k + first).tolist(), "counts": counts[k].tolist()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogHistogram:
        """Read what ``to_dict`` wrote."""
        sides = []
        for name in ("positive", "negative"):
            bins = np.asarray(data[name]["bins"], dtype=np.int64)
            counts = np.asarray(data[name]["counts"], dtype=np.int64)
            first = int(bins[0]) if bins.size else 0
            dense = np.zeros(int(bins[-1]) - first + 1 if bins.size else 0, dtype=np.int64)
            dense[bins - first] = counts
            sides.append((first, dense))
        return cls(sides[0], sides[1], int(data["small"]), int(data["floor"]))


def _geometric_counts(magnitudes: np.ndarray) -> tuple[int, np.ndarray]:
    """First geometric bin index and dense counts of positive values."""
    if magnitudes.size == 0:
        return 0, np.zeros(0, dtype=np.int64)
    k = np.floor(np.log2(magnitudes) * PER_OCTAVE).astype(np.int64)
    first = int(k.min())
    return first, np.bincount(k - first).astype(np.int64)


def _fold(side: tuple[int, np.ndarray], first: int) -> tuple[tuple[int, np.ndarray], int]:
    """Counts from bin ``first`` on, and the sum of those below it."""
    start, counts = side
    cut = min(max(first - start, 0), counts.size)
    if cut == 0:
        return side, 0
    return _trim(start + cut, counts[cut:]), int(counts[:cut].sum())


def _trim(first: int, counts: np.ndarray) -> tuple[int, np.ndarray]:
    """Dense counts without empty bins at either end (so equal counts compare equal)."""
    nonzero = np.flatnonzero(counts)
    if nonzero.size == 0:
        return 0, np.zeros(0, dtype=np.int64)
    return first + int(nonzero[0]), counts[nonzero[0] : nonzero[-1] + 1]


def _add_counts(
    left: tuple[int, np.ndarray], right: tuple[int, np.ndarray]
) -> tuple[int, np.ndarray]:
    """Sum of two dense count arrays that start at different bin indices."""
    if right[1].size == 0 or left[1].size == 0:
        return left if right[1].size == 0 else right
    first = min(left[0], right[0])
    size = max(left[0] + left[1].size, right[0] + right[1].size) - first
    total = np.zeros(size, dtype=np.int64)
    for start, counts in (left, right):
        total[start - first : start - first + counts.size] += counts
    return first, total


@dataclass(frozen=True)
class Cdf:
    """An empirical CDF known exactly at ``x`` (knots, ascending) and linear in between.

    ``share[i]`` is the share of values below or at ``x[i]``; a knot repeated with two shares
    marks a jump (values exactly there).

    >>> cdf = Cdf.from_intervals([(np.array([0.0]), np.array([2.0]), np.array([4]))], 0.0, 2.0)
    >>> cdf.at(np.array([1.0])).tolist(), cdf.quantiles(np.array([0.25])).tolist()
    ([0.5], [0.5])
    """

    x: np.ndarray
    share: np.ndarray

    @classmethod
    def from_intervals(
        cls, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], low: float, high: float
    ) -> Cdf:
        """Combine histograms' ``(lower edges, upper edges, counts)`` of the same values."""
        xs, shares = [], []
        for lower, upper, counts in parts:
            after = np.cumsum(counts) / counts.sum()
            xs.append(np.column_stack([lower, upper]).ravel())
            shares.append(np.column_stack([after - counts / counts.sum(), after]).ravel())
        x, share = np.clip(np.concatenate(xs), low, high), np.concatenate(shares)
        order = np.lexsort((share, x))
        # edges computed in floating point may misplace a value by one ulp: keep it monotone
        return cls(x[order], np.maximum.accumulate(share[order]))

    def at(self, points: np.ndarray, *, left: bool = False) -> np.ndarray:
        """Share of values ``<= points`` (``< points`` with ``left=True``), linear between knots."""
        above = np.searchsorted(self.x, points, side="left" if left else "right")
        below = np.clip(above - 1, 0, self.x.size - 1)
        above = np.clip(above, 0, self.x.size - 1)
        gap = self.x[above] - self.x[below]
        fraction = np.where(gap > 0, (points - self.x[below]) / np.where(gap > 0, gap, 1.0), 1.0)
        inside = self.share[below] + (self.share[above] - self.share[below]) * np.clip(
            fraction, 0, 1
        )
        return np.where(points < self.x[0], 0.0, np.where(points > self.x[-1], 1.0, inside))

    def quantiles(self, qs: np.ndarray) -> np.ndarray:
        """The values below which the shares ``qs`` of values lie."""
        return np.interp(qs, self.share, self.x)
