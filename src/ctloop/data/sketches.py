"""Mergeable summaries of a column whose size does not grow with the number of rows.

``NumericHistogram`` — an equi-width histogram on a power-of-two grid. Bin ``i`` holds the
values ``x`` with ``floor(x / 2**exponent) == i``; the exponent is the smallest one for
which the range ``[min, max]`` fits in ``max_bins`` bins. Because the grid depends only on
the range, the histogram of ``a ∪ b`` is *exactly* the merge of the histograms of ``a`` and
``b`` (the finer one is coarsened by shifting bin indices). Error bound: a quantile read
from it is off by at most one bin width, which is below ``2 · (max − min) / (max_bins − 1)``
(for constant columns, one unit in the last place of the value); a CDF read at a bin edge
is exact, so a Kolmogorov–Smirnov statistic is off by at most the largest bin's share of
rows, and a Wasserstein distance by at most one bin width.

``CategoryCounts`` — exact counts while a column has at most ``max_values`` distinct values;
beyond that a Misra–Gries summary (each count is underestimated by at most
``total / (max_values + 1)``, and every value above that share is kept) plus a KMV sketch of
the distinct count (relative standard error about ``1 / sqrt(kmv_size − 2)``, 3 % for the
default 1024).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

_MIN_EXPONENT = -1074  # 2**-1074 is the smallest positive float64
_HASH_SPACE = float(2**64)


def _grid_exponent(low: float, high: float, max_bins: int) -> int:
    """The smallest power-of-two bin width at which ``[low, high]`` fits in ``max_bins`` bins.

    >>> _grid_exponent(0.0, 1.0, 4)
    -1
    """
    largest = max(abs(low), abs(high))
    # below one unit in the last place a finer grid only splits identical values
    floor = math.frexp(largest)[1] - 52 if largest > 0 else _MIN_EXPONENT
    span = high - low
    if span <= 0:
        return floor
    exponent = math.ceil(math.log2(span / max_bins))
    while _bin_index(high, exponent) - _bin_index(low, exponent) + 1 > max_bins:
        exponent += 1
    return max(exponent, floor)


def _bin_index(value: float, exponent: int) -> int:
    """Index of the bin holding ``value`` on the grid of width ``2**exponent``.

    >>> _bin_index(0.75, -1)
    1
    """
    return math.floor(math.ldexp(value, -exponent))


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
        index = np.floor(np.ldexp(values, -exponent)).astype(np.int64) - offset
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
        index = (np.arange(self.counts.size, dtype=np.int64) + self.offset) >> shift
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
        exponent = max(self.exponent, other.exponent, _grid_exponent(low, high, self.max_bins))
        left, right = self.coarsen(exponent), other.coarsen(exponent)
        offset = min(left.offset, right.offset)
        size = max(left.offset + left.counts.size, right.offset + right.counts.size) - offset
        counts = np.zeros(size, dtype=np.int64)
        counts[left.offset - offset : left.offset - offset + left.counts.size] += left.counts
        counts[right.offset - offset : right.offset - offset + right.counts.size] += right.counts
        return NumericHistogram(exponent, offset, counts, self.max_bins)

    def sparse(self) -> tuple[np.ndarray, np.ndarray]:
        """Absolute indices and counts of the non-empty bins.

        >>> NumericHistogram(0, 3, np.array([2, 0, 1])).sparse()[0].tolist()
        [3, 5]
        """
        nonzero = np.flatnonzero(self.counts)
        return nonzero + self.offset, self.counts[nonzero]

    def cdf(self, points: np.ndarray) -> np.ndarray:
        """Share of values ``<= points``, linear inside a bin (exact at bin edges).

        >>> NumericHistogram(0, 0, np.array([1, 1])).cdf(np.array([0.5, 1.0, 2.0])).tolist()
        [0.25, 0.5, 1.0]
        """
        index, counts = self.sparse()
        if counts.size == 0:
            return np.zeros(np.shape(points))
        below = np.concatenate([[0], np.cumsum(counts)])
        bins = np.floor(np.ldexp(points, -self.exponent))
        position = np.searchsorted(index, bins, side="left")
        inside = (position < index.size) & (index[np.minimum(position, index.size - 1)] == bins)
        fraction = np.ldexp(points, -self.exponent) - bins
        within = np.where(inside, counts[np.minimum(position, index.size - 1)] * fraction, 0.0)
        return (below[position] + within) / below[-1]

    def quantiles(self, qs: np.ndarray, low: float, high: float) -> np.ndarray:
        """Values at the shares ``qs``, linear inside a bin, clipped to ``[low, high]``.

        >>> NumericHistogram(0, 0, np.array([1, 1])).quantiles(np.array([0.5]), 0.0, 2.0)
        array([1.])
        """
        cumulative = np.concatenate([[0], np.cumsum(self.counts)])
        edges = (np.arange(cumulative.size) + self.offset) * self.width
        unique, first = np.unique(cumulative, return_index=True)
        targets = np.asarray(qs, dtype=float) * cumulative[-1]
        return np.clip(np.interp(targets, unique, edges[first]), low, high)

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


def hash_values(values: np.ndarray) -> np.ndarray:
    """Stable 64-bit hashes of category values (the same in every process).

    >>> hash_values(np.array(["a"], dtype=object)).dtype
    dtype('uint64')
    """
    return pd.util.hash_array(np.asarray(values, dtype=object))


@dataclass(frozen=True)
class CategoryCounts:
    """Counts of category values: exact up to ``max_values`` distinct, then Misra–Gries.

    >>> c = CategoryCounts.from_counts(np.array(["a", "b"]), np.array([3, 1]))
    >>> c.exact, c.distinct, c.top(1)
    (True, 2, [('a', 3)])
    """

    values: tuple[str, ...] = ()
    counts: tuple[int, ...] = ()
    total: int = 0
    exact: bool = True
    kmv: tuple[int, ...] = ()  # smallest distinct hashes, kept once counts are not exact
    max_values: int = 1000
    kmv_size: int = 1024

    @classmethod
    def from_counts(
        cls, values: np.ndarray, counts: np.ndarray, *, max_values: int = 1000, kmv_size: int = 1024
    ) -> CategoryCounts:
        """Summary of distinct ``values`` seen ``counts`` times.

        >>> CategoryCounts.from_counts(np.array(["x"]), np.array([2])).total
        2
        """
        counts = np.asarray(counts, dtype=np.int64)
        total = int(counts.sum())
        if len(values) <= max_values:
            order = np.argsort(-counts, kind="stable")
            kept = tuple(str(v) for v in np.asarray(values, dtype=object)[order])
            return cls(
                kept, tuple(int(c) for c in counts[order]), total, True, (), max_values, kmv_size
            )
        kmv = _smallest(hash_values(values), kmv_size)
        return _reduce(np.asarray(values, dtype=object), counts, total, kmv, max_values, kmv_size)

    @property
    def distinct(self) -> int:
        """Distinct values: exact, or the KMV estimate once over ``max_values``."""
        if self.exact:
            return len(self.values)
        if len(self.kmv) < self.kmv_size:
            return len(self.kmv)
        return round((self.kmv_size - 1) / (self.kmv[-1] / _HASH_SPACE))

    @property
    def tracked(self) -> int:
        """Rows whose value is counted in ``counts`` (all rows when exact)."""
        return sum(self.counts)

    def top(self, k: int) -> list[tuple[str, int]]:
        """The ``k`` most frequent values with their counts (lower bounds when not exact)."""
        return list(zip(self.values[:k], self.counts[:k]))

    def as_dict(self) -> dict[str, int]:
        """Value → count."""
        return dict(zip(self.values, self.counts))

    def merge(self, other: CategoryCounts) -> CategoryCounts:
        """Counts of both inputs (exact while the union has at most ``max_values`` values).

        >>> a = CategoryCounts.from_counts(np.array(["x"]), np.array([1]))
        >>> a.merge(a).as_dict()
        {'x': 2}
        """
        joined = self.as_dict()
        for value, count in zip(other.values, other.counts):
            joined[value] = joined.get(value, 0) + count
        values = np.array(list(joined), dtype=object)
        counts = np.fromiter(joined.values(), dtype=np.int64, count=len(joined))
        total = self.total + other.total
        if self.exact and other.exact and len(joined) <= self.max_values:
            return CategoryCounts.from_counts(
                values, counts, max_values=self.max_values, kmv_size=self.kmv_size
            )
        hashes = [
            np.array(
                s.kmv if not s.exact else hash_values(np.array(s.values, dtype=object)),
                dtype=np.uint64,
            )
            for s in (self, other)
        ]
        kmv = _smallest(np.concatenate(hashes), self.kmv_size)
        return _reduce(values, counts, total, kmv, self.max_values, self.kmv_size)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``from_dict`` reads it back."""
        data: dict[str, Any] = {
            "values": list(self.values),
            "counts": list(self.counts),
            "total": self.total,
            "exact": self.exact,
            "max_values": self.max_values,
            "kmv_size": self.kmv_size,
        }
        if not self.exact:
            data["kmv"] = [str(h) for h in self.kmv]  # decimal strings: JSON has no uint64
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CategoryCounts:
        """Read what ``to_dict`` wrote."""
        return cls(
            tuple(data["values"]),
            tuple(int(c) for c in data["counts"]),
            int(data["total"]),
            bool(data["exact"]),
            tuple(int(h) for h in data.get("kmv", ())),
            int(data["max_values"]),
            int(data["kmv_size"]),
        )


def _smallest(hashes: np.ndarray, size: int) -> tuple[int, ...]:
    """The ``size`` smallest distinct hashes, ascending."""
    return tuple(int(h) for h in np.unique(hashes)[:size])


def _reduce(
    values: np.ndarray,
    counts: np.ndarray,
    total: int,
    kmv: tuple[int, ...],
    max_values: int,
    kmv_size: int,
) -> CategoryCounts:
    """Misra–Gries step: subtract the ``(max_values + 1)``-th largest count, keep positives."""
    if counts.size > max_values:
        cut = np.partition(counts, counts.size - max_values - 1)[counts.size - max_values - 1]
        keep = counts > cut
        values, counts = values[keep], counts[keep] - cut
    order = np.argsort(-counts, kind="stable")
    kept = tuple(str(v) for v in values[order])
    return CategoryCounts(
        kept, tuple(int(c) for c in counts[order]), total, False, kmv, max_values, kmv_size
    )
