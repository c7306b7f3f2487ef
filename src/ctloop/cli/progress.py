"""Live Rich progress of a pipeline run, one line per step."""

from __future__ import annotations

import time

from rich.live import Live
from rich.table import Table

from ctloop.cli.output import console, seconds, short, styled
from ctloop.store.records import RunRecord
from ctloop.store.statuses import ExecutionStatus

_MARK: dict[str, str] = {
    ExecutionStatus.SUCCEEDED: "✓",
    ExecutionStatus.CACHED: "↺",
    ExecutionStatus.FAILED: "✗",
    ExecutionStatus.SKIPPED: "-",
}


class RichRunProgress:
    """A :class:`~ctloop.pipeline._runner.RunListener` that draws a live step table."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, float | None]] = {}
        self.started: dict[str, float] = {}
        self.title = ""
        self.live: Live | None = None

    def on_run_start(self, *, run: RunRecord, steps: list[str]) -> None:
        self.title = f"run {short(run.id)} of [bold]{run.pipeline}[/] ({run.executor})"
        self.rows = {s: (ExecutionStatus.PENDING, None) for s in steps}
        self.live = Live(self._table(), console=console, refresh_per_second=8, transient=False)
        self.live.start()

    def on_step_start(self, *, step: str) -> None:
        self.started[step] = time.monotonic()
        self.rows[step] = (ExecutionStatus.RUNNING, None)
        self._refresh()

    def on_step_end(self, *, step: str, status: str, duration_s: float, error: str | None) -> None:
        began = self.started.get(step)
        elapsed = (
            time.monotonic() - began
            if began is not None and status != ExecutionStatus.SKIPPED
            else None
        )
        self.rows[step] = (status, elapsed)
        self._refresh()

    def on_run_end(self, *, run: RunRecord) -> None:
        self._refresh()
        if self.live:
            self.live.stop()
            if not console.is_terminal:
                console.print()
        cached = sum(1 for s, _ in self.rows.values() if s == ExecutionStatus.CACHED)
        total = len(self.rows)
        note = ""
        if cached == total:
            note = " — all steps reused from cache, nothing recomputed"
        elif cached:
            note = f" — {cached} of {total} steps reused from cache"
        console.print(
            f"run {short(run.id)} {styled(run.status)} in {seconds(run.duration_s)}{note}"
        )

    def _refresh(self) -> None:
        if self.live:
            self.live.update(self._table())

    def _table(self) -> Table:
        table = Table(title=self.title, title_justify="left", show_edge=False, box=None)
        table.add_column("", width=1)
        table.add_column("step")
        table.add_column("status")
        table.add_column("time", justify="right")
        now = time.monotonic()
        for step, (status, elapsed) in self.rows.items():
            if status == ExecutionStatus.RUNNING:
                elapsed = now - self.started.get(step, now)
            mark = _MARK.get(status, "…" if status == ExecutionStatus.RUNNING else " ")
            table.add_row(mark, step, styled(status), seconds(elapsed))
        return table
