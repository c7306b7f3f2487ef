"""Online features: the latest materialized values of entity keys, read from the
workspace's online store in one query per view (one round trip on Redis), with
on-demand features computed at read time and values older than a view's ttl left out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ctloop.errors import FeatureError
from ctloop.features._definitions import FeatureService, FeatureView, OnDemandFeatureView
from ctloop.features._stored import Selection, Workspace, select_features

__all__ = ["OnlineRead", "get_online_features", "online_features", "read_online"]

_SEPARATOR = "\x1f"


def _key_text(value: object) -> str:
    # the text DuckDB's CAST(... AS VARCHAR) gives, as materialization stores keys
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def get_online_features(
    workspace: Workspace,
    features: str | FeatureService | Sequence[str],
    entity_rows: Sequence[Mapping[str, Any]],
    *,
    full_feature_names: bool = False,
) -> dict[str, list[Any]]:
    """The latest online value of each feature for each entity row, as columns: the
    rows' own columns first, then each feature (``view__feature`` with
    ``full_feature_names``). A key never materialized, or whose value is older than its
    view's ttl, gives ``None``.

    ``features`` is the name of an applied feature service, a :class:`FeatureService`,
    or references ``"view:feature"`` (or ``"view"`` for all of a view's features) to
    applied views.

    >>> from ctloop.store.workspace import Workspace
    >>> with Workspace.in_memory() as ws:
    ...     get_online_features(ws, [], [{"origin": "EWR"}])
    {'origin': ['EWR']}
    """
    return online_features(workspace, select_features(workspace, features), entity_rows,
                           full_feature_names=full_feature_names)  # fmt: skip


def online_features(
    workspace: Workspace,
    selection: Selection,
    entity_rows: Sequence[Mapping[str, Any]],
    *,
    full_feature_names: bool = False,
) -> dict[str, list[Any]]:
    """:func:`get_online_features` of an already resolved :class:`Selection` (what a
    server resolves once and reads many times)."""
    return read_online(
        workspace, selection, entity_rows, full_feature_names=full_feature_names, statuses=False
    ).columns


@dataclass(frozen=True)
class OnlineRead:
    """What one online read found: ``columns`` (the rows' own columns, then each
    feature), and for each feature column its ``statuses`` (:data:`PRESENT`,
    :data:`NOT_FOUND`, :data:`OUTSIDE_MAX_AGE` or :data:`NULL_VALUE`, Feast's words) and
    the event time of each value, in microseconds since the epoch (``0`` where there is
    none, and for on-demand features, computed at read time)."""

    columns: dict[str, list[Any]]
    features: tuple[str, ...]
    statuses: dict[str, list[str]]
    event_us: dict[str, list[int]]


PRESENT, NOT_FOUND, OUTSIDE_MAX_AGE, NULL_VALUE = (
    "PRESENT", "NOT_FOUND", "OUTSIDE_MAX_AGE", "NULL_VALUE",
)  # fmt: skip


def read_online(
    workspace: Workspace,
    selection: Selection,
    entity_rows: Sequence[Mapping[str, Any]],
    *,
    full_feature_names: bool = False,
    statuses: bool = True,
) -> OnlineRead:
    """The latest values of ``selection`` for ``entity_rows``, in one read of the online
    store, with each value's status and event time (an :class:`OnlineRead`; with
    ``statuses=False`` its ``statuses`` and ``event_us`` are left empty)."""
    rows = list(entity_rows)
    keys = {view.name: _entity_keys(view, rows) for view in selection.lookups}
    stored = workspace.online.read(keys) if keys else {}
    now_us = int(datetime.now(UTC).timestamp() * 1_000_000)
    values = {view.name: _decode(view, stored[view.name], now_us) for view in selection.lookups}
    for view in selection.on_demand:
        values[view.name] = _on_demand(view, rows, values)
    out: dict[str, list[Any]] = {}
    for row in rows:
        for column in row:
            out.setdefault(column, [])
    for column in out:
        out[column] = [row.get(column) for row in rows]
    found = (
        {view.name: _found(view, stored[view.name], now_us) for view in selection.lookups}
        if statuses
        else {}
    )
    source: dict[str, str] = {}
    status: dict[str, list[str]] = {}
    event_us: dict[str, list[int]] = {}
    for view_name, feature in selection.wanted:
        name = f"{view_name}__{feature}" if full_feature_names else feature
        if name in source:
            raise FeatureError(
                f"feature views {source[name]!r} and {view_name!r} both have a feature "
                f"{name!r}; pass full_feature_names=True to name them view__feature"
            )
        source[name] = view_name
        out[name] = got = values[view_name][feature]
        if not statuses:
            continue
        row_status, event_us[name] = found.get(view_name, ([PRESENT] * len(rows), [0] * len(rows)))
        status[name] = [
            NULL_VALUE if s == PRESENT and _is_null(v) else s
            for s, v in zip(row_status, got, strict=True)
        ]
    return OnlineRead(out, tuple(source), status, event_us)


def _is_null(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _found(view: FeatureView, stored: Sequence[Any], now_us: int) -> tuple[list[str], list[int]]:
    """Each stored row's status and event time."""
    ttl_us = None if view.ttl is None else int(view.ttl.total_seconds() * 1_000_000)
    statuses, events = [], []
    for value in stored:
        if value is None:
            statuses.append(NOT_FOUND)
            events.append(0)
        else:
            expired = ttl_us is not None and now_us - value[0] > ttl_us
            statuses.append(OUTSIDE_MAX_AGE if expired else PRESENT)
            events.append(value[0])
    return statuses, events


def _entity_keys(view: FeatureView, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    join_keys = view.join_keys
    try:
        if len(join_keys) == 1:
            [only] = join_keys
            return [_key_text(row[only]) for row in rows]
        return [_SEPARATOR.join(_key_text(row[k]) for k in join_keys) for row in rows]
    except KeyError as exc:
        i, row = next((i, r) for i, r in enumerate(rows) if exc.args[0] not in r)
        raise FeatureError(
            f"entity row {i} has no {exc.args[0]!r}, a join key of feature view "
            f"{view.name!r} (it has {', '.join(row) or 'no columns'}); add it"
        ) from None


def _parse(payloads: list[str]) -> list[list[Any]]:
    """The JSON arrays, parsed in one call (orjson; json where a value is NaN)."""
    import orjson

    text = "[" + ",".join(payloads) + "]"
    try:
        parsed: list[list[Any]] = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = json.loads(text)
    return parsed


def _decode(view: FeatureView, stored: Sequence[Any], now_us: int) -> dict[str, list[Any]]:
    ttl_us = None if view.ttl is None else int(view.ttl.total_seconds() * 1_000_000)
    live = [v is not None and (ttl_us is None or now_us - v[0] <= ttl_us) for v in stored]
    parsed = iter(_parse([v[1] for v, ok in zip(stored, live, strict=True) if ok]))
    empty = [None] * len(view.fields)
    rows = [next(parsed) if ok else empty for ok in live]
    columns = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in view.fields]
    for i, field in enumerate(view.fields):
        if field.dtype == "timestamp":
            columns[i] = [
                None if t is None else datetime.fromisoformat(t).replace(tzinfo=UTC)
                for t in columns[i]
            ]
    return dict(zip(view.feature_names, columns, strict=True))


def _column(pa: Any, values: list[Any], kind: Any) -> Any:
    """``values`` as an Arrow array of ``kind``; text (as typed on a command line) is
    parsed, so ``"700"`` is a valid int request field."""
    array = pa.array(values)
    if kind is None or array.type == kind:
        return array
    try:
        return array.cast(kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise FeatureError(
            f"request values {values[:3]!r} cannot be read as {kind}: {exc}; fix the entity rows"
        ) from exc


def _on_demand(
    view: OnDemandFeatureView,
    rows: Sequence[Mapping[str, Any]],
    values: dict[str, dict[str, list[Any]]],
) -> dict[str, list[Any]]:
    import pyarrow as pa

    from ctloop.features._on_demand import _ARROW, run_on_demand

    if not rows:
        return {name: [] for name in view.feature_names}
    typed = {f.name: pa.type_for_alias(_ARROW[f.dtype]) for f in view.request}
    keys = [k for source in view.inputs for k in source.join_keys]
    columns = [c for c in dict.fromkeys([*keys, *typed]) if all(c in row for row in rows)]
    entities = pa.table({c: _column(pa, [row[c] for row in rows], typed.get(c)) for c in columns})
    joined = {
        source.name: pa.table(
            {f.name: pa.array(values[source.name][f.name], type=pa.type_for_alias(_ARROW[f.dtype]))
             for f in source.fields}
        )
        for source in view.inputs
    }  # fmt: skip
    return run_on_demand(view, entities, joined).to_pydict()
