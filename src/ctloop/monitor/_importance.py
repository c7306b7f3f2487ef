"""Drift that matters to the model: time-index columns left out, and drifted features
weighed by their share of the model's importance.

A column that counts time (a datetime, ``time_hour``, or a number that grows with event
time: ``year``, a row counter) drifts in every window by construction, so it is left
out of the drift and skew tests and the report names it. A time of day
(``sched_dep_time``, ``hour``) restarts every day, so it stays a feature, whatever its
name. A drifted feature counts toward the
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

    from ctloop.data import DatasetStatistics

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
    frame: pd.DataFrame,
    features: Sequence[str],
    declared: Sequence[str] = (),
    *,
    before: DatasetStatistics | None = None,
) -> list[str]:
    """The ``features`` of ``frame`` that index time: ``declared`` ones, datetimes (or
    text that reads as dates), and numeric columns that grow with event time.

    A numeric column grows with event time when, rows in event order (``event_time``,
    else ``timestamp``, else as logged), it never goes down over the window and its
    smallest value is no lower than the largest of ``before`` (the previous window's
    or the training statistics). That holds for ``year`` or a row counter, never for a
    time of day such as ``sched_dep_time`` or ``hour``, which restart every day. To
    count, such a column must also be an integer with a distinct value for at least
    every other row (a counter), or carry a time name (``year``, ``month``) and either
    move on from ``before`` or, without it, hold one value; a name alone is not
    enough."""

    found = [f for f in features if f in declared]
    ordered = _event_order(frame)
    for name in features:
        if name in found or name not in frame.columns:
            continue
        if _indexes_time(name, ordered[name], before):
            found.append(name)
    return found


def _event_order(frame: pd.DataFrame) -> pd.DataFrame:
    for column in ("event_time", "timestamp"):
        if column in frame.columns:
            return frame.sort_values(column, kind="stable")
    return frame


def _indexes_time(name: str, values: pd.Series, before: DatasetStatistics | None) -> bool:
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return _reads_as_dates(values)
    clean = values.dropna()
    if clean.empty or not clean.is_monotonic_increasing:
        return False
    beyond = _beyond(name, clean, before)
    if beyond is False:
        return False
    counter = clean.nunique() >= max(_MIN_DISTINCT, len(clean) // 2)
    if pd.api.types.is_integer_dtype(values) and counter:
        return True
    # a few calendar values in order (month, day of week) need an earlier window to
    # show they move on; alone, only a constant one (the year) counts
    return is_time_name(name) and (beyond is True or clean.nunique() == 1)


def _reads_as_dates(values: pd.Series) -> bool:
    import pandas as pd

    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        return False
    sample = values.dropna().astype(str).head(20)
    if sample.empty or not sample.str.contains(r"\d[-/:]\d", regex=True).all():
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().all())


def _beyond(name: str, values: pd.Series, before: DatasetStatistics | None) -> bool | None:
    """Whether ``values`` start no lower than where ``before`` ended (None without it)."""
    if before is None or name not in before:
        return None
    numeric = before[name].numeric
    if numeric is None or numeric.max is None:
        return None
    return bool(float(values.min()) >= numeric.max)


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
