"""The stores of a workspace, reached as attributes of what holds the workspace."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ctloop.store.artifact_store import ArtifactStore
    from ctloop.store.metadata import MetadataStore
    from ctloop.store.workspace import Workspace


class WorkspaceStores:
    """Gives a class with a ``workspace`` its ``metadata`` and ``artifacts`` stores."""

    workspace: Workspace

    @property
    def metadata(self) -> MetadataStore:
        """The workspace's runs, executions and artifacts records."""
        return self.workspace.metadata

    @property
    def artifacts(self) -> ArtifactStore:
        """The workspace's artifact bytes."""
        return self.workspace.artifacts
