"""The feature store: versioned definitions of entities, feature views and services.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

Written by hand to match ctloop/store/_schema.py. Only a new table: a 0004 database keeps
every row it has.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the feature definitions table."""
    op.create_table(
        "feature_definitions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_by", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feature_definitions"),
        sa.UniqueConstraint(
            "kind", "name", "version", name="uq_feature_definitions_kind_name_version"
        ),
    )


def downgrade() -> None:
    """Drop the feature definitions table."""
    op.drop_table("feature_definitions")
