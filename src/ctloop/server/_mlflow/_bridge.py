"""How MLflow's objects live in a ctloop workspace.

- An **experiment** is a pipeline name: its runs are the ctloop runs of that pipeline.
  The experiments themselves (id, name, tags, creation time) are one small JSON object
  in the artifact store, ``mlflow/experiments.json``; experiment ``0`` is ``Default``.
- A **run** is a ctloop run (``pipeline`` = the experiment's name, ``reference`` =
  ``mlflow:<experiment id>``) with its params, metrics (step and time kept) and tags.
- A run's **artifacts** are the outputs of one execution of it (step ``mlflow-artifacts``):
  each uploaded file is an artifact whose event is named by its path.
- A **logged model** (MLflow 3) is an execution of its source run (step
  ``mlflow-model``), its params and tags are the execution's, its files its outputs; when
  it is finalized or registered, its files become one ``mlflow.model`` artifact, which is
  what a registered version points at.

Tags whose key starts with ``ctloop.mlflow.`` are the bridge's own and never shown.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ctloop.errors import NotFoundError
from ctloop.server._mlflow._protocol import MlflowError, to_ms
from ctloop.server._paths import path_problem
from ctloop.store.records import (
    ArtifactRecord,
    EventRecord,
    ExecutionRecord,
    FileEntry,
    RunRecord,
    TagRecord,
    new_id,
    utcnow,
)
from ctloop.store.statuses import ExecutionStatus, RunStatus

if TYPE_CHECKING:
    from fastapi import Request

    from ctloop.store.workspace import Workspace

__all__ = ["ARTIFACTS_STEP", "HIDDEN", "MODEL_STEP", "Bridge", "Experiment", "bridge_of"]

#: the object holding the experiments
EXPERIMENTS_KEY = "mlflow/experiments.json"
DEFAULT_ID, DEFAULT_NAME = "0", "Default"
ARTIFACTS_STEP = "mlflow-artifacts"
MODEL_STEP = "mlflow-model"
#: tag keys of the bridge itself
HIDDEN = "ctloop.mlflow."
DELETED = HIDDEN + "deleted"
REFERENCE = "mlflow:"
#: how many run ids the bridge remembers as existing (the most recently used)
KNOWN_RUNS = 10_000


@dataclass(frozen=True)
class Experiment:
    """An MLflow experiment: a name of runs, with tags."""

    id: str
    name: str
    creation_ms: int
    tags: dict[str, str]
    deleted: bool = False

    def render(self) -> dict[str, Any]:
        """MLflow's JSON of the experiment."""
        return {
            "experiment_id": self.id,
            "name": self.name,
            "artifact_location": f"mlflow-artifacts:/{self.id}",
            "lifecycle_stage": "deleted" if self.deleted else "active",
            "creation_time": self.creation_ms,
            "last_update_time": self.creation_ms,
            "tags": [{"key": k, "value": v} for k, v in sorted(self.tags.items())],
        }


