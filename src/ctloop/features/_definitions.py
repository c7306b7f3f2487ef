"""What a feature store is made of: entities, fields, feature views, on-demand
transforms and feature services. Plain frozen records, validated when they are built.

>>> airport = Entity("origin", join_keys=["origin"])
>>> weather = FeatureView("weather_hourly", entities=[airport], source="weather.parquet",
...                       timestamp="time_hour", ttl="6h", fields=[Field("temp", float)])
>>> weather.feature_names
('temp',)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ctloop.durations import parse_duration
from ctloop.errors import FeatureDefinitionError

__all__ = [
    "DTYPES",
    "Entity",
    "FeatureService",
    "FeatureView",
    "Field",
    "OnDemandFeatureView",
    "on_demand",
]

#: the types a field may declare, by Python type or by name, and their Arrow type names
DTYPES: dict[object, str] = {
    int: "int64", float: "float64", str: "string", bool: "bool", datetime: "timestamp",
    "int64": "int64", "int32": "int32", "float64": "float64", "float32": "float32",
    "string": "string", "bool": "bool", "timestamp": "timestamp",
}  # fmt: skip

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_name(kind: str, name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise FeatureDefinitionError(
            f"{kind} name {name!r} is not a valid name; use letters, digits and underscores, "
            "starting with a letter or underscore"
        )
    return name


def _check_unique(owner: str, kind: str, names: Sequence[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise FeatureDefinitionError(f"{owner} declares the {kind} {name!r} twice; keep one")
        seen.add(name)


@dataclass(frozen=True)
class Field:
    """A named, typed column: a feature of a view or a request field of a transform.

    >>> Field("temp", float).dtype
    'float64'
    """

    name: str
    dtype: str = "float64"

    def __init__(self, name: str, dtype: object = float) -> None:
        _check_name("field", name)
        if dtype not in DTYPES:
            known = ", ".join(sorted(k for k in DTYPES if isinstance(k, str)))
            raise FeatureDefinitionError(
                f"field {name!r} has type {dtype!r}, which is not a feature type; "
                f"use int, float, str, bool, datetime or one of {known}"
            )
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "dtype", DTYPES[dtype])


@dataclass(frozen=True)
class Entity:
    """What features describe (an airport, a customer), and the columns that identify it.

    >>> Entity("origin").join_keys
    ('origin',)
    """

    name: str
    join_keys: tuple[str, ...] = ()
    description: str = ""

    def __init__(
        self, name: str, join_keys: Sequence[str] | None = None, description: str = ""
    ) -> None:
        _check_name("entity", name)
        keys = tuple(join_keys) if join_keys is not None else (name,)
        if not keys:
            raise FeatureDefinitionError(
                f"entity {name!r} has no join keys; name at least one column"
            )
        for key in keys:
            _check_name(f"join key of entity {name!r}", key)
        _check_unique(f"entity {name!r}", "join key", keys)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "join_keys", keys)
        object.__setattr__(self, "description", description)


@dataclass(frozen=True)
class FeatureView:
    """Features of some entities read from one source, each row valid from its
    ``timestamp`` for at most ``ttl``.

    ``source`` is a Parquet path or glob (``*.parquet``), a CSV path, or a DuckDB query
    (``SELECT …``). ``created`` names the column saying when a row was written: a row is
    used only once it exists, and among rows of the same timestamp the latest wins.

    >>> FeatureView("v", entities=[Entity("k")], source="v.csv", timestamp="ts",
    ...             fields=[Field("x", int)], ttl="1d").ttl
    datetime.timedelta(days=1)
    """

    name: str
    entities: tuple[Entity, ...]
    source: str
    timestamp: str
    fields: tuple[Field, ...]
    created: str | None = None
    ttl: timedelta | None = None
    description: str = ""

    def __init__(
        self,
        name: str,
        *,
        entities: Sequence[Entity],
        source: str,
        timestamp: str,
        fields: Sequence[Field],
        created: str | None = None,
        ttl: str | int | float | timedelta | None = None,
        description: str = "",
    ) -> None:
        _check_name("feature view", name)
        values = {
            "name": name, "entities": tuple(entities), "source": _check_source(name, source),
            "timestamp": _check_name(f"timestamp column of feature view {name!r}", timestamp),
            "fields": tuple(fields), "created": created, "ttl": _check_ttl(name, ttl),
            "description": description,
        }  # fmt: skip
        for key, value in values.items():
            object.__setattr__(self, key, value)
        self._check_columns()

    def _check_columns(self) -> None:
        owner = f"feature view {self.name!r}"
        if not self.entities or not all(isinstance(e, Entity) for e in self.entities):
            raise FeatureDefinitionError(f"{owner} needs at least one Entity in entities=")
        if not self.fields or not all(isinstance(f, Field) for f in self.fields):
            raise FeatureDefinitionError(f"{owner} needs at least one Field in fields=")
        if self.created is not None:
            _check_name(f"created column of {owner}", self.created)
        columns = [*self.join_keys, self.timestamp, *self.feature_names]
        columns += [self.created] if self.created else []
        _check_unique(owner, "column", columns)

    @property
    def join_keys(self) -> tuple[str, ...]:
        """The entity columns a row is looked up by, in entity order."""
        return tuple(key for entity in self.entities for key in entity.join_keys)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The names of the view's features, in declaration order."""
        return tuple(f.name for f in self.fields)


