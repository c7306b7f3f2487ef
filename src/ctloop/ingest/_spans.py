"""Finding a source's spans: which landed files belong to which span.

A pattern such as ``landing/date={YYYY}-{MM}-{DD}/*.parquet`` is split into a fixed
root (``landing``) and a regular expression over the paths below it; every file that
matches belongs to the span its placeholders name (``2013-03-01``). Where the pattern
has ``{VERSION}``, only the highest version of each span counts.

Span keys sort in time order: ``2013-03-01``, ``2013-03-01T07`` (hours), ``2013-03``
(months), or a zero-padded number for ``{SPAN}``. A week's key is the day it starts
(``2013-03-04``): the Monday of an ISO week ``{YYYY}-W{WW}``, or the date in the path; an
expected weekly source wants a span every seven days from its first.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from ctloop.errors import ConfigError, DataVersionError
from ctloop.ingest._spec import SourceSpec

__all__ = [
    "LandedFile",
    "discover",
    "expected_between",
    "span_key_of_number",
    "span_time",
    "split_pattern",
]

_SPAN_DIGITS = 10  # {SPAN} keys are zero-padded so that they sort as numbers
_STEPS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}


@dataclass(frozen=True)
class LandedFile:
    """A file of a span: its path inside the span, where it lies, and its size."""

    name: str
    location: str
    size: int


def split_pattern(pattern: str) -> tuple[str, re.Pattern[str]]:
    """The fixed root of ``pattern`` and a regular expression over the paths below it.

    >>> root, regex = split_pattern("/land/date={YYYY}-{MM}-{DD}/*.csv")
    >>> root, regex.fullmatch("date=2013-03-01/a.csv").groupdict()
    ('/land', {'YYYY': '2013', 'MM': '03', 'DD': '01'})
    """
    segments = pattern.split("/")
    fixed = 0
    while fixed < len(segments) - 1 and not re.search(r"[{*?\[]", segments[fixed]):
        fixed += 1
    root = "/".join(segments[:fixed]) or "/"
    regex = "/".join(_segment_regex(segment) for segment in segments[fixed:])
    return root, re.compile(regex)


def _segment_regex(segment: str) -> str:
    if segment == "**":
        return "(?:.*)"
    out = []
    for token in re.split(r"(\{[A-Z]+\}|\*|\?)", segment):
        if token == "*":
            out.append("[^/]*")
        elif token == "?":
            out.append("[^/]")
        elif token in ("{YYYY}",):
            out.append(r"(?P<YYYY>\d{4})")
        elif token in ("{MM}", "{DD}", "{HH}", "{WW}"):
            out.append(rf"(?P<{token[1:-1]}>\d{{2}})")
        elif token in ("{SPAN}", "{VERSION}"):
            out.append(rf"(?P<{token[1:-1]}>\d+)")
        else:
            out.append(re.escape(token))
    return "".join(out)


def discover(spec: SourceSpec) -> dict[str, list[LandedFile]]:
    """The landed files of ``spec`` by span key (the highest ``{VERSION}`` of each span
    only), each span's files sorted by name."""
    root, regex = split_pattern(spec.files)
    found: dict[str, dict[int, list[LandedFile]]] = {}
    for relative, location, size in _walk(root, spec.options):
        match = regex.fullmatch(relative)
        if match is None:
            continue
        groups = match.groupdict()
        key = _span_key(spec, groups, relative)
        version = int(groups.get("VERSION") or 0)
        name = _name_in_span(relative, match)
        found.setdefault(key, {}).setdefault(version, []).append(LandedFile(name, location, size))
    spans = {}
    for key, versions in found.items():
        files = versions[max(versions)]
        spans[key] = sorted(files, key=lambda f: f.name)
    return dict(sorted(spans.items()))


def _name_in_span(relative: str, match: re.Match[str]) -> str:
    """The file's path inside its span: what follows the last placeholder's segment."""
    last = max(match.end(group) for group in match.groupdict() if match.group(group))
    slash = relative.find("/", last)
    return relative[slash + 1 :] if slash >= 0 else relative.rsplit("/", 1)[-1]


