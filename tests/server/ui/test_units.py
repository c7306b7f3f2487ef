"""The UI's pure parts: the step-graph layout, number formats, the CSRF token and the
run search's grammar, with their docstring examples."""

from __future__ import annotations

import doctest
import importlib

import pytest

from ctloop.server._errors import BadRequestError
from ctloop.server._run_search import parse_conditions, parse_sort
from ctloop.server._ui._dag import layout
from ctloop.server._ui._session import csrf_token, safe_next

MODULES = [
    "ctloop.server._ui",
    "ctloop.server._ui._dag",
    "ctloop.server._ui._render",
    "ctloop.server._ui._session",
    "ctloop.server._ui._lineage_pages",
    "ctloop.server._ui._viewers",
    "ctloop.server._ui._artifact_pages",
    "ctloop.server._run_search",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_pass(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_a_step_sits_one_column_right_of_the_longest_path_that_feeds_it() -> None:
    steps = [(n, "succeeded") for n in ("load", "split", "fit", "score")]
    edges = [("load", "split"), ("split", "fit"), ("split", "score"), ("fit", "score")]
    graph = layout(steps, edges)
    assert [(n.name, n.column, n.row) for n in graph.nodes] == [
        ("load", 0, 0),
        ("split", 1, 0),
        ("fit", 2, 0),
        ("score", 3, 0),
    ]
    assert len(graph.edges) == 4
    wide = layout([("a", "ok"), ("b", "ok"), ("c", "ok")], [("a", "b"), ("a", "c")])
    assert [(n.column, n.row) for n in wide.nodes] == [(0, 0), (1, 0), (1, 1)]


def test_tokens_differ_by_key_and_secret() -> None:
    assert csrf_token(b"a" * 32, "ctl_1") != csrf_token(b"a" * 32, "ctl_2")
    assert csrf_token(b"a" * 32, "ctl_1") != csrf_token(b"b" * 32, "ctl_1")


def test_after_signing_in_the_browser_stays_on_this_server() -> None:
    assert safe_next("/runs/abc?x=1") == "/runs/abc?x=1"
    for target in ("https://evil.example", "//evil.example", "/\\evil", "", None):
        assert safe_next(target) == "/runs"


def test_bad_conditions_and_sorts_are_sentences_naming_the_field() -> None:
    with pytest.raises(BadRequestError, match="cannot read the condition") as found:
        parse_conditions("auc is good")
    assert found.value.field == "where"
    with pytest.raises(BadRequestError, match="which is not a number"):
        parse_conditions("auc > high")
    with pytest.raises(BadRequestError, match="cannot sort runs by 'colour'") as found:
        parse_sort("colour")
    assert found.value.field == "sort"
    assert parse_sort(None) == ("column", "started_at", True)


def test_parameter_conditions_compare_numbers_as_numbers_and_text_as_text() -> None:
    (degree,) = parse_conditions("params.degree >= 2")
    assert degree.holds(2) and degree.holds("10") and not degree.holds(1)
    assert not degree.holds(None)
    (model,) = parse_conditions("params.model = 'ridge'")
    assert model.holds("ridge") and not model.holds("lasso")
    (above,) = parse_conditions("params.model > ridge")
    assert not above.holds("zebra")  # text has no order here, so nothing is above it
    assert parse_sort("-params.degree") == ("param", "degree", True)


def test_every_asset_a_template_names_ships_in_the_package() -> None:
    import re
    from importlib import resources

    package = resources.files("ctloop.server._ui")
    named = set()
    for template in package.joinpath("templates").iterdir():
        named |= set(re.findall(r"/ui/static/([\w./-]+)", template.read_text()))
    assert {"ui.js", "ui.css", "lineage.js"} <= named
    for name in named - {"ctloop.css"}:
        assert package.joinpath("static", name).is_file(), name
