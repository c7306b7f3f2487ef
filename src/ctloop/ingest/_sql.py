"""Reading a SQL source's rows past its watermark into Parquet files, batch by batch.

Rows stream from the database in record batches of ``batch_rows`` (a server-side cursor
on PostgreSQL, ``yield_per`` through SQLAlchemy, DuckDB's Arrow record batch reader), so
memory stays bounded however many rows are new. Each batch is appended to a Parquet file
as one row group; the largest ``cursor`` value seen becomes the new watermark, which
the caller stores only with the data version that holds the rows.

A watermark travels through JSON as ``{"type": "datetime", "value": "2024-05-01T10:00:00"}``
and is bound back with its type, so a timestamp cursor compares as a timestamp.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import ConfigError, DataVersionError
from ctloop.ingest._spec import SqlSourceSpec

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["RowsRead", "decode_watermark", "encode_watermark", "read_new_rows"]

_FIRST_RUN = re.compile(r"[\w.\"`\[\]]+\s*>=?\s*(?<![:\w]):watermark\b")
_PLACEHOLDER = re.compile(r"(?<![:\w]):watermark\b")


@dataclass(frozen=True)
class RowsRead:
    """What one read found: its Parquet files (in order), rows, columns and the new
    watermark (``None`` when no row had a cursor value)."""

    files: list[Path]
    rows: int
    schema: dict[str, str]
    watermark: Any


def read_new_rows(spec: SqlSourceSpec, watermark: Any, work: Path) -> RowsRead:
    """Run ``spec``'s query past ``watermark`` (``None``: nothing ingested yet) and write
    what it returns under ``work``; a failing query, or one without the cursor column,
    raises a :class:`~ctloop.errors.DataVersionError` naming the source."""
    sql, params = _bound_query(spec, watermark)
    writer = _PartWriter(work)
    highest = None
    for batch in _batches(spec, sql, params):
        if spec.cursor not in batch.schema.names:
            raise DataVersionError(
                f"source {spec.name!r}: the query returns no column {spec.cursor!r}, its "
                f"cursor (it returns {', '.join(batch.schema.names) or 'no columns'}); "
                "fix 'cursor:' or the query in ctloop.yaml"
            )
        highest = _larger(highest, _column_max(spec, batch))
        writer.write(batch)
    files, rows, schema = writer.close()
    return RowsRead(files, rows, schema, highest)


def encode_watermark(value: Any) -> dict[str, str] | None:
    """A cursor value as JSON that :func:`decode_watermark` turns back into it."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return {"type": "datetime", "value": value.isoformat()}
    if isinstance(value, date):
        return {"type": "date", "value": value.isoformat()}
    if isinstance(value, bool | int):
        return {"type": "int", "value": str(int(value))}
    if isinstance(value, float):
        return {"type": "float", "value": repr(value)}
    if isinstance(value, Decimal):
        return {"type": "decimal", "value": str(value)}
    return {"type": "str", "value": str(value)}


def decode_watermark(stored: dict[str, str] | None) -> Any:
    """The cursor value that :func:`encode_watermark` wrote."""
    if not stored:
        return None
    kind, text = stored["type"], stored["value"]
    readers: dict[str, Callable[[str], Any]] = {
        "datetime": datetime.fromisoformat,
        "date": date.fromisoformat,
        "int": int,
        "float": float,
        "decimal": Decimal,
    }
    return readers.get(kind, str)(text)


def _bound_query(spec: SqlSourceSpec, watermark: Any) -> tuple[str, dict[str, Any]]:
    """The query to run and its parameters: the watermark, the ``start`` before any, or
    the query with its ``COLUMN > :watermark`` taken as true on the very first run."""
    if watermark is not None:
        return spec.sql, {"watermark": watermark}
    if spec.start is not None:
        return spec.sql, {"watermark": spec.start}
    sql = _FIRST_RUN.sub("1=1", spec.sql)
    if _PLACEHOLDER.search(sql):
        raise ConfigError(
            f"sources.{spec.name}: before the first ingest there is no watermark, and the "
            "query uses :watermark otherwise than as 'COLUMN > :watermark'; set 'start:' "
            "to the value to begin after"
        )
    return sql, {}


def _batches(spec: SqlSourceSpec, sql: str, params: dict[str, Any]) -> Iterator[pa.RecordBatch]:
    if spec.url.startswith("duckdb://"):
        yield from _duckdb_batches(spec, sql, params)
    else:
        yield from _sqlalchemy_batches(spec, sql, params)


