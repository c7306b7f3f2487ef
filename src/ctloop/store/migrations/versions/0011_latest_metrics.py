"""Metrics: each run's latest value of each metric in its own table.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

Written by hand to match ctloop/store/_schema.py. A run search sorted or filtered by a
metric used to rank every run's points of it (a correlated lookup per run); the table
``latest_metrics`` holds one row per run and key, kept by every metric write, so the
search joins it instead. Its primary key is ``(key, run_id)`` and, on SQLite, it has no
rowid: the rows of one metric, which a search reads for every run, lie together. The
table is filled here from the points a 0010 database holds,
ranked as :func:`ctloop.store.metadata.metric_order` ranks them (the point written last
winning a tie).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None

_FILL = """
INSERT INTO latest_metrics (key, run_id, value, own, step, timestamp)
SELECT key, run_id, value, own, step, timestamp FROM (
    SELECT run_id, key, value,
           CASE WHEN execution_id IS NULL THEN 1 ELSE 0 END AS own,
           COALESCE(step, 0) AS step,
           timestamp,
           ROW_NUMBER() OVER (
               PARTITION BY run_id, key
               ORDER BY CASE WHEN execution_id IS NULL THEN 1 ELSE 0 END DESC,
                        COALESCE(step, 0) DESC, timestamp DESC, id DESC
           ) AS rank
    FROM metrics
) AS ranked
WHERE rank = 1
"""


def upgrade() -> None:
    """Create ``latest_metrics`` and fill it from ``metrics``."""
    op.create_table(
        "latest_metrics",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("own", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name="fk_latest_metrics_run_id_runs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", "run_id", name="pk_latest_metrics"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_latest_metrics_run_id_key", "latest_metrics", ["run_id", "key"])
    op.execute(_FILL)


def downgrade() -> None:
    """Drop ``latest_metrics`` (the points stay in ``metrics``)."""
    op.drop_index("ix_latest_metrics_run_id_key", table_name="latest_metrics")
    op.drop_table("latest_metrics")
