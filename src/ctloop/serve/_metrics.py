"""Prometheus metrics of one prediction server.

In one process (one worker) the metrics live in a registry of their own, so that several
apps in one process, as in tests, do not share counters. With several workers
(``ctloop serve --workers N``) the supervisor points :data:`MULTIPROCESS_ENV` at a private
folder before it starts them, and prometheus-client's multiprocess mode keeps every
worker's values in memory-mapped files there: each ``/metrics`` answer, whichever worker
takes the scrape, sums the counters and histograms of every worker (those that died
included), and takes the gauges of the live ones (:func:`forget_dead_workers`).

>>> m = ServingMetrics()
>>> m.observe_request("native", 200, "3", 0.004)
>>> b"ctloop_requests_total" in m.render()
True
>>> m.watch_rows("feedback", lambda: {"accepted": 2, "written": 2})
>>> b'ctloop_feedback_rows_total{outcome="written"} 2.0' in m.render()
True
"""

from __future__ import annotations

import glob
import os
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

__all__ = [
    "CONTENT_TYPE",
    "MULTIPROCESS_ENV",
    "PUBLISH_SECONDS",
    "ServingMetrics",
    "forget_dead_workers",
    "shared_folder",
]

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""The folder of the workers' metric files (read by prometheus-client when it is imported)."""

PUBLISH_SECONDS = 0.5
"""With several workers: how often each one writes its loggers' row counts to its files
(a scrape sees the other workers' counts as of at most this long ago)."""

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


def shared_folder() -> str | None:
    """The folder every worker's metrics are kept in, when this process runs in
    prometheus-client's multiprocess mode (:data:`MULTIPROCESS_ENV` was set before it
    imported prometheus-client); ``None`` in one process.

    >>> shared_folder() is None  # doctest: +SKIP
    True
    """
    from prometheus_client import values

    folder = os.environ.get(MULTIPROCESS_ENV)
    if not folder or values.ValueClass is values.MutexValue:
        return None
    return folder


def forget_dead_workers(folder: str, alive: Collection[int]) -> list[int]:
    """Drop the live gauges (``livesum``, ``livemax``, ...) of every process but ``alive``
    from the metric files in ``folder`` (``prometheus_client.multiprocess.
    mark_process_dead``); their counters and histograms stay, so totals keep what a dead
    worker answered. Returns the processes forgotten.

    >>> forget_dead_workers(folder, alive={os.getpid()})  # doctest: +SKIP
    [41233]
    """
    from prometheus_client.multiprocess import mark_process_dead

    dead = set()
    for path in glob.glob(os.path.join(folder, "gauge_live*_*.db")):
        name = os.path.basename(path)[: -len(".db")].rsplit("_", 1)[1]
        if name.isdigit() and int(name) not in alive:
            dead.add(int(name))
    for pid in sorted(dead):
        mark_process_dead(pid, folder)
    return sorted(dead)


class _Merged(Collector):
    """Every worker's metrics from the files in ``folder``, with the version gauge's
    retired entries (0) left out, as one process's ``clear`` leaves them out."""

    def __init__(self, folder: str) -> None:
        from prometheus_client.multiprocess import MultiProcessCollector

        self.files = MultiProcessCollector(None, folder)

    def collect(self) -> Iterator[Metric]:
        for metric in self.files.collect():
            if metric.name == "ctloop_model_version_info":
                metric.samples = [s for s in metric.samples if s.value]
            yield metric


