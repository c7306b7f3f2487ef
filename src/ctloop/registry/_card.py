"""Model cards: one page per model version, from what the metadata store recorded.

A card gathers the version (aliases, tags, who and when), the model (flavor, task,
inputs, requirements), its data lineage (data versions and data sets upstream of the
model artifact, the steps with their code hashes and parameters), the run's parameters
and metrics, the ``Evaluation`` (metrics overall and by slice, with the champion's on the
same rows) and the ``Blessing`` (every gate comparison, infra validation), and feature
importance. It renders as Markdown, as a self-contained HTML page, or as plain data.

>>> card = model_card(registry, metadata, artifacts, "flights@3")  # doctest: +SKIP
>>> print(card.to_markdown())                                      # doctest: +SKIP
# Model card: flights@3
...

The evaluation and blessing are the artifacts named by the version's tags
(``ctloop.evaluation``, ``ctloop.blessing``, set by the ``register`` step); for a version
registered by hand, the gate step of its run that took the model as input, else any
evaluation of that run.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ctloop.components._registry import BLESSING_TAG, EVALUATION_TAG  # what register writes
from ctloop.errors import CtloopError
from ctloop.evaluate import Blessing, Evaluation
from ctloop.store._lineage import Lineage, upstream
from ctloop.store.artifact_store import ArtifactStore
from ctloop.store.metadata import MetadataStore
from ctloop.store.records import ArtifactRecord, RunRecord
from ctloop.store.registry import ModelRegistry, ModelVersion

__all__ = ["DataSource", "ModelCard", "TrainingStep", "model_card"]

_DATA_TYPES = frozenset({"Dataset", "DataSnapshot", "Files"})


@dataclass(frozen=True)
class DataSource:
    """A data set upstream of the model: its data version names, type and the step that
    made it (``None`` for data that entered the pipeline from outside)."""

    artifact_id: str
    type: str
    data_versions: tuple[str, ...] = ()
    made_by: str | None = None
    rows: int | None = None


@dataclass(frozen=True)
class TrainingStep:
    """A step upstream of the model, with its code hash, parameters and run."""

    step: str
    code_hash: str
    parameters: dict[str, Any]
    run_id: str


@dataclass(frozen=True)
class ModelCard:
    """Everything a model card shows, with renderers (see the module docstring)."""

    version: ModelVersion
    model: dict[str, Any]
    run: RunRecord | None
    parameters: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    data: tuple[DataSource, ...] = ()
    steps: tuple[TrainingStep, ...] = ()
    evaluation: Evaluation | None = None
    blessing: Blessing | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able data (``ctloop models card --json``)."""
        return {
            "model_version": asdict(self.version),
            "model": self.model,
            "run": None if self.run is None else asdict(self.run),
            "parameters": self.parameters,
            "metrics": self.metrics,
            "data": [asdict(d) for d in self.data],
            "steps": [asdict(s) for s in self.steps],
            "evaluation": None if self.evaluation is None else self.evaluation.to_dict(),
            "blessing": None if self.blessing is None else self.blessing.to_dict(),
        }

    def to_markdown(self) -> str:
        """The card as Markdown."""
        from ctloop.registry._card_render import markdown

        return markdown(self)

    def to_html(self) -> str:
        """The card as one self-contained HTML page (inline style, every value escaped)."""
        from ctloop.registry._card_render import html_page

        return html_page(self)


def model_card(
    registry: ModelRegistry,
    metadata: MetadataStore,
    artifacts: ArtifactStore,
    reference: str,
    *,
    cache_dir: Path | None = None,
) -> ModelCard:
    """The card of the version ``NAME@VERSION``, ``NAME@ALIAS`` or ``NAME`` (latest)."""
    version = registry.resolve(reference)
    record = metadata.get_artifact(version.artifact_id)
    run = _run(metadata, version.run_id)
    graph = upstream(metadata, record.id)
    with tempfile.TemporaryDirectory(prefix="ctloop-card-") as scratch:
        reader = _Reader(metadata, artifacts, cache_dir or Path(scratch))
        evaluation, blessing = reader.evaluation_and_blessing(version)
    return ModelCard(
        version=version,
        model=_model_description(record),
        run=run,
        parameters=_parameters(metadata, run),
        metrics=_metrics(metadata, run),
        data=_data_sources(graph, record.id),
        steps=_steps(graph),
        evaluation=evaluation,
        blessing=blessing,
    )


