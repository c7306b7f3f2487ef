"""Retraining policies: read from ctloop.yaml, built in or from a file; bad ones named."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import ctloop.replay
from ctloop.errors import ConfigError
from ctloop.replay import BUILTIN_POLICIES, Clock, Policy, load_policies


def test_the_package_exports_exactly_its_public_api() -> None:
    public = {n for n in vars(ctloop.replay) if not n.startswith("_")} - {"annotations"}
    assert public == set(ctloop.replay.__all__)


def test_a_policy_reads_its_keys_and_yaml_reads_on_as_a_boolean() -> None:
    import yaml

    values = yaml.safe_load("on: [degraded, max_age]\nmax_age: 6w\nmin_gap: 2w\ngate: false")
    policy = Policy.from_mapping("p", values)
    assert policy.on == ("degraded", "max_age") and policy.max_age == "6w"
    assert policy.gate is None and policy.allowed_drop is None and policy.refit_after_gate
    assert policy.describe() == (
        "on degraded or max_age 6w; window sliding:12w; min_gap 2w; no gate; refit after gate"
    )


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"on": ["sometimes"]}, "'on' is ['sometimes']"),
        ({"on": ["max_age"]}, "'on: max_age' needs 'max_age:'"),
        ({"on": ["schedule"], "every": "soon"}, "'every' 'soon' is not a period"),
        ({"window": "rolling"}, "'window' is 'rolling'"),
        ({"gate": {"allowed_drop": -1}}, "'gate: allowed_drop' is -1"),
        ({"gate": {"max": 1}}, "'gate' is {'max': 1}"),
        ({"cadence": "1w"}, "unknown key(s) cadence"),
        ({"monitoring": {"drop_is": "sideways"}}, "'monitoring: drop_is' is 'sideways'"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_key(values: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=r"retraining policy 'p'") as caught:
        Policy.from_mapping("p", values)
    assert named in str(caught.value)


def test_policies_come_from_ctloop_yaml_the_built_ins_or_a_file(tmp_path: Path) -> None:
    retraining = {"default": "mine", "policies": {"mine": {"on": ["drift"], "window": "expanding"}}}
    assert [p.name for p in load_policies([], retraining)] == ["mine"]
    default = load_policies([], {})[0]  # the default when none is set
    assert (default.name, default.on, default.min_gap) == ("drift", ("degraded", "drift"), "4w")
    assert (default.window, default.allowed_drop) == ("sliding:12w", 0.005)
    assert default.describe() == (
        "on degraded or drift; window sliding:12w; min_gap 4w; gate allowed_drop 0.005; "
        "refit after gate"
    )
    assert set(BUILTIN_POLICIES) <= {p.name for p in load_policies(list(BUILTIN_POLICIES), {})}
    single = tmp_path / "weekly.yaml"
    single.write_text("on: schedule\nevery: 1w\n")
    several = tmp_path / "two.yaml"
    several.write_text("policies:\n  a: {on: degraded}\n  b: {on: drift}\n")
    found = load_policies([str(single), str(several)], retraining)
    assert [(p.name, p.on) for p in found] == [
        ("weekly", ("schedule",)),
        ("a", ("degraded",)),
        ("b", ("drift",)),
    ]
    with pytest.raises(ConfigError, match=r"'often' is not declared; use one of .*guarded"):
        load_policies(["often"], retraining)
    with pytest.raises(ConfigError, match="repeat a name"):
        load_policies(["mine", "mine"], retraining)
    with pytest.raises(ConfigError, match="unknown key\\(s\\) polices"):
        load_policies([], {"polices": {}})


def test_the_clock_serves_periods_and_labels_arrive_late() -> None:
    times = pd.Series(pd.date_range("2024-01-01", "2024-02-29", freq="D"))
    clock = Clock.of(times, every="2w", label_delay="1w", start="2024-01-22")
    assert [p.label for p in clock.periods] == ["2024-01-22", "2024-02-05", "2024-02-19"]
    assert clock.periods[-1].end == pd.Timestamp("2024-02-29") + pd.Timedelta(microseconds=1)
    low, high = clock.newest_labelled(clock.periods[1])
    assert (low, high) == (pd.Timestamp("2024-01-15"), pd.Timestamp("2024-01-29"))
    with pytest.raises(ConfigError, match="leaves nothing labelled"):
        Clock.of(times, every="1w", label_delay="1w", start="2024-01-05")
    with pytest.raises(ConfigError, match="--every '1y' is not a period"):
        Clock.of(times, every="1y", label_delay="1w")


def test_a_retrain_on_drift_cites_the_drift_that_counted() -> None:
    from types import SimpleNamespace

    from ctloop.replay._judge import _first_reason

    quiet = (
        "'temp', 'dewp' drifted against the training data but hold 21.4% of the model's "
        "importance (< 30%); not counted as drift"
    )
    counted = "feature 'temp' drifted against the previous window: psi 4.58 (threshold 0.5)"
    report = SimpleNamespace(verdict="drift", reasons=[quiet, counted])
    assert _first_reason(report, "drifted") == counted
    assert _first_reason(SimpleNamespace(verdict="drift", reasons=[quiet]), "drifted") == "drift"
    assert _first_reason(None, "drifted") == ""
