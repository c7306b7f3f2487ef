"""Promote a model version from one environment's workspace into another's.

A promotion copies the model artifact (its blobs, verified by digest) and its lineage
record into the target workspace, registers it there as a version whose tags say where
it came from (the source environment, workspace, version, run and digest, and the run
that first trained it), and points an alias (``champion``) at it. Into an environment
that ``requires_approval``, the promotion waits for an approval record
(:mod:`ctloop.store._approvals`) of that very artifact; without one it asks for it and is
refused with the command that approves it.

>>> promote_model("churn@champion", prod, source=staging_ws, target=prod_ws)  # doctest: +SKIP
Promotion(source='staging', environment='prod', ...)
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import ApprovalError, IntegrityError
from ctloop.registry._environments import Environment
from ctloop.store.records import ArtifactRecord, new_id
from ctloop.store.registry import ModelVersion
from ctloop.store.registry._rules import current_user

if TYPE_CHECKING:
    from ctloop.store._approvals import ApprovalRecord
    from ctloop.store.workspace import Workspace

__all__ = ["Promotion", "decide_promotion", "promote_model", "source_tags"]

#: the version tags a promotion writes (``TAG + "source.run_id"`` ...)
TAG = "ctloop."


@dataclass(frozen=True)
class Promotion:
    """What a promotion did: ``source_version`` (in ``source``) became ``version`` of
    ``environment``, ``alias`` points at it; ``copied`` blobs were copied (0 when the
    target had them all); ``approval`` is the record it used, if the environment
    requires one."""

    source: str
    environment: str
    source_version: ModelVersion
    version: ModelVersion
    alias: str
    copied: int
    approval: ApprovalRecord | None = None

    def describe(self) -> str:
        """One line for people."""
        line = (
            f"{self.source_version.reference} ({self.source}) -> "
            f"{self.version.reference} ({self.environment}), {self.alias} points at it"
        )
        if self.approval is not None:
            line += f"; approved by {self.approval.decided_by}: {self.approval.reason}"
        return line


def promote_model(
    reference: str,
    environment: Environment,
    *,
    source: Workspace,
    target: Workspace,
    alias: str = "champion",
    by: str | None = None,
) -> Promotion:
    """Promote ``reference`` (``MODEL@ALIAS`` or ``MODEL@VERSION`` in ``source``) into
    ``environment`` (whose workspace is ``target``); see the module docstring.

    Raises :class:`ApprovalError` when ``environment`` requires an approval that this
    artifact does not have (the request is recorded, so an admin can approve it).
    """
    by = by or current_user()
    version = source.registry.resolve(reference)
    record = source.metadata.get_artifact(version.artifact_id)
    approval = None
    if _gated(environment):
        asked = _open_request(version, record, environment, target, by)
        approval = _approved(asked, environment, target)
    existing = _version_with(target, version.model, record.digest)
    copied = 0
    if existing is None:
        copied = _copy_blobs(record, source, target)
        tags = source_tags(version, record, environment.source, source)
        tags[TAG + "lineage"] = _copy_lineage(version, record, source, target, tags)
        if approval is not None:
            tags[TAG + "approval"] = str(approval.id)
        moved = replace(
            record,
            id=new_id(),
            uri=target.artifacts.blob_uri(record.digest),
            properties={**record.properties, "promotion": tags},
        )
        target.metadata.put_artifacts([moved])
        existing = target.registry.register_version(
            version.model,
            moved.id,
            description=version.description,
            tags=tags,
            by=by,
        )
    reason = f"promoted from {environment.source} ({version.reference})"
    target.registry.set_alias(version.model, alias, existing.version, by=by, reason=reason)
    if approval is not None:
        approval = target.approvals.mark_deployed(approval.id, version=existing.version)
    existing = target.registry.get_version(version.model, existing.version)
    return Promotion(
        environment.source, environment.name, version, existing, alias, copied, approval
    )


def decide_promotion(
    reference: str,
    environment: Environment,
    state: str,
    *,
    source: Workspace,
    target: Workspace,
    reason: str,
    by: str | None = None,
) -> ApprovalRecord:
    """Approve or reject (``state``) promoting ``reference`` of ``source`` into
    ``environment``: the open request for that artifact is decided (one is recorded
    first when nobody asked yet). The promotion itself runs with ``promote_model``."""
    by = by or current_user()
    version = source.registry.resolve(reference)
    record = source.metadata.get_artifact(version.artifact_id)
    asked = _open_request(version, record, environment, target, by)
    return target.approvals.decide(asked.id, state, by=by, reason=reason)


def source_tags(
    version: ModelVersion, record: ArtifactRecord, source_name: str, source: Workspace
) -> dict[str, str]:
    """Where a promoted version comes from, as version tags: the source environment,
    workspace, version, run and artifact, the digest, and the run that first trained
    it (kept along a chain of promotions)."""
    run_id = version.run_id or ""
    tags = {
        TAG + "source.environment": source_name,
        TAG + "source.workspace": source.location,
        TAG + "source.version": version.reference,
        TAG + "source.run_id": run_id,
        TAG + "source.artifact_id": record.id,
        TAG + "digest": record.digest,
    }
    origin = {k: v for k, v in version.tags.items() if k.startswith(TAG + "origin.")}
    tags.update(
        origin
        or {
            TAG + "origin.environment": source_name,
            TAG + "origin.workspace": source.location,
            TAG + "origin.run_id": run_id,
        }
    )
    return tags


def _gated(environment: Environment) -> bool:
    return environment.requires_approval


def _approved(found: ApprovalRecord, environment: Environment, target: Workspace) -> ApprovalRecord:
    """The open request ``found`` once it is approved, else :class:`ApprovalError`."""
    if found.state == "approved":
        return found
    raise ApprovalError(_waiting(found, environment, _last_rejection(target.approvals, found)))


def _open_request(
    version: ModelVersion,
    record: ArtifactRecord,
    environment: Environment,
    target: Workspace,
    by: str,
) -> ApprovalRecord:
    """The open approval request for promoting this artifact into ``environment``; one
    is recorded (as ``by``) when none is open."""
    found = target.approvals.open_request(version.model, record.digest, environment.name)
    if found is None:
        found = target.approvals.request(
            version.model,
            version.version,
            record.digest,
            environment.name,
            source=environment.source,
            by=by,
        )
    return found


def _last_rejection(approvals: Any, asked: ApprovalRecord) -> ApprovalRecord | None:
    for record in approvals.list(model=asked.model, environment=asked.environment, limit=50):
        if record.digest == asked.digest and record.state == "rejected":
            return record
    return None


def _waiting(
    asked: ApprovalRecord, environment: Environment, rejected: ApprovalRecord | None
) -> str:
    ref, env = asked.reference, environment.name
    before = ""
    if rejected is not None:
        before = f" (#{rejected.id} was rejected by {rejected.decided_by}: {rejected.reason})"
    return (
        f"promoting {ref} from {environment.source} to {env} needs an approval: request "
        f"#{asked.id} by {asked.requested_by} is waiting{before}; an admin approves it with "
        f'`ctloop env approve {ref} --to {env} --reason "..."` (or rejects it with '
        f'`ctloop env reject {ref} --to {env} --reason "..."`), then run '
        f"`ctloop env promote {ref} --to {env}` again"
    )


def _version_with(target: Workspace, model: str, digest: str) -> ModelVersion | None:
    """The target's version of ``model`` holding the artifact ``digest`` (a promotion
    run twice registers nothing new)."""
    from ctloop.errors import ModelNotFoundError

    try:
        versions = target.registry.list_versions(model)
    except ModelNotFoundError:
        return None
    return next((v for v in versions if v.tags.get(TAG + "digest") == digest), None)


def _copy_blobs(record: ArtifactRecord, source: Workspace, target: Workspace) -> int:
    """Copy the artifact's files and manifest into the target's artifact store, each
    verified by its digest; returns how many blobs were copied."""
    digests = [entry.digest for entry in record.files] + [record.digest]
    copied = 0
    with tempfile.TemporaryDirectory(prefix="ctloop-promote-") as cache:
        for digest in digests:
            if target.artifacts.has(digest):
                continue
            path = source.artifacts.local_path(digest, Path(cache))
            stored, _ = target.artifacts.put_file(path)
            if stored != digest:
                raise IntegrityError(
                    f"blob {digest} of artifact {record.id} in {source.location} is "
                    f"corrupt: its bytes hash to {stored}; it was not promoted"
                )
            copied += 1
    return copied


def _copy_lineage(
    version: ModelVersion,
    record: ArtifactRecord,
    source: Workspace,
    target: Workspace,
    tags: dict[str, str],
) -> str:
    """The lineage record of the promoted version, stored in the target as a blob: its
    graph in the source workspace (the run, its data, code and parameters) and, when the
    source version was itself promoted, that version's lineage record."""
    from ctloop.registry._lineage import model_lineage

    graph = model_lineage(source.registry, source.metadata, version.reference).to_dict()
    upstream_digest = version.tags.get(TAG + "lineage")
    upstream = None
    if upstream_digest:
        upstream = json.loads(source.artifacts.get_bytes(upstream_digest))
    document = {
        "model": version.model,
        "promoted_from": {key.removeprefix(TAG): value for key, value in tags.items()},
        "lineage": graph,
        "upstream": upstream,
    }
    return target.artifacts.put_bytes(json.dumps(document, default=str, sort_keys=True).encode())
