"""``ctloop demo``: run the continuous-training loop on the flights example."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

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
    keep_ui: Annotated[
        bool,
        typer.Option(
            "--keep-ui", help="Keep the web UI on the demo's workspace up (Ctrl-C stops it)."
        ),
    ] = False,
) -> None:
    """Train on Jan–Feb 2013, serve, replay the year over HTTP, retrain on decay, report.

    Prints each week's AUC (static model and served model) with what the loop did, then
    the summary: the loop's margin over the static model, how each retraining ended
    (released, rejected by the gate, failed), and the incidents opened next to the weeks
    the served model really degraded.
    """
    import os

    # The server, the scheduler's runs and this process share the cores: one OpenMP
    # thread each keeps scikit-learn from oversubscribing them.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from rich.console import Console

    from ctloop.demo._loop import DemoConfig, run_demo

    console = Console(soft_wrap=True)  # a week and its events one line each, also in a log
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
    console.print(f"[bold]3. Summary[/bold] ({summary.seconds:.0f} s)")
    for line in summary.lines():
        console.print(f"   {line}")
    console.print(f"   report: {summary.report}")
    _show_ui(console, keep=keep_ui)


def _show_ui(console: Console, *, keep: bool) -> None:
    """Start ``ctloop server --no-auth`` on loopback over the demo's workspace (the demo
    leaves the current folder there), print the UI's address, and stop it again unless
    ``keep``, in which case it runs until Ctrl-C."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "ctloop", "server", "--no-auth", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}runs", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None:
                    console.print(f"[red]the web UI did not start: {' '.join(command)}[/red]")
                    raise typer.Exit(1) from None
                time.sleep(0.1)
        console.print(f"   web UI on the demo's workspace: {url}")
        if keep:
            console.print("   (--keep-ui: it stays up; Ctrl-C stops it)")
            process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        process.terminate()
        process.wait(10)
