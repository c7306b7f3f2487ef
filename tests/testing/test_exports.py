"""ctloop.testing exports exactly its ``__all__``, each name documented."""

from __future__ import annotations

import inspect
import subprocess
import sys

import ctloop.testing

LEAK_CHECK = """
import types, ctloop.testing as package
print(" ".join(
    name for name, value in vars(package).items()
    if not name.startswith("_") and not isinstance(value, types.ModuleType)
    and name != "annotations"
))
"""


def test_a_fresh_import_exports_only_all_and_each_name_has_a_docstring() -> None:
    found = subprocess.run(
        [sys.executable, "-c", LEAK_CHECK], capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(found) == sorted(ctloop.testing.__all__)
    for name in ctloop.testing.__all__:
        value = getattr(ctloop.testing, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert (value.__doc__ or "").strip(), name
