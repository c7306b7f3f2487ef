"""Prometheus metrics of one prediction server (its own registry, so that several apps in
one process, as in tests, do not share counters).

>>> m = ServingMetrics()
>>> m.observe_request("native", 200, "3", 0.004)
>>> b"ctloop_requests_total" in m.render()
True
>>> m.watch_rows("feedback", lambda: {"accepted": 2, "written": 2})
>>> b'ctloop_feedback_rows_total{outcome="written"} 2.0' in m.render()
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "ServingMetrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

_ROW_FAMILIES = {
    "feedback": (
        "ctloop_feedback_rows",
        "Feedback labels by outcome: accepted (queued), written, rejected (refused before "
        "the answer), dead_letter (kept in a dead-letter file), dropped (full queue or lost).",
    ),
    "prediction_log": (
        "ctloop_prediction_log_rows",
        "Logged prediction rows by outcome: accepted (queued), written, rejected (refused "
        "before queueing), dead_letter (kept in a dead-letter file), dropped (full queue "
        "or lost).",
    ),
}

RowCounts = Callable[[], Mapping[str, int]]
"""A logger's rows by outcome (``BatchLogger.counts``)."""


class _RowCounters(Collector):
    """The loggers' row counters, read at each scrape."""

    def __init__(self) -> None:
        self.sources: dict[str, RowCounts] = {}

    def describe(self) -> Iterator[CounterMetricFamily]:
        for name, documentation in _ROW_FAMILIES.values():
            yield CounterMetricFamily(name, documentation, labels=["outcome"])

    def collect(self) -> Iterator[CounterMetricFamily]:
        for log, counts in self.sources.items():
            name, documentation = _ROW_FAMILIES[log]
            family = CounterMetricFamily(name, documentation, labels=["outcome"])
            for outcome, value in counts().items():
                family.add_metric([outcome], value)
            yield family


class ServingMetrics:
    """The counters and histograms ``/metrics`` shows."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "ctloop_requests",
            "Prediction requests answered, by protocol, HTTP status and model version.",
            ["protocol", "status", "model_version"],
            registry=r,
        )
        self.latency = Histogram(
            "ctloop_request_latency_seconds",
            "Time to answer a prediction request.",
            ["protocol", "model_version"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "ctloop_batch_size_rows",
            "Rows per call of the model (after micro-batching).",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "ctloop_prediction_errors",
            "Requests that failed, by kind (client: a 4xx answer; model: the model raised).",
            ["kind", "model_version"],
            registry=r,
        )
        self.rows = Counter(
            "ctloop_predicted_rows",
            "Rows predicted, by model version.",
            ["model_version"],
            registry=r,
        )
        self.shadow = Counter(
            "ctloop_shadow_requests",
            "Requests mirrored to the shadow version, by outcome.",
            ["model_version", "outcome"],
            registry=r,
        )
        self.rollbacks = Counter(
            "ctloop_canary_rollbacks", "Canaries rolled back automatically.", registry=r
        )
        self.canary_fallbacks = Counter(
            "ctloop_canary_fallbacks",
            "Canary requests answered by the primary, by canary version and cause (error: "
            "its transform or model raised; refused: it rejected input the primary accepts).",
            ["model_version", "cause"],
            registry=r,
        )
        self.log_errors = Gauge(
            "ctloop_prediction_log_errors",
            "Prediction-log batches that could not be written.",
            registry=r,
        )
        self.log_dropped = Gauge(
            "ctloop_prediction_log_dropped_rows",
            "Prediction-log rows dropped (full queue or failed writes).",
            registry=r,
        )
        self._row_counters = _RowCounters()
        r.register(self._row_counters)
        self._request_children: dict[tuple[str, int, str], tuple[Any, Any]] = {}
        self.serving = Gauge(
            "ctloop_model_version_info",
            "1 for each model version serving, by role (primary, canary, shadow).",
            ["model", "role", "model_version"],
            registry=r,
        )

    def observe_request(self, protocol: str, status: int, version: str, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = (protocol, status, version)
        children = self._request_children.get(key)
        if children is None:  # labelled once per combination, not once per request
            children = (
                self.requests.labels(protocol, str(status), version),
                self.latency.labels(protocol, version),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def watch_log(self, errors: Callable[[], float], dropped: Callable[[], float]) -> None:
        """Read the prediction logger's counters at each scrape."""
        self.log_errors.set_function(errors)
        self.log_dropped.set_function(dropped)

    def watch_rows(self, log: str, counts: RowCounts) -> None:
        """Show ``counts()`` (rows by outcome) at each scrape as the counter of ``log``:
        ``"feedback"`` (``ctloop_feedback_rows_total``) or ``"prediction_log"``
        (``ctloop_prediction_log_rows_total``)."""
        if log not in _ROW_FAMILIES:
            raise ValueError(f"unknown log {log!r}; use one of {', '.join(_ROW_FAMILIES)}")
        self._row_counters.sources[log] = counts

    def set_serving(self, model: str, roles: dict[str, int | None]) -> None:
        """Show which versions serve in which role."""
        self.serving.clear()
        for role, version in roles.items():
            if version is not None:
                self.serving.labels(model, role, str(version)).set(1)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