def _duckdb_batches(
    spec: SqlSourceSpec, sql: str, params: dict[str, Any]
) -> Iterator[pa.RecordBatch]:
    import duckdb
    import pyarrow as pa

    path = spec.url.removeprefix("duckdb:///") or ":memory:"
    if path != ":memory:" and not Path(path).is_file():
        raise DataVersionError(
            f"source {spec.name!r}: the DuckDB file {path} does not exist; fix 'url:' in "
            "ctloop.yaml"
        )
    try:
        connection = duckdb.connect(path, read_only=path != ":memory:")
    except duckdb.Error as exc:
        raise _unreachable(spec, exc) from exc
    try:
        try:
            relation = connection.sql(_PLACEHOLDER.sub("$watermark", sql), params=params or None)
            if relation is None:
                raise DataVersionError(
                    f"source {spec.name!r}: the query returns no rows; 'sql:' must be a SELECT"
                )
            batches = relation.to_arrow_reader(spec.batch_rows)
        except duckdb.Error as exc:
            raise _bad_query(spec, exc) from exc
        yield pa.RecordBatch.from_pylist([], schema=batches.schema)  # the columns, even of none
        try:
            yield from batches
        except duckdb.Error as exc:
            raise _bad_query(spec, exc) from exc
    finally:
        connection.close()


def _sqlalchemy_batches(
    spec: SqlSourceSpec, sql: str, params: dict[str, Any]
) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

    try:
        engine = create_engine(spec.url)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigError(
            f"sources.{spec.name}.url {spec.where!r} is not a URL ctloop can open ({exc}); "
            "use postgresql+psycopg://…, sqlite:///… or duckdb:///…"
        ) from exc
    try:
        try:
            connection = engine.connect()
        except DBAPIError as exc:
            raise _unreachable(spec, exc) from exc
        with connection:
            try:
                result = connection.execution_options(
                    stream_results=True, yield_per=spec.batch_rows
                ).execute(text(sql), params)
            except SQLAlchemyError as exc:
                raise _bad_query(spec, exc) from exc
            try:
                if not result.returns_rows:
                    raise DataVersionError(
                        f"source {spec.name!r}: the query returns no rows; 'sql:' must be a SELECT"
                    )
                columns = list(result.keys())
                yield pa.RecordBatch.from_pydict({name: [] for name in columns})
                for rows in result.partitions(spec.batch_rows):
                    yield pa.RecordBatch.from_pydict(
                        {name: [row[i] for row in rows] for i, name in enumerate(columns)}
                    )
            except SQLAlchemyError as exc:
                raise _bad_query(spec, exc) from exc
            finally:
                result.close()  # a server-side cursor is closed even when reading stops early
    finally:
        engine.dispose()


def _column_max(spec: SqlSourceSpec, batch: pa.RecordBatch) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    column = batch.column(batch.schema.get_field_index(spec.cursor))
    try:
        return pc.max(column).as_py()
    except pa.ArrowNotImplementedError as exc:
        raise DataVersionError(
            f"source {spec.name!r}: the cursor column {spec.cursor!r} has type "
            f"{column.type}, which has no order; pick a timestamp or number column"
        ) from exc


def _larger(held: Any, found: Any) -> Any:
    if found is None:
        return held
    return found if held is None or found > held else held


def _bad_query(spec: SqlSourceSpec, exc: Exception) -> DataVersionError:
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return DataVersionError(
        f"source {spec.name!r}: the query failed on {spec.where} ({detail}); fix 'sql:' "
        "in ctloop.yaml"
    )


def _unreachable(spec: SqlSourceSpec, exc: Exception) -> DataVersionError:
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return DataVersionError(
        f"source {spec.name!r}: cannot connect to {spec.where} ({detail}); check 'url:' "
        "in ctloop.yaml and that the database is up"
    )


class _PartWriter:
    """Batches into ``part-00000.parquet``, one row group each; a batch whose columns
    cannot be cast to the file's (a column null so far, say) starts the next part."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.files: list[Path] = []
        self.rows = 0
        self.schema: dict[str, str] = {}
        self._writer: Any = None
        self._arrow_schema: pa.Schema | None = None

    def write(self, batch: pa.RecordBatch) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if batch.num_rows == 0:
            return
        if self._arrow_schema is not None and batch.schema != self._arrow_schema:
            try:
                batch = batch.cast(self._arrow_schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                self._finish()
        if self._writer is None:
            path = self.work / f"part-{len(self.files):05d}.parquet"
            self._writer = pq.ParquetWriter(path, batch.schema)
            self._arrow_schema = batch.schema
            self.files.append(path)
            for f in batch.schema:
                if str(f.type) != "null" or f.name not in self.schema:
                    self.schema[f.name] = str(f.type)
        self._writer.write_batch(batch)
        self.rows += batch.num_rows

    def close(self) -> tuple[list[Path], int, dict[str, str]]:
        self._finish()
        return self.files, self.rows, self.schema

    def _finish(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._writer = None
        self._arrow_schema = None
