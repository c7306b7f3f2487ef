"""The examples in ctloop.evaluate's docstrings run and show what they say."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys

import pytest

MODULES = [
    "ctloop.evaluate",
    "ctloop.evaluate._attribution",
    "ctloop.evaluate._gate",
    "ctloop.evaluate._metrics",
    "ctloop.evaluate._report",
    "ctloop.evaluate._slices",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_pass(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_public_names_are_the_documented_few() -> None:
    import ctloop.evaluate

    functions = {"classification_metrics", "evaluate_model", "gate", "permutation_importance"}
    assert set(ctloop.evaluate.__all__) == {
        name for name in dir(ctloop.evaluate) if not name.startswith("_") and name[0].isupper()
    } | functions | {"regression_metrics"}


def test_import_ctloop_does_not_load_the_evaluate_package() -> None:
    code = "import sys, ctloop; print('ctloop.evaluate' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
