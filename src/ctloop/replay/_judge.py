"""One policy through a replay: the monitor's verdict on each newly labelled period, the
policy's conditions, the gate, the refit and the promotion, and the incidents raised."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ctloop.replay._clock import Period
from ctloop.replay._lines import Line, Retrain
from ctloop.replay._policy import Policy, period_offset

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.monitor._report import MonitorReport
    from ctloop.replay._engine import _Engine, _Trained

__all__ = ["PolicyRun", "Watch"]


class PolicyRun:
    """The champion of one policy as the replay's clock moves (see the module)."""

    def __init__(self, engine: _Engine, policy: Policy) -> None:
        self.engine, self.policy = engine, policy
        self.settings = engine.settings_for(policy)
        self.line = Line(policy.name, "policy", window=policy.window)
        self.line.description = policy.describe()
        self.watch = Watch(policy.name)
        first = engine.clock.periods[0]
        self.champion = engine.static
        self.promoted_at = self.attempted_at = first.start
        self.baseline, self.importance = self._measure(engine.static, None, first)
        self.version = 1

    def before(self, period: Period) -> None:
        """Judge the newest labelled period and retrain when the policy says so."""
        report = self._judge(period)
        reasons = self._reasons(period, report)
        if not reasons:
            return
        if self.policy.min_gap and period.start < self.attempted_at + period_offset(
            self.policy.min_gap, "min_gap"
        ):
            return  # too soon after the last retrain: the next period asks again
        self.attempted_at = period.start
        self._retrain(period, tuple(reasons))

    def _judge(self, period: Period) -> MonitorReport | None:
        from ctloop.monitor._analysis import analyse_window
        from ctloop.replay._engine import features_of

        engine, clock = self.engine, self.engine.clock
        low, high, count = engine.judged(
            period, self.settings.min_rows, after=_trained_until(self.champion)
        )
        frame = self._frame(self.champion, low, high, labelled=True)
        if frame is None:
            return None
        key = (
            self.champion.key,
            low.isoformat(),
            high.isoformat(),
            self.baseline,
            repr(self.settings),
        )
        cached = engine.reports.get(key)
        if cached is not None:  # another policy's champion judged on the same rows
            report = replace(cached, model=self.policy.name, version=self.version)
            self.watch.record(report, period)
            return report
        previous = self._frame(self.champion, low - clock.every * count, low, labelled=False)
        report = analyse_window(
            frame,
            features=features_of(self.champion.model),
            reference=engine.statistics(self.champion),
            previous=previous,
            model=self.champion.model,
            task=engine.history.task,
            baseline={} if self.baseline is None else {engine.history.metric: self.baseline},
            reference_attribution=self.importance,
            settings=self.settings,
            identity={
                "model": self.policy.name,
                "version": self.version,
                "window": {"start": low.isoformat(), "end": high.isoformat()},
            },
        )
        engine.reports[key] = report
        self.watch.record(report, period)
        return report

    def _reasons(self, period: Period, report: MonitorReport | None) -> list[str]:
        policy, verdict = self.policy, report.verdict if report is not None else "no-data"
        reasons: list[str] = []
        if "degraded" in policy.on and verdict == "degraded":
            reasons.append("degraded: " + _first_reason(report, "baseline"))
        if "drift" in policy.on and verdict == "drift":
            reasons.append("drift: " + _first_reason(report, "drifted"))
        age = period_offset(policy.max_age, "max_age") if policy.max_age else None
        if "max_age" in policy.on and age is not None and period.start >= self.promoted_at + age:
            reasons.append(f"max_age: the model has served since {self.promoted_at.date()}")
        every = period_offset(policy.every, "every") if policy.every else None
        if (
            "schedule" in policy.on
            and every is not None
            and period.start >= self.attempted_at + every
        ):
            reasons.append(f"schedule: every {policy.every}")
        return reasons

    def _retrain(self, period: Period, reasons: tuple[str, ...]) -> None:
        engine, policy = self.engine, self.policy
        low, high, _ = engine.judged(period, self.settings.min_rows)
        candidate = engine.model(policy.window, low)
        fits = 1
        blessing = self._gate(candidate, low, high)
        if blessing is not None and not blessing.passed:
            why = "; ".join(c.reason for c in blessing.comparisons if not c.passed)
            self.line.retrains.append(Retrain(period.label, reasons, False, f"rejected: {why}", 1))
            return
        promoted = candidate
        if policy.refit_after_gate:
            promoted, fits = engine.model(policy.window, high), 2
        self.baseline, self.importance = self._measure(promoted, candidate, period)
        self.champion, self.promoted_at, self.version = promoted, period.start, self.version + 1
        gate = "passed" if blessing is not None else "no gate"
        self.line.retrains.append(Retrain(period.label, reasons, True, gate, fits))

    def _gate(self, candidate: _Trained, low: pd.Timestamp, high: pd.Timestamp) -> Any:
        from ctloop.evaluate._gate import gate
        from ctloop.evaluate._report import Evaluation

        if self.policy.allowed_drop is None:
            return None
        history, metric = self.engine.history, self.engine.history.metric
        rows = len(history.rows(low, high))

        def evaluation(trained: _Trained) -> Evaluation:
            value = self.engine.score(trained, low, high)
            return Evaluation(history.task, history.label, rows, {metric: value})

        rule = f"{metric} may drop by {self.policy.allowed_drop:g}"
        return gate(evaluation(candidate), evaluation(self.champion), change=[rule])

    def _measure(
        self, promoted: _Trained, candidate: _Trained | None, period: Period
    ) -> tuple[float | None, dict[str, float] | None]:
        """The new model's baseline (the candidate's score on the labelled period it did
        not see: out of time) and its importance shares there."""
        from ctloop.monitor._checks import attribution_shares
        from ctloop.replay._engine import features_of

        engine = self.engine
        low, high, _ = engine.judged(period, self.settings.min_rows)
        if candidate is None:  # the first model: trained on everything before the period
            candidate = engine.model("expanding", low)
        baseline = engine.score(candidate, low, high)
        rows = engine.history.rows(low, high)
        if len(rows) < self.settings.min_rows:
            return baseline, None
        key = (promoted.key, low.isoformat(), repr(self.settings))
        if key not in engine.importance:
            engine.importance[key] = attribution_shares(
                promoted.model,
                rows[features_of(promoted.model)],
                rows[engine.history.label].to_numpy(),
                task=engine.history.task,
                settings=self.settings,
            )
        return baseline, engine.importance[key]

    def _frame(
        self, trained: _Trained, low: pd.Timestamp, high: pd.Timestamp, *, labelled: bool
    ) -> pd.DataFrame | None:
        from ctloop.replay._engine import features_of

        history = self.engine.history
        if low < self.engine.clock.first_time:
            return None
        rows = history.rows(low, high)
        if len(rows) == 0:
            return None
        frame = rows[features_of(trained.model)].assign(
            prediction=self.engine.predict(trained, low, high)
        )
        if labelled:
            frame = frame.assign(label=rows[history.label].to_numpy())
        return frame.reset_index(drop=True)


