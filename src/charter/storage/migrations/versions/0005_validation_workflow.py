"""The validation and approval workflow: gate runs, findings, approvals, the validator's
recommendation and the model card's narrative sections.

Existing validations keep their outcome; their recommendation is backfilled from it (``pass`` ->
``approve``, ``fail`` -> ``reject``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.String(32)
SHA = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "gate_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False),
        sa.Column("run_by", sa.String(64), nullable=False),
        sa.Column("policy_name", sa.String(200), nullable=False),
        sa.Column("policy_sha256", SHA, nullable=False),
        sa.Column("policy_text", sa.Text, nullable=False),
        sa.Column("artifact_sha256", SHA, nullable=False),
        sa.Column("training_data_hash", SHA, nullable=True),
        sa.Column("datasets", sa.Text, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("failed_gates", sa.Text, nullable=False),
        sa.Column("report", sa.Text, nullable=False),
        sa.Column("report_sha256", SHA, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_gate_runs_version_id", "gate_runs", ["version_id"])

    op.create_table(
        "findings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=True),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("remediation_owner", sa.String(200), nullable=False),
        sa.Column("due_date", sa.String(10), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("raised_by", sa.String(64), nullable=False),
        sa.Column("raised_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("resolution", sa.Text, nullable=True),
        sa.Column("remediated_by", sa.String(64), nullable=True),
        sa.Column("closure_note", sa.Text, nullable=True),
    )
    op.create_index("ix_findings_model_status", "findings", ["model_id", "status"])

    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False),
        sa.Column("approver", sa.String(64), nullable=False),
        sa.Column("decision", sa.String(30), nullable=False),
        sa.Column("conditions", sa.Text, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("artifact_sha256", SHA, nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_approvals_version_id", "approvals", ["version_id"])

    op.create_table(
        "model_narratives",
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
        sa.Column("intended_use", sa.Text, nullable=True),
        sa.Column("out_of_scope_uses", sa.Text, nullable=True),
        sa.Column("factors", sa.Text, nullable=True),
        sa.Column("ethical_considerations", sa.Text, nullable=True),
        sa.Column("caveats_and_recommendations", sa.Text, nullable=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )

    with op.batch_alter_table("validations") as batch:
        batch.add_column(sa.Column("recommendation", sa.String(30), nullable=True))
        batch.add_column(sa.Column("conditions", sa.Text, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("sections", sa.Text, nullable=False, server_default="{}"))
        batch.add_column(
            sa.Column(
                "gate_run_id",
                sa.Integer,
                sa.ForeignKey("gate_runs.id", name="fk_validations_gate_run_id"),
                nullable=True,
            )
        )
    op.execute(
        "UPDATE validations SET recommendation = "
        "CASE WHEN outcome = 'pass' THEN 'approve' ELSE 'reject' END"
    )
    with op.batch_alter_table("validations") as batch:
        batch.alter_column("recommendation", existing_type=sa.String(30), nullable=False)


def downgrade() -> None:
    raise RuntimeError("Charter does not downgrade")
