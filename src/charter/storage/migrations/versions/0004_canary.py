"""Canary rollouts: the plan and state on the traffic policy; scoring errors for the guardrail.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("traffic_policies") as batch:
        batch.add_column(sa.Column("canary_version", sa.Integer, nullable=True))
        batch.add_column(sa.Column("canary_share", sa.Float, nullable=False, server_default="0"))
        batch.add_column(sa.Column("canary_plan", sa.Text, nullable=True))
        batch.add_column(sa.Column("canary_state", sa.Text, nullable=True))
        batch.add_column(sa.Column("canary_window_start", sa.String(32), nullable=True))
    op.create_table(
        "scoring_errors",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("variant", sa.String(20), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_index(
        "ix_scoring_errors_model_created", "scoring_errors", ["model_name", "created_at"]
    )


def downgrade() -> None:
    raise RuntimeError("Charter does not downgrade")
