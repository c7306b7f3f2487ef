"""Checks on a span's files before they are stored: each file must be readable, and
its columns must match the source's schema (the columns and types of the spans stored
before it). A span that fails is not stored, so the next run tries it again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ctloop.errors import DataVersionError

__all__ = ["file_schema", "schema_break"]


def file_schema(path: Path, shown: str, *, data: bytes | None = None) -> dict[str, str]:
    """The columns of the data file at ``path`` and their Arrow types, read from its
    footer or first block only (bounded memory); a damaged file raises a
    :class:`~ctloop.errors.DataVersionError` naming ``shown``. ``data``, when given, is
    the file's bytes already read (the file is then not opened again)."""
    suffix = path.suffix.lower()
    source: Any = path
    if data is not None:
        import pyarrow as pa

        source = pa.BufferReader(data)
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            schema = pq.read_schema(source)
        elif suffix == ".csv":
            import pyarrow.csv as pacsv

            with pacsv.open_csv(source) as reader:
                schema = reader.schema
        elif suffix in (".jsonl", ".json", ".ndjson"):
            import pyarrow.json as pajson

            schema = pajson.read_json(source).schema
        else:
            raise DataVersionError(
                f"{shown} is neither Parquet, CSV nor JSON lines; name it .parquet, .csv or "
                ".jsonl, or leave it out of the source's files pattern"
            )
    except DataVersionError:
        raise
    except Exception as exc:  # pyarrow's errors for damaged files vary by format
        raise DataVersionError(f"{shown} cannot be read ({exc}); replace the file") from exc
    return {field.name: str(field.type) for field in schema}


def schema_break(found: dict[str, str], expected: dict[str, str], shown: str) -> str | None:
    """A sentence naming what in ``found`` breaks ``expected``, or ``None``: a column
    that is missing, or one whose type changed. New columns are allowed."""
    missing = [c for c in expected if c not in found]
    changed = [
        f"'{c}' is {found[c]} (was {expected[c]})"
        for c in expected
        if c in found and found[c] != expected[c]
    ]
    if not missing and not changed:
        return None
    parts = []
    if missing:
        parts.append(f"lacks column(s) {', '.join(repr(c) for c in missing)}")
    if changed:
        parts.append("; ".join(changed))
    return (
        f"{shown}: {'; '.join(parts)}; fix the file, or take the new schema with "
        "`ctloop ingest run --accept-schema`"
    )
