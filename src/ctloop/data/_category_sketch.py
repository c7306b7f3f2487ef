"""A mergeable summary of a categorical column whose size does not grow with the rows.

``CategoryCounts`` — exact counts while a column has at most ``max_values`` distinct values;
beyond that a Misra–Gries summary (each count is underestimated by at most
``total / (max_values + 1)``, and every value above that share is kept) plus a KMV sketch of
the distinct count (relative standard error about ``1 / sqrt(kmv_size − 2)``, 3 % for the
default 1024).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

_HASH_SPACE = float(2**64)


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
        max_values = min(self.max_values, other.max_values)
        kmv_size = min(self.kmv_size, other.kmv_size)
        if self.exact and other.exact and len(joined) <= max_values:
            return CategoryCounts.from_counts(
                values, counts, max_values=max_values, kmv_size=kmv_size
            )
        hashes = [side.distinct_hashes() for side in (self, other)]
        kmv = _smallest(np.concatenate(hashes), kmv_size)
        return _reduce(values, counts, total, kmv, max_values, kmv_size)

    def distinct_hashes(self) -> np.ndarray:
        """Hashes of the distinct values: all of them when exact, else the KMV sketch's."""
        if self.exact:
            return hash_values(np.array(self.values, dtype=object))
        return np.array(self.kmv, dtype=np.uint64)

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
