"""The artifact page: its metadata, files, where it came from and went, the model
versions made of it, and a viewer by its type (see :mod:`._viewers`); its HTML files
and the statistics report are served to a sandboxed frame of that page only.

>>> FRAME_HEADERS["Content-Security-Policy"].startswith("sandbox;")
True
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import APIRouter, Request

from ctloop.errors import NotFoundError
from ctloop.server._deps import workspace_of
from ctloop.server._ui._render import guarded, page
from ctloop.server._ui._session import page_caller
from ctloop.server._ui._viewers import html_files, record_kind, statistics_of, view_of

if TYPE_CHECKING:
    from fastapi.responses import Response

    from ctloop.store.records import ArtifactRecord
    from ctloop.store.workspace import Workspace

__all__ = ["FRAME_HEADERS", "artifact_pages"]

#: a stored report runs no script, reaches nothing, and shows only inside this server's
#: own pages: whatever HTML a step wrote, it cannot act as the signed-in user
FRAME_HEADERS = {
    "Content-Security-Policy": (
        "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "font-src data:; frame-ancestors 'self'"
    ),
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


def _viewed(request: Request, artifact_id: str) -> tuple[Workspace, ArtifactRecord]:
    """The workspace and the artifact a page shows, once the caller may view pages."""
    page_caller(request)
    workspace = workspace_of(request)
    return workspace, workspace.metadata.get_artifact(artifact_id)


def artifact_pages() -> APIRouter:
    """The routes of the artifact page and of the reports its frames show."""
    router = APIRouter(include_in_schema=False)

    @router.get("/artifacts/{artifact_id}")
    @guarded
    def artifact(request: Request, artifact_id: str) -> Response:
        workspace, found = _viewed(request, artifact_id)
        return page(
            request,
            "artifact.html",
            title=f"{found.type} {found.id[:8]} · ctloop",
            section="Runs",
            artifact=found,
            kind=record_kind(found.properties, found.type),
            facts=_facts(found),
            properties=json.dumps(found.properties, indent=2, sort_keys=True, default=str),
            files=[(f.path, f.size, _download(found, f.path)) for f in found.files[:200]],
            more_files=max(0, len(found.files) - 200),
            events=_events(workspace, found),
            versions=_versions(workspace, found),
            view=view_of(workspace, found),
            reports=[(p, f"/artifacts/{found.id}/html?path={quote(p)}") for p in html_files(found)],
        )

    @router.get("/artifacts/{artifact_id}/html")
    @guarded
    def stored_report(request: Request, artifact_id: str, path: str = "") -> Response:
        from fastapi.responses import HTMLResponse

        workspace, found = _viewed(request, artifact_id)
        entry = next((f for f in found.files if f.path == path), None)
        if entry is None or path not in html_files(found):
            raise NotFoundError(f"artifact {found.id[:8]} has no HTML file {path!r}")
        body = workspace.artifacts.get_bytes(entry.digest)
        return HTMLResponse(body, headers=FRAME_HEADERS)

    @router.get("/artifacts/{artifact_id}/report")
    @guarded
    def statistics_report(request: Request, artifact_id: str) -> Response:
        from fastapi.responses import HTMLResponse

        from ctloop.data._report import render_report

        workspace, found = _viewed(request, artifact_id)
        if record_kind(found.properties, found.type) != "Statistics":
            raise NotFoundError(f"artifact {found.id[:8]} is a {found.type}, not statistics")
        title = f"Statistics {found.id[:8]}"
        html = render_report(title=title, reference=statistics_of(workspace, found))
        return HTMLResponse(html, headers=FRAME_HEADERS)

    return router


def _facts(artifact: ArtifactRecord) -> list[tuple[str, Any]]:
    return [
        ("id", artifact.id),
        ("type", artifact.type),
        ("materializer", f"{artifact.materializer} {artifact.materializer_version}"),
        ("size", f"{artifact.size:,} bytes in {len(artifact.files)} files"),
        ("digest", artifact.digest),
        ("created", artifact.created_at.strftime("%Y-%m-%d %H:%M:%S")),
    ]


def _download(artifact: ArtifactRecord, path: str) -> str:
    return f"/api/v1/artifacts/{artifact.id}/download?path={quote(path)}"


def _events(workspace: Workspace, artifact: ArtifactRecord) -> list[dict[str, Any]]:
    """The steps that wrote and read it (the first 100), each with its run."""
    meta = workspace.metadata
    shown = []
    for event in meta.events_of_artifact(artifact.id)[:100]:
        execution = meta.get_execution(event.execution_id)
        shown.append(
            {
                "direction": "written by" if event.kind == "output" else "read by",
                "step": execution.step,
                "argument": event.name,
                "run": execution.run_id,
                "status": execution.status,
            }
        )
    return shown


def _versions(workspace: Workspace, artifact: ArtifactRecord) -> list[tuple[str, int]]:
    """The model versions made of this artifact (for a model)."""
    if artifact.type != "Model":
        return []
    registry = workspace.registry
    return [
        (model.name, version.version)
        for model in registry.list_models()
        for version in registry.list_versions(model.name)
        if version.artifact_id == artifact.id
    ]
