"""In-memory stores: the fakes every interface of :mod:`ctloop.store` ships with.

They live in one process, keep everything in dicts and lists behind a lock, and pass
the same contract suites as the SQL stores, so a test (or a quick experiment) can run
the whole product on :meth:`ctloop.store.workspace.Workspace.in_memory`.

>>> from ctloop.store.memory import MemoryDeploymentStore
>>> MemoryDeploymentStore().list()
[]
"""

from __future__ import annotations

from ctloop.store.memory._keys import MemoryAuditLog, MemoryKeyStore
from ctloop.store.memory._metadata import MemoryMetadataStore
from ctloop.store.memory._operations import MemoryAlertStore, MemoryDeploymentStore, MemoryLogStore
from ctloop.store.memory._registry import MemoryModelRegistry
from ctloop.store.memory._triggers import MemoryTriggerStore

__all__ = [
    "MemoryAlertStore",
    "MemoryAuditLog",
    "MemoryDeploymentStore",
    "MemoryKeyStore",
    "MemoryLogStore",
    "MemoryMetadataStore",
    "MemoryModelRegistry",
    "MemoryTriggerStore",
]
