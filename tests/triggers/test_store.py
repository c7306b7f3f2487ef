"""Trigger state and firings in the metadata store, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest

from ctloop.errors import NotFoundError
from ctloop.store.records import utcnow
from ctloop.store.triggers import FiringClaim, SqlTriggerStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SqlTriggerStore:
    if request.param == "postgresql":
        return SqlTriggerStore(request.getfixturevalue("fresh_postgres_url"))
    return SqlTriggerStore(f"sqlite:///{tmp_path / 'metadata.db'}")


def _claim(key: str, trigger: str = "p/t", status: str = "claimed") -> FiringClaim:
    return FiringClaim(trigger, "p", "new_files", key, f"because {key}", status=status)


def test_an_occasion_is_claimed_once(store: SqlTriggerStore) -> None:
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


def test_max_concurrent_counts_active_firings(store: SqlTriggerStore) -> None:
    first = store.claim(_claim("k1"), max_concurrent=1).firing
    assert first is not None
    assert store.claim(_claim("k2"), max_concurrent=1).outcome == "busy"
    assert store.finish_firing(first.id, "succeeded")
    assert not store.finish_firing(first.id, "failed")  # a final status stays
    assert store.get_firing(first.id).status == "succeeded"
    assert store.claim(_claim("k2"), max_concurrent=1).outcome == "claimed"


def test_the_cursor_is_compare_and_set(store: SqlTriggerStore) -> None:
    assert store.save_state("p/t", "p", "new_files", cursor={"v": 1}, expected_cursor={})
    assert not store.save_state("p/t", "p", "new_files", cursor={"v": 2}, expected_cursor={})
    moved = store.claim(_claim("k"), expected_cursor={"v": 0}, new_cursor={"v": 3})
    assert moved.outcome == "moved"
    claimed = store.claim(_claim("k"), expected_cursor={"v": 1}, new_cursor={"v": 3})
    state = store.get_state("p/t")
    assert claimed.outcome == "claimed" and state is not None and state.cursor == {"v": 3}


def test_skipped_firings_are_final_and_hold_no_slot(store: SqlTriggerStore) -> None:
    skipped = store.claim(_claim("slot:1", status="skipped")).firing
    assert skipped is not None and skipped.ended_at is not None
    assert store.claim(_claim("slot:2"), max_concurrent=1).outcome == "claimed"


def test_cooldown_and_listing(store: SqlTriggerStore) -> None:
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


def test_racing_claims_of_one_occasion_give_one_firing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    SqlTriggerStore(url).list_firings()  # create the schema once
    outcomes: list[str] = []

    def claim() -> None:
        outcomes.append(SqlTriggerStore(url).claim(_claim("files:x"), expected_cursor={}).outcome)

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes).count("claimed") == 1
    assert len(SqlTriggerStore(url).list_firings()) == 1
