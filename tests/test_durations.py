"""The one duration parser: the same text means the same time in gc ages, trigger
cooldowns, monitoring windows and canary waits."""

from __future__ import annotations

import doctest
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ctloop.durations
from ctloop.durations import UNIT_SECONDS, parse_duration
from ctloop.errors import ConfigError, MonitorError, ParameterError, TriggerConfigError
from ctloop.monitor._canary import CanarySettings
from ctloop.monitor._window import window_bounds
from ctloop.triggers import pipeline_specs


def test_docstring_examples_pass() -> None:
    result = doctest.testmod(ctloop.durations, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 4


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45s", 45), ("15m", 900), ("1.5h", 5400), ("7d", 604800), ("2W", 1209600), (" 3 h ", 10800)],
)
def test_a_number_and_a_unit(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "h", "3", "3x", "-1h", "1h30m", True, float("nan"), -5])
def test_anything_else_names_the_setting(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"^grace of p/t .* is not a duration; write"):
        parse_duration(bad, "grace of p/t")  # type: ignore[arg-type]


@given(st.integers(0, 10_000), st.sampled_from(sorted(UNIT_SECONDS)))
def test_every_unit_scales_the_number(number: int, unit: str) -> None:
    assert parse_duration(f"{number}{unit}").total_seconds() == number * UNIT_SECONDS[unit]


def test_each_area_raises_its_own_error_with_the_same_meaning() -> None:
    with pytest.raises(ParameterError, match="--older-than"):
        parse_duration("forever", "--older-than", error=ParameterError)
    with pytest.raises(MonitorError, match="max_wait"):
        CanarySettings.from_mapping({"max_wait": "later"})
    with pytest.raises(TriggerConfigError, match="cooldown"):
        pipeline_specs({"p": {"run": "f.py:p", "triggers": [{"manual": True, "cooldown": "x"}]}})
    week = window_bounds("1w", "2026-01-15T00:00:00Z")
    assert week["start"] == "2026-01-08T00:00:00+00:00"
    assert window_bounds("90s", "2026-01-15T00:00:00Z")["start"] == "2026-01-14T23:58:30+00:00"
    assert window_bounds("250 requests")["requests"] == 250
    with pytest.raises(MonitorError, match="window '0m'"):
        window_bounds("0m")