def _check_source(view: str, source: object) -> str:
    if not isinstance(source, str) or not source.strip():
        raise FeatureDefinitionError(
            f"feature view {view!r} has source {source!r}; give a Parquet path or glob, "
            "a CSV path, or a DuckDB SELECT query"
        )
    return source


def _check_ttl(view: str, ttl: str | int | float | timedelta | None) -> timedelta | None:
    if ttl is None:
        return None
    value = (
        ttl
        if isinstance(ttl, timedelta)
        else parse_duration(ttl, f"ttl of feature view {view!r}", error=FeatureDefinitionError)
    )
    if value <= timedelta(0):
        raise FeatureDefinitionError(
            f"ttl of feature view {view!r} is {value}, not a positive duration; "
            "give one such as 6h, or None for features that never expire"
        )
    return value


@dataclass(frozen=True)
class OnDemandFeatureView:
    """Features computed at read time from other views' features and request fields.

    ``transform`` takes a pandas DataFrame with the input views' features and the request
    fields and returns a DataFrame with the ``outputs`` columns (made with :func:`on_demand`).
    """

    name: str
    inputs: tuple[FeatureView, ...]
    request: tuple[Field, ...]
    outputs: tuple[Field, ...]
    transform: Callable[[Any], Any] = field(compare=False)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The names of the features the transform returns."""
        return tuple(f.name for f in self.outputs)


def on_demand(
    *, inputs: Sequence[FeatureView], request: Sequence[Field] = (), outputs: Sequence[Field]
) -> Callable[[Callable[[Any], Any]], OnDemandFeatureView]:
    """Make a function of a DataFrame into an on-demand feature view named after it.

    >>> v = FeatureView("v", entities=[Entity("k")], source="v.csv", timestamp="ts", fields=[Field("x")])
    >>> @on_demand(inputs=[v], request=[Field("y")], outputs=[Field("x_plus_y")])
    ... def sums(df):
    ...     return df.assign(x_plus_y=df.x + df.y)[["x_plus_y"]]
    >>> sums.feature_names
    ('x_plus_y',)
    """

    def wrap(function: Callable[[Any], Any]) -> OnDemandFeatureView:
        name = _check_name("on-demand feature view", function.__name__)
        if not outputs:
            raise FeatureDefinitionError(
                f"on-demand feature view {name!r} needs at least one Field in outputs="
            )
        _check_unique(
            f"on-demand feature view {name!r}", "field", [f.name for f in [*request, *outputs]]
        )
        return OnDemandFeatureView(name, tuple(inputs), tuple(request), tuple(outputs), function)

    return wrap


@dataclass(frozen=True)
class FeatureService:
    """A named set of feature views a model uses, for training and for serving alike.

    >>> v = FeatureView("v", entities=[Entity("k")], source="v.csv", timestamp="ts", fields=[Field("x")])
    >>> FeatureService("model_v1", [v]).feature_refs
    ('v:x',)
    """

    name: str
    views: tuple[FeatureView | OnDemandFeatureView, ...]

    def __init__(self, name: str, views: Sequence[FeatureView | OnDemandFeatureView]) -> None:
        _check_name("feature service", name)
        if not views:
            raise FeatureDefinitionError(
                f"feature service {name!r} lists no feature views; add at least one"
            )
        _check_unique(f"feature service {name!r}", "feature view", [v.name for v in views])
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "views", tuple(views))

    @property
    def feature_refs(self) -> tuple[str, ...]:
        """Every feature as ``view:feature``, in order."""
        return tuple(f"{v.name}:{name}" for v in self.views for name in v.feature_names)
