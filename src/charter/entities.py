"""Frozen, typed records that Charter's services pass around. No I/O here."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


class RiskTier(enum.StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Stage(enum.StrEnum):
    """Lifecycle stage of a model version (see ``charter.registry.lifecycle``)."""

    DEVELOPMENT = "development"
    VALIDATION = "validation"
    APPROVED = "approved"
    DEPLOYED = "deployed"
    RETIRED = "retired"


class AliasName(enum.StrEnum):
    """Aliases a model's versions can hold; each is held by at most one version at a time."""

    CHAMPION = "champion"
    CHALLENGER = "challenger"
    SHADOW = "shadow"


class Role(enum.StrEnum):
    DEVELOPER = "developer"
    VALIDATOR = "validator"
    APPROVER = "approver"
    AUDITOR = "auditor"
    ADMIN = "admin"
    SERVICE = "service"


class FeatureType(enum.StrEnum):
    NUMERIC = "numeric"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    CATEGORICAL = "categorical"
    DATETIME = "datetime"


@dataclass(frozen=True)
class FeatureSpec:
    """One input column of a model version: what values it may take."""

    name: str
    type: FeatureType
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type.value,
            "nullable": self.nullable,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "categories": list(self.categories) if self.categories is not None else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        cats = d.get("categories")
        return cls(
            name=str(d["name"]),
            type=FeatureType(d["type"]),
            nullable=bool(d.get("nullable", False)),
            minimum=d.get("minimum"),
            maximum=d.get("maximum"),
            categories=tuple(str(c) for c in cats) if cats is not None else None,
        )


@dataclass(frozen=True)
class TrainingData:
    """Which data a version was trained on, identified by content hash."""

    dataset_id: str
    content_hash: str
    rows: int
    columns: tuple[str, ...] = ()
    date_from: str | None = None
    date_to: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset_id": self.dataset_id,
            "content_hash": self.content_hash,
            "rows": self.rows,
            "columns": list(self.columns),
            "date_from": self.date_from,
            "date_to": self.date_to,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainingData:
        return cls(
            dataset_id=str(d["dataset_id"]),
            content_hash=str(d["content_hash"]),
            rows=int(d["rows"]),
            columns=tuple(d.get("columns") or ()),
            date_from=d.get("date_from"),
            date_to=d.get("date_to"),
        )


@dataclass(frozen=True)
class Model:
    """An inventory entry: one model, whatever its versions."""

    id: int
    name: str
    purpose: str
    business_use: str
    decision_type: str
    owner: str
    team: str
    risk_tier: RiskTier
    status: str  # development | production | retired (derived from aliases and retirement)
    upstream: tuple[str, ...]
    downstream: tuple[str, ...]
    review_cadence_months: int
    last_review: date | None
    next_review: date
    review_overdue: bool
    tags: dict[str, str]
    created_at: datetime
    created_by: str
    champion_version: int | None = None
    retired_at: datetime | None = None


@dataclass(frozen=True)
class ModelVersion:
    """One registered version with its full lineage."""

    id: int
    model_name: str
    version: int
    stage: Stage
    artifact_sha256: str
    artifact_format: str
    artifact_size: int
    feature_schema: tuple[FeatureSpec, ...]
    training_data: TrainingData | None
    hyperparameters: dict[str, Any]
    seeds: dict[str, Any]
    metrics: dict[str, float]
    code_commit: str | None
    environment: dict[str, Any]  # python version, platform, package versions
    author: str
    training_seconds: float | None
    description: str
    created_at: datetime
    aliases: tuple[str, ...] = ()
    source: dict[str, Any] = field(default_factory=dict)
    reference_profile_sha256: str | None = None  # JSON profile of the training features
    decision_threshold: float | None = None  # scores at or above it are declined


@dataclass(frozen=True)
class Alias:
    model_name: str
    alias: AliasName
    version: int
    revision: int
    set_by: str
    set_at: datetime


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    roles: frozenset[Role]
    is_automation: bool
    active: bool
    created_at: datetime


@dataclass(frozen=True)
class Actor:
    """Who performs an action: a user and the role they act in."""

    username: str
    roles: frozenset[Role]
    is_automation: bool = False

    def has(self, role: Role) -> bool:
        return role in self.roles


