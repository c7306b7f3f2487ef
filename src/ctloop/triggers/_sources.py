"""What each kind of trigger watches, and when it has an occasion to fire.

A check reads the trigger's ``cursor`` (what it saw last time) and the world (the clock,
a folder, a table, a monitor verdict) and answers a :class:`Check`: the occasions to fire
(each with a ``fire_key`` naming it and the cursor to store once it is claimed) and,
when nothing fires, the cursor to store anyway. A trigger's first check records a
baseline and fires nothing: the data already there, or the cron slot already past, is not
news.

>>> from datetime import UTC, datetime
>>> spec = TriggerSpec("hourly", "p", "schedule", "0 * * * *")
>>> check_schedule(spec, {}, datetime(2026, 1, 1, 10, 30, tzinfo=UTC)).cursor
{'slot': '2026-01-01T10:00:00+00:00'}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ctloop.config import Settings
from ctloop.durations import parse_duration
from ctloop.errors import TriggerConfigError, TriggerError
from ctloop.triggers._spec import DEFAULT_ON, RUN_TRIGGER, TriggerSpec

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace

DEFAULT_GRACE = timedelta(minutes=10)
DEFAULT_MONITOR_EVERY = "1h"


@dataclass(frozen=True)
class Occasion:
    """One reason to fire: ``fire_key`` names it; ``cursor`` is stored when claimed."""

    fire_key: str
    reason: str
    cursor: dict[str, Any]
    run_trigger: str
    parameters: dict[str, Any] = field(default_factory=dict)
    cause_artifact_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """The answer of one check: occasions to fire, else a cursor to store (or None)."""

    occasions: tuple[Occasion, ...] = ()
    cursor: dict[str, Any] | None = None
    note: str = ""


@dataclass(frozen=True)
class Verdict:
    """A monitoring job's answer, as a monitor trigger sees it.

    ``verdict`` is ``ok``, ``drift``, ``degraded`` or ``no-data``; ``run_id`` the
    monitoring run; ``cause_artifact_id`` the report that explains it.
    """

    verdict: str
    run_id: str | None = None
    cause_artifact_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


#: runs the monitoring job of a monitor trigger and returns its verdict
VerdictSource = Callable[[TriggerSpec], Verdict]


def check_schedule(spec: TriggerSpec, cursor: dict[str, Any], now: datetime) -> Check:
    """Cron slots (UTC) due since the last handled slot (``cursor['slot']``)."""
    from croniter import croniter

    latest: datetime = croniter(spec.source, now).get_prev(datetime)
    if "slot" not in cursor:
        return Check(cursor={"slot": latest.isoformat()}, note="baseline")
    last = datetime.fromisoformat(cursor["slot"])
    if latest <= last:
        return Check()
    if spec.options.get("catchup"):
        slot = croniter(spec.source, last).get_next(datetime)  # oldest missed slot first
        return Check((_slot_occasion(spec, slot, now),))
    grace = parse_duration(
        spec.options.get("grace", "10m"),
        f"grace of {spec.qualified_name}",
        error=TriggerConfigError,
    )
    if now - latest > grace:
        skipped = f"skipped missed slot(s) up to {latest.isoformat()} (catchup is off)"
        return Check(cursor={"slot": latest.isoformat()}, note=skipped)
    return Check((_slot_occasion(spec, latest, now),))


def _slot_occasion(spec: TriggerSpec, slot: datetime, now: datetime) -> Occasion:
    late = now - slot
    reason = f"cron {spec.source!r} slot {slot.isoformat()}"
    if late > timedelta(minutes=1):
        reason += f" ({int(late.total_seconds())} s late)"
    return Occasion(
        fire_key=f"slot:{slot.isoformat()}",
        reason=reason,
        cursor={"slot": slot.isoformat()},
        run_trigger="schedule",
        details={"slot": slot.isoformat()},
    )


def check_new_files(spec: TriggerSpec, cursor: dict[str, Any]) -> Check:
    """New or changed files (or partition folders) matching the glob ``spec.source``."""
    found = list_matches(spec.source, spec.options.get("storage_options") or {})
    if "seen" not in cursor:
        return Check(cursor={"seen": found}, note=f"baseline of {len(found)} file(s)")
    seen = cursor["seen"]
    new = sorted(p for p, fingerprint in found.items() if seen.get(p) != fingerprint)
    if not new:
        return Check(cursor={"seen": found} if found != seen else None)
    key = _digest({p: found[p] for p in new})
    return _fire(
        spec,
        new,
        fire_key=f"files:{key}",
        reason=f"{len(new)} new file(s) matching {spec.source!r}: {_sample(new)}",
        cursor={"seen": found},
        run_trigger=RUN_TRIGGER["new_files"],
        details={"new_files": new},
    )


def _fire(
    spec: TriggerSpec,
    value: Any,
    *,
    fire_key: str,
    reason: str,
    cursor: dict[str, Any],
    run_trigger: str,
    details: dict[str, Any],
    note: str = "",
) -> Check:
    """A check with one occasion, passing ``value`` to the run as the parameter the
    trigger's ``parameter`` option names (none when it names none)."""
    parameter = spec.options.get("parameter")
    occasion = Occasion(
        fire_key=fire_key,
        reason=reason,
        cursor=cursor,
        run_trigger=run_trigger,
        parameters={parameter: value} if parameter else {},
        details=details,
    )
    return Check((occasion,), note=note)


