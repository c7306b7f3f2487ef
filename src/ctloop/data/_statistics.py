"""Per-column statistics of a data set that merge without the rows.

Counts, missing values, NaN, ±inf, zeros, min, max, mean and variance merge exactly (the
moments with Chan's parallel formula, up to float rounding); quantiles and histograms come
from a ``NumericHistogram`` and category frequencies from ``CategoryCounts`` (error bounds in
``ctloop.data._numeric_sketch`` and ``ctloop.data._category_sketch``). Timestamps and dates are summarised as seconds since the epoch
(UTC). Missing means an Arrow null; pandas turns ``NaN`` in float columns into nulls.

>>> import pandas as pd
>>> stats = compute_statistics(pd.DataFrame({"x": [1.0, 2.0, None], "c": ["a", "b", "a"]}))
>>> stats["x"].missing, stats["x"].numeric.mean, stats["c"].categories.top(1)
(1, 1.5, [('a', 2)])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ctloop.data._category_sketch import CategoryCounts
from ctloop.data._numeric_sketch import Cdf, LogHistogram, NumericHistogram, log_floor
from ctloop.data._tables import DEFAULT_CHUNK_ROWS, iter_tables
from ctloop.errors import StatisticsError

FORMAT_VERSION = 1
NUMERIC_TYPES = ("int", "float", "timestamp")
CATEGORICAL_TYPES = ("string", "bool")
_SECONDS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}


@dataclass(frozen=True)
class NumericStatistics:
    """Summary of a numeric (or timestamp) column's non-missing values.

    ``count`` counts finite values; min, max, mean, ``std`` (population, ddof=0) and the
    histogram describe those only.

    >>> s = NumericStatistics.from_values(np.array([0.0, 2.0, np.nan]))
    >>> s.count, s.nan, s.zeros, s.mean, s.std
    (2, 1, 1, 1.0, 1.0)
    """

    count: int
    nan: int
    inf: int
    zeros: int
    min: float | None
    max: float | None
    mean: float
    m2: float  # sum of squared deviations from the mean
    histogram: NumericHistogram
    log_histogram: LogHistogram

    @classmethod
    def from_values(cls, values: np.ndarray, *, max_bins: int = 2048) -> NumericStatistics:
        """Statistics of a float array (NaN and ±inf are counted, not summarised)."""
        finite = np.isfinite(values)
        nan = int(np.count_nonzero(np.isnan(values)))
        inf = values.size - nan - int(np.count_nonzero(finite))
        if nan or inf:
            values = values[finite]
        if values.size == 0:
            empty = NumericHistogram(max_bins=max_bins)
            return cls(0, nan, inf, 0, None, None, 0.0, 0.0, empty, LogHistogram())
        mean = float(values.mean())
        m2 = float(np.square(values - mean).sum())
        low, high = float(values.min()), float(values.max())
        histogram = NumericHistogram.from_values(values, max_bins=max_bins)
        log_histogram = LogHistogram.from_values(values, floor=log_floor(low, high))
        zeros = values.size - int(np.count_nonzero(values))
        return cls(values.size, nan, inf, zeros, low, high, mean, m2, histogram, log_histogram)

    @property
    def std(self) -> float:
        """Population standard deviation of the finite values (0 when there are none)."""
        return math.sqrt(self.m2 / self.count) if self.count else 0.0

    @cached_property
    def cdf(self) -> Cdf:
        """The values' CDF, exact at both histograms' bin edges (needs ``count > 0``)."""
        assert self.min is not None and self.max is not None
        parts = [self.histogram.intervals(), self.log_histogram.intervals()]
        return Cdf.from_intervals(parts, self.min, self.max)

    def quantiles(self, qs: list[float] | np.ndarray) -> list[float]:
        """Approximate quantiles (error bound in ``ctloop.data._numeric_sketch``).

        >>> [round(q, 1) for q in NumericStatistics.from_values(np.arange(101.0)).quantiles([0.5])]
        [50.0]
        """
        if self.count == 0:
            return [math.nan for _ in qs]
        return self.cdf.quantiles(np.asarray(qs, dtype=float)).tolist()

    def merge(self, other: NumericStatistics) -> NumericStatistics:
        """Statistics of both inputs' values (exact counts, Chan's formula for moments)."""
        count = self.count + other.count
        if count == 0 or other.count == 0 or self.count == 0:
            base = self if other.count == 0 else other
            return replace(base, nan=self.nan + other.nan, inf=self.inf + other.inf)
        assert self.min is not None and self.max is not None
        assert other.min is not None and other.max is not None
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / count
        m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / count
        low, high = min(self.min, other.min), max(self.max, other.max)
        histogram = self.histogram.merge(other.histogram, low, high)
        log_histogram = self.log_histogram.merge(other.log_histogram, log_floor(low, high))
        nan, inf, zeros = self.nan + other.nan, self.inf + other.inf, self.zeros + other.zeros
        return NumericStatistics(
            count, nan, inf, zeros, low, high, mean, m2, histogram, log_histogram
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``from_dict`` reads it back."""
        data = {k: getattr(self, k) for k in ("count", "nan", "inf", "zeros", "min", "max")}
        data.update(mean=self.mean, std=self.std, m2=self.m2)
        histograms = {"histogram": self.histogram.to_dict()}
        return data | histograms | {"log_histogram": self.log_histogram.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NumericStatistics:
        """Read what ``to_dict`` wrote."""
        fields = {k: data[k] for k in ("count", "nan", "inf", "zeros", "min", "max", "mean", "m2")}
        histogram = NumericHistogram.from_dict(data["histogram"])
        return cls(
            **fields,
            histogram=histogram,
            log_histogram=LogHistogram.from_dict(data["log_histogram"]),
        )


@dataclass(frozen=True)
class ColumnStatistics:
    """Statistics of one column.

    ``type`` is one of ``int``, ``float``, ``timestamp`` (these carry ``numeric``),
    ``string``, ``bool`` (these carry ``categories``) or the Arrow type's name.

    >>> import pandas as pd
    >>> compute_statistics(pd.DataFrame({"b": [True, False, True]}))["b"].categories.as_dict()
    {'true': 2, 'false': 1}
    """

    name: str
    type: str
    count: int  # rows, missing included
    missing: int
    numeric: NumericStatistics | None = None
    categories: CategoryCounts | None = None

    @property
    def present(self) -> int:
        """Rows with a value."""
        return self.count - self.missing

    @property
    def missing_fraction(self) -> float:
        """Share of rows without a value (0 for an empty column)."""
        return self.missing / self.count if self.count else 0.0

    def merge(self, other: ColumnStatistics) -> ColumnStatistics:
        """Statistics of the column over both inputs' rows."""
        kind = _merged_type(self, other)
        numeric = _merge_optional(self.numeric, other.numeric)
        categories = _merge_optional(self.categories, other.categories)
        count, missing = self.count + other.count, self.missing + other.missing
        return ColumnStatistics(self.name, kind, count, missing, numeric, categories)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``from_dict`` reads it back."""
        data: dict[str, Any] = {"name": self.name, "type": self.type, "count": self.count}
        data["missing"] = self.missing
        if self.numeric is not None:
            data["numeric"] = self.numeric.to_dict()
        if self.categories is not None:
            data["categories"] = self.categories.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnStatistics:
        """Read what ``to_dict`` wrote."""
        numeric = data.get("numeric")
        categories = data.get("categories")
        return cls(
            data["name"],
            data["type"],
            int(data["count"]),
            int(data["missing"]),
            NumericStatistics.from_dict(numeric) if numeric is not None else None,
            CategoryCounts.from_dict(categories) if categories is not None else None,
        )


@dataclass(frozen=True)
class DatasetStatistics:
    """Statistics of every column of a data set; merge two with ``merge_statistics``.

    >>> import pandas as pd
    >>> stats = compute_statistics(pd.DataFrame({"x": [1, 2]}))
    >>> stats.num_rows, stats.names
    (2, ('x',))
    """

    __ctloop_artifact__ = "Statistics"  # artifact type, see ctloop.artifacts.records

    num_rows: int
    columns: tuple[ColumnStatistics, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Column names, in data order."""
        return tuple(c.name for c in self.columns)

    def __getitem__(self, name: str) -> ColumnStatistics:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"no column {name!r} in the statistics; columns: {list(self.names)}")

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def merge(self, other: DatasetStatistics) -> DatasetStatistics:
        """Same as ``merge_statistics(self, other)``."""
        return merge_statistics(self, other)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (size independent of the number of rows).

        >>> import pandas as pd
        >>> compute_statistics(pd.DataFrame({"x": [1]})).to_dict()["version"]
        1
        """
        columns = [c.to_dict() for c in self.columns]
        return {"version": FORMAT_VERSION, "num_rows": self.num_rows, "columns": columns}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetStatistics:
        """Read what ``to_dict`` wrote."""
        version = data.get("version")
        if version != FORMAT_VERSION:
            raise StatisticsError(
                f"statistics have format version {version!r} but this ctloop reads version "
                f"{FORMAT_VERSION}; recompute them with `compute_statistics`"
            )
        columns = tuple(ColumnStatistics.from_dict(c) for c in data["columns"])
        return cls(int(data["num_rows"]), columns)


def compute_statistics(
    data: Any,
    *,
    max_bins: int = 2048,
    max_values: int = 1000,
    kmv_size: int = 1024,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> DatasetStatistics:
    """Statistics of ``data``, read chunk by chunk and merged.

    ``data`` is a pyarrow Table, RecordBatch or RecordBatchReader, a pandas or polars
    DataFrame, or an iterable of those. ``max_bins`` bounds each numeric histogram,
    ``max_values`` the exactly counted categories, ``kmv_size`` the distinct-count sketch.

    >>> import pyarrow as pa
    >>> compute_statistics(pa.table({"x": [0, 3]}))["x"].numeric.max
    3.0
    """
    result: DatasetStatistics | None = None
    for table in iter_tables(data, chunk_rows=chunk_rows):
        chunk = DatasetStatistics(
            table.num_rows,
            tuple(
                _column_statistics(name, table.column(name), max_bins, max_values, kmv_size)
                for name in table.column_names
            ),
        )
        result = chunk if result is None else merge_statistics(result, chunk)
    return result if result is not None else DatasetStatistics(0, ())


def merge_statistics(left: DatasetStatistics, right: DatasetStatistics) -> DatasetStatistics:
    """Statistics of the union of two data sets' rows; both must have the same columns.

    >>> import pandas as pd
    >>> a = compute_statistics(pd.DataFrame({"x": [1.0]}))
    >>> b = compute_statistics(pd.DataFrame({"x": [3.0]}))
    >>> merge_statistics(a, b)["x"].numeric.mean
    2.0
    """
    if set(left.names) != set(right.names):
        only_left = sorted(set(left.names) - set(right.names))
        only_right = sorted(set(right.names) - set(left.names))
        raise StatisticsError(
            f"cannot merge statistics with different columns: only in the first {only_left}, "
            f"only in the second {only_right}; select the same columns in both data sets"
        )
    columns = tuple(column.merge(right[column.name]) for column in left.columns)
    return DatasetStatistics(left.num_rows + right.num_rows, columns)


def column_type(arrow_type: pa.DataType) -> str:
    """The logical type ctloop uses for an Arrow type.

    >>> column_type(pa.int32()), column_type(pa.dictionary(pa.int8(), pa.string()))
    ('int', 'string')
    """
    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "float"
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_dictionary(arrow_type):
        return column_type(arrow_type.value_type)
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return "timestamp"
    if pa.types.is_null(arrow_type):
        return "null"
    return str(arrow_type)


def _column_statistics(
    name: str, array: pa.ChunkedArray, max_bins: int, max_values: int, kmv_size: int
) -> ColumnStatistics:
    """Statistics of one chunk of one column."""
    kind = column_type(array.type)
    base = ColumnStatistics(name, kind, len(array), array.null_count)
    if kind in NUMERIC_TYPES:
        values = _as_float(pc.drop_null(array), kind)
        return replace(base, numeric=NumericStatistics.from_values(values, max_bins=max_bins))
    if kind in CATEGORICAL_TYPES:
        counts = pc.value_counts(pc.drop_null(array).cast(pa.string()))
        values = counts.field("values").to_numpy(zero_copy_only=False)
        found = counts.field("counts").to_numpy(zero_copy_only=False)
        sketch = CategoryCounts.from_counts(values, found, max_values=max_values, kmv_size=kmv_size)
        return replace(base, categories=sketch)
    return base


def _as_float(array: pa.ChunkedArray, kind: str) -> np.ndarray:
    """Values as float64; timestamps and dates as seconds since the epoch."""
    arrow_type = array.type
    if pa.types.is_dictionary(arrow_type):
        return _as_float(array.cast(arrow_type.value_type), kind)
    if kind != "timestamp":
        return np.asarray(array.to_numpy(), dtype=np.float64)
    if pa.types.is_date32(arrow_type):
        return array.cast(pa.int32()).to_numpy().astype(np.float64) * 86400.0
    if pa.types.is_date64(arrow_type):
        return array.cast(pa.int64()).to_numpy().astype(np.float64) / 1e3
    return array.cast(pa.int64()).to_numpy().astype(np.float64) / _SECONDS[arrow_type.unit]


def _merged_type(left: ColumnStatistics, right: ColumnStatistics) -> str:
    """The type of a column seen with ``left.type`` in one batch and ``right.type`` in another."""
    if left.type == right.type or right.type == "null":
        return left.type
    if left.type == "null":
        return right.type
    if {left.type, right.type} == {"int", "float"}:
        return "float"
    raise StatisticsError(
        f"column {left.name!r} has type {left.type} in one batch and {right.type} in another; "
        "cast it to one type before computing statistics"
    )


def _merge_optional(left: Any, right: Any) -> Any:
    """``left.merge(right)`` where both exist, else whichever exists."""
    if left is None or right is None:
        return right if left is None else left
    return left.merge(right)