def _run(metadata: MetadataStore, run_id: str | None) -> RunRecord | None:
    if run_id is None:
        return None
    try:
        return metadata.get_run(run_id)
    except CtloopError:  # deleted by garbage collection: the card shows the rest
        return None


def _model_description(record: ArtifactRecord) -> dict[str, Any]:
    keys = ("flavor", "task", "inputs", "requirements")
    return {"artifact_id": record.id, **{k: record.properties.get(k) for k in keys}}


def _parameters(metadata: MetadataStore, run: RunRecord | None) -> dict[str, str]:
    if run is None:
        return {}
    found = {key: str(value) for key, value in run.parameters.items()}
    found.update({p.key: p.value for p in metadata.get_params(run.id)})
    return found


def _metrics(metadata: MetadataStore, run: RunRecord | None) -> dict[str, float]:
    if run is None:
        return {}
    latest: dict[str, float] = {}
    for metric in sorted(metadata.get_metrics(run.id), key=lambda m: m.timestamp):
        latest[metric.key] = metric.value
    return latest


def _data_sources(graph: Lineage, model_id: str) -> tuple[DataSource, ...]:
    found = []
    for node in graph.nodes.values():
        if node.kind != "artifact" or node.id == model_id:
            continue
        names = tuple(node.details.get("data_versions") or ())
        if node.details.get("type") not in _DATA_TYPES and not names:
            continue
        makers = [parent.label for _, parent in graph.parents(node.id)]
        rows = node.details.get("properties", {}).get("rows")
        found.append(
            DataSource(
                node.id,
                str(node.details.get("type")),
                names,
                makers[0] if makers else None,
                rows if isinstance(rows, int) else None,
            )
        )
    return tuple(sorted(found, key=lambda d: (d.made_by is not None, d.made_by or "", d.type)))


def _steps(graph: Lineage) -> tuple[TrainingStep, ...]:
    steps = [
        TrainingStep(
            node.label,
            str(node.details.get("code_hash", "")),
            dict(node.details.get("parameters") or {}),
            str(node.details.get("run_id", "")),
        )
        for node in graph.nodes.values()
        if node.kind == "execution"
    ]
    return tuple(sorted(steps, key=lambda s: s.step))


class _Reader:
    """Finds and loads the Evaluation and Blessing records of a version."""

    def __init__(self, metadata: MetadataStore, artifacts: ArtifactStore, cache: Path) -> None:
        self.metadata = metadata
        self.artifacts = artifacts
        self.cache = cache

    def load(self, artifact_id: str | None) -> Any:
        from ctloop.artifacts import load_value

        if artifact_id is None:
            return None
        record = self.metadata.get_artifact(artifact_id)
        return load_value(record, self.artifacts, cache_dir=self.cache)

    def evaluation_and_blessing(
        self, version: ModelVersion
    ) -> tuple[Evaluation | None, Blessing | None]:
        ids = {
            "evaluation": version.tags.get(EVALUATION_TAG),
            "blessing": version.tags.get(BLESSING_TAG),
        }
        if ids["blessing"] is None:
            ids.update(self._gate_of(version.artifact_id))
        if ids["evaluation"] is None and version.run_id is not None:
            ids["evaluation"] = self._any_evaluation(version.run_id)
        return self.load(ids["evaluation"]), self.load(ids["blessing"])

    def _gate_of(self, model_id: str) -> dict[str, str]:
        """The latest gate that took the model as input: its blessing and evaluation."""
        found: dict[str, str] = {}
        for event in self.metadata.events_of_artifact(model_id):
            if event.kind != "input":
                continue
            events = self.metadata.events_of_execution(event.execution_id)
            blessing = self._output_of_type(events, "Blessing")
            if blessing is not None:
                inputs = {e.name: e.artifact_id for e in events if e.kind == "input"}
                found = {"blessing": blessing}
                if "evaluation" in inputs:
                    found["evaluation"] = inputs["evaluation"]
        return found

    def _any_evaluation(self, run_id: str) -> str | None:
        for execution in self.metadata.list_executions(run_id):
            events = self.metadata.events_of_execution(execution.id)
            found = self._output_of_type(events, "Evaluation")
            if found is not None:
                return found
        return None

    def _output_of_type(self, events: list[Any], record_type: str) -> str | None:
        for event in events:
            if event.kind != "output":
                continue
            record = self.metadata.get_artifact(event.artifact_id)
            if record.properties.get("record_type") == record_type:
                return record.id
        return None
