"""The workspace: the one object through which ctloop reaches its state.

A workspace groups the small stores of one project — runs and artifacts metadata, artifact
bytes, the model registry, deployments, prediction and feedback logs, alerts, trigger
state — opened once from settings and passed down explicitly. Every store is an interface
with a SQL implementation (SQLite or PostgreSQL, plus a local folder or S3 for bytes) and
an in-memory fake shipped here, and both pass one contract suite::

    >>> ws = Workspace.in_memory()
    >>> ws.registry.list_models(), ws.deployments.list(), ws.alerts.list()
    ([], [], [])

Opening the project's workspace (``ctloop.yaml``, ``CTLOOP_STORE_URL``,
``CTLOOP_ARTIFACT_URL``, else ``.ctloop/``)::

    ws = Workspace.open()
    ws = Workspace.open("postgresql+psycopg://ctloop@db/ctloop", artifacts="s3://ml/ctloop")

A workspace on a team server (``CTLOOP_SERVER`` and ``CTLOOP_TOKEN``, or ``server:`` in
``ctloop.yaml``; see :mod:`ctloop.store._remote`)::

    ws = Workspace.remote("https://ctloop.example.internal", token="ctl_…")
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctloop.config import Settings
    from ctloop.store._approvals import ApprovalStore
    from ctloop.store._audit import AuditLog
    from ctloop.store._features import FeatureRegistry
    from ctloop.store._keys import KeyStore
    from ctloop.store._online import OnlineStore
    from ctloop.store._operations import AlertStore, DeploymentStore, LogStore
    from ctloop.store._remote import RemoteConnection
    from ctloop.store._triggers import TriggerStore
    from ctloop.store.artifact_store import ArtifactStore
    from ctloop.store.metadata import MetadataStore
    from ctloop.store.registry import ModelRegistry

__all__ = ["Workspace"]


@dataclass(frozen=True, eq=False)
class Workspace:
    """The stores of one project. Build one with :meth:`open`, :meth:`from_settings` or
    :meth:`in_memory`; pass it to whatever reads or writes state.

    ``store_url``, ``artifact_url`` and ``artifact_options`` say how to open the same
    workspace again in another process (a worker, a served model); they are ``None`` for
    an in-memory workspace, which lives in one process only.
    """

    metadata: MetadataStore
    artifacts: ArtifactStore
    registry: ModelRegistry
    deployments: DeploymentStore
    logs: LogStore
    alerts: AlertStore
    triggers: TriggerStore
    keys: KeyStore
    audit: AuditLog
    features: FeatureRegistry
    online: OnlineStore = field(default_factory=lambda: _memory_online_store())
    approvals: ApprovalStore = field(default_factory=lambda: _memory_approval_store())
    store_url: str | None = None
    artifact_url: str | None = None
    artifact_options: dict[str, Any] = field(default_factory=dict)
    _cleanup: tuple[Path, ...] = field(default=(), repr=False)
    _connection: RemoteConnection | None = field(default=None, repr=False)

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        artifacts: str | None = None,
        artifact_options: dict[str, Any] | None = None,
    ) -> Workspace:
        """The workspace on the metadata database at ``url`` and the artifact store at
        ``artifacts``; what is not given comes from the project's settings. A ``url``
        of ``http://`` or ``https://`` (or a ``server`` setting, when ``url`` is not
        given) is a ctloop server: see :meth:`remote`.

        >>> Workspace.open("sqlite:///:memory:", artifacts="/tmp/ctloop-doc").store_url
        'sqlite:///:memory:'
        """
        if url is not None and url.startswith(("http://", "https://")):
            return cls.remote(url, token=os.environ.get("CTLOOP_TOKEN") or None)
        if url is None or artifacts is None:
            from ctloop.config import Settings

            settings = Settings.load()
            if url is None and settings.server is not None:
                return cls.remote(settings.server, token=settings.token)
            url = url or settings.store_url
            artifacts = artifacts or settings.artifact_url
            if artifact_options is None:
                artifact_options = settings.artifact_options
        return cls._on_sql(url, artifacts, dict(artifact_options or {}))

    @classmethod
    def from_settings(cls, settings: Settings) -> Workspace:
        """The workspace that ``settings`` (``ctloop.yaml`` and the environment) name."""
        if settings.server is not None:
            return cls.remote(settings.server, token=settings.token)
        return cls._on_sql(
            settings.store_url, settings.artifact_url, dict(settings.artifact_options)
        )

    @classmethod
    def remote(cls, url: str, *, token: str | None = None) -> Workspace:
        """The workspace served by ``ctloop server`` at ``url``, reached with the API key
        ``token``: every store forwards its calls over HTTP, and blob bytes stream.

        >>> Workspace.remote("http://127.0.0.1:8000").location
        'the ctloop server at http://127.0.0.1:8000'
        """
        from ctloop.store._remote import open_remote_workspace

        return open_remote_workspace(url, token)

    @classmethod
    def _on_sql(cls, url: str, artifacts: str, options: dict[str, Any]) -> Workspace:
        from ctloop.store import open_artifact_store, open_metadata_store
        from ctloop.store._approvals import SqlApprovalStore
        from ctloop.store._audit import SqlAuditLog
        from ctloop.store._features import SqlFeatureRegistry
        from ctloop.store._keys import SqlKeyStore
        from ctloop.store._online import default_online_url, open_online_store
        from ctloop.store._operations import SqlAlertStore, SqlDeploymentStore, SqlLogStore
        from ctloop.store._triggers import SqlTriggerStore
        from ctloop.store.registry import SqlModelRegistry

        return cls(
            metadata=open_metadata_store(url),
            artifacts=open_artifact_store(artifacts, options),
            registry=SqlModelRegistry(url),
            deployments=SqlDeploymentStore(url),
            logs=SqlLogStore(url),
            alerts=SqlAlertStore(url),
            triggers=SqlTriggerStore(url),
            keys=SqlKeyStore(url),
            audit=SqlAuditLog(url),
            features=SqlFeatureRegistry(url),
            online=open_online_store(default_online_url(url)),
            approvals=SqlApprovalStore(url),
            store_url=url,
            artifact_url=artifacts,
            artifact_options=options,
        )

    @classmethod
    def in_memory(cls, artifacts: str | Path | None = None) -> Workspace:
        """A workspace that lives in this process: every store in memory, artifact bytes
        in ``artifacts`` (default: a temporary folder removed by :meth:`close`). The
        test seam, like httpx's ``MockTransport``: fast, isolated, and held to the same
        contract as the SQL stores."""
        from ctloop.store._fs_artifacts import LocalArtifactStore
        from ctloop.store.memory import (
            MemoryAlertStore,
            MemoryAuditLog,
            MemoryDeploymentStore,
            MemoryKeyStore,
            MemoryLogStore,
            MemoryMetadataStore,
            MemoryModelRegistry,
            MemoryTriggerStore,
        )
        from ctloop.store.memory._features import MemoryFeatureRegistry

        cleanup: tuple[Path, ...] = ()
        if artifacts is None:
            folder = Path(tempfile.mkdtemp(prefix="ctloop-workspace-"))
            cleanup = (folder,)
        else:
            folder = Path(artifacts)
        metadata = MemoryMetadataStore()
        logs, alerts = MemoryLogStore(metadata.has_artifact), MemoryAlertStore()
        triggers = MemoryTriggerStore()
        # what they name is kept, as the database's foreign keys keep it
        for references in (logs, alerts, triggers):
            metadata.add_references(references)
        return cls(
            metadata=metadata,
            artifacts=LocalArtifactStore(folder),
            registry=MemoryModelRegistry(metadata),
            deployments=MemoryDeploymentStore(),
            logs=logs,
            alerts=alerts,
            triggers=triggers,
            keys=MemoryKeyStore(),
            audit=MemoryAuditLog(),
            features=MemoryFeatureRegistry(),
            _cleanup=cleanup,
        )

    @property
    def location(self) -> str:
        """Where the workspace is, for messages (passwords masked)."""
        if self.store_url is None:
            return "an in-memory workspace"
        if self._connection is not None:
            return f"the ctloop server at {self._connection.url}"
        from ctloop.store._sql_engine import mask_url

        return f"{mask_url(self.store_url)} with artifacts in {self.artifact_url}"

    def close(self) -> None:
        """Release connections and remove a temporary artifact folder."""
        self.registry.close()
        self.online.close()
        if self._connection is not None:
            self._connection.close()
        for folder in self._cleanup:
            shutil.rmtree(folder, ignore_errors=True)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _memory_online_store() -> OnlineStore:
    from ctloop.store._online import MemoryOnlineStore

    return MemoryOnlineStore()


def _memory_approval_store() -> ApprovalStore:
    from ctloop.store.memory._approvals import MemoryApprovalStore

    return MemoryApprovalStore()
