"""``ctloop backtest``: a training pipeline evaluated by rolling origin, fold by fold.

    ctloop backtest pipeline.py:training --from 2013-03 --to 2013-12 --every 1w \\
        --window expanding|sliding:8w --gap 1w [--slice carrier] [-p key=value] \\
        [--out backtest.html]
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ctloop.cli._common import JsonOpt, ParamOpt


def backtest(
    reference: Annotated[str, typer.Argument(help="path/to/file.py:PIPELINE or module:PIPELINE")],
    start: Annotated[str, typer.Option("--from", help="First cut-off: 2013-03 or 2013-03-01.")],
    end: Annotated[str, typer.Option("--to", help="Where the last scored period ends.")],
    every: Annotated[str, typer.Option(help="Period between cut-offs: 7d, 1w, 1mo.")] = "1w",
    window: Annotated[
        str, typer.Option(help="Training window: expanding, or sliding:SIZE (sliding:8w).")
    ] = "expanding",
    gap: Annotated[
        str | None, typer.Option(help="Left out before each cut-off (labels arrive late): 1w.")
    ] = None,
    train_from: Annotated[
        str | None,
        typer.Option(help="Where an expanding window starts (default: the data's start)."),
    ] = None,
    metric: Annotated[
        str | None, typer.Option(help="Headline metric (default eval.auc, else eval.rmse).")
    ] = None,
    static: Annotated[
        bool,
        typer.Option(
            "--static/--no-static", help="Also score the first fold's model on every fold."
        ),
    ] = True,
    retrain_every: Annotated[
        int | None,
        typer.Option(
            help="Also score a model retrained every N folds only (each fold scored by the "
            "last retraining's model).",
            min=1,
        ),
    ] = None,
    slices: Annotated[
        list[str] | None,
        typer.Option(
            "--slice", help="A column the pipeline's evaluate step slices by (repeatable)."
        ),
    ] = None,
    param: ParamOpt = None,
    out: Annotated[
        Path, typer.Option(help="Where to write the HTML report (its data: .json beside it).")
    ] = Path("backtest.html"),
    as_json: JsonOpt = False,
) -> None:
    """Train on each fold's window, score the period after it, record each fold as a run
    and write a report; exit code 1 when a fold failed."""
    from ctloop.backtest import plan_folds, run_backtest, write_report
    from ctloop.cli.workspace import open_workspace
    from ctloop.pipeline._loading import load_pipeline
    from ctloop.pipeline._params import parse_cli_params

    folds = plan_folds(start, end, every=every, window=window, gap=gap, train_from=train_from)
    pipeline_obj, canonical = load_pipeline(reference)
    params = parse_cli_params(pipeline_obj.fn, param or [], f"pipeline '{pipeline_obj.name}'")
    settings: dict[str, str | int | None] = {"from": start, "to": end, "every": every}
    settings |= {"window": window, "gap": gap, "retrain_every": retrain_every}

    def progress(outcome: object) -> None:
        if not as_json:
            fold = outcome.fold  # type: ignore[attr-defined]
            state = "failed" if outcome.error else "done"  # type: ignore[attr-defined]
            typer.echo(f"fold {fold.index + 1}/{len(folds)} {fold.test_start}: {state}", err=True)

    with open_workspace() as workspace:
        result = run_backtest(
            pipeline_obj, folds, workspace=workspace, reference=canonical, params=params,
            metric=metric, static=static, slices=slices or (), settings=settings,
            retrain_every=retrain_every,
            on_fold=progress,
        )  # fmt: skip
    write_report(result, out)
    if as_json:
        from ctloop.cli.output import emit_json

        emit_json({**result.to_dict(), "report": str(out)})
    else:
        typer.echo(result.summary())
        typer.echo(f"report: {out} (data: {out.with_suffix('.json')})")
    for failed in result.failed:
        why = failed.error or failed.static_error
        typer.echo(
            f"error: fold {failed.fold.index + 1} ({failed.fold.test_start}): {why}", err=True
        )
    if result.failed:
        raise typer.Exit(1)
