"""The backtest's HTML page: the headline metric per fold (retrained and static), and
every fold's periods, metrics and runs, on the house page kit."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ctloop.pages import Markup, component, render_page

if TYPE_CHECKING:
    from ctloop.backtest._backtest import BacktestResult

__all__ = ["metric_chart", "write_report"]

_WIDTH, _HEIGHT, _PAD = 760, 260, 44
_LINES = (("retrained", False, "#1f6fd1"), ("static", True, "#999"))


def write_report(result: BacktestResult, path: Path) -> Path:
    """Write the page to ``path`` (atomically: a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(_page(result), encoding="utf-8")
    tmp.replace(path)
    return path


def metric_chart(result: BacktestResult) -> str:
    """An SVG line chart of the headline metric by fold: retrained (blue), static (grey).

    A fold without a value leaves a gap in its line."""
    series = [(name, result.line(static), color) for name, static, color in _LINES]
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

    lines = []
    for name, line, color in series:
        runs: list[list[str]] = [[]]
        for index, value in enumerate(line):
            if value is None:
                runs.append([])
            else:
                runs[-1].append(point(index, value))
        for points in (r for r in runs if r):
            lines.append(
                f'<polyline class="line-{name}" fill="none" stroke="{color}" stroke-width="2" '
                f'points="{" ".join(points)}"/>'
            )
            for xy in points:  # a fold alone between gaps still shows
                x, y = xy.split(",")
                lines.append(
                    f'<circle class="point-{name}" cx="{x}" cy="{y}" r="3" fill="{color}"/>'
                )
    first, last = result.folds[0].fold.test_start, result.folds[-1].fold.test_start
    labels = (
        f'<text x="{_PAD}" y="16" font-size="12">{result.metric} {high:.3f}</text>'
        f'<text x="{_PAD}" y="{_HEIGHT - 8}" font-size="12">{low:.3f} · {first}</text>'
        f'<text x="{_WIDTH - _PAD - 70}" y="{_HEIGHT - 8}" font-size="12">{last}</text>'
    )
    return f'<svg width="{_WIDTH}" height="{_HEIGHT}" role="img">{"".join(lines)}{labels}</svg>'


def _page(result: BacktestResult) -> str:
    settings = [(k, "" if v is None else str(v)) for k, v in result.settings.items()]
    means = [
        ("folds", str(len(result.folds))),
        (f"mean {result.metric}, retrained", _shown(result.mean())),
        (f"mean {result.metric}, static", _shown(result.mean(static=True))),
        ("failed folds", str(len(result.failed))),
    ]
    rows = []
    for f in result.folds:
        fold = f.fold
        retrained, static = f.metrics.get(result.metric), f.static_metrics.get(result.metric)
        delta = None if retrained is None or static is None else retrained - static
        rows.append(
            [
                str(fold.index + 1),
                f"{fold.train_start or 'start'} → {fold.train_end}",
                f"{fold.test_start} → {fold.test_end}",
                _shown(retrained),
                _shown(static),
                "" if delta is None else f"{delta:+.4f}",
                (f.run_id or "")[:8],
                f.error or f.static_error or "",
            ]
        )
    columns = ["fold", "train", "score", "retrained", "static", "difference", "run", "error"]
    body = Markup("").join(
        [
            Markup("<h1>Backtest of {}</h1>").format(result.reference),
            component("kv", means + settings),
            Markup("<h2>{} by fold</h2>").format(result.metric),
            Markup(metric_chart(result)),
            Markup(
                "<p>Blue: retrained on each fold's window. Grey: the first fold's "
                "model, never retrained.</p>"
            ),
            Markup("<h2>Folds</h2>"),
            component("table", columns, rows, numeric=(3, 4, 5)),
        ]
    )
    return render_page(f"Backtest of {result.reference}", body)


def _shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
