"""Point-in-time correct training sets: for each entity row at time ``t`` and each
feature view, the values of the latest feature row that existed at ``t``.

A feature row counts for ``t`` when its timestamp is at or before ``t``, after
``t - ttl`` (when the view has a ttl) and, when the view names a ``created`` column,
created at or before ``t`` (a row written later was not known at ``t``). Among the rows
that count, the latest timestamp wins, then the latest created, then the later row in the
source. Every entity row is kept, in order, with its columns untouched; a feature with no
row is a null of the declared type.

The join is one DuckDB ASOF join per view against the running best row per key.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ctloop.errors import FeatureDefinitionError, FeatureError
from ctloop.features._definitions import FeatureService, FeatureView, OnDemandFeatureView
from ctloop.features._sources import SQL_TYPES, check_source, key_kind, source_relation

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

__all__ = ["get_historical_features"]

_ROW = "__ctloop_row"
_MICROSECOND = timedelta(microseconds=1)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def get_historical_features(
    entity_df: Any,
    features: FeatureService | Sequence[FeatureView | OnDemandFeatureView],
    *,
    timestamp: str = "event_timestamp",
    full_feature_names: bool = False,
    created_as_tiebreak_only: bool = False,
) -> pa.Table:
    """``entity_df`` (an Arrow table or a pandas DataFrame) with each view's features
    joined as they were at each row's ``timestamp``.

    ``full_feature_names`` names columns ``view__feature``. ``created_as_tiebreak_only``
    uses rows created after ``t`` too (Feast's rule), the created column then only breaks
    ties.

    >>> import pyarrow as pa, pyarrow.csv, datetime as dt, tempfile, os
    >>> from ctloop.features import Entity, Field
    >>> path = os.path.join(tempfile.mkdtemp(), "temps.csv")
    >>> pa.csv.write_csv(pa.table({"origin": ["EWR", "EWR"], "time_hour": [dt.datetime(2024, 1, 1, h) for h in (1, 3)],
    ...                            "temp": [5.0, 7.0]}), path)
    >>> weather = FeatureView("weather", entities=[Entity("origin")], source=path, timestamp="time_hour",
    ...                       fields=[Field("temp", float)], ttl="6h")
    >>> flights = pa.table({"origin": ["EWR", "EWR"], "event_timestamp": [dt.datetime(2024, 1, 1, 2), dt.datetime(2024, 1, 1, 0)]})
    >>> get_historical_features(flights, [weather]).column("temp").to_pylist()
    [5.0, None]
    """
    import duckdb

    entities = _as_arrow(entity_df)
    views = list(features.views if isinstance(features, FeatureService) else features)
    plain = _plain_views(views)
    _check_entity_frame(entities, plain, timestamp)
    names = _output_names(entities, views, full_feature_names)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        return _join(con, entities, views, plain, timestamp, names, created_as_tiebreak_only)
    finally:
        con.close()


def _as_arrow(entity_df: Any) -> pa.Table:
    import pyarrow as pa

    if isinstance(entity_df, pa.Table):
        return entity_df
    if type(entity_df).__module__.startswith("pandas"):
        return pa.Table.from_pandas(entity_df, preserve_index=False)
    raise FeatureError(
        f"the entity frame is a {type(entity_df).__name__}; pass a pyarrow Table or a pandas DataFrame"
    )


def _plain_views(views: Sequence[FeatureView | OnDemandFeatureView]) -> list[FeatureView]:
    """The stored views to join: those asked for and the inputs of on-demand views."""
    found: dict[str, FeatureView] = {}
    for view in views:
        if not isinstance(view, FeatureView | OnDemandFeatureView):
            raise FeatureError(
                f"{view!r} is not a FeatureView or on-demand feature view; pass those or a FeatureService"
            )
        for plain in view.inputs if isinstance(view, OnDemandFeatureView) else (view,):
            found.setdefault(plain.name, plain)
    return list(found.values())


def _check_entity_frame(entities: pa.Table, views: list[FeatureView], timestamp: str) -> None:
    columns = set(entities.column_names)
    if timestamp not in columns:
        raise FeatureError(
            f"the entity frame has no column {timestamp!r} for the time of each row; "
            f"add it or pass timestamp= (it has {', '.join(entities.column_names)})"
        )
    for view in views:
        for key in view.join_keys:
            if key not in columns:
                raise FeatureError(
                    f"the entity frame lacks join key {key!r} of feature view {view.name!r}; "
                    f"add the column (it has {', '.join(entities.column_names)})"
                )


def _output_names(
    entities: pa.Table, views: Sequence[FeatureView | OnDemandFeatureView], full: bool
) -> dict[tuple[str, str], str]:
    """The output column of each (view, feature), refusing two columns of one name."""
    names: dict[tuple[str, str], str] = {}
    taken = {name: "the entity frame" for name in entities.column_names}
    for view in views:
        for feature in view.feature_names:
            column = f"{view.name}__{feature}" if full else feature
            if column in taken:
                raise FeatureDefinitionError(
                    f"feature {feature!r} of view {view.name!r} would be column {column!r}, "
                    f"which {taken[column]} already has; pass full_feature_names=True or rename one"
                )
            taken[column] = f"feature view {view.name!r}"
            names[(view.name, feature)] = column
    return names


def _join(
    con: duckdb.DuckDBPyConnection,
    entities: pa.Table,
    views: Sequence[FeatureView | OnDemandFeatureView],
    plain: list[FeatureView],
    timestamp: str,
    names: dict[tuple[str, str], str],
    tiebreak_only: bool,
) -> pa.Table:
    import duckdb
    import pyarrow as pa

    keys = sorted({key for view in plain for key in view.join_keys})
    slim = entities.select([*keys, timestamp]).append_column(
        _ROW, pa.array(range(entities.num_rows), pa.int64())
    )
    con.register("__ctloop_entities_input", slim)
    con.execute(
        f"CREATE TEMP TABLE __ctloop_entities AS SELECT * FROM __ctloop_entities_input ORDER BY {_ROW}"
    )
    entity_types = _entity_types(con, timestamp)
    joined: dict[str, pa.Table] = {}
    for index, view in enumerate(plain):
        _check_key_types(view, entity_types, check_source(view, con))
        try:
            joined[view.name] = _join_view(con, view, index, timestamp, tiebreak_only)
        except duckdb.Error as exc:
            raise FeatureError(
                f"feature view {view.name!r} cannot be joined to the entity frame: "
                f"{str(exc).splitlines()[0]}; check that its join keys {list(view.join_keys)} "
                "and timestamps have the same types in both"
            ) from exc
    return _assemble(entities, views, joined, names)


def _entity_types(con: duckdb.DuckDBPyConnection, timestamp: str) -> dict[str, str]:
    """The entity frame's DuckDB column types, once its time column is known to hold
    times (a timestamp, a date, or text that reads as one)."""
    types = {str(n): str(t) for n, t, *_ in con.execute("DESCRIBE __ctloop_entities").fetchall()}
    kind = key_kind(types[timestamp])
    if kind not in {"time", "text"}:
        raise FeatureError(
            f"the entity frame's time column {timestamp!r} is {types[timestamp]}, not a "
            "timestamp; convert it (pandas.to_datetime, with unit='s' for epoch seconds)"
        )
    if kind == "text":
        bad = con.execute(
            f"SELECT {_ident(timestamp)} FROM __ctloop_entities WHERE {_ident(timestamp)} IS NOT NULL "
            f"AND TRY_CAST({_ident(timestamp)} AS TIMESTAMPTZ) IS NULL LIMIT 1"
        ).fetchone()
        if bad is not None:
            raise FeatureError(
                f"the entity frame's time column {timestamp!r} holds {bad[0]!r}, which is not a "
                "time; give ISO 8601 times such as 2024-01-31 06:00 or convert the column to timestamps"
            )
    return types


def _check_key_types(view: FeatureView, entities: dict[str, str], source: dict[str, str]) -> None:
    for key in view.join_keys:
        kinds = {key_kind(entities[key]), key_kind(source[key])}
        if len(kinds) > 1 and "NULL" not in kinds:  # a column of nulls matches nothing anyway
            raise FeatureError(
                f"join key {key!r} is {entities[key]} in the entity frame but {source[key]} in "
                f"the source of feature view {view.name!r}, so no row would match; cast the "
                "entity frame's column to the source's type"
            )


def _join_view(
    con: duckdb.DuckDBPyConnection,
    view: FeatureView,
    index: int,
    timestamp: str,
    tiebreak_only: bool,
) -> pa.Table:
    """One column per feature of ``view``, one row per entity row, in entity order."""
    src, best = f"__ctloop_src_{index}", f"__ctloop_best_{index}"
    keys = ", ".join(_ident(k) for k in view.join_keys)
    feats = ", ".join(
        f"CAST({_ident(f.name)} AS {SQL_TYPES[f.dtype]}) AS {_ident(f.name)}" for f in view.fields
    )
    ts = f"CAST({_ident(view.timestamp)} AS TIMESTAMPTZ)"
    created = f"COALESCE(CAST({_ident(view.created)} AS TIMESTAMPTZ), {ts})" if view.created else ts
    con.execute(
        f"CREATE TEMP TABLE {src} AS SELECT {keys}, {ts} AS __ts, {created} AS __created, {feats} "
        f"FROM {source_relation(view.source)} WHERE {_ident(view.timestamp)} IS NOT NULL"
    )
    con.execute(f"CREATE TEMP TABLE {best} AS {_best_rows(view, src, tiebreak_only)}")
    on = " AND ".join(f"e.{_ident(k)} = b.{_ident(k)}" for k in view.join_keys)
    event = f"CAST(e.{_ident(timestamp)} AS TIMESTAMPTZ)"
    fresh = f"b.__best_ts > {event} - to_microseconds({_micros(view)})" if view.ttl else "TRUE"
    columns = ", ".join(
        f"CASE WHEN {fresh} THEN b.{_ident(f.name)} END AS {_ident(f.name)}" for f in view.fields
    )
    return con.sql(
        f"SELECT {columns} FROM __ctloop_entities e ASOF LEFT JOIN {best} b "
        f"ON {on} AND {event} >= b.__avail ORDER BY e.{_ROW}"
    ).to_arrow_table()


def _best_rows(view: FeatureView, src: str, tiebreak_only: bool) -> str:
    """A query of the rows to ASOF-join: per key, the rows that win at the time they
    become available (``__avail``), with their timestamp as ``__best_ts``.

    A row is available at its creation (with Feast's rule, at its timestamp); rows rank
    by timestamp, created, then source order. One sort by key and availability (rank
    breaking ties) finds them: a row is kept when no row available by then has a later
    timestamp and the next row in that order becomes available later. A row with the
    best timestamp so far outranks the earlier ones of equal timestamp, as it was
    created later. Each kept row wins from its ``__avail`` until the next kept row's,
    which is what the ASOF join looks up."""
    keys = ", ".join(_ident(k) for k in view.join_keys)
    available = "__ts" if tiebreak_only else "greatest(__ts, __created)"
    feats = ", ".join(_ident(f.name) for f in view.fields)
    window = (
        f"(PARTITION BY {keys} ORDER BY __avail, __ts, __created, __n "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    )
    return (
        f"SELECT {keys}, __avail, __ts AS __best_ts, {feats} FROM "
        f"(SELECT *, rowid AS __n, {available} AS __avail FROM {src}) "
        f"QUALIFY __ts >= max(__ts) OVER {window} "
        f"AND coalesce(lead(__avail) OVER {window} > __avail, TRUE)"
    )


def _micros(view: FeatureView) -> int:
    assert view.ttl is not None
    return view.ttl // _MICROSECOND


def _assemble(
    entities: pa.Table,
    views: Sequence[FeatureView | OnDemandFeatureView],
    joined: dict[str, pa.Table],
    names: dict[tuple[str, str], str],
) -> pa.Table:
    """The entity frame with the asked-for features appended, on-demand ones computed."""
    from ctloop.features._on_demand import run_on_demand

    result = entities
    for view in views:
        if isinstance(view, OnDemandFeatureView):
            values = run_on_demand(view, entities, joined)
        else:
            values = joined[view.name]
        for feature in view.feature_names:
            result = result.append_column(names[(view.name, feature)], values.column(feature))
    return result
