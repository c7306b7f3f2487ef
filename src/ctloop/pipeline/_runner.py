"""The runner: turns a pipeline graph into a recorded run.

For each step, in dependency order: compute its cache key; reuse this run's earlier
result (``resume``) or a cached result when allowed and its artifacts are still in the
store; otherwise run it on the executor and record outputs, tracking data and logs in
one transaction. A failed step stops its dependents (recorded as ``skipped``); other
branches finish. The run's heartbeat lets other processes see if this one dies.

A run reads and writes one workspace (:class:`~ctloop.store.workspace.Workspace`),
given or the one the settings name; its steps reach it with
:func:`ctloop.pipeline.tracking.current_workspace`::

    with Workspace.open("sqlite:///team.db", artifacts="/data/ctloop") as workspace:
        result = train_flights.run(workspace=workspace, path="flights.parquet")
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import subprocess
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ctloop import errors
from ctloop.config import Settings
from ctloop.errors import CtloopError, DataVersionError, NotFoundError, RunFailedError, StepError
from ctloop.pipeline._dsl import DataInput, Invocation, OutputHandle, Pipeline, PipelineGraph
from ctloop.pipeline._executors import Executor, check_executor_reaches, make_executor
from ctloop.pipeline._hashing import cache_key, param_fingerprint
from ctloop.pipeline._liveness import Heartbeat, reconcile_stale_runs
from ctloop.pipeline._loading import reference_of
from ctloop.pipeline._params import check_file_paths, to_json_param
from ctloop.pipeline._stores import WorkspaceStores
from ctloop.pipeline._worker import StepOutcome, StepRef, StepTask
from ctloop.store.metadata import MetadataStore, resolve_run
from ctloop.store.records import (
    ArtifactRecord,
    EventRecord,
    ExecutionRecord,
    RunRecord,
    new_id,
    utcnow,
)
from ctloop.store.statuses import ExecutionStatus, RunStatus

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace


class RunListener(Protocol):
    """Receives progress of a run (the CLI draws it with Rich)."""

    def on_run_start(self, *, run: RunRecord, steps: list[str]) -> None: ...
    def on_step_start(self, *, step: str) -> None: ...
    def on_step_end(
        self, *, step: str, status: str, duration_s: float, error: str | None
    ) -> None: ...
    def on_run_end(self, *, run: RunRecord) -> None: ...


@dataclass(frozen=True)
class RunContext(WorkspaceStores):
    """Where a run keeps its state and its files: ``workspace`` (metadata, artifacts,
    registry, …) and ``settings`` (the home with its ``cache/`` and ``tmp/`` folders, the
    default executor, Ray's address).

    >>> context = RunContext.open()  # the project's settings and workspace  # doctest: +SKIP
    >>> context.metadata.list_runs(limit=1)  # doctest: +SKIP
    []
    """

    workspace: Workspace
    settings: Settings

    @classmethod
    def open(
        cls, settings: Settings | None = None, workspace: Workspace | None = None
    ) -> RunContext:
        """``workspace`` (default: the one ``settings`` name) with ``settings`` (default:
        ``ctloop.yaml`` and the environment)."""
        settings = settings or Settings.load()
        if workspace is None:
            from ctloop.store.workspace import Workspace

            workspace = Workspace.from_settings(settings)
        return cls(workspace, settings)

    @property
    def cache_dir(self) -> Path:
        """Where loaded artifacts are cached on this machine."""
        return self.settings.home / "cache"


@dataclass
class RunResult:
    """What a run did: its id, status and each step's outputs."""

    run_id: str
    status: str
    step_status: dict[str, str]
    outputs: dict[str, dict[str, ArtifactRecord]]
    context: RunContext = field(repr=False)

    @property
    def workspace(self) -> Workspace:
        """The workspace the run wrote to."""
        return self.context.workspace

    @property
    def cached_steps(self) -> list[str]:
        """Steps whose results were reused (cache hit or resumed)."""
        return [s for s, st in self.step_status.items() if st == ExecutionStatus.CACHED]

    def load(self, step: str, output: str | None = None) -> Any:
        """Load an output value of a step of this run."""
        from ctloop.artifacts import load_value

        outputs = self.outputs.get(step)
        if not outputs:
            raise NotFoundError(f"run {self.run_id[:8]} has no outputs of step {step!r}")
        name = output or next(iter(outputs))
        if name not in outputs:
            raise NotFoundError(f"step {step!r} has no output {name!r}; it has {list(outputs)}")
        return load_value(outputs[name], self.context.artifacts, cache_dir=self.context.cache_dir)


def run_pipeline(
    pipeline_obj: Pipeline,
    params: dict[str, Any],
    *,
    executor: str | None = None,
    cache: bool = True,
    trigger: str = "manual",
    listener: RunListener | None = None,
    settings: Settings | None = None,
    reference: str | None = None,
    workspace: Workspace | None = None,
) -> RunResult:
    """Build and run a pipeline on ``workspace`` (default: the one ``settings`` name);
    raise :class:`StepError` if a step failed.

    >>> run_pipeline(train_flights, {"path": "flights.parquet"}, workspace=ws)  # doctest: +SKIP
    """
    graph = pipeline_obj.build(params)
    check_file_paths(f"pipeline '{pipeline_obj.name}'", graph.params)
    context = RunContext.open(settings, workspace)
    chosen = executor or pipeline_obj.executor or context.settings.executor
    check_executor_reaches(chosen, context.workspace)
    data_inputs = _resolve_data_inputs(graph, context.metadata)
    _check_executor_can_import(graph, chosen)
    run = _new_run(graph, context, chosen, trigger, reference or reference_of(pipeline_obj))
    runner = _Runner(graph, context, chosen, cache, listener, data_inputs)
    return runner.execute(run, previous={})


def resume_run(
    run_id: str,
    *,
    executor: str | None = None,
    listener: RunListener | None = None,
    settings: Settings | None = None,
    workspace: Workspace | None = None,
) -> RunResult:
    """Continue a failed or interrupted run of ``workspace`` (default: the one
    ``settings`` name): re-run only what did not succeed."""
    from ctloop.pipeline._loading import load_pipeline

    context = RunContext.open(settings, workspace)
    meta = context.metadata
    reconcile_stale_runs(meta)
    run = resolve_run(meta, run_id)
    if run.status == RunStatus.RUNNING:
        raise errors.PipelineError(
            f"run {run.id[:8]} is still running (pid {run.pid} on {run.host}); wait for it "
            "or stop that process first"
        )
    pipeline_obj, _ = load_pipeline(run.reference)
    graph = pipeline_obj.build(_params_from_json(pipeline_obj, run.parameters))
    check_file_paths(f"pipeline '{pipeline_obj.name}'", graph.params)
    chosen = executor or run.executor
    check_executor_reaches(chosen, context.workspace)
    previous = _latest_executions(meta.list_executions(run.id))
    data_inputs = _resolve_data_inputs(graph, meta, previous)
    meta.update_run(
        run.id,
        status=RunStatus.RUNNING,
        ended_at=None,
        error=None,
        pid=os.getpid(),
        host=socket.gethostname(),
        heartbeat_at=utcnow(),
    )
    run = meta.get_run(run.id)
    _check_executor_can_import(graph, chosen)
    runner = _Runner(graph, context, chosen, True, listener, data_inputs)
    return runner.execute(run, previous=previous)


def _check_executor_can_import(graph: PipelineGraph, executor: str) -> None:
    """Worker processes import steps by name: refuse steps they cannot find, up front."""
    if executor == "local":
        return
    for inv in graph.invocations.values():
        if "<locals>" in inv.step.fn.__qualname__:
            raise errors.PipelineDefinitionError(
                f"step '{inv.step.name}' is defined inside a function, so a worker process "
                f"cannot import it; define steps at module level or use executor='local'"
            )


def _params_from_json(pipeline_obj: Pipeline, stored: dict[str, Any]) -> dict[str, Any]:
    known = set(pipeline_obj.signature.parameters)
    return {k: v for k, v in stored.items() if k in known}


def _latest_executions(executions: list[ExecutionRecord]) -> dict[str, ExecutionRecord]:
    latest: dict[str, ExecutionRecord] = {}
    for execution in executions:  # oldest first: later attempts win
        latest[execution.step] = execution
    return latest


def _resolve_data_inputs(
    graph: PipelineGraph,
    meta: MetadataStore,
    previous: dict[str, ExecutionRecord] | None = None,
) -> dict[str, ArtifactRecord]:
    """Artifact of every data-version input, keyed ``step:argument``: the latest version
    at run start, or on resume the very version the run read before."""
    found: dict[str, ArtifactRecord] = {}
    for inv in graph.invocations.values():
        earlier = previous.get(inv.id) if previous else None
        used = {}
        if earlier is not None:
            used = {
                e.name: e.artifact_id
                for e in meta.events_of_execution(earlier.id)
                if e.kind == "input"
            }
        for arg, value in inv.inputs.items():
            if not isinstance(value, DataInput):
                continue
            if arg in used:
                found[f"{inv.id}:{arg}"] = meta.get_artifact(used[arg])
                continue
            try:
                record = meta.get_data_version(value.name, value.version)
            except NotFoundError as exc:
                raise DataVersionError(
                    f"step '{inv.id}' reads data version '{value}', which does not "
                    f"exist; add it with `ctloop data add {value.name} PATH`"
                ) from exc
            found[f"{inv.id}:{arg}"] = meta.get_artifact(record.artifact_id)
    return found


def _new_run(
    graph: PipelineGraph, context: RunContext, executor: str, trigger: str, reference: str
) -> RunRecord:
    reconcile_stale_runs(context.metadata)
    now = utcnow()
    run = RunRecord(
        id=new_id(),
        pipeline=graph.pipeline.name,
        pipeline_version=graph.version(),
        reference=reference,
        parameters=to_json_param(graph.params),
        trigger=trigger,
        user=_user(),
        host=socket.gethostname(),
        pid=os.getpid(),
        status=RunStatus.RUNNING,
        started_at=now,
        heartbeat_at=now,
        git_commit=_git_commit(reference),
        executor=executor,
    )
    context.metadata.create_run(run)
    return run


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())


