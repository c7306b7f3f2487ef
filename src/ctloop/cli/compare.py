"""``ctloop runs compare`` and ``ctloop runs metrics``: runs side by side, metric history.

    ctloop runs compare latest 3f9c2a1b 77ab01cd --only-diff
    ctloop runs metrics latest --step train --key loss --json

Rows named ``STEP/KEY`` were logged by that pipeline step (see :mod:`ctloop.store.compare`).
Rich, the store and the pipeline engine are imported when a command runs, so registering
these commands costs ``ctloop --help`` nothing.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ctloop.cli._common import JsonOpt, emit, show

if TYPE_CHECKING:
    from rich.table import Table

    from ctloop.store.compare import MetricPoint, RunComparison
    from ctloop.store.metadata import MetadataStore

DIFFERS = "≠"


def register(runs_app: typer.Typer) -> None:
    """Add ``compare`` and ``metrics`` to the ``ctloop runs`` command group."""
    runs_app.command("compare")(runs_compare)
    runs_app.command("metrics")(runs_metrics)


def runs_compare(
    runs: Annotated[
        list[str],
        typer.Argument(metavar="RUN", help="Two or more run ids, unique prefixes, or latest."),
    ],
    only_diff: Annotated[
        bool, typer.Option("--only-diff", help="Show only parameters and metrics that differ.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Compare runs side by side: parameters, last metric values, and which differ (≠)."""
    from ctloop.store.compare import compare_runs

    comparison = compare_runs(_metadata(), runs)
    if only_diff:
        comparison = comparison.only_differences()
    if as_json:
        emit(asdict(comparison))
        return
    show(_comparison_table(comparison))


def runs_metrics(
    run: Annotated[str, typer.Argument(help="Run id, a unique prefix, or latest.")],
    key: Annotated[str | None, typer.Option("--key", help="Only this metric.")] = None,
    step: Annotated[
        str | None, typer.Option("--step", help="Only metrics logged by this pipeline step.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show every logged value of a run's metrics, in order (per step index for curves)."""
    from ctloop.store.compare import metric_history
    from ctloop.store.metadata import resolve_run

    store = _metadata()
    points = metric_history(store, run, key=key, step=step)
    if as_json:
        emit([asdict(point) for point in points])
        return
    if not points:
        show(f"run {resolve_run(store, run).id[:8]} logged no metrics")
        return
    show(_history_table(points))


# -- rendering --------------------------------------------------------------------------
def _comparison_table(comparison: RunComparison) -> Table:
    from rich.table import Table

    from ctloop.cli.output import seconds, short, styled, when

    runs = comparison.runs
    table = Table(show_edge=False, box=None)
    for heading in ("", "key", *(short(r.id) for r in runs), "min", "max"):
        table.add_column(heading)
    table.add_row("", "pipeline", *(_text(r.pipeline) for r in runs))
    table.add_row("", "status", *(styled(r.status) for r in runs))
    table.add_row("", "started", *(when(r.started_at) for r in runs))
    table.add_row("", "duration", *(seconds(r.duration_s) for r in runs))
    table.add_row("", "trigger", *(_text(r.trigger) for r in runs))
    table.add_row("", "git", *(_text((r.git_commit or "-")[:12]) for r in runs))
    _section(table, "parameters", len(comparison.params))
    for p in comparison.params:
        _add(table, p.differs, p.key, [_text(v) for v in p.values])
    _section(table, "metrics", len(comparison.metrics))
    for m in comparison.metrics:
        cells = [_number(v) for v in m.values] + [_number(m.min), _number(m.max)]
        _add(table, m.differs, m.key, cells)
    return table


def _section(table: Table, title: str, count: int) -> None:
    table.add_row("", f"[bold]{title}[/]" if count else f"[dim]{title}: none[/]")


def _add(table: Table, differs: bool, key: str, cells: list[str]) -> None:
    from rich.markup import escape

    style = "bold yellow" if differs else None
    table.add_row(DIFFERS if differs else "", escape(key), *cells, style=style)


def _history_table(points: list[MetricPoint]) -> Table:
    from rich.markup import escape
    from rich.table import Table

    from ctloop.cli.output import when

    table = Table(show_edge=False, box=None)
    for heading in ("step name", "key", "step", "value", "logged at"):
        table.add_column(heading)
    for p in points:
        table.add_row(
            escape(p.step_name or "(run)"),
            escape(p.key),
            "" if p.step is None else str(p.step),
            _number(p.value),
            when(p.timestamp),
        )
    return table


def _text(value: Any) -> str:
    from rich.markup import escape

    return "-" if value is None else escape(str(value))


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


# -- plumbing ---------------------------------------------------------------------------
def _metadata() -> MetadataStore:
    """The configured metadata store, with runs whose process died marked failed."""
    from ctloop.cli.workspace import open_workspace

    return open_workspace(reconcile=True).metadata
