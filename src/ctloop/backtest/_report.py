"""The backtest's report: an HTML page on the house page kit and the same data as JSON.

The page shows the headline metric over time (retrained on each fold and the static
first model), when the first model fell behind, each slice's metric over time and its
means, and every fold's periods, metrics and runs. ``write_report(result, "bt.html")``
writes ``bt.html`` and ``bt.json``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ctloop.pages import Markup, component, render_page

if TYPE_CHECKING:
    from ctloop.backtest._backtest import BacktestResult

__all__ = ["metric_chart", "slice_chart", "write_report"]

_WIDTH, _HEIGHT, _PAD = 760, 260, 48
_LINES = (("retrained", False, "#1f6fd1"), ("static", True, "#999"))
_CADENCE = "#2a9d4b"
_PALETTE = ("#1f6fd1", "#d1541f", "#2a9d4b", "#8e44ad", "#c99a06", "#17a2b8", "#e83e8c")
#: a slice chart draws this many values (the most rows first); the table lists them all
SLICE_LINES = len(_PALETTE)

Series = tuple[str, list[float | None], str]


def write_report(result: BacktestResult, path: Path) -> Path:
    """Write the page to ``path`` and its data to ``path`` with suffix ``.json``
    (each atomically: a reader never sees half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, _page(result))
    _write(path.with_suffix(".json"), json.dumps(result.to_dict(), indent=2, default=str))
    return path


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def metric_chart(result: BacktestResult) -> str:
    """An SVG line chart of the headline metric by fold: retrained (blue), static (grey)
    and, with ``retrain_every``, retrained every that many folds (green).

    A fold without a value leaves a gap in its line."""
    series = [(name, result.line(static), color) for name, static, color in _LINES]
    if result.retrain_every:
        series.append(("cadence", result.line(cadence=True), _CADENCE))
    return _chart(result, series, result.metric)


def slice_chart(result: BacktestResult, column: str) -> str:
    """An SVG line chart of the retrained headline metric by fold, one line per value of
    slice ``column`` (the :data:`SLICE_LINES` values with the most rows)."""
    values = result.slice_values(column)[:SLICE_LINES]
    series = [
        (value, result.slice_line(column, value), color)
        for value, color in zip(values, _PALETTE, strict=False)
    ]
    return _chart(result, series, f"{result.slice_metric} by {column}", legend=True)


def _chart(
    result: BacktestResult, series: Sequence[Series], title: str, *, legend: bool = False
) -> str:
    values = [v for _, line, _ in series for v in line if v is not None]
    if not values:
        return f'<svg width="{_WIDTH}" height="{_HEIGHT}" role="img"></svg>'
    low, high = min(values), max(values)
    low, high = (low - 0.01, high + 0.01) if high - low < 1e-9 else (low, high)
    count = max(len(result.folds) - 1, 1)

    def point(index: int, value: float) -> str:
        x = _PAD + index / count * (_WIDTH - 2 * _PAD)
        y = _HEIGHT - _PAD - (value - low) / (high - low) * (_HEIGHT - 2 * _PAD)
        return f"{x:.1f},{y:.1f}"

    parts = [_polylines(_css(name), line, color, point) for name, line, color in series]
    first, last = result.folds[0].fold.test_start, result.folds[-1].fold.test_start
    parts.append(
        f'<text x="{_PAD}" y="16" font-size="12">{_text(title)} {high:.3f}</text>'
        f'<text x="{_PAD}" y="{_HEIGHT - 8}" font-size="12">{low:.3f} · {first}</text>'
        f'<text x="{_WIDTH - _PAD - 70}" y="{_HEIGHT - 8}" font-size="12">{last}</text>'
    )
    if legend:
        parts.extend(
            f'<text x="{_WIDTH - _PAD + 4}" y="{30 + 14 * i}" font-size="11" '
            f'fill="{color}">{_text(name)}</text>'
            for i, (name, _, color) in enumerate(series)
        )
    width = _WIDTH + (60 if legend else 0)
    return f'<svg width="{width}" height="{_HEIGHT}" role="img">{"".join(parts)}</svg>'


def _polylines(name: str, line: list[float | None], color: str, point: object) -> str:
    runs: list[list[str]] = [[]]
    for index, value in enumerate(line):
        if value is None:
            runs.append([])
        else:
            runs[-1].append(point(index, value))  # type: ignore[operator]
    out = []
    for points in (r for r in runs if r):
        out.append(
            f'<polyline class="line-{name}" fill="none" stroke="{color}" stroke-width="2" '
            f'points="{" ".join(points)}"/>'
        )
        for xy in points:  # a fold alone between gaps still shows
            x, y = xy.split(",")
            out.append(f'<circle class="point-{name}" cx="{x}" cy="{y}" r="3" fill="{color}"/>')
    return "".join(out)


