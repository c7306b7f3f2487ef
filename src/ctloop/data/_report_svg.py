"""Inline SVG plots of column statistics: overlaid histograms and grouped category bars.

Each plot is one self-contained ``<svg>`` element (no script, no external reference) drawn
from statistics alone, so the plot of a billion rows is as small as the plot of a thousand.
Every series is drawn in its own colour on the same axes, with a legend on top.

>>> import numpy as np
>>> from ctloop.data import NumericStatistics
>>> svg = numeric_plot([Series("reference", NumericStatistics.from_values(np.arange(9.0)))])
>>> svg.startswith("<svg") and 'class="legend"' in svg
True
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from ctloop.data._category_sketch import CategoryCounts
from ctloop.data._statistics import NumericStatistics

REFERENCE_COLOUR = "#4c78a8"
CURRENT_COLOUR = "#f58518"
WIDTH = 560
HEIGHT = 230
BINS = 40
TOP_CATEGORIES = 10
LEFT, TOP, RIGHT, BOTTOM = 52, 34, 14, 40  # margins around the plot area
LABEL_WIDTH = 150  # room for category names left of the bars
_TAIL_QUANTILE = 0.001
_TIME_STEPS = (1, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 28 * 86400, 365 * 86400)


@dataclass(frozen=True)
class Series:
    """One data set's summary of a column, with the label and colour it is drawn in.

    >>> Series("current", CategoryCounts(), CURRENT_COLOUR).label
    'current'
    """

    label: str
    summary: NumericStatistics | CategoryCounts
    colour: str = REFERENCE_COLOUR


def numeric_plot(series: list[Series], *, timestamp: bool = False, integer: bool = False) -> str:
    """Histograms of numeric summaries on shared bins, overlaid (share of values per bin).

    Far tails (beyond the 0.1 % and 99.9 % quantiles, when they stretch the axis more than
    threefold) are cut off, and the plot says so. ``timestamp`` labels the axis with dates;
    ``integer`` puts the same number of whole values in every bin (no comb pattern).

    >>> s = NumericStatistics.from_values(np.array([1.0, 2.0, 2.0, 3.0]))
    >>> numeric_plot([Series("a", s)]).count("<path")
    1
    """
    drawn = [s for s in series if isinstance(s.summary, NumericStatistics) and s.summary.count]
    if not drawn:
        return empty_plot("no finite values to plot")
    summaries = [s.summary for s in drawn if isinstance(s.summary, NumericStatistics)]
    low, high, cut = numeric_range(summaries)
    edges = integer_edges(low, high) if integer else np.linspace(low, high, BINS + 1)
    low, high = float(edges[0]), float(edges[-1])
    shares = [bin_shares(summary, edges) for summary in summaries]
    top = max(float(max(share.max() for share in shares)), 1e-12)
    body = [_legend(drawn)]
    body += [_step_path(share, top, s.colour) for share, s in zip(shares, drawn)]
    body += [_x_axis(low, high, timestamp), _y_axis(top)]
    if cut:
        body.append(_note("tails beyond the 0.1 % and 99.9 % quantiles not shown"))
    return _svg(HEIGHT, "".join(body))


def category_plot(series: list[Series], *, top: int = TOP_CATEGORIES) -> str:
    """Grouped horizontal bars: each top category's share of values in every series.

    >>> c = CategoryCounts.from_counts(np.array(["a", "b"]), np.array([3, 1]))
    >>> category_plot([Series("a", c)]).count("<rect")
    3
    """
    drawn = [s for s in series if isinstance(s.summary, CategoryCounts) and s.summary.total]
    if not drawn:
        return empty_plot("no values to plot")
    summaries = [s.summary for s in drawn if isinstance(s.summary, CategoryCounts)]
    names = top_categories(summaries, top)
    shares = [[c.as_dict().get(n, 0) / c.total for n in names] for c in summaries]
    group = 8 + 12 * len(drawn)
    height = TOP + group * len(names) + 28
    body = [_legend(drawn)]
    scale = max(max(row) for row in shares) or 1.0
    for i, name in enumerate(names):
        body.append(_category_row(name, TOP + i * group, [row[i] for row in shares], scale, drawn))
    distinct = max(c.distinct for c in summaries)
    if distinct > len(names):
        body.append(_note(f"top {len(names)} of {distinct:,} distinct values", height - 8))
    return _svg(height, "".join(body))


def empty_plot(message: str) -> str:
    """A small plot that only says why there is nothing to draw.

    >>> "nothing here" in empty_plot("nothing here")
    True
    """
    text = f'<text x="{WIDTH / 2}" y="30" text-anchor="middle" class="muted">'
    return _svg(48, f"{text}{html.escape(message)}</text>")


def numeric_range(summaries: list[NumericStatistics]) -> tuple[float, float, bool]:
    """The x range covering every summary, and whether far tails were cut off.

    >>> numeric_range([NumericStatistics.from_values(np.array([0.0, 10.0]))])
    (0.0, 10.0, False)
    """
    low = min(float(s.min) for s in summaries if s.min is not None)
    high = max(float(s.max) for s in summaries if s.max is not None)
    inner_low = min(s.quantiles([_TAIL_QUANTILE])[0] for s in summaries)
    inner_high = max(s.quantiles([1 - _TAIL_QUANTILE])[0] for s in summaries)
    cut = inner_high > inner_low and high - low > 3 * (inner_high - inner_low)
    if cut:
        low, high = inner_low, inner_high
    if high <= low:  # one value: centre it in a bin
        width = max(abs(low), 1.0) * 0.01
        low, high = low - (BINS / 2 + 0.5) * width, low + (BINS / 2 - 0.5) * width
    return low, high, cut


def integer_edges(low: float, high: float) -> np.ndarray:
    """At most ``BINS`` equal bins with half-integer edges, so each holds whole values only.

    >>> integer_edges(0.0, 4.0).tolist()
    [-0.5, 0.5, 1.5, 2.5, 3.5, 4.5]
    """
    first, values = math.floor(low) - 0.5, math.floor(high) - math.floor(low) + 1
    width = math.ceil(values / BINS)
    return first + width * np.arange(math.ceil(values / width) + 1, dtype=float)


def bin_shares(summary: NumericStatistics, edges: np.ndarray) -> np.ndarray:
    """Share of the summary's values in each bin between ``edges`` (read from its CDF).

    >>> bin_shares(NumericStatistics.from_values(np.arange(4.0)), np.array([0.0, 2.0, 3.0]))
    array([0.5, 0.5])
    """
    cumulative = summary.cdf.at(edges)
    if summary.min is not None and edges[0] <= summary.min:
        cumulative[0] = 0.0  # values exactly at the minimum belong in the first bin
    if summary.max is not None and edges[-1] >= summary.max:
        cumulative[-1] = 1.0
    return np.diff(cumulative)


def top_categories(summaries: list[CategoryCounts], top: int) -> list[str]:
    """The ``top`` values with the largest share in any summary, largest first.

    >>> a = CategoryCounts.from_counts(np.array(["x", "y"]), np.array([9, 1]))
    >>> b = CategoryCounts.from_counts(np.array(["z"]), np.array([5]))
    >>> top_categories([a, b], 2)
    ['z', 'x']
    """
    best: dict[str, float] = {}
    for summary in summaries:
        for value, count in summary.top(top):
            best[value] = max(best.get(value, 0.0), count / summary.total)
    ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))
    return [value for value, _ in ranked[:top]]


def nice_ticks(low: float, high: float, *, timestamp: bool = False, count: int = 5) -> list[float]:
    """Round tick positions inside ``[low, high]``, about ``count`` of them.

    >>> nice_ticks(0.0, 10.0)
    [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    """
    raw = (high - low) / count
    if raw <= 0:
        return [low]
    step = _time_step(raw) if timestamp and raw < _TIME_STEPS[-1] else _number_step(raw)
    first = math.ceil(low / step) * step
    steps = int((high - first) / step + 1e-9)
    return [round(first + i * step, 12) for i in range(steps + 1)]


def format_number(value: float) -> str:
    """A number short enough for an axis or a table cell.

    >>> format_number(1234567.0), format_number(0.012345), format_number(2.0)
    ('1,234,567', '0.01235', '2')
    """
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1e4 and abs(value) < 1e15:
        return f"{value:,.0f}"
    if abs(value) >= 1e-3:
        return f"{value:.4g}"
    return f"{value:.3e}"


def format_time(seconds: float, *, precise: bool = True) -> str:
    """Seconds since the epoch as a UTC date (and time, when ``precise``).

    >>> format_time(86400.0), format_time(86400.0, precise=False)
    ('1970-01-02 00:00:00', '1970-01-02')
    """
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S" if precise else "%Y-%m-%d")


def _number_step(raw: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at least ``raw``."""
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * magnitude >= raw)


