"""The scheduler: evaluates triggers, claims firings and launches their runs.

One evaluation (:meth:`Scheduler.evaluate`) first settles firings whose process died
(a claimed firing whose run died is retried once or reported, per the trigger's
``on_lost``), judges every active canary on its labelled traffic (promoting or rolling
it back, :mod:`ctloop.monitor._canary`), then checks every trigger and fires its
occasions. All state lives in the workspace (its trigger store), so a restarted scheduler
neither misses nor repeats a firing, and two schedulers on one store fire each occasion
once. Each run is a child process (:mod:`ctloop.triggers._child`) in its own session: a
crashing pipeline never takes the scheduler down, and a stopped scheduler leaves its runs
to finish and record themselves.

>>> scheduler = Scheduler([], Workspace.open(), settings=Settings.load())  # doctest: +SKIP
>>> scheduler.evaluate()  # doctest: +SKIP
[]
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.config import Settings
from ctloop.errors import TriggerBusyError, TriggerError
from ctloop.store._triggers import (
    ClaimResult,
    FiringClaim,
    FiringRecord,
    TriggerStore,
)
from ctloop.store.metadata import MetadataStore
from ctloop.store.records import new_id, utcnow
from ctloop.store.statuses import FiringStatus, RunStatus
from ctloop.triggers import _sources as sources
from ctloop.triggers._spec import PipelineSpec, TriggerSpec, find_trigger

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace

_CANARY_OUTCOMES = {"wait": "canary-waiting", "promote": "promoted", "rollback": "rolled-back"}
#: a claimed firing with no live process after this long is lost (another host's claim)
LOST_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class TriggerEvent:
    """What one evaluation did with one trigger: ``fired``, ``idle``, ``baseline``,
    ``cooldown``, ``busy``, ``skipped``, ``duplicate``, ``finished``, ``lost``,
    ``retried`` or ``error``; for a canary (trigger ``canary/DEPLOYMENT``):
    ``canary-waiting``, ``promoted`` or ``rolled-back``."""

    trigger: str
    outcome: str
    detail: str = ""
    firing_id: int | None = None


class Scheduler:
    """Evaluates the triggers of ``specs`` against ``workspace``: its trigger store holds
    what each trigger saw and every firing, and the monitor judges its canaries and
    delivers its alerts. ``settings`` give the home (run logs), ``monitoring:`` and
    ``alerts:`` (default: ``ctloop.yaml``); the runs it launches open the workspace of
    the settings of their working directory, so give a workspace opened from them.

    ``verdicts`` runs monitoring jobs (default: :func:`ctloop.monitor.run_monitor`);
    ``clock`` gives the time (UTC); ``on_event`` hears every :class:`TriggerEvent`.
    """

    def __init__(
        self,
        specs: list[PipelineSpec],
        workspace: Workspace,
        *,
        settings: Settings | None = None,
        verdicts: sources.VerdictSource | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_event: Callable[[TriggerEvent], None] | None = None,
    ) -> None:
        self.specs = specs
        self.settings = settings or Settings.load()
        self.workspace = workspace
        self.store: TriggerStore = workspace.triggers
        self._verdicts = verdicts or sources.monitor_verdicts(workspace, self.settings)
        self._clock = clock
        self._on_event = on_event
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._stop = threading.Event()

    # -- the loop ---------------------------------------------------------------------
    def run_forever(self, interval_s: float = 30.0) -> None:
        """Evaluate every ``interval_s`` seconds until :meth:`stop` is called."""
        while not self._stop.is_set():
            self.evaluate()
            self._stop.wait(interval_s)
        self.detach()

    def detach(self) -> list[int]:
        """Leave the runs still going to finish on their own (each records its outcome
        on its firing); mark their firings ``detached`` and return their ids."""
        detached = []
        for firing_id, proc in list(self._children.items()):
            if proc.poll() is None:
                firing = self.store.get_firing(firing_id)
                details = {**firing.details, "detached": True}
                self.store.update_firing(firing_id, only_if=FiringStatus.active(), details=details)
                detached.append(firing_id)
            del self._children[firing_id]
        return detached

    def stop(self) -> None:
        """Finish the evaluation in progress, then return from :meth:`run_forever`."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    def evaluate(self) -> list[TriggerEvent]:
        """Settle finished and lost firings, then check every trigger once."""
        events = self.settle()
        # canaries first: a run fired below then gates against the champion they leave
        events.extend(self._settle_canaries())
        for pipeline in self.specs:
            for trigger in pipeline.triggers:
                if self._stop.is_set():
                    return events
                events.extend(self._evaluate_trigger(pipeline, trigger))
        if getattr(self.settings, "alerts", None):
            events.extend(self._deliver_alerts())
        return events

    def _settle_canaries(self) -> list[TriggerEvent]:
        """Judge every active canary on its labelled traffic; promote or roll it back
        (see :mod:`ctloop.monitor._canary`)."""
        from ctloop.monitor._canary import active_canaries, settle_canary

        events = []
        for name in active_canaries(self.workspace):
            try:
                found = settle_canary(
                    self.workspace, name, settings=self.settings, now=self._clock()
                )
            except Exception as exc:  # one deployment's trouble must not stop the others
                events.append(self._emit(f"canary/{name}", "error", f"{type(exc).__name__}: {exc}"))
                continue
            if found is not None:
                outcome = _CANARY_OUTCOMES[found.decision]
                events.append(self._emit(f"canary/{name}", outcome, found.reason))
        return events

    def _deliver_alerts(self) -> list[TriggerEvent]:
        """Retry alert deliveries that failed earlier (webhooks down, …)."""
        try:
            from ctloop.monitor._alerts import deliver_pending

            retried = deliver_pending(self.workspace, settings=self.settings)
        except Exception as exc:  # alerting trouble must not stop the scheduler
            return [self._emit("alerts", "error", f"{type(exc).__name__}: {exc}")]
        return (
            [self._emit("alerts", "delivered", f"{len(retried)} alert(s) retried")]
            if retried
            else []
        )

    def has_children(self) -> bool:
        """Whether runs this scheduler launched have not been reaped yet."""
        return bool(self._children)

    def wait(self, timeout_s: float | None = None) -> list[TriggerEvent]:
        """Wait for the runs this scheduler launched, then settle their firings."""
        for proc in list(self._children.values()):
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                continue
        return self.settle()

    # -- on demand --------------------------------------------------------------------
    def fire(self, name: str, parameters: dict[str, Any] | None = None) -> FiringRecord:
        """Fire trigger (or pipeline) ``name`` now and launch its run; a trigger with
        ``max_concurrent`` active firings raises :class:`~ctloop.errors.TriggerBusyError`."""
        pipeline, trigger = find_trigger(self.specs, name)
        occasion = sources.Occasion(
            fire_key=f"manual:{new_id()}",
            reason="fired on demand",
            cursor={},
            run_trigger="manual",
            parameters=dict(parameters or {}),
        )
        result = self._claim(pipeline, trigger, occasion, expect=False)
        if result.firing is None:
            raise TriggerBusyError(
                f"trigger {trigger.qualified_name} already has {trigger.max_concurrent} active "
                "run(s) (max_concurrent); wait for them or raise max_concurrent in ctloop.yaml"
            )
        self._emit(trigger.qualified_name, "fired", occasion.reason, result.firing.id)
        return self._launch(result.firing)

    # -- one trigger ------------------------------------------------------------------
    def _evaluate_trigger(self, pipeline: PipelineSpec, trigger: TriggerSpec) -> list[TriggerEvent]:
        name = trigger.qualified_name
        if trigger.kind == "manual":
            return []
        now = self._clock()
        try:
            state = self.store.get_state(name)
            if state is not None and state.cooldown_until and now < state.cooldown_until:
                return [self._emit(name, "cooldown", f"until {state.cooldown_until.isoformat()}")]
            cursor = state.cursor if state is not None else {}
            check = self._check(trigger, cursor, now)
            if not check.occasions:
                self.store.save_state(
                    name, pipeline.name, trigger.kind, cursor=check.cursor,
                    expected_cursor=cursor, checked_at=now,
                )  # fmt: skip
                outcome = "baseline" if check.note.startswith("baseline") else "idle"
                return [self._emit(name, outcome, check.note)]
            return [self._fire(pipeline, trigger, check.occasions[0], cursor)]
        except Exception as exc:  # one broken trigger must not stop the others
            return [self._emit(name, "error", f"{type(exc).__name__}: {exc}")]

    def _check(self, trigger: TriggerSpec, cursor: dict[str, Any], now: datetime) -> sources.Check:
        if trigger.kind == "schedule":
            return sources.check_schedule(trigger, cursor, now)
        if trigger.kind == "new_files":
            return sources.check_new_files(trigger, cursor)
        if trigger.kind == "new_rows":
            return sources.check_new_rows(trigger, cursor)
        if trigger.kind == "new_spans":
            return sources.check_new_spans(trigger, cursor, self.workspace, self.settings)
        return sources.check_monitor(trigger, cursor, now, self._verdicts)

    def _fire(
        self,
        pipeline: PipelineSpec,
        trigger: TriggerSpec,
        occasion: sources.Occasion,
        cursor: dict[str, Any],
    ) -> TriggerEvent:
        name = trigger.qualified_name
        result = self._claim(pipeline, trigger, occasion, expect=True, cursor=cursor)
        if result.outcome == "busy" and trigger.kind in ("schedule", "monitor"):
            # a slot or verdict passed over while the last run is still going: record it
            reason = f"{occasion.reason}; skipped: {trigger.max_concurrent} run(s) still active"
            skipped = replace(occasion, reason=reason)
            self._claim(
                pipeline, trigger, skipped, expect=True, cursor=cursor, status=FiringStatus.SKIPPED
            )
            return self._emit(name, "skipped", reason)
        if result.firing is None:
            return self._emit(name, result.outcome, occasion.reason)
        self._launch(result.firing)
        return self._emit(name, "fired", occasion.reason, result.firing.id)

    def _claim(
        self,
        pipeline: PipelineSpec,
        trigger: TriggerSpec,
        occasion: sources.Occasion,
        *,
        expect: bool,
        cursor: dict[str, Any] | None = None,
        status: str = FiringStatus.CLAIMED,
    ) -> ClaimResult:
        details = {
            "reference": pipeline.reference,
            "parameters": {**pipeline.parameters, **trigger.parameters, **occasion.parameters},
            "run_trigger": occasion.run_trigger,
            "attempt": 1,
            "scheduler_pid": os.getpid(),
            "host": socket.gethostname(),
            **occasion.details,
        }
        claim = FiringClaim(
            trigger=trigger.qualified_name,
            pipeline=pipeline.name,
            kind=trigger.kind,
            fire_key=occasion.fire_key,
            reason=occasion.reason,
            cause_artifact_id=occasion.cause_artifact_id,
            details=details,
            status=status,
        )
        now = self._clock()
        extra: dict[str, Any] = {"expected_cursor": cursor} if expect else {}
        return self.store.claim(
            claim,
            new_cursor=occasion.cursor if expect else None,
            max_concurrent=trigger.max_concurrent if status == FiringStatus.CLAIMED else None,
            cooldown_until=now + trigger.cooldown if trigger.cooldown and expect else None,
            **extra,
        )

    # -- runs -------------------------------------------------------------------------
    def _launch(self, firing: FiringRecord) -> FiringRecord:
        log_dir = self.settings.home / "triggers"
        log_dir.mkdir(parents=True, exist_ok=True)
        cores = self._child_cores()
        try:
            with open(log_dir / f"firing-{firing.id}.log", "ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "ctloop.triggers._child", str(firing.id)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # a signal to the scheduler is not one to its runs
                    cwd=Path.cwd(),
                    env=_child_environment(cores),
                )
        except OSError as exc:
            self.store.finish_firing(
                firing.id, FiringStatus.FAILED, reason=f"{firing.reason}; {exc}"
            )
            raise TriggerError(
                f"the run of firing {firing.id} ({firing.trigger}) could not be started: {exc}; "
                f"check that {sys.executable} can run and {log_dir} is writable"
            ) from exc
        self._children[firing.id] = proc
        details = {**firing.details, "pid": proc.pid, "host": socket.gethostname(), "cores": cores}
        self.store.update_firing(
            firing.id, only_if=(FiringStatus.CLAIMED,), status=FiringStatus.RUNNING, details=details
        )
        return self.store.get_firing(firing.id)

    def _child_cores(self) -> int:
        """The scheduler's cores shared among its runs going on, this new one included."""
        from ctloop.train._threads import cpu_budget

        running = sum(1 for proc in self._children.values() if proc.poll() is None)
        return max(1, cpu_budget() // (running + 1))

    def settle(self) -> list[TriggerEvent]:
        """Reap finished runs; mark a firing whose process died ``lost`` and retry it once
        (``on_lost: retry``, resuming its run) or only report it (``on_lost: report``)."""
        from ctloop.pipeline._liveness import reconcile_stale_runs

        meta = self.workspace.metadata
        reconcile_stale_runs(meta)
        events: list[TriggerEvent] = []
        for firing in self.store.list_firings(statuses=FiringStatus.active()):
            proc = self._children.get(firing.id)
            running = proc.poll() is None if proc is not None else self._alive(firing, meta)
            if running:
                continue
            self._children.pop(firing.id, None)
            fresh = self.store.get_firing(firing.id)
            if fresh.status in FiringStatus.active():
                events.append(self._lost(fresh, meta))
        for firing_id, proc in list(self._children.items()):
            if proc.poll() is not None:
                del self._children[firing_id]
                done = self.store.get_firing(firing_id)
                events.append(self._emit(done.trigger, "finished", done.status, firing_id))
        return events

    def _alive(self, firing: FiringRecord, meta: MetadataStore) -> bool:
        from ctloop.pipeline._liveness import pid_alive

        details = firing.details
        pid = details.get("pid")
        if details.get("host") == socket.gethostname():
            if pid is None:  # claimed, not yet launched, by a scheduler on this host
                claimer = int(details.get("scheduler_pid") or 0)
                return claimer != os.getpid() and claimer > 0 and pid_alive(claimer)
            return pid_alive(int(pid))
        if firing.run_id:  # another host: its run's heartbeat says
            return meta.get_run(firing.run_id).status == RunStatus.RUNNING
        return self._clock() - firing.fired_at < LOST_AFTER

    def _lost(self, firing: FiringRecord, meta: MetadataStore) -> TriggerEvent:
        run = meta.get_run(firing.run_id) if firing.run_id else None
        if run is not None and run.status == RunStatus.SUCCEEDED:
            self.store.finish_firing(firing.id, FiringStatus.SUCCEEDED)
            return self._emit(firing.trigger, "finished", FiringStatus.SUCCEEDED, firing.id)
        where = f"pid {firing.details.get('pid', '?')} on {firing.details.get('host', '?')}"
        what = f"its run {run.id[:8]} failed" if run is not None else "before its run started"
        reason = f"{firing.reason}; lost: the process running it ({where}) died, {what}"
        if not self.store.finish_firing(firing.id, FiringStatus.LOST, reason=reason):
            return self._emit(firing.trigger, "finished", "settled elsewhere", firing.id)
        found = self._find(firing.trigger)
        attempt = int(firing.details.get("attempt", 1))
        if found is None or found[1].on_lost != "retry" or attempt >= 2:
            return self._emit(firing.trigger, "lost", reason, firing.id)
        return self._retry(firing, run.id if run is not None else None, found)

    def _retry(
        self,
        firing: FiringRecord,
        run_id: str | None,
        found: tuple[PipelineSpec, TriggerSpec],
    ) -> TriggerEvent:
        details = {k: v for k, v in firing.details.items() if k != "pid"}
        details.update(attempt=2, retry_of=firing.id, resume_run_id=run_id)
        details.update(scheduler_pid=os.getpid(), host=socket.gethostname())
        claim = FiringClaim(
            trigger=firing.trigger,
            pipeline=firing.pipeline,
            kind=firing.kind,
            fire_key=f"{firing.fire_key}#retry",
            reason=f"retry of lost firing {firing.id}: {firing.reason.split('; lost:')[0]}",
            cause_artifact_id=firing.cause_artifact_id,
            details=details,
        )
        result = self.store.claim(claim, max_concurrent=found[1].max_concurrent)
        if result.firing is None:
            return self._emit(firing.trigger, "lost", f"retry not started: {result.outcome}")
        self._launch(result.firing)
        return self._emit(firing.trigger, "retried", claim.reason, result.firing.id)

    def _find(self, qualified_name: str) -> tuple[PipelineSpec, TriggerSpec] | None:
        for pipeline in self.specs:
            for trigger in pipeline.triggers:
                if trigger.qualified_name == qualified_name:
                    return pipeline, trigger
        return None

    def _emit(
        self, trigger: str, outcome: str, detail: str = "", firing_id: int | None = None
    ) -> TriggerEvent:
        event = TriggerEvent(trigger, outcome, detail, firing_id)
        if self._on_event is not None:
            self._on_event(event)
        return event


def _child_environment(cores: int) -> dict[str, str]:
    """The environment of a run given ``cores``: its fits and native thread pools keep to
    them (:func:`ctloop.train._threads.cpu_budget` reads ``CTLOOP_CORES``)."""
    from ctloop.train._threads import CORES_VARIABLE
    from ctloop.workers import thread_variables

    return {**os.environ, **thread_variables(cores), CORES_VARIABLE: str(cores)}