def _walk(root: str, options: dict[str, Any]) -> list[tuple[str, str, int]]:
    """``(path relative to root, location, size)`` of every file below ``root``."""
    if "://" not in root:
        base = Path(root)
        if not base.is_dir():
            raise DataVersionError(
                f"the source folder {root} does not exist; create it or fix 'files:' of "
                "the source in ctloop.yaml"
            )
        files: list[tuple[str, str, int]] = []
        _scan(str(base), "", files)
        return files
    import fsspec

    fs, path = fsspec.core.url_to_fs(root, **options)
    fs.invalidate_cache()  # files land between runs: list what is there now
    protocol = root.split("://", 1)[0]
    listed = fs.find(path, detail=True)
    return [
        (name[len(path) :].lstrip("/"), f"{protocol}://{name}", int(info.get("size") or 0))
        for name, info in sorted(listed.items())
        if info.get("type") != "directory"
    ]


def _scan(folder: str, prefix: str, into: list[tuple[str, str, int]]) -> None:
    """Files below ``folder``, in name order, hidden ones left out: one ``scandir`` per
    folder, whose entries carry their type and (one ``stat``) size."""
    with os.scandir(folder) as listing:
        entries = sorted(listing, key=lambda e: e.name)
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):  # as os.walk: no loops through links
            _scan(entry.path, f"{prefix}{entry.name}/", into)
        elif entry.is_file():
            into.append((f"{prefix}{entry.name}", entry.path, entry.stat().st_size))


def _span_key(spec: SourceSpec, groups: dict[str, str | None], relative: str) -> str:
    if spec.grain == "number":
        return str(int(groups["SPAN"] or 0)).zfill(_SPAN_DIGITS)
    parts = {k: int(v) for k, v in groups.items() if v is not None and k != "VERSION"}
    try:
        if "WW" in parts:  # an ISO week: the span starts on its Monday
            day = date.fromisocalendar(parts["YYYY"], parts["WW"], 1)
            moment = datetime(day.year, day.month, day.day)
        else:
            moment = datetime(
                parts["YYYY"], parts.get("MM", 1), parts.get("DD", 1), parts.get("HH", 0)
            )
    except ValueError as exc:
        raise DataVersionError(
            f"source {spec.name!r}: {relative} names no real date ({exc}); rename or remove it"
        ) from exc
    return _format(spec.grain, moment)


def _format(grain: str, moment: datetime) -> str:
    # f-strings, not strftime: this runs for every landed file and expected span
    day = f"{moment.year:04d}-{moment.month:02d}"
    if grain == "month":
        return day
    day += f"-{moment.day:02d}"
    return f"{day}T{moment.hour:02d}" if grain == "hour" else day


def span_time(grain: str, key: str) -> datetime | int:
    """The start of span ``key`` (a datetime, or the span's number)."""
    if grain == "number":
        return int(key)
    formats = {"hour": "%Y-%m-%dT%H", "day": "%Y-%m-%d", "week": "%Y-%m-%d", "month": "%Y-%m"}
    return datetime.strptime(key, formats[grain])


def parse_span(grain: str, text: str, what: str) -> str:
    """A span key from what a user typed (``2013-03-01``, ``2013-03``, ``17``)."""
    try:
        if grain == "number":
            return str(int(text)).zfill(_SPAN_DIGITS)
        if grain == "week" and "W" in text.upper():  # 2013-W09, an ISO week
            year, _, week = text.upper().partition("-W")
            day = date.fromisocalendar(int(year), int(week), 1)
            return _format(grain, datetime(day.year, day.month, day.day))
        moment = datetime.fromisoformat(text if grain != "month" or len(text) > 7 else text + "-01")
    except ValueError as exc:
        example = {
            "number": "17",
            "month": "2013-03",
            "hour": "2013-03-01T07",
            "week": "2013-03-04 or 2013-W10",
        }.get(grain, "2013-03-01")
        raise ConfigError(f"{what} {text!r} is not a span; write one like {example}") from exc
    return _format(grain, moment)


def expected_between(grain: str, first: str, last: str) -> list[str]:
    """Every span key from ``first`` to ``last`` (inclusive) at ``grain``."""
    if grain == "number":
        return [str(n).zfill(_SPAN_DIGITS) for n in range(int(first), int(last) + 1)]
    start, end = span_time(grain, first), span_time(grain, last)
    assert isinstance(start, datetime) and isinstance(end, datetime)
    keys, moment = [], start
    while moment <= end:
        keys.append(_format(grain, moment))
        if grain == "month":
            moment = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1)
        else:
            moment += _STEPS[grain]
    return keys


def span_key_of_number(number: int) -> str:
    """The key of numbered span ``number`` (zero-padded, so that keys sort as numbers)."""
    return str(number).zfill(_SPAN_DIGITS)


def display(grain: str, key: str) -> str:
    """A span key as a person reads it (numbers without their padding)."""
    return str(int(key)) if grain == "number" else key
