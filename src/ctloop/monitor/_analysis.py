"""One monitoring window judged from data frames: statistics, skew, drift, performance, verdict.

The pipeline's steps (``ctloop.monitor._job``) call these functions one by one; called in a
row by ``analyse_window`` they judge a window held in memory.

>>> import numpy as np, pandas as pd
>>> from ctloop.data import compute_statistics
>>> rng = np.random.default_rng(0)
>>> train = pd.DataFrame({"x": rng.normal(size=2000)})
>>> window = pd.DataFrame({"x": rng.normal(size=500) + 3.0, "prediction": 0.5})
>>> report = analyse_window(window, features=["x"], reference=compute_statistics(train))
>>> report.verdict, report.drifted_features
('drift', ('x',))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ctloop.monitor import _checks as checks
from ctloop.monitor._report import MonitorReport
from ctloop.monitor._settings import MonitorSettings

if TYPE_CHECKING:
    import pandas as pd

    from ctloop.data import DatasetStatistics

PREDICTION = "prediction"
LABEL = "label"


def monitored_columns(frame: pd.DataFrame, features: Sequence[str]) -> list[str]:
    """The features (and the ``prediction`` column) that ``frame`` holds."""
    return [c for c in (*features, PREDICTION) if c in frame.columns]


def window_statistics(frame: pd.DataFrame, features: Sequence[str]) -> DatasetStatistics:
    """Mergeable statistics of the monitored columns of one window."""
    from ctloop.data import compute_statistics

    return compute_statistics(frame[monitored_columns(frame, features)])


def compare_statistics(
    current: DatasetStatistics,
    *,
    reference: DatasetStatistics | None,
    previous: DatasetStatistics | None,
    features: Sequence[str],
    settings: MonitorSettings,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Skew (against ``reference``) and drift (against ``previous``) as dicts.

    A side that is missing, or a previous window below ``min_rows``, gives None.
    """
    columns = [*features, PREDICTION]
    skew = None
    if reference is not None and reference.num_rows > 0:
        skew = checks.feature_drift(reference, current, list(features), settings).to_dict()
    drift = None
    if previous is not None and previous.num_rows >= settings.min_rows:
        drift = checks.feature_drift(previous, current, columns, settings).to_dict()
    return skew, drift


