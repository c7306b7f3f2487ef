"""Running one step: load inputs, call the user's function, save outputs, keep logs.

This module runs inside the pipeline's process (``executor="local"``, with the run's
workspace object), inside a process-pool worker (``executor="process"``) or a Ray worker
(``executor="ray"``), which reopen the same workspace from its URLs. It writes artifact
bytes and logs, never the run's records: it returns a :class:`StepOutcome` that the
runner records in one transaction. The step's code reaches the workspace through
:func:`ctloop.pipeline.tracking.current_workspace`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import logging
import os
import sys
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import CtloopError, PipelineError
from ctloop.pipeline._dsl import DataInput, Step
from ctloop.pipeline.tracking import tracking
from ctloop.store.records import ArtifactRecord, MetricRecord, ParamRecord, TagRecord, utcnow
from ctloop.store.statuses import ExecutionStatus

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace


@dataclass(frozen=True)
class StepRef:
    """Where a step lives, so that another process can import it."""

    module: str
    file: str | None
    qualname: str

    @classmethod
    def of(cls, step_obj: Step) -> StepRef:
        module = sys.modules.get(step_obj.fn.__module__)
        file = getattr(module, "__file__", None)
        return cls(step_obj.fn.__module__, file, step_obj.fn.__qualname__)

    def resolve(self) -> Step:
        """Import the module and return the step object."""
        if "<locals>" in self.qualname:
            raise PipelineError(
                f"step '{self.qualname}' is defined inside a function, so a worker process "
                "cannot import it; define steps at module level or use executor='local'"
            )
        module = _import_module(self.module, self.file)
        obj: Any = module
        for part in self.qualname.split("."):
            obj = getattr(obj, part)
        if not isinstance(obj, Step):
            raise PipelineError(f"{self.module}.{self.qualname} is not a @step")
        return obj


def _import_module(name: str, file: str | None) -> Any:
    if name in sys.modules and name != "__main__":
        return sys.modules[name]
    if name != "__main__":
        try:
            return importlib.import_module(name)
        except ImportError:
            if file is None:
                raise
    if file is None:
        raise PipelineError(f"cannot import module {name!r} of a step: it has no file")
    from ctloop.pipeline._loading import load_module_from_file

    return load_module_from_file(Path(file), module_name=None if name == "__main__" else name)


@dataclass(frozen=True)
class StepTask:
    """Everything a worker needs to run one step (picklable). ``store_url``,
    ``artifact_url`` and ``artifact_options`` reopen the run's workspace in a worker
    process (``None`` for an in-memory workspace, which only the local executor runs)."""

    run_id: str
    execution_id: str
    invocation: str
    step_ref: StepRef
    inputs: dict[str, ArtifactRecord]
    params: dict[str, Any]
    store_url: str | None
    artifact_url: str | None
    artifact_options: dict[str, Any]
    home: str
    environment: dict[str, str] | None = None
    executor: str = "local"  # the run's executor, for steps that start work of their own


@dataclass(frozen=True)
class StepOutcome:
    """What running one step produced; ``status`` is ``succeeded`` or ``failed``."""

    execution_id: str
    status: str
    started_at: datetime
    ended_at: datetime
    outputs: dict[str, ArtifactRecord] = field(default_factory=dict)
    params: list[ParamRecord] = field(default_factory=list)
    metrics: list[MetricRecord] = field(default_factory=list)
    tags: list[TagRecord] = field(default_factory=list)
    error: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    user_error: bool = False
    log_uri: str | None = None


def run_in_worker(task: StepTask) -> StepOutcome:
    """Process-pool entry point: resolve the step by reference and run it.

    A pooled worker may have started long before this run; the submitting process's
    environment (credentials, settings the step reads) is applied first.
    """
    if task.environment is not None and task.environment != os.environ:
        os.environ.clear()
        os.environ.update(task.environment)
    try:
        step_obj = task.step_ref.resolve()
        workspace = reopen_workspace(task)
    except Exception as exc:
        now = utcnow()
        return StepOutcome(
            task.execution_id,
            ExecutionStatus.FAILED,
            now,
            now,
            error="".join(traceback.format_exception(exc)),
            error_type=f"{type(exc).__module__}.{type(exc).__qualname__}",
            error_message=str(exc),
        )
    return run_step(task, step_obj, workspace)


_workspaces: dict[tuple[int, str, str, str], Workspace] = {}


def reopen_workspace(task: StepTask) -> Workspace:
    """The run's workspace in this (worker) process, opened once per process from the
    task's URLs."""
    from ctloop.store.workspace import Workspace

    if task.store_url is None or task.artifact_url is None:
        raise PipelineError(
            f"step '{task.invocation}' runs in a worker process, which cannot reach the "
            "run's in-memory workspace; use executor='local' or a workspace on a database "
            "(Workspace.open(url, artifacts=...))"
        )
    options = json.dumps(task.artifact_options, sort_keys=True, default=str)
    key = (os.getpid(), task.store_url, task.artifact_url, options)
    found = _workspaces.get(key)
    if found is None:
        found = _workspaces[key] = Workspace.open(
            task.store_url, artifacts=task.artifact_url, artifact_options=task.artifact_options
        )
    return found