def _git_commit(reference: str) -> str | None:
    path = Path(reference.rpartition(":")[0])
    folder = path.parent if path.suffix == ".py" else Path.cwd()
    try:
        out = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = out.stdout.strip()
    if out.returncode != 0 or not commit:
        return None
    return commit + ("-dirty" if dirty.stdout.strip() else "")


class _Runner:
    """Executes one run of a graph (a new run or a resumed one)."""

    def __init__(
        self,
        graph: PipelineGraph,
        context: RunContext,
        executor: str,
        cache: bool,
        listener: RunListener | None,
        data_inputs: dict[str, ArtifactRecord],
    ) -> None:
        self.graph = graph
        self.context = context
        self.meta = context.metadata
        self.executor_name = executor
        self.cache = cache
        self.listener = listener
        self.data_inputs = data_inputs
        self.outputs: dict[str, dict[str, ArtifactRecord]] = {}
        self.status: dict[str, str] = {}
        self.failures: list[tuple[str, StepOutcome | None, str]] = []

    def execute(self, run: RunRecord, previous: dict[str, ExecutionRecord]) -> RunResult:
        order = self.graph.order()
        self.run = run
        self.previous = previous
        if self.listener:
            self.listener.on_run_start(run=run, steps=order)
        executor = make_executor(self.executor_name, self.context.workspace, self.context.settings)
        try:
            with Heartbeat(self.meta, run.id):
                self._loop(order, executor)
        except BaseException as exc:
            executor.shutdown(cancel=True)
            self._abort(exc)
            raise
        executor.shutdown()
        return self._finish()

    # -- scheduling -------------------------------------------------------------------
    def _loop(self, order: list[str], executor: Executor) -> None:
        waiting = list(order)
        running: dict[Future[StepOutcome], tuple[Invocation, ExecutionRecord]] = {}
        while waiting or running:
            for inv_id in [i for i in waiting if self._ready(i)]:
                waiting.remove(inv_id)
                submitted = self._start(self.graph.invocations[inv_id], executor)
                if submitted is not None:
                    running[submitted[0]] = submitted[1]
            while blocked := [i for i in waiting if self._blocked(i)]:  # transitively
                for inv_id in blocked:
                    waiting.remove(inv_id)
                    self._skip(inv_id)
            if not running:
                if waiting and not any(self._ready(i) for i in waiting):
                    raise errors.PipelineError(f"steps {waiting} can never become ready")
                continue
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                inv, execution = running.pop(future)
                self._record(inv, execution, future.result())  # a lost worker: a failed outcome

    def _ready(self, inv_id: str) -> bool:
        upstream = self.graph.invocations[inv_id].upstream()
        return all(self.status.get(up) in ExecutionStatus.done() for up in upstream)

    def _blocked(self, inv_id: str) -> bool:
        return any(
            self.status.get(up) in ExecutionStatus.without_outputs()
            for up in self.graph.invocations[inv_id].upstream()
        )

    # -- one step ---------------------------------------------------------------------
    def _start(
        self, inv: Invocation, executor: Executor
    ) -> tuple[Future[StepOutcome], tuple[Invocation, ExecutionRecord]] | None:
        if self.listener:
            self.listener.on_step_start(step=inv.id)
        inputs = self._input_records(inv)
        fingerprint = param_fingerprint(f"step '{inv.id}'", inv.params)
        params = json.loads(fingerprint)  # FilePath values recorded with their sha256
        key = cache_key(
            code=inv.step.code_hash,
            params=fingerprint,
            inputs={
                k: (r.digest, f"{r.materializer}@{r.materializer_version}")
                for k, r in inputs.items()
            },
        )
        if self._reuse_previous(inv, key) or self._reuse_cached(inv, key, inputs, params):
            return None
        previous = self.previous.get(inv.id)
        execution = _execution_record(
            self.run.id,
            inv,
            key,
            ExecutionStatus.RUNNING,
            params,
            heartbeat_at=utcnow(),
            attempt=(previous.attempt + 1) if previous else 1,
        )
        self.meta.create_execution(execution)
        task = StepTask(
            run_id=self.run.id,
            execution_id=execution.id,
            invocation=inv.id,
            step_ref=StepRef.of(inv.step),
            inputs=inputs,
            params=inv.params,
            store_url=self.context.workspace.store_url,
            artifact_url=self.context.workspace.artifact_url,
            artifact_options=dict(self.context.workspace.artifact_options),
            home=str(self.context.settings.home),
            executor=self.executor_name,
        )
        return executor.submit(task, inv.step), (inv, execution)

    def _input_records(self, inv: Invocation) -> dict[str, ArtifactRecord]:
        records: dict[str, ArtifactRecord] = {}
        for name, source in inv.inputs.items():
            if isinstance(source, OutputHandle):
                records[name] = self.outputs[source.invocation][source.output]
            else:
                records[name] = self.data_inputs[f"{inv.id}:{name}"]
        return records

    def _reuse_previous(self, inv: Invocation, key: str) -> bool:
        """On resume: keep this run's finished result when nothing it depends on changed."""
        prev = self.previous.get(inv.id)
        if prev is None or prev.status not in ExecutionStatus.done() or prev.cache_key != key:
            return False
        outputs = self._outputs_of(prev.id)
        if outputs is None:
            return False
        # reported as cached (its outputs are reused, it does not run); the run keeps the
        # earlier execution record, so nothing new is written
        self._done(inv.id, outputs, ExecutionStatus.CACHED, 0.0)
        return True

    def _reuse_cached(
        self,
        inv: Invocation,
        key: str,
        inputs: dict[str, ArtifactRecord],
        params: dict[str, Any],
    ) -> bool:
        if not (self.cache and inv.step.cache):
            return False
        source = self.meta.find_cached_execution(key)
        if source is None:
            return False
        outputs = self._outputs_of(source.id)
        if outputs is None:
            return False  # artifacts gone from the store: recompute, never fail
        execution = _execution_record(
            self.run.id, inv, key, ExecutionStatus.CACHED, params, ended=True, cached_from=source.id
        )
        self.meta.create_execution(execution)
        self.meta.add_events(_events(execution.id, inputs, outputs))
        self._done(inv.id, outputs, ExecutionStatus.CACHED, 0.0)
        return True

    def _outputs_of(self, execution_id: str) -> dict[str, ArtifactRecord] | None:
        """The outputs of an earlier execution if all are still loadable, else None."""
        from ctloop.artifacts import artifact_available
        from ctloop.artifacts._registry import materializer_named

        events = [e for e in self.meta.events_of_execution(execution_id) if e.kind == "output"]
        if not events:
            return None
        records = {a.id: a for a in self.meta.list_artifacts([e.artifact_id for e in events])}
        outputs: dict[str, ArtifactRecord] = {}
        for event in events:
            record = records.get(event.artifact_id)
            if record is None or not artifact_available(record, self.context.artifacts):
                return None
            try:
                if materializer_named(record.materializer).version != record.materializer_version:
                    return None
            except CtloopError:
                return None
            outputs[event.name] = record
        return outputs

    def _record(self, inv: Invocation, execution: ExecutionRecord, outcome: StepOutcome) -> None:
        inputs = self._input_records(inv)
        self.meta.complete_execution(
            execution.id,
            status=outcome.status,
            ended_at=outcome.ended_at,
            artifacts=list(outcome.outputs.values()),
            events=_events(execution.id, inputs, outcome.outputs),
            params=outcome.params,
            metrics=outcome.metrics,
            tags=outcome.tags,
            error=outcome.error,
            log_uri=outcome.log_uri,
        )
        duration = (outcome.ended_at - (execution.started_at or outcome.started_at)).total_seconds()
        if outcome.status == ExecutionStatus.SUCCEEDED:
            self._done(inv.id, outcome.outputs, ExecutionStatus.SUCCEEDED, duration)
            return
        self.status[inv.id] = ExecutionStatus.FAILED
        self.failures.append((inv.id, outcome, outcome.error_message or ""))
        if self.listener:
            self.listener.on_step_end(
                step=inv.id,
                status=ExecutionStatus.FAILED,
                duration_s=duration,
                error=outcome.error_message,
            )

    def _done(
        self, inv_id: str, outputs: dict[str, ArtifactRecord], status: str, duration: float
    ) -> None:
        self.outputs[inv_id] = outputs
        self.status[inv_id] = status
        if self.listener:
            self.listener.on_step_end(step=inv_id, status=status, duration_s=duration, error=None)

    def _skip(self, inv_id: str) -> None:
        inv = self.graph.invocations[inv_id]
        self.meta.create_execution(
            _execution_record(
                self.run.id,
                inv,
                "",
                ExecutionStatus.SKIPPED,
                to_json_param(inv.params),
                ended=True,
                error="an upstream step failed",
            )
        )
        self.status[inv_id] = ExecutionStatus.SKIPPED
        if self.listener:
            self.listener.on_step_end(
                step=inv_id, status=ExecutionStatus.SKIPPED, duration_s=0.0, error=None
            )

    # -- ending -----------------------------------------------------------------------
    def _finish(self) -> RunResult:
        failed = [name for name, _, _ in self.failures]
        status = RunStatus.FAILED if failed else RunStatus.SUCCEEDED
        error = None
        if failed:
            error = "; ".join(
                f"{name}: {msg.splitlines()[0] if msg else 'failed'}"
                for name, _, msg in self.failures
            )
        self.meta.update_run(self.run.id, status=status, ended_at=utcnow(), error=error)
        run = self.meta.get_run(self.run.id)
        if self.listener:
            self.listener.on_run_end(run=run)
        result = RunResult(run.id, status, dict(self.status), self.outputs, self.context)
        if failed:
            raise _failure_error(run.id, self.failures, result)
        return result

    def _abort(self, exc: BaseException) -> None:
        now = utcnow()
        reason = f"the run was interrupted: {type(exc).__name__}: {exc}".rstrip(": ")
        try:
            for execution in self.meta.list_executions(self.run.id):
                if execution.status in ExecutionStatus.unfinished():
                    self.meta.update_execution(
                        execution.id, status=ExecutionStatus.FAILED, ended_at=now, error=reason
                    )
            self.meta.update_run(self.run.id, status=RunStatus.FAILED, ended_at=now, error=reason)
        except Exception:  # the store itself may be what failed; staleness detection covers it
            pass


