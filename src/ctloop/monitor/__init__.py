"""Monitoring: judge windows of logged predictions against training data, the previous
window and the model's validation metrics, store the ``MonitorReport``, and raise alerts.

>>> from ctloop.monitor import run_monitor
>>> result = run_monitor("flights", "1d")  # doctest: +SKIP
>>> result.verdict  # doctest: +SKIP
'ok'
"""

from __future__ import annotations

import typing

from ctloop.monitor._report import MonitorReport
from ctloop.monitor._settings import AlertSettings, MonitorSettings

if typing.TYPE_CHECKING:
    from ctloop.monitor._alerts import Alert, deliver_pending
    from ctloop.monitor._analysis import analyse_window
    from ctloop.monitor._job import MonitorResult, run_monitor

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
    "Alert": "ctloop.monitor._alerts",
    "deliver_pending": "ctloop.monitor._alerts",
    "analyse_window": "ctloop.monitor._analysis",
    "MonitorResult": "ctloop.monitor._job",
    "run_monitor": "ctloop.monitor._job",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ctloop.monitor' has no attribute {name!r}")
