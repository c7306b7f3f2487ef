"""Metrics: a covering index for each run's latest value of one metric.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

Written by hand to match ctloop/store/_schema.py. A run search sorted or filtered by a
metric looks up every run's latest value of it (by execution, step, time and id) in
``(key, run_id, …)``: with every column the lookup reads in the index, the table rows are
never visited. It replaces ``(key, run_id)``, one of its prefixes.
"""

from __future__ import annotations

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None

_COLUMNS = ["key", "run_id", "execution_id", "step", "timestamp", "value", "id"]
_NAME = "ix_metrics_" + "_".join(_COLUMNS)


def upgrade() -> None:
    """Replace ``(key, run_id)`` by the covering index."""
    op.create_index(_NAME, "metrics", _COLUMNS)
    op.drop_index("ix_metrics_key_run_id", table_name="metrics")


def downgrade() -> None:
    """Back to the ``(key, run_id)`` index of 0009."""
    op.create_index("ix_metrics_key_run_id", "metrics", ["key", "run_id"])
    op.drop_index(_NAME, table_name="metrics")
