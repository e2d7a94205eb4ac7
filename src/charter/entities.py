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


@dataclass(frozen=True)
class ValidationRecord:
    id: int
    model_name: str
    version: int
    validator: str
    outcome: str  # pass | fail
    summary: str
    artifact_sha256: str
    created_at: datetime


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
