"""``ctloop env``: promote models through the environments of ``ctloop.yaml``, behind an
approval where an environment requires one.

    ctloop env list
    ctloop env promote churn@champion --to staging
    ctloop env promote churn@7 --to prod          # refused: records a request, names the fix
    ctloop env approve churn@7 --to prod --reason "reviewed ci-report"
    ctloop env promote churn@7 --to prod          # approved: copied, registered, deployed
    ctloop env status

Each environment has its own workspace (``store_url``, ``artifact_url``); a promotion
into one comes from the environment declared before it (``--from`` says otherwise).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ctloop.cli._common import JsonOpt, command_group, emit, say

if TYPE_CHECKING:
    from ctloop.registry import Environment
    from ctloop.store._approvals import ApprovalRecord
    from ctloop.store.workspace import Workspace

__all__ = ["env_app"]

env_app = command_group(
    "Environments (test, staging, prod): promote models with their lineage, approvals."
)

RefArg = Annotated[
    str, typer.Argument(help="MODEL@ALIAS or MODEL@VERSION in the source environment.")
]
ToOpt = Annotated[str, typer.Option("--to", help="The environment to promote into.")]
FromOpt = Annotated[
    str | None,
    typer.Option("--from", help="The source environment (default: the one declared before)."),
]
ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why (kept in the record).")]


def _environments() -> dict[str, Environment]:
    from ctloop.registry import load_environments

    return load_environments()


def _source(name: str, stack: ExitStack) -> Workspace:
    """The workspace of the environment ``name``, or the project's own."""
    from ctloop.registry import PROJECT, environment_named

    if name == PROJECT:
        from ctloop.cli.workspace import open_workspace

        return stack.enter_context(open_workspace())
    return stack.enter_context(environment_named(name, _environments()).open())


def _target(to: str, source: str | None) -> Environment:
    from dataclasses import replace

    from ctloop.registry import environment_named

    environments = _environments()
    target = environment_named(to, environments)
    if source is not None and source != target.source:
        from ctloop.registry import PROJECT

        if source != PROJECT:
            environment_named(source, environments)
        target = replace(target, source=source)
    return target


@env_app.command("list")
def env_list(as_json: JsonOpt = False) -> None:
    """List the environments: where each keeps models, serves, and whether it needs approval."""
    environments = _environments()
    if as_json:
        emit([_environment_row(e) for e in environments.values()])
        return
    from rich.table import Table

    from ctloop.cli.output import console

    table = Table(show_edge=False, box=None)
    for column in ("environment", "from", "store", "artifacts", "endpoint", "approval"):
        table.add_column(column)
    for env in environments.values():
        row = _environment_row(env)
        cells = [str(row[k] or "-") for k in ("name", "source", "store_url", "artifact_url")]
        cells += [env.endpoint or "-", "required" if env.requires_approval else "-"]
        table.add_row(*cells)
    console.print(table)


def _environment_row(env: Environment) -> dict[str, Any]:
    from ctloop.store._sql_engine import mask_url

    return {
        "name": env.name,
        "source": env.source,
        "store_url": mask_url(env.store_url),
        "artifact_url": env.artifact_url,
        "endpoint": env.endpoint,
        "requires_approval": env.requires_approval,
    }


