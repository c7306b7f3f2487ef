"""Searching runs: filters, metric conditions, a sort and a page, done by the server.

``GET /api/v1/runs/search`` and the web UI's runs page both call :func:`search_runs`.
A condition reads ``KEY OP NUMBER`` on a run's latest metric value, several joined by
``and`` (``auc > 0.7 and loss <= 0.3``), or ``params.KEY OP VALUE`` on a run parameter
(``params.model = ridge``, ``params.degree >= 2``); a sort is a column (``started_at``,
``duration``, ``pipeline``, ``status``), ``metrics.KEY`` or ``params.KEY``, descending
with a leading ``-``. Filters, conditions and the sort are done by the store
(:meth:`~ctloop.store.metadata.MetadataStore.search_runs`: one SQL query for the page and
its total), then each metric column of the page is one query over the page's ids.

>>> parse_conditions("auc > 0.7 and metrics.loss<=0.3")
[Condition(key='auc', op='>', value=0.7), Condition(key='loss', op='<=', value=0.3)]
>>> parse_conditions("params.model = ridge")
[Condition(key='model', op='=', value='ridge', on='param')]
>>> parse_sort("-metrics.auc"), parse_sort("params.degree")
(('metric', 'auc', True), ('param', 'degree', False))
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ctloop.server._deps import render
from ctloop.server._errors import BadRequestError
from ctloop.store.metadata import SEARCH_COLUMNS, SEARCH_OPS, MetadataStore, param_holds
from ctloop.store.records import RunRecord

__all__ = ["Condition", "parse_conditions", "parse_sort", "search_runs"]

_CONDITION = re.compile(r"^\s*(metrics\.|params\.)?([\w./-]+)\s*(>=|<=|==|!=|>|<|=)\s*(\S.*?)\s*$")
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Condition:
    """A run's latest value of metric ``key`` (``on="metric"``) or its parameter ``key``
    (``on="param"``) compared with ``value`` by ``op``."""

    key: str
    op: str
    value: float | str
    on: str = field(default="metric", repr=False)

    def __repr__(self) -> str:
        on = "" if self.on == "metric" else f", on={self.on!r}"
        return f"Condition(key={self.key!r}, op={self.op!r}, value={self.value!r}{on})"

    def holds(self, found: Any) -> bool:
        """Whether a run with ``found`` (``None``: no such metric or parameter) meets the
        condition; a parameter is compared as a number when both sides are numbers, else
        as text (then only ``=`` and ``!=`` hold): see
        :func:`~ctloop.store.metadata.param_holds`."""
        if self.on == "param":
            return param_holds(found, self.op, str(self.value))
        return found is not None and bool(SEARCH_OPS[self.op](found, self.value))


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
        prefix, key, op, raw = found.groups()
        if prefix == "params.":
            conditions.append(Condition(key, op, raw.strip("'\""), on="param"))
            continue
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
    for prefix, kind in (("metrics.", "metric"), ("params.", "param")):
        if name.startswith(prefix) and len(name) > len(prefix):
            return kind, name[len(prefix) :], descending
    if name in SEARCH_COLUMNS:
        return "column", name, descending
    raise BadRequestError(
        f"cannot sort runs by {raw!r}; sort by one of {', '.join(sorted(SEARCH_COLUMNS))}, "
        "metrics.KEY or params.KEY, with a leading '-' for descending",
        field="sort",
    )


def search_runs(
    store: MetadataStore,
    *,
    pipeline: str | None = None,
    status: str | None = None,
    trigger: str | None = None,
    user: str | None = None,
    where: str | None = None,
    sort: str | None = None,
    offset: int = 0,
    limit: int = 50,
    metrics: Sequence[str] = (),
    params: Sequence[str] = (),
    exact_total: bool = True,
    started_after: datetime | None = None,
) -> dict[str, Any]:
    """One page of the runs that pass the filters and conditions, in the sort's order,
    each with its latest value of ``metrics`` (and of the metrics the search names) and
    its value of ``params``.

    Without ``exact_total``, a search the store can page itself (newest first, filtered by
    pipeline and status only) reads just the runs up to the page's end: ``total`` is then
    a lower bound and ``total_exact`` says so. ``started_after`` keeps the runs started
    later than that time (a time without a zone is UTC): what a page asks to learn of runs
    newer than its first row."""
    conditions, order = parse_conditions(where), parse_sort(sort)
    if started_after is not None and started_after.tzinfo is None:
        started_after = started_after.replace(tzinfo=UTC)
    newest_first = order == ("column", "started_at", True)
    quick = not (conditions or trigger or user or started_after)
    if not exact_total and newest_first and quick:
        runs = store.list_runs(pipeline=pipeline, status=status, limit=offset + limit + 1)
        shown, total = runs[offset : offset + limit], len(runs)
        exact = total <= offset + limit
        return _page(
            store,
            shown,
            total if exact else offset + limit,
            exact,
            offset,
            limit,
            metrics,
            params,
            [],
            order,
        )
    shown, total = store.search_runs(
        pipeline=pipeline,
        status=status,
        trigger=trigger,
        user=user,
        where=[(c.key, c.op, float(c.value)) for c in conditions if c.on == "metric"],
        param_where=[(c.key, c.op, str(c.value)) for c in conditions if c.on == "param"],
        sort=order,
        offset=offset,
        limit=limit,
        started_after=started_after,
    )
    return _page(store, shown, total, True, offset, limit, metrics, params, conditions, order)


def _page(
    store: MetadataStore,
    shown: list[RunRecord],
    total: int,
    exact: bool,
    offset: int,
    limit: int,
    metrics: Sequence[str],
    params: Sequence[str],
    conditions: list[Condition],
    order: tuple[str, str, bool],
) -> dict[str, Any]:
    """The page ``shown`` (at ``offset`` of ``total`` runs) with its columns."""
    keys = list(dict.fromkeys([*metrics, *(c.key for c in conditions if c.on == "metric")]))
    if order[0] == "metric" and order[1] not in keys:
        keys.append(order[1])
    param_keys = list(dict.fromkeys([*params, *(c.key for c in conditions if c.on == "param")]))
    if order[0] == "param" and order[1] not in param_keys:
        param_keys.append(order[1])
    ids = [run.id for run in shown]
    columns = {key: store.latest_metric_values(key, ids) for key in keys} if ids else {}
    return {
        "items": [
            {
                **render(run),
                "duration_s": run.duration_s,
                "metrics": {k: columns[k][run.id] for k in keys if run.id in columns.get(k, {})},
                "params": {k: run.parameters[k] for k in param_keys if k in run.parameters},
            }
            for run in shown
        ],
        "total": total,
        "total_exact": exact,
        "offset": offset,
        "limit": limit,
        "metrics": keys,
        "params": param_keys,
        "next_offset": offset + limit if offset + limit < total or not exact else None,
    }
