"""The model versions a server holds, and which one answers each request.

A :class:`ModelPool` serves ``NAME@ALIAS`` (or ``NAME@VERSION``). :meth:`ModelPool.refresh`
(called every few seconds off the event loop) re-reads the alias and the deployment
written by ``ctloop deploy``; a version not yet held is loaded first, then the whole
routing table is replaced in one assignment, so a request sees either the old table or
the new one and never a half-loaded model.

Routing: a canary takes ``traffic`` % of requests, chosen by a hash: of the request's key
when the canary is sticky and a key is given, else of the request id (so a client that
sends its own ids, replaying history for instance, gets the same split every time; the
server's own ids are random, and so is the split of their requests); a shadow version gets a copy of
every request after the answer. The pool tracks the canary's errors and latency over a
window and routes everything back to the primary when a rollback bound is exceeded.

>>> pool = ModelPool("flights@champion", workspace=Workspace.open(),
...                  cache_dir=tmp)  # doctest: +SKIP
>>> pool.refresh(); pool.route("customer-7").target.version  # doctest: +SKIP
3
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.artifacts.model_versions import LoadedVersion, load_version
from ctloop.errors import ServingError

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace

__all__ = ["CanaryTracker", "LoadedVersion", "ModelPool", "Route", "Routing", "canary_bucket"]

log = logging.getLogger("ctloop.serve.pool")


@dataclass(frozen=True)
class RollbackPolicy:
    """When a canary is rolled back: a bound on its error rate or p99 latency over the
    last ``window_s`` seconds, judged once it has answered ``min_requests`` requests."""

    max_error_rate: float | None = None
    max_p99_ms: float | None = None
    window_s: float = 60.0
    min_requests: int = 20


@dataclass(frozen=True)
class Routing:
    """Where requests go now; replaced as a whole on every change."""

    primary: LoadedVersion
    canary: LoadedVersion | None = None
    traffic: float = 0.0
    sticky: bool = False
    shadow: LoadedVersion | None = None
    policy: RollbackPolicy | None = None
    state: Any = None  # the deployment state it came from, if any


@dataclass(frozen=True)
class Route:
    """One request's answer: ``target`` (``arm`` is ``primary`` or ``canary``), and the
    ``shadow`` version that gets a copy, if any."""

    target: LoadedVersion
    arm: str
    shadow: LoadedVersion | None
    primary: LoadedVersion


class CanaryTracker:
    """Outcomes of a canary's requests over a sliding window.

    >>> t = CanaryTracker(RollbackPolicy(max_error_rate=0.1, window_s=60, min_requests=2))
    >>> t.add(False, 5.0, now=0.0); t.add(False, 5.0, now=1.0)
    >>> t.breach(now=1.0)
    'error rate 1.000 > 0.1 over 2 requests in 60s'
    """

    def __init__(self, policy: RollbackPolicy) -> None:
        self.policy = policy
        self._events: deque[tuple[float, bool, float]] = deque()
        self._lock = threading.Lock()

    def add(self, ok: bool, latency_ms: float, *, now: float | None = None) -> None:
        """Record one canary request."""
        with self._lock:
            self._events.append((time.monotonic() if now is None else now, ok, latency_ms))

    def breach(self, *, now: float | None = None) -> str | None:
        """Why the canary must be rolled back (the numbers), or ``None``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._events and self._events[0][0] < now - self.policy.window_s:
                self._events.popleft()
            events = list(self._events)
        if len(events) < max(1, self.policy.min_requests):
            return None
        span = f"over {len(events)} requests in {self.policy.window_s:g}s"
        rate = sum(not ok for _, ok, _ in events) / len(events)
        if self.policy.max_error_rate is not None and rate > self.policy.max_error_rate:
            return f"error rate {rate:.3f} > {self.policy.max_error_rate:g} {span}"
        latencies = sorted(ms for _, _, ms in events)
        p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        if self.policy.max_p99_ms is not None and p99 > self.policy.max_p99_ms:
            return f"p99 latency {p99:.1f} ms > {self.policy.max_p99_ms:g} ms {span}"
        return None


