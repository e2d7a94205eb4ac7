"""Champion/challenger experiments: the pre-registered plan and the recorded decisions.

An experiment's plan is written once, when it is registered; there is no update path (a changed
plan is a new experiment). Each analysis that is recorded adds one row to
``experiment_decisions`` with its evidence (canonical JSON) and that text's SHA-256.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.String(32)
SHA = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("champion_version", sa.Integer, nullable=False),
        sa.Column("challenger_version", sa.Integer, nullable=False),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_experiments_model_id", "experiments", ["model_id"])

    op.create_table(
        "experiment_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("experiment_id", sa.Integer, sa.ForeignKey("experiments.id"), nullable=False),
        sa.Column("decision", sa.String(10), nullable=False),
        sa.Column("decided_until", sa.String(10), nullable=True),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("evidence_sha256", SHA, nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index(
        "ix_experiment_decisions_experiment_id", "experiment_decisions", ["experiment_id"]
    )


def downgrade() -> None:
    raise RuntimeError("Charter does not downgrade")
