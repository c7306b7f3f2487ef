"""The HTML page of a ``MonitorReport``: verdict, performance, attributions, then the data
report of ``ctloop.data.report`` (window against training statistics) below.

>>> from ctloop.monitor.report import MonitorReport
>>> page = render_monitor_report(MonitorReport("m", 1, "a", "no-data", {"rows": 0}))
>>> page.startswith("<!DOCTYPE html>") and "no-data" in page
True
"""

from __future__ import annotations

from html import escape
from typing import Any

from ctloop.monitor.report import MonitorReport

_CSS = """
body{font-family:system-ui,sans-serif;margin:0;background:#f5f6f8;color:#1d2330;font-size:14px}
.monitor{max-width:1180px;margin:0 auto;padding:20px 20px 0}
.monitor h1{font-size:24px;margin:0 0 4px}.monitor h2{font-size:18px;margin:24px 0 10px}
.monitor table{border-collapse:collapse;background:#fff;width:100%}
.monitor th,.monitor td{padding:5px 8px;border-bottom:1px solid #e5e7eb;text-align:left}
.monitor th{background:#eef0f3}
.pill{display:inline-block;border-radius:10px;padding:2px 10px;color:#fff;font-weight:600}
.pill.ok{background:#2ca02c}.pill.drift{background:#b07d00}.pill.degraded{background:#d62728}
.pill.no-data{background:#9ca3af}
"""


def render_monitor_report(report: MonitorReport) -> str:
    """One self-contained HTML page; every value from the data is HTML-escaped."""
    title = f"Monitoring {report.model} v{report.version}"
    data_css, data_body = _data_section(report)
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            f"<title>{escape(title)}</title><style>{data_css}{_CSS}</style></head><body>",
            '<div class="monitor">',
            _header(title, report),
            _reasons(report),
            _performance(report.performance),
            _attribution(report.attribution),
            "</div>",
            data_body,
            "</body></html>\n",
        ]
    )


def _header(title: str, report: MonitorReport) -> str:
    window = report.window
    span = (
        f"last {window.get('requests')} requests before {window.get('end')}"
        if window.get("requests")
        else f"{window.get('start')} to {window.get('end')}"
    )
    return (
        f"<h1>{escape(title)}</h1>"
        f'<p><span class="pill {escape(report.verdict)}">{escape(report.verdict)}</span> '
        f"window {escape(str(window.get('spec', '')))}: {escape(span)}, "
        f"{window.get('rows', 0)} rows; model artifact "
        f"<code>{escape(report.model_artifact_id[:12])}</code></p>"
    )


def _reasons(report: MonitorReport) -> str:
    if not report.reasons:
        return "<p>Nothing to report.</p>"
    items = "".join(f"<li>{escape(r)}</li>" for r in report.reasons)
    return f"<h2>Why</h2><ul>{items}</ul>"


def _performance(found: dict[str, Any] | None) -> str:
    if not found:
        return "<h2>Performance</h2><p>No labelled rows in this window.</p>"
    cells = [
        found["metric"],
        _number(found["value"]),
        _number(found["baseline"]),
        _number(found["drop"]),
        _number(found["allowed_drop"]),
        str(found["rows"]),
        "degraded" if found["degraded"] else "ok",
    ]
    head = ["metric", "window", "baseline", "drop", "allowed drop", "labelled rows", "verdict"]
    return "<h2>Performance</h2>" + _table(head, [cells])


def _attribution(found: dict[str, Any] | None) -> str:
    if not found:
        return ""
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
    note = f"<p>Total variation {found['distance']:.3f} (threshold {found['threshold']:g}).</p>"
    head = ["feature", "training share", "window share", ""]
    return "<h2>Feature attributions</h2>" + note + _table(head, rows)


def _data_section(report: MonitorReport) -> tuple[str, str]:
    """The CSS and the body of the data report, or nothing without statistics."""
    from ctloop.data import DatasetStatistics
    from ctloop.data.report import render_report

    stats = report.statistics
    if "current" not in stats:
        return "", ""
    current = DatasetStatistics.from_dict(stats["current"])
    reference = DatasetStatistics.from_dict(stats["reference"]) if "reference" in stats else None
    page = render_report(
        title="Window against training data" if reference else "Window statistics",
        reference=reference if reference is not None and reference.num_rows else current,
        current=current if reference is not None and reference.num_rows else None,
        drift=report.skew_report() if reference is not None and reference.num_rows else None,
    )
    css = page.split("<style>", 1)[1].split("</style>", 1)[0]
    body = page.split("<body>", 1)[1].rsplit("</body>", 1)[0]
    return css, body


def _table(head: list[str], rows: list[list[str]]) -> str:
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{header}</tr>{body}</table>"


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"
