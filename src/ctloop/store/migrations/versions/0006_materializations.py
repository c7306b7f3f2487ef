"""The feature store: materializations of feature views into the online store (their
watermarks).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

Written by hand to match ctloop/store/_schema.py. Only a new table: a 0005 database keeps
every row it has.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the feature materializations table."""
    op.create_table(
        "feature_materializations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("view", sa.String(), nullable=False),
        sa.Column("start", _TIME, nullable=True),
        sa.Column("end", _TIME, nullable=False),
        sa.Column("rows_read", sa.BigInteger(), nullable=False),
        sa.Column("rows_written", sa.BigInteger(), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("by", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feature_materializations"),
    )
    op.create_index(
        "ix_feature_materializations_view_end", "feature_materializations", ["view", "end"]
    )


def downgrade() -> None:
    """Drop the feature materializations table."""
    op.drop_index("ix_feature_materializations_view_end", table_name="feature_materializations")
    op.drop_table("feature_materializations")
