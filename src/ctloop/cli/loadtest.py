"""``ctloop loadtest``: load a prediction server and gate a release on what it sustains.

    ctloop loadtest http://127.0.0.1:8080 --concurrency 32 --duration 30 \\
        --body-file requests.jsonl --max-p99-ms 20 --min-qps 1000

Exit status: 0 when every bound is met, 1 when one is missed (each named on stderr) or the
server cannot be reached, 2 for usage errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ctloop.serve._loadtest import LoadTestConfig, LoadTestResult


def loadtest(
    url: Annotated[str, typer.Argument(help="Server URL; a URL without a path targets /predict.")],
    path: Annotated[
        str | None, typer.Option(help="Request path, replacing the URL's (e.g. /invocations).")
    ] = None,
    method: Annotated[str, typer.Option("--method", "-X", help="HTTP method.")] = "POST",
    body: Annotated[str | None, typer.Option(help="Request body: a JSON document.")] = None,
    body_file: Annotated[
        Path | None,
        typer.Option(help="JSON file with one body, or JSON lines of bodies sent round-robin."),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", help="Extra header 'Name: value' (repeatable)."),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", help="Requests in flight at once.")
    ] = 16,
    duration: Annotated[float, typer.Option("--duration", "-d", help="Seconds to measure.")] = 10.0,
    requests: Annotated[
        int | None,
        typer.Option("--requests", "-n", help="Send exactly N requests instead of --duration."),
    ] = None,
    warmup: Annotated[
        float | None,
        typer.Option(help="Seconds of unmeasured requests first [default: 1, 0 with --requests]."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds before a request fails.")] = 10.0,
    max_p99_ms: Annotated[
        float | None, typer.Option(help="Fail when p99 latency is above this (ms).")
    ] = None,
    min_qps: Annotated[
        float | None, typer.Option(help="Fail when throughput is below this (requests/s).")
    ] = None,
    max_error_rate: Annotated[
        float | None, typer.Option(help="Fail when the error share is above this (0.01 = 1%).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Load a prediction server: QPS, latency percentiles, error rate; exit 1 on a missed bound."""
    from ctloop.errors import LoadTestError
    from ctloop.serve._loadtest import LoadTestConfig, load_bodies, target_url

    try:
        config = LoadTestConfig(
            url=target_url(url, path),
            method=method.upper(),
            body=load_bodies(body, body_file) or None,
            headers=_parse_headers(header or []),
            concurrency=concurrency,
            duration_s=duration,
            warmup_s=warmup,
            timeout_s=timeout,
            requests=requests,
        )
    except LoadTestError as exc:
        raise typer.BadParameter(str(exc)) from exc
    result = _run(config, show_progress=not as_json)
    missed = _report(result, max_p99_ms, min_qps, max_error_rate, as_json=as_json)
    if missed:
        raise typer.Exit(1)


def _parse_headers(values: list[str]) -> dict[str, str]:
    headers = {}
    for value in values:
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            raise typer.BadParameter(
                f"header {value!r} is not 'Name: value'; write e.g. -H 'Authorization: Bearer TOKEN'"
            )
        headers[name.strip()] = content.strip()
    return headers


def _run(config: LoadTestConfig, show_progress: bool) -> LoadTestResult:
    from ctloop.cli.output import console
    from ctloop.serve._loadtest import run_load_test

    if not (show_progress and console.is_terminal):
        return run_load_test(config)
    how_long = (
        f"{config.requests} requests"
        if config.requests is not None
        else f"{config.warmup:g} s warm-up + {config.duration_s:g} s"
    )
    from rich.markup import escape

    line = f"{config.method} {escape(config.url)}: {how_long}, {config.concurrency} at once"
    with console.status(line):
        return run_load_test(config)


def _report(
    result: LoadTestResult,
    max_p99_ms: float | None,
    min_qps: float | None,
    max_error_rate: float | None,
    as_json: bool,
) -> list[str]:
    from ctloop.cli.output import emit_json, err_console
    from ctloop.serve._loadtest import check_bounds

    missed = check_bounds(
        result, max_p99_ms=max_p99_ms, min_qps=min_qps, max_error_rate=max_error_rate
    )
    if as_json:
        emit_json({**result.to_dict(), "passed": not missed, "missed_bounds": missed})
    else:
        _print_table(result)
    for sentence in missed:
        err_console.print(f"[bold red]bound missed:[/] {sentence}", soft_wrap=True)
    return missed


def _print_table(result: LoadTestResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ctloop.cli.output import console

    table = Table(
        title=f"{result.method} {escape(result.url)}", show_header=False, title_justify="left"
    )
    table.add_column(style="bold")
    table.add_column(justify="right")
    error_style = "red" if result.errors else "green"
    rows = [
        (
            "requests",
            f"{result.requests} in {result.duration_s:.2f} s, {result.concurrency} at once",
        ),
        ("QPS", f"{result.qps:.1f}"),
        ("latency p50", f"{result.p50_ms:.2f} ms"),
        ("latency p95", f"{result.p95_ms:.2f} ms"),
        ("latency p99", f"{result.p99_ms:.2f} ms"),
        ("latency max", f"{result.max_ms:.2f} ms"),
        ("error rate", f"[{error_style}]{result.error_rate:.2%}[/] ({result.errors})"),
        ("statuses", escape(", ".join(f"{k}: {v}" for k, v in result.status_counts.items()))),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
