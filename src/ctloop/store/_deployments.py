"""Deployments: which model versions a named endpoint serves, and every change to that.

A deployment's state is its routing: the ``primary`` (a registry alias such as
``champion``, or a version number), an optional ``canary`` that takes a share of the
traffic, an optional ``shadow`` that sees a copy of every request without answering, and
the policy that rolls a failing canary back. Each change is one row of the
``deployments`` table with who, when and why; the current state is the latest row.

Every function takes the workspace whose registry and deployment history it reads and
writes::

    deploy(workspace, "flights", "flights")
    start_canary(workspace, "flights", "challenger", traffic=10, reason="v4 beats v3 offline")
    promote_canary(workspace, "flights", reason="no errors in a day")
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ctloop.errors import DeploymentError
from ctloop.store._operations_records import DeploymentRecord

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace

__all__ = [
    "CanarySpec",
    "DeploymentState",
    "RollbackPolicy",
    "ShadowSpec",
    "deploy",
    "load_deployment",
    "promote_canary",
    "record_change",
    "resolve_version",
    "rollback_canary",
    "start_canary",
    "start_shadow",
    "stop_canary",
    "stop_shadow",
]


@dataclass(frozen=True)
class RollbackPolicy:
    """When a canary is rolled back automatically: over ``window_s`` seconds and at
    least ``min_requests`` requests, an error rate above ``max_error_rate`` or a p99
    latency above ``max_p99_ms`` (``None``: not checked).

    >>> RollbackPolicy(max_p99_ms=50).max_error_rate
    0.05
    """

    max_error_rate: float = 0.05
    max_p99_ms: float | None = None
    window_s: float = 60
    min_requests: int = 20


@dataclass(frozen=True)
class CanarySpec:
    """A canary: ``version`` takes ``traffic`` percent (0–100) of the requests;
    ``sticky`` keeps a client on the same side (by request key) across requests.

    >>> CanarySpec(version=4, traffic=10).sticky
    True
    """

    version: int
    traffic: float
    sticky: bool = True


@dataclass(frozen=True)
class ShadowSpec:
    """A shadow: ``version`` gets a copy of every request; its answers are logged only.

    >>> ShadowSpec(version=4).version
    4
    """

    version: int


@dataclass(frozen=True)
class DeploymentState:
    """The routing of a deployment of ``model``.

    >>> state = DeploymentState("flights", canary=CanarySpec(4, 10.0))
    >>> DeploymentState.from_dict(state.to_dict()) == state
    True
    """

    model: str
    primary: str = "champion"
    canary: CanarySpec | None = None
    shadow: ShadowSpec | None = None
    rollback: RollbackPolicy = field(default_factory=RollbackPolicy)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeploymentState:
        """The state a :meth:`to_dict` dict describes (missing keys take defaults)."""
        canary, shadow = data.get("canary"), data.get("shadow")
        return cls(
            model=str(data["model"]),
            primary=str(data.get("primary", "champion")),
            canary=CanarySpec(**canary) if canary else None,
            shadow=ShadowSpec(**shadow) if shadow else None,
            rollback=RollbackPolicy(**(data.get("rollback") or {})),
        )


def load_deployment(workspace: Workspace, name: str) -> DeploymentState | None:
    """The current state of deployment ``name``, or ``None`` if it was never deployed.

    >>> load_deployment(workspace, "flights").primary  # doctest: +SKIP
    'champion'
    """
    record = workspace.deployments.latest(name)
    return None if record is None else DeploymentState.from_dict(record.state)


def record_change(
    workspace: Workspace,
    name: str,
    action: str,
    state: DeploymentState,
    reason: str,
    user: str | None = None,
) -> DeploymentRecord:
    """Record a change of deployment ``name`` (``action``: ``deploy``, ``canary``,
    ``shadow``, ``promote``, ``rollback``, ``auto-rollback``, ``stop``) to ``state``."""
    return workspace.deployments.record(
        name=name,
        model=state.model,
        action=action,
        state=state.to_dict(),
        reason=reason,
        user=user,
    )


def deploy(
    workspace: Workspace,
    name: str,
    model: str,
    primary: str = "champion",
    *,
    reason: str = "",
    user: str | None = None,
) -> DeploymentState:
    """Serve ``model`` at ``primary`` (an alias or a version number) as deployment
    ``name``; an existing deployment keeps its rollback policy but loses its canary and
    shadow. ``primary`` must exist in the registry.

    >>> deploy(workspace, "flights", "flights", "champion", reason="first release").primary  # doctest: +SKIP
    'champion'
    """
    resolve_version(workspace, model, primary)  # a typo fails now, not at serving time
    current = load_deployment(workspace, name)
    policy = current.rollback if current is not None else RollbackPolicy()
    state = DeploymentState(model=model, primary=str(primary), rollback=policy)
    record_change(workspace, name, "deploy", state, reason, user)
    return state


def start_canary(
    workspace: Workspace,
    name: str,
    version_or_alias: int | str,
    traffic: float,
    sticky: bool = True,
    policy: RollbackPolicy | None = None,
    *,
    reason: str = "",
    user: str | None = None,
) -> DeploymentState:
    """Send ``traffic`` percent of deployment ``name``'s requests to a version (a number,
    or an alias such as ``challenger`` resolved now in the registry).

    >>> start_canary(workspace, "flights", "challenger", 10).canary  # doctest: +SKIP
    CanarySpec(version=4, traffic=10.0, sticky=True)
    """
    if not 0 <= traffic <= 100:
        raise DeploymentError(
            f"canary traffic {traffic!r} for deployment {name!r} is not a percentage; "
            "give a number from 0 to 100"
        )
    current = _current(workspace, name)
    version = resolve_version(workspace, current.model, version_or_alias)
    canary = CanarySpec(version=version, traffic=float(traffic), sticky=sticky)
    state = replace(current, canary=canary, rollback=policy or current.rollback)
    record_change(workspace, name, "canary", state, reason, user)
    return state


def start_shadow(
    workspace: Workspace,
    name: str,
    version_or_alias: int | str,
    *,
    reason: str = "",
    user: str | None = None,
) -> DeploymentState:
    """Mirror every request of deployment ``name`` to a version (a number or an alias)."""
    current = _current(workspace, name)
    version = resolve_version(workspace, current.model, version_or_alias)
    state = replace(current, shadow=ShadowSpec(version=version))
    record_change(workspace, name, "shadow", state, reason, user)
    return state


def promote_canary(
    workspace: Workspace, name: str, *, reason: str = "", user: str | None = None
) -> DeploymentState:
    """Make the canary the champion: the registry's ``champion`` alias moves to the
    canary's version, and the canary is cleared (a primary given as a version number
    becomes the canary's version)."""
    current = _current(workspace, name)
    canary = _require_canary(current, name, "promote")
    workspace.registry.set_alias(
        current.model, "champion", canary.version, by=user, reason=reason or f"promoted in {name}"
    )
    primary = current.primary if current.primary == "champion" else str(canary.version)
    state = replace(current, primary=primary, canary=None)
    record_change(workspace, name, "promote", state, reason, user)
    return state


