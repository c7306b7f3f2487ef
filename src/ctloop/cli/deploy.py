"""``ctloop deploy``, ``ctloop deployments`` and ``ctloop feedback``: what is served, every
change to it, and the labels that arrive later.

    ctloop deploy flights                                  # serve flights@champion
    ctloop deploy flights --canary challenger --traffic 10 --reason "v4 beats v3 offline"
    ctloop deploy flights --shadow challenger
    ctloop deploy flights --promote-canary --reason "no errors in a day"
    ctloop deploy flights --stop-canary
    ctloop deployments list
    ctloop deployments history flights --json
    ctloop feedback ingest labels.csv --model flights

Every change is recorded with who, when and why (``--reason``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ctloop.cli._common import JsonOpt, command_group, emit, show, show_list
from ctloop.cli.workspace import open_workspace

if TYPE_CHECKING:
    from ctloop.store._deployments import DeploymentState, RollbackPolicy
    from ctloop.store._operations_records import DeploymentRecord
    from ctloop.store.workspace import Workspace

deployments_app = command_group(
    "Deployments: what each endpoint serves (primary, canary, shadow) and its history."
)
feedback_app = command_group("Ground-truth labels for served predictions, joined by request id.")

NameArg = Annotated[str, typer.Argument(help="Deployment name, e.g. flights.")]


def deploy(
    name: NameArg,
    model: Annotated[
        str | None,
        typer.Option(help="Registered model to serve (default: the deployment's, else NAME)."),
    ] = None,
    primary: Annotated[
        str | None, typer.Option(help="Alias or version number to serve, e.g. champion or 3.")
    ] = None,
    canary: Annotated[
        str | None, typer.Option(help="Start a canary: alias or version, e.g. challenger.")
    ] = None,
    traffic: Annotated[float, typer.Option(help="Canary share of traffic, percent.")] = 10.0,
    sticky: Annotated[
        bool, typer.Option("--sticky/--no-sticky", help="Keep a client on one side.")
    ] = True,
    max_error_rate: Annotated[
        float | None, typer.Option(help="Roll the canary back above this error rate.")
    ] = None,
    max_p99_ms: Annotated[
        float | None, typer.Option(help="Roll the canary back above this p99 latency.")
    ] = None,
    window: Annotated[
        float | None, typer.Option(help="Seconds of requests the rollback checks look at.")
    ] = None,
    min_requests: Annotated[
        int | None, typer.Option(help="Requests needed in the window before a rollback.")
    ] = None,
    shadow: Annotated[
        str | None, typer.Option(help="Mirror requests to this alias or version.")
    ] = None,
    promote_canary: Annotated[
        bool, typer.Option("--promote-canary", help="Make the canary the champion.")
    ] = False,
    stop_canary: Annotated[bool, typer.Option("--stop-canary", help="Stop the canary.")] = False,
    rollback_canary: Annotated[
        bool, typer.Option("--rollback-canary", help="Roll the canary back.")
    ] = False,
    stop_shadow: Annotated[bool, typer.Option("--stop-shadow", help="Stop the shadow.")] = False,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (kept in the history).")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create or change a deployment: primary, canary, shadow, promote, stop."""
    from ctloop.errors import DeploymentError
    from ctloop.store import _deployments as d

    chosen = [
        flag
        for flag, on in (
            ("--canary", canary is not None),
            ("--shadow", shadow is not None),
            ("--promote-canary", promote_canary),
            ("--stop-canary", stop_canary),
            ("--rollback-canary", rollback_canary),
            ("--stop-shadow", stop_shadow),
        )
        if on
    ]
    if len(chosen) > 1:
        raise DeploymentError(
            f"options {' and '.join(chosen)} were given together; make one change per command"
        )
    workspace = open_workspace()
    policy = _policy(workspace, name, max_error_rate, max_p99_ms, window, min_requests)
    if canary is not None:
        state = d.start_canary(workspace, name, canary, traffic, sticky, policy, reason=reason)
    elif shadow is not None:
        state = d.start_shadow(workspace, name, shadow, reason=reason)
    elif promote_canary:
        state = d.promote_canary(workspace, name, reason=reason)
    elif stop_canary:
        state = d.stop_canary(workspace, name, reason=reason)
    elif rollback_canary:
        state = d.rollback_canary(workspace, name, reason=reason)
    elif stop_shadow:
        state = d.stop_shadow(workspace, name, reason=reason)
    else:
        state = _deploy(workspace, name, model, primary, policy, reason)
    _show_state(name, state, as_json)


