"""Every list of the API costs a fixed number of SQL statements a page, whatever the page
size: rows are read with joined queries (or ``IN`` lists), never one query per row. Runs
and the audit log are cut in SQL (``LIMIT`` after the cursor); a model's versions, the
artifacts and an artifact's lineage are read in one to three queries and cut after.
A cursor continues its list exactly where the previous page ended.

Counted with an SQLAlchemy ``before_cursor_execute`` listener around one request of a
real server on 127.0.0.1 over SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from ctloop.server import create_app
from ctloop.store._audit import AuditDraft
from ctloop.store.records import EventRecord, ExecutionRecord, MetricRecord, new_id
from ctloop.store.workspace import Workspace
from tests.server._data import make_run, store_artifact
from tests.server.conftest import LiveServer, role_keys, start

ROWS = 120
"""Rows of each kind in the workspace: more than the largest page asked for."""
SMALL, LARGE = 5, 100


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server over a workspace with ROWS runs (each with metrics), model versions,
    artifacts read by one execution, and audit entries."""
    tmp = tmp_path_factory.mktemp("crowded")
    workspace = Workspace.open(f"sqlite:///{tmp / 'metadata.db'}", artifacts=str(tmp / "art"))
    keys = role_keys(workspace)
    runs = [make_run(i) for i in range(ROWS)]
    store = workspace.metadata
    for run in runs:
        store.create_run(run)
    store.log_batch(metrics=[MetricRecord(r.id, "auc", 0.5, step=s) for r in runs for s in (0, 1)])
    shared = store_artifact(workspace, {"data.parquet": b"PAR1"})
    for i in range(ROWS):
        execution = ExecutionRecord(new_id(), runs[i].id, "train", "train", "c", "k", "succeeded")
        store.create_execution(execution)
        store.add_events([EventRecord(execution.id, shared.id, "input", "data")])
        artifact = store_artifact(workspace, {f"model-{i}.json": b"{}"})
        workspace.registry.register_version("flights", artifact.id, run_id=runs[i].id)
        workspace.audit.append(AuditDraft("ana", "run.tag.set", f"run {runs[i].id}"))
    server, thread, url = start(create_app(workspace))
    try:
        yield LiveServer(url, workspace, keys)
    finally:
        server.should_exit = True
        thread.join(30)
        workspace.close()


def _artifact_id(live: LiveServer) -> str:
    """The artifact every execution read."""
    found = [
        a for a in live.workspace.metadata.list_artifacts() if a.files[0].path == "data.parquet"
    ]
    return found[0].id


#: (list, path, extra parameters); ``{artifact}`` is an artifact read by the execution
LISTS = [
    ("runs", "/runs", {}),
    ("runs of a pipeline", "/runs", {"pipeline": "training"}),
    ("model versions", "/models/flights/versions", {}),
    ("audit", "/audit", {}),
    ("artifacts", "/artifacts", {}),
    ("lineage", "/artifacts/{artifact}/lineage", {"direction": "downstream"}),
]


class Statements:
    """Counts the SQL statements every engine of this process sends (not counting the
    transactions' ``BEGIN``)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def __enter__(self) -> Statements:
        event.listen(Engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(Engine, "before_cursor_execute", self._count)

    def _count(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.strip().upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
            self.sent.append(statement)


def _page(client: httpx.Client, path: str, params: dict[str, Any]) -> tuple[dict[str, Any], int]:
    client.get(path, params=params)  # warm: the key's last-used write, first checks
    with Statements() as counted:
        answer = client.get(path, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json(), len(counted.sent)


@pytest.mark.parametrize(("what", "path", "extra"), LISTS, ids=[x[0] for x in LISTS])
def test_a_page_costs_the_same_statements_whatever_its_size(
    crowded: LiveServer, what: str, path: str, extra: dict[str, Any]
) -> None:
    path = path.format(artifact=_artifact_id(crowded))
    with crowded.client("admin") as client:
        small, few = _page(client, path, {**extra, "limit": SMALL})
        large, many = _page(client, path, {**extra, "limit": LARGE})
        assert len(small["items"]) == SMALL and len(large["items"]) == LARGE
        following, next_cost = _page(
            client, path, {**extra, "limit": LARGE, "cursor": small["next_cursor"]}
        )
    assert many == few, f"{what}: {few} statements for {SMALL} rows, {many} for {LARGE}"
    assert next_cost <= few + 1, f"{what}: a later page costs {next_cost}, the first {few}"
    assert few <= 4, f"{what}: {few} statements for one page"
    assert following["items"][0] == large["items"][SMALL]  # the cursor continues the list


def test_a_run_with_many_metrics_is_read_in_a_fixed_number_of_statements(
    crowded: LiveServer,
) -> None:
    run_id = crowded.workspace.metadata.list_runs(limit=1)[0].id
    with crowded.client("viewer") as client:
        _, cost = _page(client, f"/runs/{run_id}", {})
    assert cost <= 6  # the key, then the run, its params, metrics, tags and executions


#: searches whose filters, conditions and sort are all SQL (runs have parameter ``i``)
SEARCHES = {
    "by a metric": {"sort": "-metrics.auc", "metrics": "auc"},
    "a metric condition": {"where": "auc >= 0.5"},
    "a param condition": {"where": "params.i >= 3", "params": "i"},
    "by a param": {"sort": "-params.i"},
    "by duration": {"sort": "duration"},
}


@pytest.mark.parametrize("search", SEARCHES.values(), ids=SEARCHES.keys())
def test_a_search_page_costs_the_same_statements_whatever_its_size(
    crowded: LiveServer, search: dict[str, str]
) -> None:
    with crowded.client("viewer") as client:
        small, few = _page(client, "/runs/search", {**search, "limit": SMALL})
        large, many = _page(client, "/runs/search", {**search, "limit": LARGE})
        after, later = _page(client, "/runs/search", {**search, "limit": SMALL, "offset": SMALL})
    assert len(small["items"]) == SMALL and len(large["items"]) == LARGE
    assert many == few == later, f"{few} statements for {SMALL} runs, {many} for {LARGE}"
    assert few <= 4, f"{few} statements for one page"  # the key, the page, its runs, a column
    assert after["items"] == large["items"][SMALL : 2 * SMALL]
    if search.get("sort") == "-params.i":
        assert [item["parameters"]["i"] for item in small["items"]] == [119, 118, 117, 116, 115]
