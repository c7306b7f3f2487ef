"""Metrics: each run's latest value of one metric in value order.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

Written by hand to match ctloop/store/_schema.py. A run search sorted by a metric (with no
conditions) sorted every run's value for each page: on SQLite, 13-16 ms of the page at
10,000 runs. ``latest_metrics (key, value, run_id)`` lets it read the page in value order,
sort only ties by start time, and stop at the page's end (0.1 ms for the first page,
1.5 ms for the twentieth).
"""

from __future__ import annotations

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None

_NAME = "ix_latest_metrics_key_value_run_id"


def upgrade() -> None:
    """Create the index."""
    op.create_index(_NAME, "latest_metrics", ["key", "value", "run_id"])


def downgrade() -> None:
    """Drop it."""
    op.drop_index(_NAME, table_name="latest_metrics")