def list_matches(pattern: str, storage_options: dict[str, Any]) -> dict[str, str]:
    """Paths matching an fsspec glob with a fingerprint each (size and modification time)."""
    from fsspec.core import url_to_fs

    fs, root = url_to_fs(pattern, **storage_options)
    local = "file" in _protocols(fs)
    matches: dict[str, str] = {}
    for path, info in fs.glob(root, detail=True).items():
        name = str(path) if local else fs.unstrip_protocol(str(path))
        stamp = info.get("mtime") or info.get("LastModified") or info.get("ETag") or ""
        matches[name] = f"{info.get('size')}:{stamp}"
    return matches


def check_new_rows(spec: TriggerSpec, cursor: dict[str, Any]) -> Check:
    """A change of the value of a DuckDB query (``SELECT max(ts) FROM 'x.parquet'``)."""
    value = query_value(spec.source, spec.qualified_name)
    if "value" not in cursor:
        return Check(cursor={"value": value}, note=f"baseline value {value}")
    if value == cursor["value"]:
        return Check()
    return _fire(
        spec,
        value,
        fire_key=f"value:{value}",
        reason=f"query value changed from {cursor['value']} to {value}",
        cursor={"value": value},
        run_trigger=RUN_TRIGGER["new_rows"],
        details={"previous": cursor["value"], "value": value},
    )


def query_value(sql: str, trigger: str) -> str | None:
    """The first column of the first row of a DuckDB query, as text."""
    import duckdb

    try:
        with duckdb.connect() as conn:
            row = conn.execute(sql).fetchone()
    except duckdb.Error as exc:
        raise TriggerError(
            f"the query of trigger {trigger} failed ({exc}); fix 'new_rows:' in ctloop.yaml"
        ) from exc
    if row is None or row[0] is None:
        return None
    return row[0].isoformat() if hasattr(row[0], "isoformat") else str(row[0])


