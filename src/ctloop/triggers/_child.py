"""The process that runs one firing's pipeline: ``python -m ctloop.triggers._child ID``.

The scheduler starts one per firing, so that a crashing pipeline never takes the
scheduler down. The child opens the workspace of its working directory's settings, reads
the firing (pipeline reference, parameters, the ``trigger`` to record on the run), runs
the pipeline, links the run to the firing (the firing's ``run_id``; the run's tags
``ctloop.trigger``, ``ctloop.trigger.firing`` and ``ctloop.trigger.cause``) and records
the outcome on the firing. A child killed before it records an outcome leaves its firing
``running``; the scheduler finds it (its process is gone) and retries or reports it.
"""

from __future__ import annotations

import signal
import sys
import traceback
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.config import Settings
from ctloop.store._triggers import FiringRecord
from ctloop.store.records import RunRecord, TagRecord
from ctloop.store.statuses import FiringStatus

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace


class FiringListener:
    """Links the run to its firing (in ``workspace``) as soon as the run exists, and
    writes the run's progress to standard output (the firing's log,
    ``.ctloop/triggers/firing-N.log``): its steps, each one's outcome and error."""

    def __init__(self, workspace: Workspace, firing: FiringRecord) -> None:
        self._workspace = workspace
        self._firing = firing

    def on_run_start(self, *, run: RunRecord, steps: list[str]) -> None:
        self._workspace.triggers.update_firing(self._firing.id, run_id=run.id)
        tags = {
            "ctloop.trigger": self._firing.trigger,
            "ctloop.trigger.firing": str(self._firing.id),
        }
        if self._firing.cause_artifact_id:
            tags["ctloop.trigger.cause"] = self._firing.cause_artifact_id
        records = [TagRecord(run.id, key, value) for key, value in tags.items()]
        self._workspace.metadata.log_batch(tags=records)
        _say(f"firing {self._firing.id} ({self._firing.trigger}): run {run.id} started, "
             f"steps: {', '.join(steps) or 'none'}")  # fmt: skip

    def on_step_start(self, *, step: str) -> None:
        _say(f"step {step} started")

    def on_step_end(self, *, step: str, status: str, duration_s: float, error: str | None) -> None:
        _say(f"step {step} {status} in {duration_s:.2f} s" + (f": {error}" if error else ""))

    def on_run_end(self, *, run: RunRecord) -> None:
        self._print_step_logs(run.id)
        _say(f"run {run.id} {run.status}")

    def _print_step_logs(self, run_id: str) -> None:
        """What each step printed or logged (the run keeps it as one object per step)."""
        for execution in self._workspace.metadata.list_executions(run_id):
            if not execution.log_uri:
                continue
            try:
                text = self._workspace.artifacts.read_object(execution.log_uri).decode(
                    errors="replace"
                )
            except Exception as exc:  # a lost log must not hide the run's outcome
                text = f"(its log {execution.log_uri} could not be read: {exc})\n"
            _say(f"--- output of step {execution.step} ---\n{text.rstrip()}")


def _say(line: str) -> None:
    print(line, flush=True)  # the log is read while the run goes on


def run_firing(firing_id: int, settings: Settings | None = None) -> str:
    """Run the pipeline of a firing and record its outcome; return the final status.

    A retried firing whose first run exists resumes that run (its finished steps are
    reused) instead of starting over. The firing and the run live in the workspace that
    ``settings`` (default: ``ctloop.yaml`` and the environment) name.
    """
    from ctloop.store.workspace import Workspace

    settings = settings or Settings.load()
    workspace = Workspace.from_settings(settings)
    store = workspace.triggers
    firing = store.get_firing(firing_id)
    try:
        _run(firing, workspace, settings)
    except KeyboardInterrupt:
        store.finish_firing(firing_id, FiringStatus.FAILED, reason=f"{firing.reason}; interrupted")
        return "interrupted"
    except Exception as exc:  # the child's job is to record every failure on the firing
        traceback.print_exc(file=sys.stdout)
        sys.stdout.flush()
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        store.finish_firing(
            firing_id, FiringStatus.FAILED, reason=f"{firing.reason}; failed: {first}"
        )
        return FiringStatus.FAILED
    store.finish_firing(firing_id, FiringStatus.SUCCEEDED)
    return FiringStatus.SUCCEEDED


def _run(firing: FiringRecord, workspace: Workspace, settings: Settings) -> None:
    from ctloop.pipeline._loading import load_pipeline
    from ctloop.pipeline._runner import resume_run, run_pipeline

    details = firing.details
    listener = FiringListener(workspace, firing)
    if details.get("resume_run_id"):
        resume_run(
            details["resume_run_id"], listener=listener, settings=settings, workspace=workspace
        )
        return
    pipeline_obj, canonical = load_pipeline(details["reference"])
    run_pipeline(
        pipeline_obj,
        pipeline_parameters(pipeline_obj.fn, details.get("parameters") or {}),
        trigger=details.get("run_trigger", "manual"),
        listener=listener,
        settings=settings,
        reference=canonical,
        workspace=workspace,
    )


def pipeline_parameters(fn: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Fit firing parameters to the pipeline function: a list of new paths stays a list
    for a list parameter; otherwise one path is passed as is and several as their folder.

    >>> def train(path: str, paths: list[str]) -> None: ...
    >>> pipeline_parameters(train, {"path": ["d/a.csv", "d/b.csv"], "paths": ["d/a.csv"]})
    {'path': 'd', 'paths': ['d/a.csv']}
    """
    from ctloop.pipeline._params import annotation_of, coerce_file_paths

    fitted: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, list) and not _is_sequence(annotation_of(fn, name)):
            value = value[0] if len(value) == 1 else _common_folder(value)
        fitted[name] = value
    return coerce_file_paths(fn, fitted)


def _is_sequence(annotation: Any) -> bool:
    origin = typing.get_origin(annotation) or annotation
    if origin in (list, tuple, set, frozenset):
        return True
    return any(_is_sequence(arg) for arg in typing.get_args(annotation) if arg is not type(None))


def _common_folder(paths: list[str]) -> str:
    import os.path

    return os.path.commonpath([str(Path(p).parent) for p in paths]) if paths else ""


def main(argv: list[str]) -> int:
    """Entry point: ``python -m ctloop.triggers._child FIRING_ID``; exit 0 on success."""
    signal.signal(signal.SIGTERM, _interrupt)
    status = run_firing(int(argv[0]))
    return {FiringStatus.SUCCEEDED: 0, "interrupted": 130}.get(status, 1)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signum}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
