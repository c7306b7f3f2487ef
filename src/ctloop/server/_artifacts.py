"""Artifacts: metadata, download of their files, and their lineage.

A file is downloaded by the artifact's id and the file's path *as recorded in the
artifact* (``?path=`` must equal one of its ``files``); the bytes are found by that
entry's digest, so no path a client sends ever reaches a file system: traversal is
impossible, not filtered. A path that could not be a file's (``..``, absolute, a
backslash, NUL, the same URL-encoded) is still a 400 naming ``path``.

Lineage is one hop each way, paged: ``upstream`` lists the executions that wrote the
artifact, ``downstream`` those that read it (follow ``/executions/{id}`` for their other
inputs and outputs).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from ctloop.errors import NotFoundError
from ctloop.server._deps import needs, render, workspace_of
from ctloop.server._errors import BadRequestError
from ctloop.server._paging import MAX_LIMIT, page_of
from ctloop.server._paths import path_problem
from ctloop.store._keys import Role
from ctloop.store.records import ArtifactRecord, EventRecord

__all__ = ["artifacts_router"]


def artifacts_router() -> APIRouter:
    """The routes of artifacts."""

    router = APIRouter(tags=["artifacts"], dependencies=[Depends(needs(Role.VIEWER))])

    @router.get("/artifacts", summary="List artifacts, oldest first")
    def list_artifacts(
        request: Request,
        type: str | None = Query(None, description="only artifacts of this type"),
        cursor: str | None = None,
        limit: int = Query(100, ge=1, le=MAX_LIMIT),
    ) -> dict[str, Any]:
        found = workspace_of(request).metadata.list_artifacts()
        kept = sorted((a for a in found if type is None or a.type == type), key=_artifact_key)
        return page_of(kept, key=_artifact_key, cursor=cursor, limit=limit, render=render)

    @router.get("/artifacts/{artifact_id}", summary="An artifact's metadata")
    def get_artifact(request: Request, artifact_id: str) -> dict[str, Any]:
        return render(workspace_of(request).metadata.get_artifact(artifact_id))

    @router.get(
        "/artifacts/{artifact_id}/download",
        summary="Download a file of an artifact",
        response_class=_binary_response(),
    )
    def download(
        request: Request,
        artifact_id: str,
        path: str | None = Query(None, description="a path listed in the artifact's files"),
    ) -> Response:

        workspace = workspace_of(request)
        artifact = workspace.metadata.get_artifact(artifact_id)
        name, digest = _file_of(artifact, path)
        data = workspace.artifacts.get_bytes(digest)
        disposition = f'attachment; filename="{name.rsplit("/", 1)[-1] or "artifact"}"'
        return Response(
            data,
            media_type="application/octet-stream",
            headers={"Content-Disposition": disposition, "ETag": f'"{digest}"'},
        )

    @router.get("/artifacts/{artifact_id}/lineage", summary="Executions that wrote or read it")
    def lineage(
        request: Request,
        artifact_id: str,
        direction: Literal["upstream", "downstream"] = "upstream",
        cursor: str | None = None,
        limit: int = Query(100, ge=1, le=MAX_LIMIT),
    ) -> dict[str, Any]:
        store = workspace_of(request).metadata
        artifact = store.get_artifact(artifact_id)
        kind = "output" if direction == "upstream" else "input"
        found = (e for e in store.events_of_artifact(artifact.id) if e.kind == kind)
        events = sorted(found, key=_event_key)  # the cursor is a place in this order
        page = page_of(events, key=_event_key, cursor=cursor, limit=limit, render=render)
        return {"artifact_id": artifact.id, "direction": direction, **page}

    return router


def _artifact_key(artifact: ArtifactRecord) -> list[Any]:
    return [artifact.created_at.isoformat(), artifact.id]


def _event_key(event: EventRecord) -> list[Any]:
    return [event.execution_id, event.name]


def _file_of(artifact: ArtifactRecord, path: str | None) -> tuple[str, str]:
    """The (path, digest) of the file ``path`` of ``artifact``; a single-file artifact
    needs no path."""
    if path is None:
        if len(artifact.files) == 1:
            return artifact.files[0].path, artifact.files[0].digest
        if not artifact.files:
            raise NotFoundError(f"artifact {artifact.id} has no files to download")
        raise _no_file(artifact, f"artifact {artifact.id} has several files; pass ?path=")
    problem = path_problem(path)
    if problem is not None:
        raise BadRequestError(f"artifact path {path!r} cannot be a file's: {problem}", "path")
    for entry in artifact.files:
        if entry.path == path:
            return entry.path, entry.digest
    raise _no_file(artifact, f"artifact {artifact.id} has no file {path!r}")


def _no_file(artifact: ArtifactRecord, why: str) -> NotFoundError:
    listed = ", ".join(repr(f.path) for f in artifact.files[:10])
    return NotFoundError(f"{why}; its files are {listed}")


def _binary_response() -> Any:

    return Response
