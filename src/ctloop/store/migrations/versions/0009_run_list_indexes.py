"""Runs: indexes for newest-first pages (of all runs, of a pipeline, of a status) and
for one metric of every run.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

Written by hand to match ctloop/store/_schema.py. A page of runs is ordered by
(started_at, id) and cut after the previous page's last run: with these indexes it is one
index range, with no sort of every run of a pipeline. The single-column indexes on
``runs.started_at`` and ``runs.pipeline`` are prefixes of the new ones and go.
"""

from __future__ import annotations

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

_RUNS = (
    ("ix_runs_started_at_id", ["started_at", "id"]),
    ("ix_runs_pipeline_started_at_id", ["pipeline", "started_at", "id"]),
    ("ix_runs_status_started_at_id", ["status", "started_at", "id"]),
)


def upgrade() -> None:
    """Replace the runs' single-column indexes; index metrics by key."""
    for name, columns in _RUNS:
        op.create_index(name, "runs", columns)
    op.drop_index("ix_runs_started_at", table_name="runs")
    op.drop_index("ix_runs_pipeline", table_name="runs")
    op.create_index("ix_metrics_key_run_id", "metrics", ["key", "run_id"])


def downgrade() -> None:
    """Back to the single-column indexes of 0008."""
    op.drop_index("ix_metrics_key_run_id", table_name="metrics")
    op.create_index("ix_runs_pipeline", "runs", ["pipeline"])
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    for name, _ in reversed(_RUNS):
        op.drop_index(name, table_name="runs")
