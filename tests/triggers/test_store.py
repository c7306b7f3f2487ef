"""Trigger state and firings: one contract on SQLite, PostgreSQL, in memory and over HTTP.

The racing claims are SQL-only with threads on separate stores of one database file,
and memory-only with threads on one store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from ctloop.errors import NotFoundError
from ctloop.store._triggers import ClaimResult, FiringClaim, SqlTriggerStore, TriggerStore
from ctloop.store.memory import MemoryTriggerStore
from ctloop.store.records import utcnow

RACERS = 6


@pytest.fixture(params=["sqlite", "postgresql", "memory", "remote"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> TriggerStore:
    if request.param == "remote":  # over HTTP, through a live ctloop server
        triggers: TriggerStore = request.getfixturevalue("remote_workspace").triggers
        return triggers
    if request.param == "postgresql":
        return SqlTriggerStore(request.getfixturevalue("fresh_postgres_url"))
    if request.param == "memory":
        return MemoryTriggerStore()
    return SqlTriggerStore(f"sqlite:///{tmp_path / 'metadata.db'}")


def _claim(key: str, trigger: str = "p/t", status: str = "claimed") -> FiringClaim:
    return FiringClaim(trigger, "p", "new_files", key, f"because {key}", status=status)


def test_an_occasion_is_claimed_once(store: TriggerStore) -> None:
    first = store.claim(_claim("files:a"), new_cursor={"seen": {"a": "1"}})
    again = store.claim(_claim("files:a"))
    assert first.outcome == "claimed" and first.firing is not None
    assert first.firing.status == "claimed" and first.firing.reason == "because files:a"
    assert again.outcome == "duplicate" and again.firing is None
    state = store.get_state("p/t")
    assert state is not None and state.cursor == {"seen": {"a": "1"}}
    assert state.last_fired_at is not None
    # the same occasion of another trigger is another firing
    assert store.claim(_claim("files:a", trigger="p/other")).outcome == "claimed"


def test_max_concurrent_counts_active_firings(store: TriggerStore) -> None:
    first = store.claim(_claim("k1"), max_concurrent=1).firing
    assert first is not None
    assert store.claim(_claim("k2"), max_concurrent=1).outcome == "busy"
    assert store.finish_firing(first.id, "succeeded")
    assert not store.finish_firing(first.id, "failed")  # a final status stays
    assert store.get_firing(first.id).status == "succeeded"
    assert store.claim(_claim("k2"), max_concurrent=1).outcome == "claimed"


def test_the_cursor_is_compare_and_set(store: TriggerStore) -> None:
    assert store.save_state("p/t", "p", "new_files", cursor={"v": 1}, expected_cursor={})
    assert not store.save_state("p/t", "p", "new_files", cursor={"v": 2}, expected_cursor={})
    moved = store.claim(_claim("k"), expected_cursor={"v": 0}, new_cursor={"v": 3})
    assert moved.outcome == "moved"
    claimed = store.claim(_claim("k"), expected_cursor={"v": 1}, new_cursor={"v": 3})
    state = store.get_state("p/t")
    assert claimed.outcome == "claimed" and state is not None and state.cursor == {"v": 3}


def test_skipped_firings_are_final_and_hold_no_slot(store: TriggerStore) -> None:
    skipped = store.claim(_claim("slot:1", status="skipped")).firing
    assert skipped is not None and skipped.ended_at is not None
    assert store.claim(_claim("slot:2"), max_concurrent=1).outcome == "claimed"


def test_cooldown_and_listing(store: TriggerStore) -> None:
    until = utcnow() + timedelta(hours=6)
    store.claim(_claim("a"), cooldown_until=until)
    store.claim(_claim("b"))
    state = store.get_state("p/t")
    assert state is not None and state.cooldown_until == until
    assert [f.fire_key for f in store.list_firings()] == ["b", "a"]
    assert [f.fire_key for f in store.list_firings(limit=1)] == ["b"]
    assert store.list_firings(statuses=("succeeded",)) == []
    assert [s.name for s in store.list_states()] == ["p/t"]
    with pytest.raises(NotFoundError, match="firing 999 does not exist"):
        store.get_firing(999)


def test_a_firing_changes_only_known_fields(store: TriggerStore) -> None:
    firing = store.claim(_claim("k")).firing
    assert firing is not None
    details = {"run": {"attempt": 1}}
    assert store.update_firing(firing.id, only_if=("claimed",), status="running", details=details)
    details["run"]["attempt"] = 2  # the caller's dict is not the stored one
    assert store.get_firing(firing.id).details == {"run": {"attempt": 1}}
    assert not store.update_firing(firing.id, only_if=("claimed",), status="failed")
    assert not store.update_firing(999, status="failed")
    with pytest.raises(ValueError, match=r"'colour'.*fields that can change are"):
        store.update_firing(firing.id, colour="red")
    with pytest.raises(ValueError, match=r"'done' is unknown.*succeeded"):
        store.update_firing(firing.id, status="done")
    assert store.get_firing(firing.id).status == "running"


def test_a_returned_state_is_a_copy(store: TriggerStore) -> None:
    cursor = {"seen": {"a": "1"}}
    store.save_state("p/t", "p", "new_files", cursor=cursor)
    cursor["seen"]["b"] = "2"
    state = store.get_state("p/t")
    assert state is not None and state.cursor == {"seen": {"a": "1"}}
    state.cursor["seen"]["c"] = "3"
    assert store.list_states()[0].cursor == {"seen": {"a": "1"}}


def race(claim: Callable[[], ClaimResult]) -> list[str]:
    """The outcomes of :data:`RACERS` threads calling ``claim`` at the same moment."""
    barrier = threading.Barrier(RACERS)
    outcomes: list[str] = []

    def run() -> None:
        barrier.wait(timeout=30)
        outcomes.append(claim().outcome)

    threads = [threading.Thread(target=run) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def test_racing_claims_of_one_occasion_give_one_firing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    SqlTriggerStore(url).list_firings()  # create the schema once
    outcomes = race(lambda: SqlTriggerStore(url).claim(_claim("files:x"), expected_cursor={}))
    assert sorted(outcomes).count("claimed") == 1
    assert len(SqlTriggerStore(url).list_firings()) == 1


def test_racing_claims_in_memory_give_one_firing_and_respect_max_concurrent() -> None:
    store = MemoryTriggerStore()
    outcomes = race(lambda: store.claim(_claim("files:x"), expected_cursor={}, new_cursor={"v": 1}))
    assert sorted(outcomes) == ["claimed"] + ["moved"] * (RACERS - 1)
    assert len(store.list_firings()) == 1
    keys = iter(range(RACERS))
    outcomes = race(lambda: store.claim(_claim(f"slot:{next(keys)}", "p/busy"), max_concurrent=2))
    assert sorted(outcomes) == ["busy"] * (RACERS - 2) + ["claimed"] * 2
    assert len(store.list_firings(trigger="p/busy", statuses=("claimed",))) == 2
