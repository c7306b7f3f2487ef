"""Heartbeats and stale-run detection: a run whose process died is failed, never
``running`` forever.

The runner refreshes ``heartbeat_at`` every :data:`HEARTBEAT_S` seconds. A ``running``
run is stale when its process is gone (same host, pid not alive) or its heartbeat is
older than :data:`STALE_AFTER_S` (any host).
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import datetime, timedelta

from ctloop.store.metadata import MetadataStore
from ctloop.store.records import RunRecord, utcnow
from ctloop.store.statuses import ExecutionStatus, RunStatus

HEARTBEAT_S = 5.0
STALE_AFTER_S = 60.0


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (zombies count as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def is_stale(
    run: RunRecord, *, now: datetime | None = None, stale_after_s: float = STALE_AFTER_S
) -> bool:
    """Whether a ``running`` run's process has stopped without finishing it."""
    if run.status != RunStatus.RUNNING:
        return False
    if run.host == socket.gethostname() and not pid_alive(run.pid):
        return True
    beat = run.heartbeat_at or run.started_at
    return (now or utcnow()) - beat > timedelta(seconds=stale_after_s)


def reconcile_stale_runs(
    store: MetadataStore, *, stale_after_s: float = STALE_AFTER_S
) -> list[str]:
    """Mark stale runs and their unfinished executions failed; return their ids."""
    failed: list[str] = []
    now = utcnow()
    for run in store.list_runs(status=RunStatus.RUNNING):
        if not is_stale(run, now=now, stale_after_s=stale_after_s):
            continue
        reason = (
            f"the process running it (pid {run.pid} on {run.host}) stopped without "
            f"finishing; continue it with `ctloop resume {run.id[:8]}`"
        )
        for execution in store.list_executions(run.id):
            if execution.status in ExecutionStatus.unfinished():
                store.update_execution(
                    execution.id,
                    status=ExecutionStatus.FAILED,
                    ended_at=now,
                    error="process died: " + reason,
                )
        store.update_run(run.id, status=RunStatus.FAILED, ended_at=now, error=reason)
        failed.append(run.id)
    return failed


class Heartbeat:
    """A daemon thread refreshing a run's heartbeat until stopped."""

    def __init__(self, store: MetadataStore, run_id: str, interval_s: float = HEARTBEAT_S) -> None:
        self._store = store
        self._run_id = run_id
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="ctloop-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval + 5)

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._store.update_run(self._run_id, heartbeat_at=utcnow())
            except Exception:  # a missed beat is retried; staleness needs many misses
                continue
