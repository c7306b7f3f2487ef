"""Parsing ``pipelines:`` of ctloop.yaml into pipelines and their triggers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ctloop.config import Settings
from ctloop.durations import parse_duration
from ctloop.errors import ConfigError, TriggerConfigError
from ctloop.triggers import find_trigger, pipeline_specs

EXAMPLE = {
    "flights-training": {
        "pipeline": "examples/flights/pipeline.py:training",
        "parameters": {"max_depth": 6},
        "triggers": [
            {"name": "nightly", "schedule": "0 3 * * *", "max_concurrent": 1},
            {"name": "new-data", "new_files": "data/incoming/*.parquet", "parameter": "path"},
            {
                "name": "drift",
                "monitor": {"model": "flights", "window": "1d", "on": ["drift", "degraded"]},
                "cooldown": "6h",
            },
        ],
    }
}


def test_the_readme_example_parses() -> None:
    (spec,) = pipeline_specs(EXAMPLE)
    assert spec.reference == "examples/flights/pipeline.py:training"
    assert spec.parameters == {"max_depth": 6}
    nightly, new_data, drift = spec.triggers
    assert (nightly.kind, nightly.source, nightly.max_concurrent) == ("schedule", "0 3 * * *", 1)
    assert new_data.kind == "new_files" and new_data.options == {"parameter": "path"}
    assert drift.kind == "monitor" and drift.cooldown == timedelta(hours=6)
    assert drift.qualified_name == "flights-training/drift" and drift.on_lost == "retry"


def test_settings_read_the_pipelines_section(tmp_path: Path) -> None:
    import yaml

    (tmp_path / "ctloop.yaml").write_text(yaml.safe_dump({"pipelines": EXAMPLE}))
    assert Settings.load(tmp_path).pipelines == EXAMPLE


def test_a_pipelines_section_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ctloop.yaml").write_text("pipelines: [a, b]\n")
    with pytest.raises(ConfigError, match="pipelines"):
        Settings.load(tmp_path)


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ({"name": "x", "schedule": "every night"}, "not a cron expression"),
        ({"name": "x", "schedule": "0 3 * * *", "new_files": "a/*"}, "exactly one of"),
        ({"name": "x"}, "exactly one of"),
        ({"name": "x", "new_files": "a/*", "catchup": True}, "unknown key.*catchup"),
        ({"name": "x", "schedule": "0 3 * * *", "cooldown": "soon"}, "not a duration"),
        ({"name": "x", "manual": True, "max_concurrent": 0}, "max_concurrent 0"),
        ({"name": "x", "manual": True, "on_lost": "ignore"}, "on_lost 'ignore'"),
        ({"name": "x", "monitor": {"window": "1d"}}, "model"),
        ({"name": "x", "monitor": {"model": "m", "on": ["bad"]}}, "unknown verdict"),
        ({"name": "no spaces", "manual": True}, "needs a 'name'"),
    ],
)
def test_bad_triggers_are_refused_with_a_sentence(trigger: dict, message: str) -> None:
    with pytest.raises(TriggerConfigError, match=message):
        pipeline_specs({"p": {"pipeline": "p.py:p", "triggers": [trigger]}})


def test_a_pipeline_without_a_reference_is_refused() -> None:
    with pytest.raises(TriggerConfigError, match=r"needs 'pipeline: path/to/file\.py:NAME'"):
        pipeline_specs({"p": {"triggers": []}})


def test_trigger_names_must_be_unique_within_a_pipeline() -> None:
    twice = [{"name": "a", "manual": True}, {"name": "a", "manual": True}]
    with pytest.raises(TriggerConfigError, match="twice"):
        pipeline_specs({"p": {"pipeline": "p.py:p", "triggers": twice}})


def test_find_trigger_by_qualified_name_short_name_or_pipeline() -> None:
    specs = pipeline_specs(EXAMPLE)
    assert find_trigger(specs, "flights-training/nightly")[1].name == "nightly"
    assert find_trigger(specs, "drift")[1].kind == "monitor"
    pipeline, trigger = find_trigger(specs, "flights-training")
    assert (pipeline.name, trigger.kind, trigger.qualified_name) == (
        "flights-training",
        "manual",
        "flights-training/manual",
    )
    with pytest.raises(TriggerConfigError, match="'nope' is not declared"):
        find_trigger(specs, "nope")


def test_durations() -> None:
    assert parse_duration("90s", "x") == timedelta(seconds=90)
    assert parse_duration("1.5h", "x") == timedelta(minutes=90)
    assert parse_duration(60, "x") == timedelta(minutes=1)
    assert parse_duration("2w", "x") == timedelta(days=14)


def test_an_unquoted_yaml_on_key_reads_as_the_verdict_list() -> None:
    import yaml

    from ctloop.triggers import pipeline_specs

    config = yaml.safe_load(
        "train:\n  pipeline: p.py:train\n  triggers:\n"
        "    - {name: decay, monitor: {model: flights, window: 1d, on: [degraded]}}\n"
    )
    trigger = pipeline_specs(config)[0].triggers[0]
    assert trigger.source["on"] == ["degraded"] and True not in trigger.source
