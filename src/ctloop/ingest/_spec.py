"""Source declarations: the ``sources:`` section of ``ctloop.yaml``.

A file source names where its files land and how a path maps to a span::

    sources:
      flights:
        files: "landing/date={YYYY}-{MM}-{DD}/*.parquet"   # a folder here, or s3://…
        span: day            # one span per day (inferred from the placeholders)
        expect: daily        # a missing day is an error, not a silent reuse
        late_window: 2d      # re-ingest a span whose files change within 2 days

Placeholders: ``{YYYY}``, ``{MM}``, ``{DD}``, ``{HH}``, ``{WW}`` (an ISO week: a
calendar span), ``{SPAN}`` (a numbered span) and ``{VERSION}`` (the highest version of a span wins, as in TFX's
ExampleGen). ``*`` matches within one path segment, ``**`` across segments.
``options`` are fsspec storage options for a remote landing place (``endpoint_url`` of
an S3-compatible server, say).

A SQL source names a query, the database it runs on and its cursor column::

    sources:
      orders:
        sql: "SELECT * FROM orders WHERE updated_at > :watermark"
        url: postgresql+psycopg://ml:${ORDERS_DB_PASSWORD}@db/shop   # or duckdb:///shop.duckdb
        cursor: updated_at   # the watermark: the largest value ingested so far
        start: 2024-01-01    # optional: the watermark before the first run

Each run binds ``:watermark`` to the largest ``cursor`` value ingested so far and stores
the rows it returns as one more numbered span. Before the first run, with no ``start``,
the condition ``COLUMN > :watermark`` (or ``>=``) is taken as true, so the first run
reads every row. ``${NAME}`` in ``url`` is taken from the environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from ctloop.config import check_keys
from ctloop.errors import ConfigError

__all__ = ["GRAINS", "AnySource", "SourceSpec", "SqlSourceSpec", "parse_sources"]

#: span grain → the placeholders it needs and the ``expect`` word for it
GRAINS: dict[str, tuple[tuple[str, ...], str]] = {
    "hour": (("YYYY", "MM", "DD", "HH"), "hourly"),
    "day": (("YYYY", "MM", "DD"), "daily"),
    "week": (("YYYY", "WW"), "weekly"),
    "month": (("YYYY", "MM"), "monthly"),
    "number": (("SPAN",), "consecutive"),
}
#: a weekly span may also be named by the date its week starts ({YYYY}-{MM}-{DD})
_WEEK_BY_DATE = ("YYYY", "MM", "DD")
_PLACEHOLDER = re.compile(r"\{([A-Z]+)\}")
_KNOWN_PLACEHOLDERS = {"YYYY", "MM", "DD", "HH", "WW", "SPAN", "VERSION"}
_KEYS = {"files", "span", "expect", "late_window", "options"}
_SQL_KEYS = {"sql", "url", "cursor", "start", "batch_rows"}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WATERMARK = re.compile(r"(?<![:\w]):watermark\b")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class SourceSpec:
    """One declared file source.

    >>> spec = SourceSpec.parse("flights", {"files": "in/{YYYY}-{MM}-{DD}/*.csv"}, Path("/p"))
    >>> spec.grain, spec.expect, spec.files
    ('day', None, '/p/in/{YYYY}-{MM}-{DD}/*.csv')
    """

    name: str
    files: str
    grain: str
    expect: str | None = None
    late_window: timedelta | None = None
    options: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def versioned(self) -> bool:
        """Whether paths carry a ``{VERSION}`` of each span."""
        return "{VERSION}" in self.files

    @classmethod
    def parse(cls, name: str, entry: Any, base: Path) -> SourceSpec:
        """The source ``name`` declared by ``entry``; relative local paths are taken
        from ``base`` (the folder of ``ctloop.yaml``)."""
        where = f"sources.{name}"
        _check_name(where, name)
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where} must be a mapping with 'files:' (or 'sql:'), not {entry!r}")
        check_keys(entry, _KEYS, where=f"{where}:", unknown="unknown key(s)")
        files = entry.get("files")
        if not isinstance(files, str) or not files.strip():
            raise ConfigError(
                f"{where}.files must be a path pattern such as "
                "'landing/date={YYYY}-{MM}-{DD}/*.parquet', not {files!r}"
            )
        files = _absolute(files.strip(), base)
        placeholders = set(_PLACEHOLDER.findall(files))
        strange = placeholders - _KNOWN_PLACEHOLDERS
        if strange:
            raise ConfigError(
                f"{where}.files: unknown placeholder(s) {', '.join(sorted(strange))}; "
                f"use {{YYYY}} {{MM}} {{DD}} {{HH}}, {{SPAN}} or {{VERSION}}"
            )
        grain = _grain(where, entry.get("span"), placeholders)
        return cls(
            name=name,
            files=files,
            grain=grain,
            expect=_expect(where, entry.get("expect"), grain),
            late_window=_late_window(where, entry.get("late_window")),
            options=_options(where, entry.get("options")),
        )


@dataclass(frozen=True)
class SqlSourceSpec:
    """One declared SQL source: rows of ``sql`` past the watermark of ``cursor``.

    >>> spec = SqlSourceSpec.parse(
    ...     "orders",
    ...     {"sql": "SELECT * FROM o WHERE t > :watermark", "url": "duckdb:///shop.db",
    ...      "cursor": "t"},
    ...     Path("/p"),
    ... )
    >>> spec.url, spec.grain
    ('duckdb:////p/shop.db', 'number')
    """

    name: str
    sql: str
    url: str = field(repr=False)
    cursor: str
    start: Any = None
    batch_rows: int = 50_000

    #: a SQL source's spans are numbered, one per run that found rows
    grain = "number"
    expect = None
    late_window = None

    @property
    def where(self) -> str:
        """The database, its password hidden: what a data version names as its source."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except ArgumentError:
            return self.url.rsplit("@", 1)[-1]

    @classmethod
    def parse(cls, name: str, entry: Mapping[str, Any], base: Path) -> SqlSourceSpec:
        """The SQL source ``name`` declared by ``entry``; a relative SQLite or DuckDB
        file is taken from ``base`` (the folder of ``ctloop.yaml``)."""
        where = f"sources.{name}"
        _check_name(where, name)
        check_keys(
            entry, _SQL_KEYS, where=f"{where}:", unknown="unknown key(s)", after=" for a SQL source"
        )
        sql = entry.get("sql")
        if not isinstance(sql, str) or not sql.strip():
            raise ConfigError(
                f"{where}.sql must be a query such as "
                "'SELECT * FROM orders WHERE updated_at > :watermark', not {sql!r}"
            )
        if not _WATERMARK.search(sql):
            raise ConfigError(
                f"{where}.sql never uses :watermark, so every run would read every row "
                "again; filter on it (WHERE updated_at > :watermark)"
            )
        cursor = entry.get("cursor")
        if not isinstance(cursor, str) or not _IDENTIFIER.match(cursor):
            raise ConfigError(
                f"{where}.cursor must name the column of the query that only grows "
                f"(updated_at, id), not {cursor!r}"
            )
        batch_rows = entry.get("batch_rows", 50_000)
        if not isinstance(batch_rows, int) or isinstance(batch_rows, bool) or batch_rows < 1:
            raise ConfigError(f"{where}.batch_rows must be a whole number ≥ 1, not {batch_rows!r}")
        return cls(
            name=name,
            sql=sql.strip(),
            url=_database_url(where, entry.get("url"), base),
            cursor=cursor,
            start=entry.get("start"),
            batch_rows=batch_rows,
        )


