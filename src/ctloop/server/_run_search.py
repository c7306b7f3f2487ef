"""Searching runs: filters, metric conditions, a sort and a page, done by the server.

``GET /api/v1/runs/search`` and the web UI's runs page both call :func:`search_runs`.
A condition reads ``KEY OP NUMBER`` on a run's latest metric value, several joined by
``and`` (``auc > 0.7 and loss <= 0.3``); a sort is a column (``started_at``,
``duration``, ``pipeline``, ``status``) or ``metrics.KEY``, descending with a leading
``-``. The store answers the runs in one query and each metric in one query, so a page
over 10,000 runs costs a handful of queries.

>>> parse_conditions("auc > 0.7 and metrics.loss<=0.3")
[Condition(key='auc', op='>', value=0.7), Condition(key='loss', op='<=', value=0.3)]
>>> parse_sort("-metrics.auc")
('metric', 'auc', True)
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ctloop.server._deps import render
from ctloop.server._errors import BadRequestError
from ctloop.store.metadata import MetadataStore
from ctloop.store.records import RunRecord

__all__ = ["Condition", "parse_conditions", "parse_sort", "search_runs"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    "==": operator.eq,
    "!=": operator.ne,
}
_CONDITION = re.compile(r"^\s*(?:metrics\.)?([\w./-]+)\s*(>=|<=|==|!=|>|<|=)\s*(\S+)\s*$")
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)
#: the run columns a search sorts by, with the value each run sorts on
_COLUMNS: dict[str, Callable[[RunRecord], Any]] = {
    "started_at": lambda run: run.started_at,
    "duration": lambda run: run.duration_s,
    "pipeline": lambda run: run.pipeline,
    "status": lambda run: run.status,
    "trigger": lambda run: run.trigger,
}
#: above this many runs a metric is read for every run at once, not by id
_BY_ID_UP_TO = 500


@dataclass(frozen=True)
class Condition:
    """A run's latest value of metric ``key`` compared with ``value`` by ``op``."""

    key: str
    op: str
    value: float

    def holds(self, found: float | None) -> bool:
        """Whether a run with ``found`` (``None``: no such metric) meets the condition."""
        return found is not None and _OPS[self.op](found, self.value)


def parse_conditions(text: str | None) -> list[Condition]:
    """The conditions of ``text``; a clause that is not ``KEY OP NUMBER`` is a 400."""
    if not text or not text.strip():
        return []
    conditions = []
    for clause in _AND.split(text.strip()):
        found = _CONDITION.match(clause)
        if found is None:
            raise BadRequestError(
                f"cannot read the condition {clause.strip()!r}; write a metric, an operator "
                "(> >= < <= = !=) and a number, e.g. 'auc > 0.7', joined by 'and'",
                field="where",
            )
        key, op, raw = found.groups()
        try:
            value = float(raw)
        except ValueError:
            raise BadRequestError(
                f"the condition {clause.strip()!r} compares with {raw!r}, which is not a "
                "number; write e.g. 'auc > 0.7'",
                field="where",
            ) from None
        conditions.append(Condition(key, op, value))
    return conditions


def parse_sort(text: str | None) -> tuple[str, str, bool]:
    """``(kind, key, descending)`` of a sort: kind ``column`` or ``metric``."""
    raw = (text or "-started_at").strip()
    descending, name = raw.startswith("-"), raw.lstrip("-")
    if name.startswith("metrics.") and len(name) > len("metrics."):
        return "metric", name[len("metrics.") :], descending
    if name in _COLUMNS:
        return "column", name, descending
    raise BadRequestError(
        f"cannot sort runs by {raw!r}; sort by one of {', '.join(sorted(_COLUMNS))} or "
        "metrics.KEY, with a leading '-' for descending",
        field="sort",
    )


def search_runs(
    store: MetadataStore,
    *,
    pipeline: str | None = None,
    status: str | None = None,
    trigger: str | None = None,
    where: str | None = None,
    sort: str | None = None,
    offset: int = 0,
    limit: int = 50,
    metrics: Sequence[str] = (),
) -> dict[str, Any]:
    """One page of the runs that pass the filters and conditions, in the sort's order,
    each with its latest value of ``metrics`` (and of the metrics the search names)."""
    conditions, order = parse_conditions(where), parse_sort(sort)
    runs = store.list_runs(pipeline=pipeline, status=status)
    if trigger:
        runs = [run for run in runs if run.trigger == trigger]
    for condition in conditions:
        values = _metric_values(store, condition.key, runs)
        runs = [run for run in runs if condition.holds(values.get(run.id))]
    runs = _sorted(store, runs, order)
    shown = runs[offset : offset + limit]
    keys = list(dict.fromkeys([*metrics, *(c.key for c in conditions)]))
    if order[0] == "metric" and order[1] not in keys:
        keys.append(order[1])
    ids = [run.id for run in shown]
    columns = {key: store.latest_metric_values(key, ids) for key in keys} if ids else {}
    return {
        "items": [
            {
                **render(run),
                "duration_s": run.duration_s,
                "metrics": {k: columns[k][run.id] for k in keys if run.id in columns.get(k, {})},
            }
            for run in shown
        ],
        "total": len(runs),
        "offset": offset,
        "limit": limit,
        "metrics": keys,
        "next_offset": offset + limit if offset + limit < len(runs) else None,
    }


def _metric_values(store: MetadataStore, key: str, runs: list[RunRecord]) -> dict[str, float]:
    by_id = len(runs) <= _BY_ID_UP_TO
    return store.latest_metric_values(key, [r.id for r in runs] if by_id else None)


def _sorted(
    store: MetadataStore, runs: list[RunRecord], order: tuple[str, str, bool]
) -> list[RunRecord]:
    """Runs in the sort's order; runs without a value (no such metric, still running)
    come last either way, newest first among themselves."""
    kind, key, descending = order
    if kind == "metric":
        values: dict[str, Any] = _metric_values(store, key, runs)
    else:
        values = {run.id: _COLUMNS[key](run) for run in runs}
    present = [run for run in runs if values.get(run.id) is not None]
    absent = [run for run in runs if values.get(run.id) is None]
    present.sort(key=lambda run: (values[run.id], _newest(run)), reverse=descending)
    return present + absent


def _newest(run: RunRecord) -> tuple[datetime, str]:
    return (run.started_at, run.id)
