"""The SQL schema, as SQLAlchemy Core tables.

Tables are created only by the Alembic migrations in ``charter/storage/migrations`` (``charter
init``), never implicitly. Conventions that keep SQLite and PostgreSQL byte-identical:

* timestamps are ISO 8601 UTC text with microseconds (``charter.clock.iso``), which sorts like time;
* structured fields are canonical JSON text (``charter.storage.jsonutil.dumps``), so what is hashed
  into the audit chain is exactly what is stored, on every backend.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

TS = String(32)
SHA = String(64)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False),
    Column("roles", Text, nullable=False),  # JSON list, sorted
    Column("is_automation", Boolean, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", TS, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("token_prefix", String(16), nullable=False),
    Column("token_hash", SHA, nullable=False, unique=True),
    Column("label", String(200), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=True),
    Column("revoked_at", TS, nullable=True),
)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("purpose", Text, nullable=False),
    Column("business_use", Text, nullable=False),
    Column("decision_type", String(100), nullable=False),
    Column("owner", String(200), nullable=False),
    Column("team", String(200), nullable=False),
    Column("risk_tier", String(10), nullable=False),
    Column("upstream", Text, nullable=False),
    Column("downstream", Text, nullable=False),
    Column("review_cadence_months", Integer, nullable=False),
    Column("last_review", String(10), nullable=True),
    Column("tags", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("retired_at", TS, nullable=True),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("stage", String(20), nullable=False),
    Column("artifact_sha256", SHA, nullable=False),
    Column("artifact_format", String(30), nullable=False),
    Column("artifact_size", Integer, nullable=False),
    Column("feature_schema", Text, nullable=False),
    Column("training_data", Text, nullable=True),
    Column("hyperparameters", Text, nullable=False),
    Column("seeds", Text, nullable=False),
    Column("metrics", Text, nullable=False),
    Column("code_commit", String(80), nullable=True),
    Column("environment", Text, nullable=False),
    Column("author", String(64), nullable=False),
    Column("training_seconds", Float, nullable=True),
    Column("description", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("reference_profile_sha256", SHA, nullable=True),  # migration 0002
    Column("decision_threshold", Float, nullable=True),  # migration 0003
    UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
)

# At most one version holds an alias of a model: the primary key is (model_id, alias).
model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id"), primary_key=True),
    Column("alias", String(20), primary_key=True),
    Column("version_id", Integer, ForeignKey("model_versions.id"), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("set_by", String(64), nullable=False),
    Column("set_at", TS, nullable=False),
)

validations = Table(
    "validations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version_id", Integer, ForeignKey("model_versions.id"), nullable=False),
    Column("validator", String(64), nullable=False),
    Column("outcome", String(10), nullable=False),
    Column("summary", Text, nullable=False),
    Column("artifact_sha256", SHA, nullable=False),
    Column("created_at", TS, nullable=False),
    # migration 0005: the validator's recommendation (outcome stays: pass unless reject)
    Column("recommendation", String(30), nullable=False),  # approve|approve_with_conditions|reject
    Column("conditions", Text, nullable=False, server_default="[]"),  # JSON list of text
    Column("sections", Text, nullable=False, server_default="{}"),  # JSON {section: text}
    Column("gate_run_id", Integer, ForeignKey("gate_runs.id"), nullable=True),
)

# The evidence of one run of the validation gates over a version (migration 0005). The report is
# canonical JSON; report_sha256 is the SHA-256 of exactly that text.
gate_runs = Table(
    "gate_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version_id", Integer, ForeignKey("model_versions.id"), nullable=False),
    Column("run_by", String(64), nullable=False),
    Column("policy_name", String(200), nullable=False),
    Column("policy_sha256", SHA, nullable=False),
    Column("policy_text", Text, nullable=False),  # the TOML policy as given
    Column("artifact_sha256", SHA, nullable=False),
    Column("training_data_hash", SHA, nullable=True),
    Column("datasets", Text, nullable=False),  # JSON {name: {sha256, rows}}
    Column("passed", Boolean, nullable=False),
    Column("failed_gates", Text, nullable=False),  # JSON list of gate names
    Column("report", Text, nullable=False),
    Column("report_sha256", SHA, nullable=False),
    Column("created_at", TS, nullable=False),
)

# Validation findings (migration 0005): on a version, or on the model (version_id NULL).
findings = Table(
    "findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("version_id", Integer, ForeignKey("model_versions.id"), nullable=True),
    Column("severity", String(10), nullable=False),  # high | medium | low
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("remediation_owner", String(200), nullable=False),
    Column("due_date", String(10), nullable=False),  # YYYY-MM-DD
    Column("status", String(12), nullable=False),  # open | remediated | closed
    Column("raised_by", String(64), nullable=False),
    Column("raised_at", TS, nullable=False),
    Column("updated_by", String(64), nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("resolution", Text, nullable=True),  # the remediation note
    Column("remediated_by", String(64), nullable=True),
    Column("closure_note", Text, nullable=True),
)

# The approver's decisions (migration 0005).
approvals = Table(
    "approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version_id", Integer, ForeignKey("model_versions.id"), nullable=False),
    Column("approver", String(64), nullable=False),
    Column("decision", String(30), nullable=False),  # approved|approved_with_conditions|rejected
    Column("conditions", Text, nullable=False),  # JSON list of text
    Column("comment", Text, nullable=False),
    Column("artifact_sha256", SHA, nullable=False),
    Column("created_at", TS, nullable=False),
)

# The model card's narrative sections, one row per model (migration 0005).
model_narratives = Table(
    "model_narratives",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id"), primary_key=True),
    Column("intended_use", Text, nullable=True),
    Column("out_of_scope_uses", Text, nullable=True),
    Column("factors", Text, nullable=True),
    Column("ethical_considerations", Text, nullable=True),
    Column("caveats_and_recommendations", Text, nullable=True),
    Column("revision", Integer, nullable=False),
    Column("updated_by", String(64), nullable=False),
    Column("updated_at", TS, nullable=False),
)

# Append-only and hash-chained. No code path updates or deletes rows; triggers forbid it.
audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("ts", TS, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("actor_type", String(20), nullable=False),
    Column("role", String(100), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject_type", String(32), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("model_name", String(100), nullable=True),
    Column("payload", Text, nullable=False),
    Column("prev_hash", SHA, nullable=False),
    Column("hash", SHA, nullable=False),
)

# The decision log (migration 0003). A row is written, in a group commit, before the response.
decisions = Table(
    "decisions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("request_id", String(128), nullable=False, unique=True),
    Column("entity_key", String(256), nullable=False),
    Column("model_name", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("variant", String(20), nullable=False),
    Column("inputs", Text, nullable=False),
    Column("score", Float, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("decision", String(20), nullable=False),
    Column("reason_codes", Text, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("created_at", TS, nullable=False),
)

shadow_scores = Table(
    "shadow_scores",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("decision_id", String(36), nullable=False),
    Column("model_name", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("score", Float, nullable=False),
    Column("decision", String(20), nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("created_at", TS, nullable=False),
)

outcomes = Table(
    "outcomes",
    metadata,
    Column("decision_id", String(36), ForeignKey("decisions.id"), primary_key=True),
    Column("label", Integer, nullable=False),
    Column("observed_at", TS, nullable=True),
    Column("recorded_at", TS, nullable=False),
)

traffic_policies = Table(
    "traffic_policies",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id"), primary_key=True),
    Column("challenger_share", Float, nullable=False),
    Column("salt", String(64), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("updated_by", String(64), nullable=False),
    Column("updated_at", TS, nullable=False),
    # migration 0004: a canary rollout in progress (plan and state are JSON)
    Column("canary_version", Integer, nullable=True),
    Column("canary_share", Float, nullable=False, server_default="0"),
    Column("canary_plan", Text, nullable=True),
    Column("canary_state", Text, nullable=True),
    Column("canary_window_start", TS, nullable=True),
)

# Requests that passed validation but that a model failed to score (migration 0004).
scoring_errors = Table(
    "scoring_errors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("variant", String(20), nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", TS, nullable=False),
)
Index("ix_scoring_errors_model_created", scoring_errors.c.model_name, scoring_errors.c.created_at)

Index("ix_decisions_model_created", decisions.c.model_name, decisions.c.created_at)
Index("ix_shadow_scores_decision", shadow_scores.c.decision_id)
Index("ix_shadow_scores_model_created", shadow_scores.c.model_name, shadow_scores.c.created_at)
Index("ix_model_versions_model_id", model_versions.c.model_id)
Index("ix_api_tokens_user_id", api_tokens.c.user_id)
Index("ix_validations_version_id", validations.c.version_id)
Index("ix_gate_runs_version_id", gate_runs.c.version_id)
Index("ix_findings_model_status", findings.c.model_id, findings.c.status)
Index("ix_approvals_version_id", approvals.c.version_id)
Index("ix_audit_events_model_ts", audit_events.c.model_name, audit_events.c.ts)
Index("ix_audit_events_actor", audit_events.c.actor)
Index("ix_audit_events_action", audit_events.c.action)
Index("ix_audit_events_ts", audit_events.c.ts)

# Champion/challenger experiments (migration 0006). The plan (canonical JSON) is pre-registered
# and never updated; status moves running -> decided when a final decision is recorded.
experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("name", String(100), nullable=False, unique=True),
    Column("kind", String(10), nullable=False),  # ab | shadow
    Column("champion_version", Integer, nullable=False),
    Column("challenger_version", Integer, nullable=False),
    Column("plan", Text, nullable=False),
    Column("status", String(10), nullable=False),  # running | decided
    Column("created_by", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
)

# Every recorded analysis of an experiment (migration 0006): evidence is canonical JSON and
# evidence_sha256 the SHA-256 of exactly that text.
experiment_decisions = Table(
    "experiment_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("experiment_id", Integer, ForeignKey("experiments.id"), nullable=False),
    Column("decision", String(10), nullable=False),  # promote | keep | stop | continue
    Column("decided_until", String(10), nullable=True),  # YYYY-MM-DD, for continue
    Column("evidence", Text, nullable=False),
    Column("evidence_sha256", SHA, nullable=False),
    Column("decided_by", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
)
Index("ix_experiments_model_id", experiments.c.model_id)
Index("ix_experiment_decisions_experiment_id", experiment_decisions.c.experiment_id)

# Monitoring (migration 0007). One row per (model, version, window) with the whole report as
# canonical JSON; the same window recomputed replaces its row (the audit event says so).
monitor_windows = Table(
    "monitor_windows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("window_start", TS, nullable=False),
    Column("window_end", TS, nullable=False),
    Column("n_decisions", Integer, nullable=False),
    Column("labels_status", String(10), nullable=False),  # matured | pending | none
    Column("report", Text, nullable=False),
    Column("report_sha256", SHA, nullable=False),
    Column("computed_at", TS, nullable=False),
    UniqueConstraint("model_name", "version", "window_start", "window_end"),
)

# The time series of every monitored number (feature is "" for model-level metrics).
monitor_series = Table(
    "monitor_series",
    metadata,
    Column("model_name", String(100), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("window_start", TS, primary_key=True),
    Column("window_end", TS, primary_key=True),
    Column("metric", String(64), primary_key=True),
    Column("feature", String(200), primary_key=True),
    Column("dimension", String(20), nullable=False),
    Column("value", Float, nullable=True),
)

# Alerts: at most one alert per fingerprint is not resolved (de-duplication); status moves
# open -> acknowledged -> resolved (or open -> resolved).
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False),
    Column("model_name", String(100), nullable=False),
    Column("version", Integer, nullable=True),
    Column("rule", String(64), nullable=False),
    Column("feature", String(200), nullable=False),
    Column("severity", String(10), nullable=False),  # critical | warning | info
    Column("status", String(15), nullable=False),  # open | acknowledged | resolved
    Column("value", Float, nullable=True),
    Column("threshold", Float, nullable=True),
    Column("summary", Text, nullable=False),
    Column("labels", Text, nullable=False),  # canonical JSON
    Column("first_window_end", TS, nullable=False),
    Column("last_window_end", TS, nullable=False),
    Column("windows_breached", Integer, nullable=False),
    Column("clean_windows", Integer, nullable=False),
    Column("started_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("last_notified_at", TS, nullable=True),
    Column("acknowledged_by", String(64), nullable=True),
    Column("acknowledged_at", TS, nullable=True),
    Column("resolved_by", String(64), nullable=True),
    Column("resolved_at", TS, nullable=True),
)

# Webhook notifications are written to this outbox in the alert's transaction and delivered
# after the commit, so a crash between the two loses nothing.
alert_notifications = Table(
    "alert_notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, ForeignKey("alerts.id"), nullable=False),
    Column("status", String(10), nullable=False),  # firing | resolved
    Column("payload", Text, nullable=False),
    Column("delivery", String(10), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("sent_at", TS, nullable=True),
)

# Retraining triggers that fired, and the continuous-training runs they start.
retrain_triggers = Table(
    "retrain_triggers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(100), nullable=False),
    Column("kinds", Text, nullable=False),  # JSON list: schedule | feature_psi | auc_drop | ...
    Column("window_end", TS, nullable=False),
    Column("detail", Text, nullable=False),  # canonical JSON
    Column("pipeline_run_id", String(36), nullable=True),
    Column("fired_at", TS, nullable=False),
    UniqueConstraint("model_name", "window_end"),
)

pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("id", String(36), primary_key=True),  # a UUID, also the OpenLineage runId
    Column("model_name", String(100), nullable=False),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("status", String(20), nullable=False),
    Column("spec", Text, nullable=False),  # canonical JSON
    Column("candidate_version", Integer, nullable=True),
    Column("created_by", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

pipeline_steps = Table(
    "pipeline_steps",
    metadata,
    Column("run_id", String(36), ForeignKey("pipeline_runs.id"), primary_key=True),
    Column("step", String(30), primary_key=True),
    Column("status", String(10), nullable=False),  # done | waiting | failed
    Column("result", Text, nullable=False),  # canonical JSON
    Column("started_at", TS, nullable=False),
    Column("finished_at", TS, nullable=True),
)
Index("ix_monitor_windows_model_end", monitor_windows.c.model_name, monitor_windows.c.window_end)
Index("ix_alerts_fingerprint_status", alerts.c.fingerprint, alerts.c.status)
Index("ix_alerts_model_status", alerts.c.model_name, alerts.c.status)
Index("ix_alert_notifications_delivery", alert_notifications.c.delivery)
Index("ix_pipeline_runs_model", pipeline_runs.c.model_name)