def weighed_comparisons(
    frame: pd.DataFrame | None,
    current: DatasetStatistics,
    *,
    reference: DatasetStatistics | None,
    previous: DatasetStatistics | None,
    features: Sequence[str],
    importance: Mapping[str, float] | None,
    settings: MonitorSettings,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Skew and drift (:func:`compare_statistics`) of the features of ``frame`` that do
    not index time, each column weighed by its ``importance`` share (see
    :mod:`ctloop.monitor._importance`); the parts list the time-index columns left out."""
    from ctloop.monitor._importance import time_index_columns, weigh

    times: list[str] = []
    if frame is not None:
        before = previous if previous is not None and previous.num_rows else reference
        times = time_index_columns(frame, features, settings.time_columns, before=before)
    skew, drift = compare_statistics(
        current,
        reference=reference,
        previous=previous,
        features=[f for f in features if f not in times],
        settings=settings,
    )
    shares = importance if settings.drift_importance is not None else None
    threshold = settings.drift_importance or 0.0
    for part in (skew, drift):
        if part is not None:
            part["time_index_columns"] = times
    return weigh(skew, shares, threshold), weigh(drift, shares, threshold)


def judge_model(
    frame: pd.DataFrame,
    *,
    features: Sequence[str],
    model: Any,
    task: str,
    baseline: Mapping[str, float],
    reference_attribution: Mapping[str, float] | None,
    settings: MonitorSettings,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Performance and attribution shift on the window's labelled rows (None, None
    when fewer than ``min_rows`` rows have a label, or the task has no metric)."""
    if LABEL not in frame.columns or task not in checks.DEFAULT_METRIC:
        return None, None
    labelled = frame[frame[LABEL].notna()]
    if len(labelled) < settings.min_rows:
        return None, None
    found = checks.performance(
        labelled[LABEL].to_numpy(),
        labelled[PREDICTION].to_numpy(dtype=float),
        task=task,
        baseline=baseline,
        settings=settings,
    )
    attribution = None
    if model is not None and reference_attribution:
        current = checks.attribution_shares(
            model,
            labelled[list(features)],
            labelled[LABEL].to_numpy(),
            task=task,
            settings=settings,
        )
        attribution = checks.attribution_shift(
            reference_attribution, current, threshold=settings.attribution_threshold
        )
    return found, attribution


def decide(
    rows: int,
    *,
    skew: dict[str, Any] | None,
    drift: dict[str, Any] | None,
    performance: dict[str, Any] | None,
    attribution: dict[str, Any] | None,
    settings: MonitorSettings,
) -> tuple[str, tuple[str, ...]]:
    """The verdict (``degraded`` before ``drift`` before ``ok``) and the reasons for it.

    >>> decide(3, skew=None, drift=None, performance=None, attribution=None,
    ...        settings=MonitorSettings(min_rows=10))
    ('no-data', ('the window has 3 rows, fewer than min_rows=10',))
    """
    if rows < settings.min_rows:
        return "no-data", (f"the window has {rows} rows, fewer than min_rows={settings.min_rows}",)
    reasons = []
    if performance and performance["degraded"]:
        reasons.append(_degraded_reason(performance))
    degraded = bool(reasons)
    quiet = []  # drift the model does not lean on: reported, not counted
    for name, part in (("training data", skew), ("previous window", drift)):
        drifted = [c for c in (part or {}).get("columns", ()) if c["drifted"]]
        if part is not None and drifted and not part.get("counts", True):
            quiet.append(_quiet_reason(drifted, part, name))
            continue
        reasons.extend(_drift_reason(column, name) for column in drifted)
    if attribution and attribution["drifted"]:
        reasons.append(
            f"the model leans on different features: attribution shares moved by "
            f"{attribution['distance']:.3f} > {attribution['threshold']:g} "
            f"(changed: {', '.join(attribution['changed'])})"
        )
    if degraded:
        return "degraded", (*reasons, *quiet)
    return ("drift" if reasons else "ok"), (*reasons, *quiet)


def analyse_window(
    frame: pd.DataFrame,
    *,
    features: Sequence[str],
    reference: DatasetStatistics | None = None,
    previous: pd.DataFrame | None = None,
    model: Any = None,
    task: str = "classification",
    baseline: Mapping[str, float] | None = None,
    reference_attribution: Mapping[str, float] | None = None,
    settings: MonitorSettings | None = None,
    identity: Mapping[str, Any] | None = None,
) -> MonitorReport:
    """Judge one window held in memory (see the module docstring).

    ``frame`` holds the features, ``prediction`` and, where feedback arrived, ``label``;
    ``identity`` may give ``model``, ``version``, ``model_artifact_id``, ``window`` and
    ``previous_window`` for the report.
    """
    settings = settings or MonitorSettings()
    current = window_statistics(frame, features)
    before = window_statistics(previous, features) if previous is not None else None
    skew, drift = weighed_comparisons(
        frame,
        current,
        reference=reference,
        previous=before,
        features=features,
        importance=reference_attribution,
        settings=settings,
    )
    performance, attribution = judge_model(
        frame,
        features=features,
        model=model,
        task=task,
        baseline=baseline or {},
        reference_attribution=reference_attribution,
        settings=settings,
    )
    return build_report(
        len(frame),
        identity=identity or {},
        parts={
            "skew": skew,
            "drift": drift,
            "performance": performance,
            "attribution": attribution,
        },
        statistics={"current": current, "reference": reference},
        settings=settings,
    )


def build_report(
    rows: int,
    *,
    identity: Mapping[str, Any],
    parts: Mapping[str, dict[str, Any] | None],
    statistics: Mapping[str, DatasetStatistics | None],
    settings: MonitorSettings,
) -> MonitorReport:
    """The report of a window from its parts (``skew``, ``drift``, ``performance``,
    ``attribution``); below ``min_rows`` the parts are dropped, so nothing alarms."""
    verdict, reasons = decide(rows, settings=settings, **parts)
    kept = {k: (v if verdict != "no-data" else None) for k, v in parts.items()}
    window = dict(identity.get("window") or {})
    window["rows"] = rows
    return MonitorReport(
        model=str(identity.get("model", "")),
        version=int(identity.get("version", 0)),
        model_artifact_id=str(identity.get("model_artifact_id", "")),
        verdict=verdict,
        window=window,
        previous_window=identity.get("previous_window"),
        reasons=reasons,
        statistics={k: v.to_dict() for k, v in statistics.items() if v is not None},
        **kept,
    )


def _degraded_reason(performance: Mapping[str, Any]) -> str:
    """``rmse is 13.1 against a baseline of 10.56 (24 % worse > 5 %; 95 % interval 12.4–13.8)``."""
    metric, value, baseline = performance["metric"], performance["value"], performance["baseline"]
    relative = performance.get("relative_drop")
    if performance.get("drop_is", "absolute") == "relative" and relative is not None:
        size = f"{relative:.1%} worse > {performance['allowed_drop']:.1%}"
    else:
        size = f"drop {performance['drop']:.4g} > {performance['allowed_drop']:g}"
    interval = performance.get("interval")
    noise = f"; interval {interval[0]:.4g} to {interval[1]:.4g}" if interval else ""
    return f"{metric} is {value:.4g} against a baseline of {baseline:.4g} ({size}{noise})"


def _quiet_reason(drifted: list[Mapping[str, Any]], part: Mapping[str, Any], against: str) -> str:
    names = ", ".join(repr(c["column"]) for c in drifted)
    return (
        f"{names} drifted against the {against} but hold {part['drifted_importance']:.1%} of "
        f"the model's importance (< {part['importance_threshold']:.0%}); not counted as drift"
    )


def _drift_reason(column: Mapping[str, Any], against: str) -> str:
    score = column["p_value"] if column["p_value"] is not None else column["statistic"]
    return (
        f"feature {column['column']!r} drifted against the {against}: "
        f"{column['test']} {score:.4g} (threshold {column['threshold']:g})"
    )
