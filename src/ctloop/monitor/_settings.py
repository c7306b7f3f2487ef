"""Monitoring and alert settings: the ``monitoring:`` and ``alerts:`` sections of ``ctloop.yaml``.

Every key is optional; the defaults suit a model with a few hundred requests a window::

    monitoring:
      min_rows: 200              # fewer rows in a window: verdict "no-data", no alarm
      window_on: timestamp       # timestamp: when rows were logged; event_time: the time
                                 # the client said they are about (a replay of history)
      drift_test: psi            # auto | ks | wasserstein | psi | chisquare | jensenshannon | linf
      drift_threshold: 0.2       # null: the test's default (distances 0.1, p-values 0.05);
                                 # a PSI threshold is raised by the PSI of sampling noise,
                                 # 9 * (1/rows + 1/reference rows): 0.05 at 200 rows
      features:                  # per-feature overrides
        distance: {test: psi, threshold: 0.2}
        carrier: {ignore: true}
      metric: null               # null: auc (classification) or rmse (regression)
      allowed_drop: 0.05         # degraded when the metric is worse than baseline by more
      drop_is: relative          # relative: a share of the baseline; absolute: in the metric's units
      confidence: 0.95           # and only when the baseline is outside the window's bootstrap
                                 # interval at this level (null: no noise check)
      attribution_threshold: 0.3 # total variation between importance shares
      drift_importance: 0.1      # drift counts when the drifted features hold this share
                                 # of the model's importance (null: every drift counts)
      time_columns: [time_hour]  # time-index columns, besides those recognised
                                 # (datetimes, year/month/day/hour..., monotonic integers)
      attribution_rows: 2000     # rows sampled for permutation importance
      canary: {min_rows: 200, allowed_drop: 0.0, max_wait: 7d}  # see ctloop.monitor._canary
    alerts:
      incidents: true            # group alerts: one open incident per model and kind,
                                 # delivered on open and on resolve only
      resolve_after: 1           # clean windows that resolve an incident
      digest: 1d                 # optional: one delivery per sink a day listing
                                 # the incidents opened and resolved
      cooldown_s: 3600           # without incidents: one alert per model+cause per cooldown
      max_attempts: 8            # webhook tries before an alert is marked failed
      sinks:
        - {type: log}
        - {type: file, path: .ctloop/alerts.jsonl}
        - {type: webhook, url: "https://hooks.example.com/ml", timeout_s: 5}

>>> MonitorSettings.from_mapping({"min_rows": 10}).min_rows
10
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any

from ctloop.errors import MonitorError

_DISTANCE_TESTS = {"numeric": "wasserstein", "categorical": "jensenshannon"}
SINK_TYPES = ("log", "file", "webhook")


@dataclass(frozen=True)
class FeatureSetting:
    """One feature's override: its drift test and threshold, or ``ignore``.

    >>> FeatureSetting(test="psi", threshold=0.2).ignore
    False
    """

    test: str | None = None
    threshold: float | None = None
    ignore: bool = False


@dataclass(frozen=True)
class MonitorSettings:
    """How a monitoring job judges a window (see the module docstring for the keys).

    >>> MonitorSettings().allowed_drop
    0.05
    """

    min_rows: int = 200  # below this, sampling noise alone moves PSI near its threshold
    window_on: str = "timestamp"
    drift_test: str = "psi"  # stable under sampling noise; a PSI above 0.2 is a real shift
    drift_threshold: float | None = 0.2
    features: Mapping[str, FeatureSetting] = field(default_factory=dict)
    metric: str | None = None
    allowed_drop: float = 0.05
    drop_is: str = "relative"  # scale-free: 0.05 is 5 % of the baseline, whatever its units
    confidence: float | None = 0.95  # small windows: a drop within sampling noise is no alarm
    bootstrap_samples: int = 200
    attribution_threshold: float = 0.3
    drift_importance: float | None = 0.1  # a drifting feature the model ignores retrains nothing
    time_columns: tuple[str, ...] = ()
    attribution_rows: int = 2000
    canary: Mapping[str, Any] = field(default_factory=dict)  # see ctloop.monitor._canary

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> MonitorSettings:
        """Read the ``monitoring:`` section; unknown keys are refused."""
        _refuse_unknown("monitoring", values, {f.name for f in fields(cls)})
        from ctloop.monitor._canary import CanarySettings

        found = dict(values)
        features = found.pop("features", None) or {}
        found["canary"] = dict(found.get("canary") or {})
        found["time_columns"] = tuple(str(c) for c in found.get("time_columns") or ())
        CanarySettings.from_mapping(found["canary"])  # a bad canary setting fails here
        try:
            parsed = {str(k): FeatureSetting(**(v or {})) for k, v in features.items()}
            settings = cls(features=parsed, **found)
        except TypeError as exc:
            raise MonitorError(
                f"ctloop.yaml 'monitoring:' has a bad value ({exc}); a feature override "
                "takes test, threshold and ignore"
            ) from exc
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse a drop rule that cannot be read, naming the key and the value."""
        if self.window_on not in ("timestamp", "event_time"):
            raise MonitorError(
                f"ctloop.yaml 'monitoring: window_on' is {self.window_on!r}; use timestamp "
                "(when predictions were logged) or event_time (the time they are about)"
            )
        if self.drop_is not in ("relative", "absolute"):
            raise MonitorError(
                f"ctloop.yaml 'monitoring: drop_is' is {self.drop_is!r}; use relative or absolute"
            )
        if self.confidence is not None and not 0 < self.confidence < 1:
            raise MonitorError(
                f"ctloop.yaml 'monitoring: confidence' is {self.confidence!r}; use a level "
                "between 0 and 1 (e.g. 0.95), or null for no noise check"
            )

    def drift_test_for(self, feature: str, kind: str) -> tuple[str, float | None]:
        """The test and threshold for one feature of kind ``numeric`` or ``categorical``.

        >>> MonitorSettings().drift_test_for("x", "numeric")
        ('psi', 0.2)
        """
        override = self.features.get(feature, FeatureSetting())
        test = override.test or self.drift_test
        if test == "auto" or (override.test is None and not _fits(test, kind)):
            test = _DISTANCE_TESTS[kind]
        threshold = override.threshold
        if threshold is None and override.test is None and test == self.drift_test:
            threshold = self.drift_threshold
        return test, threshold

    def ignored(self) -> tuple[str, ...]:
        """Features the settings exclude from drift tests."""
        return tuple(name for name, s in self.features.items() if s.ignore)


