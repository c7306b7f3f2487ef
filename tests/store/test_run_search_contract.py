"""``MetadataStore.search_runs`` on every backend against a brute-force answer.

A random workspace (seeded) of runs over three pipelines, two triggers and two users,
each with some of the metrics ``auc``, ``loss`` and ``f1`` logged at several steps, by
the run itself or by one of its executions, with values from a small set (so sorts meet
ties) and start times that repeat (so ties go to ``(started_at, id)``). The expected
page is computed here from ``get_metrics`` and ``list_runs`` alone: the latest value is
:func:`~ctloop.store.metadata.metric_order`'s maximum, runs lacking the sort's metric come
last, newest first. The SQL store's page is also counted (one statement whatever the
page size: the page's ids and total, then its runs) and explained on SQLite (each run's
metric is one indexed row of ``latest_metrics``, never a scan of the points).
"""

from __future__ import annotations

import json
import operator
import os
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from ctloop.store import MetadataStore
from ctloop.store._sql import SqlMetadataStore
from ctloop.store.memory import MemoryMetadataStore
from ctloop.store.metadata import metric_order
from ctloop.store.records import ExecutionRecord, MetricRecord, RunRecord, new_id
from ctloop.store.workspace import Workspace
from tests.fixtures.postgres import PostgresServer
from tests.store.test_metadata_contract import T0, make_execution, make_run

RUNS = 90
KEYS = ("auc", "loss", "f1")
OPS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    "!=": operator.ne,
}


def fill(store: MetadataStore, seed: int = 7) -> None:
    """RUNS runs with random metrics (see the module's text)."""
    rng = random.Random(seed)
    metrics: list[MetricRecord] = []
    for n in range(RUNS):
        started = T0 + timedelta(minutes=rng.randrange(30))
        ended = rng.choice(
            [None, *(timedelta(seconds=s, microseconds=u) for s in (5, 60) for u in (0, 7))]
        )
        run = make_run(
            pipeline=rng.choice(["flights", "taxis", "churn"]),
            trigger=rng.choice(["manual", "nightly"]),
            user=rng.choice(["ada", "bob"]),
            status=rng.choice(["succeeded", "failed"]),
            started_at=started,
            ended_at=None if ended is None else started + ended,
            parameters=random_parameters(rng),
        )
        store.create_run(run)
        execution: ExecutionRecord = make_execution(run.id)
        store.create_execution(execution)
        moment = T0 + timedelta(hours=1, seconds=n * 100)
        for key in KEYS:
            if rng.random() < 0.25:
                continue  # this run lacks the metric
            for _ in range(rng.randrange(1, 5)):
                moment += timedelta(seconds=1)
                metrics.append(
                    MetricRecord(
                        run.id,
                        key,
                        rng.choice([0.1, 0.2, 0.5, 0.7, 0.9]),
                        step=rng.choice([None, 0, 1, 2, 3]),
                        execution_id=rng.choice([None, execution.id, execution.id]),
                        timestamp=moment,
                    )
                )
    store.log_batch(metrics=metrics)


def random_parameters(rng: random.Random) -> dict[str, Any]:
    """Parameters from small sets: ``lr`` always numbers (some written as strings),
    ``model`` text, ``mixed`` numbers, text, booleans, lists and nulls; each may be
    missing."""
    choices: dict[str, list[Any]] = {
        "lr": [0.1, 0.01, 1, 3, "0.5", " 2 ", "1e-2"],
        "model": ["ridge", "lasso", "Ridge", "tree-2"],
        "mixed": [1, 2.5, "2.5", "ridge", True, False, None, [1, 2], "10"],
    }
    return {k: rng.choice(v) for k, v in choices.items() if rng.random() < 0.8}


