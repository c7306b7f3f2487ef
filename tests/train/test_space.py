"""Search spaces parse from dicts and YAML; a bad entry fails with a sentence naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctloop.errors import SearchSpaceError
from ctloop.train import SearchSpace

YAML = """
max_depth: {int: [2, 10]}
learning_rate: {float: [0.01, 0.3], log: true}
min_samples_leaf: {int: [1, 9], step: 2}
loss: {choice: [log_loss, exponential]}
subsample: 0.8
"""


def test_yaml_text_and_file_give_the_same_space(tmp_path: Path) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(YAML)
    from_text = SearchSpace.parse(YAML)
    assert SearchSpace.parse(path) == from_text == SearchSpace.parse(str(path))
    assert from_text.names == (
        "max_depth",
        "learning_rate",
        "min_samples_leaf",
        "loss",
        "subsample",
    )
    rate = from_text.parameters[1]
    assert (rate.kind, rate.low, rate.high, rate.log) == ("float", 0.01, 0.3, True)
    assert from_text.parameters[2].step == 2.0
    assert from_text.parameters[4].kind == "fixed"


def test_to_dict_round_trips() -> None:
    space = SearchSpace.parse(YAML)
    assert SearchSpace.parse(space.to_dict()) == space


def test_contains_checks_every_bound() -> None:
    space = SearchSpace.parse({"n": {"int": [2, 10]}, "c": {"choice": ["a", "b"]}})
    assert space.contains({"n": 2, "c": "b"})
    assert not space.contains({"n": 11, "c": "a"})
    assert not space.contains({"n": 2.5, "c": "a"})
    assert not space.contains({"n": 3, "c": "z"})
    assert not space.contains({"n": 3})


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"int": [10, 2]}, "low bound is above the high one; write [2, 10]"),
        ({"int": [1.5, 3]}, "use whole numbers"),
        ({"float": [0.0, 1.0], "log": True}, "log scale needs a low bound above 0"),
        ({"float": [1, "x"]}, "give two numbers [low, high]"),
        ({"float": [0.1, 1.0], "step": -1}, "step must be a positive number"),
        ({"range": [1, 2]}, "give exactly one of int, float, choice"),
        ({"int": [1, 2], "float": [1, 2]}, "give exactly one of int, float, choice"),
        ({"choice": []}, "non-empty list"),
        ({"choice": [{"a": 1}]}, "choices must be strings, numbers, booleans or null"),
        ({"choice": ["a"], "log": True}, "takes no log or step"),
        ([1, 2, 3], "bare list"),
    ],
)
def test_bad_parameters_are_named_in_the_error(spec: object, fragment: str) -> None:
    with pytest.raises(SearchSpaceError, match="parameter 'depth'") as info:
        SearchSpace.parse({"depth": spec})
    assert fragment in str(info.value)
    assert info.value.parameter == "depth"


def test_a_space_must_be_a_mapping() -> None:
    with pytest.raises(SearchSpaceError, match="non-empty mapping"):
        SearchSpace.parse("- just\n- a list\n")
    with pytest.raises(SearchSpaceError, match="non-empty mapping"):
        SearchSpace.parse({})


def test_unreadable_yaml_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SearchSpaceError, match="not valid YAML"):
        SearchSpace.parse("a: {int: [1, 2]\n")
    with pytest.raises(SearchSpaceError, match="cannot be read"):
        SearchSpace.parse(tmp_path / "missing.yaml")
