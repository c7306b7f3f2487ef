"""Source declarations: the ``sources:`` section of ``ctloop.yaml``.

A file source names where its files land and how a path maps to a span::

    sources:
      flights:
        files: "landing/date={YYYY}-{MM}-{DD}/*.parquet"   # a folder here, or s3://…
        span: day            # one span per day (inferred from the placeholders)
        expect: daily        # a missing day is an error, not a silent reuse
        late_window: 2d      # re-ingest a span whose files change within 2 days

Placeholders: ``{YYYY}``, ``{MM}``, ``{DD}``, ``{HH}`` (a calendar span), ``{SPAN}`` (a
numbered span) and ``{VERSION}`` (the highest version of a span wins, as in TFX's
ExampleGen). ``*`` matches within one path segment, ``**`` across segments.
``options`` are fsspec storage options for a remote landing place (``endpoint_url`` of
an S3-compatible server, say).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from ctloop.errors import ConfigError

__all__ = ["GRAINS", "SourceSpec", "parse_sources"]

#: span grain → the placeholders it needs and the ``expect`` word for it
GRAINS: dict[str, tuple[tuple[str, ...], str]] = {
    "hour": (("YYYY", "MM", "DD", "HH"), "hourly"),
    "day": (("YYYY", "MM", "DD"), "daily"),
    "month": (("YYYY", "MM"), "monthly"),
    "number": (("SPAN",), "consecutive"),
}
_PLACEHOLDER = re.compile(r"\{([A-Z]+)\}")
_KNOWN_PLACEHOLDERS = {"YYYY", "MM", "DD", "HH", "SPAN", "VERSION"}
_KEYS = {"files", "span", "expect", "late_window", "options"}
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
        if not _NAME.match(name):
            raise ConfigError(
                f"{where}: the source name {name!r} is invalid; use letters, digits, '_', "
                "'.', '-' (it names the data set the spans are stored in)"
            )
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where} must be a mapping with 'files:', not {entry!r}")
        unknown = set(entry) - _KEYS
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(_KEYS))}"
            )
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


def parse_sources(section: Mapping[str, Any], base: Path) -> dict[str, SourceSpec]:
    """Every source of a ``sources:`` mapping, by name."""
    return {str(name): SourceSpec.parse(str(name), entry, base) for name, entry in section.items()}


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