class Bridge:
    """MLflow's experiments, runs, artifacts and logged models over one workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._lock = threading.Lock()
        self._known_runs: OrderedDict[str, None] = OrderedDict()

    # -- experiments ------------------------------------------------------------------
    def experiments(self) -> list[Experiment]:
        """Every experiment, ``Default`` first."""
        try:
            stored = json.loads(self.workspace.artifacts.read_object(EXPERIMENTS_KEY))
        except NotFoundError:
            stored = []
        found = [Experiment(**e) for e in stored]
        if not any(e.id == DEFAULT_ID for e in found):
            found.insert(0, Experiment(DEFAULT_ID, DEFAULT_NAME, 0, {}))
        return found

    def experiment(self, experiment_id: str) -> Experiment:
        """The experiment with this id."""
        for experiment in self.experiments():
            if experiment.id == str(experiment_id):
                return experiment
        raise MlflowError.missing(f"experiment with id {experiment_id!r}")

    def experiment_named(self, name: str) -> Experiment:
        """The experiment called ``name``."""
        for experiment in self.experiments():
            if experiment.name == name:
                return experiment
        raise MlflowError.missing(f"experiment {name!r}")

    def create_experiment(self, name: str, tags: dict[str, str]) -> Experiment:
        """A new experiment; its name must be new."""
        with self._lock:
            found = self.experiments()
            if any(e.name == name for e in found):
                raise MlflowError.exists(f"experiment {name!r}")
            next_id = 1 + max((int(e.id) for e in found if e.id.isdigit()), default=0)
            experiment = Experiment(str(next_id), name, to_ms(utcnow()) or 0, dict(tags))
            self._save([*found, experiment])
        return experiment

    def change_experiment(self, experiment_id: str, **changes: Any) -> Experiment:
        """Rename, tag, delete or restore an experiment."""
        with self._lock:
            found = self.experiments()
            old = next((e for e in found if e.id == str(experiment_id)), None)
            if old is None:
                raise MlflowError.missing(f"experiment with id {experiment_id!r}")
            new = Experiment(**{**old.__dict__, **changes})
            self._save([new if e.id == old.id else e for e in found])
        return new

    def _save(self, experiments: list[Experiment]) -> None:
        data = [e.__dict__ for e in experiments]
        self.workspace.artifacts.write_object(EXPERIMENTS_KEY, json.dumps(data).encode())

    # -- runs -------------------------------------------------------------------------
    def create_run(
        self, experiment: Experiment, *, user: str, start_ms: int | None, tags: dict[str, str]
    ) -> RunRecord:
        """A new running ctloop run of ``experiment``, with its artifacts execution."""
        from ctloop.server._mlflow._protocol import from_ms

        started = utcnow() if start_ms is None else from_ms(start_ms)
        run = RunRecord(
            id=new_id(),
            pipeline=experiment.name,
            pipeline_version="mlflow",
            reference=REFERENCE + experiment.id,
            parameters={},
            trigger="manual",
            user=user,
            host="",
            pid=0,
            status=RunStatus.RUNNING,
            started_at=started,
            executor="mlflow",
        )
        store = self.workspace.metadata
        store.create_run(run)
        store.create_execution(self._artifacts_execution(run.id))
        if tags:
            store.log_batch(tags=[TagRecord(run.id, k, v) for k, v in tags.items()])
        self._remember(run.id)
        return run

    def run(self, run_id: str) -> RunRecord:
        """The ctloop run ``run_id`` (in full: MLflow never abbreviates)."""
        try:
            run = self.workspace.metadata.get_run(run_id)
        except NotFoundError:
            raise MlflowError.missing(f"run with id {run_id!r}") from None
        if run.id != run_id:
            raise MlflowError.missing(f"run with id {run_id!r}")
        self._remember(run.id)
        return run

    def existing_run_id(self, run_id: str) -> str:
        """``run_id``, once it names a run: a write that only needs the run to exist
        reads it once, not on every call. The write itself is the final check (its rows
        name the run by foreign key): see :meth:`forget_run`."""
        return run_id if self.knows_run(run_id) else self.run(run_id).id

    def knows_run(self, run_id: str) -> bool:
        """Whether ``run_id`` was seen to exist a moment ago (no store call)."""
        with self._lock:
            if run_id in self._known_runs:
                self._known_runs.move_to_end(run_id)
                return True
        return False

    def forget_run(self, run_id: str) -> None:
        """Drop ``run_id`` from the runs known to exist (a write to it failed)."""
        with self._lock:
            self._known_runs.pop(run_id, None)

    def _remember(self, run_id: str) -> None:
        with self._lock:
            self._known_runs[run_id] = None
            self._known_runs.move_to_end(run_id)
            while len(self._known_runs) > KNOWN_RUNS:
                self._known_runs.popitem(last=False)

    def experiment_of(self, run: RunRecord) -> Experiment:
        """The experiment a run belongs to (its pipeline's, for ctloop's own runs)."""
        if run.reference.startswith(REFERENCE):
            return self.experiment(run.reference.removeprefix(REFERENCE))
        try:
            return self.experiment_named(run.pipeline)
        except MlflowError:
            return Experiment(DEFAULT_ID, DEFAULT_NAME, 0, {})

    def runs_of(self, experiments: Sequence[Experiment]) -> list[RunRecord]:
        """The runs of these experiments, newest first."""
        runs: list[RunRecord] = []
        for experiment in experiments:
            for run in self.workspace.metadata.list_runs(pipeline=experiment.name):
                if self.experiment_of(run).id == experiment.id:
                    runs.append(run)
        return sorted(runs, key=lambda r: r.started_at, reverse=True)

    # -- artifacts --------------------------------------------------------------------
    @staticmethod
    def _artifacts_execution(run_id: str) -> ExecutionRecord:
        return ExecutionRecord(
            id=artifacts_execution_id(run_id),
            run_id=run_id,
            step=ARTIFACTS_STEP,
            function="mlflow.log_artifact",
            code_hash="",
            cache_key=f"{ARTIFACTS_STEP}:{run_id}",
            status=ExecutionStatus.RUNNING,
            started_at=utcnow(),
        )

    def owner(self, path: str) -> tuple[str, str]:
        """The execution holding the artifact path ``<exp>/<run>/artifacts/<rest>`` or
        ``<exp>/models/<model>/artifacts/<rest>``, and ``<rest>``."""
        parts = path.strip("/").split("/")
        for part in (path.strip("/"), "/".join(parts[3:]), "/".join(parts[4:])):
            problem = path_problem(part) if part else None
            if problem is not None:
                raise MlflowError.invalid(f"artifact path {path!r} is not valid: {problem}")
        if len(parts) >= 3 and parts[2] == "artifacts" and parts[1] != "models":
            run = self.run(parts[1])
            self._ensure_artifacts_execution(run.id)
            return artifacts_execution_id(run.id), "/".join(parts[3:])
        if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
            return self.logged_model(parts[2]).id, "/".join(parts[4:])
        raise MlflowError.invalid(
            f"artifact path {path!r} is not one of this server's: it must be "
            "EXPERIMENT/RUN_ID/artifacts/… or EXPERIMENT/models/MODEL_ID/artifacts/…"
        )

    def _ensure_artifacts_execution(self, run_id: str) -> None:
        store = self.workspace.metadata
        try:
            store.get_execution(artifacts_execution_id(run_id))
        except NotFoundError:
            with self._lock:
                try:
                    store.get_execution(artifacts_execution_id(run_id))
                except NotFoundError:
                    store.create_execution(self._artifacts_execution(run_id))

    def put_file(self, execution_id: str, path: str, data: bytes) -> ArtifactRecord:
        """Store the bytes of the file ``path`` of an execution's artifacts."""
        _check_path(path)
        digest = self.workspace.artifacts.put_bytes(data)
        entry = FileEntry(path.rsplit("/", 1)[-1], digest, len(data))
        return self._output(execution_id, path, "mlflow.file", digest, (entry,), {"path": path})

    def _output(
        self,
        execution_id: str,
        name: str,
        kind: str,
        digest: str,
        files: tuple[FileEntry, ...],
        properties: dict[str, Any],
    ) -> ArtifactRecord:
        """Record the stored blob ``digest`` (of ``files``) as the output ``name`` of an
        execution: a ``mlflow.file`` or a ``mlflow.model``."""
        record = ArtifactRecord(
            id=new_id(),
            type=kind,
            materializer="mlflow-artifacts" if kind == "mlflow.file" else "mlflow",
            materializer_version="1",
            digest=digest,
            uri=self.workspace.artifacts.blob_uri(digest),
            size=sum(f.size for f in files),
            files=files,
            properties=properties,
        )
        self.workspace.metadata.put_artifacts([record])
        self.workspace.metadata.add_events([EventRecord(execution_id, record.id, "output", name)])
        return record

    def files(self, execution_id: str) -> dict[str, ArtifactRecord]:
        """The files of an execution's artifacts by path (the latest upload of each)."""
        store = self.workspace.metadata
        events = [e for e in store.events_of_execution(execution_id) if e.kind == "output"]
        by_id = {a.id: a for a in store.list_artifacts([e.artifact_id for e in events])}
        found: dict[str, ArtifactRecord] = {}
        for event in events:
            artifact = by_id.get(event.artifact_id)
            if artifact is None or artifact.type != "mlflow.file":
                continue
            held = found.get(event.name)
            if held is None or artifact.created_at >= held.created_at:
                found[event.name] = artifact
        return found

    def read_file(self, execution_id: str, path: str) -> bytes:
        """The bytes of one file of an execution's artifacts."""
        artifact = self.files(execution_id).get(path.strip("/"))
        if artifact is None:
            raise MlflowError.missing(f"artifact {path!r}")
        return self.workspace.artifacts.get_bytes(artifact.files[0].digest)

    def model_artifact(self, execution_id: str, prefix: str = "") -> ArtifactRecord:
        """One ``mlflow.model`` artifact of the files under ``prefix`` of an execution's
        artifacts (the MLmodel file, the model's bytes and its environment), recorded as
        the execution's output ``model`` (or ``model:<prefix>``); made once."""
        name = "model" if not prefix else f"model:{prefix.strip('/')}"
        store = self.workspace.metadata
        for event in store.events_of_execution(execution_id):
            if event.kind == "output" and event.name == name:
                return store.get_artifact(event.artifact_id)
        start = prefix.strip("/") + "/" if prefix.strip("/") else ""
        chosen = {
            p[len(start) :]: a for p, a in self.files(execution_id).items() if p.startswith(start)
        }
        if "MLmodel" not in chosen:
            raise MlflowError.invalid(
                f"there is no MLmodel file under {prefix or 'the model'}'s artifacts; "
                "log the model with mlflow.<flavor>.log_model first"
            )
        entries = tuple(
            FileEntry(path, a.files[0].digest, a.files[0].size)
            for path, a in sorted(chosen.items())
        )
        mlmodel = self.workspace.artifacts.get_bytes(chosen["MLmodel"].files[0].digest)
        manifest = json.dumps([[e.path, e.digest, e.size] for e in entries]).encode()
        digest = self.workspace.artifacts.put_bytes(manifest)
        properties = describe_mlmodel(mlmodel)
        return self._output(execution_id, name, "mlflow.model", digest, entries, properties)

    # -- logged models ----------------------------------------------------------------
    def create_logged_model(
        self,
        experiment: Experiment,
        *,
        name: str,
        model_type: str,
        source_run_id: str | None,
        user: str,
    ) -> ExecutionRecord:
        """A pending logged model: an execution of its source run (or of a run made to
        hold it)."""
        if source_run_id:
            run = self.run(source_run_id)
        else:
            run = self.create_run(
                experiment, user=user, start_ms=None, tags={"mlflow.runName": f"model {name}"}
            )
            self.workspace.metadata.update_run(
                run.id, status=RunStatus.SUCCEEDED, ended_at=utcnow()
            )
        model_id = "m-" + new_id()
        execution = ExecutionRecord(
            id=model_id,
            run_id=run.id,
            step=MODEL_STEP,
            function=model_type or "mlflow.log_model",
            code_hash="",
            cache_key=f"{MODEL_STEP}:{model_id}",
            status=ExecutionStatus.PENDING,
            parameters={
                "name": name,
                "model_type": model_type,
                "experiment_id": experiment.id,
                "source_run_id": source_run_id or "",
            },
            started_at=utcnow(),
        )
        self.workspace.metadata.create_execution(execution)
        return execution

    def logged_model(self, model_id: str) -> ExecutionRecord:
        """The logged model ``model_id``."""
        try:
            execution = self.workspace.metadata.get_execution(model_id)
        except NotFoundError:
            execution = None
        if execution is None or execution.step != MODEL_STEP:
            raise MlflowError.missing(f"logged model with id {model_id!r}")
        return execution