def stop_canary(
    workspace: Workspace, name: str, *, reason: str = "", user: str | None = None
) -> DeploymentState:
    """Stop the canary of deployment ``name``: all traffic goes to the primary."""
    return _drop_canary(workspace, name, "stop", reason, user)


def rollback_canary(
    workspace: Workspace,
    name: str,
    *,
    reason: str = "",
    user: str | None = None,
    automatic: bool = False,
) -> DeploymentState:
    """Roll the canary of deployment ``name`` back (action ``rollback``, or
    ``auto-rollback`` when its policy tripped: pass ``automatic=True``)."""
    return _drop_canary(workspace, name, "auto-rollback" if automatic else "rollback", reason, user)


def stop_shadow(
    workspace: Workspace, name: str, *, reason: str = "", user: str | None = None
) -> DeploymentState:
    """Stop mirroring requests of deployment ``name``."""
    current = _current(workspace, name)
    if current.shadow is None:
        raise DeploymentError(f"deployment {name!r} has no shadow to stop")
    state = replace(current, shadow=None)
    record_change(workspace, name, "stop", state, reason, user)
    return state


def resolve_version(workspace: Workspace, model: str, version_or_alias: int | str) -> int:
    """The version number ``version_or_alias`` names for ``model`` (``"4"``, ``4`` or
    an alias such as ``"challenger"``, looked up in the registry)."""
    if isinstance(version_or_alias, int) or str(version_or_alias).isdigit():
        return workspace.registry.get_version(model, int(version_or_alias)).version
    return workspace.registry.get_by_alias(model, str(version_or_alias)).version


def _drop_canary(
    workspace: Workspace, name: str, action: str, reason: str, user: str | None
) -> DeploymentState:
    current = _current(workspace, name)
    _require_canary(current, name, action)
    state = replace(current, canary=None)
    record_change(workspace, name, action, state, reason, user)
    return state


def _current(workspace: Workspace, name: str) -> DeploymentState:
    state = load_deployment(workspace, name)
    if state is None:
        raise DeploymentError(
            f"deployment {name!r} does not exist; create it with `ctloop deploy {name}`"
        )
    return state


def _require_canary(state: DeploymentState, name: str, action: str) -> CanarySpec:
    if state.canary is None:
        raise DeploymentError(
            f"deployment {name!r} has no canary to {action}; start one with "
            f"`ctloop deploy {name} --canary VERSION_OR_ALIAS --traffic 10`"
        )
    return state.canary
