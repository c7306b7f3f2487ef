"""What each kind of trigger watches: cron slots, new files, new rows, monitor verdicts."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ctloop.errors import TriggerError
from ctloop.triggers import TriggerSpec, Verdict
from ctloop.triggers._sources import check_monitor, check_new_files, check_new_rows, check_schedule

HOURLY = TriggerSpec("hourly", "p", "schedule", "0 * * * *")


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 1, hour, minute, tzinfo=UTC)


def test_first_schedule_check_is_a_baseline_not_a_firing() -> None:
    check = check_schedule(HOURLY, {}, at(10, 30))
    assert check.occasions == () and check.cursor == {"slot": at(10).isoformat()}


def test_a_slot_due_since_the_last_check_fires_once() -> None:
    cursor = {"slot": at(10).isoformat()}
    assert check_schedule(HOURLY, cursor, at(10, 59)).occasions == ()
    (occasion,) = check_schedule(
        HOURLY,
        cursor,
        at(
            11,
            0,
        ).replace(second=20),
    ).occasions
    assert occasion.fire_key == f"slot:{at(11).isoformat()}"
    assert occasion.cursor == {"slot": at(11).isoformat()} and occasion.run_trigger == "schedule"


def test_missed_slots_are_not_caught_up_by_default() -> None:
    cursor = {"slot": at(3).isoformat()}  # down from 03:30 to 09:30
    check = check_schedule(HOURLY, cursor, at(9, 30))
    assert check.occasions == ()
    assert check.cursor == {"slot": at(9).isoformat()} and "catchup is off" in check.note


def test_a_slot_within_grace_still_fires_after_a_short_outage() -> None:
    spec = TriggerSpec("hourly", "p", "schedule", "0 * * * *", options={"grace": "45m"})
    (occasion,) = check_schedule(spec, {"slot": at(3).isoformat()}, at(9, 30)).occasions
    assert occasion.fire_key == f"slot:{at(9).isoformat()}"


def test_catchup_fires_every_missed_slot_oldest_first() -> None:
    spec = TriggerSpec("hourly", "p", "schedule", "0 * * * *", options={"catchup": True})
    cursor = {"slot": at(6).isoformat()}
    keys = []
    while (check := check_schedule(spec, cursor, at(9, 30))).occasions:
        keys.append(check.occasions[0].fire_key)
        cursor = check.occasions[0].cursor
    assert keys == [f"slot:{at(h).isoformat()}" for h in (7, 8, 9)]


def test_new_files_fire_once_per_new_set(tmp_path: Path) -> None:
    spec = TriggerSpec(
        "new-data", "p", "new_files", str(tmp_path / "*.csv"), options={"parameter": "paths"}
    )
    (tmp_path / "old.csv").write_text("a\n1\n")
    baseline = check_new_files(spec, {})
    assert baseline.occasions == () and list(baseline.cursor["seen"]) == [str(tmp_path / "old.csv")]
    assert check_new_files(spec, baseline.cursor).occasions == ()  # stable: nothing new
    for name in ("b.csv", "a.csv"):
        (tmp_path / name).write_text("a\n2\n")
    (tmp_path / "notes.txt").write_text("not matched")
    (occasion,) = check_new_files(spec, baseline.cursor).occasions
    new = [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]
    assert occasion.parameters == {"paths": new} and occasion.run_trigger == "new-data"
    again = check_new_files(spec, baseline.cursor).occasions[0]
    assert again.fire_key == occasion.fire_key  # the same set is the same occasion
    assert check_new_files(spec, occasion.cursor).occasions == ()


def test_a_rewritten_file_is_new_again(tmp_path: Path) -> None:
    spec = TriggerSpec("new-data", "p", "new_files", str(tmp_path / "*.csv"))
    path = tmp_path / "day.csv"
    path.write_text("a\n1\n")
    cursor = check_new_files(spec, {}).cursor
    assert cursor is not None
    path.write_text("a\n1\n2\n")
    os.utime(path, (1_900_000_000, 1_900_000_000))
    (occasion,) = check_new_files(spec, cursor).occasions
    assert occasion.details == {"new_files": [str(path)]}


def test_partition_folders_count_as_new_data(tmp_path: Path) -> None:
    spec = TriggerSpec("parts", "p", "new_files", str(tmp_path / "date=*"))
    (tmp_path / "date=2026-03-01").mkdir()
    cursor = check_new_files(spec, {}).cursor
    (tmp_path / "date=2026-03-02").mkdir()
    (occasion,) = check_new_files(spec, cursor or {}).occasions
    assert occasion.details == {"new_files": [str(tmp_path / "date=2026-03-02")]}


def test_new_rows_fire_when_the_query_value_changes(tmp_path: Path) -> None:
    table = tmp_path / "events.csv"
    table.write_text("ts,v\n2026-03-01 10:00:00,1\n")
    sql = f"SELECT max(ts) FROM read_csv_auto('{table}')"
    spec = TriggerSpec("rows", "p", "new_rows", sql, options={"parameter": "since"})
    baseline = check_new_rows(spec, {})
    assert baseline.occasions == () and baseline.cursor == {"value": "2026-03-01T10:00:00"}
    assert check_new_rows(spec, baseline.cursor).occasions == ()
    table.write_text("ts,v\n2026-03-01 10:00:00,1\n2026-03-01 11:00:00,2\n")
    (occasion,) = check_new_rows(spec, baseline.cursor).occasions
    assert occasion.fire_key == "value:2026-03-01T11:00:00"
    assert occasion.parameters == {"since": "2026-03-01T11:00:00"}


def test_a_broken_query_names_the_trigger() -> None:
    spec = TriggerSpec("rows", "p", "new_rows", "SELECT max(ts) FROM nowhere")
    with pytest.raises(TriggerError, match="query of trigger p/rows failed"):
        check_new_rows(spec, {})


def test_monitor_fires_on_the_chosen_verdicts_only() -> None:
    spec = TriggerSpec("drift", "p", "monitor", {"model": "flights", "on": ["drift"]})
    verdicts = iter(
        [Verdict("ok", "run-1"), Verdict("degraded", "run-2"), Verdict("drift", "run-3")]
    )
    asked: list[str] = []

    def source(trigger: TriggerSpec) -> Verdict:
        asked.append(trigger.qualified_name)
        return next(verdicts)

    first = check_monitor(spec, {}, at(1), source)
    assert first.occasions == () and first.cursor is not None
    assert check_monitor(spec, first.cursor, at(1, 30), source).occasions == ()  # every 1h
    assert check_monitor(spec, first.cursor, at(2), source).occasions == ()  # degraded: not asked
    (occasion,) = check_monitor(spec, first.cursor, at(3), source).occasions
    assert occasion.fire_key == "monitor:run-3" and occasion.run_trigger == "drift"
    assert asked == ["p/drift"] * 3


def test_by_default_drift_alone_retrains_nothing() -> None:
    spec = TriggerSpec("perf", "p", "monitor", {"model": "flights"})
    check = check_monitor(spec, {}, at(1), lambda _: Verdict("drift", "r", None))
    assert check.occasions == () and check.note == "verdict drift"


def test_a_degraded_verdict_starts_a_performance_run() -> None:
    spec = TriggerSpec("perf", "p", "monitor", {"model": "flights"})
    check = check_monitor(spec, {}, at(1), lambda _: Verdict("degraded", "r", None))
    assert check.occasions[0].run_trigger == "performance"
