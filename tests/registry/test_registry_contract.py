"""The model registry contract: SQLite, PostgreSQL and the in-memory registry pass the
same tests.

:class:`ModelRegistryContract` holds the tests; each backend's class provides
``metadata`` and ``registry``, a fresh, empty pair per test. The SQL backends race real
processes (``spawn``; their workers are module-level functions), the memory registry
races threads.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from multiprocessing.managers import SyncManager
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

import pytest

from ctloop.errors import (
    AliasNotFoundError,
    ModelNotFoundError,
    ModelReferenceError,
    ModelVersionNotFoundError,
    NotFoundError,
    RollbackError,
    StoreError,
)
from ctloop.registry import ModelRegistry, SqlModelRegistry, parse_reference, resolve
from ctloop.store import MetadataStore
from ctloop.store._sql import SqlMetadataStore
from ctloop.store.memory import MemoryMetadataStore, MemoryModelRegistry
from ctloop.store.records import EventRecord
from ctloop.store.workspace import Workspace
from tests.fixtures.ctloop_server import LiveServer
from tests.store.test_metadata_contract import make_artifact, make_execution, make_run

PROCESSES = 8


# -- workers (module level: spawned children import them) -----------------------------------
def register_worker(barrier: Any, url: str, artifact_id: str) -> int:
    """Register a version of 'flights' as soon as every process is ready."""
    registry = SqlModelRegistry(url)
    registry.list_models()  # connect before the race
    barrier.wait(timeout=120)
    return registry.register_version("flights", artifact_id, by="racer").version


def set_alias_worker(barrier: Any, url: str, version: int) -> int:
    """Point 'champion' at ``version`` as soon as every process is ready."""
    registry = SqlModelRegistry(url)
    registry.list_models()
    barrier.wait(timeout=120)
    move = registry.set_alias("flights", "champion", version, by=f"racer{version}")
    assert move is not None
    return move.id


@pytest.fixture(scope="module")
def processes() -> Iterator[tuple[Pool, SyncManager]]:
    """:data:`PROCESSES` spawned workers and a manager for their barrier."""
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(PROCESSES) as pool:
        yield pool, manager


def run_together(
    processes: tuple[Pool, SyncManager], target: Any, args: list[tuple[Any, ...]]
) -> list[Any]:
    """``target(barrier, *a)`` for each ``a``, each in its own process, released together."""
    pool, manager = processes
    barrier = manager.Barrier(len(args))
    return pool.starmap_async(target, [(barrier, *a) for a in args]).get(timeout=300)


def run_in_threads(targets: list[Callable[[], Any]]) -> list[Any]:
    """Call each target in its own thread, all released at the same moment; returns
    their results in the order they finished (re-raises a thread's exception)."""
    barrier = threading.Barrier(len(targets))
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(target: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            results.append(target())
        except BaseException as exc:  # handed to the test's thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    if errors:
        raise errors[0]
    return results


# -- the contract ---------------------------------------------------------------------------
class ModelRegistryContract:
    """Tests every :class:`ModelRegistry` backend must pass."""

    @pytest.fixture
    def metadata(self) -> Iterator[MetadataStore]:
        """A fresh, empty metadata store (one per test)."""
        raise NotImplementedError

    @pytest.fixture
    def registry(self, metadata: MetadataStore) -> ModelRegistry:
        """The registry beside ``metadata``."""
        raise NotImplementedError

    @pytest.fixture
    def artifacts(self, metadata: MetadataStore) -> list[str]:
        """Ids of five stored Model artifacts."""
        records = [make_artifact(type="Model") for _ in range(5)]
        metadata.put_artifacts(records)
        return [r.id for r in records]

    def three_versions(self, registry: ModelRegistry, artifacts: list[str]) -> None:
        for artifact_id in artifacts[:3]:
            registry.register_version("flights", artifact_id)

    # -- models and versions ------------------------------------------------------------
    def test_versions_are_numbered_per_model_from_one(
        self, registry: ModelRegistry, artifacts: list[str]
    ) -> None:
        first = registry.register_version("flights", artifacts[0], description="baseline", by="ada")
        second = registry.register_version("flights", artifacts[1][:8], tags={"algo": "gbm"})
        other = registry.register_version("taxi", artifacts[2])
        assert (first.version, second.version, other.version) == (1, 2, 1)
        assert (first.description, first.created_by, first.reference) == (
            "baseline",
            "ada",
            "flights@1",
        )
        assert second.artifact_id == artifacts[1] and second.tags == {"algo": "gbm"}
        assert registry.list_versions("flights") == [first, second]
        assert registry.get_version("flights", 2) == second
        assert [m.name for m in registry.list_models()] == ["flights", "taxi"]
        assert registry.get_model("flights").latest_version == 2

    def test_create_model_is_get_or_create(self, registry: ModelRegistry) -> None:
        created = registry.create_model("flights", description="delays", tags={"team": "ml"})
        again = registry.create_model("flights", description="ignored")
        assert again == created
        assert (again.description, again.tags, again.latest_version) == (
            "delays",
            {"team": "ml"},
            None,
        )
        assert registry.list_versions("flights") == []

    def test_descriptions_and_tags_of_models_and_versions(
        self, registry: ModelRegistry, artifacts: list[str]
    ) -> None:
        registry.register_version("flights", artifacts[0], tags={"stage": "dev"})
        registry.update_description("flights", "predicts departure delays")
        registry.update_description("flights", "first try", version=1)
        registry.set_tag("flights", "team", "ml")
        registry.set_tag("flights", "team", "data")
        registry.set_tag("flights", "stage", "prod", version=1)
        registry.set_tag("flights", "gone", "x", version=1)
        registry.delete_tag("flights", "gone", version=1)
        registry.delete_tag("flights", "never-set")
        model, version = registry.get_model("flights"), registry.get_version("flights", 1)
        assert (model.description, model.tags) == ("predicts departure delays", {"team": "data"})
        assert (version.description, version.tags) == ("first try", {"stage": "prod"})
        assert model.updated_at >= model.created_at

    def test_version_source_comes_from_lineage_or_the_caller(
        self, registry: ModelRegistry, metadata: MetadataStore
    ) -> None:
        run = make_run()
        metadata.create_run(run)
        execution = make_execution(run.id)
        metadata.create_execution(execution)
        model = make_artifact(type="Model")
        metadata.complete_execution(
            execution.id,
            status="succeeded",
            ended_at=run.started_at,
            artifacts=[model],
            events=[EventRecord(execution.id, model.id, "output", "model")],
        )
        inferred = registry.register_version("flights", model.id)
        assert (inferred.run_id, inferred.execution_id) == (run.id, execution.id)
        given = registry.register_version("flights", model.id, run_id=run.id[:8])
        assert (given.run_id, given.execution_id) == (run.id, None)
        metadata.delete_runs([run.id])  # as garbage collection does: the version stays
        assert registry.get_version("flights", 1).run_id is None
        assert registry.get_version("flights", 1).artifact_id == model.id

    # -- errors -------------------------------------------------------------------------
    def test_unknown_things_are_named_with_the_fix(
        self, registry: ModelRegistry, artifacts: list[str]
    ) -> None:
        registry.register_version("flights", artifacts[0])
        with pytest.raises(ModelNotFoundError, match=r"'taxi'.*ctloop models list"):
            registry.get_model("taxi")
        with pytest.raises(ModelNotFoundError, match="'taxi'"):
            registry.list_versions("taxi")
        with pytest.raises(ModelNotFoundError, match="'taxi'"):
            registry.set_alias("taxi", "champion", 1)
        with pytest.raises(
            ModelVersionNotFoundError, match=r"no version 7 \(it has versions 1 to 1\)"
        ):
            registry.get_version("flights", 7)
        with pytest.raises(ModelVersionNotFoundError, match="no version 2"):
            registry.set_alias("flights", "champion", 2)
        with pytest.raises(AliasNotFoundError, match=r"no alias 'champion'.*models alias flights"):
            registry.get_by_alias("flights", "champion")
        with pytest.raises(AliasNotFoundError, match="'champion'"):
            registry.delete_alias("flights", "champion")
        with pytest.raises(NotFoundError, match=r"'flights'.*ffffffff"):
            registry.register_version("flights", "ffffffff")
        with pytest.raises(NotFoundError, match="run"):
            registry.register_version("flights", artifacts[0], run_id="ffffffff")
        assert len(registry.list_versions("flights")) == 1

    @pytest.mark.parametrize("bad", ["", "has space", "a@b", "-lead", "x/y"])
    def test_bad_model_names_are_refused(self, registry: ModelRegistry, bad: str) -> None:
        with pytest.raises(ModelReferenceError, match="model name"):
            registry.create_model(bad)

    @pytest.mark.parametrize("bad", ["", "3", "1st", "a b", "a@b"])
    def test_bad_aliases_are_refused(
        self, registry: ModelRegistry, artifacts: list[str], bad: str
    ) -> None:
        registry.register_version("flights", artifacts[0])
        with pytest.raises(ModelReferenceError, match="alias"):
            registry.set_alias("flights", bad, 1)

    # -- aliases, history, rollback -----------------------------------------------------
    def test_aliases_point_at_versions_and_resolve(
        self, registry: ModelRegistry, artifacts: list[str]
    ) -> None:
        self.three_versions(registry, artifacts)
        registry.set_alias("flights", "champion", 2, by="ada", reason="best AUC")
        registry.set_alias("flights", "challenger", 3)
        assert registry.get_by_alias("flights", "champion").version == 2
        assert registry.resolve("flights@champion").aliases == ("champion",)
        assert registry.resolve("flights@1").version == 1
        assert registry.resolve("flights").version == 3
        assert resolve("flights@challenger", registry).artifact_id == artifacts[2]
        assert registry.get_model("flights").aliases == {"challenger": 3, "champion": 2}
        with pytest.raises(ModelReferenceError, match="ends with '@'"):
            registry.resolve("flights@")

    def test_history_records_every_move_in_order(
        self, registry: ModelRegistry, artifacts: list[str]
    ) -> None:
        self.three_versions(registry, artifacts)
        registry.set_alias("flights", "champion", 1, by="ada", reason="first")
        assert registry.set_alias("flights", "champion", 1) is None  # already there: no move
        registry.set_alias("flights", "challenger", 2)
        registry.set_alias("flights", "champion", 3, by="bob")
        registry.delete_alias("flights", "challenger", reason="lost")
        moves = registry.alias_history("flights")
        assert [(m.alias, m.kind, m.from_version, m.to_version) for m in moves] == [
            ("champion", "set", None, 1),
            ("challenger", "set", None, 2),
            ("champion", "set", 1, 3),
            ("challenger", "delete", 2, None),
        ]
        assert (moves[0].moved_by, moves[0].reason) == ("ada", "first")
        assert [m.id for m in moves] == sorted(m.id for m in moves)
        assert [m.to_version for m in registry.alias_history("flights", "champion")] == [1, 3]

    def test_rollback_walks_back_through_history(
        self, registry: ModelRegistry, artifacts: list[str]
    ) -> None:
        for artifact_id in artifacts:
            registry.register_version("flights", artifact_id)
        for version in (1, 2, 3, 4):
            registry.set_alias("flights", "champion", version)
        first = registry.rollback("flights", by="ops", reason="v4 errors")
        assert (first.kind, first.from_version, first.to_version) == ("rollback", 4, 3)
        assert (first.moved_by, first.reason) == ("ops", "v4 errors")
        assert registry.rollback("flights").to_version == 2  # one further back, not a toggle
        assert registry.get_by_alias("flights", "champion").version == 2
        registry.set_alias("flights", "champion", 5)  # a new move starts a new branch
        assert registry.rollback("flights").to_version == 2
        assert registry.rollback("flights").to_version == 1
        with pytest.raises(RollbackError, match=r"no holder before v1"):
            registry.rollback("flights")
        assert registry.get_by_alias("flights", "champion").version == 1
        assert len(registry.alias_history("flights", "champion")) == 9

    def test_rollback_undoes_a_delete_and_names_missing_history(
        self, registry: ModelRegistry, artifacts: list[str]
    ) -> None:
        self.three_versions(registry, artifacts)
        registry.set_alias("flights", "challenger", 1)
        registry.set_alias("flights", "challenger", 2)
        registry.delete_alias("flights", "challenger")
        assert registry.rollback("flights", "challenger").to_version == 2
        assert registry.get_by_alias("flights", "challenger").version == 2
        with pytest.raises(RollbackError, match=r"'champion'.*no move to roll back"):
            registry.rollback("flights")
        with pytest.raises(ModelNotFoundError):
            registry.rollback("taxi")

    # -- what a version keeps --------------------------------------------------------
    def test_a_version_keeps_its_artifact_and_run_from_garbage_collection(
        self, registry: ModelRegistry, metadata: MetadataStore, artifacts: list[str]
    ) -> None:
        run = make_run()
        metadata.create_run(run)
        registry.register_version("flights", artifacts[0], run_id=run.id)
        assert metadata.pinned_run_ids() == {run.id}
        assert metadata.pinned_artifact_ids() == {artifacts[0]}
        assert metadata.referenced_artifact_ids() == {artifacts[0]}
        with pytest.raises(StoreError):
            metadata.delete_artifacts([artifacts[1], artifacts[0]])
        assert {a.id for a in metadata.list_artifacts()} == set(artifacts)  # both kept
        metadata.delete_artifacts([artifacts[1]])
        assert {a.id for a in metadata.list_artifacts()} == set(artifacts) - {artifacts[1]}

    def test_a_version_of_an_execution_names_its_run(
        self, registry: ModelRegistry, metadata: MetadataStore, artifacts: list[str]
    ) -> None:
        run = make_run()
        metadata.create_run(run)
        execution = make_execution(run.id)
        metadata.create_execution(execution)
        version = registry.register_version("flights", artifacts[0], execution_id=execution.id)
        assert (version.run_id, version.execution_id) == (run.id, execution.id)
        with pytest.raises(NotFoundError, match=r"execution 'missing' does not exist"):
            registry.register_version("flights", artifacts[0], execution_id="missing")
        with pytest.raises(NotFoundError, match=r"cannot register a version of model 'taxi'"):
            registry.register_version("taxi", "ffffffff")
        with pytest.raises(ModelNotFoundError):
            registry.get_model("taxi")  # a refused version creates no model
        assert len(registry.list_versions("flights")) == 1

    def test_records_handed_out_are_copies(
        self, registry: ModelRegistry, artifacts: list[str]
    ) -> None:
        tags = {"algo": "gbm"}
        version = registry.register_version("flights", artifacts[0], tags=tags)
        tags["algo"] = "changed"
        version.tags["algo"] = "changed too"
        registry.set_alias("flights", "champion", 1)
        model = registry.get_model("flights")
        model.aliases["champion"] = 7
        model.tags["team"] = "x"
        assert registry.get_version("flights", 1).tags == {"algo": "gbm"}
        assert registry.get_model("flights").aliases == {"champion": 1}
        assert registry.get_model("flights").tags == {}

    def test_a_model_without_versions_says_so(self, registry: ModelRegistry) -> None:
        registry.create_model("flights")
        with pytest.raises(
            ModelVersionNotFoundError, match=r"no version 1 \(it has no versions yet\)"
        ):
            registry.get_version("flights", 1)
        with pytest.raises(ModelVersionNotFoundError, match="has no versions yet"):
            registry.resolve("flights")
        with pytest.raises(ModelNotFoundError):
            registry.alias_history("taxi")
        assert registry.alias_history("flights") == []


class SqlModelRegistryContract(ModelRegistryContract):
    """The contract on a database, raced by real processes."""

    @pytest.fixture
    def store_url(self) -> str:
        """The URL of a fresh, empty database (one per test)."""
        raise NotImplementedError

    @pytest.fixture
    def metadata(self, store_url: str) -> Iterator[MetadataStore]:
        store = SqlMetadataStore(store_url)
        try:
            yield store
        finally:
            store.close()

    @pytest.fixture
    def registry(self, store_url: str, metadata: MetadataStore) -> ModelRegistry:
        return SqlModelRegistry(store_url)

    # -- concurrency --------------------------------------------------------------------
    def test_concurrent_registrations_get_distinct_numbers(
        self,
        registry: ModelRegistry,
        artifacts: list[str],
        store_url: str,
        processes: tuple[Pool, SyncManager],
    ) -> None:
        jobs = [(store_url, artifacts[0])] * PROCESSES
        versions = run_together(processes, register_worker, jobs)
        assert sorted(versions) == list(range(1, PROCESSES + 1))
        assert [v.version for v in registry.list_versions("flights")] == sorted(versions)

    def test_concurrent_promotions_are_serialised_and_all_recorded(
        self,
        registry: ModelRegistry,
        artifacts: list[str],
        store_url: str,
        processes: tuple[Pool, SyncManager],
    ) -> None:
        for _ in range(PROCESSES):
            registry.register_version("flights", artifacts[0])
        jobs = [(store_url, version) for version in range(1, PROCESSES + 1)]
        run_together(processes, set_alias_worker, jobs)
        moves = registry.alias_history("flights", "champion")
        assert len(moves) == PROCESSES
        assert sorted(m.to_version for m in moves) == list(range(1, PROCESSES + 1))
        # each move starts where the one before it ended: none was lost or interleaved
        assert [m.from_version for m in moves] == [None] + [m.to_version for m in moves[:-1]]
        assert [m.moved_at for m in moves] == sorted(m.moved_at for m in moves)
        assert registry.get_by_alias("flights", "champion").version == moves[-1].to_version


# -- backends -------------------------------------------------------------------------------
class TestSqliteModelRegistry(SqlModelRegistryContract):
    """The contract on a SQLite file (the default backend)."""

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'metadata.db'}"


class TestPostgresModelRegistry(SqlModelRegistryContract):
    """The contract on a real PostgreSQL server."""

    @pytest.fixture
    def store_url(self, fresh_postgres_url: str) -> str:
        return fresh_postgres_url


class TestMemoryModelRegistry(ModelRegistryContract):
    """The contract in memory (the registry of :meth:`Workspace.in_memory`), raced by
    threads."""

    @pytest.fixture
    def metadata(self) -> Iterator[MetadataStore]:
        yield MemoryMetadataStore()

    @pytest.fixture
    def registry(self, metadata: MemoryMetadataStore) -> ModelRegistry:
        return MemoryModelRegistry(metadata)

    def test_concurrent_registrations_get_distinct_numbers(
        self, registry: ModelRegistry, artifacts: list[str]
    ) -> None:
        def register() -> int:
            return registry.register_version("flights", artifacts[0], by="racer").version

        versions = run_in_threads([register] * PROCESSES)
        assert sorted(versions) == list(range(1, PROCESSES + 1))
        assert [v.version for v in registry.list_versions("flights")] == sorted(versions)

    def test_concurrent_promotions_are_serialised_and_all_recorded(
        self, registry: ModelRegistry, artifacts: list[str]
    ) -> None:
        for _ in range(PROCESSES):
            registry.register_version("flights", artifacts[0])

        def promote(version: int) -> Callable[[], int]:
            def move() -> int:
                moved = registry.set_alias("flights", "champion", version, by=f"racer{version}")
                assert moved is not None
                return moved.id

            return move

        run_in_threads([promote(version) for version in range(1, PROCESSES + 1)])
        moves = registry.alias_history("flights", "champion")
        assert len(moves) == PROCESSES
        assert sorted(m.to_version for m in moves) == list(range(1, PROCESSES + 1))
        assert [m.from_version for m in moves] == [None] + [m.to_version for m in moves[:-1]]
        assert [m.moved_at for m in moves] == sorted(m.moved_at for m in moves)
        assert registry.get_by_alias("flights", "champion").version == moves[-1].to_version


def test_importing_the_registry_and_its_commands_loads_no_database_or_rich() -> None:
    code = (
        "import sys, ctloop.registry, ctloop.cli.models; "
        "print(sorted({'sqlalchemy', 'rich'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("flights", ("flights", None)),
        ("flights@champion", ("flights", "champion")),
        ("flights@12", ("flights", 12)),
        ("flights-delay.v2@_canary", ("flights-delay.v2", "_canary")),
    ],
)
def test_references_name_a_version_an_alias_or_the_latest(
    reference: str, expected: tuple[str, object]
) -> None:
    assert parse_reference(reference) == expected


@pytest.mark.parametrize("reference", ["", "@champion", "flights@", "flights@cham pion", "a b@1"])
def test_malformed_references_say_what_to_write(reference: str) -> None:
    with pytest.raises(ModelReferenceError, match=r"not valid|ends with '@'"):
        parse_reference(reference)


class TestRemoteModelRegistry(ModelRegistryContract):
    """Over HTTP, through a live ``ctloop server`` on a fresh SQLite workspace; racing
    clients each hold their own connection."""

    @pytest.fixture
    def workspace(self, remote_workspace: Workspace) -> Iterator[Workspace]:
        yield remote_workspace

    @pytest.fixture
    def metadata(self, workspace: Workspace) -> Iterator[MetadataStore]:
        yield workspace.metadata

    @pytest.fixture
    def registry(self, workspace: Workspace) -> ModelRegistry:
        return workspace.registry

    def test_concurrent_registrations_get_distinct_numbers(
        self, artifacts: list[str], live_server: LiveServer
    ) -> None:
        def register() -> int:
            with Workspace.remote(live_server.url) as client:
                return client.registry.register_version("flights", artifacts[0]).version

        versions = run_in_threads([register] * PROCESSES)
        assert sorted(versions) == list(range(1, PROCESSES + 1))
