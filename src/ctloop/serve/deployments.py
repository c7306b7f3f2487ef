"""Deployments: which model versions a named endpoint serves, and every change to that.

A deployment's state is its routing: the ``primary`` (a registry alias such as
``champion``, or a version number), an optional ``canary`` that takes a share of the
traffic, an optional ``shadow`` that sees a copy of every request without answering, and
the policy that rolls a failing canary back. Each change is one row of the
``deployments`` table with who, when and why; the current state is the latest row.

>>> deploy(url, "flights", "flights")  # doctest: +SKIP
>>> start_canary(url, "flights", "challenger", traffic=10, reason="v4 beats v3 offline")  # doctest: +SKIP
>>> promote_canary(url, "flights", reason="no errors in a day")  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ctloop.errors import DeploymentError
from ctloop.store.operations import latest_deployment, record_deployment
from ctloop.store.operations_records import DeploymentRecord

__all__ = [
    "CanarySpec",
    "DeploymentState",
    "RollbackPolicy",
    "ShadowSpec",
    "deploy",
    "load_deployment",
    "promote_canary",
    "record_change",
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


def load_deployment(store_url: str, name: str) -> DeploymentState | None:
    """The current state of deployment ``name``, or ``None`` if it was never deployed.

    >>> load_deployment(url, "flights").primary  # doctest: +SKIP
    'champion'
    """
    record = latest_deployment(store_url, name)
    return None if record is None else DeploymentState.from_dict(record.state)


def record_change(
    store_url: str,
    name: str,
    action: str,
    state: DeploymentState,
    reason: str,
    user: str | None = None,
) -> DeploymentRecord:
    """Record a change of deployment ``name`` (``action``: ``deploy``, ``canary``,
    ``shadow``, ``promote``, ``rollback``, ``auto-rollback``, ``stop``) to ``state``."""
    return record_deployment(
        store_url,
        name=name,
        model=state.model,
        action=action,
        state=state.to_dict(),
        reason=reason,
        user=user,
    )


def deploy(
    store_url: str,
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

    >>> deploy(url, "flights", "flights", "champion", reason="first release").primary  # doctest: +SKIP
    'champion'
    """
    resolve_version(store_url, model, primary)  # a typo fails now, not at serving time
    current = load_deployment(store_url, name)
    policy = current.rollback if current is not None else RollbackPolicy()
    state = DeploymentState(model=model, primary=str(primary), rollback=policy)
    record_change(store_url, name, "deploy", state, reason, user)
    return state


def start_canary(
    store_url: str,
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

    >>> start_canary(url, "flights", "challenger", 10).canary  # doctest: +SKIP
    CanarySpec(version=4, traffic=10.0, sticky=True)
    """
    if not 0 <= traffic <= 100:
        raise DeploymentError(
            f"canary traffic {traffic!r} for deployment {name!r} is not a percentage; "
            "give a number from 0 to 100"
        )
    current = _current(store_url, name)
    version = resolve_version(store_url, current.model, version_or_alias)
    canary = CanarySpec(version=version, traffic=float(traffic), sticky=sticky)
    state = replace(current, canary=canary, rollback=policy or current.rollback)
    record_change(store_url, name, "canary", state, reason, user)
    return state


def start_shadow(
    store_url: str,
    name: str,
    version_or_alias: int | str,
    *,
    reason: str = "",
    user: str | None = None,
) -> DeploymentState:
    """Mirror every request of deployment ``name`` to a version (a number or an alias)."""
    current = _current(store_url, name)
    version = resolve_version(store_url, current.model, version_or_alias)
    state = replace(current, shadow=ShadowSpec(version=version))
    record_change(store_url, name, "shadow", state, reason, user)
    return state


def promote_canary(
    store_url: str, name: str, *, reason: str = "", user: str | None = None
) -> DeploymentState:
    """Make the canary the champion: the registry's ``champion`` alias moves to the
    canary's version, and the canary is cleared (a primary given as a version number
    becomes the canary's version)."""
    from ctloop.registry import open_registry

    current = _current(store_url, name)
    canary = _require_canary(current, name, "promote")
    open_registry(store_url).set_alias(
        current.model, "champion", canary.version, by=user, reason=reason or f"promoted in {name}"
    )
    primary = current.primary if current.primary == "champion" else str(canary.version)
    state = replace(current, primary=primary, canary=None)
    record_change(store_url, name, "promote", state, reason, user)
    return state


def stop_canary(
    store_url: str, name: str, *, reason: str = "", user: str | None = None
) -> DeploymentState:
    """Stop the canary of deployment ``name``: all traffic goes to the primary."""
    return _drop_canary(store_url, name, "stop", reason, user)


def rollback_canary(
    store_url: str,
    name: str,
    *,
    reason: str = "",
    user: str | None = None,
    automatic: bool = False,
) -> DeploymentState:
    """Roll the canary of deployment ``name`` back (action ``rollback``, or
    ``auto-rollback`` when its policy tripped: pass ``automatic=True``)."""
    return _drop_canary(store_url, name, "auto-rollback" if automatic else "rollback", reason, user)


def stop_shadow(
    store_url: str, name: str, *, reason: str = "", user: str | None = None
) -> DeploymentState:
    """Stop mirroring requests of deployment ``name``."""
    current = _current(store_url, name)
    if current.shadow is None:
        raise DeploymentError(f"deployment {name!r} has no shadow to stop")
    state = replace(current, shadow=None)
    record_change(store_url, name, "stop", state, reason, user)
    return state


def resolve_version(store_url: str, model: str, version_or_alias: int | str) -> int:
    """The version number ``version_or_alias`` names for ``model`` (``"4"``, ``4`` or
    an alias such as ``"challenger"``, looked up in the registry)."""
    from ctloop.registry import open_registry

    if isinstance(version_or_alias, int) or str(version_or_alias).isdigit():
        version = int(version_or_alias)
        return open_registry(store_url).get_version(model, version).version
    return open_registry(store_url).get_by_alias(model, str(version_or_alias)).version


def _drop_canary(
    store_url: str, name: str, action: str, reason: str, user: str | None
) -> DeploymentState:
    current = _current(store_url, name)
    _require_canary(current, name, action)
    state = replace(current, canary=None)
    record_change(store_url, name, action, state, reason, user)
    return state


def _current(store_url: str, name: str) -> DeploymentState:
    state = load_deployment(store_url, name)
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