def expected(
    store: MetadataStore,
    *,
    pipeline: str | None = None,
    status: str | None = None,
    trigger: str | None = None,
    user: str | None = None,
    where: list[tuple[str, str, float]] | None = None,
    param_where: list[tuple[str, str, str]] | None = None,
    sort: tuple[str, str, bool] = ("column", "started_at", True),
    offset: int = 0,
    limit: int | None = None,
    started_after: datetime | None = None,
) -> tuple[list[str], int]:
    """The ids of the page and the total, found the slow way."""
    runs: list[RunRecord] = [
        run
        for run in store.list_runs()
        if pipeline in (None, run.pipeline)
        and status in (None, run.status)
        and trigger in (None, run.trigger)
        and user in (None, run.user)
        and (started_after is None or run.started_at > started_after)
    ]

    def latest(run: RunRecord, key: str) -> float | None:
        points = store.get_metrics(run.id, key)
        return max(points, key=metric_order).value if points else None

    for key, op, number in where or []:
        runs = [r for r in runs if (v := latest(r, key)) is not None and OPS[op](v, number)]
    for key, op, wanted in param_where or []:
        runs = [r for r in runs if param_is(r.parameters.get(key), op, wanted)]
    kind, key, descending = sort
    values: dict[str, Any] = {run.id: sort_value(run, kind, key, latest) for run in runs}
    if kind == "param" and not all(isinstance(v, float) for v in values.values() if v is not None):
        values = {r.id: as_text(r.parameters.get(key)) for r in runs}  # one is not a number
    present = sorted(
        (r for r in runs if values[r.id] is not None),
        key=lambda r: (values[r.id], r.started_at, r.id),
        reverse=descending,
    )
    absent = sorted(
        (r for r in runs if values[r.id] is None),
        key=lambda r: (r.started_at, r.id),
        reverse=True,
    )
    ordered = [r.id for r in present + absent]
    return ordered[offset : None if limit is None else offset + limit], len(ordered)


