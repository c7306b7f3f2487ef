"""The monitoring page's pictures as inline SVG drawn on the server: a heatmap of feature ×
window (each cell a link to that window's report), and line and bar charts that share its
time axis (one column per window, alerts marked on the column of the window they were
raised for). No script and no library: the page paints as soon as it arrives, and each
mark has a tooltip (its ``<title>``).

>>> axis = Axis(["2026-03-01T00:00:00+00:00", "2026-03-02T00:00:00+00:00"])
>>> axis.center(1) - axis.center(0) == axis.cell
True
>>> heat_colour(0.0), heat_colour(1.0), heat_colour(5.0)
('#f3f4f6', '#f2a900', '#b10f0f')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from markupsafe import Markup, escape

__all__ = ["Axis", "bar_chart", "heat_colour", "heatmap", "line_chart"]

_LEFT, _RIGHT, _ROW, _TOP = 120, 16, 22, 24
#: the heatmap's colours from no drift (0) through the threshold (1) to far past it (3+)
_STOPS = ((0.0, (0xF3, 0xF4, 0xF6)), (1.0, (0xF2, 0xA9, 0x00)), (3.0, (0xB1, 0x0F, 0x0F)))
_VERDICT = {"ok": "#2ca02c", "drift": "#b07d00", "degraded": "#d62728", "no-data": "#9ca3af"}
_LINE, _BASE, _BAD = "#1f6fd1", "#6b7280", "#d62728"


@dataclass(frozen=True)
class Axis:
    """The windows' columns, oldest first, by their end times (ISO 8601)."""

    ends: Sequence[str | None]

    @property
    def cell(self) -> int:
        """The width of one window's column."""
        return max(14, min(64, 900 // max(1, len(self.ends))))

    @property
    def width(self) -> int:
        return _LEFT + self.cell * len(self.ends) + _RIGHT

    def left(self, index: int) -> int:
        return _LEFT + index * self.cell

    def center(self, index: int) -> float:
        return self.left(index) + self.cell / 2

    def label(self, index: int) -> str:
        """A window's end as a short date (and time when windows are shorter than a day)."""
        end = self.ends[index]
        if not end:
            return "?"
        moment = datetime.fromisoformat(end)
        if all(_midnight(e) for e in self.ends):
            return f"{moment:%m-%d}"
        return f"{moment:%m-%d %H:%M}"

    def labels(self, top: float) -> str:
        """The tick labels under a chart, as many as fit."""
        step = max(1, -(-70 // self.cell))
        return "".join(
            f'<text x="{self.center(i):.1f}" y="{top + 14:.1f}" text-anchor="middle">'
            f"{escape(self.label(i))}</text>"
            for i in range(0, len(self.ends), step)
        )


def heat_colour(value: float) -> str:
    """The fill of a cell whose severity is ``value`` (1 = at the drift threshold)."""
    for (low, a), (high, b) in pairwise(_STOPS):
        if value <= high:
            t = max(0.0, (value - low) / (high - low))
            return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b, strict=True))
    return "#" + "".join(f"{x:02x}" for x in _STOPS[-1][1])


def heatmap(
    axis: Axis,
    features: Sequence[str],
    cells: Sequence[Mapping[str, Mapping[str, Any]]],
    windows: Sequence[Mapping[str, Any]],
    link: Callable[[int], str],
    alerts: Mapping[int, Sequence[str]],
) -> Markup:
    """Feature × window: a row per feature, a column per window, coloured by severity; a
    strip of verdicts on top and a mark over each window that raised an alert."""
    height = _TOP + 16 + _ROW * len(features) + 22
    parts = [_open("heatmap", axis.width, height)]
    for i, window in enumerate(windows):
        verdict = str(window.get("verdict"))
        tip = f"{axis.label(i)}: {verdict}" + "".join(f"\n{r}" for r in window.get("reasons", ()))
        parts.append(
            f'<a href="{escape(link(i))}"><rect class="verdict" data-window="{i}" '
            f'data-verdict="{escape(verdict)}" x="{axis.left(i) + 1}" y="{_TOP}" '
            f'width="{axis.cell - 2}" height="10" fill="{_VERDICT.get(verdict, "#9ca3af")}">'
            f"<title>{escape(tip)}</title></rect></a>"
        )
        for cause in alerts.get(i, ()):
            x = axis.center(i)
            parts.append(
                f'<path class="alert" data-window="{i}" d="M{x - 5:.1f} 4 L{x + 5:.1f} 4 '
                f'L{x:.1f} 14 Z" fill="{_BAD}"><title>{escape(cause)}</title></path>'
            )
    for row, feature in enumerate(features):
        y = _TOP + 16 + row * _ROW
        parts.append(
            f'<text x="{_LEFT - 8}" y="{y + 15}" text-anchor="end">{escape(feature)}</text>'
        )
        for i, found in enumerate(cells):
            parts.append(_cell(axis, i, y, feature, found.get(feature), link(i)))
    parts.append(axis.labels(_TOP + 16 + _ROW * len(features)))
    parts.append("</svg>")
    return Markup("".join(parts))


def _cell(
    axis: Axis, index: int, y: float, feature: str, column: Mapping[str, Any] | None, href: str
) -> str:
    if column is None:
        return (
            f'<rect class="cell untested" data-feature="{escape(feature)}" data-window="{index}" '
            f'x="{axis.left(index) + 1}" y="{y + 1}" width="{axis.cell - 2}" '
            f'height="{_ROW - 2}" fill="#ffffff" stroke="#e5e7eb"><title>{escape(feature)}: '
            "not tested in this window</title></rect>"
        )
    level = float(column.get("severity") or 0.0)
    drifted = bool(column.get("drifted"))
    score = column.get("p_value")
    measure = f"p = {score:.3g}" if score is not None else f"{column.get('statistic', 0):.3g}"
    tip = (
        f"{feature}, window ending {axis.label(index)}: {column.get('test')} {measure} "
        f"(threshold {column.get('threshold'):g})" + (" — drifted" if drifted else "")
    )
    stroke = ' stroke="#1d2330" stroke-width="2"' if drifted else ""
    return (
        f'<a href="{escape(href)}"><rect class="cell{" drifted" if drifted else ""}" '
        f'data-feature="{escape(feature)}" data-window="{index}" data-severity="{level:.3f}" '
        f'x="{axis.left(index) + 1}" y="{y + 1}" width="{axis.cell - 2}" height="{_ROW - 2}" '
        f'fill="{heat_colour(level)}"{stroke}><title>{escape(tip)}</title></rect></a>'
    )


def line_chart(
    axis: Axis,
    name: str,
    values: Sequence[float | None],
    *,
    reference: Sequence[float | None] = (),
    bad: Sequence[bool] = (),
    reference_label: str = "baseline",
    height: int = 150,
    alerts: Mapping[int, Sequence[str]] | None = None,
) -> Markup:
    """One value per window as a line (a gap where a window has none), an optional
    reference line (dashed), the bad windows' points in red and a mark over each window
    that raised one of ``alerts`` (window index → causes)."""
    known = [v for v in [*values, *reference] if v is not None]
    if not known:
        return Markup('<p class="muted">No values yet.</p>')
    low, high = min(known), max(known)
    if low == high:
        low, high = low - (abs(low) or 1) * 0.05, high + (abs(high) or 1) * 0.05
    pad = (high - low) * 0.08
    low, high = low - pad, high + pad
    plot = height - 30

    def y(v: float) -> float:
        return _TOP / 2 + (high - v) / (high - low) * (plot - _TOP / 2)

    parts = [_open("line", axis.width, height, name)]
    for tick in (low + pad, (low + high) / 2, high - pad):
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{axis.width - _RIGHT}" y1="{y(tick):.1f}" '
            f'y2="{y(tick):.1f}"/><text x="{_LEFT - 8}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end">{tick:.4g}</text>'
        )
    if any(v is not None for v in reference):
        parts.append(_path(axis, reference, y, _BASE, "reference", dashed=True))
        parts.append(
            f'<text class="muted" x="{axis.width - _RIGHT}" y="{height - 2}" '
            f'text-anchor="end">dashed: {escape(reference_label)}</text>'
        )
    parts.append(_path(axis, values, y, _LINE, "series"))
    parts.append(_alert_marks(axis, alerts or {}))
    for i, value in enumerate(values):
        if value is None:
            continue
        red = i < len(bad) and bad[i]
        parts.append(
            f'<circle class="point{" bad" if red else ""}" data-window="{i}" '
            f'cx="{axis.center(i):.1f}" cy="{y(value):.1f}" r="{4 if red else 3}" '
            f'fill="{_BAD if red else _LINE}"><title>{escape(axis.label(i))}: {name} '
            f"{value:.4g}</title></circle>"
        )
    parts.append(axis.labels(plot))
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(
    axis: Axis,
    name: str,
    values: Sequence[float | None],
    height: int = 120,
    alerts: Mapping[int, Sequence[str]] | None = None,
) -> Markup:
    """One bar per window (e.g. the predictions it logged), with a mark over each window
    that raised one of ``alerts``."""
    top = max([v for v in values if v is not None] or [0.0])
    if top <= 0:
        return Markup('<p class="muted">No values yet.</p>')
    plot = height - 30
    parts = [_open("bars", axis.width, height, name)]
    parts.append(
        f'<text x="{_LEFT - 8}" y="{_TOP / 2 + 4:.1f}" text-anchor="end">{top:,.0f}</text>'
        f'<text x="{_LEFT - 8}" y="{plot:.1f}" text-anchor="end">0</text>'
    )
    for i, value in enumerate(values):
        size = (value or 0.0) / top * (plot - _TOP / 2)
        parts.append(
            f'<rect class="bar" data-window="{i}" x="{axis.left(i) + 2}" y="{plot - size:.1f}" '
            f'width="{max(1, axis.cell - 4)}" height="{size:.1f}" fill="{_LINE}">'
            f"<title>{escape(axis.label(i))}: {value or 0:,.0f} {escape(name)}</title></rect>"
        )
    parts.append(_alert_marks(axis, alerts or {}))
    parts.append(axis.labels(plot))
    parts.append("</svg>")
    return Markup("".join(parts))


def _alert_marks(axis: Axis, alerts: Mapping[int, Sequence[str]]) -> str:
    """A red mark over the column of each window that raised an alert (as on the heatmap)."""
    parts = []
    for i, causes in sorted(alerts.items()):
        x = axis.center(i)
        tip = escape("\n".join(causes))
        parts.append(
            f'<path class="alert" data-window="{i}" d="M{x - 4:.1f} 1 L{x + 4:.1f} 1 '
            f'L{x:.1f} 9 Z" fill="{_BAD}"><title>{tip}</title></path>'
        )
    return "".join(parts)


def _path(
    axis: Axis,
    values: Sequence[float | None],
    y: Callable[[float], float],
    colour: str,
    kind: str,
    *,
    dashed: bool = False,
) -> str:
    steps, pen = [], "M"
    for i, value in enumerate(values):
        if value is None:
            pen = "M"
            continue
        steps.append(f"{pen}{axis.center(i):.1f} {y(value):.1f}")
        pen = "L"
    dash = ' stroke-dasharray="5 4"' if dashed else ""
    return (
        f'<path class="{kind}" d="{" ".join(steps)}" fill="none" stroke="{colour}" '
        f'stroke-width="2"{dash}/>'
    )


def _open(kind: str, width: int, height: int, name: str = "") -> str:
    return (
        f'<svg class="plot {kind}" data-chart="{escape(name or kind)}" '
        f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">'
    )


def _midnight(end: str | None) -> bool:
    return bool(end) and datetime.fromisoformat(str(end)).strftime("%H:%M:%S") == "00:00:00"