def _time_step(raw: float) -> float:
    """The smallest whole second, minute, hour, day, week, four weeks or year at least ``raw``."""
    return float(next(step for step in _TIME_STEPS if step >= raw))


def _svg(height: int, body: str) -> str:
    """The ``<svg>`` element around ``body``."""
    return (
        f'<svg class="plot" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'role="img">{body}</svg>'
    )


def _legend(series: list[Series]) -> str:
    """Colour swatches and labels along the top edge."""
    items, x = [], LEFT
    for s in series:
        label = html.escape(s.label)
        items.append(f'<rect x="{x}" y="8" width="12" height="12" fill="{s.colour}"/>')
        items.append(f'<text x="{x + 17}" y="18">{label}</text>')
        x += 30 + 7 * len(s.label)
    return f'<g class="legend">{"".join(items)}</g>'


def _step_path(shares: np.ndarray, top: float, colour: str) -> str:
    """One histogram's outline as a closed step path, filled half transparent."""
    width = (WIDTH - LEFT - RIGHT) / shares.size
    base = HEIGHT - BOTTOM
    points = [f"M{LEFT:.1f},{base:.1f}"]
    for i, share in enumerate(shares):
        y = base - float(share) / top * (base - TOP)
        points.append(f"L{LEFT + i * width:.1f},{y:.1f}L{LEFT + (i + 1) * width:.1f},{y:.1f}")
    points.append(f"L{WIDTH - RIGHT:.1f},{base:.1f}Z")
    return (
        f'<path d="{"".join(points)}" fill="{colour}" fill-opacity="0.35" '
        f'stroke="{colour}" stroke-width="1.5"/>'
    )


