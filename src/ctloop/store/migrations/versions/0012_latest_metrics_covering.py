"""Metrics: on PostgreSQL, a covering index of each run's latest value of one metric.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

Written by hand to match ctloop/store/_schema.py. A run search sorted or filtered by a
metric reads that metric's row of ``latest_metrics`` for every run. SQLite keeps the
table clustered by ``(key, run_id)`` with the value in it; PostgreSQL's heap is not
clustered, so it read a page per run (EXPLAIN ANALYZE over 10,000 runs x 50 metrics: a
bitmap heap scan of 5,682 pages for 10,000 rows). ``(key, run_id) INCLUDE (value)`` lets
it answer from the index alone. On SQLite the index is created empty (``WHERE 0``): the
table already is that index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None

_NAME = "ix_latest_metrics_key_run_id_value"


def upgrade() -> None:
    """Create the covering index (empty on SQLite)."""
    op.create_index(
        _NAME,
        "latest_metrics",
        ["key", "run_id"],
        postgresql_include=["value"],
        sqlite_where=sa.text("0"),
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_index(_NAME, table_name="latest_metrics")