class ModelPool:
    """The loaded versions of one model and the routing between them."""

    def __init__(
        self,
        reference: str,
        *,
        workspace: Workspace,
        cache_dir: Path,
        deployment: str | None = None,
        seed: int | None = None,
    ) -> None:
        from ctloop.store.registry import parse_reference

        self.name, selector = parse_reference(reference)
        self.selector: str | int | None = selector
        self.workspace = workspace
        self.cache_dir = Path(cache_dir)
        self.deployment = deployment or self.name
        self._random = random.Random(seed)
        self._loaded: dict[int, LoadedVersion] = {}
        self._routing: Routing | None = None
        self._tracker: CanaryTracker | None = None
        self._rolled_back: int | None = None  # canary version rolled back by this pool
        self._refresh_lock = threading.Lock()
        self._swap_lock = threading.Lock()
        self.rollbacks: list[str] = []

    # -- state -------------------------------------------------------------------------

    @property
    def routing(self) -> Routing:
        """The routing table in use (after the first :meth:`refresh`)."""
        if self._routing is None:
            raise ServingError(f"model {self.name!r} is not loaded yet; call refresh() first")
        return self._routing

    @property
    def ready(self) -> bool:
        """Whether a version is loaded and serving."""
        return self._routing is not None

    @property
    def versions(self) -> list[int]:
        """The versions requests can be routed to (primary first)."""
        r = self.routing
        return [r.primary.version] + ([r.canary.version] if r.canary else [])

    # -- refreshing --------------------------------------------------------------------

    def refresh(self) -> bool:
        """Re-read the alias and the deployment; load and swap in what changed.
        Returns whether the routing changed. Blocking: call it off the event loop."""
        with self._refresh_lock:  # one refresh at a time; loading happens here
            routing = self._routing_for(self._deployment_state())
            with self._swap_lock:  # held briefly: requests may take it on the event loop
                if self._routing is not None and _same(routing, self._routing):
                    return False
                self._install(routing)
            return True

    def _install(self, routing: Routing) -> None:
        old = self._routing
        self._routing = routing  # the atomic swap
        keep = {v.version for v in (routing.primary, routing.canary, routing.shadow) if v}
        self._loaded = {k: v for k, v in self._loaded.items() if k in keep}
        canary_changed = old is None or _version(old.canary) != _version(routing.canary)
        if canary_changed or (old is not None and old.policy != routing.policy):
            self._tracker = CanaryTracker(routing.policy) if routing.policy else None
        log.info("serving %s: %s", self.name, describe(routing))

    def _deployment_state(self) -> Any:
        from ctloop.store._deployments import load_deployment

        return load_deployment(self.workspace, self.deployment)

    def _routing_for(self, state: Any) -> Routing:
        primary_selector = self.selector
        if state is not None and getattr(state, "primary", None) is not None:
            primary_selector = state.primary
        primary = self._load(self._resolve(primary_selector))
        if state is None:
            return Routing(primary)
        canary, traffic, sticky = self._canary_of(state)
        shadow_version = _version_number(getattr(state, "shadow", None))
        shadow = self._load(shadow_version) if shadow_version is not None else None
        return Routing(primary, canary, traffic, sticky, shadow, _policy(state), state)

    def _canary_of(self, state: Any) -> tuple[LoadedVersion | None, float, bool]:
        canary = getattr(state, "canary", None)
        number = _version_number(canary)
        if number is None or number == self._rolled_back:
            return None, 0.0, False
        if self._rolled_back is not None:
            self._rolled_back = None  # a new canary: judge it afresh
        traffic = float(getattr(canary, "traffic", 0.0) or 0.0)
        return (
            self._load(number),
            max(0.0, min(100.0, traffic)),
            bool(getattr(canary, "sticky", False)),
        )

    def _resolve(self, selector: str | int | None) -> int:
        suffix = "" if selector is None else f"@{selector}"
        return self.workspace.registry.resolve(f"{self.name}{suffix}").version

    def _load(self, version: int) -> LoadedVersion:
        loaded = self._loaded.get(version)
        if loaded is None:
            loaded = self._loaded[version] = load_version(
                self.workspace, self.name, version, cache_dir=self.cache_dir
            )
        return loaded

    # -- routing -----------------------------------------------------------------------

    def route(self, key: str | None = None, request_id: str | None = None) -> Route:
        """Where one request goes: the canary for its share of traffic, else the primary
        (see the module docstring; with neither key nor request id, at random)."""
        r = self.routing
        target, arm = r.primary, "primary"
        if r.canary is not None and r.traffic > 0 and self._to_canary(r, key, request_id):
            target, arm = r.canary, "canary"
        return Route(target, arm, r.shadow, r.primary)

    def _to_canary(self, routing: Routing, key: str | None, request_id: str | None) -> bool:
        chosen_by = key if routing.sticky and key is not None else request_id
        if chosen_by is None:
            return self._random.random() * 100 < routing.traffic
        return canary_bucket(chosen_by) < routing.traffic * 100

    def record(self, route: Route, *, ok: bool, latency_ms: float) -> str | None:
        """Count one canary outcome; roll the canary back (and say why) on a breach."""
        tracker = self._tracker
        if route.arm != "canary" or tracker is None:
            return None
        tracker.add(ok, latency_ms)
        reason = tracker.breach()
        if reason is not None:
            self._roll_back(route.target, reason)
        return reason

    def _roll_back(self, canary: LoadedVersion, reason: str) -> None:
        with self._swap_lock:
            r = self._routing
            if r is None or r.canary is None or r.canary.version != canary.version:
                return  # already done by a concurrent request
            self._rolled_back = canary.version
            self._routing = dataclasses.replace(r, canary=None, traffic=0.0, sticky=False)
            self._tracker = None
        text = f"canary version {canary.version} of {self.name!r} rolled back: {reason}"
        self.rollbacks.append(text)
        log.warning(text)
        threading.Thread(
            target=self._report_rollback, args=(r.state, canary.version, reason), daemon=True
        ).start()

    def _report_rollback(self, state: Any, version: int, reason: str) -> None:
        try:
            report_rollback(self.workspace, self.deployment, state, version, reason)
        except Exception:  # the rollback itself is done; a failed record must not crash
            log.exception("could not record the rollback of %s", self.deployment)


