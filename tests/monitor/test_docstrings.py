"""The examples in ctloop.monitor's docstrings run and show what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "ctloop.monitor._alerts",
    "ctloop.monitor._analysis",
    "ctloop.monitor._canary",
    "ctloop.monitor._checks",
    "ctloop.monitor._html",
    "ctloop.monitor._report",
    "ctloop.monitor._settings",
    "ctloop.monitor._window",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_pass(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_public_names_are_the_documented_few() -> None:
    import ctloop.monitor

    assert sorted(ctloop.monitor.__all__) == [
        "Alert",
        "AlertSettings",
        "MonitorReport",
        "MonitorResult",
        "MonitorSettings",
        "analyse_window",
        "deliver_pending",
        "run_monitor",
    ]
    assert all(getattr(ctloop.monitor, name) for name in ctloop.monitor.__all__)
