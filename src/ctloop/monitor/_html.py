"""The HTML page of a ``MonitorReport``: verdict, performance, attributions, then the data
report of ``ctloop.data._report`` (window against training statistics) below.

>>> from ctloop.monitor import MonitorReport
>>> page = render_monitor_report(MonitorReport("m", 1, "a", "no-data", {"rows": 0}))
>>> page.startswith("<!DOCTYPE html>") and "no-data" in page
True
"""

from __future__ import annotations

from typing import Any

from ctloop.monitor._report import MonitorReport
from ctloop.pages import Markup, render


def render_monitor_report(report: MonitorReport) -> str:
    """One self-contained HTML page; every value from the data is HTML-escaped."""
    window = report.window
    span = (
        f"last {window.get('requests')} requests before {window.get('end')}"
        if window.get("requests")
        else f"{window.get('start')} to {window.get('end')}"
    )
    return render(
        "ctloop.monitor/monitor_report.html",
        title=f"Monitoring {report.model} v{report.version}",
        report=report,
        window=window,
        span=span,
        performance=_performance(report.performance),
        attribution=_attribution(report.attribution),
        data=_data_section(report),
    )


def _performance(found: dict[str, Any] | None) -> list[str] | None:
    if not found:
        return None
    return [
        found["metric"],
        _number(found["value"]),
        _number(found["baseline"]),
        _number(found["drop"]),
        _number(found["allowed_drop"]),
        str(found["rows"]),
        "degraded" if found["degraded"] else "ok",
    ]


def _attribution(found: dict[str, Any] | None) -> dict[str, Any] | None:
    if not found:
        return None
    names = list(dict.fromkeys([*found["reference"], *found["current"]]))
    rows = [
        [
            name,
            _number(found["reference"].get(name)),
            _number(found["current"].get(name)),
            "changed" if name in found["changed"] else "",
        ]
        for name in names
    ]
    return {"distance": found["distance"], "threshold": found["threshold"], "rows": rows}


def _data_section(report: MonitorReport) -> Markup:
    """The data report (window against training statistics), or nothing without statistics."""
    from ctloop.data import DatasetStatistics
    from ctloop.data._report import render_report

    stats = report.statistics
    if "current" not in stats:
        return Markup("")
    current = DatasetStatistics.from_dict(stats["current"])
    reference = DatasetStatistics.from_dict(stats["reference"]) if "reference" in stats else None
    compared = reference is not None and reference.num_rows > 0
    page = render_report(
        title="Window against training data" if reference else "Window statistics",
        reference=reference if compared and reference is not None else current,
        current=current if compared else None,
        drift=report.skew_report() if compared else None,
        standalone=False,
    )
    return Markup(page)


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"