@env_app.command("promote")
def env_promote(
    reference: RefArg,
    to: ToOpt,
    source: FromOpt = None,
    alias: Annotated[str, typer.Option(help="The alias to point at it there.")] = "champion",
    wait: Annotated[
        str | None,
        typer.Option(help="Wait this long (30m, 2h) for an approval instead of stopping."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Copy a model version and its lineage into an environment and point ALIAS at it
    there; where the environment requires approval, only an approved version moves."""
    from ctloop.errors import ApprovalError
    from ctloop.registry import promote_model

    target_env = _target(to, source)
    with ExitStack() as stack:
        source_ws = _source(target_env.source, stack)
        target_ws = stack.enter_context(target_env.open())
        deadline = None if wait is None else time.monotonic() + _seconds(wait)
        while True:
            try:
                done = promote_model(
                    reference, target_env, source=source_ws, target=target_ws, alias=alias
                )
                break
            except ApprovalError:
                if deadline is None or time.monotonic() > deadline:
                    raise
                _refuse_if_rejected(reference, target_env, source_ws, target_ws)
                time.sleep(2.0)
    if as_json:
        emit(done)
        return
    say(f"promoted {done.describe()}")
    if done.copied:
        say(f"copied {done.copied} blob(s) into {target_env.artifact_url}")
    if target_env.endpoint:
        say(f"{target_env.name} serves at {target_env.endpoint}")


def _seconds(wait: str) -> float:
    from ctloop.durations import parse_duration

    return parse_duration(wait, "--wait").total_seconds()


def _refuse_if_rejected(
    reference: str, env: Environment, source: Workspace, target: Workspace
) -> None:
    """While waiting: stop at once when the request was rejected."""
    from ctloop.errors import ApprovalError

    version = source.registry.resolve(reference)
    digest = source.metadata.get_artifact(version.artifact_id).digest
    latest = target.approvals.list(model=version.model, environment=env.name, limit=20)
    mine = [r for r in latest if r.digest == digest]
    if mine and mine[0].state == "rejected":
        raise ApprovalError(
            f"promoting {version.reference} to {env.name} was rejected by "
            f"{mine[0].decided_by}: {mine[0].reason} (approval #{mine[0].id})"
        )


def _decide(reference: str, to: str, source: str | None, state: str, reason: str) -> Any:
    from ctloop.registry import decide_promotion

    target_env = _target(to, source)
    with ExitStack() as stack:
        source_ws = _source(target_env.source, stack)
        target_ws = stack.enter_context(target_env.open())
        return decide_promotion(
            reference, target_env, state, source=source_ws, target=target_ws, reason=reason
        )


def _decision_command(state: str, doc: str) -> Callable[..., None]:
    """``ctloop env approve`` (``state`` approved) or ``ctloop env reject`` (rejected)."""

    def command(
        reference: RefArg,
        to: ToOpt,
        reason: ReasonOpt,
        source: FromOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        record = _decide(reference, to, source, state, reason)
        if as_json:
            emit(record)
            return
        say(f"{state} {record.describe()}")
        if state == "approved":
            say(
                f"promote it with `ctloop env promote {record.reference} --to {record.environment}`"
            )

    command.__doc__ = doc
    return command


env_app.command("approve")(
    _decision_command(
        "approved",
        "Approve promoting a version into an environment (recorded: who, when, why; on a "
        "ctloop server it needs the admin role). Then run `ctloop env promote` again.",
    )
)
env_app.command("reject")(
    _decision_command(
        "rejected",
        "Reject promoting a version into an environment (recorded: who, when, why).",
    )
)


@env_app.command("status")
def env_status(
    environment: Annotated[str | None, typer.Option("--env", help="Only this environment.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many approvals per environment.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Show what each environment serves (alias -> version, where it came from) and its
    approvals, newest first."""
    from ctloop.registry import environment_named

    environments = _environments()
    chosen = (
        [environment_named(environment, environments)] if environment else environments.values()
    )
    report = [_status_of(env, limit) for env in chosen]
    if as_json:
        emit(report)
        return
    for entry in report:
        _print_status(entry)


def _status_of(env: Environment, limit: int) -> dict[str, Any]:
    with env.open() as workspace:
        models = []
        for model in workspace.registry.list_models():
            for alias, number in sorted(model.aliases.items()):
                version = workspace.registry.get_version(model.name, number)
                models.append(
                    {
                        "model": model.name,
                        "alias": alias,
                        "version": number,
                        "from": version.tags.get("ctloop.source.version", ""),
                        "source": version.tags.get("ctloop.source.environment", ""),
                        "origin_run_id": version.tags.get("ctloop.origin.run_id") or version.run_id,
                    }
                )
        approvals = workspace.approvals.list(environment=env.name, limit=limit)
    return {"environment": env.name, "models": models, "approvals": approvals}


def _print_status(entry: dict[str, Any]) -> None:
    say(f"{entry['environment']}:")
    if not entry["models"]:
        say("  no models yet")
    for row in entry["models"]:
        origin = f", trained by run {str(row['origin_run_id'])[:8]}" if row["origin_run_id"] else ""
        came = f" <- {row['from']} ({row['source']})" if row["from"] else ""
        say(f"  {row['model']}@{row['alias']} = v{row['version']}{came}{origin}")
    approvals: list[ApprovalRecord] = entry["approvals"]
    for record in approvals:
        say(f"  approval {record.describe()}")
