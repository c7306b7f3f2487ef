"""``ctloop replay``: a model's own history replayed period by period, to compare
retraining policies with the model never retrained and with fixed schedules.

    ctloop replay DATA --pipeline train.py:training --time-column date --label late \\
        --every 1w --label-delay 1w [--start 2013-03-05] [--policy NAME_OR_FILE ...] \\
        [--out replay.html] [--json]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ctloop.cli._common import ParamOpt


def replay(
    data: Annotated[Path, typer.Argument(help="The time-stamped table: Parquet or CSV.")],
    pipeline: Annotated[
        str,
        typer.Option(
            help="path/to/file.py:NAME: a @pipeline taking train_start and train_end, or a "
            "function train(rows) returning a fitted model."
        ),
    ],
    time_column: Annotated[str, typer.Option(help="The rows' event time.")],
    label: Annotated[str, typer.Option(help="The label column (0/1, or a number).")],
    every: Annotated[str, typer.Option(help="Period between decisions: 1d, 1w, 1mo.")] = "1w",
    label_delay: Annotated[str, typer.Option(help="How late labels arrive: 0, 1w.")] = "1w",
    start: Annotated[
        str | None, typer.Option(help="First served period (default: a fifth into the data).")
    ] = None,
    end: Annotated[str | None, typer.Option(help="Where the replay stops.")] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option(
            help="A retraining policy: a name under 'retraining:' in ctloop.yaml, a built-in "
            "(drift, the default; degraded, guarded, monthly) or a YAML file. Repeat to compare."
        ),
    ] = None,
    metric: Annotated[
        str | None, typer.Option(help="The metric (default auc, or rmse for a number).")
    ] = None,
    schedules: Annotated[
        str, typer.Option(help="Fixed schedules to compare: periods between retrains.")
    ] = "1,2,3,4,6,8",
    param: ParamOpt = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Processes that train the models of a training function side by side "
            "(a pipeline trains in this process)."
        ),
    ] = 1,
    out: Annotated[Path, typer.Option(help="Where to write the HTML report.")] = Path(
        "replay.html"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON line.")] = False,
) -> None:
    """Replay DATA through the pipeline, the monitor and each policy on a simulated
    clock; print static vs each policy vs fixed schedules and write a report."""
    from ctloop.cli.output import emit_json
    from ctloop.cli.workspace import open_workspace
    from ctloop.config import Settings
    from ctloop.errors import ConfigError
    from ctloop.pipeline import Pipeline
    from ctloop.replay import Line, load_policies, run_replay, trainer_for, write_report
    from ctloop.replay._trainers import load_training_target

    settings = Settings.load()
    policies = load_policies(policy or [], settings.retraining)
    target, canonical = load_training_target(pipeline)
    table = _read_table(data)
    every_k = _schedules(schedules)
    params = _params(target, param or [])
    if workers > 1 and isinstance(target, Pipeline):
        raise ConfigError(
            "--workers trains a training function's models in forked processes; a pipeline's "
            "runs write to the workspace, so they run one at a time: leave --workers out"
        )

    def progress(line: Line) -> None:
        if not as_json:
            mean = "n/a" if line.mean is None else f"{line.mean:.4f}"
            typer.echo(f"{line.name}: mean {mean}, {len(line.retrains)} retrain(s)", err=True)

    with open_workspace() as workspace:
        trainer = trainer_for(
            target, label=label, time_column=time_column, workspace=workspace,
            params=params, reference=canonical,
        )  # fmt: skip
        result = run_replay(
            table, trainer, time_column=time_column, label=label, every=every,
            label_delay=label_delay, start=start, end=end, policies=policies,
            schedules=every_k, metric=metric, monitoring=settings.monitoring,
            on_line=progress, workers=workers,
        )  # fmt: skip
    write_report(result, out)
    line = {**result.summary_line(), "report": str(out)}
    if as_json:
        emit_json(line)
        return
    _print(result, out)


def _print(result: object, out: Path) -> None:
    from ctloop.replay import ReplayResult

    assert isinstance(result, ReplayResult)
    metric = result.metric
    typer.echo(f"{len(result.periods)} periods from {result.periods[0]}; mean {metric}:")
    typer.echo(f"  static                {_shown(result.static.mean)}")
    for p in result.policies:
        verdict = result.verdict(p)
        gap = verdict["gap_closed"]
        typer.echo(
            f"  policy {p.name:<14} {_shown(p.mean)}  {len(p.retrains)} retrain(s), "
            f"{p.promotions} promoted, {p.monitor.get('incidents', 0)} incident(s); "
            f"{'n/a' if gap is None else f'{gap:.0%}'} of every period's gain; "
            f"{'beats' if verdict['beats_equal_schedules'] else 'does not beat'} fixed "
            "schedules of as many retrains"
        )
        for r in p.retrains:
            outcome = "promoted" if r.promoted else f"kept the champion ({r.gate})"
            typer.echo(f"      {r.period}: {'; '.join(r.reasons)} -> {outcome}")
    for window, lines in result.schedules.items():
        for s in lines:
            typer.echo(f"  {s.name:<21} {_shown(s.mean)}  {len(s.retrains)} retrain(s) ({window})")
    typer.echo(f"report: {out}")


def _shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _read_table(path: Path) -> object:
    import pandas as pd

    from ctloop.errors import ConfigError

    if not path.exists():
        raise ConfigError(f"data file {path} does not exist")
    try:
        if path.suffix.lower() in (".csv", ".tsv"):
            return pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
        if path.suffix.lower() in (".parquet", ".pq") or path.is_dir():
            return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"data file {path} could not be read: {exc}") from exc
    raise ConfigError(f"data file {path} is neither Parquet nor CSV; write it as one")


def _schedules(text: str) -> list[int]:
    from ctloop.errors import ConfigError

    try:
        found = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        found = []
    if not found or min(found) < 1:
        raise ConfigError(
            f"--schedules {text!r} is not a list of whole numbers of periods 1 or more (1,2,4)"
        )
    return found


def _params(target: object, values: list[str]) -> dict[str, object]:
    from ctloop.errors import ConfigError
    from ctloop.pipeline import Pipeline
    from ctloop.pipeline._params import parse_cli_params

    if not values:
        return {}
    if not isinstance(target, Pipeline):
        raise ConfigError("-p sets a pipeline's parameters; --pipeline names a function")
    return dict(parse_cli_params(target.fn, values, f"pipeline '{target.name}'"))
