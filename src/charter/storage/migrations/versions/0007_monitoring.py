"""Monitoring windows and their time series, alerts with a notification outbox, retraining
triggers and continuous-training runs.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.String(32)
SHA = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "monitor_windows",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("window_start", TS, nullable=False),
        sa.Column("window_end", TS, nullable=False),
        sa.Column("n_decisions", sa.Integer, nullable=False),
        sa.Column("labels_status", sa.String(10), nullable=False),
        sa.Column("report", sa.Text, nullable=False),
        sa.Column("report_sha256", SHA, nullable=False),
        sa.Column("computed_at", TS, nullable=False),
        sa.UniqueConstraint("model_name", "version", "window_start", "window_end"),
    )
    op.create_index("ix_monitor_windows_model_end", "monitor_windows", ["model_name", "window_end"])
    op.create_table(
        "monitor_series",
        sa.Column("model_name", sa.String(100), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("window_start", TS, primary_key=True),
        sa.Column("window_end", TS, primary_key=True),
        sa.Column("metric", sa.String(64), primary_key=True),
        sa.Column("feature", sa.String(200), primary_key=True),
        sa.Column("dimension", sa.String(20), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("model_name", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("feature", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("status", sa.String(15), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("threshold", sa.Float, nullable=True),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("first_window_end", TS, nullable=False),
        sa.Column("last_window_end", TS, nullable=False),
        sa.Column("windows_breached", sa.Integer, nullable=False),
        sa.Column("clean_windows", sa.Integer, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("last_notified_at", TS, nullable=True),
        sa.Column("acknowledged_by", sa.String(64), nullable=True),
        sa.Column("acknowledged_at", TS, nullable=True),
        sa.Column("resolved_by", sa.String(64), nullable=True),
        sa.Column("resolved_at", TS, nullable=True),
    )
    op.create_index("ix_alerts_fingerprint_status", "alerts", ["fingerprint", "status"])
    op.create_index("ix_alerts_model_status", "alerts", ["model_name", "status"])
    op.create_table(
        "alert_notifications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("delivery", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
    )
    op.create_index("ix_alert_notifications_delivery", "alert_notifications", ["delivery"])
    op.create_table(
        "retrain_triggers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(100), nullable=False),
        sa.Column("kinds", sa.Text, nullable=False),
        sa.Column("window_end", TS, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("pipeline_run_id", sa.String(36), nullable=True),
        sa.Column("fired_at", TS, nullable=False),
        sa.UniqueConstraint("model_name", "window_end"),
    )
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("model_name", sa.String(100), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("candidate_version", sa.Integer, nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_pipeline_runs_model", "pipeline_runs", ["model_name"])
    op.create_table(
        "pipeline_steps",
        sa.Column("run_id", sa.String(36), sa.ForeignKey("pipeline_runs.id"), primary_key=True),
        sa.Column("step", sa.String(30), primary_key=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
    )


def downgrade() -> None:
    raise RuntimeError("Charter does not downgrade")
