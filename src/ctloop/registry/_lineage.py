"""Lineage of a model version: the version, then everything its artifact was made from
(data sets, code versions, parameters), by a walk over the metadata store's events.

>>> found = model_lineage(registry, metadata, "flights@champion")  # doctest: +SKIP
>>> found.version.version, found.graph.roots                        # doctest: +SKIP
(3, ['9c1f…'])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ctloop.store._lineage import Lineage, upstream
from ctloop.store.metadata import MetadataStore
from ctloop.store.registry import ModelRegistry, ModelVersion

__all__ = ["ModelLineage", "model_lineage"]


@dataclass(frozen=True)
class ModelLineage:
    """A model version and the lineage graph of its artifact (rooted at the artifact)."""

    version: ModelVersion
    graph: Lineage

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``: the version, the roots, the nodes and the edges."""
        return {
            "model_version": asdict(self.version),
            "roots": self.graph.roots,
            "nodes": [asdict(node) for node in self.graph.nodes.values()],
            "edges": [asdict(edge) for edge in self.graph.edges],
        }


def model_lineage(registry: ModelRegistry, metadata: MetadataStore, reference: str) -> ModelLineage:
    """The lineage of the version ``NAME@ALIAS``, ``NAME@VERSION`` or ``NAME`` (latest).

    Garbage collection may have deleted the run that made an old version: its artifact
    is kept, but the graph then holds the artifact alone.
    """
    version = registry.resolve(reference)
    return ModelLineage(version, upstream(metadata, version.artifact_id))
