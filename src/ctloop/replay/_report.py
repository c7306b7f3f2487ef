"""The replay's HTML page: one chart of every line's metric per period (static, each
policy with its retrains marked, the every-period schedule), the table of lines, and
why each retrain fired; on the house page kit."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ctloop.pages import Markup, component, render_page

if TYPE_CHECKING:
    from ctloop.replay._lines import Line, ReplayResult

__all__ = ["metric_chart", "write_report"]

_WIDTH, _HEIGHT, _PAD = 820, 300, 48
_COLORS = ("#1f6fd1", "#d1761f", "#2a9d4b", "#a12ad1", "#c0392b", "#16a2a2")


def write_report(result: ReplayResult, path: Path) -> Path:
    """Write the page to ``path`` (atomically: a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(_page(result), encoding="utf-8")
    tmp.replace(path)
    return path


def _charted(result: ReplayResult) -> list[tuple[Line, str, bool]]:
    """(line, colour, dashed): static grey, each policy a colour, its weekly dashed."""
    found: list[tuple[Line, str, bool]] = [(result.static, "#999", False)]
    weekly_done = set()
    for index, policy in enumerate(result.policies):
        color = _COLORS[index % len(_COLORS)]
        found.append((policy, color, False))
        if policy.window not in weekly_done:
            weekly_done.add(policy.window)
            found.append((result.weekly(policy), "#555", True))
    return found


def metric_chart(result: ReplayResult) -> str:
    """An SVG line chart of the metric per period; a policy's retrains are marked with
    a triangle (hollow: the gate rejected it)."""
    series = _charted(result)
    values = [v for line, _, _ in series for v in line.values if v is not None]
    if not values:
        return f'<svg width="{_WIDTH}" height="{_HEIGHT}" role="img"></svg>'
    low, high = min(values), max(values)
    low, high = (low - 0.01, high + 0.01) if high - low < 1e-9 else (low, high)
    count = max(len(result.periods) - 1, 1)
    index_of = {label: i for i, label in enumerate(result.periods)}

    def xy(index: int, value: float) -> tuple[float, float]:
        x = _PAD + index / count * (_WIDTH - 2 * _PAD)
        return x, _HEIGHT - _PAD - (value - low) / (high - low) * (_HEIGHT - 2 * _PAD)

    parts = []
    for line, color, dashed in series:
        points = [xy(i, v) for i, v in enumerate(line.values) if v is not None]
        dash = ' stroke-dasharray="5 4"' if dashed else ""
        text = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(
            f'<polyline class="line" data-line="{_attr(line.name)}" fill="none" '
            f'stroke="{color}" stroke-width="2"{dash} points="{text}"><title>'
            f"{_attr(line.name)}</title></polyline>"
        )
        if line.kind != "policy":
            continue
        for retrain in line.retrains:
            i = index_of.get(retrain.period)
            value = line.values[i] if i is not None else None
            if value is None or i is None:
                continue
            x, y = xy(i, value)
            fill = color if retrain.promoted else "white"
            parts.append(
                f'<path class="retrain" d="M{x:.1f},{y - 9:.1f} l5,8 h-10 z" fill="{fill}" '
                f'stroke="{color}"><title>{_attr(retrain.period)}: '
                f"{_attr('; '.join(retrain.reasons))}</title></path>"
            )
    parts.append(
        f'<text x="{_PAD}" y="16" font-size="12">{_attr(result.metric)} {high:.3f}</text>'
        f'<text x="{_PAD}" y="{_HEIGHT - 10}" font-size="12">{low:.3f} · '
        f"{_attr(result.periods[0])}</text>"
        f'<text x="{_WIDTH - _PAD - 80}" y="{_HEIGHT - 10}" font-size="12">'
        f"{_attr(result.periods[-1])}</text>"
    )
    return f'<svg width="{_WIDTH}" height="{_HEIGHT}" role="img">{"".join(parts)}</svg>'


def _legend(result: ReplayResult) -> Markup:
    items = []
    for line, color, dashed in _charted(result):
        style = "dashed" if dashed else "solid"
        items.append(
            Markup('<li><span style="border-top:3px {} {};display:inline-block;width:24px">'
                   "</span> {}</li>").format(style, color, line.name)
        )  # fmt: skip
    return Markup("<ul>{}</ul>").format(Markup("").join(items))


def _page(result: ReplayResult) -> str:
    def shown(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    rows = [[result.static.name, "static", shown(result.static.mean), "0", "", "", "", ""]]
    for policy in result.policies:
        verdict = result.verdict(policy)
        rows.append(
            [
                policy.name,
                policy.description,
                shown(policy.mean),
                str(len(policy.retrains)),
                str(policy.promotions),
                "" if verdict["gap_closed"] is None else f"{verdict['gap_closed']:.1%}",
                "yes" if verdict["beats_equal_schedules"] else "no",
                str(policy.monitor.get("incidents", "")),
            ]
        )
    for window, lines in result.schedules.items():
        for line in lines:
            rows.append([line.name, f"window {window}, no gate", shown(line.mean),
                         str(len(line.retrains)), str(len(line.retrains)), "", "", ""])  # fmt: skip
    columns = ["line", "how", f"mean {result.metric}", "retrains", "promoted",
               "gain captured", "beats equal schedules", "incidents"]  # fmt: skip
    retrains = [
        [p.name, r.period, "; ".join(r.reasons), r.gate, "promoted" if r.promoted else "kept"]
        for p in result.policies
        for r in p.retrains
    ]
    settings = [(k, str(v)) for k, v in result.settings.items()]
    body = Markup("").join(
        [
            Markup("<h1>Replay: {} per period</h1>").format(result.metric),
            component("kv", [("periods", str(len(result.periods))), *settings]),
            Markup(metric_chart(result)),
            _legend(result),
            Markup(
                "<p>Triangles: a policy's retrains (hollow: the gate kept the champion). "
                "Dashed: retrained every period on the policy's window.</p>"
            ),
            Markup("<h2>Lines</h2>"),
            component("table", columns, rows, numeric=(2, 3, 4)),
            Markup("<h2>Why each retrain fired</h2>"),
            component("table", ["policy", "period", "why", "gate", "outcome"], retrains),
        ]
    )
    return render_page("Replay", body)


def _attr(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))
