"""The examples in ctloop.data's docstrings run and show what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "ctloop.data",
    "ctloop.data._anomalies",
    "ctloop.data._drift",
    "ctloop.data._schema",
    "ctloop.data._numeric_sketch",
    "ctloop.data._category_sketch",
    "ctloop.data._statistical_tests",
    "ctloop.data._statistics",
    "ctloop.data._tables",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_pass(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_public_names_are_the_documented_few() -> None:
    import ctloop.data

    assert set(ctloop.data.__all__) == {
        name for name in dir(ctloop.data) if not name.startswith("_") and name[0].isupper()
    } | {"compute_statistics", "merge_statistics", "infer_schema", "validate", "detect_drift"}


def test_import_ctloop_does_not_load_the_data_library() -> None:
    import subprocess
    import sys

    code = "import sys, ctloop; print('ctloop.data' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
