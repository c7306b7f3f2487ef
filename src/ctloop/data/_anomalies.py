"""Checking data, or its statistics, against a schema.

Each ``Anomaly`` names the column, what the schema expected, what the data showed, and a
severity. Kinds and their default severity:

=====================  ========  ===================================================
kind                   severity  when
=====================  ========  ===================================================
``too_few_rows``       error     fewer rows than ``Schema.min_rows`` (empty data too)
``missing_column``     error     a required column is absent
``unexpected_column``  warning   a column the schema does not list (or not for this
                                 environment)
``type_mismatch``      error     another type than the schema's (int passes as float)
``missing_values``     error     missing share above ``max_missing_fraction``
``out_of_domain``      error     share of values outside ``domain`` above
                                 ``max_out_of_domain_fraction``
``out_of_range``       error     a value below ``min`` or above ``max``
``nan`` / ``inf``      error     NaN or ±inf where not allowed
=====================  ========  ===================================================

Pass ``severities={"unexpected_column": "error"}`` to ``validate`` to change them. Domain
checks are exact while a column has at most ``max_values`` distinct values (see
``compute_statistics``); beyond that, values the summary no longer tracks count as outside
the domain, so the share is an upper bound.

>>> import pandas as pd
>>> from ctloop.data import infer_schema
>>> from ctloop.data import compute_statistics
>>> train = pd.DataFrame({"c": ["a", "b"], "x": [1.0, 2.0]})
>>> schema = infer_schema(compute_statistics(train))
>>> validate(train, schema).ok
True
>>> [a.kind for a in validate(pd.DataFrame({"c": ["z"], "x": [9.0]}), schema)]
['out_of_domain', 'out_of_range']
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ctloop.data._schema import ColumnSchema, Schema
from ctloop.data._statistics import ColumnStatistics, DatasetStatistics, compute_statistics
from ctloop.errors import AnomaliesFoundError, SchemaError

SEVERITIES = ("error", "warning")
FORMAT_VERSION = 1
_WARNINGS = ("unexpected_column",)


@dataclass(frozen=True)
class Anomaly:
    """One way the data breaks its schema.

    >>> Anomaly("age", "out_of_range", "values in [0, 120]", "max 130", "error").description
    "column 'age': out_of_range: expected values in [0, 120], saw max 130"
    """

    column: str | None  # None for data-set level anomalies
    kind: str
    expected: str
    seen: str
    severity: str = "error"

    @property
    def description(self) -> str:
        """A sentence for people."""
        where = f"column {self.column!r}" if self.column is not None else "data set"
        return f"{where}: {self.kind}: expected {self.expected}, saw {self.seen}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``from_dict`` reads it back."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Anomaly:
        """Read what ``to_dict`` wrote."""
        return cls(**data)


@dataclass(frozen=True)
class Anomalies:
    """Everything ``validate`` found; ``ok`` when no anomaly is an error.

    >>> Anomalies(()).ok
    True
    """

    __ctloop_artifact__ = "Anomalies"  # artifact type, see ctloop.artifacts.records

    items: tuple[Anomaly, ...]

    def __iter__(self) -> Iterator[Anomaly]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def errors(self) -> tuple[Anomaly, ...]:
        """Anomalies with severity ``error``."""
        return tuple(a for a in self.items if a.severity == "error")

    @property
    def warnings(self) -> tuple[Anomaly, ...]:
        """Anomalies with severity ``warning``."""
        return tuple(a for a in self.items if a.severity == "warning")

    @property
    def ok(self) -> bool:
        """True when nothing is an error (warnings may remain)."""
        return not self.errors

    def raise_for_errors(self) -> None:
        """Raise ``AnomaliesFoundError`` listing the errors, if there are any.

        >>> Anomalies(()).raise_for_errors()
        """
        if self.errors:
            lines = "; ".join(a.description for a in self.errors)
            raise AnomaliesFoundError(
                f"the data breaks its schema in {len(self.errors)} way(s): {lines}; fix the "
                "data, or edit the schema if the change is expected",
                anomalies=self,
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``from_dict`` reads it back."""
        return {"version": FORMAT_VERSION, "anomalies": [a.to_dict() for a in self.items]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Anomalies:
        """Read what ``to_dict`` wrote."""
        return cls(tuple(Anomaly.from_dict(a) for a in data["anomalies"]))


def validate(
    data: Any,
    schema: Schema,
    *,
    environment: str | None = None,
    severities: Mapping[str, str] | None = None,
) -> Anomalies:
    """Anomalies of ``data`` (or its ``DatasetStatistics``) against ``schema``.

    ``environment`` (e.g. ``"serving"``) skips the columns the schema marks as absent
    there; ``severities`` maps an anomaly kind to ``"error"`` or ``"warning"``.

    >>> import pandas as pd
    >>> schema = Schema((ColumnSchema("x", "int"),))
    >>> [a.kind for a in validate(pd.DataFrame({"y": [1]}), schema)]
    ['missing_column', 'unexpected_column']
    """
    if environment is not None and schema.environments and environment not in schema.environments:
        raise SchemaError(
            f"environment {environment!r} is not in the schema's environments "
            f"{list(schema.environments)}; add it to the schema or pick one of those"
        )
    stats = data if isinstance(data, DatasetStatistics) else compute_statistics(data)
    found = _check_rows(stats, schema)
    for column in schema.columns:
        found += _check_column(column, stats, environment)
    found += _unexpected(stats, schema, environment)
    return Anomalies(tuple(_with_severity(a, severities or {}) for a in found))


def _with_severity(anomaly: Anomaly, severities: Mapping[str, str]) -> Anomaly:
    """The anomaly with its severity overridden where ``severities`` says so."""
    severity = severities.get(anomaly.kind, anomaly.severity)
    if severity not in SEVERITIES:
        raise SchemaError(f"severity {severity!r} for {anomaly.kind!r} is not one of {SEVERITIES}")
    return replace(anomaly, severity=severity)


def _check_rows(stats: DatasetStatistics, schema: Schema) -> list[Anomaly]:
    """Data set level checks."""
    if stats.num_rows >= schema.min_rows and stats.num_rows > 0:
        return []
    return [
        Anomaly(
            None,
            "too_few_rows",
            f"at least {max(schema.min_rows, 1)} rows",
            f"{stats.num_rows} rows",
        )
    ]


def _unexpected(stats: DatasetStatistics, schema: Schema, environment: str | None) -> list[Anomaly]:
    """Columns the schema does not expect here."""
    found = []
    for name in stats.names:
        if name not in schema:
            found.append(
                Anomaly(name, "unexpected_column", "no such column", "the column", "warning")
            )
        elif not schema[name].expected_in(environment):
            found.append(
                Anomaly(
                    name,
                    "unexpected_column",
                    f"absent in environment {environment!r}",
                    "the column",
                    "warning",
                )
            )
    return found


def _check_column(
    column: ColumnSchema, stats: DatasetStatistics, environment: str | None
) -> list[Anomaly]:
    """Everything the schema says about one column."""
    if not column.expected_in(environment):
        return []
    if column.name not in stats:
        if not column.required:
            return []
        return [
            Anomaly(column.name, "missing_column", "the column to be present", "no such column")
        ]
    seen = stats[column.name]
    if not _types_match(column.type, seen.type):
        return [Anomaly(column.name, "type_mismatch", f"type {column.type}", f"type {seen.type}")]
    return _check_missing(column, seen) + _check_numbers(column, seen) + _check_domain(column, seen)


def _types_match(expected: str, seen: str) -> bool:
    """Same type, an int where a float is expected, or an all-missing column."""
    return expected == seen or seen == "null" or (expected, seen) == ("float", "int")


def _check_missing(column: ColumnSchema, seen: ColumnStatistics) -> list[Anomaly]:
    """Missing share against ``max_missing_fraction``."""
    if seen.missing_fraction <= column.max_missing_fraction:
        return []
    expected = f"at most {column.max_missing_fraction:.4g} of rows missing"
    return [
        Anomaly(
            column.name,
            "missing_values",
            expected,
            f"{seen.missing_fraction:.4g} ({seen.missing} rows)",
        )
    ]


def _check_numbers(column: ColumnSchema, seen: ColumnStatistics) -> list[Anomaly]:
    """Range, NaN and ±inf checks."""
    numeric = seen.numeric
    if numeric is None:
        return []
    found = []
    low, high = numeric.min, numeric.max
    too_low = column.min is not None and low is not None and low < column.min
    too_high = column.max is not None and high is not None and high > column.max
    if too_low or too_high:
        found.append(
            Anomaly(
                column.name,
                "out_of_range",
                f"values in [{column.min}, {column.max}]",
                f"values in [{low}, {high}]",
            )
        )
    if numeric.nan and not column.allow_nan:
        found.append(Anomaly(column.name, "nan", "no NaN", f"{numeric.nan} NaN"))
    if numeric.inf and not column.allow_inf:
        found.append(Anomaly(column.name, "inf", "no infinite values", f"{numeric.inf} infinite"))
    return found


def _check_domain(column: ColumnSchema, seen: ColumnStatistics) -> list[Anomaly]:
    """Share of values outside the domain against ``max_out_of_domain_fraction``."""
    categories = seen.categories
    if column.domain is None or categories is None or categories.total == 0:
        return []
    allowed = set(column.domain)
    inside = sum(c for v, c in zip(categories.values, categories.counts) if v in allowed)
    share = 1 - inside / categories.total
    if share <= column.max_out_of_domain_fraction:
        return []
    examples = [v for v in categories.values if v not in allowed][:5]
    expected = f"at most {column.max_out_of_domain_fraction:.4g} of values outside {len(allowed)} known values"
    return [
        Anomaly(column.name, "out_of_domain", expected, f"{share:.4g} outside, e.g. {examples}")
    ]
