"""Checkpoints of the running step, kept in the artifact store so a resumed run continues.

Inside a step, ``ctloop.checkpoint`` saves and finds the step's progress::

    from ctloop import checkpoint, step

    @step
    def train(epochs: int = 50) -> dict:
        start, state = 0, {"weights": [0.0]}
        found = checkpoint.latest()
        if found is not None:
            start, state = found
        for epoch in range(start, epochs):
            state = one_epoch(state)
            checkpoint.save(state, step=epoch + 1)
        return state

A state is a JSON-able dict, ``bytes``, or a path to a file (``latest`` gives back a path
to a local copy). Checkpoints live under ``checkpoints/<cache key>/`` of the artifact
store: the cache key covers the step's code, parameters and inputs, so the same step
with the same inputs, in ``ctloop resume RUN`` or a new run, finds them; a changed step
does not. Only the latest checkpoint is kept. A checkpoint written by an execution that
succeeded is ignored (its run is complete), and :meth:`StepCheckpoints.clear` deletes
them (the ``fit`` component does so when it finishes); otherwise they stay until the
artifact store's ``checkpoints/`` prefix is cleaned.

Each save is recorded on the step's execution at once (not at the step's end, which a
killed process never reaches) as metric ``ctloop.checkpoint`` (value and step: the saved
step); a step that finds a checkpoint gets tag ``ctloop.resumed_from`` (the step it
resumes from).

The running step is found from its tracking context, and so are its run's workspace
(:func:`~ctloop.pipeline.tracking.current_workspace`, reopened by worker processes) and
home (scratch files under ``tmp/``).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import CheckpointError, CtloopError, NotFoundError
from ctloop.pipeline._stores import WorkspaceStores
from ctloop.pipeline.tracking import current_execution, current_home, current_workspace
from ctloop.store.records import MetricRecord, TagRecord, utcnow
from ctloop.store.statuses import ExecutionStatus

if TYPE_CHECKING:
    from ctloop.store.artifact_store import ArtifactStore
    from ctloop.store.metadata import MetadataStore
    from ctloop.store.workspace import Workspace
    from ctloop.train._checkpointing import Checkpoint

__all__ = ["StepCheckpoints", "StepContext", "checkpoint", "current_checkpoints", "current_step"]

PREFIX = "checkpoints"
_INDEX = "latest.json"


@dataclass(frozen=True)
class StepContext(WorkspaceStores):
    """The running step: its run, execution, invocation name, cache key, its run's
    workspace and home."""

    run_id: str
    execution_id: str
    step: str
    cache_key: str
    workspace: Workspace
    home: Path


_contexts: dict[str, StepContext] = {}
_contexts_lock = threading.Lock()


def current_step() -> StepContext:
    """The context of the step running in this thread (raises outside a running step).

    >>> current_step().run_id  # doctest: +SKIP
    """
    running = current_execution()
    if running is None:
        raise CtloopError(
            "ctloop.checkpoint was used outside a running step; use it inside a @step "
            "function that runs in a pipeline, or pass a MemoryCheckpoints to ctloop.train"
        )
    run_id, execution_id = running
    with _contexts_lock:
        found = _contexts.get(execution_id)
    if found is None:
        found = _open_context(run_id, execution_id)
        with _contexts_lock:
            _contexts[execution_id] = found
    return found


def _open_context(run_id: str, execution_id: str) -> StepContext:
    workspace = current_workspace()
    execution = workspace.metadata.get_execution(execution_id)
    return StepContext(
        run_id, execution_id, execution.step, execution.cache_key, workspace, current_home()
    )


def current_checkpoints() -> StepCheckpoints:
    """The checkpoint store of the running step (a ``ctloop.train.CheckpointStore``)."""
    context = current_step()
    return StepCheckpoints(
        context.artifacts,
        f"{PREFIX}/{context.cache_key or context.execution_id}",
        metadata=context.metadata,
        run_id=context.run_id,
        execution_id=context.execution_id,
        scratch=context.home / "tmp",
    )


class StepCheckpoints:
    """Checkpoints under ``prefix`` of an artifact store, recorded on an execution.

    Implements ``ctloop.train.CheckpointStore``; ``metadata``/``run_id``/``execution_id``
    are optional (without them nothing is recorded and no writer is checked).

    >>> store = StepCheckpoints(open_artifact_store("/tmp/a"), "checkpoints/k1")  # doctest: +SKIP
    >>> store.save({"epoch": 1}, step=1); store.latest()  # doctest: +SKIP
    Checkpoint(step=1, state={'epoch': 1})
    """

    def __init__(
        self,
        artifacts: ArtifactStore,
        prefix: str,
        *,
        metadata: MetadataStore | None = None,
        run_id: str | None = None,
        execution_id: str | None = None,
        scratch: Path | None = None,
    ) -> None:
        self.artifacts = artifacts
        self.prefix = prefix.rstrip("/")
        self.metadata = metadata
        self.run_id = run_id
        self.execution_id = execution_id
        self.scratch = scratch
        self._lock = threading.Lock()
        self._announced = False

    def save(self, state: Any, *, step: int) -> None:
        """Store ``state`` as of ``step`` (atomically), then drop the previous checkpoint."""
        from ctloop.train._checkpointing import checked_step

        step = checked_step(step)
        data, kind = _encode(state)
        key = f"{self.prefix}/{step:012d}.{kind}"
        with self._lock:
            previous = self._index()
            self.artifacts.write_object(key, data)
            index = {"step": step, "key": key, "kind": kind, "execution_id": self.execution_id}
            index["saved_at"] = utcnow().isoformat()
            self.artifacts.write_object(f"{self.prefix}/{_INDEX}", json.dumps(index).encode())
            if previous and previous.get("key") not in (None, key):
                self.artifacts.delete_prefix(str(previous["key"]))
        self._record_metric(step)

    def latest(self) -> Checkpoint | None:
        """The newest checkpoint, or ``None`` (also when its writer succeeded)."""
        from ctloop.train._checkpointing import Checkpoint

        index = self._index()
        if index is None or self._written_by_finished_step(index):
            return None
        try:
            data = self.artifacts.read_object(str(index["key"]))
        except NotFoundError:
            return None  # the index outlived its object: start over rather than fail
        found = Checkpoint(int(index["step"]), self._decode(data, str(index["kind"])))
        self._record_resume(found.step)
        return found

    def clear(self) -> None:
        """Delete every checkpoint of this step."""
        with self._lock:
            self.artifacts.delete_prefix(self.prefix)

    # -- internals --------------------------------------------------------------------
    def _index(self) -> dict[str, Any] | None:
        try:
            raw = self.artifacts.read_object(f"{self.prefix}/{_INDEX}")
        except NotFoundError:
            return None
        try:
            index = json.loads(raw)
        except ValueError as exc:
            raise CheckpointError(
                f"checkpoint index {self.prefix}/{_INDEX} is not JSON; delete the "
                f"{self.prefix}/ prefix of the artifact store to start over"
            ) from exc
        return index if isinstance(index, dict) else None

    def _written_by_finished_step(self, index: Mapping[str, Any]) -> bool:
        writer = index.get("execution_id")
        if self.metadata is None or not writer or writer == self.execution_id:
            return False
        try:
            return self.metadata.get_execution(str(writer)).status == ExecutionStatus.SUCCEEDED
        except NotFoundError:
            return False

    def _decode(self, data: bytes, kind: str) -> Any:
        if kind == "json":
            return json.loads(data)
        if kind == "file":
            folder = self.scratch or Path(tempfile.gettempdir())
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix="checkpoint-", dir=folder)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            return Path(name)
        return data

    def _record_metric(self, step: int) -> None:
        if self.metadata is None or self.run_id is None:
            return
        metric = MetricRecord(
            self.run_id, "ctloop.checkpoint", float(step), step, self.execution_id, utcnow()
        )
        self.metadata.log_batch(metrics=[metric])

    def _record_resume(self, step: int) -> None:
        if self.metadata is None or self.run_id is None or self._announced:
            return
        self._announced = True
        tag = TagRecord(self.run_id, "ctloop.resumed_from", str(step), self.execution_id)
        self.metadata.log_batch(tags=[tag])


def _encode(state: Any) -> tuple[bytes, str]:
    if isinstance(state, bytes | bytearray | memoryview):
        return bytes(state), "bin"
    if isinstance(state, os.PathLike):
        try:
            return Path(state).read_bytes(), "file"
        except OSError as exc:
            raise CheckpointError(
                f"checkpoint file {os.fspath(state)!r} cannot be read ({exc.strerror}); "
                "save a file that exists"
            ) from exc
    if isinstance(state, Mapping):
        try:
            return json.dumps(state).encode(), "json"
        except (TypeError, ValueError) as exc:
            raise CheckpointError(
                f"checkpoint state is a dict that is not JSON-able ({exc}); save plain "
                "numbers, strings, lists and dicts, or serialise it yourself and save bytes"
            ) from exc
    raise CheckpointError(
        f"checkpoint state is a {type(state).__name__}; save a JSON-able dict, bytes, or "
        "a pathlib.Path to a file"
    )


class _StepCheckpointAPI:
    """``ctloop.checkpoint``: save and find the running step's checkpoints."""

    def save(self, state: Any, *, step: int) -> None:
        """Save ``state`` (dict, bytes or file path) as of ``step`` (epoch, round)."""
        current_checkpoints().save(state, step=step)

    def latest(self) -> Checkpoint | None:
        """``(step, state)`` of the newest checkpoint of this step, or ``None``."""
        return current_checkpoints().latest()

    def clear(self) -> None:
        """Delete this step's checkpoints (e.g. once training is done)."""
        current_checkpoints().clear()

    def store(self) -> StepCheckpoints:
        """The step's checkpoint store, to pass to ``ctloop.train.fit(checkpoints=...)``."""
        return current_checkpoints()


#: ``from ctloop import checkpoint``: ``checkpoint.save(state, step=N)``, ``checkpoint.latest()``
checkpoint = _StepCheckpointAPI()