def report_rollback(
    workspace: Workspace, deployment: str, state: Any, version: int, reason: str
) -> None:
    """Write the automatic rollback to the deployment history and raise an alert."""
    from ctloop.store._deployments import record_change

    new_state = state
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        new_state = dataclasses.replace(state, canary=None)
    record_change(workspace, deployment, "auto-rollback", new_state, reason)
    workspace.alerts.record(
        source="serve",
        subject=deployment,
        severity="critical",
        cause=f"canary version {version} rolled back: {reason}",
        details={"deployment": deployment, "canary_version": version, "reason": reason},
        dedup_key=f"auto-rollback:{deployment}:{version}",
    )


def canary_bucket(text: str) -> int:
    """The bucket (0-9999) of a request key or id: a canary on ``traffic`` % takes the
    requests whose bucket is below ``traffic * 100``. A pure function of the text.

    >>> canary_bucket("w12-0"), canary_bucket("w12-0") == canary_bucket("w12-0")
    (1973, True)
    """
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 10_000


def describe(routing: Routing) -> str:
    """One line: ``primary v3, canary v4 at 10% (sticky), shadow v5``."""
    parts = [f"primary v{routing.primary.version}"]
    if routing.canary is not None:
        sticky = " (sticky)" if routing.sticky else ""
        parts.append(f"canary v{routing.canary.version} at {routing.traffic:g}%{sticky}")
    if routing.shadow is not None:
        parts.append(f"shadow v{routing.shadow.version}")
    return ", ".join(parts)


def _policy(state: Any) -> RollbackPolicy | None:
    policy = getattr(state, "rollback", None)
    if policy is None:
        return None
    defaults = RollbackPolicy()
    return RollbackPolicy(
        max_error_rate=getattr(policy, "max_error_rate", None),
        max_p99_ms=getattr(policy, "max_p99_ms", None),
        window_s=float(getattr(policy, "window_s", None) or defaults.window_s),
        min_requests=int(getattr(policy, "min_requests", None) or defaults.min_requests),
    )


def _version_number(value: Any) -> int | None:
    if value is None:
        return None
    number = getattr(value, "version", value)
    return None if number is None else int(number)


def _version(loaded: LoadedVersion | None) -> int | None:
    return None if loaded is None else loaded.version


def _same(a: Routing, b: Routing) -> bool:
    return (
        a.primary.version == b.primary.version
        and _version(a.canary) == _version(b.canary)
        and (a.traffic, a.sticky, a.policy) == (b.traffic, b.sticky, b.policy)
        and _version(a.shadow) == _version(b.shadow)
    )
