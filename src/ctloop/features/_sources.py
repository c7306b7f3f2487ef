"""Reading a feature view's source with DuckDB: a Parquet path or glob, a CSV file, or
a DuckDB query, and checking that it has the columns the view declares.

>>> source_relation("data/weather.parquet")
"read_parquet('data/weather.parquet')"
>>> source_relation("SELECT * FROM weather")
'(SELECT * FROM weather)'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ctloop.errors import FeatureDefinitionError

if TYPE_CHECKING:
    import duckdb

    from ctloop.features._definitions import FeatureView

__all__ = ["SQL_TYPES", "check_source", "key_kind", "source_relation"]

#: the DuckDB type each field type is read as
SQL_TYPES = {
    "int64": "BIGINT", "int32": "INTEGER", "float64": "DOUBLE", "float32": "FLOAT",
    "string": "VARCHAR", "bool": "BOOLEAN", "timestamp": "TIMESTAMP",
}  # fmt: skip


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def source_relation(source: str) -> str:
    """The DuckDB ``FROM`` expression that reads ``source``."""
    stripped = source.strip()
    if stripped.split(None, 1)[0].upper() in {"SELECT", "WITH", "FROM"}:
        return f"({stripped})"
    if stripped.lower().endswith((".csv", ".csv.gz", ".tsv")):
        return f"read_csv({_quote(stripped)})"
    return f"read_parquet({_quote(stripped)})"


def source_columns(view: FeatureView, con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The columns of ``view``'s source and their DuckDB types."""
    import duckdb

    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {source_relation(view.source)}").fetchall()
    except duckdb.Error as exc:
        raise FeatureDefinitionError(
            f"feature view {view.name!r} cannot read its source {view.source!r}: "
            f"{str(exc).splitlines()[0]}; fix the path or the query"
        ) from exc
    return {str(name): str(kind) for name, kind, *_ in rows}


#: the DuckDB types a source column of each field type may have
_COMPATIBLE = {
    "int64": ("INT", "BIGINT", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT", "HUGEINT"),
    "float64": ("DOUBLE", "FLOAT", "REAL", "DECIMAL", "INT", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT"),
    "string": ("VARCHAR",), "bool": ("BOOLEAN",), "timestamp": ("TIMESTAMP", "DATE"),
}  # fmt: skip
_COMPATIBLE["int32"], _COMPATIBLE["float32"] = _COMPATIBLE["int64"], _COMPATIBLE["float64"]


def check_source(view: FeatureView, con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Raise a :class:`~ctloop.errors.FeatureDefinitionError` naming the first column
    ``view`` declares (key, timestamp, created or feature) that its source lacks, or
    whose type in the source cannot hold the declared one; return the source's columns
    and their DuckDB types."""
    columns = source_columns(view, con)
    _check_present(view, columns)
    typed = [(f.name, f.dtype) for f in view.fields] + [(view.timestamp, "timestamp")]
    typed += [(view.created, "timestamp")] if view.created else []
    for name, dtype in typed:
        if not columns[name].upper().startswith(_COMPATIBLE[dtype]):
            raise FeatureDefinitionError(
                f"column {name!r} of feature view {view.name!r} is {columns[name]} in its source "
                f"{view.source!r}, which cannot be read as {dtype}; fix the declared type or the source"
            )
    return columns


def _check_present(view: FeatureView, columns: dict[str, str]) -> None:
    wanted = [
        *view.join_keys,
        view.timestamp,
        *([view.created] if view.created else []),
        *view.feature_names,
    ]
    for name in wanted:
        if name not in columns:
            raise FeatureDefinitionError(
                f"feature view {view.name!r} declares column {name!r}, but its source "
                f"{view.source!r} has no such column (it has {', '.join(sorted(columns))}); "
                "fix the definition or the source"
            )


def key_kind(duckdb_type: str) -> str:
    """What a join key of a DuckDB type compares as: text, number, bool or time (keys of
    two kinds never match, so a join of them is refused rather than run).

    >>> key_kind("VARCHAR"), key_kind("BIGINT"), key_kind("DOUBLE"), key_kind("TIMESTAMP WITH TIME ZONE")
    ('text', 'number', 'number', 'time')
    """
    kind = duckdb_type.upper()
    if kind.startswith(("VARCHAR", "CHAR", "TEXT", "STRING")):
        return "text"
    if kind.startswith(("BOOL",)):
        return "bool"
    if kind.startswith(("TIMESTAMP", "DATE", "TIME")):
        return "time"
    if kind.startswith(_COMPATIBLE["float64"]) or kind.startswith(_COMPATIBLE["int64"]):
        return "number"
    return kind
