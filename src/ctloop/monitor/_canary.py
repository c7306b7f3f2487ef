"""Judging a canary on live, labelled traffic: promote it or roll it back.

A canary (``ctloop deploy NAME --canary VERSION --traffic P``, or the ``release`` step
with ``strategy="canary"``) answers a share of a deployment's requests. Once labels for
enough of them have come back (feedback joined by request id), :func:`judge_canary`
compares the canary's metric with the primary version's on the requests each answered
since the canary started — same period, same traffic, split by the router — and decides:

- ``rollback``: it is worse than the primary by more than ``allowed_drop`` *with
  confidence* — the one-sided bound at ``confidence`` on how much worse it is lies above
  ``allowed_drop`` — or it has not gathered ``min_rows`` labelled requests within
  ``max_wait``;
- ``promote``: once both sides have ``min_rows``, it is not shown worse;
- ``wait``: not enough labelled requests yet on one side.

The bound accounts for the sampling noise of both sides (see
:mod:`ctloop.monitor._comparison`): DeLong's variance of each side's AUC, or a seeded
bootstrap of the difference for RMSE and the other metrics. Where the prediction log holds
both versions' predictions for the same requests (the canary also shadowing the primary's
traffic) and at least ``min_rows`` of them are labelled, the comparison is paired on those
requests, which is tighter. The same logs always give the same decision.

:func:`settle_canary` carries the decision out (``promote_canary`` moves ``champion``;
``rollback_canary`` records an automatic rollback and raises an alert), so a decision is
a deployment record with its numbers in the reason. Both take the workspace whose
deployments, logs and registry they read and write; the scheduler settles every active
canary on each evaluation. The server's own guard (error rate and p99 latency over a
window, see :mod:`ctloop.serve`) acts within seconds; this one judges
quality, which needs labels. Settings, under ``monitoring:`` in ``ctloop.yaml``::

    monitoring:
      canary:
        min_rows: 200        # labelled requests on each side before judging
        allowed_drop: 0.0    # roll back when the canary is worse by more than this ...
        confidence: 0.95     # ... at this confidence (one-sided; null: on the point values)
        bootstrap_samples: 1000   # resamples for metrics other than AUC
        max_wait: 7d         # no verdict by then: roll back (null: wait for ever)
        metric: null         # null: the monitoring metric (auc or rmse by task)

>>> CanarySettings.from_mapping({"min_rows": 50, "max_wait": "2d"}).max_wait_s
172800.0
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ctloop.errors import MonitorError

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.config import Settings
    from ctloop.monitor._comparison import Comparison
    from ctloop.store.workspace import Workspace

__all__ = [
    "CanaryJudgement",
    "CanarySettings",
    "active_canaries",
    "judge_canary",
    "settle_canary",
]

DECISIONS = ("wait", "promote", "rollback")


@dataclass(frozen=True)
class CanarySettings:
    """How a canary is judged (see the module docstring for the keys).

    >>> CanarySettings().min_rows
    200
    """

    min_rows: int = 200
    allowed_drop: float = 0.0
    max_wait_s: float | None = 7 * 86400.0
    metric: str | None = None
    confidence: float | None = 0.95
    bootstrap_samples: int = 1000

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> CanarySettings:
        """Read ``monitoring: canary:``; unknown keys and bad values are refused."""
        found = dict(values or {})
        known = {f.name for f in fields(cls)} - {"max_wait_s"} | {"max_wait"}
        unknown = set(found) - known
        if unknown:
            raise MonitorError(
                f"ctloop.yaml 'monitoring: canary:' has unknown key(s) "
                f"{', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
            )
        if "max_wait" in found:
            found["max_wait_s"] = _seconds(found.pop("max_wait"))
        settings = cls(**found)
        numbers = (settings.min_rows, settings.allowed_drop, settings.max_wait_s or 0)
        if not all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers):
            raise MonitorError(
                f"ctloop.yaml 'monitoring: canary:' needs numbers for min_rows, allowed_drop "
                f"and max_wait (got {numbers})"
            )
        if settings.min_rows < 1 or settings.allowed_drop < 0:
            raise MonitorError(
                f"ctloop.yaml 'monitoring: canary:' needs min_rows >= 1 and allowed_drop >= 0 "
                f"(got min_rows={settings.min_rows}, allowed_drop={settings.allowed_drop})"
            )
        _check_confidence(settings.confidence)
        samples = settings.bootstrap_samples
        if not isinstance(samples, int) or isinstance(samples, bool) or samples < 100:
            raise MonitorError(
                "ctloop.yaml 'monitoring: canary: bootstrap_samples' must be a whole number "
                f">= 100 (got {samples!r} of type {type(samples).__name__})"
            )
        return settings


def _check_confidence(value: Any) -> None:
    if value is None:
        return
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not 0.5 <= value < 1:
        raise MonitorError(
            "ctloop.yaml 'monitoring: canary: confidence' must be a number from 0.5 up to "
            f"(not including) 1, such as 0.95, or null to compare the point values only "
            f"(got {value!r} of type {type(value).__name__})"
        )


@dataclass(frozen=True)
class CanaryJudgement:
    """One judgement of the canary of ``deployment``: each side's labelled requests
    (``*_rows``) and metric value since ``since``, the ``decision`` and its ``reason``;
    how much worse the canary is (``worse_by``, positive: worse) with its one-sided bounds
    ``low`` and ``high`` at ``confidence``, the ``method`` that measured them, and
    ``paired_rows`` (labelled requests both versions scored; the comparison is made on
    them when it is paired).

    >>> CanaryJudgement("f", "f", 1, 2, "2026-01-01T00:00:00+00:00", "auc",
    ...                 400, 0.70, 180, 0.72, "promote", "…").better
    True
    """

    deployment: str
    model: str
    primary_version: int
    canary_version: int
    since: str
    metric: str
    primary_rows: int
    primary_value: float | None
    canary_rows: int
    canary_value: float | None
    decision: str
    reason: str
    worse_by: float | None = None
    low: float | None = None
    high: float | None = None
    confidence: float | None = None
    method: str | None = None
    paired_rows: int = 0

    @property
    def better(self) -> bool | None:
        """Whether the canary scored better than the primary (None: not both scored)."""
        from ctloop.evaluate._metrics import is_higher_better

        if self.primary_value is None or self.canary_value is None:
            return None
        sign = 1.0 if is_higher_better(self.metric) else -1.0
        return sign * (self.canary_value - self.primary_value) > 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def active_canaries(workspace: Workspace) -> list[str]:
    """Names of the deployments of ``workspace`` that have a canary now.

    >>> from ctloop.store.workspace import Workspace
    >>> active_canaries(Workspace.in_memory())
    []
    """
    return [r.name for r in workspace.deployments.list() if (r.state or {}).get("canary")]


def judge_canary(
    workspace: Workspace,
    deployment: str,
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> CanaryJudgement | None:
    """Judge the canary of ``deployment`` (see the module docstring); ``None`` when the
    deployment has no canary. ``settings`` give ``monitoring:`` (default: ``ctloop.yaml``).

    >>> judge_canary(workspace, "flights").decision  # doctest: +SKIP
    'wait'
    """
    from ctloop.store._deployments import load_deployment, resolve_version
    from ctloop.store.records import utcnow

    settings = _settings(settings)
    state = load_deployment(workspace, deployment)
    if state is None or state.canary is None:
        return None
    config = _canary_settings(settings)
    since = _canary_started(workspace, deployment, state.canary.version)
    primary = resolve_version(workspace, state.model, state.primary)
    task, metric = _task_and_metric(workspace, settings, state.model, state.canary.version, config)
    labelled = _labelled_requests(workspace, deployment, state.model, since)
    sides = {v: _rows_of(labelled, v) for v in (primary, state.canary.version)}
    rows = (len(sides[primary]), len(sides[state.canary.version]))
    compared, paired_rows = _compare(
        sides[primary], sides[state.canary.version], task, metric, config
    )
    age = ((now or utcnow()) - since).total_seconds()
    decision, reason = _decide(compared, rows, age, config)
    return CanaryJudgement(
        deployment=deployment,
        model=state.model,
        primary_version=primary,
        canary_version=state.canary.version,
        since=since.isoformat(),
        metric=metric,
        primary_rows=rows[0],
        primary_value=compared.primary_value,
        canary_rows=rows[1],
        canary_value=compared.canary_value,
        decision=decision,
        reason=f"canary v{state.canary.version} vs v{primary}: {reason}",
        worse_by=compared.worse_by,
        low=compared.low,
        high=compared.high,
        confidence=compared.confidence,
        method=compared.method,
        paired_rows=paired_rows,
    )


def settle_canary(
    workspace: Workspace,
    deployment: str,
    *,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> CanaryJudgement | None:
    """Judge the canary of ``deployment`` and carry the decision out: ``promote`` moves
    ``champion`` to it, ``rollback`` sends all traffic back to the primary and records
    an alert. A canary that changed meanwhile (another scheduler, a person) is left alone.

    >>> settle_canary(workspace, "flights").decision  # doctest: +SKIP
    'promote'
    """
    from ctloop.store._deployments import load_deployment, promote_canary, rollback_canary

    settings = _settings(settings)
    judgement = judge_canary(workspace, deployment, settings=settings, now=now)
    if judgement is None or judgement.decision == "wait":
        return judgement
    current = load_deployment(workspace, deployment)
    if current is None or current.canary is None:
        return None
    if current.canary.version != judgement.canary_version:
        return None
    if judgement.decision == "promote":
        promote_canary(workspace, deployment, reason=judgement.reason, user="monitor")
    else:
        rollback_canary(
            workspace, deployment, reason=judgement.reason, user="monitor", automatic=True
        )
        _alert(workspace, settings, judgement)
    return judgement


# -- the judgement ------------------------------------------------------------------------


def _decide(
    compared: Comparison, rows: tuple[int, int], age_s: float, config: CanarySettings
) -> tuple[str, str]:
    """The decision on ``compared`` and its reason; ``rows``: the labelled requests each
    side (primary, canary) answered, which must reach ``min_rows``."""
    counts = f"{rows[1]} and {rows[0]} labelled requests"
    if min(rows) < config.min_rows or compared.worse_by is None:
        limit = config.max_wait_s
        if limit is not None and age_s >= limit:
            return "rollback", (
                f"{counts} after {age_s / 3600:.1f} h, fewer than min_rows {config.min_rows} "
                f"within max_wait {limit / 3600:.1f} h"
            )
        return "wait", f"{counts} so far; judging at {config.min_rows} on each side"
    numbers = compared.describe()
    how = "" if compared.low is None else f" with {compared.confidence:.0%} confidence"
    if compared.shown_worse_than(config.allowed_drop):
        return "rollback", f"{numbers}: worse by more than {config.allowed_drop}{how}"
    return "promote", f"{numbers}: not shown worse by more than {config.allowed_drop}{how}"


def _compare(
    primary: pd.DataFrame,
    canary: pd.DataFrame,
    task: str,
    metric: str,
    config: CanarySettings,
) -> tuple[Comparison, int]:
    """The two sides' labelled requests compared on ``metric`` — paired on the requests
    both versions scored when at least ``min_rows`` of them are labelled — and how many
    requests both scored."""
    from ctloop.monitor._comparison import Comparison, compare_versions

    if primary.empty or canary.empty:
        empty = Comparison(
            metric,
            None,
            None,
            len(primary),
            len(canary),
            None,
            None,
            None,
            config.confidence,
            "not measured",
        )
        return empty, 0
    both = primary.merge(canary, on="request_id", suffixes=("_p", "_c"))
    paired = None
    if len(both) >= config.min_rows:
        paired = (both["label_p"], both["prediction_p"], both["prediction_c"])
    compared = compare_versions(
        (primary["label"], primary["prediction"]),
        (canary["label"], canary["prediction"]),
        metric=metric,
        task=task,
        confidence=config.confidence,
        samples=config.bootstrap_samples,
        paired=paired,
    )
    return compared, len(both)


def _rows_of(labelled: pd.DataFrame, version: int) -> pd.DataFrame:
    """The labelled requests ``version`` scored, one row per request id."""
    if labelled.empty:
        return labelled.reindex(columns=["request_id", "label", "prediction"])
    rows = labelled[labelled["model_version"].astype("Int64") == version]
    rows = rows.drop_duplicates("request_id", keep="last")
    return rows[["request_id", "label", "prediction"]].reset_index(drop=True)


def _labelled_requests(
    workspace: Workspace, deployment: str, model: str, since: datetime
) -> pd.DataFrame:
    """The deployment's logged requests since ``since`` that have a label."""
    from ctloop.artifacts._logs import join_feedback, read_feedback, read_predictions

    frame = read_predictions(workspace, model, start=since)
    if frame.empty:
        return frame.assign(label=[])
    frame = frame[frame["deployment"].isna() | (frame["deployment"] == deployment)]
    feedback = read_feedback(workspace, model, start=since)
    if feedback.empty:
        return frame.iloc[:0].assign(label=[])
    return join_feedback(frame, feedback, how="inner")