def _execution_record(
    run_id: str,
    inv: Invocation,
    key: str,
    status: str,
    params: dict[str, Any],
    *,
    ended: bool = False,
    **extra: Any,
) -> ExecutionRecord:
    """A new execution record of ``inv`` in run ``run_id``."""
    now = utcnow()
    return ExecutionRecord(
        id=new_id(),
        run_id=run_id,
        step=inv.id,
        function=f"{inv.step.fn.__module__}.{inv.step.fn.__qualname__}",
        code_hash=inv.step.code_hash,
        cache_key=key,
        status=status,
        parameters=params,
        started_at=now,
        ended_at=now if ended else None,
        **extra,
    )


def _events(
    execution_id: str, inputs: dict[str, ArtifactRecord], outputs: dict[str, ArtifactRecord]
) -> list[EventRecord]:
    events = [EventRecord(execution_id, r.id, "input", name) for name, r in inputs.items()]
    events += [EventRecord(execution_id, r.id, "output", name) for name, r in outputs.items()]
    return events


def _failure_error(
    run_id: str, failures: list[tuple[str, StepOutcome | None, str]], result: RunResult
) -> CtloopError:
    step, outcome, message = failures[0]
    others = [name for name, _, _ in failures[1:]]
    suffix = f" (also failed: {', '.join(others)})" if others else ""
    exc: CtloopError
    if outcome is not None and outcome.user_error:
        # a ctloop error raised by a component already reads as a sentence: no traceback
        sentence = (outcome.error_type or "").startswith("ctloop.errors.")
        trace = "" if sentence else (outcome.error or "")
        exc = StepError(step, run_id, (message or "error") + suffix, trace)
    elif (
        outcome is not None
        and outcome.error_type
        and outcome.error_type.startswith("ctloop.errors.")
    ):
        cls = getattr(errors, outcome.error_type.rsplit(".", 1)[1], CtloopError)
        try:
            exc = cls(f"step '{step}' of run {run_id[:8]}: {message}{suffix}")
        except TypeError:
            exc = RunFailedError(run_id, [step] + others, message)
    else:
        exc = RunFailedError(run_id, [step] + others, message)
    exc.run_id = run_id  # type: ignore[attr-defined]
    exc.result = result  # type: ignore[attr-defined]
    return exc
