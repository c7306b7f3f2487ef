"""Lineage: a walk over events from an artifact back to the data, code and parameters
that made it.

>>> graph = upstream(store, artifact_id)           # doctest: +SKIP
>>> [n.label for n in graph.nodes.values()]        # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ctloop.store.metadata import MetadataStore, resolve_run
from ctloop.store.records import ArtifactRecord, ExecutionRecord, RunRecord
from ctloop.store.statuses import ExecutionStatus


@dataclass(frozen=True)
class LineageNode:
    """An artifact or an execution in a lineage graph."""

    kind: str
    id: str
    label: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LineageEdge:
    """``source`` flowed into ``target`` (artifact → execution as input ``name``, or
    execution → artifact as output ``name``)."""

    source: str
    target: str
    name: str


@dataclass
class Lineage:
    """Nodes and edges reachable upstream from ``roots``."""

    roots: list[str]
    nodes: dict[str, LineageNode] = field(default_factory=dict)
    edges: list[LineageEdge] = field(default_factory=list)

    def parents(self, node_id: str) -> list[tuple[LineageEdge, LineageNode]]:
        """Edges into ``node_id`` with their source nodes."""
        return [(e, self.nodes[e.source]) for e in self.edges if e.target == node_id]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Walker:
    def __init__(self, store: MetadataStore) -> None:
        self.store = store
        self.runs: dict[str, RunRecord] = {}
        self.data_names = _data_version_names(store)

    def walk(self, lineage: Lineage, artifact_id: str) -> None:
        stack = [artifact_id]
        while stack:
            current = stack.pop()
            if current in lineage.nodes:
                continue
            artifact = self.store.get_artifact(current)
            lineage.nodes[current] = self._artifact_node(artifact)
            producer = self._producer(current)
            if producer is None:
                continue
            if producer.id not in lineage.nodes:
                lineage.nodes[producer.id] = self._execution_node(producer)
                for event in self.store.events_of_execution(producer.id):
                    if event.kind == "input":
                        lineage.edges.append(
                            LineageEdge(event.artifact_id, producer.id, event.name)
                        )
                        stack.append(event.artifact_id)
            name = next(
                (
                    e.name
                    for e in self.store.events_of_execution(producer.id)
                    if e.kind == "output" and e.artifact_id == current
                ),
                "output",
            )
            lineage.edges.append(LineageEdge(producer.id, current, name))

    def _producer(self, artifact_id: str) -> ExecutionRecord | None:
        """The execution that first wrote the artifact (not a later cache hit)."""
        outputs = [e for e in self.store.events_of_artifact(artifact_id) if e.kind == "output"]
        executions = [self.store.get_execution(e.execution_id) for e in outputs]
        if not executions:
            return None
        original = [x for x in executions if x.status == ExecutionStatus.SUCCEEDED]
        return min(original or executions, key=lambda x: x.started_at or _EPOCH)

    def _artifact_node(self, artifact: ArtifactRecord) -> LineageNode:
        names = self.data_names.get(artifact.id, [])
        label = names[0] if names else artifact.type
        return LineageNode(
            "artifact",
            artifact.id,
            label,
            {
                "type": artifact.type,
                "digest": artifact.digest,
                "size": artifact.size,
                "data_versions": names,
                "properties": artifact.properties,
            },
        )

    def _execution_node(self, execution: ExecutionRecord) -> LineageNode:
        run = self.runs.get(execution.run_id)
        if run is None:
            run = self.runs[execution.run_id] = self.store.get_run(execution.run_id)
        return LineageNode(
            "execution",
            execution.id,
            execution.step,
            {
                "run_id": run.id,
                "pipeline": run.pipeline,
                "pipeline_version": run.pipeline_version,
                "git_commit": run.git_commit,
                "code_hash": execution.code_hash,
                "parameters": execution.parameters,
                "status": execution.status,
                "started_at": execution.started_at,
                "user": run.user,
            },
        )


def _data_version_names(store: MetadataStore) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for dv in store.list_data_versions():
        names.setdefault(dv.artifact_id, []).append(f"{dv.name}@{dv.version}")
    return names


def upstream(store: MetadataStore, artifact_id: str) -> Lineage:
    """Everything an artifact was made from, transitively."""
    artifact = store.get_artifact(artifact_id)
    lineage = Lineage(roots=[artifact.id])
    _Walker(store).walk(lineage, artifact.id)
    return lineage


def run_lineage(store: MetadataStore, run_id: str) -> Lineage:
    """Everything the outputs of a run's final attempt were made from."""
    run = resolve_run(store, run_id)
    latest: dict[str, ExecutionRecord] = {}
    for execution in store.list_executions(run.id):
        latest[execution.step] = execution
    walker = _Walker(store)
    lineage = Lineage(roots=[])
    for execution in latest.values():
        for event in store.events_of_execution(execution.id):
            if event.kind == "output" and event.artifact_id not in lineage.roots:
                lineage.roots.append(event.artifact_id)
                walker.walk(lineage, event.artifact_id)
    consumed = {e.source for e in lineage.edges if e.target in latest_ids(latest)}
    lineage.roots = [r for r in lineage.roots if r not in consumed] or lineage.roots
    return lineage


def latest_ids(latest: dict[str, ExecutionRecord]) -> set[str]:
    """Ids of a run's final executions, plus the executions their results came from."""
    ids = {x.id for x in latest.values()}
    return ids | {x.cached_from for x in latest.values() if x.cached_from}
