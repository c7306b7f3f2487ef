"""Can this process load a model? Its recorded requirements against what is installed.

A package that is missing, or installed at another major version than the model was saved
with, stops the load with one sentence listing every problem and the ``pip`` command that
fixes them. A different minor or patch version loads (formats are stable within a major
version); :func:`version_notes` lists those differences for a model card or a health page.

>>> check_requirements({"pip": "1.0"})  # pip 1.x is not installed here
Traceback (most recent call last):
...
ctloop.errors.ModelCompatibilityError: the model needs pip 1.0 but ...
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping

from ctloop.errors import ModelCompatibilityError

__all__ = ["check_requirements", "version_notes"]

# Distributions that provide the same import under another name.
_ALTERNATIVES = {"xgboost": ("xgboost-cpu",), "xgboost-cpu": ("xgboost",)}


def _installed(name: str) -> str | None:
    for candidate in (name, *_ALTERNATIVES.get(name, ())):
        try:
            return importlib.metadata.version(candidate)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _major(version: str) -> str:
    return version.split(".", 1)[0]


def check_requirements(requirements: Mapping[str, str]) -> None:
    """Raise :class:`~ctloop.errors.ModelCompatibilityError` when a required distribution
    is missing or at another major version than ``requirements`` records."""
    problems, fixes = [], []
    for name, wanted in sorted(requirements.items()):
        have = _installed(name)
        if have is None:
            problems.append(f"{name} {wanted} (not installed)")
        elif _major(have) != _major(wanted):
            problems.append(f"{name} {wanted} (installed: {have}, another major version)")
        else:
            continue
        fixes.append(f"'{name}=={wanted}'")
    if problems:
        raise ModelCompatibilityError(
            f"the model needs {'; '.join(problems)}; install with: pip install {' '.join(fixes)}"
        )


def version_notes(requirements: Mapping[str, str]) -> list[str]:
    """Sentences for each required distribution installed at another (compatible) version."""
    notes = []
    for name, wanted in sorted(requirements.items()):
        have = _installed(name)
        if have is not None and have != wanted:
            notes.append(f"{name}: saved with {wanted}, loaded with {have}")
    return notes
