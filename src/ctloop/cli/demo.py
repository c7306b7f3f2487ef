"""``ctloop demo``: run the continuous-training loop on the flights example."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["demo"]


def demo(
    example: Annotated[
        Path, typer.Option(help="The flights example folder (pipeline.py, continuous.py).")
    ] = Path("examples/flights"),
    workdir: Annotated[
        Path, typer.Option(help="Where the demo keeps its store and report (emptied first).")
    ] = Path("demo-output"),
    last_week: Annotated[int, typer.Option(help="Last week of 2013 to replay (9-52).")] = 52,
    sample: Annotated[float, typer.Option(help="Share of each week's flights sent.")] = 0.2,
) -> None:
    """Train on Jan–Feb 2013, serve, replay the year over HTTP, retrain on decay, report."""
    import os

    # The server, the scheduler's runs and this process share the cores: one OpenMP
    # thread each keeps scikit-learn from oversubscribing them.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from rich.console import Console

    from ctloop.demo.loop import DemoConfig, run_demo

    console = Console()
    if not (example / "continuous.py").exists():
        console.print(
            f"[red]{example}/continuous.py not found; run from the ctloop checkout "
            "or pass --example[/red]"
        )
        raise typer.Exit(2)
    config = DemoConfig(
        example=example.resolve(), workdir=workdir, last_week=last_week, sample=sample
    )
    summary = run_demo(config, console)
    console.print(
        f"[bold]3. Summary[/bold]: mean weekly AUC static {summary.mean_auc('static'):.4f}, "
        f"served by the loop {summary.mean_auc('served'):.4f}; "
        f"{summary.retrains} retraining firings, {summary.count('canary')} canaries "
        f"({summary.promotions} promoted, {summary.count('auto-rollback')} rolled back), "
        f"{len(summary.alerts)} alerts; {summary.seconds:.0f} s"
    )
    console.print(f"   report: {summary.report}")