#: a declared source of either kind
AnySource = SourceSpec | SqlSourceSpec


def parse_sources(section: Mapping[str, Any], base: Path) -> dict[str, AnySource]:
    """Every source of a ``sources:`` mapping, by name: a SQL source where the entry
    has ``sql:``, a file source otherwise."""
    found: dict[str, AnySource] = {}
    for name, entry in section.items():
        if isinstance(entry, Mapping) and "sql" in entry:
            if "files" in entry:
                raise ConfigError(
                    f"sources.{name} has both 'files:' and 'sql:'; a source reads one of "
                    "them: declare two sources"
                )
            found[str(name)] = SqlSourceSpec.parse(str(name), entry, base)
        else:
            found[str(name)] = SourceSpec.parse(str(name), entry, base)
    return found


def _check_name(where: str, name: str) -> None:
    if not _NAME.match(name):
        raise ConfigError(
            f"{where}: the source name {name!r} is invalid; use letters, digits, '_', "
            "'.', '-' (it names the data set the spans are stored in)"
        )


def _database_url(where: str, value: Any, base: Path) -> str:
    if not isinstance(value, str) or "://" not in value:
        raise ConfigError(
            f"{where}.url must be a SQLAlchemy URL (postgresql+psycopg://user@host/db, "
            f"sqlite:///shop.db) or duckdb:///shop.duckdb, not {value!r}"
        )

    def variable(match: re.Match[str]) -> str:
        if match.group(1) not in os.environ:
            raise ConfigError(
                f"{where}.url uses ${{{match.group(1)}}}, which is not set in the "
                "environment; export it or write the value into the URL"
            )
        return os.environ[match.group(1)]

    url = _ENV.sub(variable, value.strip())
    for scheme in ("sqlite:///", "duckdb:///"):
        if url.startswith(scheme):
            path = url[len(scheme) :]
            if path and not path.startswith("/") and not path.startswith(":memory:"):
                url = scheme + str(base / path)
    return url


def _absolute(files: str, base: Path) -> str:
    if "://" in files or Path(files).is_absolute():
        return files
    return str(base / files)


def _grain(where: str, value: Any, placeholders: set[str]) -> str:
    inferred = next((g for g, (needs, _) in GRAINS.items() if set(needs) <= placeholders), None)
    if value is None:
        if inferred is None:
            raise ConfigError(
                f"{where}.files has no span placeholders; put {{YYYY}}-{{MM}}-{{DD}} (or "
                "{SPAN}) in the path so each file belongs to a span"
            )
        return inferred
    if value not in GRAINS:
        raise ConfigError(f"{where}.span is {value!r}; use one of {', '.join(GRAINS)}")
    missing = [p for p in GRAINS[value][0] if p not in placeholders]
    if value == "week" and missing and set(_WEEK_BY_DATE) <= placeholders:
        missing = []
    if missing and value == "week":
        raise ConfigError(
            f"{where}: span 'week' needs {{YYYY}} and {{WW}} (the ISO week) or "
            "{YYYY}-{MM}-{DD} (the day each week starts) in files"
        )
    if missing:
        raise ConfigError(
            f"{where}: span {value!r} needs the placeholder(s) "
            f"{', '.join('{' + p + '}' for p in missing)} in files"
        )
    return str(value)


def _expect(where: str, value: Any, grain: str) -> str | None:
    if value is None or value is False:
        return None
    word = GRAINS[grain][1]
    if value is True or value == word:
        return word
    raise ConfigError(
        f"{where}.expect is {value!r}; a source with span {grain!r} can expect {word!r} "
        "(every span present, a gap is an error) or leave expect out"
    )


def _late_window(where: str, value: Any) -> timedelta | None:
    if value is None:
        return None
    from ctloop.durations import parse_duration

    return parse_duration(value, f"{where}.late_window")


def _options(where: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{where}.options must map fsspec storage options (endpoint_url: …), not {value!r}"
        )
    return dict(value)
