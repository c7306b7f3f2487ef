"""Small real records for the server tests: runs, an artifact with files, a model."""

from __future__ import annotations

from datetime import timedelta

from ctloop.store.records import (
    ArtifactRecord,
    EventRecord,
    ExecutionRecord,
    FileEntry,
    MetricRecord,
    ParamRecord,
    RunRecord,
    new_id,
    utcnow,
)
from ctloop.store.workspace import Workspace

T0 = utcnow() - timedelta(days=30)


def make_run(i: int, *, pipeline: str = "training", trigger: str = "manual") -> RunRecord:
    """Run ``i``: started ``i`` seconds after T0."""
    return RunRecord(
        new_id(),
        pipeline,
        "v1",
        "pipes.py:training",
        {"i": i},
        trigger,
        "ana",
        "host",
        1,
        "succeeded",
        T0 + timedelta(seconds=i),
    )


def store_artifact(workspace: Workspace, files: dict[str, bytes]) -> ArtifactRecord:
    """An artifact whose files are ``files``, bytes in the workspace's artifact store."""
    entries = tuple(
        FileEntry(path, workspace.artifacts.put_bytes(data), len(data))
        for path, data in files.items()
    )
    artifact = ArtifactRecord(
        id=new_id(),
        type="Model",
        materializer="files",
        materializer_version="1",
        digest=entries[0].digest,
        uri="",
        size=sum(e.size for e in entries),
        files=entries,
    )
    workspace.metadata.put_artifacts([artifact])
    return artifact


def run_with_model(workspace: Workspace) -> tuple[RunRecord, ArtifactRecord, str]:
    """A run with a step that wrote a model artifact, params and 50 metric points; the
    model registered as flights v1. Returns the run, the artifact, the execution id."""
    run = make_run(10_000, pipeline="flights")
    workspace.metadata.create_run(run)
    execution = ExecutionRecord(new_id(), run.id, "train", "train", "c", "k", "succeeded")
    workspace.metadata.create_execution(execution)
    artifact = store_artifact(workspace, {"model.json": b'{"w": 1}', "sub/readme.txt": b"hi"})
    workspace.metadata.add_events([EventRecord(execution.id, artifact.id, "output", "model")])
    workspace.metadata.log_batch(
        params=[ParamRecord(run.id, "lr", "0.1")],
        metrics=[MetricRecord(run.id, "loss", 1.0 / (s + 1), step=s) for s in range(50)],
    )
    workspace.registry.register_version("flights", artifact.id, run_id=run.id)
    return run, artifact, execution.id
