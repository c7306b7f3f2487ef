"""``ctloop scheduler`` and ``ctloop triggers``: start pipeline runs from the triggers
declared in ``ctloop.yaml``.

    ctloop scheduler                        # evaluate every 30 s until SIGTERM / Ctrl-C
    ctloop scheduler --once                 # evaluate once, wait for the runs, exit (cron, CI)
    ctloop triggers list
    ctloop triggers fire flights-training/nightly -p max_depth=8
    ctloop triggers history --trigger flights-training/new-data --json
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ctloop.cli._common import JsonOpt, ParamOpt, command_group, emit
from ctloop.store.statuses import FiringStatus

if TYPE_CHECKING:
    from ctloop.triggers import Scheduler, TriggerEvent

triggers_app = command_group(
    "Pipeline triggers from ctloop.yaml: list them, fire one now, see their history."
)

#: events too routine to print while the scheduler runs
_QUIET = ("idle", "cooldown")


def scheduler(
    once: Annotated[
        bool, typer.Option("--once", help="Evaluate every trigger once, wait for the runs, exit.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between evaluations.", min=0.1)
    ] = 30.0,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate triggers and launch pipeline runs until stopped (SIGTERM or Ctrl-C: exit 0)."""
    import signal

    printer = _json_line if as_json else _event_line
    sched = _scheduler(on_event=lambda e: None if e.outcome in _QUIET else printer(e))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: sched.stop())
    if once:
        sched.evaluate()
        _wait(sched)
        return
    _say(f"scheduler started: {_count(sched)} trigger(s), every {interval:g} s", as_json)
    sched.run_forever(interval)
    _say("scheduler stopped; runs still going finish on their own", as_json)


def _scheduler(on_event: Callable[[TriggerEvent], None] | None = None) -> Scheduler:
    """The scheduler of the working directory: its triggers and its workspace."""
    from ctloop.cli.workspace import open_workspace
    from ctloop.config import Settings
    from ctloop.triggers import Scheduler, load_specs

    settings = Settings.load()
    workspace = open_workspace(settings)
    return Scheduler(load_specs(settings), workspace, settings=settings, on_event=on_event)


def _wait(sched: Scheduler) -> None:
    while sched.has_children() and not sched.stopping:
        sched.wait(timeout_s=1.0)
    sched.settle()
    sched.detach()


def _count(sched: Scheduler) -> int:
    return sum(len(p.triggers) for p in sched.specs)


@triggers_app.command("list")
def triggers_list(as_json: JsonOpt = False) -> None:
    """List declared triggers with their last firing, cooldown and active runs."""
    from ctloop.cli.workspace import open_workspace
    from ctloop.config import Settings
    from ctloop.triggers import load_specs
    from ctloop.triggers._views import trigger_rows

    settings = Settings.load()
    rows = trigger_rows(open_workspace(settings), load_specs(settings))
    if as_json:
        emit(rows)
        return
    columns = ["trigger", "kind", "watches", "last_fired_at", "cooldown_until", "active"]
    _table(rows, columns)


@triggers_app.command("fire")
def triggers_fire(
    name: Annotated[str, typer.Argument(help="PIPELINE/TRIGGER, a unique TRIGGER, or PIPELINE.")],
    param: ParamOpt = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Return once the run is launched.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fire a trigger now (on demand); wait for its run unless --no-wait."""
    from ctloop.triggers._views import firing_row, parse_fire_params

    sched = _scheduler()
    firing = sched.fire(name, parse_fire_params(sched.specs, name, param or []))
    if not no_wait:
        _wait(sched)
        firing = sched.store.get_firing(firing.id)
    row = firing_row(firing)
    if as_json:
        emit(row)
    else:
        run = _cell("run_id", row["run_id"])
        _say(f"firing {row['id']} of {row['trigger']}: {row['status']}, run {run}", False)
    if firing.status in FiringStatus.unsuccessful():
        raise typer.Exit(1)


@triggers_app.command("history")
def triggers_history(
    trigger: Annotated[str | None, typer.Option(help="Only firings of PIPELINE/TRIGGER.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many firings.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """List firings, newest first: why each fired, its run and how it ended."""
    from ctloop.cli.workspace import open_workspace
    from ctloop.triggers._views import firing_row

    store = open_workspace().triggers
    rows = [firing_row(f) for f in store.list_firings(trigger=trigger, limit=limit)]
    if as_json:
        emit(rows)
        return
    _table(rows, ["id", "trigger", "status", "run_id", "fired_at", "reason"])


# -- printing ----------------------------------------------------------------------------
def _event_line(event: TriggerEvent) -> None:
    from datetime import datetime

    firing = f" (firing {event.firing_id})" if event.firing_id is not None else ""
    stamp = datetime.now().strftime("%H:%M:%S")
    _say(f"{stamp} {event.trigger}: {event.outcome}{firing} {event.detail}".rstrip(), False)


def _json_line(event: TriggerEvent) -> None:
    import json
    from dataclasses import asdict

    sys.stdout.write(json.dumps(asdict(event)) + "\n")
    sys.stdout.flush()


def _say(text: str, as_json: bool) -> None:
    if as_json:
        return
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    from rich.table import Table

    from ctloop.cli.output import console

    table = Table(*columns)
    for row in rows:
        table.add_row(*(_cell(c, row.get(c)) for c in columns))
    console.print(table)


def _cell(column: str, value: Any) -> str:
    from datetime import datetime

    from ctloop.cli.output import short, when

    if value is None:
        return "-"
    if isinstance(value, datetime):
        return when(value)
    return short(value) if column == "run_id" else str(value)
