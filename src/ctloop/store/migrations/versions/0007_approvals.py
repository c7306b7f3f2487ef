"""Environments: approvals of promotions (requested -> approved/rejected -> deployed).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

Written by hand to match ctloop/store/_schema.py. Only a new table: a 0006 database keeps
every row it has.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the approvals table."""
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("environment", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("requested_by", sa.String(), nullable=False),
        sa.Column("requested_at", _TIME, nullable=False),
        sa.Column("decided_by", sa.String(), nullable=True),
        sa.Column("decided_at", _TIME, nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("deployed_version", sa.Integer(), nullable=True),
        sa.Column("deployed_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_approvals"),
    )
    op.create_index(
        "ix_approvals_model_environment_version", "approvals", ["model", "environment", "version"]
    )


def downgrade() -> None:
    """Drop the approvals table."""
    op.drop_index("ix_approvals_model_environment_version", table_name="approvals")
    op.drop_table("approvals")