def _policy(
    workspace: Workspace,
    name: str,
    max_error_rate: float | None,
    max_p99_ms: float | None,
    window: float | None,
    min_requests: int | None,
) -> RollbackPolicy | None:
    from dataclasses import replace

    from ctloop.store._deployments import RollbackPolicy, load_deployment

    given: dict[str, Any] = {
        "max_error_rate": max_error_rate,
        "max_p99_ms": max_p99_ms,
        "window_s": window,
        "min_requests": min_requests,
    }
    changes = {k: v for k, v in given.items() if v is not None}
    if not changes:
        return None
    current = load_deployment(workspace, name)
    return replace(current.rollback if current else RollbackPolicy(), **changes)


def _deploy(
    workspace: Workspace,
    name: str,
    model: str | None,
    primary: str | None,
    policy: RollbackPolicy | None,
    reason: str,
) -> DeploymentState:
    from dataclasses import replace

    from ctloop.store import _deployments as d

    current = d.load_deployment(workspace, name)
    chosen_model = model or (current.model if current else name)
    state = d.deploy(workspace, name, chosen_model, primary or "champion", reason=reason)
    if policy is not None and policy != state.rollback:
        state = replace(state, rollback=policy)
        d.record_change(workspace, name, "deploy", state, reason or "rollback policy changed")
    return state


def _show_state(name: str, state: DeploymentState, as_json: bool) -> None:
    if as_json:
        emit({"name": name, **state.to_dict()})
        return
    show(f"deployment {name}: {_describe(state.to_dict())}")


def _describe(state: dict[str, Any]) -> str:
    parts = [f"{state.get('model')}@{state.get('primary')}"]
    canary, shadow = state.get("canary"), state.get("shadow")
    if canary:
        sticky = "sticky" if canary.get("sticky") else "not sticky"
        parts.append(f"canary v{canary['version']} at {canary['traffic']:g}% ({sticky})")
    if shadow:
        parts.append(f"shadow v{shadow['version']}")
    return ", ".join(parts)


_NO_DEPLOYMENTS = "no deployments yet: create one with `ctloop deploy NAME`"


@deployments_app.command("list")
def deployments_list(as_json: JsonOpt = False) -> None:
    """List deployments with their current routing."""
    records = open_workspace().deployments.list()
    show_list(records, as_json, _record_dict, _NO_DEPLOYMENTS, lambda: _table_of(records))


def _table_of(records: list[DeploymentRecord]) -> Any:
    table = _table("deployment", "serves", "last change", "when", "by")
    for r in records:
        table.add_row(r.name, _describe(r.state), r.action, _when(r), r.created_by)
    return table


@deployments_app.command("show")
def deployments_show(name: NameArg, as_json: JsonOpt = False) -> None:
    """Show the current state of a deployment."""
    from ctloop.errors import DeploymentError

    record = open_workspace().deployments.latest(name)
    if record is None:
        raise DeploymentError(
            f"deployment {name!r} does not exist; create it with `ctloop deploy {name}`"
        )
    if as_json:
        emit(_record_dict(record))
        return
    show(f"deployment {name}: {_describe(record.state)}")
    show(f"last change: {record.action} by {record.created_by} at {_when(record)}")
    show(f"rollback policy: {record.state.get('rollback')}")


@deployments_app.command("history")
def deployments_history(
    name: NameArg,
    limit: Annotated[int | None, typer.Option(help="Only the newest N changes.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every change of a deployment, oldest first: who, when, why."""
    records = open_workspace().deployments.history(name, limit)
    if as_json:
        emit([_record_dict(r) for r in records])
        return
    if not records:
        show(f"deployment {name!r} has no history: create it with `ctloop deploy {name}`")
        return
    table = _table("#", "when", "action", "serves", "by", "host", "reason")
    for r in records:
        row = (str(r.id), _when(r), r.action, _describe(r.state), r.created_by, r.host, r.reason)
        table.add_row(*row)
    show(table)


@feedback_app.command("ingest")
def feedback_ingest(
    file: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON-lines file of labels.")],
    model: Annotated[str | None, typer.Option(help="Model the labels are for.")] = None,
    id_column: Annotated[str, typer.Option(help="Column of request ids.")] = "request_id",
    label_column: Annotated[str, typer.Option(help="Column of labels.")] = "label",
    as_json: JsonOpt = False,
) -> None:
    """Store a file of ground-truth labels as one feedback batch."""
    from dataclasses import asdict

    from ctloop.artifacts._logs import ingest_feedback_file

    batch = ingest_feedback_file(open_workspace(), file, model, id_column, label_column)
    if as_json:
        emit(asdict(batch))
        return
    show(f"ingested {batch.rows} labels from {file} as artifact {batch.artifact_id[:8]}")


def _record_dict(record: DeploymentRecord) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(record)


def _when(record: DeploymentRecord) -> str:
    from ctloop.cli.output import when

    return when(record.created_at)


def _table(*columns: str) -> Any:
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in columns:
        table.add_column(column)
    return table
