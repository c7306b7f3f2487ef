"""Metrics: a value may be NaN, held as NULL.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

Written by hand to match ctloop/store/_schema.py. ``metrics.value`` and
``latest_metrics.value`` were NOT NULL, and SQLite's driver binds NaN as NULL, so a NaN
metric (a diverged trial's loss) was refused on SQLite. Both columns now take NULL, which
the store reads back as NaN; ``inf`` and ``-inf`` are stored as themselves. A PostgreSQL
database may already hold NaN (its driver writes it natively): those become NULL too, so
that NaN sorts after every number and passes no comparison on both databases. On SQLite
``metrics`` is rebuilt (the indexes kept) and ``latest_metrics``, one row per run and key
derived from ``metrics``, is created anew and filled as migration 0011 fills it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None

# each run's latest point of each key, ranked as migration 0011 ranks them
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
_LATEST_INDEXES = (
    ("ix_latest_metrics_run_id_key", ["run_id", "key"]),
    ("ix_latest_metrics_key_value_run_id", ["key", "value", "run_id"]),
)


def _latest_metrics(*, nullable: bool) -> None:
    """Create ``latest_metrics`` as the schema declares it on SQLite (no rowid, the
    covering index of PostgreSQL empty) and fill it from ``metrics``."""
    op.create_table(
        "latest_metrics",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("value", sa.Double(), nullable=nullable),
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
    for name, columns in _LATEST_INDEXES:
        op.create_index(name, "latest_metrics", columns)
    op.create_index(
        "ix_latest_metrics_key_run_id_value",
        "latest_metrics",
        ["key", "run_id"],
        sqlite_where=sa.text("0"),
    )
    op.execute(_FILL)


def _set_nullable(nullable: bool) -> None:
    if op.get_bind().dialect.name == "sqlite":
        # the rebuild copies every point under foreign keys: a point whose run or step is
        # gone (written once without foreign keys) would stop it, and nothing reads it
        op.execute(
            "DELETE FROM metrics WHERE run_id NOT IN (SELECT id FROM runs) OR "
            "(execution_id IS NOT NULL AND execution_id NOT IN (SELECT id FROM executions))"
        )
        with op.batch_alter_table("metrics", recreate="always") as batch:
            batch.alter_column("value", existing_type=sa.Double(), nullable=nullable)
        op.drop_table("latest_metrics")
        _latest_metrics(nullable=nullable)
        return
    for table in ("metrics", "latest_metrics"):
        op.alter_column(table, "value", existing_type=sa.Double(), nullable=nullable)


def upgrade() -> None:
    """Let both ``value`` columns take NULL (NaN); PostgreSQL's NaN become NULL."""
    _set_nullable(True)
    if op.get_bind().dialect.name != "sqlite":
        for table in ("metrics", "latest_metrics"):
            op.execute(f"UPDATE {table} SET value = NULL WHERE value = 'NaN'")


def downgrade() -> None:
    """NOT NULL again: the NaN points are deleted (0013 cannot hold them) and each run's
    latest value is taken again from the points left."""
    op.execute("DELETE FROM metrics WHERE value IS NULL")
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DELETE FROM latest_metrics")
        op.execute(_FILL)
    _set_nullable(False)
