"""Slices of a held-out set: by column value, by numeric bins, or by the top-N values.

A ``SliceSpec`` names a column and how to cut it; ``slice_rows`` yields each slice's value
(a label such as ``"UA"``, ``"[0, 500)"`` or ``"other"``) and the positions of its rows.
Missing values form the slice ``"missing"``.

>>> import pandas as pd
>>> data = pd.DataFrame({"carrier": ["UA", "AA", "UA"], "distance": [100.0, 700.0, 900.0]})
>>> [(v, rows.tolist()) for v, rows in slice_rows(data, SliceSpec("carrier"))]
[('AA', [1]), ('UA', [0, 2])]
>>> [v for v, _ in slice_rows(data, SliceSpec("distance", bins=[0, 500, float("inf")]))]
['[0, 500)', '[500, inf)']
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ctloop.errors import EvaluationError

MISSING = "missing"
OTHER = "other"
OUT_OF_BINS = "out of bins"


@dataclass(frozen=True)
class SliceSpec:
    """How to cut the data into slices.

    ``bins`` (increasing edges, ``[lower, upper)``) cuts a numeric column; ``top`` keeps
    the ``top`` most frequent values and puts the rest into ``"other"``; neither gives one
    slice per value. Slices with fewer than ``min_rows`` rows are reported but not scored.

    >>> SliceSpec("distance", bins=[0, 500, 1000]).name
    'distance'
    """

    column: str
    bins: Sequence[float] | None = None
    top: int | None = None
    min_rows: int = 30
    label: str | None = None  # the slice's name in reports; the column by default

    def __post_init__(self) -> None:
        if self.bins is not None:
            edges = [float(b) for b in self.bins]
            if len(edges) < 2 or any(a >= b for a, b in itertools.pairwise(edges)):
                raise EvaluationError(
                    f"slice on column {self.column!r} has bins {list(self.bins)}; give at "
                    "least two strictly increasing edges, e.g. [0, 500, inf]"
                )
            object.__setattr__(self, "bins", tuple(edges))
        if self.bins is not None and self.top is not None:
            raise EvaluationError(
                f"slice on column {self.column!r} sets both bins and top; choose one"
            )
        if self.top is not None and self.top < 1:
            raise EvaluationError(
                f"slice on column {self.column!r} has top={self.top}; use 1 or more"
            )

    @property
    def name(self) -> str:
        """The slice's name in reports."""
        return self.label or self.column

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``from_dict`` reads it back."""
        bins = None if self.bins is None else [_edge_text(b) for b in self.bins]
        return {**self.__dict__, "bins": bins}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SliceSpec:
        """Read what ``to_dict`` wrote."""
        bins = data.get("bins")
        return cls(**{**data, "bins": None if bins is None else [float(b) for b in bins]})


@dataclass(frozen=True)
class SliceResult:
    """The metrics of one slice value, or why it was skipped.

    >>> SliceResult("UA", 3, skipped="too few rows").scored
    False
    """

    value: str
    rows: int
    metrics: dict[str, float | None] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    skipped: str | None = None

    @property
    def scored(self) -> bool:
        """Whether metrics were computed for this slice."""
        return self.skipped is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``from_dict`` reads it back."""
        return {**self.__dict__, "metrics": dict(self.metrics), "notes": dict(self.notes)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SliceResult:
        """Read what ``to_dict`` wrote."""
        return cls(**data)


def slice_rows(data: pd.DataFrame, spec: SliceSpec) -> Iterator[tuple[str, np.ndarray]]:
    """Each slice value of ``spec`` and the positions of its rows, in label order.

    >>> import pandas as pd
    >>> data = pd.DataFrame({"o": ["a", "a", "b", "c"]})
    >>> [(v, len(rows)) for v, rows in slice_rows(data, SliceSpec("o", top=1))]
    [('a', 2), ('other', 2)]
    """
    if spec.column not in data.columns:
        raise EvaluationError(
            f"slice column {spec.column!r} is not in the data (columns: "
            f"{', '.join(map(str, data.columns))}); fix the SliceSpec or add the column"
        )
    labels = _labels(data[spec.column], spec)
    for value in _ordered(labels, spec):
        yield value, np.flatnonzero(labels == value)


def _labels(column: pd.Series, spec: SliceSpec) -> np.ndarray:
    if spec.bins is not None:
        return _bin_labels(column, tuple(spec.bins))
    missing = column.isna().to_numpy()
    labels = np.where(missing, MISSING, column.astype(str).to_numpy()).astype(object)
    if spec.top is not None:
        kept = column[~missing].astype(str).value_counts().index[: spec.top]
        labels[~missing & ~np.isin(labels, list(kept))] = OTHER
    return labels


def _bin_labels(column: pd.Series, edges: tuple[float, ...]) -> np.ndarray:
    try:
        values = pd.to_numeric(column).to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise EvaluationError(
            f"slice column {column.name!r} has type {column.dtype} and cannot be cut into "
            "bins; slice it by value instead (no bins)"
        ) from exc
    names = _bin_names(edges)
    index = np.searchsorted(np.asarray(edges), values, side="right") - 1
    labels = np.full(len(values), OUT_OF_BINS, dtype=object)
    inside = (index >= 0) & (index < len(names))
    labels[inside] = np.asarray(names, dtype=object)[index[inside]]
    labels[np.isnan(values)] = MISSING
    return labels


def _ordered(labels: np.ndarray, spec: SliceSpec) -> list[str]:
    present = set(labels.tolist())
    if spec.bins is not None:
        order = _bin_names(tuple(spec.bins))
        return [v for v in order + [OUT_OF_BINS, MISSING] if v in present]
    tail = [v for v in ((OTHER,) if spec.top is not None else ()) + (MISSING,) if v in present]
    return sorted(present - set(tail)) + tail


def _bin_names(edges: tuple[float, ...]) -> list[str]:
    return [f"[{_edge_text(a)}, {_edge_text(b)})" for a, b in itertools.pairwise(edges)]


def _edge_text(edge: float) -> str:
    if math.isinf(edge):
        return "inf" if edge > 0 else "-inf"
    return f"{edge:g}"