def check_new_spans(
    spec: TriggerSpec, cursor: dict[str, Any], workspace: Workspace, settings: Settings
) -> Check:
    """Ingest the new spans of the source ``spec.source`` (as ``ctloop ingest run`` does)
    and fire when the source's data set holds a span it did not hold at the last check,
    or a span in a newer version (a late change) - whoever ingested it. The first check
    ingests what is there and records it as the baseline."""
    from ctloop.ingest import ingest_source, parse_sources, span_versions

    declared = parse_sources(settings.sources, settings.root)
    source = declared.get(spec.source)
    if source is None:
        raise TriggerConfigError(
            f"trigger {spec.qualified_name} watches source {spec.source!r}, which "
            f"{settings.root / 'ctloop.yaml'} does not declare under 'sources:' "
            f"(declared: {', '.join(declared) or 'none'})"
        )
    result = ingest_source(workspace, source, staging_root=settings.home / "tmp")
    version, spans = span_versions(workspace, source)
    problems = [f"span {span} failed: {why}" for span, why in result.failed.items()]
    if result.missing:
        problems.append(f"{len(result.missing)} span(s) missing: {_sample(result.missing)}")
    note = "; ".join(problems)
    now_seen = {"version": version, "spans": spans}
    if "spans" not in cursor:
        return Check(cursor=now_seen, note=f"baseline of {len(spans)} span(s); {note}".rstrip("; "))
    seen = cursor["spans"]
    new = sorted(s for s in spans if s not in seen)
    late = sorted(s for s in spans if s in seen and spans[s] > seen[s])
    if not new and not late:
        return Check(cursor=now_seen if now_seen != cursor else None, note=note)
    parts = [f"{len(new)} new span(s) ({_sample(new)})"] if new else []
    parts += [f"{len(late)} late change(s) ({_sample(late)})"] if late else []
    return _fire(
        spec,
        new + late,
        fire_key=f"spans:{spec.source}:{version}",
        reason=f"source {spec.source!r} version {version}: {', '.join(parts)}",
        cursor=now_seen,
        run_trigger=RUN_TRIGGER["new_spans"],
        details={"version": version, "new_spans": new, "late_spans": late},
        note=note,
    )


def check_monitor(
    spec: TriggerSpec, cursor: dict[str, Any], now: datetime, source: VerdictSource
) -> Check:
    """Run the trigger's monitoring job every ``every`` and fire on the verdicts in ``on``."""
    every = parse_duration(
        spec.options.get("every", DEFAULT_MONITOR_EVERY),
        f"every of {spec.qualified_name}",
        error=TriggerConfigError,
    )
    if "checked_at" in cursor and now - datetime.fromisoformat(cursor["checked_at"]) < every:
        return Check()
    verdict = source(spec)
    after = {"checked_at": now.isoformat(), "verdict": verdict.verdict, "run_id": verdict.run_id}
    if verdict.verdict not in spec.source.get("on", DEFAULT_ON):
        return Check(cursor=after, note=f"verdict {verdict.verdict}")
    key = verdict.run_id or verdict.cause_artifact_id or now.isoformat()
    return Check(
        (
            Occasion(
                fire_key=f"monitor:{key}",
                reason=f"monitor of model {spec.source['model']!r} says {verdict.verdict}",
                cursor=after,
                run_trigger="performance" if verdict.verdict == "degraded" else "drift",
                cause_artifact_id=verdict.cause_artifact_id,
                details={"verdict": verdict.verdict, "monitor_run_id": verdict.run_id},
            ),
        )
    )


def monitor_verdicts(
    workspace: Workspace,
    settings: Settings,
    *,
    end: Callable[[], datetime] | None = None,
) -> VerdictSource:
    """The verdict source that runs :func:`ctloop.monitor.run_monitor` on ``workspace``
    (its run is recorded with trigger ``schedule``; its alerts go to the sinks of
    ``alerts:``). Each window ends at ``end()`` (default now): a replay of history on
    event time (``monitoring: window_on: event_time``) gives the time it has reached."""

    def run(spec: TriggerSpec) -> Verdict:
        from ctloop.monitor import run_monitor

        options = spec.source
        result = run_monitor(
            workspace,
            options["model"],
            str(options.get("window", "1d")),
            end=end() if end is not None else None,
            trigger="schedule",
            settings=settings,
        )
        cause = getattr(result, "report_artifact_id", None)
        return Verdict(str(result.verdict), getattr(result, "run_id", None), cause)

    return run


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sample(paths: list[str], limit: int = 3) -> str:
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")