def _css(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def _text(value: str) -> str:
    return html.escape(value, quote=True)


def _page(result: BacktestResult) -> str:
    settings = [(k, "" if v is None else str(v)) for k, v in result.settings.items()]
    means = [
        ("folds", str(len(result.folds))),
        (f"mean {result.metric}, retrained", _shown(result.mean())),
        (f"mean {result.metric}, static", _shown(result.mean(static=True))),
        ("failed folds", str(len(result.failed))),
    ]
    if result.retrain_every:
        means.insert(
            3,
            (
                f"mean {result.metric}, retrained every {result.retrain_every} folds",
                _shown(result.mean(cadence=True)),
            ),
        )
    parts = [
        Markup("<h1>Backtest of {}</h1>").format(result.reference),
        component("kv", means + settings),
        _verdict(result),
        Markup("<h2>{} over time</h2>").format(result.metric),
        Markup(metric_chart(result)),
        Markup(
            "<p>Blue: retrained on each fold's window. Grey: the first fold's "
            "model, never retrained.{}</p>"
        ).format(
            f" Green: retrained every {result.retrain_every} folds." if result.retrain_every else ""
        ),
    ]
    for column in result.slices:
        parts.extend(_slice_section(result, column))
    parts += [Markup("<h2>Folds</h2>"), _fold_table(result)]
    return render_page(f"Backtest of {result.reference}", Markup("").join(parts))


def _verdict(result: BacktestResult) -> Markup:
    if result.mean(static=True) is None or len(result.folds) < 2:
        return Markup("")
    stale = result.to_dict()["stale_after"]
    if stale is None:
        return component(
            "verdict", "good", "The first model kept up.",
            f" Over {len(result.folds)} folds its {result.metric} never trailed retraining "
            "by more than 0.01 for three folds running: retraining less often loses little.",
        )  # fmt: skip
    return component(
        "verdict", "warn", f"The first model fell behind from {stale['test_start']}.",
        f" From there its {result.metric} trailed retraining by more than 0.01 (three "
        f"folds' mean), {stale['model_age_days']} days after its training data ended: "
        "retrain at least that often.",
    )  # fmt: skip


def _slice_section(result: BacktestResult, column: str) -> list[Markup]:
    rows = []
    for value in result.slice_values(column):
        retrained = _mean(result.slice_line(column, value))
        static = _mean(result.slice_line(column, value, static=True))
        scored = [v for v in result.slice_line(column, value) if v is not None]
        delta = None if retrained is None or static is None else retrained - static
        rows.append(
            [
                value,
                str(result.slice_rows(column, value)),
                str(len(scored)),
                _shown(retrained),
                _shown(static),
                "" if delta is None else f"{delta:+.4f}",
                _shown(min(scored) if scored else None),
            ]
        )
    columns = ["value", "rows", "folds scored", "retrained", "static", "difference", "worst"]
    return [
        Markup("<h2>{} by {}</h2>").format(result.slice_metric, column),
        Markup(slice_chart(result, column)),
        Markup("<p>Retrained per fold; the {} values with the most rows.</p>").format(SLICE_LINES),
        component("table", columns, rows, numeric=(1, 2, 3, 4, 5, 6)),
    ]


def _fold_table(result: BacktestResult) -> Markup:
    rows = []
    for f in result.folds:
        fold = f.fold
        retrained, static = f.metrics.get(result.metric), f.static_metrics.get(result.metric)
        delta = None if retrained is None or static is None else retrained - static
        row = [
            str(fold.index + 1),
            f"{fold.train_start or 'start'} → {fold.train_end}",
            f"{fold.test_start} → {fold.test_end}",
            _shown(retrained),
            _shown(static),
            "" if delta is None else f"{delta:+.4f}",
        ]
        if result.retrain_every:
            row.append(_shown(f.cadence_metrics.get(result.metric)))
        error = f.error or f.static_error or f.cadence_error or ""
        rows.append([*row, (f.run_id or "")[:8], error])
    columns = ["fold", "train", "score", "retrained", "static", "difference"]
    if result.retrain_every:
        columns.append(f"every {result.retrain_every}")
    columns += ["run", "error"]
    numeric = (3, 4, 5, 6) if result.retrain_every else (3, 4, 5)
    return component("table", columns, rows, numeric=numeric)


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def _shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