def _x_axis(low: float, high: float, timestamp: bool) -> str:
    """The x axis line with its tick labels."""
    base, span = HEIGHT - BOTTOM, WIDTH - LEFT - RIGHT
    parts = [f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" class="axis"/>']
    ticks = nice_ticks(low, high, timestamp=timestamp)
    coarse = len(ticks) < 2 or ticks[1] - ticks[0] >= 86400
    for tick in ticks:
        x = LEFT + (tick - low) / (high - low) * span
        label = format_time(tick, precise=not coarse) if timestamp else format_number(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" class="axis"/>')
        parts.append(f'<text x="{x:.1f}" y="{base + 16}" text-anchor="middle">{label}</text>')
    return "".join(parts)


def _y_axis(top: float) -> str:
    """Grid lines at 0, half and the top share, labelled in percent."""
    base, parts = HEIGHT - BOTTOM, []
    for fraction in (0.0, 0.5, 1.0):
        y = base - fraction * (base - TOP)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" class="grid"/>'
        )
        label = f"{fraction * top:.1%}"
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    return "".join(parts)


def _category_row(
    name: str, y: float, shares: list[float], scale: float, series: list[Series]
) -> str:
    """One category: its name, then one bar per series with the share written after it."""
    span = WIDTH - LEFT - LABEL_WIDTH - RIGHT - 44
    shown = name if len(name) <= 24 else name[:23] + "…"
    middle = y + 4 + 6 * len(series)
    parts = [
        f'<text x="{LEFT + LABEL_WIDTH - 6}" y="{middle + 4}" text-anchor="end">'
        f"<title>{html.escape(name)}</title>{html.escape(shown)}</text>"
    ]
    for i, (share, s) in enumerate(zip(shares, series)):
        top, length = y + 4 + 12 * i, max(share / scale * span, 0.5)
        x = LEFT + LABEL_WIDTH
        parts.append(
            f'<rect x="{x}" y="{top}" width="{length:.1f}" height="10" fill="{s.colour}"/>'
        )
        parts.append(f'<text x="{x + length + 4:.1f}" y="{top + 9}">{share:.1%}</text>')
    return "".join(parts)


def _note(text: str, y: float = HEIGHT - 6) -> str:
    """A small grey remark at the bottom right."""
    place = f'x="{WIDTH - RIGHT}" y="{y}" text-anchor="end" class="muted"'
    return f"<text {place}>{html.escape(text)}</text>"
