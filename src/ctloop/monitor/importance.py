"""Drift that matters to the model: time-index columns left out, and drifted features
weighed by their share of the model's importance.

A column that counts time (a datetime, or ``year``, ``month``, ``hour``, ``time_hour``,
a monotonic integer) drifts in every window by construction, so it is left out of the
drift and skew tests and the report names it. A drifted feature counts toward the
``drift`` verdict (and so toward retraining) by its share of the model's permutation
importance: when the shares of all drifted features sum to less than
``monitoring: drift_importance`` (0.1 by default), the drift is reported but the window
is ``ok``. A model whose evaluation measured no importance counts every feature fully.

>>> weigh({"columns": [{"column": "wind", "drifted": True}]}, {"wind": 0.01}, 0.1)["counts"]
False
>>> is_time_name("time_hour"), is_time_name("distance")
(True, False)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["is_time_name", "time_index_columns", "weigh"]

_TIME_NAMES = re.compile(
    r"^(?:.*[_\-])?(year|month|day|hour|minute|second|week|weekday|dayofweek|day_of_week"
    r"|quarter|date|time|datetime|timestamp|time_hour|epoch)$"
)
_MIN_DISTINCT = 3  # a monotonic column of one or two values is no clock


def is_time_name(name: str) -> bool:
    """Whether ``name`` reads as a time index (``year``, ``dep_hour``, ``time_hour``)."""
    return bool(_TIME_NAMES.match(name.lower()))


def time_index_columns(
    frame: pd.DataFrame, features: Sequence[str], declared: Sequence[str] = ()
) -> list[str]:
    """The ``features`` of ``frame`` that index time: ``declared`` ones, datetimes,
    integer or date-like columns with a time name, and integer columns that never go
    down over the window (rows in logged order)."""

    found = [f for f in features if f in declared]
    for name in features:
        if name in found or name not in frame.columns:
            continue
        if _indexes_time(name, frame[name]):
            found.append(name)
    return found


def _indexes_time(name: str, values: pd.Series) -> bool:
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    if is_time_name(name) and _numeric_or_date(values):
        return True
    return bool(pd.api.types.is_integer_dtype(values) and _monotonic(values))


def _numeric_or_date(values: pd.Series) -> bool:
    import pandas as pd

    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return True
    sample = values.dropna().astype(str).head(20)
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return len(sample) > 0 and bool(parsed.notna().all())


def _monotonic(values: pd.Series) -> bool:
    clean = values.dropna()
    return clean.nunique() >= max(_MIN_DISTINCT, len(clean) // 2) and bool(
        clean.is_monotonic_increasing
    )


def weigh(
    part: dict[str, Any] | None,
    importance: Mapping[str, float] | None,
    threshold: float,
    *,
    always: Sequence[str] = ("prediction",),
) -> dict[str, Any] | None:
    """``part`` (a drift or skew report as a dict) with each column's ``importance``
    share and, overall, ``drifted_importance`` (the shares of the drifted columns) and
    ``counts``: whether its drift counts toward the verdict. Columns in ``always``
    (the model's output) count fully; without ``importance`` every column does."""
    if part is None:
        return None
    total = 0.0
    for column in part.get("columns", ()):
        name = column["column"]
        share = 1.0 if importance is None or name in always else importance.get(name, 0.0)
        column["importance"] = share
        if column["drifted"]:
            total += share
    drifted = any(c["drifted"] for c in part.get("columns", ()))
    part["drifted_importance"] = total
    part["importance_threshold"] = threshold
    part["weighted"] = importance is not None
    part["counts"] = drifted and (importance is None or total >= threshold)
    return part
