"""What the workspace protocol carries: each store of a workspace, its interface, the
methods a client may call and the role each needs.

One table serves both ends: the client forwards exactly these methods, the server's
dispatcher accepts exactly these and refuses a caller whose role is too low. Reads need a
viewer, writes an editor; keys, the audit log, deployments, deletions and garbage
collection an admin (as the REST routes ask). Moving a production alias needs an admin too; the server knows
which aliases are production ones.

>>> role_needed("metadata", "get_run"), role_needed("metadata", "create_run")
('viewer', 'editor')
"""

from __future__ import annotations

import importlib
import inspect
from functools import cache
from typing import Any

__all__ = [
    "ALIAS_MOVES",
    "EXTRAS",
    "STORES",
    "forwarded_methods",
    "interface_of",
    "private_hooks",
    "role_needed",
]

#: store name in the workspace → (module, interface class)
STORES: dict[str, tuple[str, str]] = {
    "metadata": ("ctloop.store.metadata", "MetadataStore"),
    "artifacts": ("ctloop.store.artifact_store", "ArtifactStore"),
    "registry": ("ctloop.store.registry._base", "ModelRegistry"),
    "deployments": ("ctloop.store._operations", "DeploymentStore"),
    "logs": ("ctloop.store._operations", "LogStore"),
    "alerts": ("ctloop.store._operations", "AlertStore"),
    "triggers": ("ctloop.store._triggers", "TriggerStore"),
    "keys": ("ctloop.store._keys", "KeyStore"),
    "audit": ("ctloop.store._audit", "AuditLog"),
    "features": ("ctloop.store._features", "FeatureRegistry"),
    "online": ("ctloop.store._online", "OnlineStore"),
    "approvals": ("ctloop.store._approvals", "ApprovalStore"),
}

_READS: dict[str, frozenset[str]] = {
    "metadata": frozenset(
        {
            "get_run",
            "list_runs",
            "get_execution",
            "list_executions",
            "find_cached_execution",
            "get_artifact",
            "list_artifacts",
            "events_of_execution",
            "events_of_artifact",
            "referenced_artifact_ids",
            "pinned_artifact_ids",
            "pinned_run_ids",
            "get_params",
            "get_metrics",
            "latest_metric_values",
            "search_runs",
            "get_tags",
            "get_data_version",
            "list_data_versions",
        }
    ),
    "artifacts": frozenset(
        {"has", "get_bytes", "local_path", "iter_blobs", "read_object", "store_url"}
    ),
    "registry": frozenset(
        {
            "get_model",
            "list_models",
            "get_version",
            "list_versions",
            "get_by_alias",
            "alias_history",
            "resolve",
            "latest_version",
        }
    ),
    "deployments": frozenset({"history", "latest", "list"}),
    "logs": frozenset({"predictions", "feedback"}),
    "alerts": frozenset({"list"}),
    "triggers": frozenset({"get_state", "list_states", "get_firing", "list_firings"}),
    "keys": frozenset(),
    "audit": frozenset(),
    "features": frozenset({"history", "list", "revision", "get", "materializations", "watermark"}),
    "online": frozenset({"read"}),
    "approvals": frozenset({"get", "list", "open_request"}),
}

_ADMIN: dict[str, frozenset[str]] = {
    "metadata": frozenset({"delete_runs", "delete_artifacts"}),
    "artifacts": frozenset({"delete_blob", "delete_prefix", "clean_temp"}),
    "online": frozenset({"drop"}),
    "approvals": frozenset({"decide"}),  # approving a promotion is an admin's
}

#: stores whose every write is an admin's: deployments change what serves production
_ADMIN_WRITES = frozenset({"keys", "audit", "deployments"})

#: registry methods that move an alias: an admin's when the alias is a production one
ALIAS_MOVES = frozenset({"set_alias", "delete_alias", "rollback"})

#: methods answered on the client itself (they hold or release nothing remote)
_LOCAL = frozenset({"close", "blob_uri"})

#: calls of the protocol that are no method of the interface: the artifact store's
#: ``url`` attribute (so ``blob_uri`` names where blobs really are)
EXTRAS: dict[str, frozenset[str]] = {"artifacts": frozenset({"store_url"})}


def interface_of(store: str) -> type:
    """The interface class of the workspace's store ``store``."""
    module, name = STORES[store]
    cls: type = getattr(importlib.import_module(module), name)
    return cls


@cache
def forwarded_methods(store: str) -> frozenset[str]:
    """The methods of ``store``'s interface that travel to the server: the public ones.
    A private abstract method (a hook the interface's public methods call after they
    checked their arguments) stays home: the public method travels instead, so the
    server checks what it is sent."""
    interface = interface_of(store)
    names: set[str] = set()
    for cls in interface.__mro__:
        if cls is object or cls.__module__ == "abc":
            continue
        names |= {
            name
            for name, member in vars(cls).items()
            if not name.startswith("_") and inspect.isfunction(member)
        }
    return frozenset((names - _LOCAL) | EXTRAS.get(store, frozenset()))


def private_hooks(store: str) -> frozenset[str]:
    """The private abstract methods of ``store``'s interface (never sent to a server)."""
    abstract: frozenset[str] = getattr(interface_of(store), "__abstractmethods__", frozenset())
    return frozenset(name for name in abstract if name.startswith("_"))


def role_needed(store: str, method: str) -> str:
    """``viewer``, ``editor`` or ``admin``: what calling ``store.method`` needs."""
    if method in _READS.get(store, frozenset()):
        return "viewer"
    if store in _ADMIN_WRITES or method in _ADMIN.get(store, frozenset()):
        return "admin"
    return "editor"


def production_alias_of(method: str, args: list[Any], kwargs: dict[str, Any]) -> str | None:
    """The alias a registry call moves (``None`` for calls that move none)."""
    if method not in ALIAS_MOVES:
        return None
    if "alias" in kwargs:
        return str(kwargs["alias"])
    if len(args) >= 2:
        return str(args[1])
    return "champion" if method == "rollback" else None
