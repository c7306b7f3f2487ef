"""Logs: the event time of logged predictions and feedback, beside the time they were
logged.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

Written by hand to match ctloop/store/_schema.py. Only new nullable columns: a 0007
database keeps every row it has, and its batches read as having no event time.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

_TIME = sa.DateTime(timezone=True)
_TABLES = ("prediction_logs", "feedback_logs")


def upgrade() -> None:
    """Add the event-time columns to both log tables."""
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("first_event_at", _TIME, nullable=True))
            batch.add_column(sa.Column("last_event_at", _TIME, nullable=True))
    op.create_index(
        "ix_prediction_logs_model_first_event_at", "prediction_logs", ["model", "first_event_at"]
    )


def downgrade() -> None:
    """Drop the event-time columns."""
    op.drop_index("ix_prediction_logs_model_first_event_at", table_name="prediction_logs")
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("last_event_at")
            batch.drop_column("first_event_at")
