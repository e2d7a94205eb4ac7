"""Reference profile of each version's training data, stored as a content-addressed artifact.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("reference_profile_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    raise RuntimeError("Charter does not downgrade: the audit trail must not be dropped")
