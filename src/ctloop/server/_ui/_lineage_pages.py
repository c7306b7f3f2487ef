"""The lineage page: a graph of artifacts and the step executions that wrote and read
them, from any artifact id, run id, data version (``NAME@N``) or model
(``NAME@ALIAS``, ``NAME@VERSION``).

The server names the starting nodes only; the page grows the graph a node at a time in
the browser, upstream or downstream, from the API's lineage routes
(``/api/v1/artifacts/{id}/lineage``, ``/api/v1/executions/{id}``), so a pipeline of 500
steps costs what the user opens, not what it holds.

>>> sinks([("a", "x"), ("b", "y")], [("b", "x")])
['b']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request

from ctloop.errors import CtloopError, NotFoundError
from ctloop.server._deps import workspace_of
from ctloop.server._ui._render import guarded, page, script_json
from ctloop.server._ui._session import page_caller

if TYPE_CHECKING:
    from fastapi.responses import Response

    from ctloop.store.records import ArtifactRecord, ExecutionRecord
    from ctloop.store.workspace import Workspace

__all__ = ["lineage_pages", "sinks"]

#: the most starting nodes a run shows (its last steps); the rest are a click away
MAX_ROOTS = 20


def lineage_pages() -> APIRouter:
    """The route of the lineage page."""
    router = APIRouter(include_in_schema=False)

    @router.get("/lineage/{ref:path}")
    @guarded
    def lineage(request: Request, ref: str) -> Response:
        page_caller(request)
        what, roots = starting_nodes(workspace_of(request), ref.strip())
        return page(
            request,
            "lineage.html",
            title=f"Lineage of {ref} · ctloop",
            section="Runs",
            ref=ref,
            what=what,
            roots=script_json(roots),
            count=len(roots),
        )

    return router


def starting_nodes(workspace: Workspace, ref: str) -> tuple[str, list[dict[str, Any]]]:
    """What ``ref`` names (in words) and the graph's first nodes."""
    meta = workspace.metadata
    if "@" in ref:
        return _model_or_data_version(workspace, ref)
    try:
        return "artifact", [artifact_node(meta.get_artifact(ref))]
    except NotFoundError:
        pass
    try:
        run = meta.get_run(ref)
    except NotFoundError:
        raise NotFoundError(
            f"{ref!r} is no artifact id, run id, data version (NAME@N) or model "
            "(NAME@ALIAS); copy an id from the runs or an artifact's page"
        ) from None
    executions = _latest_attempts(meta.list_executions(run.id))
    events = [(e.id, ev) for e in executions for ev in meta.events_of_execution(e.id)]
    produced = [(e, ev.artifact_id) for e, ev in events if ev.kind == "output"]
    read = [(e, ev.artifact_id) for e, ev in events if ev.kind == "input"]
    wrote = {e for e, _ in produced}
    last = set(sinks(produced, read)) | {e.id for e in executions if e.id not in wrote}
    shown = [execution_node(e) for e in executions if e.id in last]
    return f"the last steps of run {run.id[:8]} of {run.pipeline}", shown[:MAX_ROOTS]


def sinks(produced: Sequence[tuple[str, str]], read: Sequence[tuple[str, str]]) -> list[str]:
    """The executions (of ``produced``: execution, artifact) none of whose outputs is read
    by another execution of ``read`` (execution, artifact), in order."""
    read_by_other = {artifact for execution, artifact in read}
    wrote_read = {execution for execution, artifact in produced if artifact in read_by_other}
    return list(dict.fromkeys(e for e, _ in produced if e not in wrote_read))


def artifact_node(artifact: ArtifactRecord, label: str = "") -> dict[str, Any]:
    """An artifact as the page's script draws it."""
    return {
        "kind": "artifact",
        "id": artifact.id,
        "label": label or artifact.type,
        "sub": f"{artifact.type} {artifact.id[:8]}" if label else artifact.id[:12],
    }


def execution_node(execution: ExecutionRecord) -> dict[str, Any]:
    """A step execution as the page's script draws it."""
    return {
        "kind": "execution",
        "id": execution.id,
        "label": execution.step,
        "sub": execution.status,
        "status": execution.status,
        "run": execution.run_id,
    }


def _model_or_data_version(workspace: Workspace, ref: str) -> tuple[str, list[dict[str, Any]]]:
    from ctloop.artifacts._data_versions import resolve
    from ctloop.errors import ModelNotFoundError

    try:
        version = workspace.registry.resolve(ref)
    except ModelNotFoundError:
        try:
            record, artifact = resolve(ref, workspace.metadata)
        except CtloopError as exc:
            raise NotFoundError(
                f"{ref!r} is neither a registered model nor a data version: {exc}"
            ) from None
        label = f"{record.name}@{record.version}"
        return f"data version {label}", [artifact_node(artifact, label)]
    artifact = workspace.metadata.get_artifact(version.artifact_id)
    label = f"{version.model} v{version.version}"
    return f"model {label} ({ref})", [artifact_node(artifact, label)]


def _latest_attempts(executions: list[ExecutionRecord]) -> list[ExecutionRecord]:
    latest: dict[str, ExecutionRecord] = {}
    for execution in executions:
        if execution.step not in latest or execution.attempt >= latest[execution.step].attempt:
            latest[execution.step] = execution
    return list(latest.values())
