"""The prediction core every protocol shares: route, validate, predict, log, mirror.

A request is routed by the :class:`~ctloop.serve._pool.ModelPool` (primary or canary),
checked against that version's signature on its own (a bad request fails alone, with a
:class:`~ctloop.errors.SignatureError` naming the column), predicted off the event loop
(micro-batched with concurrent requests when batching is on), logged without waiting,
and mirrored to the shadow version after the answer.

A canary that fails (its transform's preprocess or postprocess or its model raises, or it
rejects input the primary accepts) counts against its rollback policy, is logged with the
request id and counted in ``ctloop_canary_fallbacks_total``, and the request is answered by
the primary, so clients do not see the canary's failures. Input the primary refuses too is
the client's fault: a 4xx, not counted against the canary.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ctloop.errors import PredictionRequestError, ServingError, SignatureError, TransformError
from ctloop.serve._batching import MicroBatcher, frames_runner, predict_in_thread
from ctloop.serve._fastpath import plain_records
from ctloop.serve._features import with_online_features
from ctloop.serve._prediction_log import FrameRows, PendingRows
from ctloop.serve._statistics import InferenceStatistics

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ctloop.artifacts.model import Model
    from ctloop.serve._metrics import ServingMetrics
    from ctloop.serve._pool import LoadedVersion, ModelPool, Route
    from ctloop.serve._protocols import PredictionRequest

__all__ = ["ModelFailedError", "Prediction", "PredictionService"]

log = logging.getLogger("ctloop.serve.core")

_INLINE_ROWS = 64
"""Requests up to this many rows are validated on the event loop (cheaper than a thread hop)."""

_In = TypeVar("_In")
_Out = TypeVar("_Out")


class ModelFailedError(ServingError):
    """The model raised while predicting valid input (a server-side failure, HTTP 500)."""


@dataclass(frozen=True)
class Prediction:
    """A request's answer: its ``predictions``, the ``version`` that made them, the ids of
    its rows, ``follow_up`` (the shadow call, to run after the answer is sent), and
    ``outputs``, the model's transform's answer (output name → one value per row), or
    ``None`` for a model without a transform."""

    predictions: np.ndarray
    version: int
    request_id: str
    row_ids: list[str]
    follow_up: Callable[[], Awaitable[None]] | None = None
    outputs: dict[str, np.ndarray] | None = None


class PredictionService:
    """Answers prediction requests for the model a pool serves.

    ``logger`` is a :class:`~ctloop.serve._prediction_log.PredictionLogger` or ``None``;
    ``batcher`` a :class:`~ctloop.serve._batching.MicroBatcher` or ``None`` (no batching).
    ``statistics`` counts what each version answered and each call of its model.
    """

    def __init__(
        self,
        pool: ModelPool,
        metrics: ServingMetrics,
        *,
        executor: Executor | None = None,
        batcher: MicroBatcher | None = None,
        logger: Any = None,
    ) -> None:
        self.pool = pool
        self.metrics = metrics
        self.executor = executor
        self.batcher = batcher
        self.logger = logger
        self.statistics = InferenceStatistics()

    async def predict(self, request: PredictionRequest, request_id: str) -> Prediction:
        """Predict one request; raises ``SignatureError`` for bad input and
        :class:`ModelFailedError` when the serving version fails."""
        if _row_count(request.data) == 0:
            raise PredictionRequestError(
                "the request has no rows; send at least one row to predict",
                status=422,
                field="body",
            )
        route = self.pool.route(request.key, request_id)
        start = time.perf_counter_ns()
        try:
            target, frame, predictions, outputs = await self._respond(
                route, request.data, request_id
            )
        except Exception:
            self.statistics.failed(route.primary.version, ns=time.perf_counter_ns() - start)
            raise
        row_ids = _row_ids(request_id, len(frame))
        now = time.time()
        ns = time.perf_counter_ns() - start
        self.statistics.answered(target.version, rows=len(row_ids), ns=ns, now=now)
        events = request.event_times
        self._log(target.version, row_ids, frame, predictions, now, events, ns / 1e6)
        follow_up = None
        if route.shadow is not None:
            follow_up = self._mirror_later(route.shadow, request.data, row_ids, now, events)
        return Prediction(predictions, target.version, request_id, row_ids, follow_up, outputs)

    def _postprocess(
        self, target: LoadedVersion, predictions: np.ndarray, data: Any
    ) -> dict[str, np.ndarray] | None:
        """The transform's answer for ``predictions`` (``None`` without a transform)."""
        if target.model.transform is None:
            return None
        try:
            return target.model.answer(predictions, data)
        except TransformError as exc:
            raise self._transform_failed(target, exc) from exc

    def _transform_failed(self, target: LoadedVersion, exc: TransformError) -> ModelFailedError:
        """A transform's own failure: logged with its traceback, answered as a 500."""
        log.error("model version %s: %s", target.version, exc, exc_info=exc)
        self.metrics.errors.labels("model", str(target.version)).inc()
        return ModelFailedError(f"model version {target.version}: {exc}")

    async def _respond(
        self, route: Route, data: Any, request_id: str
    ) -> tuple[LoadedVersion, pd.DataFrame, np.ndarray, dict[str, np.ndarray] | None]:
        """The version that answers ``data`` (the canary, or the primary when the canary
        fails), its prepared frame, its predictions and its transform's outputs."""
        if route.arm != "canary":
            return route.primary, *await self._answer_all(route.primary, data)
        start = time.perf_counter()
        try:
            answered = await self._answer_all(route.target, data)
        except SignatureError as exc:  # the primary decides whether the input is bad
            refused: Exception | None = exc
        except Exception as exc:  # the canary's own failure: the primary answers
            self._canary_failed(route, _ms_since(start), request_id, exc, cause="error")
            refused = None
        else:
            self._judge(route, ok=True, start=start)
            return route.target, *answered
        latency_ms = _ms_since(start)
        answered = await self._answer_all(route.primary, data)  # a 4xx when it refuses too
        if refused is not None:  # input the primary accepts: the canary's fault
            self._canary_failed(route, latency_ms, request_id, refused, cause="refused")
        return route.primary, *answered

    async def _answer_all(
        self, target: LoadedVersion, data: Any
    ) -> tuple[pd.DataFrame, np.ndarray, dict[str, np.ndarray] | None]:
        """:meth:`_answer` and the transform's outputs (postprocess) of ``target``."""
        frame, predictions = await self._answer(target, data)
        return frame, predictions, self._postprocess(target, predictions, data)

    def _canary_failed(
        self, route: Route, latency_ms: float, request_id: str, exc: Exception, *, cause: str
    ) -> None:
        """Count the canary's failure on a request (against its rollback policy, and in
        the metrics by ``cause``: ``error`` or ``refused``) and log it with the request id."""
        canary, primary = route.target.version, route.primary.version
        self.metrics.canary_fallbacks.labels(str(canary), cause).inc()
        log.warning(
            "request %s: canary version %s %s, answered by the primary version %s: %s",
            request_id,
            canary,
            "refused input the primary accepts" if cause == "refused" else "failed",
            primary,
            exc,
        )
        self._record(route, ok=False, latency_ms=latency_ms)

    def _judge(self, route: Route, *, ok: bool, start: float) -> None:
        self._record(route, ok=ok, latency_ms=_ms_since(start))

    def _record(self, route: Route, *, ok: bool, latency_ms: float) -> None:
        if self.pool.record(route, ok=ok, latency_ms=latency_ms) is not None:
            self.metrics.rollbacks.inc()

    async def _answer(self, target: LoadedVersion, data: Any) -> tuple[pd.DataFrame, np.ndarray]:
        """The prepared frame and the predictions of ``target`` for ``data``."""
        data = with_online_features(self.pool.workspace, target.model, data)
        if self.batcher is not None and target.model.transform is None:
            records = plain_records(target.model.signature, data)
            if records is not None:  # plain values: validated and framed with the batch
                return await self._batched_records(target, records)
        try:
            frame = await self._prepare(target.model, data)
        except TransformError as exc:
            raise self._transform_failed(target, exc) from exc
        return frame, await self._call(target, frame)

    async def _batched_records(
        self, target: LoadedVersion, records: list[dict[str, Any]]
    ) -> tuple[pd.DataFrame, np.ndarray]:
        assert self.batcher is not None
        run = self._timed(target, functools.partial(_predict_records, target.model))
        try:
            frame, predictions = await self.batcher.submit(
                ("records", id(target.model)), run, records, len(records)
            )
        except SignatureError:
            raise
        except Exception as exc:
            raise self._failed(target, records, exc) from exc
        self.metrics.rows.labels(str(target.version)).inc(len(records))
        return frame, predictions

    def _failed(self, target: LoadedVersion, data: Any, exc: Exception) -> Exception:
        """The error for a model that raised on ``data`` (records or a frame): the
        client's (a :class:`SignatureError` naming the column) when ``data`` has a
        missing value, which models without missing-value support refuse; else the
        model's own failure (HTTP 500)."""
        missing = _first_missing(data)
        if missing is not None:
            column, row = missing
            return SignatureError(
                f"column {column!r} has no value in row {row}, and model version "
                f"{target.version} cannot predict without it ({type(exc).__name__}: "
                f"{_first_line(exc)}); send a value for {column!r}",
                field=column,
            )
        self.metrics.errors.labels("model", str(target.version)).inc()
        return ModelFailedError(
            f"model version {target.version} failed to predict {len(data)} row(s): "
            f"{type(exc).__name__}: {exc}"
        )

    async def _prepare(self, model: Model, data: Any) -> pd.DataFrame:
        """The checked frame (the transform's preprocess applied, when it has one)."""
        if _row_count(data) <= _INLINE_ROWS:
            return model.prepare_request(data)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, model.prepare_request, data)

    async def _call(self, target: LoadedVersion, frame: pd.DataFrame) -> np.ndarray:
        try:
            if self.batcher is not None:
                run = self._timed(target, frames_runner(target.model.predict_frame))
                key = ("frames", id(target.model))  # the batcher's own key for this model
                predictions = await self.batcher.submit(key, run, frame, len(frame))
            else:
                self.metrics.batch_size.observe(len(frame))
                predict = self._timed(target, target.model.predict_frame)
                predictions = await predict_in_thread(predict, frame, self.executor)
        except Exception as exc:  # the model's own failure, not the client's
            raise self._failed(target, frame, exc) from exc
        self.metrics.rows.labels(str(target.version)).inc(len(frame))
        return predictions

    def _timed(self, target: LoadedVersion, call: Callable[[_In], _Out]) -> Callable[[_In], _Out]:
        """``call`` (one call of ``target``'s model, batched or not), counted with its
        time in the statistics when it returns."""
        statistics = self.statistics

        def timed(argument: _In) -> _Out:
            start = time.perf_counter_ns()
            result = call(argument)
            statistics.executed(target.version, ns=time.perf_counter_ns() - start)
            return result

        return timed

    def _log(
        self,
        version: int,
        row_ids: list[str],
        frame: pd.DataFrame,
        predictions: Any,
        now: float,
        event_times: tuple[float | None, ...] | None = None,
        latency_ms: float | None = None,
    ) -> None:
        if self.logger is None:
            return
        try:
            self.logger.log(
                version,
                self.pool.deployment,
                row_ids,
                frame,
                predictions,
                now,
                event_times=event_times,
                latency_ms=latency_ms,
            )
        except Exception:  # logging must never fail a request
            log.exception("could not queue predictions for logging")

    def _mirror_later(
        self,
        shadow: LoadedVersion,
        data: Any,
        row_ids: list[str],
        now: float,
        event_times: tuple[float | None, ...] | None = None,
    ) -> Callable[[], Awaitable[None]]:
        async def mirror() -> None:
            version = str(shadow.version)
            start = time.perf_counter_ns()
            try:
                loop = asyncio.get_running_loop()
                frame = await loop.run_in_executor(
                    self.executor, shadow.model.prepare_request, data
                )
                predictions = await predict_in_thread(
                    shadow.model.predict_frame, frame, self.executor
                )
            except Exception as exc:  # a shadow's failure is recorded, never returned
                log.warning("shadow version %s failed: %s", version, exc)
                self.metrics.shadow.labels(version, "error").inc()
                return
            self.metrics.shadow.labels(version, "ok").inc()
            latency_ms = (time.perf_counter_ns() - start) / 1e6
            self._log(shadow.version, row_ids, frame, predictions, now, event_times, latency_ms)

        return mirror


