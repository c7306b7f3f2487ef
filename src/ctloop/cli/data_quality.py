"""``ctloop data stats|schema|validate|drift``: data quality checks on CSV or Parquet files.

Files are read by DuckDB as a stream of Arrow record batches, so statistics of a file
bigger than memory need one batch at a time. Every command prints a table, JSON with
``--json``, and (where it applies) an HTML report with ``--html PATH``.

>>> data_stats(Path("flights.parquet"), as_json=True, html=None)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ctloop.cli.output import console, emit_json, err_console
from ctloop.errors import DataValidationError, SchemaError

BATCH_ROWS = 100_000
_CSV = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")
_PARQUET = (".parquet", ".pq", ".parq")


def read_statistics(path: Path, *, batch_rows: int = BATCH_ROWS) -> Any:
    """Statistics of a CSV or Parquet file, read in batches of ``batch_rows`` rows.

    >>> read_statistics(Path("flights.csv")).num_rows  # doctest: +SKIP
    336776
    """
    import duckdb
    import pyarrow as pa

    from ctloop.data import compute_statistics

    relation_of = _reader_for(path)
    connection = duckdb.connect()
    try:
        relation = relation_of(connection, str(path))
        to_reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_record_batch
        return compute_statistics(to_reader(batch_rows), chunk_rows=batch_rows)
    # a damaged page surfaces as a DuckDB error, or as an OSError from the Arrow stream
    # when it lies beyond the first batch
    except (duckdb.Error, OSError, pa.ArrowException) as exc:
        raise _unreadable(path, relation_of is _parquet, exc) from exc
    finally:
        connection.close()


def _unreadable(path: Path, parquet: bool, exc: BaseException) -> DataValidationError:
    """The error for a file whose bytes do not decode, naming the reader's first line."""
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")
    if parquet:
        return DataValidationError(
            f"Parquet file {str(path)!r} is damaged and cannot be read ({reason}); write it "
            "again or restore it from its source"
        )
    return DataValidationError(
        f"CSV file {str(path)!r} could not be read ({reason}); check that it is well-formed CSV"
    )


def _reader_for(path: Path) -> Any:
    """The DuckDB reader for ``path``'s format; a clear error for anything else."""
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise DataValidationError(f"file {str(path)!r} {what}; pass a CSV or Parquet file")
    name = path.name.lower()
    if name.endswith(_PARQUET):
        return _parquet
    if name.endswith(_CSV):
        return _csv
    raise DataValidationError(
        f"file {str(path)!r} is neither CSV nor Parquet (by its extension); pass a file "
        f"ending in one of {', '.join(_CSV + _PARQUET)}"
    )


def _csv(connection: Any, path: str) -> Any:
    # sample every row for the column types: a string late in a numeric column must make
    # the column a string column (which validation reports), not a read error
    return connection.read_csv(path, sample_size=-1)


def _parquet(connection: Any, path: str) -> Any:
    from ctloop.data._tables import pandas_index_columns

    relation = connection.read_parquet(path)
    index = set(pandas_index_columns(_parquet_schema(path)))
    if not index:
        return relation
    return relation.project(", ".join(_quoted(c) for c in relation.columns if c not in index))


def _parquet_schema(path: str) -> Any:
    import pyarrow.parquet as pq

    return pq.read_schema(path)