def run_step(task: StepTask, step_obj: Step, workspace: Workspace) -> StepOutcome:
    """Run one step with logs captured and tracking active on ``workspace``."""
    store = workspace.artifacts
    started = utcnow()
    log = io.StringIO()
    context = tracking(
        task.run_id,
        task.execution_id,
        task.executor,
        workspace=workspace,
        home=Path(task.home),
        step=task.invocation,
    )
    with context as tracker, _capture(log):
        result = _execute(task, step_obj, store)
    log_uri = _write_log(store, task, log.getvalue())
    return StepOutcome(
        execution_id=task.execution_id,
        started_at=started,
        ended_at=utcnow(),
        params=tracker.params,
        metrics=tracker.metrics,
        tags=tracker.tags,
        log_uri=log_uri,
        **result,
    )


def _execute(task: StepTask, step_obj: Step, store: Any) -> dict[str, Any]:
    from ctloop.artifacts import load_value, save_value

    home = Path(task.home)
    try:
        values = {
            name: load_value(record, store, cache_dir=home / "cache")
            for name, record in task.inputs.items()
        }
    except Exception as exc:
        return _failure(exc, user=False)
    try:
        returned = step_obj.fn(**values, **task.params)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # user code: every error is the step's failure
        exc = exc.with_traceback(exc.__traceback__.tb_next if exc.__traceback__ else None)
        traceback.print_exception(exc)
        return _failure(exc, user=True)
    try:
        outputs = split_outputs(step_obj, returned)
        records = {
            name: save_value(value, store, staging_root=home / "tmp")
            for name, value in outputs.items()
        }
    except Exception as exc:
        print(f"ctloop: {exc}", file=sys.stderr)
        return _failure(exc, user=False)
    return {"status": ExecutionStatus.SUCCEEDED, "outputs": records}


def _failure(exc: BaseException, *, user: bool) -> dict[str, Any]:
    text = "".join(traceback.format_exception(exc))
    if not user and isinstance(exc, CtloopError):
        text = str(exc)
    return {
        "status": ExecutionStatus.FAILED,
        "error": text,
        "error_type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "error_message": str(exc) or type(exc).__name__,
        "user_error": user,
    }


def split_outputs(step_obj: Step, returned: Any) -> dict[str, Any]:
    """Map a step's return value to its named outputs."""
    names = step_obj.output_names
    if not step_obj.multiple_outputs:
        return {names[0]: returned}
    if isinstance(returned, dict) and set(returned) == set(names):
        return {name: returned[name] for name in names}
    if isinstance(returned, tuple | list) and len(returned) == len(names):
        return dict(zip(names, returned, strict=True))
    got = f"{type(returned).__name__}"
    if isinstance(returned, tuple | list):
        got += f" of length {len(returned)}"
    raise PipelineError(
        f"step '{step_obj.name}' declares {len(names)} outputs ({', '.join(names)}) but "
        f"returned a {got}; return a tuple of {len(names)} values or a dict with those keys"
    )


@contextlib.contextmanager
def _capture(buffer: io.StringIO) -> Any:
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def _write_log(store: Any, task: StepTask, text: str) -> str | None:
    if not text:
        return None  # nothing printed: no object to store
    key = f"logs/{task.run_id}/{task.execution_id}.log"
    try:
        store.write_object(key, text.encode())
    except Exception as exc:  # a log that cannot be written must not fail the step
        print(f"ctloop: could not store the log of step {task.invocation}: {exc}", file=sys.stderr)
        return None
    return key


def describe_input(value: ArtifactRecord | DataInput) -> str:
    """Short text for an input, for error messages."""
    return str(value) if isinstance(value, DataInput) else f"artifact {value.id[:8]}"
