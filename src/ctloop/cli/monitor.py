"""``ctloop monitor`` and ``ctloop alerts``: monitoring runs, their reports, and alerts.

    ctloop monitor run flights --window 1d --end 2026-01-02T00:00:00Z --json
    ctloop monitor show latest --html report.html
    ctloop monitor list flights
    ctloop monitor canary flights --apply   # judge the canary; promote or roll it back
    ctloop alerts list --json
    ctloop alerts incidents --open   # alerts grouped by model and kind
    ctloop alerts deliver            # retry deliveries still pending

``monitor run`` exits 0 for every verdict (``ok``, ``drift``, ``degraded``, ``no-data``);
read the verdict from its output.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ctloop.cli._common import JsonOpt, command_group, emit, say
from ctloop.cli.workspace import open_workspace
from ctloop.store.statuses import RunStatus

if TYPE_CHECKING:
    from ctloop.monitor import MonitorReport
    from ctloop.store.workspace import Workspace

monitor_app = command_group(
    "Monitor served models: drift, skew, performance and attributions per window."
)
alerts_app = command_group("Alerts raised by monitoring, and their delivery.")


@monitor_app.command("run")
def run(
    model: Annotated[str, typer.Argument(help="Model: NAME (its champion), NAME@ALIAS or NAME@N.")],
    window: Annotated[str, typer.Option(help="Window: 30m, 1h, 1d, 1w, or N requests.")] = "1d",
    end: Annotated[
        str | None, typer.Option(help="End of the window (ISO 8601); default now.")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Parquet file of logged predictions instead of the log.")
    ] = None,
    trigger: Annotated[str, typer.Option(help="Trigger recorded on the run.")] = "manual",
    no_alerts: Annotated[bool, typer.Option("--no-alerts", help="Record no alerts.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run the monitoring pipeline on one window and print its verdict."""
    from ctloop.config import Settings
    from ctloop.monitor._job import run_monitor

    settings = Settings.load()
    result = run_monitor(
        open_workspace(settings),
        model,
        window,
        end,
        trigger=trigger,
        data=data,
        settings=settings,
        alert=not no_alerts,
    )
    if as_json:
        emit(
            {
                **result.report.summary(),
                "run_id": result.run_id,
                "report": result.report_artifact_id,
                "alerts": [a.id for a in result.alerts],
            }
        )
        return
    say(f"{result.report.model} v{result.report.version}: {result.verdict}")
    for reason in result.report.reasons:
        say(f"  - {reason}")
    say(f"report {result.report_artifact_id[:12]} (run {result.run_id[:8]})")


