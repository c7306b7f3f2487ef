"""The model registry: registered models, versions, tags, aliases and alias history.

Revision ID: 0002
Revises: 0001
Create Date: 2024-07-01

Written by hand to match ctloop/store/_schema.py. Only new tables: a 0001 database keeps
every row it has.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the registry tables."""
    _create_registered_models()
    _create_model_versions()
    _create_tags()
    _create_aliases()
    _create_alias_history()


def downgrade() -> None:
    """Drop the registry tables."""
    for table in (
        "alias_history",
        "model_aliases",
        "model_version_tags",
        "registered_model_tags",
        "model_versions",
        "registered_models",
    ):
        op.drop_table(table)


def _model_column() -> sa.Column[str]:
    return sa.Column("model", sa.String(), nullable=False)


def _model_foreign_key(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["model"],
        ["registered_models.name"],
        name=f"fk_{table}_model_registered_models",
        ondelete="CASCADE",
    )


def _create_registered_models() -> None:
    op.create_table(
        "registered_models",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_registered_models"),
        sa.UniqueConstraint("name", name="uq_registered_models_name"),
    )


def _create_model_versions() -> None:
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _model_column(),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("artifact_id", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("execution_id", sa.String(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        _model_foreign_key("model_versions"),
        sa.ForeignKeyConstraint(
            ["artifact_id"], ["artifacts.id"], name="fk_model_versions_artifact_id_artifacts"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_model_versions_run_id_runs", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name="fk_model_versions_execution_id_executions",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.UniqueConstraint("model", "version", name="uq_model_versions_model_version"),
    )
    for column in ("model", "artifact_id", "run_id"):
        op.create_index(f"ix_model_versions_{column}", "model_versions", [column])


def _create_tags() -> None:
    op.create_table(
        "registered_model_tags",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _model_column(),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        _model_foreign_key("registered_model_tags"),
        sa.PrimaryKeyConstraint("id", name="pk_registered_model_tags"),
        sa.UniqueConstraint("model", "key", name="uq_registered_model_tags_model_key"),
    )
    op.create_table(
        "model_version_tags",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name="fk_model_version_tags_version_id_model_versions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_model_version_tags"),
        sa.UniqueConstraint("version_id", "key", name="uq_model_version_tags_version_id_key"),
    )
    op.create_index("ix_model_version_tags_version_id", "model_version_tags", ["version_id"])


def _create_aliases() -> None:
    op.create_table(
        "model_aliases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _model_column(),
        sa.Column("alias", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _model_foreign_key("model_aliases"),
        sa.ForeignKeyConstraint(
            ["model", "version"],
            ["model_versions.model", "model_versions.version"],
            name="fk_model_aliases_model_version_model_versions",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_model_aliases"),
        sa.UniqueConstraint("model", "alias", name="uq_model_aliases_model_alias"),
    )


def _create_alias_history() -> None:
    op.create_table(
        "alias_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _model_column(),
        sa.Column("alias", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=True),
        sa.Column("moved_at", _TIME, nullable=False),
        sa.Column("moved_by", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _model_foreign_key("alias_history"),
        sa.PrimaryKeyConstraint("id", name="pk_alias_history"),
    )
    op.create_index("ix_alias_history_model_alias", "alias_history", ["model", "alias"])