def _predict_records(model: Model, payloads: list[list[dict[str, Any]]]) -> list[Any]:
    """One batch of plain records: one frame, one model call, split back per request.
    A compiled model predicts the records as they are; each request's input frame is
    then built only if the prediction log asks for it (:class:`PendingRows`)."""
    from ctloop.serve._batching import split_rows

    flat = [row for rows in payloads for row in rows]
    sizes = [len(rows) for rows in payloads]
    direct = model.predict_plain_records(flat)
    if direct is not None:
        pending = [PendingRows(model.prepare, rows) for rows in payloads]
        return list(zip(pending, split_rows(direct, sizes), strict=True))
    try:
        frame = model.prepare(flat)
    except SignatureError:  # unexpected after the plain check: judge each request alone
        return [_predict_alone(model, rows) for rows in payloads]
    predictions = split_rows(model.predict_frame(frame), sizes)
    frames = FrameRows.split(frame, sizes)  # cut by the log's writer, if it logs them
    return list(zip(frames, predictions, strict=True))


def _predict_alone(model: Model, rows: list[dict[str, Any]]) -> Any:
    try:
        frame = model.prepare(rows)
        return frame, model.predict_frame(frame)
    except Exception as exc:  # handed to this request alone
        return exc


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def _row_ids(request_id: str, rows: int) -> list[str]:
    """The ids of a request's rows in the prediction log: the request id for a one-row
    request, ``<request id>-<row>`` for each row of a larger one."""
    if rows == 1:
        return [request_id]
    return [f"{request_id}-{i}" for i in range(rows)]


def _row_count(data: Any) -> int:
    if isinstance(data, list):
        return len(data)
    if isinstance(data, dict):
        first: Any = next(iter(data.values()), [])
        return len(first) if isinstance(first, list) else 1
    return len(data) if hasattr(data, "__len__") else _INLINE_ROWS + 1


def _first_missing(data: Any) -> tuple[str, int] | None:
    """The first (column, row) without a value in ``data`` (records or a DataFrame)."""
    if isinstance(data, list):
        for row, record in enumerate(data):
            if not isinstance(record, dict):
                continue
            for column, value in record.items():
                if value is None or (isinstance(value, float) and value != value):
                    return str(column), row
        return None
    missing = data.isna()
    for column in data.columns:
        rows = missing[column].to_numpy().nonzero()[0]
        if len(rows):
            return str(column), int(rows[0])
    return None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else "no message"
