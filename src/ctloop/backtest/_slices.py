"""A fold's metrics per slice, read from the ``Evaluation`` its run stored.

The ``evaluate`` component scores the model overall and per slice (``slices=["carrier"]``)
and stores the result as an ``Evaluation`` artifact; a backtest asked for ``--slice
carrier`` reads each fold's evaluation and keeps, per value of the slice, its metrics and
its row count (under ``rows``). A slice value that was too small to score keeps its row
count only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctloop.errors import ConfigError

if TYPE_CHECKING:
    from ctloop.store.workspace import Workspace

__all__ = ["SliceMetrics", "read_slices"]

#: column -> slice value -> metric -> value (``rows`` among them)
SliceMetrics = dict[str, dict[str, dict[str, float]]]


def read_slices(
    workspace: Workspace, run_id: str, columns: Sequence[str], *, cache_dir: Path
) -> SliceMetrics:
    """The metrics per value of each slice in ``columns`` that run ``run_id`` evaluated.

    Raises :class:`~ctloop.errors.ConfigError` naming the run and the slices it has when
    the run stored no evaluation, or none sliced by one of ``columns``."""
    if not columns:
        return {}
    evaluations = _evaluations(workspace, run_id, cache_dir)
    found: SliceMetrics = {}
    for column in columns:
        results = next((ev.slices[column] for ev in evaluations if column in ev.slices), None)
        if results is None:
            raise ConfigError(_missing(run_id, column, evaluations))
        found[column] = {r.value: _numbers(r.metrics, r.rows) for r in results}
    return found


def _evaluations(workspace: Workspace, run_id: str, cache_dir: Path) -> list[Any]:
    from ctloop.artifacts import load_value

    metadata = workspace.metadata
    found = []
    for execution in metadata.list_executions(run_id):
        for event in metadata.events_of_execution(execution.id):
            if event.kind != "output":
                continue
            record = metadata.get_artifact(event.artifact_id)
            if record.properties.get("record_type") == "Evaluation":
                found.append(load_value(record, workspace.artifacts, cache_dir=cache_dir))
    return found


def _missing(run_id: str, column: str, evaluations: list[Any]) -> str:
    if not evaluations:
        return (
            f"--slice {column}: run {run_id[:8]} stored no Evaluation; score the test period "
            f"with ctloop.components.evaluate(..., slices=[{column!r}]) in the pipeline"
        )
    present = sorted({name for ev in evaluations for name in ev.slices})
    return (
        f"--slice {column}: the evaluation of run {run_id[:8]} has no slice {column!r} "
        f"(it has: {', '.join(present) or 'none'}); add {column!r} to evaluate's slices"
    )


def _numbers(metrics: dict[str, float | None], rows: int) -> dict[str, float]:
    kept = {k: float(v) for k, v in metrics.items() if v is not None}
    return {**kept, "rows": float(rows)}
