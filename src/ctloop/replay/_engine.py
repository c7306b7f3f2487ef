"""The replay: a user's time-stamped history served period by period on a simulated clock.

At the start of each period every policy judges its champion on the newest labelled
period as the monitoring job does (:func:`ctloop.monitor._analysis.analyse_window`: skew
against the training data, importance-weighted drift against the period before,
performance against an out-of-time baseline, attribution shift) and records the alerts as
incidents (:func:`ctloop.monitor._alerts.raise_alerts`); its conditions say whether to
retrain. A retrain trains a candidate on the policy's window without the newest labelled
period, gates it against the champion on that period (:func:`ctloop.evaluate._gate.gate`),
and, once it passed, refits on everything labelled (``refit_after_gate``) and promotes it;
the candidate's score on the period it did not see is the new model's baseline. Then the
period is served: every line's metric on the period's rows, predicted through
``Model.predict``.

Models are trained once per training window and reused by every line that asks for it:
the every-period schedule and a policy's refit at the same cut are the same model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ctloop.errors import ConfigError
from ctloop.replay._clock import Clock, Period, event_times
from ctloop.replay._lines import Line, ReplayResult, Retrain
from ctloop.replay._policy import Policy, period_offset, window_spec
from ctloop.replay._trainers import Trainer, TrainingWindow

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ctloop.artifacts.model import Model
    from ctloop.data import DatasetStatistics
    from ctloop.monitor._report import MonitorReport
    from ctloop.monitor._settings import MonitorSettings

__all__ = ["DEFAULT_SCHEDULES", "run_replay"]

#: the fixed schedules a replay compares with, in periods between retrains
DEFAULT_SCHEDULES = (1, 2, 3, 4, 6, 8)
_PHASES = 4  # phases of an equal-count schedule
#: a sliding window reaches back past its size until it holds this many labelled rows
#: (sliding:12w over weekly rows is 12 rows, too few to learn a season from)
SLIDING_MIN_ROWS = 200


@dataclass
class _Trained:
    """A model and what the monitor needs of it."""

    key: tuple[str, str]
    model: Model
    statistics: DatasetStatistics | None = None


def run_replay(
    data: pd.DataFrame,
    trainer: Trainer,
    *,
    time_column: str,
    label: str,
    every: str = "1w",
    label_delay: str = "1w",
    start: str | None = None,
    end: str | None = None,
    policies: Sequence[Policy] = (),
    schedules: Sequence[int] = DEFAULT_SCHEDULES,
    metric: str | None = None,
    monitoring: Mapping[str, Any] | None = None,
    on_line: Callable[[Line], None] | None = None,
    cores: int | None = None,
    workers: int = 1,
) -> ReplayResult:
    """Replay ``data`` (see the module docstring) and return every line's metrics.

    ``monitoring`` is the ``monitoring:`` section the policies' own overrides apply to;
    ``on_line`` is called with each line as it is done (static, each policy, each schedule);
    native thread pools (OpenMP, BLAS) are held to ``cores`` (default: the cores this
    process may use) while models train and predict; with ``workers`` above 1, the models
    of every period's cut on each policy's window are trained first by that many forked
    processes (POSIX only), so a long replay's fits run side by side.
    A missing column or a bad period raises :class:`~ctloop.errors.ConfigError` naming it.
    """
    from ctloop.train._threads import thread_limits

    if not policies:
        raise ConfigError("a replay needs at least one retraining policy")
    with thread_limits(cores):
        return _replay(
            data, trainer, time_column=time_column, label=label, every=every,
            label_delay=label_delay, start=start, end=end, policies=policies,
            schedules=schedules, metric=metric, monitoring=monitoring, on_line=on_line,
            workers=workers,
        )  # fmt: skip


def _replay(
    data: pd.DataFrame,
    trainer: Trainer,
    *,
    time_column: str,
    label: str,
    every: str,
    label_delay: str,
    start: str | None,
    end: str | None,
    policies: Sequence[Policy],
    schedules: Sequence[int],
    metric: str | None,
    monitoring: Mapping[str, Any] | None,
    on_line: Callable[[Line], None] | None,
    workers: int,
) -> ReplayResult:
    began = time.perf_counter()
    history = _History(data, time_column=time_column, label=label, metric=metric)
    clock = Clock.of(history.times, every=every, label_delay=label_delay, start=start, end=end)
    engine = _Engine(history, clock, trainer, dict(monitoring or {}))
    if workers > 1:
        engine.prefit(list(dict.fromkeys(p.window for p in policies)), workers)
    report = on_line or (lambda line: None)
    static = engine.static_line()
    report(static)
    lines = []
    for policy in policies:
        lines.append(engine.policy_line(policy))
        report(lines[-1])
    fixed: dict[str, list[Line]] = {}
    for window in dict.fromkeys(p.window for p in policies):
        fixed[window] = []
        for k in sorted(set(schedules) | {1}):
            fixed[window].append(engine.schedule_line(window, k))
            report(fixed[window][-1])
    equal = {
        p.name: engine.equal_lines(p.window, len(line.retrains))
        for p, line in zip(policies, lines, strict=True)
    }
    return ReplayResult(
        periods=[p.label for p in clock.periods],
        metric=history.metric,
        higher_is_better=history.higher_is_better,
        static=static,
        policies=lines,
        schedules=fixed,
        equal=equal,
        settings={
            "time_column": time_column,
            "label": label,
            "every": every,
            "label_delay": label_delay,
            "start": clock.periods[0].label,
            "end": str(clock.periods[-1].end.date()),
            "task": history.task,
            "schedules": sorted(set(schedules) | {1}),
        },
        seconds=round(time.perf_counter() - began, 1),
    )


class _History:
    """The data sorted by time, sliced by time ranges."""

    def __init__(self, data: pd.DataFrame, *, time_column: str, label: str, metric: str | None):
        from ctloop.monitor._checks import DEFAULT_METRIC

        for what, column in (("--time-column", time_column), ("--label", label)):
            if column not in data.columns:
                raise ConfigError(
                    f"{what} {column!r} is not a column of the data; it has "
                    f"{', '.join(map(str, data.columns[:20]))}"
                )
        if data[label].isna().any():
            data = data[data[label].notna()]
        times = event_times(data[time_column], time_column)
        order = times.argsort(kind="stable").to_numpy()
        self.frame = data.iloc[order].reset_index(drop=True)
        self.times = times.iloc[order].reset_index(drop=True)
        self._sorted = self.times.to_numpy()
        self.time_column, self.label = time_column, label
        self.task = _task_of(self.frame[label])
        self.metric = metric or DEFAULT_METRIC[self.task]
        self.higher_is_better = _higher_is_better(self.metric)

    def count(self, start: pd.Timestamp, end: pd.Timestamp) -> int:
        """How many rows ``[start, end)`` holds."""
        import numpy as np

        low = np.searchsorted(self._sorted, start.to_datetime64())
        return int(np.searchsorted(self._sorted, end.to_datetime64()) - low)

    def reach_back(self, end: pd.Timestamp, rows: int) -> pd.Timestamp:
        """The latest start from which ``[start, end)`` holds ``rows`` rows (the data's
        first time when it holds fewer)."""
        import numpy as np
        import pandas as pd

        high = int(np.searchsorted(self._sorted, end.to_datetime64()))
        return pd.Timestamp(self._sorted[max(high - rows, 0)])

    def reach_forward(self, rows: int) -> pd.Timestamp:
        """The earliest end before which the data holds ``rows`` rows (its last time when
        it holds fewer)."""
        import pandas as pd

        return pd.Timestamp(self._sorted[min(rows, len(self._sorted) - 1)])

    def rows(self, start: pd.Timestamp | None, end: pd.Timestamp) -> pd.DataFrame:
        """The rows of ``[start, end)`` (``start`` None: from the beginning)."""
        import numpy as np

        low = 0 if start is None else int(np.searchsorted(self._sorted, start.to_datetime64()))
        high = int(np.searchsorted(self._sorted, end.to_datetime64()))
        return self.frame.iloc[low:high]

    def score(self, labels: Any, predictions: Any) -> float | None:
        """The metric of ``predictions`` (None when undefined: one class only)."""
        from ctloop.evaluate._metrics import classification_metrics, regression_metrics

        if len(labels) == 0:
            return None
        if self.task == "classification":
            import numpy as np

            truth = np.asarray(labels).astype(float).astype(int)
            found = classification_metrics(truth, predictions, metrics=[self.metric])
        else:
            found = regression_metrics(labels, predictions, metrics=[self.metric])
        value = found.values.get(self.metric)
        return None if value is None else float(value)


class _Engine:
    """Trains each window once, predicts each model on each range once."""

    def __init__(
        self, history: _History, clock: Clock, trainer: Trainer, monitoring: dict[str, Any]
    ) -> None:
        self.history, self.clock, self.trainer = history, clock, trainer
        self.monitoring = monitoring
        self.models: dict[tuple[str, str], _Trained] = {}
        self.predictions: dict[tuple[tuple[str, str], str, str], np.ndarray] = {}
        self.scores: dict[tuple[tuple[str, str], str, str], float | None] = {}
        # the monitor's analysis and importance shares, shared by policies whose champion
        # and settings agree (they judge the same model on the same rows)
        self.reports: dict[tuple[Any, ...], MonitorReport] = {}
        self.importance: dict[tuple[Any, ...], dict[str, float]] = {}
        first = clock.periods[0]
        self.start_cut = clock.labelled_until(first)
        self.static = self.model("expanding", self.start_cut)

    # -- models and their predictions ------------------------------------------------

    def model(self, window: str, end: pd.Timestamp) -> _Trained:
        """The model of ``window`` trained on the labelled rows before ``end``."""
        key = (window, end.isoformat())
        if key not in self.models:
            spec = self.training_window(window, end)
            rows = self.history.rows(spec.start, end)
            if len(rows) == 0:
                raise ConfigError(
                    f"the training window {window} before {end.date()} holds no rows; "
                    "start the replay later or widen the window"
                )
            self.models[key] = _Trained(key, self.trainer(rows, spec))
        return self.models[key]

    def prefit(self, windows: Sequence[str], workers: int) -> None:
        """Train the model of every period's labelled cut (and the cut before the first)
        on each of ``windows`` in ``workers`` forked processes."""
        import multiprocessing

        global _FORKED
        cuts = [self.clock.labelled_until(p) for p in self.clock.periods]
        cuts.insert(0, cuts[0] - self.clock.every)
        wanted = [(w, c) for w in windows for c in cuts if (w, c.isoformat()) not in self.models]
        _FORKED = self
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for (window, cut), model in zip(
                    wanted, pool.starmap(_fit_forked, wanted), strict=True
                ):
                    self.models[(window, cut.isoformat())] = _Trained(
                        (window, cut.isoformat()), model
                    )
        finally:
            _FORKED = None

    def training_window(self, window: str, end: pd.Timestamp) -> TrainingWindow:
        kind, size = window_spec(window, f"training window {window!r}")
        if kind == "sliding":
            start = max(end - size, self.clock.first_time)
            return TrainingWindow(min(start, self.history.reach_back(end, SLIDING_MIN_ROWS)), end)
        if kind == "recency":
            days = float((end + size - end).total_seconds() / 86400.0)
            return TrainingWindow(None, end, half_life_days=days)
        return TrainingWindow(None, end)

    def predict(self, trained: _Trained, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
        key = (trained.key, start.isoformat(), end.isoformat())
        if key not in self.predictions:
            import numpy as np

            rows = self.history.rows(start, end)
            found: Any = trained.model.predict(rows, allow_extra=True) if len(rows) else []
            self.predictions[key] = np.asarray(found, dtype=float)
        return self.predictions[key]

    def score(self, trained: _Trained, start: pd.Timestamp, end: pd.Timestamp) -> float | None:
        key = (trained.key, start.isoformat(), end.isoformat())
        if key not in self.scores:
            rows = self.history.rows(start, end)
            predictions = self.predict(trained, start, end)
            self.scores[key] = self.history.score(rows[self.history.label], predictions)
        return self.scores[key]

    def served(self, trained: _Trained, period: Period) -> float | None:
        return self.score(trained, period.start, period.end)

    def judged(
        self, period: Period, min_rows: int, *, after: pd.Timestamp | None = None
    ) -> tuple[pd.Timestamp, pd.Timestamp, int]:
        """The labelled rows a decision at ``period`` reads: the newest labelled period,
        widened back by whole periods while it holds fewer than ``min_rows`` rows (daily
        rows judged a week at a time, weekly rows), never to before ``after`` (the
        champion's training end: rows it learnt from tell nothing of how it serves) nor
        into the first :data:`SLIDING_MIN_ROWS` rows (a candidate trained before it
        needs rows to learn from); ``(start, end, periods)``."""
        low, high = self.clock.newest_labelled(period)
        count = 1
        floor = self.history.reach_forward(SLIDING_MIN_ROWS)  # something left to train on
        floor = max(floor, after) if after is not None else floor
        while self.history.count(low, high) < min_rows and low - self.clock.every >= floor:
            low, count = low - self.clock.every, count + 1
        return low, high, count

    # -- lines -----------------------------------------------------------------------

    def static_line(self) -> Line:
        line = Line("static", "static", window="expanding")
        line.description = f"trained once on the rows labelled by {self.clock.periods[0].label}"
        line.values = [self.served(self.static, p) for p in self.clock.periods]
        return line

    def schedule_line(self, window: str, k: int) -> Line:
        positions = [i for i in range(len(self.clock.periods)) if i % k == 0]
        name = "every period" if k == 1 else f"every {k} periods"
        return self._fixed(window, positions, name)

    def equal_lines(self, window: str, count: int) -> list[Line]:
        """Schedules with ``count`` retrains spread evenly, one line per phase."""
        total = len(self.clock.periods)
        if count == 0 or count > total:
            return []
        lines = []
        for phase in range(_PHASES):
            positions = sorted({int((i + phase / _PHASES) * total / count) for i in range(count)})
            name = f"even x{count} phase {phase + 1}/{_PHASES}"
            lines.append(self._fixed(window, positions, name))
        return lines

    def _fixed(self, window: str, positions: Sequence[int], name: str) -> Line:
        line = Line(name, "schedule", window=window, description=f"{name} on {window}, no gate")
        current = self.static
        chosen = set(positions)
        for period in self.clock.periods:
            if period.index in chosen:
                current = self.model(window, self.clock.labelled_until(period))
                line.retrains.append(Retrain(period.label, ("scheduled",), True))
            line.values.append(self.served(current, period))
        return line

    def policy_line(self, policy: Policy) -> Line:
        from ctloop.replay._judge import PolicyRun

        run = PolicyRun(self, policy)
        for period in self.clock.periods:
            run.before(period)
            run.line.values.append(self.served(run.champion, period))
        run.line.monitor = run.watch.summary()
        return run.line

    def settings_for(self, policy: Policy) -> MonitorSettings:
        from ctloop.monitor._settings import MonitorSettings

        return MonitorSettings.from_mapping({**self.monitoring, **policy.monitoring})

    def statistics(self, trained: _Trained) -> DatasetStatistics:
        if trained.statistics is None:
            from ctloop.data import compute_statistics

            spec = self.training_window(*_split_key(trained.key))
            rows = self.history.rows(spec.start, spec.end)
            trained.statistics = compute_statistics(rows[features_of(trained.model)])
        return trained.statistics


_FORKED: _Engine | None = None  # the engine a forked training process inherits


def _fit_forked(window: str, end: pd.Timestamp) -> Model:
    assert _FORKED is not None
    return _FORKED.model(window, end).model


def features_of(model: Model) -> list[str]:
    """The model's input columns (its signature's)."""
    return list(model.signature.input_names)


def offset_after(stamp: pd.Timestamp, text: str, what: str) -> pd.Timestamp:
    """``stamp`` moved on by the period ``text``."""
    return stamp + period_offset(text, what)


def _split_key(key: tuple[str, str]) -> tuple[str, pd.Timestamp]:
    import pandas as pd

    return key[0], pd.Timestamp(key[1])


def _task_of(labels: pd.Series) -> str:
    import pandas as pd

    values = labels.dropna().unique()
    if pd.api.types.is_bool_dtype(labels) or (
        len(values) <= 2 and set(pd.Series(values).astype(float)) <= {0.0, 1.0}
    ):
        return "classification"
    if not pd.api.types.is_numeric_dtype(labels):
        raise ConfigError(
            f"--label {labels.name!r} holds {labels.dtype} values; a replay scores a binary "
            "label (0/1 or booleans) or a numeric target"
        )
    return "regression"


def _higher_is_better(metric: str) -> bool:
    from ctloop.evaluate._metrics import is_higher_better

    try:
        return bool(is_higher_better(metric))
    except Exception as exc:  # an unknown metric name: say which
        raise ConfigError(f"--metric {metric!r} is not a metric ctloop knows ({exc})") from exc
