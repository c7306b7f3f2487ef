"""Operations: deployments, prediction and feedback logs, alerts, trigger state and firings.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Written by hand to match ctloop/store/_schema.py. Only new tables: a 0002 database keeps
every row it has.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the operations tables."""
    _create_deployments()
    _create_logs("prediction_logs", with_version=True)
    _create_logs("feedback_logs", with_version=False)
    _create_alerts()
    _create_trigger_state()
    _create_trigger_firings()


def downgrade() -> None:
    """Drop the operations tables."""
    for table in (
        "trigger_firings",
        "trigger_state",
        "alerts",
        "feedback_logs",
        "prediction_logs",
        "deployments",
    ):
        op.drop_table(table)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), autoincrement=True, nullable=False)


def _create_deployments() -> None:
    op.create_table(
        "deployments",
        _id(),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("host", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deployments"),
    )
    op.create_index("ix_deployments_name_id", "deployments", ["name", "id"])


def _create_logs(table: str, *, with_version: bool) -> None:
    columns: list[sa.Column[Any]] = [
        _id(),
        sa.Column("model", sa.String(), nullable=not with_version),
    ]
    if with_version:
        columns += [
            sa.Column("version", sa.Integer(), nullable=True),
            sa.Column("deployment", sa.String(), nullable=True),
        ]
    op.create_table(
        table,
        *columns,
        sa.Column("artifact_id", sa.String(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("first_at", _TIME, nullable=False),
        sa.Column("last_at", _TIME, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["artifact_id"], ["artifacts.id"], name=f"fk_{table}_artifact_id_artifacts"
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
    )
    op.create_index(f"ix_{table}_artifact_id", table, ["artifact_id"])
    op.create_index(f"ix_{table}_model_first_at", table, ["model", "first_at"])


def _create_alerts() -> None:
    op.create_table(
        "alerts",
        _id(),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("severity", sa.String(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("dedup_key", sa.String(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("report_artifact_id", sa.String(), nullable=True),
        sa.Column("delivery", sa.JSON(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["report_artifact_id"],
            ["artifacts.id"],
            name="fk_alerts_report_artifact_id_artifacts",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index("ix_alerts_dedup_key_created_at", "alerts", ["dedup_key", "created_at"])


def _create_trigger_state() -> None:
    op.create_table(
        "trigger_state",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("pipeline", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("cursor", sa.JSON(), nullable=False),
        sa.Column("last_checked_at", _TIME, nullable=True),
        sa.Column("last_fired_at", _TIME, nullable=True),
        sa.Column("cooldown_until", _TIME, nullable=True),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_trigger_state"),
    )


def _create_trigger_firings() -> None:
    op.create_table(
        "trigger_firings",
        _id(),
        sa.Column("trigger", sa.String(), nullable=False),
        sa.Column("pipeline", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("fire_key", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("cause_artifact_id", sa.String(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("fired_at", _TIME, nullable=False),
        sa.Column("ended_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_trigger_firings_run_id_runs", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["cause_artifact_id"],
            ["artifacts.id"],
            name="fk_trigger_firings_cause_artifact_id_artifacts",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_trigger_firings"),
        sa.UniqueConstraint("trigger", "fire_key", name="uq_trigger_firings_trigger_fire_key"),
    )
    op.create_index("ix_trigger_firings_trigger_id", "trigger_firings", ["trigger", "id"])
