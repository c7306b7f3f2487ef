"""Registry steps: ``champion_model``, ``register``, ``promote`` and ``release``.

They bind the workspace's model registry to the pipeline DSL; inside a run they use the
run's workspace (:func:`~ctloop.pipeline.tracking.current_workspace`). A training
pipeline wires them around ``evaluate`` and ``gate``::

    champion = champion_model(name="flights")           # the champion's Model, or None
    ev = evaluate(model, test, label="late", slices=["carrier"], baseline=champion)
    blessing = gate(ev, model, absolute=["auc >= 0.7"], change=["auc may drop by 0.01"])
    version = register(model, blessing, name="flights")  # refuses an unblessed model
    promote(version, reason="passed the gate")           # champion → the new version
    release(version, strategy="canary", traffic=20)      # or: a canary the monitor judges

``register`` finds the model's artifact through the ``gate`` step that blessed it (the
gate's input ``model``), so the version points at the very artifact the training step
wrote, and its tags name the blessing, the evaluation and the run that registered it.
A failed blessing makes ``register`` raise :class:`~ctloop.errors.GateFailedError`: the
run fails there, nothing is registered, and the blessing stays stored as the gate's
output for inspection (``ctloop models card``, ``ctloop runs show``).

Called as plain functions, outside a run, they need a workspace to work on::

    with use_workspace(Workspace.open()):
        register(model, blessing, name="flights")

>>> RegisteredVersion("flights", 3, "a1b2c3", "challenger").reference
'flights@3'
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctloop.artifacts.model import Model
from ctloop.errors import (
    AliasNotFoundError,
    GateFailedError,
    ModelNotFoundError,
    RegistryError,
)
from ctloop.evaluate import Blessing
from ctloop.pipeline import step
from ctloop.pipeline.tracking import current_execution, current_home, current_workspace, track_tag
from ctloop.store.records import ArtifactRecord
from ctloop.store.registry import ModelRegistry
from ctloop.store.statuses import ExecutionStatus
from ctloop.store.workspace import Workspace

__all__ = [
    "BLESSING_TAG",
    "EVALUATION_TAG",
    "RUN_TAG",
    "RegisteredVersion",
    "champion_model",
    "promote",
    "register",
    "release",
]

RELEASE_STRATEGIES = ("direct", "canary")

# version tags: the Blessing that let the version in, the Evaluation the gate judged
# (ctloop.registry._card reads them back)
BLESSING_TAG = "ctloop.blessing"
EVALUATION_TAG = "ctloop.evaluation"
RUN_TAG = "ctloop.registered_by_run"
"""Version tag: the run whose ``register`` step recorded the version."""


@dataclass(frozen=True)
class RegisteredVersion:
    """A version that ``register`` recorded (stored as a small record artifact).

    >>> RegisteredVersion.from_dict(RegisteredVersion("m", 1, "a").to_dict()).version
    1
    """

    __ctloop_artifact__ = "RegisteredVersion"  # artifact type, see ctloop.artifacts.records

    model: str
    version: int
    artifact_id: str
    alias: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def reference(self) -> str:
        """``NAME@VERSION``."""
        return f"{self.model}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; ``from_dict`` reads it back."""
        return {**self.__dict__, "tags": dict(self.tags)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RegisteredVersion:
        """Read what ``to_dict`` wrote."""
        return cls(**data)


@dataclass(frozen=True)
class _Place:
    """The workspace the step works on and the home for its cache and staging files."""

    workspace: Workspace
    home: Path

    @classmethod
    def current(cls) -> _Place:
        return cls(current_workspace(), current_home())

    @property
    def registry(self) -> ModelRegistry:
        return self.workspace.registry

    def load(self, record: ArtifactRecord) -> Any:
        from ctloop.artifacts import load_value

        return load_value(record, self.workspace.artifacts, cache_dir=self.home / "cache")


@step(cache=False)
def champion_model(name: str, alias: str = "champion") -> Model | None:
    """The ``Model`` that ``alias`` of registered model ``name`` points at, or ``None``
    when there is none yet (no such model, or no such alias): pass it to ``evaluate`` as
    ``baseline``. Never cached, because the alias can move between runs.

    >>> champion_model(name="flights")  # doctest: +SKIP
    """
    place = _Place.current()
    try:
        version = place.registry.get_by_alias(name, alias)
    except (ModelNotFoundError, AliasNotFoundError):
        print(f"no {alias} of model {name!r} yet: the gate applies absolute thresholds only")
        return None
    print(f"{alias}: {version.reference} (artifact {version.artifact_id[:12]})")
    track_tag(alias, version.reference)
    model: Model = place.load(place.workspace.metadata.get_artifact(version.artifact_id))
    return model


@step(cache=False)
def register(
    model: Model,
    blessing: Blessing,
    name: str,
    alias: str | None = "challenger",
    description: str = "",
    tags: dict[str, str] | None = None,
) -> RegisteredVersion:
    """Register ``model`` as the next version of ``name`` if ``blessing`` passed, and
    point ``alias`` (``None``: no alias) at it.

    An unblessed model raises :class:`~ctloop.errors.GateFailedError` listing the failed
    checks (the run fails; nothing is registered). The version's tags record the blessing
    and evaluation artifacts and the run (``ctloop.blessing``, ``ctloop.evaluation``,
    ``ctloop.registered_by_run``). A model artifact that is already the latest version is
    not registered twice. Called outside a pipeline, the model is stored as a new artifact.

    >>> register(model, blessing, name="flights")  # doctest: +SKIP
    """
    if not blessing.passed:
        try:
            blessing.raise_for_failure()
        except GateFailedError as exc:
            raise GateFailedError(f"model {name!r} was not registered: {exc}", blessing) from None
    place = _Place.current()
    found = _gated_artifacts(place, blessing) if current_execution() else {}
    artifact_id = found.get("model") or _store_model(place, model)
    version_tags = {**_provenance(found), **dict(tags or {})}
    version = _latest_or_new(place.registry, name, artifact_id, description, version_tags)
    if alias:
        place.registry.set_alias(name, alias, version.version, reason="blessed by the gate")
    print(f"registered {version.reference}" + (f" as {alias}" if alias else ""))
    track_tag("registered", version.reference)
    return RegisteredVersion(name, version.version, artifact_id, alias, dict(version.tags))


@step(cache=False)
def promote(version: RegisteredVersion, alias: str = "champion", reason: str = "") -> str:
    """Point ``alias`` of the model at ``version`` (recorded in the alias history, so
    ``ctloop models rollback`` undoes it); returns the reference ``NAME@VERSION``.

    >>> promote(register(model, blessing, name="flights"), reason="AUC 0.91 > 0.89")  # doctest: +SKIP
    """
    why = reason or f"{version.reference} passed the gate"
    current_workspace().registry.set_alias(version.model, alias, version.version, reason=why)
    print(f"{alias}: {version.reference}")
    track_tag(f"promoted_{alias}", version.reference)
    return version.reference


@step(cache=False)
def release(
    version: RegisteredVersion,
    strategy: str = "direct",
    deployment: str | None = None,
    traffic: float = 10.0,
    reason: str = "",
) -> str:
    """Put ``version`` in production: ``direct`` points ``champion`` at it (like
    :func:`promote`); ``canary`` sends ``traffic`` percent of deployment ``deployment``'s
    requests (default: the model's name) to it, and the monitor promotes or rolls it back
    once labelled traffic has judged it (:mod:`ctloop.monitor._canary`). With no champion
    yet there is nothing to compare a canary with, so the first version is released
    directly. Returns what was done, e.g. ``canary flights@5 (20% of flights)``.

    >>> release(register(model, blessing, name="flights"), strategy="canary", traffic=20)  # doctest: +SKIP
    """
    if strategy not in RELEASE_STRATEGIES:
        raise RegistryError(
            f"release strategy {strategy!r} is unknown; use one of {', '.join(RELEASE_STRATEGIES)}"
        )
    why = reason or f"{version.reference} passed the gate"
    workspace = current_workspace()
    if strategy == "canary" and _has_alias(workspace.registry, version.model, "champion"):
        done = _start_canary(workspace, version, deployment, traffic, why)
    else:
        if strategy == "canary":
            print(f"no champion of {version.model!r} yet: releasing {version.reference} directly")
        workspace.registry.set_alias(version.model, "champion", version.version, reason=why)
        done = f"champion {version.reference}"
    print(done)
    track_tag("released", done)
    return done


def _start_canary(
    workspace: Workspace,
    version: RegisteredVersion,
    deployment: str | None,
    traffic: float,
    why: str,
) -> str:
    from ctloop.store._deployments import deploy, load_deployment, start_canary

    name = deployment or version.model
    if load_deployment(workspace, name) is None:
        deploy(workspace, name, version.model, "champion", reason=f"created for {why}")
    start_canary(workspace, name, version.version, traffic, reason=f"canary: {why}")
    return f"canary {version.reference} ({traffic:g}% of {name})"


def _has_alias(registry: ModelRegistry, model: str, alias: str) -> bool:
    try:
        registry.get_by_alias(model, alias)
    except (ModelNotFoundError, AliasNotFoundError):
        return False
    return True


def _gated_artifacts(place: _Place, blessing: Blessing) -> dict[str, str]:
    """Artifact ids (``model``, ``evaluation``, ``blessing``) of the gate step of this run
    whose output is ``blessing``."""
    ids = current_execution()
    assert ids is not None
    metadata = place.workspace.metadata
    for execution in metadata.list_executions(ids[0]):
        if execution.status not in ExecutionStatus.done():
            continue
        events = metadata.events_of_execution(execution.id)
        outputs = [e for e in events if e.kind == "output"]
        for event in outputs:
            record = metadata.get_artifact(event.artifact_id)
            if record.properties.get("record_type") != "Blessing":
                continue
            if place.load(record) == blessing:
                found = {e.name: e.artifact_id for e in events if e.kind == "input"}
                return {**found, "blessing": record.id}
    raise RegistryError(
        "register could not find the gate step that produced its blessing in this run; "
        "pass the output of ctloop.components.gate as `blessing`"
    )


def _store_model(place: _Place, model: Model) -> str:
    from ctloop.artifacts import save_value

    record = save_value(model, place.workspace.artifacts, staging_root=place.home / "tmp")
    place.workspace.metadata.put_artifacts([record])
    return record.id


def _provenance(found: dict[str, str]) -> dict[str, str]:
    tags = {}
    if "blessing" in found:
        tags[BLESSING_TAG] = found["blessing"]
    if "evaluation" in found:
        tags[EVALUATION_TAG] = found["evaluation"]
    ids = current_execution()
    if ids is not None:
        tags[RUN_TAG] = ids[0]
    return tags


def _latest_or_new(
    registry: ModelRegistry, name: str, artifact_id: str, description: str, tags: dict[str, str]
) -> Any:
    with suppress(ModelNotFoundError):
        versions = registry.list_versions(name)
        if versions and versions[-1].artifact_id == artifact_id:
            return versions[-1]
    return registry.register_version(name, artifact_id, description=description, tags=tags)
