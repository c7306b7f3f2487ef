"""MLflow's artifact proxy (``mlflow-artifacts``): the client uploads and downloads a
run's or a logged model's files through the server, into the workspace's artifact store.

Paths are ``EXPERIMENT/RUN_ID/artifacts/…`` or ``EXPERIMENT/models/MODEL_ID/artifacts/…``
(what the experiments' ``mlflow-artifacts:/`` locations resolve to); the bytes are found
by the digest the upload recorded, so no path a client sends reaches a file system.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ctloop.server._auth import Caller
from ctloop.server._deps import audit_write
from ctloop.server._mlflow._bridge import bridge_of
from ctloop.server._mlflow._protocol import MlflowError, mlflow_router

__all__ = ["artifacts_router", "listing"]

#: the largest file one upload may carry
MAX_UPLOAD = 2 * 1024**3


def listing(files: dict[str, Any], folder: str) -> list[dict[str, Any]]:
    """The entries directly under ``folder`` of ``{path: artifact}``, MLflow's shape.

    >>> class A: size = 3
    >>> listing({"model/MLmodel": A(), "model/env/conda.yaml": A()}, "model")
    [{'path': 'MLmodel', 'is_dir': False, 'file_size': 3}, {'path': 'env', 'is_dir': True}]
    """
    start = folder.strip("/") + "/" if folder.strip("/") else ""
    entries: dict[str, dict[str, Any]] = {}
    for path, artifact in files.items():
        if not path.startswith(start):
            continue
        head, slash, _ = path[len(start) :].partition("/")
        if slash:
            entries.setdefault(head, {"path": head, "is_dir": True})
        else:
            entries[head] = {"path": head, "is_dir": False, "file_size": artifact.size}
    return [entries[k] for k in sorted(entries)]


def artifacts_router() -> APIRouter:
    """The routes of the artifact proxy (mounted under ``/api/2.0/mlflow-artifacts``)."""
    router, viewer, editor, _ = mlflow_router()

    @router.get("/artifacts", dependencies=[viewer])
    def list_artifacts(request: Request, path: str = "") -> dict[str, Any]:
        bridge = bridge_of(request)
        execution_id, rest = bridge.owner(path)
        return {"files": listing(bridge.files(execution_id), rest)}

    @router.get("/artifacts/{path:path}", dependencies=[viewer])
    def download(request: Request, path: str) -> Response:
        bridge = bridge_of(request)
        execution_id, rest = bridge.owner(path)
        data = bridge.read_file(execution_id, rest)
        return Response(data, media_type="application/octet-stream")

    @router.put("/artifacts/{path:path}")
    async def upload(request: Request, path: str, caller: Caller = editor) -> dict[str, Any]:
        from starlette.concurrency import run_in_threadpool

        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_UPLOAD:
                raise MlflowError.invalid(f"{path!r} is larger than {MAX_UPLOAD} bytes")
        bridge = bridge_of(request)

        def store() -> None:
            execution_id, rest = bridge.owner(path)
            record = bridge.put_file(execution_id, rest, bytes(data))
            detail = {"path": rest, "size": record.size, "artifact_id": record.id}
            audit_write(
                request, caller, "mlflow.artifact.upload", f"execution {execution_id}", detail
            )

        await run_in_threadpool(store)
        return {}

    @router.delete("/artifacts/{path:path}", dependencies=[editor])
    def delete(request: Request, path: str) -> dict[str, Any]:
        raise MlflowError(
            "BAD_REQUEST",
            "deleting artifacts is not supported by this server: artifacts are removed "
            "with their runs by `ctloop gc`",
        )

    return router