class Watch:
    """The alerts of one policy's reports, grouped into incidents as the monitoring job
    groups them (``alerts: incidents: true``), in a workspace held in memory."""

    def __init__(self, subject: str) -> None:
        from ctloop.config import Settings
        from ctloop.store.workspace import Workspace

        self.subject = subject
        self.workspace = Workspace.in_memory()
        self.settings = Settings(
            home=self.workspace_home(), store_url="memory://", artifact_url="memory://",
            alerts={"sinks": []},
        )  # fmt: skip
        self.verdicts: dict[str, int] = {}
        self.delivered = 0
        self.reasons: list[str] = []

    def workspace_home(self) -> Any:
        from pathlib import Path

        return Path.cwd() / ".ctloop"

    def record(self, report: MonitorReport, period: Period) -> None:
        from ctloop.monitor._alerts import raise_alerts

        self.verdicts[report.verdict] = self.verdicts.get(report.verdict, 0) + 1
        if report.verdict not in ("ok", "no-data"):
            self.reasons.extend(f"{period.label}: {r}" for r in report.reasons[:3])
        if report.verdict != "no-data":
            self.delivered += len(
                raise_alerts(self.workspace, report, None, settings=self.settings)
            )

    def summary(self) -> dict[str, Any]:
        from ctloop.monitor._incidents import list_incidents

        incidents = list_incidents(self.workspace, self.subject)
        self.workspace.close()
        return {
            "verdicts": dict(sorted(self.verdicts.items())),
            "incidents": len(incidents),
            "incident_causes": sorted({i.cause for i in incidents}),
            "alerts_delivered": self.delivered,
            "reasons": self.reasons[:20],
        }


def _first_reason(report: MonitorReport | None, word: str) -> str:
    """The report's first reason naming ``word`` that counted towards its verdict (a drift
    the model does not lean on is reported too, but retrains nothing).

    >>> from types import SimpleNamespace as Report
    >>> _first_reason(Report(verdict="drift", reasons=[
    ...     "'temp' drifted against the training data but hold 21.4% of the model's "
    ...     "importance (< 30%); not counted as drift",
    ...     "feature 'temp' drifted against the previous window: psi 4.58 (threshold 0.5)",
    ... ]), "drifted")
    "feature 'temp' drifted against the previous window: psi 4.58 (threshold 0.5)"
    """
    if report is None:
        return ""
    counted = [r for r in report.reasons if "not counted" not in r]
    for reason in counted:
        if word in reason:
            return reason
    return counted[0] if counted else report.verdict


def _trained_until(trained: _Trained) -> pd.Timestamp:
    """The end of the rows ``trained`` learnt from (its cache key's cut)."""
    import pandas as pd

    return pd.Timestamp(trained.key[1])