class ServingMetrics:
    """The counters and histograms ``/metrics`` shows (one per process in multiprocess
    mode: values of one name and labels share one entry of the process's files)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.folder = shared_folder()
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
        # counts of events, so a dead worker's stay in the sum
        self.log_errors = Gauge(
            "ctloop_prediction_log_errors",
            "Prediction-log batches that could not be written.",
            registry=r,
            multiprocess_mode="sum",
        )
        self.log_dropped = Gauge(
            "ctloop_prediction_log_dropped_rows",
            "Prediction-log rows dropped (full queue or failed writes).",
            registry=r,
            multiprocess_mode="sum",
        )
        self._row_counters = _RowCounters()
        self._request_children: dict[tuple[str, int, str], tuple[Any, Any]] = {}
        self.serving = Gauge(
            "ctloop_model_version_info",
            "1 for each model version serving, by role (primary, canary, shadow).",
            ["model", "role", "model_version"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.workers = Gauge(
            "ctloop_serve_workers",
            "Worker processes serving (1 without --workers).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.workers.set(1)
        self._serving_labels: set[tuple[str, str, str]] = set()
        self._log_sources: tuple[Callable[[], float], Callable[[], float]] | None = None
        self._row_totals: dict[str, Counter] = {}
        self._published: dict[str, dict[str, int]] = {}
        self._publish_lock = threading.Lock()
        self._stop = threading.Event()
        self._publisher: threading.Thread | None = None
        if self.folder is None:
            r.register(self._row_counters)
        else:
            for log, (name, documentation) in _ROW_FAMILIES.items():
                self._row_totals[log] = Counter(name, documentation, ["outcome"], registry=r)

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
        """Read the prediction logger's counters at each scrape (with several workers,
        every :data:`PUBLISH_SECONDS`)."""
        if self.folder is None:
            self.log_errors.set_function(errors)
            self.log_dropped.set_function(dropped)
            return
        self._log_sources = (errors, dropped)
        self._start_publishing()

    def watch_rows(self, log: str, counts: RowCounts) -> None:
        """Show ``counts()`` (rows by outcome) at each scrape as the counter of ``log``:
        ``"feedback"`` (``ctloop_feedback_rows_total``) or ``"prediction_log"``
        (``ctloop_prediction_log_rows_total``). With several workers each one writes its
        counts to its files every :data:`PUBLISH_SECONDS` and before it answers a scrape."""
        if log not in _ROW_FAMILIES:
            raise ValueError(f"unknown log {log!r}; use one of {', '.join(_ROW_FAMILIES)}")
        self._row_counters.sources[log] = counts
        if self.folder is not None:
            self._start_publishing()

    def set_serving(self, model: str, roles: dict[str, int | None]) -> None:
        """Show which versions serve in which role."""
        now = {(model, role, str(v)) for role, v in roles.items() if v is not None}
        if self.folder is None:
            self.serving.clear()
        else:  # an entry of the files stays: a retired one is set to 0 (not shown)
            for labels in self._serving_labels - now:
                self.serving.labels(*labels).set(0)
        for labels in now:
            self.serving.labels(*labels).set(1)
        self._serving_labels = now

    def render(self) -> bytes:
        """The text exposition format (with several workers: all of theirs together)."""
        if self.folder is None:
            return generate_latest(self.registry)
        self.publish()
        merged = CollectorRegistry(auto_describe=False)
        merged.register(_Merged(self.folder))
        return generate_latest(merged)

    def publish(self) -> None:
        """Write the watched loggers' counts to this worker's files (several workers)."""
        if self.folder is None:
            return
        with self._publish_lock:
            for log, counts in self._row_counters.sources.items():
                counter, last = self._row_totals[log], self._published.setdefault(log, {})
                for outcome, value in counts().items():
                    if outcome not in last:  # shown from the start, at 0
                        last[outcome] = 0
                        counter.labels(outcome)
                    if value > last[outcome]:
                        counter.labels(outcome).inc(value - last[outcome])
                        last[outcome] = value
            if self._log_sources is not None:
                errors, dropped = self._log_sources
                self.log_errors.set(errors())
                self.log_dropped.set(dropped())

    def close(self) -> None:
        """Stop publishing, after a last :meth:`publish` (once the loggers are flushed)."""
        self._stop.set()
        if self._publisher is not None:
            self._publisher.join(5)
            self._publisher = None
        self.publish()

    def _start_publishing(self) -> None:
        if self._publisher is not None or self._stop.is_set():
            return
        self._publisher = threading.Thread(
            target=self._publish_every, name="ctloop-metrics", daemon=True
        )
        self._publisher.start()

    def _publish_every(self) -> None:
        while not self._stop.wait(PUBLISH_SECONDS):
            try:
                self.publish()
            except Exception:  # a scrape must still answer; the next round tries again
                import logging

                logging.getLogger("ctloop.serve.metrics").exception(
                    "could not publish the logs' counts"
                )
