"""What data should look like: a readable, editable, versioned schema document.

A schema is inferred from statistics, saved as YAML, edited by hand and checked with
``ctloop.data.validate``. *Environments* name the contexts data comes from: a column listed
with ``not_in_environments: [serving]`` (the label, typically) is required in training data
but expected to be absent when validating with ``environment="serving"``.

>>> import pandas as pd
>>> from ctloop.data import compute_statistics
>>> schema = infer_schema(compute_statistics(pd.DataFrame({"c": ["a", "b"]})))
>>> schema["c"].domain
('a', 'b')
>>> Schema.from_yaml(schema.to_yaml()) == schema
True
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import yaml

from ctloop.data._statistics import ColumnStatistics, DatasetStatistics
from ctloop.errors import SchemaError

FORMAT_VERSION = 1


@dataclass(frozen=True)
class ColumnSchema:
    """Expectations for one column; every threshold can be edited per column.

    - ``required``: a missing column is an error (outside ``not_in_environments``).
    - ``max_missing_fraction``: share of rows allowed without a value.
    - ``domain`` / ``max_out_of_domain_fraction``: allowed categories, and the share of
      values outside them that is tolerated.
    - ``min`` / ``max``: allowed numeric range (seconds since the epoch for timestamps).
    - ``allow_nan`` / ``allow_inf``: whether NaN or ±inf may appear.

    >>> ColumnSchema("age", "int", min=0, max=120).required
    True
    """

    name: str
    type: str
    required: bool = True
    max_missing_fraction: float = 0.0
    domain: tuple[str, ...] | None = None
    max_out_of_domain_fraction: float = 0.0
    min: float | None = None
    max: float | None = None
    allow_nan: bool = False
    allow_inf: bool = False
    not_in_environments: tuple[str, ...] = ()

    def expected_in(self, environment: str | None) -> bool:
        """Whether this column belongs in data of ``environment`` (None: any).

        >>> ColumnSchema("label", "int", not_in_environments=("serving",)).expected_in("serving")
        False
        """
        return environment is None or environment not in self.not_in_environments

    def to_dict(self) -> dict[str, Any]:
        """The fields that differ from their defaults (keeps YAML short)."""
        data: dict[str, Any] = {"name": self.name, "type": self.type}
        for item in fields(self)[2:]:
            value = getattr(self, item.name)
            if value != item.default:
                data[item.name] = list(value) if isinstance(value, tuple) else value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnSchema:
        """Read what ``to_dict`` wrote (or a hand-written column entry)."""
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown or "name" not in data or "type" not in data:
            raise SchemaError(
                f"column entry {data!r} has unknown keys {unknown} or lacks 'name'/'type'; "
                f"allowed keys: {sorted(known)}"
            )
        values = dict(data)
        for key in ("domain", "not_in_environments"):
            if values.get(key) is not None:
                values[key] = tuple(str(v) for v in values[key])
        return cls(**values)


@dataclass(frozen=True)
class Schema:
    """Expectations for a data set: its columns, a minimum row count, known environments.

    >>> Schema((ColumnSchema("x", "float"),), min_rows=10).names
    ('x',)
    """

    __ctloop_artifact__ = "Schema"  # artifact type, see ctloop.artifacts.records

    columns: tuple[ColumnSchema, ...]
    min_rows: int = 1
    environments: tuple[str, ...] = ()
    version: int = field(default=FORMAT_VERSION)

    @property
    def names(self) -> tuple[str, ...]:
        """Column names."""
        return tuple(c.name for c in self.columns)

    def __getitem__(self, name: str) -> ColumnSchema:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"no column {name!r} in the schema; columns: {list(self.names)}")

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def with_column(self, column: ColumnSchema) -> Schema:
        """A copy with ``column`` added or replaced (schemas are immutable).

        >>> s = Schema((ColumnSchema("x", "float"),))
        >>> s.with_column(ColumnSchema("x", "float", min=0.0))["x"].min
        0.0
        """
        others = tuple(c for c in self.columns if c.name != column.name)
        if column.name not in self:
            return replace(self, columns=(*others, column))
        return replace(
            self, columns=tuple(column if c.name == column.name else c for c in self.columns)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``from_dict`` reads it back."""
        data: dict[str, Any] = {"version": self.version, "min_rows": self.min_rows}
        if self.environments:
            data["environments"] = list(self.environments)
        return data | {"columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        """Read what ``to_dict`` wrote (or a hand-edited document)."""
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            found = data.get("version") if isinstance(data, dict) else type(data).__name__
            raise SchemaError(
                f"schema document has version {found!r} but this ctloop reads version "
                f"{FORMAT_VERSION}; write `version: {FORMAT_VERSION}` at its top or infer it again"
            )
        columns = tuple(ColumnSchema.from_dict(c) for c in data.get("columns", ()))
        environments = tuple(str(e) for e in data.get("environments", ()))
        return cls(columns, int(data.get("min_rows", 1)), environments, FORMAT_VERSION)

    def to_yaml(self) -> str:
        """The schema as a YAML document, in column order.

        >>> print(Schema((ColumnSchema("x", "float"),)).to_yaml(), end="")
        version: 1
        min_rows: 1
        columns:
        - name: x
          type: float
        """
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_yaml(cls, text: str) -> Schema:
        """Read a YAML schema document."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SchemaError(f"the schema is not valid YAML ({exc}); fix the document") from exc
        return cls.from_dict(data)


def infer_schema(
    statistics: DatasetStatistics,
    *,
    max_domain_size: int = 100,
    infer_ranges: bool = True,
    environments: dict[str, list[str]] | None = None,
) -> Schema:
    """A schema the data behind ``statistics`` satisfies, to review and tighten by hand.

    Categorical columns with at most ``max_domain_size`` distinct (exactly counted) values
    get a domain; numeric columns get their observed range when ``infer_ranges``; missing
    fractions, NaN and ±inf are allowed as observed. ``environments`` maps an environment
    to the columns absent from it, e.g. ``{"serving": ["label"]}``.

    >>> import pandas as pd
    >>> from ctloop.data import compute_statistics
    >>> infer_schema(compute_statistics(pd.DataFrame({"x": [1, 5]})))["x"].max
    5.0
    """
    environments = environments or {}
    absent: dict[str, list[str]] = {}
    for environment, names in environments.items():
        for name in names:
            absent.setdefault(name, []).append(environment)
    columns = tuple(
        _infer_column(c, max_domain_size, infer_ranges, tuple(absent.get(c.name, ())))
        for c in statistics.columns
    )
    return Schema(columns, min_rows=1, environments=tuple(environments))


def _infer_column(
    stats: ColumnStatistics, max_domain_size: int, infer_ranges: bool, absent_in: tuple[str, ...]
) -> ColumnSchema:
    """Expectations that the column's own statistics meet."""
    column = ColumnSchema(
        stats.name,
        stats.type,
        max_missing_fraction=stats.missing_fraction,
        not_in_environments=absent_in,
    )
    numeric, categories = stats.numeric, stats.categories
    if numeric is not None:
        low, high = (numeric.min, numeric.max) if infer_ranges else (None, None)
        column = replace(
            column, min=low, max=high, allow_nan=numeric.nan > 0, allow_inf=numeric.inf > 0
        )
    if categories is not None and categories.exact and len(categories.values) <= max_domain_size:
        column = replace(column, domain=tuple(sorted(categories.values)))
    return column