@dataclass(frozen=True)
class AlertSettings:
    """Where alerts go and how often (see the module docstring for the keys).

    >>> AlertSettings.from_mapping({"sinks": [{"type": "log"}]}).sinks[0]["type"]
    'log'
    """

    sinks: tuple[dict[str, Any], ...] = ({"type": "log"},)
    incidents: bool = True
    resolve_after: int = 1
    cooldown_s: float = 3600.0
    max_attempts: int = 8
    backoff_s: float = 30.0
    digest: str | None = None

    @property
    def digest_period(self) -> timedelta | None:
        """``digest`` as a period (None: every opening and resolution is sent)."""
        if self.digest is None:
            return None
        from ctloop.durations import parse_duration

        return parse_duration(self.digest, "ctloop.yaml 'alerts: digest'", error=MonitorError)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> AlertSettings:
        """Read the ``alerts:`` section; unknown keys and sink types are refused."""
        _refuse_unknown("alerts", values, {f.name for f in fields(cls)})
        found = dict(values)
        sinks = tuple(dict(s) for s in found.pop("sinks", cls.sinks) or ())
        for sink in sinks:
            if sink.get("type") not in SINK_TYPES:
                raise MonitorError(
                    f"ctloop.yaml 'alerts:' has a sink of type {sink.get('type')!r}; "
                    f"use one of {', '.join(SINK_TYPES)}"
                )
        settings = cls(sinks=sinks, **found)
        period = settings.digest_period
        if period is not None and period.total_seconds() <= 0:
            raise MonitorError(
                f"ctloop.yaml 'alerts: digest' is {settings.digest!r}; use a period such as 1d"
            )
        if not isinstance(settings.resolve_after, int) or settings.resolve_after < 1:
            raise MonitorError(
                f"ctloop.yaml 'alerts: resolve_after' is {settings.resolve_after!r}; use a "
                "whole number of clean windows, 1 or more"
            )
        return settings


def _fits(test: str, kind: str) -> bool:
    numeric = {"ks", "wasserstein", "psi"}
    categorical = {"chisquare", "jensenshannon", "linf", "psi"}
    return test in (numeric if kind == "numeric" else categorical)


def _refuse_unknown(section: str, values: Mapping[str, Any], known: set[str]) -> None:
    unknown = set(values) - known
    if unknown:
        raise MonitorError(
            f"ctloop.yaml '{section}:' has unknown key(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(known))}"
        )