class Recommendation(enum.StrEnum):
    """The validator's recommendation to the approver."""

    APPROVE = "approve"
    APPROVE_WITH_CONDITIONS = "approve_with_conditions"
    REJECT = "reject"


class ApprovalDecision(enum.StrEnum):
    """The approver's decision on a version in validation."""

    APPROVED = "approved"
    APPROVED_WITH_CONDITIONS = "approved_with_conditions"
    REJECTED = "rejected"


class Severity(enum.StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class FindingStatus(enum.StrEnum):
    """open -> remediated (by the owner's side) -> closed (by an independent validator)."""

    OPEN = "open"
    REMEDIATED = "remediated"
    CLOSED = "closed"


# The validator's narrative, and the model card's narrative sections (all optional text).
VALIDATION_SECTIONS = ("scope", "conceptual_soundness", "limitations", "conclusion")
NARRATIVE_SECTIONS = (
    "intended_use",
    "out_of_scope_uses",
    "factors",
    "ethical_considerations",
    "caveats_and_recommendations",
)


@dataclass(frozen=True)
class ValidationRecord:
    """A validator's recorded conclusion on a version. ``outcome`` is ``pass`` unless the
    recommendation is ``reject`` (then ``fail``); older records carry only the outcome."""

    id: int
    model_name: str
    version: int
    validator: str
    outcome: str  # pass | fail
    summary: str
    artifact_sha256: str
    created_at: datetime
    recommendation: str = ""  # a Recommendation value; derived from outcome when left empty
    conditions: tuple[str, ...] = ()
    sections: dict[str, str] = field(default_factory=dict)
    gate_run_id: int | None = None

    def __post_init__(self) -> None:
        if not self.recommendation:
            derived = Recommendation.APPROVE if self.outcome == "pass" else Recommendation.REJECT
            object.__setattr__(self, "recommendation", derived.value)


@dataclass(frozen=True)
class GateRun:
    """The evidence of one run of the validation gates over one version's artifact."""

    id: int
    model_name: str
    version: int
    run_by: str
    policy_name: str
    policy_sha256: str
    policy_text: str
    artifact_sha256: str
    training_data_hash: str | None
    datasets: dict[str, dict[str, Any]]  # name -> {"sha256": ..., "rows": ...}
    passed: bool
    failed_gates: tuple[str, ...]
    report: dict[str, Any]
    report_sha256: str  # SHA-256 of the canonical JSON text of ``report``
    created_at: datetime


@dataclass(frozen=True)
class Finding:
    """A validation finding on a version, or on the model as a whole (``version`` None)."""

    id: int
    model_name: str
    version: int | None
    severity: Severity
    title: str
    description: str
    remediation_owner: str
    due_date: date
    status: FindingStatus
    raised_by: str
    raised_at: datetime
    updated_by: str
    updated_at: datetime
    resolution: str | None = None  # what the owner's side did (the remediation note)
    remediated_by: str | None = None
    closure_note: str | None = None
    overdue: bool = False  # not closed and due before today (by the registry's clock)


@dataclass(frozen=True)
class Approval:
    """The approver's decision on a version, with any conditions attached to it."""

    id: int
    model_name: str
    version: int
    approver: str
    decision: ApprovalDecision
    conditions: tuple[str, ...]
    comment: str
    artifact_sha256: str
    created_at: datetime


@dataclass(frozen=True)
class ModelNarrative:
    """The model card's narrative sections (see ``NARRATIVE_SECTIONS``); revision 0: none yet."""

    model_name: str
    sections: dict[str, str]
    revision: int = 0
    updated_by: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    event_id: str
    ts: str  # ISO 8601 UTC with microseconds, e.g. 2026-11-22T20:23:12.000000Z
    actor: str
    actor_type: str  # person | automation
    role: str
    action: str
    subject_type: str
    subject: str
    model_name: str | None
    payload: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Checkpoint:
    """The head of the audit chain at one moment; keep it elsewhere to detect truncation."""

    seq: int
    hash: str
    ts: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "ts": self.ts}


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    events_checked: int
    head: Checkpoint | None
    first_broken_seq: int | None = None
    first_broken_event_id: str | None = None
    reason: str | None = None