@monitor_app.command("canary")
def canary(
    deployment: Annotated[str, typer.Argument(help="Deployment whose canary to judge.")],
    apply: Annotated[
        bool, typer.Option("--apply", help="Promote or roll back as judged (default: only show).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Judge a canary on its labelled traffic against the primary version."""
    from ctloop.config import Settings
    from ctloop.monitor._canary import judge_canary, settle_canary

    settings = Settings.load()
    judge = settle_canary if apply else judge_canary
    found = judge(open_workspace(settings), deployment, settings=settings)
    if found is None:
        if as_json:
            emit(None)
        else:
            say(f"deployment {deployment!r} has no canary")
        return
    if as_json:
        emit({**found.to_dict(), "applied": apply and found.decision != "wait"})
        return
    say(f"{found.decision}: {found.reason}")
    if not apply and found.decision != "wait":
        say(f"run `ctloop monitor canary {deployment} --apply` to {found.decision}")


@monitor_app.command("show")
def show(
    report: Annotated[
        str, typer.Argument(help="Report artifact id (or prefix), or latest.")
    ] = "latest",
    html: Annotated[Path | None, typer.Option(help="Write the HTML report to this file.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a monitoring report (the latest by default)."""
    from ctloop.config import Settings

    settings = Settings.load()
    workspace = open_workspace(settings)
    artifact_id = _latest_report_id(workspace, None) if report == "latest" else report
    found = _load_report(workspace, artifact_id, settings.home / "cache")
    if html is not None:
        from ctloop.monitor._html import render_monitor_report

        html.write_text(render_monitor_report(found), encoding="utf-8")
    if as_json:
        emit(found.to_dict())
        return
    summary = found.summary()
    say(f"{summary['model']} v{summary['version']}: {summary['verdict']}")
    say(f"window {summary['window']}")
    for reason in summary["reasons"]:
        say(f"  - {reason}")
    if html is not None:
        say(f"wrote {html}")


@monitor_app.command("list")
def list_reports(
    model: Annotated[str | None, typer.Argument(help="Only this model's reports.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """List monitoring runs and their verdicts, newest first."""
    from ctloop.config import Settings

    settings = Settings.load()
    workspace = open_workspace(settings)
    rows = []
    for run_id, artifact_id in _report_ids(workspace, model)[:limit]:
        found = _load_report(workspace, artifact_id, settings.home / "cache")
        rows.append({"run_id": run_id, "report": artifact_id, **found.summary()})
    if as_json:
        emit(rows)
        return
    for row in rows:
        drifted = ", ".join(row["drifted_features"]) or "-"
        say(
            f"{row['report'][:12]}  {row['model']} v{row['version']}  {row['verdict']:<8}  "
            f"{row['window'].get('end')}  drifted: {drifted}"
        )


@alerts_app.command("list")
def list_alerts(
    subject: Annotated[str | None, typer.Option(help="Only alerts about this model.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List recorded alerts, oldest first, with their delivery state."""
    from ctloop.monitor._alerts import alert_payload

    records = open_workspace().alerts.list(subject=subject)
    if as_json:
        emit([{**alert_payload(r), "delivery": r.delivery} for r in records])
        return
    for r in records:
        states = ", ".join(f"{k}: {v.get('status')}" for k, v in r.delivery.items()) or "-"
        say(f"{r.id:>5}  {r.created_at:%Y-%m-%d %H:%M}  {r.severity:<8}  {r.cause}  [{states}]")


@alerts_app.command("incidents")
def list_incidents(
    subject: Annotated[str | None, typer.Option(help="Only incidents of this model.")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only open incidents.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List incidents (alerts grouped by model and kind), oldest first: status, windows
    that showed the cause, first and last seen, worst value."""
    from ctloop.monitor._incidents import list_incidents as incidents_of

    found = incidents_of(open_workspace(), subject)
    if open_only:
        found = [i for i in found if i.status == "open"]
    if as_json:
        emit([i.to_dict() for i in found])
        return
    for i in found:
        worst = f"{i.worst:.4g}" if i.worst is not None else "-"
        say(
            f"{i.status:<8}  {i.severity:<8}  x{i.count:<3}  {i.opened_at:%Y-%m-%d %H:%M} to "
            f"{i.last_seen:%Y-%m-%d %H:%M}  worst {worst}  {i.cause}"
        )


@alerts_app.command("deliver")
def deliver(as_json: JsonOpt = False) -> None:
    """Retry alert deliveries that are still pending and whose backoff has passed."""
    from ctloop.config import Settings
    from ctloop.monitor._alerts import deliver_pending

    settings = Settings.load()
    retried = deliver_pending(open_workspace(settings), settings=settings)
    if as_json:
        emit([{"id": r.id, "delivery": r.delivery} for r in retried])
        return
    say(f"retried {len(retried)} alert(s)")


def _report_ids(workspace: Workspace, model: str | None) -> list[tuple[str, str]]:
    """(run id, report artifact id) of successful monitoring runs, newest first."""
    from ctloop.monitor._job import PIPELINE_NAME

    meta = workspace.metadata
    found = []
    for run in meta.list_runs(pipeline=PIPELINE_NAME, status=RunStatus.SUCCEEDED):
        if model is not None and run.parameters.get("request", {}).get("model") != model:
            continue
        for execution in meta.list_executions(run.id):
            if execution.step != "monitor_report":
                continue
            for event in meta.events_of_execution(execution.id):
                if event.kind == "output" and event.name == "report":
                    found.append((run.id, event.artifact_id))
    return found


def _latest_report_id(workspace: Workspace, model: str | None) -> str:
    from ctloop.errors import MonitorError

    found = _report_ids(workspace, model)
    if not found:
        raise MonitorError("there is no monitoring report yet; run `ctloop monitor run MODEL`")
    return found[0][1]


def _load_report(workspace: Workspace, artifact_id: str, cache_dir: Path) -> MonitorReport:
    from ctloop.artifacts import load_value
    from ctloop.errors import MonitorError
    from ctloop.monitor._job import record_type

    record = workspace.metadata.get_artifact(artifact_id)
    if record_type(record) != "MonitorReport":
        raise MonitorError(
            f"artifact {artifact_id} is a {record_type(record)}, not a MonitorReport; "
            "list reports with `ctloop monitor list`"
        )
    value: MonitorReport = load_value(record, workspace.artifacts, cache_dir=cache_dir)
    return value
