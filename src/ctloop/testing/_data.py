"""Data tests: a table holds its schema, has no unexpected nulls, stays in its ranges,
and has not drifted from the training data beyond a threshold.

>>> import pandas as pd
>>> check_no_nulls(pd.DataFrame({"x": [1.0, None]}), ["x"])
Traceback (most recent call last):
...
ctloop.testing._failures.CheckFailed: check no_nulls failed: column 'x' has 1 null of 2 (row 1)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.testing._failures import CheckFailed, describe_rows

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.data import DriftReport, Schema

__all__ = ["check_drift", "check_no_nulls", "check_ranges", "check_schema", "load_schema"]


def load_schema(schema: Schema | str | Path) -> Schema:
    """``schema`` itself, or the schema in the YAML file it names."""
    from ctloop.data import Schema

    if isinstance(schema, Schema):
        return schema
    path = Path(schema)
    if not path.is_file():
        raise FileNotFoundError(f"schema file {path} does not exist")
    return Schema.from_yaml(path.read_text())


def check_schema(
    data: pd.DataFrame, schema: Schema | str | Path, *, environment: str | None = None
) -> None:
    """Raise :class:`CheckFailed` listing every way ``data`` breaks ``schema`` (types,
    missing shares, ranges, domains, row count); warnings are let through.

    >>> check_schema(frame, "schema.yaml", environment="serving")  # doctest: +SKIP
    """
    from ctloop.data import validate

    anomalies = validate(data, load_schema(schema), environment=environment)
    if not anomalies.errors:
        return
    lines = "; ".join(anomaly.description for anomaly in anomalies.errors)
    count = len(anomalies.errors)
    raise CheckFailed("schema", f"{count} anomal{'y' if count == 1 else 'ies'}: {lines}")


def check_no_nulls(data: pd.DataFrame, columns: Sequence[str] | None = None) -> None:
    """Raise :class:`CheckFailed` when a column of ``columns`` (default: all) holds a
    null, naming the column, the count and the rows."""
    problems = []
    for column in columns if columns is not None else list(data.columns):
        _require_column(data, column, "no_nulls")
        missing = data.index[data[column].isna().to_numpy()]
        if len(missing):
            noun = "null" if len(missing) == 1 else "nulls"
            problems.append(
                f"column {column!r} has {len(missing)} {noun} of {len(data)} "
                f"({describe_rows(list(missing))})"
            )
    if problems:
        raise CheckFailed("no_nulls", "; ".join(problems))


def check_ranges(
    data: pd.DataFrame, ranges: Mapping[str, tuple[float | None, float | None]]
) -> None:
    """Raise :class:`CheckFailed` when a value of a column lies outside its
    ``(low, high)`` range (``None``: unbounded), naming the rows and the extreme seen.

    >>> check_ranges(frame, {"age": (0, 120), "price": (0, None)})  # doctest: +SKIP
    """
    problems = []
    for column, (low, high) in ranges.items():
        _require_column(data, column, "ranges")
        values = data[column]
        outside = values.notna() & (
            (values < low if low is not None else False)
            | (values > high if high is not None else False)
        )
        rows = list(data.index[outside.to_numpy()])
        if rows:
            bad = values[outside]
            problems.append(
                f"column {column!r} has {len(rows)} of {len(data)} values outside "
                f"[{_bound(low)}, {_bound(high)}] (min {_plain(bad.min())!r}, max {_plain(bad.max())!r}; "
                f"{describe_rows(rows)})"
            )
    if problems:
        raise CheckFailed("ranges", "; ".join(problems))


def check_drift(
    reference: Any,
    current: Any,
    *,
    max_drifted_share: float = 0.0,
    columns: Sequence[str] | None = None,
) -> DriftReport:
    """Raise :class:`CheckFailed` when more than ``max_drifted_share`` of the columns
    of ``current`` drifted from ``reference`` (tables or ``ctloop.data`` statistics),
    naming each drifted column with its test, statistic and p-value; else return the
    report. ``columns`` limits the test to those columns.
    """
    from ctloop.data import DriftConfig, detect_drift

    config = DriftConfig(columns=tuple(columns)) if columns is not None else None
    report = detect_drift(reference, current, config=config)
    drifted = [column for column in report.columns if column.drifted]
    share = report.drifted_share
    if drifted and share > max_drifted_share:
        details = "; ".join(
            f"{c.column!r} ({c.test} statistic {c.statistic:.3g}"
            + (f", p-value {c.p_value:.3g}" if c.p_value is not None else "")
            + f", threshold {c.threshold:.3g})"
            for c in drifted
        )
        raise CheckFailed(
            "drift",
            f"{len(drifted)} of {len(report.columns)} columns drifted "
            f"(share {share:.2f} > {max_drifted_share:.2f}): {details}",
        )
    return report


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python number it holds (``-1``, not ``np.int64(-1)``)."""
    return value.item() if hasattr(value, "item") else value


def _bound(value: float | None) -> str:
    return "-inf" if value is None else repr(value)


def _require_column(data: pd.DataFrame, column: str, check: str) -> None:
    if column not in data.columns:
        raise CheckFailed(
            check, f"column {column!r} is not in the data (columns: {list(data.columns)})"
        )
