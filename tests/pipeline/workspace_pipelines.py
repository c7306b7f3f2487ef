"""Pipelines whose steps use the run's workspace (module level, so worker processes can
import them)."""

from __future__ import annotations

import os

from ctloop import pipeline, step
from ctloop.pipeline.tracking import current_workspace


@step(cache=False)
def where_am_i(tag: str) -> dict:
    """Writes a registered model named ``tag`` into the run's workspace and says which
    workspace and process it ran in."""
    workspace = current_workspace()
    workspace.registry.create_model(tag, description=f"written by pid {os.getpid()}")
    return {
        "store_url": workspace.store_url,
        "artifact_url": workspace.artifact_url,
        "workspace_id": id(workspace),
        "pid": os.getpid(),
    }


@step(cache=False)
def count_runs(info: dict) -> int:
    return len(current_workspace().metadata.list_runs())


@pipeline
def locate(tag: str = "from-a-step") -> None:
    count_runs(where_am_i(tag))


@step(cache=False)
def model_named(name: str) -> str:
    """Fails until the run's workspace has a registered model called ``name``."""
    return current_workspace().registry.get_model(name).name


@pipeline
def needs_model(name: str = "ready") -> None:
    model_named(name)
