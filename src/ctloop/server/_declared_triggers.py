"""Every trigger the project declares, with what the trigger store remembers of it.

``GET /api/v1/triggers/declared`` answers one item per trigger declared under
``pipelines:`` in the server's ``ctloop.yaml`` — evaluated yet or not — and one per
trigger the store knows that ``ctloop.yaml`` no longer declares (``declared: false``):
its condition, its schedule, the last evaluation, when it is due next, its firings by
status and the runs its newest firings started. A ``ctloop.yaml`` that cannot be read
is answered as ``error`` (a sentence naming the entry) beside the stored triggers.

When a trigger is due next (``next_due_at``, UTC; ``null`` where no time is known):

- ``schedule``: the next cron slot after now (after the cool-down, if one runs);
- ``monitor``: ``every`` (default 1h) after its monitoring job last ran, or the next
  scheduler tick when it never ran;
- ``new_files``, ``new_rows``, ``new_spans``: every scheduler tick (``null``);
- ``manual``: only on demand (``null``).

>>> from datetime import UTC, datetime
>>> next_slot("0 3 * * *", datetime(2026, 3, 1, 12, tzinfo=UTC)).isoformat()
'2026-03-02T03:00:00+00:00'
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import CtloopError

if TYPE_CHECKING:
    from ctloop.store._triggers import FiringRecord, TriggerStateRecord
    from ctloop.store.workspace import Workspace
    from ctloop.triggers._spec import PipelineSpec, TriggerSpec

__all__ = ["declared_triggers", "next_slot", "project_triggers"]

#: the runs listed per trigger (its newest firings')
RUNS_SHOWN = 5
_SCHEDULE_TEXT = {
    "new_files": "each scheduler tick",
    "new_rows": "each scheduler tick",
    "new_spans": "each scheduler tick",
    "manual": "on demand",
}


def project_triggers(root: Path | None) -> tuple[list[PipelineSpec], str | None]:
    """The pipelines and triggers the ``ctloop.yaml`` of ``root`` (default: the working
    directory) declares, and the error that kept it from being read (``None`` if none)."""
    from ctloop.config import Settings
    from ctloop.triggers import load_specs

    try:
        return load_specs(Settings.load(root)), None
    except CtloopError as exc:
        return [], str(exc)


def next_slot(cron: str, after: datetime) -> datetime:
    """The first slot of ``cron`` (UTC) after ``after``."""
    from croniter import croniter

    found: datetime = croniter(cron, after).get_next(datetime)
    return found


def declared_triggers(
    workspace: Workspace, specs: Sequence[PipelineSpec], now: datetime
) -> list[dict[str, Any]]:
    """One item per declared trigger (in declaration order), then per stored trigger no
    longer declared (by name)."""
    store = workspace.triggers
    states = {s.name: s for s in store.list_states()}
    by_trigger: dict[str, list[FiringRecord]] = {}
    for firing in store.list_firings():  # newest first
        by_trigger.setdefault(firing.trigger, []).append(firing)
    items = []
    for pipeline in specs:
        for trigger in pipeline.triggers:
            name = trigger.qualified_name
            item = _declared(pipeline, trigger, states.get(name), now)
            items.append(item | _firings(by_trigger.get(name, [])))
    declared = {item["trigger"] for item in items}
    for name in sorted(set(states) - declared):
        items.append(_stored_only(states[name]) | _firings(by_trigger.get(name, [])))
    return items


def _declared(
    pipeline: PipelineSpec, trigger: TriggerSpec, state: TriggerStateRecord | None, now: datetime
) -> dict[str, Any]:
    from ctloop.triggers._views import watched

    schedule, due = _schedule(trigger, state, now)
    return {
        "trigger": trigger.qualified_name,
        "pipeline": pipeline.reference,
        "kind": trigger.kind,
        "declared": True,
        "condition": watched(trigger),
        "schedule": schedule,
        "cooldown_s": trigger.cooldown.total_seconds() if trigger.cooldown else None,
        "max_concurrent": trigger.max_concurrent,
        "parameters": {**pipeline.parameters, **trigger.parameters},
        "last_checked_at": state.last_checked_at if state else None,
        "last_fired_at": state.last_fired_at if state else None,
        "cooldown_until": state.cooldown_until if state else None,
        "next_due_at": due,
    }


def _stored_only(state: TriggerStateRecord) -> dict[str, Any]:
    return {
        "trigger": state.name,
        "pipeline": state.pipeline,
        "kind": state.kind,
        "declared": False,
        "condition": None,
        "schedule": "not declared in ctloop.yaml",
        "cooldown_s": None,
        "max_concurrent": None,
        "parameters": {},
        "last_checked_at": state.last_checked_at,
        "last_fired_at": state.last_fired_at,
        "cooldown_until": state.cooldown_until,
        "next_due_at": None,
    }


def _schedule(
    trigger: TriggerSpec, state: TriggerStateRecord | None, now: datetime
) -> tuple[str, datetime | None]:
    """The trigger's schedule in words and when it is due next."""
    from ctloop.durations import parse_duration
    from ctloop.triggers._sources import DEFAULT_MONITOR_EVERY

    cooling = state.cooldown_until if state and state.cooldown_until else None
    after = max(now, cooling) if cooling else now
    if trigger.kind == "schedule":
        return f"cron {trigger.source} (UTC)", next_slot(str(trigger.source), after)
    if trigger.kind == "monitor":
        text = str(trigger.options.get("every", DEFAULT_MONITOR_EVERY))
        every = parse_duration(text, f"every of {trigger.qualified_name}")
        ran = _monitor_ran(state)
        due = ran + every if ran else now
        return f"monitoring job every {text}", max(due, after)
    return _SCHEDULE_TEXT.get(trigger.kind, "each scheduler tick"), None


def _monitor_ran(state: TriggerStateRecord | None) -> datetime | None:
    """When a monitor trigger's job last ran (its cursor's ``checked_at``)."""
    checked = (state.cursor if state else {}).get("checked_at")
    if not checked:
        return None
    try:
        return datetime.fromisoformat(str(checked))
    except ValueError:
        return None


def _firings(firings: Sequence[FiringRecord]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for firing in firings:
        counts[firing.status] = counts.get(firing.status, 0) + 1
    started = [
        {"firing": f.id, "run_id": f.run_id, "status": f.status, "fired_at": f.fired_at}
        for f in firings
        if f.run_id
    ]
    return {"firings": counts, "runs": started[:RUNS_SHOWN], "runs_started": len(started)}


def later(moment: datetime | None, now: datetime) -> str:
    """``moment`` relative to ``now`` in words: ``in 3h 5m``, ``due now``.

    >>> from datetime import UTC, datetime
    >>> later(datetime(2026, 1, 1, 3, 5, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    'in 3h 5m'
    """
    if moment is None:
        return ""
    left = moment - now
    if left <= timedelta(0):
        return "due now"
    minutes = int(left.total_seconds() // 60)
    if not minutes:
        return "in under a minute"
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours) + [f"{minutes}m"]
    return "in " + " ".join(parts[:2])
