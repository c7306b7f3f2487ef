"""Rendering a :class:`~ctloop.registry._card.ModelCard` as Markdown or as HTML.

The card is first laid out as sections of paragraphs and tables (plain text), then
written in either format, so both always show the same content.

>>> print(_markdown_table(_Table(("metric", "value"), [("auc", "0.81")])))
| metric | value |
|---|---|
| auc | 0.81 |
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ctloop.evaluate._gate import Blessing
from ctloop.evaluate._report import Evaluation
from ctloop.pages import Markup, render

if TYPE_CHECKING:
    from ctloop.registry._card import ModelCard


@dataclass
class _Table:
    columns: tuple[str, ...]
    rows: Sequence[Sequence[str]]


@dataclass
class _Section:
    title: str
    level: int = 2
    blocks: list[str | _Table] = field(default_factory=list)


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _sections(card: ModelCard) -> list[_Section]:
    sections = [_summary(card), *_lineage(card), *_run(card)]
    if card.evaluation is not None:
        sections += _evaluation(card.evaluation)
    sections += [_gate(card.blessing), _requirements(card)]
    return sections


def _summary(card: ModelCard) -> _Section:
    v, run = card.version, card.run
    rows = [
        ("model", v.model),
        ("version", str(v.version)),
        ("aliases", ", ".join(v.aliases) or "-"),
        ("flavor", str(card.model.get("flavor") or "-")),
        ("task", str(card.model.get("task") or "-")),
        ("inputs", ", ".join(card.model.get("inputs") or ()) or "-"),
        ("artifact", v.artifact_id),
        ("created", f"{v.created_at:%Y-%m-%d %H:%M} UTC by {v.created_by}"),
        ("run", "-" if run is None else f"{run.id} ({run.pipeline}, {run.status})"),
        ("git commit", (run.git_commit if run else None) or "-"),
    ]
    rows += [(f"tag {key}", value) for key, value in sorted(v.tags.items())]
    if v.description:
        rows.insert(0, ("description", v.description))
    return _Section(f"Model card: {v.reference}", 1, [_Table(("", ""), rows)])


def _lineage(card: ModelCard) -> list[_Section]:
    data = _Table(
        ("data", "type", "rows", "made by", "artifact"),
        [
            (
                ", ".join(d.data_versions) or "-",
                d.type,
                _number(d.rows),
                d.made_by or "(input)",
                d.artifact_id,
            )
            for d in card.data
        ],
    )
    steps = _Table(
        ("step", "code", "parameters", "run"),
        [(s.step, s.code_hash[:12], _params(s.parameters), s.run_id[:8]) for s in card.steps],
    )
    return [
        _Section("Data lineage", blocks=[data if data.rows else "no data sets recorded upstream"]),
        _Section("Training steps", blocks=[steps if steps.rows else "no steps recorded"]),
    ]


def _params(parameters: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(parameters.items())) or "-"


def _run(card: ModelCard) -> list[_Section]:
    params = _Table(("parameter", "value"), sorted(card.parameters.items()))
    metrics = _Table(
        ("metric", "value"), [(k, _number(v)) for k, v in sorted(card.metrics.items())]
    )
    return [
        _Section("Parameters", blocks=[params if params.rows else "none recorded"]),
        _Section("Run metrics", blocks=[metrics if metrics.rows else "none recorded"]),
    ]


def _evaluation(ev: Evaluation) -> list[_Section]:
    base = ev.baseline
    columns = ("metric", "this model") + (("champion",) if base else ())
    rows = [
        (name, _number(value)) + ((_number(base.metrics.get(name)),) if base else ())
        for name, value in ev.metrics.items()
    ]
    intro = f"{ev.rows} held-out rows, label `{ev.label}`, task {ev.task}."
    if base is None:
        intro += " No champion was evaluated on these rows."
    sections = [_Section("Evaluation", blocks=[intro, _Table(columns, rows)])]
    for name, results in ev.slices.items():
        metric_names = list(ev.metrics)
        table = _Table(
            ("value", "rows", *metric_names),
            [
                (r.value, str(r.rows), *(_number(r.metrics.get(m)) for m in metric_names))
                if r.scored
                else (r.value, str(r.rows), *_skipped(r.skipped, len(metric_names)))
                for r in results
            ],
        )
        sections.append(_Section(f"Slices by {name}", 3, [table]))
    sections.append(_importance(ev))
    return sections


def _skipped(reason: str | None, width: int) -> list[str]:
    return ([reason or "-"] + ["-"] * width)[:width]


def _importance(ev: Evaluation) -> _Section:
    blocks: list[str | _Table] = []
    if ev.attributions:
        metric = ev.attributions[0].metric
        rows = [(a.feature, _number(a.mean_drop), _number(a.std_drop)) for a in ev.attributions]
        blocks += [
            f"Permutation importance: how much {metric} worsens when a feature is shuffled.",
            _Table(("feature", "mean drop", "std"), rows),
        ]
    if ev.contributions:
        method = ev.contributions[0].method
        shares = [(c.feature, _number(c.mean_abs)) for c in ev.contributions]
        blocks += [
            f"Native contributions ({method}): mean absolute contribution per row.",
            _Table(("feature", "mean |contribution|"), shares),
        ]
    return _Section("Feature importance", blocks=blocks or ["not computed"])


def _gate(blessing: Blessing | None) -> _Section:
    if blessing is None:
        return _Section("Gate", blocks=["no blessing recorded for this version"])
    verdict = "**passed**" if blessing.passed else "**failed**"
    champion = "" if blessing.champion_present else " No champion yet: only absolute thresholds."
    rows = [
        (
            c.threshold,
            c.where,
            _number(c.candidate),
            _number(c.champion),
            "pass" if c.passed else "FAIL",
            c.reason,
        )
        for c in blessing.comparisons
    ]
    blocks: list[str | _Table] = [f"The gate {verdict}.{champion}"]
    blocks.append(_Table(("check", "where", "model", "champion", "result", "reason"), rows))
    if blessing.infra is not None:
        infra = blessing.infra
        result = "passed" if infra.passed else f"failed at {infra.stage}: {infra.reason}"
        blocks.append(f"Infra validation {result} ({infra.seconds:.1f} s, fresh process).")
    blocks += [f"Note: {note}." for note in blessing.notes]
    return _Section("Gate", blocks=blocks)


def _requirements(card: ModelCard) -> _Section:
    found = sorted((card.model.get("requirements") or {}).items())
    table = _Table(("package", "version"), [(k, str(v)) for k, v in found])
    return _Section("Requirements", blocks=[table if table.rows else "none recorded"])


# -- Markdown -----------------------------------------------------------------------------
def markdown(card: ModelCard) -> str:
    """The card as Markdown."""
    parts = []
    for section in _sections(card):
        parts.append(f"{'#' * section.level} {section.title}")
        for block in section.blocks:
            parts.append(_markdown_table(block) if isinstance(block, _Table) else block)
    return "\n\n".join(parts) + "\n"


def _markdown_table(table: _Table) -> str:
    def row(cells: Sequence[str]) -> str:
        return "| " + " | ".join(_cell(c) for c in cells) + " |"

    lines = [row(table.columns), "|" + "---|" * len(table.columns)]
    return "\n".join(lines + [row(r) for r in table.rows])


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


# -- HTML ---------------------------------------------------------------------------------
def html_page(card: ModelCard) -> str:
    """The card as a self-contained HTML page (the house page kit); every value is escaped."""
    title = f"Model card: {card.version.reference}"
    return render("ctloop.registry/model_card.html", title=title, sections=_html_sections(card))


def html_body(card: ModelCard) -> Markup:
    """The card's content without the page around it, to place inside another page."""
    return Markup(render("ctloop.registry/model_card_body.html", sections=_html_sections(card)))


def _html_sections(card: ModelCard) -> list[_Section]:
    return [
        _Section(
            s.title, s.level, [b if isinstance(b, _Table) else _html_text(b) for b in s.blocks]
        )
        for s in _sections(card)
    ]


def _html_text(text: str) -> Markup:
    escaped = html.escape(text)
    for marker, tag in (("**", "strong"), ("`", "code")):
        pieces = escaped.split(marker)
        if len(pieces) % 2 == 1:  # balanced markers only
            escaped = "".join(f"<{tag}>{p}</{tag}>" if i % 2 else p for i, p in enumerate(pieces))
    return Markup(escaped)