def bridge_of(request: Request) -> Bridge:
    """The bridge of the server's workspace (made on first use)."""
    state = request.app.state
    if not hasattr(state, "mlflow_bridge"):
        state.mlflow_bridge = Bridge(state.workspace)
    bridge: Bridge = state.mlflow_bridge
    return bridge


def artifacts_execution_id(run_id: str) -> str:
    """The id of the execution holding a run's MLflow artifacts."""
    return hashlib.sha256(f"{ARTIFACTS_STEP}:{run_id}".encode()).hexdigest()[:32]


def _check_path(path: str) -> None:
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in path:
        raise MlflowError.invalid(f"artifact path {path!r} is not valid: use a/b/c, no '..'")


#: MLflow's pyfunc/flavor serialization formats that unpickle on load
PICKLE_FORMATS = frozenset({"pickle", "cloudpickle"})


def describe_mlmodel(data: bytes) -> dict[str, Any]:
    """What an ``MLmodel`` file says: its flavors and the sklearn serialization format
    (``skops`` is safe to load; ``pickle`` and ``cloudpickle`` run code when loaded)."""
    import yaml

    try:
        document = yaml.safe_load(data.decode()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise MlflowError.invalid(f"the MLmodel file is not YAML: {exc}") from exc
    flavors = document.get("flavors") or {}
    formats = sorted(
        {
            str(f["serialization_format"])
            for f in flavors.values()
            if isinstance(f, dict) and "serialization_format" in f
        }
    )
    pyfunc = flavors.get("python_function") or {}
    if isinstance(pyfunc, dict) and pyfunc.get("loader_module") and not formats:
        formats = ["cloudpickle"] if "cloudpickle" in str(pyfunc.get("loader_module")) else []
    return {
        "mlflow_flavors": sorted(flavors),
        "mlflow_format": formats[0] if formats else "unknown",
        "mlflow_version": str(document.get("mlflow_version", "")),
        "needs_pickle": any(f in PICKLE_FORMATS for f in formats),
    }