def _canary_started(workspace: Workspace, deployment: str, version: int) -> datetime:
    """When the current canary (``version``) started taking traffic."""
    started = None
    for record in workspace.deployments.history(deployment):
        canary = (record.state or {}).get("canary") or {}
        if canary.get("version") == version:
            started = started or record.created_at
        else:
            started = None
    if started is None:
        raise MonitorError(f"deployment {deployment!r} has no record of canary v{version}")
    return started


def _task_and_metric(
    workspace: Workspace, settings: Settings, model: str, version: int, config: CanarySettings
) -> tuple[str, str]:
    from ctloop.monitor._checks import DEFAULT_METRIC
    from ctloop.monitor._settings import MonitorSettings

    artifact_id = workspace.registry.get_version(model, version).artifact_id
    task = str(workspace.metadata.get_artifact(artifact_id).properties.get("task") or "")
    if task not in DEFAULT_METRIC:
        raise MonitorError(
            f"cannot judge the canary {model}@{version}: its task {task!r} has no metric; "
            "canaries are judged for classification and regression models"
        )
    monitoring = MonitorSettings.from_mapping(settings.monitoring or {})
    return task, config.metric or monitoring.metric or DEFAULT_METRIC[task]


def _alert(workspace: Workspace, settings: Settings, judgement: CanaryJudgement) -> None:
    from ctloop.monitor._alerts import deliver

    record = workspace.alerts.record(
        source="monitor",
        subject=judgement.deployment,
        severity="warning",
        cause=f"canary {judgement.model}@{judgement.canary_version} rolled back",
        details=judgement.to_dict(),
        dedup_key=f"canary-rollback:{judgement.deployment}:{judgement.canary_version}",
    )
    if record is not None:
        deliver(workspace, record, settings=settings)


def _settings(settings: Settings | None) -> Settings:
    from ctloop.config import Settings

    return settings or Settings.load()


def _canary_settings(settings: Settings) -> CanarySettings:
    return CanarySettings.from_mapping((settings.monitoring or {}).get("canary"))


def _seconds(value: Any) -> float | None:
    from ctloop.durations import parse_duration

    if value is None:
        return None
    return parse_duration(
        value, "ctloop.yaml 'monitoring: canary: max_wait'", error=MonitorError
    ).total_seconds()
