"""Monitoring: judge windows of logged predictions against training data, the previous
window and the model's validation metrics, store the ``MonitorReport``, and raise alerts.

>>> from ctloop.monitor import run_monitor
>>> result = run_monitor("flights", "1d")  # doctest: +SKIP
>>> result.verdict  # doctest: +SKIP
'ok'
"""

from __future__ import annotations

import typing

from ctloop.monitor.report import MonitorReport
from ctloop.monitor.settings import AlertSettings, MonitorSettings

if typing.TYPE_CHECKING:
    from ctloop.monitor.alerts import Alert, deliver_pending
    from ctloop.monitor.analysis import analyse_window
    from ctloop.monitor.job import MonitorResult, run_monitor

__all__ = [
    "Alert",
    "AlertSettings",
    "MonitorReport",
    "MonitorResult",
    "MonitorSettings",
    "analyse_window",
    "deliver_pending",
    "run_monitor",
]

_LAZY = {
    "Alert": "ctloop.monitor.alerts",
    "deliver_pending": "ctloop.monitor.alerts",
    "analyse_window": "ctloop.monitor.analysis",
    "MonitorResult": "ctloop.monitor.job",
    "run_monitor": "ctloop.monitor.job",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ctloop.monitor' has no attribute {name!r}")