def as_number(value: Any) -> float | None:
    """A JSON number, or a string Python reads as one; booleans are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def as_text(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else json.dumps(value)


def param_is(value: Any, op: str, wanted: str) -> bool:
    """Numbers when both are, else text, where only = and != can hold."""
    left, right = as_number(value), as_number(wanted)
    if value is None:
        return False
    if left is not None and right is not None:
        return bool(OPS[op](left, right))
    return op in ("=", "!=") and bool(OPS[op](as_text(value), wanted))


def sort_value(run: RunRecord, kind: str, key: str, latest: Any) -> Any:
    if kind == "metric":
        return latest(run, key)
    if kind == "param":
        value = run.parameters.get(key)
        return as_number(value) if as_number(value) is not None else as_text(value)
    if key == "duration":
        return None if run.ended_at is None else (run.ended_at - run.started_at).total_seconds()
    return getattr(run, key)


SEARCHES: list[dict[str, Any]] = [
    {},
    {"limit": 10},
    {"sort": ("metric", "auc", True), "limit": 25},
    {"sort": ("metric", "auc", False), "offset": 25, "limit": 25},
    {"sort": ("metric", "loss", True), "offset": 60, "limit": 25},  # into the absent ones
    {"sort": ("metric", "nothing", True), "limit": 10},
    {"sort": ("column", "pipeline", False), "limit": 30},
    {"sort": ("column", "status", True), "offset": 5, "limit": 30},
    {"sort": ("column", "trigger", False)},
    {"sort": ("column", "started_at", False), "limit": 20},
    {"where": [("auc", ">", 0.5)], "limit": 15},
    {"where": [("auc", ">=", 0.5), ("loss", "<", 0.7)], "sort": ("metric", "f1", False)},
    {"where": [("f1", "=", 0.7)], "sort": ("metric", "auc", True), "offset": 3, "limit": 4},
    {"where": [("f1", "!=", 0.7), ("f1", "<=", 0.9)], "pipeline": "taxis"},
    {"where": [("auc", ">", 2.0)]},
    {"pipeline": "flights", "status": "failed", "sort": ("metric", "loss", False)},
    {"trigger": "nightly", "user": "bob", "sort": ("metric", "auc", True), "limit": 5},
    {"sort": ("metric", "auc", True), "offset": 500, "limit": 10},  # past the end
    {"where": [("loss", "<", 0.5)], "offset": 500, "limit": 10},
    {"sort": ("column", "duration", True), "limit": 40},
    {"sort": ("column", "duration", False), "offset": 30},
    {"sort": ("param", "lr", True), "limit": 30},  # numbers, some written as text
    {"sort": ("param", "lr", False), "offset": 50},
    {"sort": ("param", "model", False), "limit": 30},  # text
    {"sort": ("param", "mixed", True)},  # not all numbers: every value as text
    {"sort": ("param", "nothing", True), "limit": 10},
    {"param_where": [("lr", ">", "0.05")], "sort": ("param", "lr", False)},
    {"param_where": [("lr", "<=", "2"), ("model", "=", "ridge")]},
    {"param_where": [("model", "!=", "ridge")], "sort": ("column", "duration", True)},
    {"param_where": [("model", ">", "a")]},  # text: only = and != hold
    {"param_where": [("mixed", "=", "2.5")], "limit": 20},  # 2.5 and "2.5"
    {"param_where": [("mixed", "=", "true")]},  # a boolean's text
    {"param_where": [("mixed", "!=", "ridge")], "where": [("auc", ">", 0.1)]},
    {"param_where": [("mixed", ">=", "2")], "pipeline": "taxis", "sort": ("metric", "f1", True)},
    {"param_where": [("mixed", "=", "[1, 2]")]},  # a list's JSON
    {"started_after": T0 + timedelta(minutes=20)},  # the newer runs (times repeat)
    {"started_after": T0 + timedelta(minutes=25), "where": [("auc", ">", 0.1)], "limit": 5},
    {"started_after": T0 + timedelta(minutes=29, seconds=30)},  # none
    {"started_after": T0 + timedelta(minutes=20), "sort": ("metric", "loss", False), "offset": 3},
    {"pipeline": "taxis", "sort": ("metric", "f1", True), "offset": 20, "limit": 7},  # both
]


class RunSearchContract:
    """The tests every backend passes; a subclass gives ``store`` (filled once)."""

    def test_the_page_and_total_match_a_brute_force_search(self, filled: MetadataStore) -> None:
        for search in SEARCHES:
            runs, total = filled.search_runs(**search)
            assert ([run.id for run in runs], total) == expected(filled, **search), search

    def test_pages_walk_the_whole_order_once(self, filled: MetadataStore) -> None:
        sort = ("metric", "f1", False)
        seen: list[str] = []
        for offset in range(0, RUNS + 7, 7):
            page, total = filled.search_runs(sort=sort, offset=offset, limit=7)
            assert total == RUNS
            seen += [run.id for run in page]
        assert seen == expected(filled, sort=sort)[0]
        assert len(set(seen)) == RUNS

    def test_records_are_whole_runs(self, filled: MetadataStore) -> None:
        runs, _ = filled.search_runs(sort=("metric", "auc", True), limit=3)
        assert runs == [filled.get_run(run.id) for run in runs]

    def test_point_by_point_writes_keep_the_latest_value(self, filled: MetadataStore) -> None:
        """Points written one by one in a shuffled order (own and executions' values,
        steps, equal times) leave the same latest value as the brute-force ranking."""
        rng = random.Random(11)
        runs = [replace(make_run(), id=new_id(), started_at=T0 - timedelta(days=2)) for _ in "abc"]
        points: list[MetricRecord] = []
        for run in runs:
            filled.create_run(run)
            execution = make_execution(run.id)
            filled.create_execution(execution)
            for n in range(12):
                points.append(
                    MetricRecord(
                        run.id,
                        "point_by_point",
                        float(n),
                        step=rng.choice([None, 0, 1, 2]),
                        execution_id=rng.choice([None, execution.id]),
                        timestamp=T0 + timedelta(seconds=rng.choice([1, 2, 3])),
                    )
                )
        rng.shuffle(points)
        try:
            for point in points:
                filled.log_batch(metrics=[point])
            ids = [run.id for run in runs]
            wanted = {  # of equal points, the one written last (get_metrics lists it last)
                run.id: max(
                    reversed(filled.get_metrics(run.id, "point_by_point")), key=metric_order
                ).value
                for run in runs
            }
            assert filled.latest_metric_values("point_by_point", ids) == wanted
            page, _ = filled.search_runs(sort=("metric", "point_by_point", True), limit=3)
            assert [r.id for r in page] == sorted(ids, key=lambda i: (wanted[i], i), reverse=True)
        finally:
            filled.delete_runs(ids)
        assert filled.latest_metric_values("point_by_point") == {}

    @pytest.mark.parametrize(
        ("arguments", "message"),
        [
            ({"where": [("auc", "~", 0.5)]}, "unknown comparison '~'"),
            ({"sort": ("column", "pid", True)}, "cannot sort runs by column 'pid'"),
            ({"sort": ("param", "", True)}, "cannot sort runs by param ''"),
            ({"param_where": [("lr", "~", "1")]}, "unknown comparison '~'"),
            ({"offset": 2**70, "limit": 5}, "offset 1180591620717411303424 is out of range"),
            ({"offset": -1}, "offset -1 is out of range"),
        ],
    )
    def test_a_bad_condition_or_sort_names_it(
        self, filled: MetadataStore, arguments: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            filled.search_runs(**arguments)


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlMetadataStore]:
    path: Path = tmp_path_factory.mktemp("search") / "metadata.db"
    store = SqlMetadataStore(f"sqlite:///{path}")
    fill(store)
    yield store
    store.close()


@pytest.fixture(scope="module")
def memory_store() -> Iterator[MemoryMetadataStore]:
    store = MemoryMetadataStore()
    fill(store)
    yield store
    store.close()


class TestSqliteRunSearch(RunSearchContract):
    @pytest.fixture
    def filled(self, sqlite_store: SqlMetadataStore) -> MetadataStore:
        return sqlite_store

    @pytest.mark.parametrize("limit", [1, 50])
    def test_a_page_is_two_statements(self, filled: MetadataStore, limit: int) -> None:
        assert isinstance(filled, SqlMetadataStore)
        statements: list[str] = []

        def count(*args: Any) -> None:
            statements.append(args[2])

        engine = filled._engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            filled.search_runs(
                where=[("auc", ">", 0.1), ("loss", "<", 0.9)],
                sort=("metric", "f1", True),
                offset=2,
                limit=limit,
            )
        finally:
            event.remove(engine, "before_cursor_execute", count)
        queries = [s for s in statements if s.strip().upper() not in ("BEGIN", "COMMIT")]
        assert len(queries) == 2, queries  # the page's ids and total, then its runs

    def test_each_run_s_metric_is_one_indexed_row(self, filled: MetadataStore) -> None:
        assert isinstance(filled, SqlMetadataStore)
        statements: list[tuple[str, Any]] = []

        def keep(*args: Any) -> None:
            statements.append((args[2], args[3]))

        engine = filled._engine
        event.listen(engine, "before_cursor_execute", keep)
        try:
            filled.search_runs(where=[("auc", ">", 0.1)], sort=("metric", "f1", True), limit=5)
        finally:
            event.remove(engine, "before_cursor_execute", keep)
        sql, parameters = next(s for s in statements if s[0].lstrip().startswith("SELECT"))
        with engine.connect() as connection:
            plan = [
                row[3]
                for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters)
            ]
        lookups = [step for step in plan if "where_0" in step or "sorted_by" in step]
        assert len(lookups) == 2, plan  # one row of latest_metrics per run and metric
        # by its primary key (key, run_id), one metric's rows together, or a condition's
        # range of (key, value, run_id)
        by = ("PRIMARY KEY (key=? AND run_id=?)", "ix_latest_metrics_key_value_run_id (key=? AND")
        assert all(step.startswith("SEARCH") and any(b in step for b in by) for step in lookups)
        assert not any(" metrics" in step for step in plan), plan  # never the points

    def test_the_latest_value_is_the_run_s_own_then_the_highest_step(
        self, filled: MetadataStore
    ) -> None:
        run = replace(make_run(), id=new_id(), started_at=T0 - timedelta(days=1))
        filled.create_run(run)
        try:
            execution = make_execution(run.id)
            filled.create_execution(execution)
            filled.log_batch(
                metrics=[
                    MetricRecord(run.id, "zz", 3.0, step=9, execution_id=execution.id),
                    MetricRecord(run.id, "zz", 1.0, step=1),
                    MetricRecord(run.id, "zz", 2.0, step=0),
                ]
            )
            page, total = filled.search_runs(where=[("zz", "=", 1.0)])
            assert ([r.id for r in page], total) == ([run.id], 1)
        finally:
            filled.delete_runs([run.id])


@pytest.mark.postgres
class TestPostgresRunSearch(RunSearchContract):
    @pytest.fixture(scope="class")
    @classmethod
    def filled(cls, postgres_server: PostgresServer) -> Iterator[MetadataStore]:
        name = f"search_{os.getpid()}"
        store = SqlMetadataStore(postgres_server.create_database(name))
        fill(store)
        yield store
        store.close()
        postgres_server.drop_database(name)


class TestMemoryRunSearch(RunSearchContract):
    @pytest.fixture
    def filled(self, memory_store: MemoryMetadataStore) -> MetadataStore:
        return memory_store


class TestRemoteRunSearch(RunSearchContract):
    @pytest.fixture
    def filled(self, remote_workspace: Workspace) -> Iterator[MetadataStore]:
        fill(remote_workspace.metadata)
        yield remote_workspace.metadata