def _quoted(name: str) -> str:
    """``name`` as a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def read_schema(path: Path) -> Any:
    """The schema in a YAML (or JSON) file.

    >>> read_schema(Path("schema.yaml")).names  # doctest: +SKIP
    ('carrier', 'distance')
    """
    from ctloop.data import Schema

    if not path.is_file():
        raise SchemaError(
            f"schema file {str(path)!r} does not exist; write one with "
            "`ctloop data schema DATA_FILE -o schema.yaml`"
        )
    try:
        return Schema.from_yaml(path.read_text())
    except SchemaError as exc:
        raise SchemaError(f"schema file {str(path)!r}: {exc}") from exc


# -- commands ------------------------------------------------------------------------


def data_stats(path: Path, *, as_json: bool, html: Path | None) -> None:
    """Print a summary of every column of ``path``. A timestamp or date column's min,
    mean and max are UTC times (ISO 8601 strings with ``--json``), its ``std`` seconds."""
    stats = read_statistics(path)
    if html is not None:
        _write_html(html, title=f"Statistics of {path.name}", reference=stats)
    if as_json:
        columns = [_with_moments(row, _iso_time) for row in _summaries(stats)]
        emit_json({"file": str(path), "rows": stats.num_rows, "columns": columns})
        return
    table = Table(title=f"{path.name}: {stats.num_rows} rows, {len(stats.columns)} columns")
    for header in ("column", "type", "missing", "min", "mean", "max", "distinct", "top values"):
        table.add_column(header, overflow="fold")
    for row in _summaries(stats):
        shown = _with_moments(row, _table_time)
        table.add_row(
            row["name"],
            row["type"],
            f"{row['missing']} ({row['missing_fraction']:.1%})",
            *(_number(shown.get(k)) for k in ("min", "mean", "max")),
            _number(row.get("distinct")),
            ", ".join(f"{v} ({c})" for v, c in row.get("top", [])),
        )
    console.print(table)


def data_schema(
    path: Path,
    *,
    output: Path | None,
    environments: Sequence[str],
    max_domain_size: int,
    as_json: bool,
) -> None:
    """Infer a schema from ``path``; write it as YAML to ``output`` or print it."""
    from ctloop.data import infer_schema

    absent = _parse_environments(environments)
    schema = infer_schema(
        read_statistics(path), max_domain_size=max_domain_size, environments=absent
    )
    if output is not None:
        write_atomically(output, schema.to_yaml())
    if as_json:
        emit_json(schema.to_dict() | ({"written_to": str(output)} if output else {}))
    elif output is not None:
        console.print(
            f"wrote the schema of {path.name} ({len(schema.columns)} columns) to {output}"
        )
    else:
        console.print(schema.to_yaml(), end="", markup=False, highlight=False)


def data_validate(
    path: Path,
    *,
    schema_path: Path,
    environment: str | None,
    as_json: bool,
    html: Path | None,
) -> None:
    """Check ``path`` against a schema file; exit with status 1 when there are errors."""
    from ctloop.data import validate

    schema = read_schema(schema_path)
    stats = read_statistics(path)
    anomalies = validate(stats, schema, environment=environment)
    if html is not None:
        _write_html(html, title=f"Validation of {path.name}", reference=stats, anomalies=anomalies)
    if as_json:
        emit_json({"file": str(path), "schema": str(schema_path), **anomalies.to_dict()})
    else:
        _print_anomalies(path, anomalies)
    if anomalies.errors:
        if not as_json:
            err_console.print(
                f"[bold red]error:[/] {path.name} breaks the schema in {schema_path} in "
                f"{len(anomalies.errors)} way(s); fix the data, or edit the schema if the "
                "change is expected",
                soft_wrap=True,
            )
        raise typer.Exit(1)


def data_drift(
    reference: Path,
    current: Path,
    *,
    drift_share: float,
    fail_on_drift: bool,
    as_json: bool,
    html: Path | None,
) -> None:
    """Test every shared column of ``current`` against ``reference``."""
    from ctloop.data import DriftConfig, detect_drift

    ref, cur = read_statistics(reference), read_statistics(current)
    report = detect_drift(ref, cur, config=DriftConfig(drift_share=drift_share))
    if html is not None:
        title = f"Drift of {current.name} against {reference.name}"
        _write_html(html, title=title, reference=ref, current=cur, drift=report)
    if as_json:
        emit_json({"reference": str(reference), "current": str(current), **report.to_dict()})
    else:
        _print_drift(report)
    if fail_on_drift and report.drifted:
        raise typer.Exit(1)


# -- output --------------------------------------------------------------------------


def _summaries(stats: Any) -> list[dict[str, Any]]:
    """One plain dict per column: counts, numeric summary, distinct and top values."""
    rows = []
    for column in stats.columns:
        row: dict[str, Any] = {
            "name": column.name,
            "type": column.type,
            "count": column.count,
            "missing": column.missing,
            "missing_fraction": column.missing_fraction,
        }
        numeric, categories = column.numeric, column.categories
        if numeric is not None:
            row.update(min=numeric.min, max=numeric.max, mean=numeric.mean, std=numeric.std)
        if categories is not None:
            row.update(distinct=categories.distinct, top=categories.top(3))
        rows.append(row)
    return rows


def _with_moments(row: dict[str, Any], show: Any) -> dict[str, Any]:
    """``row`` with a timestamp column's min, mean and max (seconds since the epoch in the
    statistics) written by ``show``; ``std`` stays a number of seconds."""
    if row["type"] != "timestamp":
        return row
    return row | {k: show(row[k]) for k in ("min", "mean", "max") if row.get(k) is not None}


def _iso_time(seconds: float) -> str | float:
    """ISO 8601 in UTC, e.g. ``2013-01-01T05:00:00+00:00`` (the number when out of range)."""
    from datetime import UTC, datetime

    try:
        return datetime.fromtimestamp(seconds, tz=UTC).isoformat()
    except (OverflowError, ValueError, OSError):
        return seconds


def _table_time(seconds: float) -> str | float:
    """``2013-01-01 05:00:00`` in UTC (the number when out of range)."""
    from ctloop.data._report_svg import format_time

    try:
        return format_time(seconds)
    except (OverflowError, ValueError, OSError):
        return seconds


def _print_anomalies(path: Path, anomalies: Any) -> None:
    if not len(anomalies):
        console.print(f"[green]{path.name} matches the schema[/]")
        return
    table = Table(
        title=f"{path.name}: {len(anomalies.errors)} error(s), {len(anomalies.warnings)} warning(s)"
    )
    for header in ("severity", "column", "anomaly", "expected", "seen"):
        table.add_column(header, overflow="fold")
    for anomaly in anomalies:
        style = "bold red" if anomaly.severity == "error" else "yellow"
        table.add_row(
            f"[{style}]{anomaly.severity}[/]",
            anomaly.column or "(data set)",
            anomaly.kind,
            anomaly.expected,
            anomaly.seen,
        )
    console.print(table)


def _print_drift(report: Any) -> None:
    table = Table(title="Drift per column")
    for header in ("column", "type", "test", "statistic", "p-value", "threshold", "drifted"):
        table.add_column(header)
    for column in report.columns:
        table.add_row(
            column.column,
            column.type,
            column.test,
            _number(column.statistic),
            _number(column.p_value),
            _number(column.threshold),
            "[bold red]yes[/]" if column.drifted else "no",
        )
    console.print(table)
    for name, reason in report.skipped:
        console.print(f"[dim]not tested: {name} ({reason})[/]")
    verdict = "[bold red]drifted[/]" if report.drifted else "[green]no drift[/]"
    console.print(
        f"data set: {verdict} — {len(report.drifted_columns)} of {len(report.columns)} "
        f"columns drifted ({report.drifted_share:.0%}; the verdict needs "
        f"{report.drift_share:.0%})"
    )


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, str)):
        return str(value)
    return f"{value:.4g}"


def _parse_environments(values: Sequence[str]) -> dict[str, list[str]]:
    """``["serving=arr_delay,label"]`` → ``{"serving": ["arr_delay", "label"]}``."""
    absent: dict[str, list[str]] = {}
    for value in values:
        name, sep, columns = value.partition("=")
        if not sep or not name.strip() or not columns.strip():
            raise SchemaError(
                f"--environment {value!r} is not NAME=COLUMN[,COLUMN...]; e.g. "
                "--environment serving=arr_delay names the columns absent when serving"
            )
        absent.setdefault(name.strip(), []).extend(c.strip() for c in columns.split(","))
    return absent


def _write_html(path: Path, **report: Any) -> None:
    from ctloop.data._report import render_report

    write_atomically(path, render_report(**report))


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename.

    >>> write_atomically(Path("schema.yaml"), "version: 1\\n")  # doctest: +SKIP
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
