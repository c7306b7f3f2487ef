"""Printing for the CLI: Rich tables for people, JSON lines for scripts."""

from __future__ import annotations

import sys
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any

from rich.console import Console

from ctloop.store.statuses import ExecutionStatus

console = Console(file=sys.stdout, highlight=False)
err_console = Console(file=sys.stderr, highlight=False)


def emit_json(value: Any) -> None:
    """Write ``value`` as one JSON document to stdout."""
    import orjson

    sys.stdout.write(
        orjson.dumps(
            value,
            default=_default,
            option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY,
        ).decode()
        + "\n"
    )


def _default(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def short(identifier: str | None) -> str:
    """First 8 characters of an id."""
    return (identifier or "")[:8]


def when(moment: datetime | None) -> str:
    """A local, second-precision timestamp."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def seconds(value: float | None) -> str:
    """Human duration."""
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"


STATUS_STYLE: dict[str, str] = {
    ExecutionStatus.SUCCEEDED: "green",
    ExecutionStatus.CACHED: "cyan",
    ExecutionStatus.RUNNING: "yellow",
    ExecutionStatus.PENDING: "dim",
    ExecutionStatus.FAILED: "bold red",
    ExecutionStatus.SKIPPED: "dim",
}


def styled(status: str) -> str:
    """Status text with its Rich style."""
    return f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"
