"""The registry service: the only writer of models, versions, validations and aliases.

Every public method that changes state follows one path, in one database transaction:

    permission check -> guard check -> state change -> audit event -> commit

A refused action (a missing role, segregation of duties, a failed guard) changes nothing and is
itself recorded as a ``denied`` audit event, in a transaction of its own. An admin may override a
refusal only with a written justification (``justification=``), which is audited beside the action.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Row, exc, func, select

from charter import audit
from charter.checks import check_enum, check_text
from charter.clock import Clock, iso, parse_iso, system_clock
from charter.config import Settings
from charter.entities import (
    Actor,
    Alias,
    AliasName,
    Approval,
    ApprovalDecision,
    AuditEvent,
    Checkpoint,
    FeatureSpec,
    Finding,
    FindingStatus,
    GateRun,
    Model,
    ModelNarrative,
    ModelVersion,
    Recommendation,
    RiskTier,
    Role,
    Severity,
    Stage,
    TrainingData,
    ValidationRecord,
    VerifyResult,
)
from charter.errors import (
    AlreadyExists,
    CharterError,
    Conflict,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
    UnsafeArtifact,
)
from charter.identity import IdentityService, check_justification
from charter.registry import formats, lifecycle, lineage, workflow
from charter.registry.lifecycle import Check, VersionFacts
from charter.registry.mlflow_import import read_mlflow_model
from charter.storage import jsonutil
from charter.storage.artifacts import ArtifactStore
from charter.storage.db import Database, inserted_id
from charter.storage.schema import (
    model_aliases,
    model_versions,
    models,
    traffic_policies,
    validations,
)

T = TypeVar("T")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,99}$")

# Review cadence by risk tier, in months, when a model does not set its own.
DEFAULT_REVIEW_MONTHS = {RiskTier.HIGH: 12, RiskTier.MEDIUM: 24, RiskTier.LOW: 36}


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()
"""``expected=ANY``: do not check which version held the alias before."""

CANARY_EVENTS = {
    "advance": "canary.advanced",
    "promote": "canary.promoted",
    "rollback": "canary.rolled_back",
}


def add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return date(year, month, min(d.day, days))


def validate_model_name(name: str, field: str = "name") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidArgument(
            f"invalid model name {name!r}",
            field=field,
            remedy="use 2-100 characters: lower-case letters, digits, '.', '_' or '-'",
        )
    return name


def _str_list(value: Iterable[str] | None, field: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [v for v in value.split(",")]
    out = []
    for v in value:
        if not isinstance(v, str):
            raise InvalidArgument(f"{field} must be a list of names", field=field)
        if v.strip():
            out.append(v.strip())
    return out


def _tags(value: dict[str, str] | None) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument("tags must be a mapping of text to text", field="tags")
    return {str(k): str(v) for k, v in value.items()}


def _parse_date(value: date | str | None, field: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(
            f"{field} {value!r} is not a date", field=field, remedy="use YYYY-MM-DD"
        ) from None


def parse_tier(value: str | RiskTier) -> RiskTier:
    return check_enum(RiskTier, value, "risk_tier", "risk tier")


def parse_stage(value: str | Stage) -> Stage:
    return check_enum(Stage, value, "stage")


def parse_alias(value: str | AliasName) -> AliasName:
    return check_enum(AliasName, value, "alias")


@dataclass(frozen=True)
class _Denial:
    action: str
    subject: audit.Subject
    error: CharterError


class Registry:
    """Models, versions, lifecycle, aliases, validations and their audit trail."""

    def __init__(
        self,
        db: Database,
        artifacts: ArtifactStore,
        *,
        clock: Clock = system_clock,
        trusted_types: Sequence[str] = (),
    ) -> None:
        self.db = db
        self.artifacts = artifacts
        self.clock = clock
        self.trusted_types = tuple(trusted_types)
        self.identity = IdentityService(db, clock)

    @classmethod
    def open(cls, settings: Settings | None = None, *, clock: Clock = system_clock) -> Registry:
        """Open the store of ``settings`` (default: from the environment); checks the schema."""
        s = settings or Settings.from_env()
        db = Database(s.database_url)
        db.check_schema()
        return cls(db, ArtifactStore(s.artifact_root), clock=clock)

    # ------------------------------------------------------------------ transaction plumbing
    def _guarded(
        self, actor: Actor, action: str, subject: audit.Subject, body: Callable[[Connection], T]
    ) -> T:
        """Run ``body`` in one write transaction; audit a refusal in a transaction of its own."""
        try:
            with self.db.write() as conn:
                return body(conn)
        except (PermissionDenied, TransitionNotAllowed) as e:
            self._audit_denial(actor, _Denial(action, subject, e))
            raise

    def _audit_denial(self, actor: Actor, d: _Denial) -> None:
        with self.db.write() as conn:
            audit.append(
                conn,
                actor=actor,
                role=",".join(sorted(r.value for r in actor.roles)),
                action="denied",
                subject=d.subject,
                payload={
                    "attempted": d.action,
                    "code": d.error.code,
                    "reason": d.error.message,
                    "reasons": d.error.details.get("reasons", [d.error.message]),
                },
                clock=self.clock,
            )

    def _enforce(
        self,
        conn: Connection,
        actor: Actor,
        check: Check,
        subject: audit.Subject,
        justification: str | None,
    ) -> bool:
        """Raise for a refused check, or record an admin's override; True if overridden."""
        if check.allowed:
            return False
        if not check.edge_exists:
            raise TransitionNotAllowed(check.guard[0], remedy="see `charter versions show`")
        reasons = [*check.role, *check.sod, *check.guard]
        if justification is not None:
            text = check_justification(actor, justification)
            audit.append(
                conn,
                actor=actor,
                role=Role.ADMIN.value,
                action="override",
                subject=subject,
                payload={"overridden": check.action, "reasons": reasons, "justification": text},
                clock=self.clock,
            )
            return True
        if check.role or check.sod:
            raise PermissionDenied(
                (check.role or check.sod)[0],
                remedy="have a different person with the right role do it, or an admin "
                "override it with a written justification",
                details={"reasons": reasons},
            )
        raise TransitionNotAllowed(
            "; ".join(check.guard),
            remedy="meet the condition first, or an admin overrides with a justification",
            details={"reasons": reasons},
        )

    @staticmethod
    def _acting_role(actor: Actor, roles: Iterable[Role], overridden: bool) -> str:
        for r in roles:
            if actor.has(r):
                return r.value
        return Role.ADMIN.value if overridden else ",".join(sorted(r.value for r in actor.roles))

    # ------------------------------------------------------------------ reading rows
    def _model_row(self, conn: Connection, name: str) -> Row[Any]:
        row = conn.execute(select(models).where(models.c.name == name)).first()
        if row is None:
            raise NotFound(
                f"no model named {name!r}",
                field="name",
                remedy="list models with `charter models list`, or create it first",
            )
        return row

    def _version_row(self, conn: Connection, model: Row[Any], version: int) -> Row[Any]:
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise InvalidArgument(
                f"version must be a positive integer, not {version!r}",
                field="version",
                remedy="pass a version number, e.g. 1",
            )
        row = conn.execute(
            select(model_versions).where(
                model_versions.c.model_id == model.id, model_versions.c.version == version
            )
        ).first()
        if row is None:
            raise NotFound(
                f"model {model.name!r} has no version {version}",
                field="version",
                remedy=f"list versions with `charter versions list {model.name}`",
            )
        return row

    def _aliases_of(self, conn: Connection, version_id: int) -> tuple[AliasName, ...]:
        rows = conn.execute(
            select(model_aliases.c.alias).where(model_aliases.c.version_id == version_id)
        )
        return tuple(sorted(AliasName(r.alias) for r in rows))

    def _facts(self, conn: Connection, v: Row[Any], model_name: str | None = None) -> VersionFacts:
        vals = conn.execute(
            select(validations.c.validator, validations.c.outcome)
            .where(validations.c.version_id == v.id)
            .order_by(validations.c.id)
        ).all()
        if model_name is None:
            model_name = conn.execute(
                select(models.c.name).where(models.c.id == v.model_id)
            ).scalar()
        return VersionFacts(
            stage=Stage(v.stage),
            author=v.author,
            validators=tuple(r.validator for r in vals),
            passing_validators=tuple(r.validator for r in vals if r.outcome == "pass"),
            aliases=self._aliases_of(conn, v.id),
            model_name=str(model_name),
            version=int(v.version),
            latest_gate_run=workflow.latest_gate_run_fact(conn, v),
            open_high_findings=workflow.open_high_finding_ids(conn, v.model_id, v.id),
        )

    def _to_model(self, r: Row[Any], champion: int | None) -> Model:
        tier = RiskTier(r.risk_tier)
        created = parse_iso(r.created_at)
        last = date.fromisoformat(r.last_review) if r.last_review else None
        nxt = add_months(last or created.date(), r.review_cadence_months)
        retired = parse_iso(r.retired_at) if r.retired_at else None
        status = "retired" if retired else ("production" if champion is not None else "development")
        return Model(
            id=r.id,
            name=r.name,
            purpose=r.purpose,
            business_use=r.business_use,
            decision_type=r.decision_type,
            owner=r.owner,
            team=r.team,
            risk_tier=tier,
            status=status,
            upstream=tuple(jsonutil.loads(r.upstream)),
            downstream=tuple(jsonutil.loads(r.downstream)),
            review_cadence_months=r.review_cadence_months,
            last_review=last,
            next_review=nxt,
            review_overdue=retired is None and nxt < self.clock().date(),
            tags=jsonutil.loads(r.tags),
            created_at=created,
            created_by=r.created_by,
            champion_version=champion,
            retired_at=retired,
        )

    def _to_version(self, conn: Connection, model_name: str, v: Row[Any]) -> ModelVersion:
        td = jsonutil.loads(v.training_data)
        return ModelVersion(
            id=v.id,
            model_name=model_name,
            version=v.version,
            stage=Stage(v.stage),
            artifact_sha256=v.artifact_sha256,
            artifact_format=v.artifact_format,
            artifact_size=v.artifact_size,
            feature_schema=tuple(
                FeatureSpec.from_dict(f) for f in jsonutil.loads(v.feature_schema)
            ),
            training_data=TrainingData.from_dict(td) if td else None,
            hyperparameters=jsonutil.loads(v.hyperparameters),
            seeds=jsonutil.loads(v.seeds),
            metrics=jsonutil.loads(v.metrics),
            code_commit=v.code_commit,
            environment=jsonutil.loads(v.environment),
            author=v.author,
            training_seconds=v.training_seconds,
            description=v.description,
            created_at=parse_iso(v.created_at),
            aliases=tuple(a.value for a in self._aliases_of(conn, v.id)),
            source=jsonutil.loads(v.source),
            reference_profile_sha256=v.reference_profile_sha256,
            decision_threshold=v.decision_threshold,
        )

    def _champion_version(self, conn: Connection, model_id: int) -> int | None:
        r = conn.execute(
            select(model_versions.c.version)
            .join(model_aliases, model_aliases.c.version_id == model_versions.c.id)
            .where(model_aliases.c.model_id == model_id, model_aliases.c.alias == "champion")
        ).first()
        return None if r is None else int(r.version)

    # ------------------------------------------------------------------ models (inventory)
    def create_model(
        self,
        actor: Actor,
        *,
        name: str,
        purpose: str,
        business_use: str,
        decision_type: str,
        owner: str,
        team: str,
        risk_tier: str | RiskTier,
        upstream: Iterable[str] | None = None,
        downstream: Iterable[str] | None = None,
        review_cadence_months: int | None = None,
        last_review: date | str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Model:
        validate_model_name(name)
        tier = parse_tier(risk_tier)
        cadence = (
            DEFAULT_REVIEW_MONTHS[tier] if review_cadence_months is None else review_cadence_months
        )
        if not isinstance(cadence, int) or isinstance(cadence, bool) or not 1 <= cadence <= 120:
            raise InvalidArgument(
                f"review cadence {cadence!r} is not a whole number of months from 1 to 120",
                field="review_cadence_months",
                remedy="leave it out to use the tier's default (high 12, medium 24, low 36)",
            )
        values = {
            "name": name,
            "purpose": check_text(purpose, "purpose", "Probability of default for retail loans"),
            "business_use": check_text(
                business_use, "business_use", "Approve or decline applications"
            ),
            "decision_type": check_text(decision_type, "decision_type", "credit approval", 100),
            "owner": check_text(owner, "owner", "Head of Retail Credit Risk", 200),
            "team": check_text(team, "team", "Retail Credit Analytics", 200),
            "risk_tier": tier.value,
            "upstream": jsonutil.dumps(_str_list(upstream, "upstream")),
            "downstream": jsonutil.dumps(_str_list(downstream, "downstream")),
            "review_cadence_months": cadence,
            "last_review": (
                d.isoformat() if (d := _parse_date(last_review, "last_review")) else None
            ),
            "tags": jsonutil.dumps(_tags(tags)),
            "created_by": actor.username,
        }
        subject = audit.Subject("model", name, name)
        roles = (Role.DEVELOPER, Role.APPROVER, Role.ADMIN)

        def body(conn: Connection) -> Model:
            if not any(actor.has(r) for r in roles):
                raise PermissionDenied(
                    f"{actor.username} may not create models: it needs the role developer, "
                    "approver or admin",
                    remedy="ask an admin for the developer role",
                )
            if conn.execute(select(models.c.id).where(models.c.name == name)).first():
                raise AlreadyExists(
                    f"a model named {name!r} exists already",
                    field="name",
                    remedy="choose another name, or register a new version of that model",
                )
            now = iso(self.clock())
            mid = inserted_id(
                conn.execute(models.insert().values(created_at=now, retired_at=None, **values))
            )
            payload: dict[str, Any] = {
                k: jsonutil.loads(str(v)) if k in ("upstream", "downstream", "tags") else v
                for k, v in values.items()
            }
            audit.append(
                conn,
                actor=actor,
                role=self._acting_role(actor, roles, False),
                action="model.created",
                subject=subject,
                payload=payload,
                clock=self.clock,
            )
            return self._to_model(
                conn.execute(select(models).where(models.c.id == mid)).one(), None
            )

        return self._guarded(actor, "model.create", subject, body)

    def record_review(self, actor: Actor, name: str, review_date: date | str) -> Model:
        """Record a periodic review of a model (validators and approvers); resets the schedule."""
        d = _parse_date(review_date, "review_date")
        assert d is not None
        if d > self.clock().date():
            raise InvalidArgument(
                "a review cannot be dated in the future", field="review_date", remedy="use today"
            )
        subject = audit.Subject("model", name, name)

        def body(conn: Connection) -> Model:
            m = self._model_row(conn, name)
            if not (actor.has(Role.VALIDATOR) or actor.has(Role.APPROVER)):
                raise PermissionDenied(
                    f"{actor.username} may not record a model review: it needs the role "
                    "validator or approver"
                )
            conn.execute(
                models.update().where(models.c.id == m.id).values(last_review=d.isoformat())
            )
            audit.append(
                conn,
                actor=actor,
                role=self._acting_role(actor, (Role.VALIDATOR, Role.APPROVER), False),
                action="model.reviewed",
                subject=subject,
                payload={"review_date": d.isoformat(), "previous": m.last_review},
                clock=self.clock,
            )
            row = conn.execute(select(models).where(models.c.id == m.id)).one()
            return self._to_model(row, self._champion_version(conn, m.id))

        return self._guarded(actor, "model.review", subject, body)

    def retire_model(self, actor: Actor, name: str, *, reason: str) -> Model:
        """Take a model out of the inventory of live models; it must hold no alias."""
        text = check_text(reason, "reason", "replaced by the 2027 scorecard")
        subject = audit.Subject("model", name, name)

        def body(conn: Connection) -> Model:
            m = self._model_row(conn, name)
            if not (actor.has(Role.APPROVER) or actor.has(Role.ADMIN)):
                raise PermissionDenied(
                    f"{actor.username} may not retire models: it needs the role approver"
                )
            if m.retired_at is not None:
                raise TransitionNotAllowed(f"model {name!r} is retired already")
            held = conn.execute(
                select(model_aliases.c.alias).where(model_aliases.c.model_id == m.id)
            ).all()
            if held:
                raise TransitionNotAllowed(
                    f"model {name!r} still has {', '.join(r.alias for r in held)}",
                    remedy="remove its aliases first (charter promote --remove)",
                )
            conn.execute(
                models.update().where(models.c.id == m.id).values(retired_at=iso(self.clock()))
            )
            audit.append(
                conn,
                actor=actor,
                role=self._acting_role(actor, (Role.APPROVER, Role.ADMIN), False),
                action="model.retired",
                subject=subject,
                payload={"reason": text},
                clock=self.clock,
            )
            return self._to_model(
                conn.execute(select(models).where(models.c.id == m.id)).one(), None
            )

        return self._guarded(actor, "model.retire", subject, body)

    def get_model(self, name: str) -> Model:
        with self.db.read() as conn:
            r = self._model_row(conn, name)
            return self._to_model(r, self._champion_version(conn, r.id))

    def list_models(self) -> list[Model]:
        champ = (
            select(model_aliases.c.model_id, model_versions.c.version)
            .join(model_versions, model_versions.c.id == model_aliases.c.version_id)
            .where(model_aliases.c.alias == "champion")
            .subquery()
        )
        with self.db.read() as conn:
            rows = conn.execute(
                select(models, champ.c.version.label("champion_version"))
                .outerjoin(champ, champ.c.model_id == models.c.id)
                .order_by(models.c.name)
            ).all()
        return [self._to_model(r, r.champion_version) for r in rows]

    # ------------------------------------------------------------------ versions
    def _register(
        self,
        actor: Actor,
        name: str,
        *,
        data: bytes,
        fmt: str,
        feature_schema: Sequence[FeatureSpec],
        training_data: TrainingData | None,
        hyperparameters: dict[str, Any],
        seeds: dict[str, Any],
        metrics: dict[str, Any],
        code_commit: str | None,
        environment: dict[str, Any],
        training_seconds: float | None,
        description: str,
        source: dict[str, Any],
        reference_profile: bytes | None = None,
        threshold: float | None = None,
        on_behalf_of: str | None = None,
    ) -> ModelVersion:
        validate_model_name(name)
        clean_metrics = _metrics(metrics)
        if threshold is not None and not (
            isinstance(threshold, (int, float)) and 0.0 < float(threshold) < 1.0
        ):
            raise InvalidArgument(
                f"decision threshold {threshold!r} is not a probability strictly between 0 and 1",
                field="threshold",
                remedy="pass the operating point, e.g. 0.3 (scores at or above it are declined)",
            )
        subject = audit.Subject("model", name, name)
        roles = (Role.DEVELOPER, Role.SERVICE)
        # The artifact goes to the content-addressed store first: if the transaction then fails,
        # an unreferenced file remains, which is harmless (same bytes, same name) and never loads.
        sha = self.artifacts.put_bytes(data)
        profile_sha = self.artifacts.put_bytes(reference_profile) if reference_profile else None

        author = self._author(actor, on_behalf_of)

        def body(conn: Connection) -> ModelVersion:
            m = self._model_row(conn, name)
            if not any(actor.has(r) for r in roles):
                raise PermissionDenied(
                    f"{actor.username} may not register versions: it needs the role developer",
                    remedy="ask an admin for the developer role",
                )
            if m.retired_at is not None:
                raise TransitionNotAllowed(
                    f"model {name!r} is retired; it takes no new versions",
                    remedy="create a new model entry",
                )
            last = conn.execute(
                select(func.max(model_versions.c.version)).where(model_versions.c.model_id == m.id)
            ).scalar()
            number = int(last or 0) + 1
            now = iso(self.clock())
            vid = inserted_id(
                conn.execute(
                    model_versions.insert().values(
                        model_id=m.id,
                        version=number,
                        stage=Stage.DEVELOPMENT.value,
                        artifact_sha256=sha,
                        artifact_format=fmt,
                        artifact_size=len(data),
                        feature_schema=jsonutil.dumps([f.to_dict() for f in feature_schema]),
                        training_data=jsonutil.dumps(training_data.to_dict())
                        if training_data
                        else None,
                        hyperparameters=jsonutil.dumps(hyperparameters),
                        seeds=jsonutil.dumps(seeds),
                        metrics=jsonutil.dumps(clean_metrics),
                        code_commit=code_commit,
                        environment=jsonutil.dumps(environment),
                        author=author,
                        training_seconds=training_seconds,
                        description=description,
                        source=jsonutil.dumps(source),
                        created_at=now,
                        reference_profile_sha256=profile_sha,
                        decision_threshold=None if threshold is None else float(threshold),
                    )
                )
            )
            audit.append(
                conn,
                actor=actor,
                role=self._acting_role(actor, roles, False),
                action="version.registered",
                subject=audit.Subject("version", f"{name}/{number}", name),
                payload={
                    "version": number,
                    "artifact_sha256": sha,
                    "artifact_format": fmt,
                    "training_data_hash": training_data.content_hash if training_data else None,
                    "code_commit": code_commit,
                    "features": len(feature_schema),
                    "metrics": clean_metrics,
                    "source": source,
                    "reference_profile_sha256": profile_sha,
                    "decision_threshold": threshold,
                    "on_behalf_of": on_behalf_of,
                },
                clock=self.clock,
            )
            row = conn.execute(select(model_versions).where(model_versions.c.id == vid)).one()
            return self._to_version(conn, name, row)

        return self._guarded(actor, "version.register", subject, body)

    def _author(self, actor: Actor, on_behalf_of: str | None) -> str:
        """Who a new version belongs to: the registering person, or, when the automation
        registers (continuous training), the developer accountable for it."""
        if on_behalf_of is None:
            return actor.username
        if not actor.is_automation:
            raise PermissionDenied(
                f"{actor.username} may not register a version on behalf of {on_behalf_of}",
                remedy="only the automation identity registers on behalf of a developer",
            )
        try:
            dev = self.identity.actor(on_behalf_of)
        except CharterError:
            raise InvalidArgument(
                f"{on_behalf_of!r} is not an active user",
                field="on_behalf_of",
                remedy="name an existing user with the developer role",
            ) from None
        if dev.is_automation or not dev.has(Role.DEVELOPER):
            raise InvalidArgument(
                f"{on_behalf_of} is not a person with the developer role",
                field="on_behalf_of",
                remedy="name the developer accountable for the version",
            )
        return dev.username

    def log_model(
        self,
        actor: Actor,
        name: str,
        model: Any,
        *,
        X: Any = None,
        y: Any = None,
        dataset_id: str | None = None,
        date_column: str | None = None,
        metrics: dict[str, float] | None = None,
        feature_schema: Sequence[FeatureSpec] | None = None,
        training_seconds: float | None = None,
        description: str = "",
        fit: bool = False,
        format: str | None = None,
        code_dir: Path | None = None,
        threshold: float | None = None,
        on_behalf_of: str | None = None,
    ) -> ModelVersion:
        """Register a fitted (or, with ``fit=True``, to-be-fitted) estimator with its lineage.

        With ``X`` (a DataFrame) the feature schema and the training-data identity are captured;
        ``fit=True`` fits ``model`` on ``X, y`` here and records the training time. The
        automation identity passes ``on_behalf_of`` (a developer's username): the version is
        that developer's (its author, for segregation of duties) and the audit event, by the
        automation, names them.
        """
        if fit:
            if X is None or y is None:
                raise InvalidArgument(
                    "fit=True needs the training data", field="X", remedy="pass X and y"
                )
            start = time.perf_counter()
            model.fit(X, y)
            training_seconds = time.perf_counter() - start
        schema: Sequence[FeatureSpec]
        if feature_schema is not None:
            schema = tuple(feature_schema)
        elif X is not None:
            features = [c for c in X.columns if c != date_column] if date_column else None
            schema = lineage.infer_feature_schema(X[features] if features else X)
        else:
            raise InvalidArgument(
                "the version needs a feature schema",
                field="X",
                remedy="pass the training features X (a DataFrame) or feature_schema",
            )
        td = None
        if X is not None:
            td = lineage.describe_training_data(
                X, y, dataset_id=dataset_id or "unnamed", date_column=date_column
            )
        serialized = formats.serialize_model(model, format)
        params = lineage.hyperparameters(model)
        profile = None
        if X is not None:
            from charter.stats.sketches import build_profile

            numeric = [s.name for s in schema if s.type.value in ("numeric", "integer")]
            categorical = [s.name for s in schema if s.type.value in ("categorical", "boolean")]
            profile = build_profile(X, numeric=numeric, categorical=categorical).to_json().encode()
        return self._register(
            actor,
            name,
            data=serialized.data,
            fmt=serialized.format,
            feature_schema=schema,
            training_data=td,
            hyperparameters=params,
            seeds=lineage.seeds(params),
            metrics=metrics or {},
            code_commit=lineage.code_commit(code_dir),
            environment=lineage.environment(),
            training_seconds=training_seconds,
            description=description,
            source={
                "kind": "python",
                "model_class": serialized.model_class,
                "library": serialized.library,
                "library_version": serialized.library_version,
            },
            reference_profile=profile,
            threshold=threshold,
            on_behalf_of=on_behalf_of,
        )

    def register_file(
        self,
        actor: Actor,
        name: str,
        path: Path | str,
        *,
        format: str,
        feature_schema: Sequence[FeatureSpec] | None = None,
        metrics: dict[str, float] | None = None,
        description: str = "",
        allow_pickle: bool = False,
    ) -> ModelVersion:
        """Register a serialised model file. Safe formats are loaded once to prove they load;
        a pickle is never loaded here, and is accepted only with ``allow_pickle=True``."""
        p = Path(path)
        if not p.is_file():
            raise InvalidArgument(
                f"no model file at {str(p)!r}", field="path", remedy="check the path"
            )
        if format not in formats.FORMATS:
            raise InvalidArgument(
                f"unknown artifact format {format!r}",
                field="format",
                remedy=f"use one of: {', '.join(formats.FORMATS)}",
            )
        if format == formats.PICKLE and not allow_pickle:
            raise UnsafeArtifact(
                "a pickle can run arbitrary code when loaded; Charter registers one only when you "
                "vouch for it",
                field="format",
                remedy="convert the model to skops, or pass --allow-pickle if you trust its origin",
            )
        data = p.read_bytes()
        formats.check_loadable(data, format, trusted_types=self.trusted_types)
        schema: tuple[FeatureSpec, ...] = tuple(feature_schema or ())
        inferred = None
        if not schema and format != formats.PICKLE:
            names = formats.feature_names(
                formats.load_model(data, format, trusted_types=self.trusted_types)
            )
            if names:
                from charter.entities import FeatureType

                schema = tuple(FeatureSpec(n, FeatureType.NUMERIC) for n in names)
                inferred = "feature_names"
        if not schema:
            raise InvalidArgument(
                "the model file does not name its features",
                field="feature_schema",
                remedy="pass --schema FILE (a JSON list of {name, type, ...})",
            )
        return self._register(
            actor,
            name,
            data=data,
            fmt=format,
            feature_schema=schema,
            training_data=None,
            hyperparameters={},
            seeds={},
            metrics=metrics or {},
            code_commit=None,
            environment=lineage.environment(),
            training_seconds=None,
            description=description,
            source={
                "kind": "file",
                "filename": p.name,
                "schema_inferred_from": inferred,
                "pickle_vouched_by": actor.username if format == formats.PICKLE else None,
            },
        )

    def register_mlflow(
        self,
        actor: Actor,
        name: str,
        path: Path | str,
        *,
        description: str = "",
        allow_pickle: bool = False,
        feature_schema: Sequence[FeatureSpec] | None = None,
    ) -> ModelVersion:
        """Import an MLflow model directory (sklearn flavour) read from its ``MLmodel`` file."""
        mm = read_mlflow_model(path)
        if mm.format == formats.PICKLE and not allow_pickle:
            raise UnsafeArtifact(
                "this MLflow model is stored as a pickle, which can run arbitrary code when "
                "loaded; Charter registers it only when you vouch for it",
                field="allow_pickle",
                remedy="pass --allow-pickle if you trust the MLflow run it comes from",
            )
        schema = tuple(feature_schema or mm.feature_schema or ())
        if not schema:
            raise InvalidArgument(
                "the MLflow model has no column signature",
                field="feature_schema",
                remedy="pass --schema FILE, or log the model in MLflow with a signature",
            )
        if mm.format != formats.PICKLE:
            formats.check_loadable(mm.data, mm.format, trusted_types=self.trusted_types)
        return self._register(
            actor,
            name,
            data=mm.data,
            fmt=mm.format,
            feature_schema=schema,
            training_data=None,
            hyperparameters={},
            seeds={},
            metrics={},
            code_commit=None,
            environment={"mlflow_version": mm.mlflow_version, "sklearn": mm.sklearn_version},
            training_seconds=None,
            description=description,
            source={
                "kind": "mlflow",
                "flavor": mm.flavor,
                "run_id": mm.run_id,
                "model_uuid": mm.model_uuid,
                "utc_time_created": mm.utc_time_created,
                "path": mm.source_path,
                "pickle_vouched_by": actor.username if mm.format == formats.PICKLE else None,
            },
        )

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self.db.read() as conn:
            m = self._model_row(conn, name)
            return self._to_version(conn, name, self._version_row(conn, m, version))

    def resolve(self, name: str, ref: int | str) -> ModelVersion:
        """A version by number, by alias (``champion``) or ``latest``."""
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            return self.get_version(name, int(ref))
        with self.db.read() as conn:
            m = self._model_row(conn, name)
            if ref == "latest":
                v = conn.execute(
                    select(model_versions)
                    .where(model_versions.c.model_id == m.id)
                    .order_by(model_versions.c.version.desc())
                    .limit(1)
                ).first()
            else:
                alias = parse_alias(ref)
                v = conn.execute(
                    select(model_versions)
                    .join(model_aliases, model_aliases.c.version_id == model_versions.c.id)
                    .where(model_aliases.c.model_id == m.id, model_aliases.c.alias == alias.value)
                ).first()
            if v is None:
                raise NotFound(
                    f"model {name!r} has no {ref} version",
                    field="version",
                    remedy=f"see `charter versions list {name}`",
                )
            return self._to_version(conn, name, v)

    def reference_profile(self, name: str, ref: int | str) -> Any:
        """The reference profile stored with a version (its training features), hash-checked."""
        from charter.stats.sketches import ReferenceProfile

        v = self.resolve(name, ref)
        if v.reference_profile_sha256 is None:
            raise NotFound(
                f"{name} v{v.version} has no reference profile",
                field="version",
                remedy="log the model from Python with its training data X",
            )
        return ReferenceProfile.from_json(
            self.artifacts.get_bytes(v.reference_profile_sha256).decode("utf-8")
        )

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self.db.read() as conn:
            m = self._model_row(conn, name)
            rows = conn.execute(
                select(model_versions)
                .where(model_versions.c.model_id == m.id)
                .order_by(model_versions.c.version)
            ).all()
            return [self._to_version(conn, name, r) for r in rows]

    def load_model(self, name: str, ref: int | str, *, allow_pickle: bool = False) -> Any:
        """Load a version's model object. The artifact's bytes must hash to the sha256 the
        registry holds (else ``ArtifactIntegrityError``); a pickle loads only with
        ``allow_pickle=True`` and only after that check."""
        v = self.resolve(name, ref)
        data = self.artifacts.get_bytes(v.artifact_sha256)
        if v.artifact_format == formats.PICKLE and not allow_pickle:
            raise UnsafeArtifact(
                f"{name} v{v.version} is a pickle; loading it runs code from the artifact",
                field="allow_pickle",
                remedy="pass allow_pickle=True if you accept the registry's hash as its warrant",
            )
        return formats.load_model(
            data,
            v.artifact_format,
            trusted_types=self.trusted_types,
            allow_pickle=v.artifact_format == formats.PICKLE and allow_pickle,
        )

    # ------------------------------------------------------------------ lifecycle
    def transition(
        self,
        actor: Actor,
        name: str,
        version: int,
        to: str | Stage,
        *,
        comment: str = "",
        justification: str | None = None,
    ) -> ModelVersion:
        """Move a version to another stage. Approving here is the approver's decision
        ``approved`` (an approvals row and ``version.approval_decided``, as :meth:`decide`)."""
        target = parse_stage(to)
        subject = audit.Subject("version", f"{name}/{version}", name)

        def body(conn: Connection) -> ModelVersion:
            m = self._model_row(conn, name)
            v = self._version_row(conn, m, version)
            overridden = self._transition_in_tx(
                conn, actor, name, v, target, comment=comment, justification=justification
            )
            if target is Stage.APPROVED:
                workflow.write_approval(
                    self,
                    conn,
                    actor,
                    name,
                    v,
                    ApprovalDecision.APPROVED,
                    conditions=[],
                    comment=comment,
                    overridden=overridden,
                )
            return self._to_version(conn, name, self._version_row(conn, m, version))

        return self._guarded(actor, f"version.transition.{target.value}", subject, body)

    def _transition_in_tx(
        self,
        conn: Connection,
        actor: Actor,
        name: str,
        v: Row[Any],
        target: Stage,
        *,
        comment: str,
        justification: str | None,
        extra: Callable[[VersionFacts, Check], Check] | None = None,
    ) -> bool:
        """Inside a write transaction: check, move and audit one stage change of version row
        ``v`` (``extra`` may add reasons to the check); True if an admin overrode a refusal."""
        subject = audit.Subject("version", f"{name}/{v.version}", name)
        facts = self._facts(conn, v, name)
        check = lifecycle.check_transition(facts, actor, target)
        if extra is not None:
            check = extra(facts, check)
        overridden = self._enforce(conn, actor, check, subject, justification)
        conn.execute(
            model_versions.update().where(model_versions.c.id == v.id).values(stage=target.value)
        )
        rule = lifecycle.TRANSITIONS[(facts.stage, target)]
        audit.append(
            conn,
            actor=actor,
            role=self._acting_role(actor, rule.roles, overridden),
            action=f"version.{rule.action}",
            subject=subject,
            payload={
                "version": int(v.version),
                "from": facts.stage.value,
                "to": target.value,
                "comment": comment,
                "artifact_sha256": v.artifact_sha256,
                "override": overridden,
            },
            clock=self.clock,
        )
        return overridden

    def record_validation(
        self,
        actor: Actor,
        name: str,
        version: int,
        *,
        recommendation: str | Recommendation | None = None,
        outcome: str | None = None,
        summary: str,
        conditions: Iterable[str] = (),
        sections: dict[str, str] | None = None,
        gate_run_id: int | None = None,
        justification: str | None = None,
    ) -> ValidationRecord:
        """An independent validator records their recommendation on a version in validation:
        ``approve``, ``approve_with_conditions`` (with ``conditions``) or ``reject``; the older
        ``outcome="pass"``/``"fail"`` means approve/reject. ``sections`` is the validator's
        narrative (scope, conceptual_soundness, limitations, conclusion); ``gate_run_id`` links
        the gate run the conclusion rests on."""
        return workflow.record_validation(
            self,
            actor,
            name,
            version,
            recommendation=recommendation,
            outcome=outcome,
            summary=summary,
            conditions=conditions,
            sections=sections,
            gate_run_id=gate_run_id,
            justification=justification,
        )

    def list_validations(self, name: str, version: int) -> list[ValidationRecord]:
        with self.db.read() as conn:
            m = self._model_row(conn, name)
            v = self._version_row(conn, m, version)
            rows = conn.execute(
                select(validations)
                .where(validations.c.version_id == v.id)
                .order_by(validations.c.id)
            ).all()
        return [workflow.validation_record(r, name, version) for r in rows]

    # ------------------------------------------------------------------ validation workflow
    def record_gate_run(
        self,
        actor: Actor,
        name: str,
        version: int,
        *,
        policy_name: str,
        policy_sha256: str,
        policy_text: str,
        datasets: dict[str, dict[str, Any]],
        passed: bool,
        failed_gates: Iterable[str],
        report: dict[str, Any],
    ) -> GateRun:
        """Record the evidence of one run of the validation gates (developers, validators,
        service), bound to the version's artifact and training-data hashes. ``policy_sha256``
        must be the SHA-256 of ``policy_text`` (UTF-8); the report is stored as canonical JSON
        and its SHA-256 is audited. Serving aliases and canaries need the newest run passed."""
        return workflow.record_gate_run(
            self,
            actor,
            name,
            version,
            policy_name=policy_name,
            policy_sha256=policy_sha256,
            policy_text=policy_text,
            datasets=datasets,
            passed=passed,
            failed_gates=failed_gates,
            report=report,
        )

    def list_gate_runs(self, name: str, version: int) -> list[GateRun]:
        """A version's gate runs, oldest first."""
        return workflow.list_gate_runs(self, name, version)

    def get_gate_run(self, gate_run_id: int) -> GateRun:
        return workflow.get_gate_run(self, gate_run_id)

    def raise_finding(
        self,
        actor: Actor,
        name: str,
        version: int | None,
        *,
        severity: str | Severity,
        title: str,
        description: str,
        remediation_owner: str,
        due_date: date | str,
    ) -> Finding:
        """A validator raises a finding on a version (not their own) or, with ``version=None``,
        on the model as a whole."""
        return workflow.raise_finding(
            self,
            actor,
            name,
            version,
            severity=severity,
            title=title,
            description=description,
            remediation_owner=remediation_owner,
            due_date=due_date,
        )

    def remediate_finding(self, actor: Actor, finding_id: int, note: str) -> Finding:
        """The owner's side (a developer, or the named remediation owner) marks it remediated."""
        return workflow.remediate_finding(self, actor, finding_id, note)

    def close_finding(self, actor: Actor, finding_id: int, note: str) -> Finding:
        """A validator who neither remediated it nor developed the version closes it."""
        return workflow.close_finding(self, actor, finding_id, note)

    def reopen_finding(self, actor: Actor, finding_id: int, note: str) -> Finding:
        """A validator reopens a remediated or closed finding."""
        return workflow.reopen_finding(self, actor, finding_id, note)

    def list_findings(
        self,
        name: str | None = None,
        status: str | FindingStatus | None = None,
        *,
        version: int | None = None,
    ) -> list[Finding]:
        """Findings (of one model, or all), oldest first; ``status`` may also be ``overdue``."""
        return workflow.list_findings(self, name, status, version=version)

    def get_finding(self, finding_id: int) -> Finding:
        return workflow.get_finding(self, finding_id)

    def decide(
        self,
        actor: Actor,
        name: str,
        version: int,
        decision: str | ApprovalDecision,
        *,
        comment: str = "",
        conditions: Iterable[str] = (),
        justification: str | None = None,
    ) -> Approval:
        """The approver's decision on a version in validation: ``approved`` or
        ``approved_with_conditions`` (at least one condition) move it to approved under the
        approval rule; ``rejected`` (with a comment) sends it back to development."""
        return workflow.decide(
            self,
            actor,
            name,
            version,
            decision,
            comment=comment,
            conditions=conditions,
            justification=justification,
        )

    def list_approvals(self, name: str, version: int) -> list[Approval]:
        return workflow.list_approvals(self, name, version)

    def set_model_narrative(
        self, actor: Actor, name: str, sections: dict[str, str | None]
    ) -> ModelNarrative:
        """Set narrative sections of the model card (developers, approvers); sections not given
        stay as they are, blank or None clears one."""
        return workflow.set_model_narrative(self, actor, name, sections)

    def get_model_narrative(self, name: str) -> ModelNarrative:
        return workflow.get_model_narrative(self, name)

    # ------------------------------------------------------------------ aliases
    def set_alias(
        self,
        actor: Actor,
        name: str,
        version: int,
        alias: str | AliasName = AliasName.CHAMPION,
        *,
        expected: Any = ANY,
        comment: str = "",
        justification: str | None = None,
    ) -> Alias:
        """Give ``alias`` to a version (promote). With ``expected`` (a version number, or None
        for "nobody"), the change happens only if that version still holds the alias; otherwise
        a ``Conflict`` says who holds it now. At most one version holds an alias: the database's
        primary key on (model, alias) guarantees it on every backend."""
        a = parse_alias(alias)
        subject = audit.Subject("version", f"{name}/{version}", name)

        def body(conn: Connection) -> Alias:
            m = self._model_row(conn, name)
            return self._set_alias_in_tx(
                conn, actor, m, version, a, expected=expected, comment=comment,
                justification=justification,
            )  # fmt: skip

        return self._guarded(actor, f"alias.set.{a.value}", subject, body)

    def _set_alias_in_tx(
        self,
        conn: Connection,
        actor: Actor,
        m: Row[Any],
        version: int,
        a: AliasName,
        *,
        expected: Any = ANY,
        comment: str = "",
        justification: str | None = None,
    ) -> Alias:
        """Give alias ``a`` to ``version`` of model row ``m`` inside the caller's transaction:
        the checks, the change, the end of any other serving alias it held, and the audit."""
        name = m.name
        subject = audit.Subject("version", f"{name}/{version}", name)
        v = self._version_row(conn, m, version)
        facts = self._facts(conn, v, name)
        current = conn.execute(
            select(model_aliases.c.version_id, model_aliases.c.revision, model_versions.c.version)
            .join(model_versions, model_versions.c.id == model_aliases.c.version_id)
            .where(model_aliases.c.model_id == m.id, model_aliases.c.alias == a.value)
        ).first()
        holder = None if current is None else int(current.version)
        if expected is not ANY and expected != holder:
            raise Conflict(
                f"{a.value} of {name} is held by "
                f"{'nobody' if holder is None else f'version {holder}'}, not "
                f"{'nobody' if expected is None else f'version {expected}'}: another change "
                "came first",
                field="expected",
                remedy="re-read the model and decide again",
                details={"holder": holder, "expected": expected},
            )
        if holder == version:
            raise TransitionNotAllowed(
                f"version {version} of {name} is {a.value} already",
                remedy="nothing to do",
            )
        check = lifecycle.check_alias(facts, actor, a)
        overridden = self._enforce(conn, actor, check, subject, justification)
        now = iso(self.clock())
        try:
            if current is None:
                conn.execute(
                    model_aliases.insert().values(
                        model_id=m.id,
                        alias=a.value,
                        version_id=v.id,
                        revision=1,
                        set_by=actor.username,
                        set_at=now,
                    )
                )
                revision = 1
            else:
                revision = current.revision + 1
                n = conn.execute(
                    model_aliases.update()
                    .where(
                        model_aliases.c.model_id == m.id,
                        model_aliases.c.alias == a.value,
                        model_aliases.c.revision == current.revision,
                    )
                    .values(version_id=v.id, revision=revision, set_by=actor.username, set_at=now)
                ).rowcount
                if n != 1:
                    raise Conflict(
                        f"{a.value} of {name} changed concurrently",
                        remedy="re-read the model and decide again",
                    )
        except exc.IntegrityError as e:
            raise Conflict(
                f"{a.value} of {name} was assigned concurrently",
                remedy="re-read the model and decide again",
            ) from e
        role = self._acting_role(actor, lifecycle.ALIAS_ROLES[a], overridden)
        # A version holds one serving alias: promoting the challenger ends its challenge.
        for other in facts.aliases:
            if other != a and {other, a} <= lifecycle.SERVING_ALIASES:
                conn.execute(
                    model_aliases.delete().where(
                        model_aliases.c.model_id == m.id, model_aliases.c.alias == other.value
                    )
                )
                audit.append(
                    conn,
                    actor=actor,
                    role=role,
                    action=audit.ALIAS_REMOVED,
                    subject=subject,
                    payload={
                        "alias": other.value,
                        "version": version,
                        "reason": f"became {a.value}",
                    },
                    clock=self.clock,
                )
        new_stage = lifecycle.stage_after_alias(facts.stage, a)
        if new_stage != facts.stage:
            conn.execute(
                model_versions.update()
                .where(model_versions.c.id == v.id)
                .values(stage=new_stage.value)
            )
        audit.append(
            conn,
            actor=actor,
            role=role,
            action=audit.ALIAS_SET,
            subject=subject,
            payload={
                "alias": a.value,
                "version": version,
                "previous": holder,
                "revision": revision,
                "stage": new_stage.value,
                "artifact_sha256": v.artifact_sha256,
                "comment": comment,
                "override": overridden,
            },
            clock=self.clock,
        )
        return Alias(name, a, version, revision, actor.username, parse_iso(now))

    def remove_alias(
        self, actor: Actor, name: str, alias: str | AliasName, *, comment: str = ""
    ) -> None:
        a = parse_alias(alias)
        subject = audit.Subject("model", name, name)

        def body(conn: Connection) -> None:
            m = self._model_row(conn, name)
            roles = lifecycle.ALIAS_ROLES[a]
            if not any(actor.has(r) for r in roles):
                need = " or ".join(r.value for r in roles)
                raise PermissionDenied(f"{actor.username} may not remove {a.value}: needs {need}")
            cur = conn.execute(
                select(model_versions.c.version)
                .join(model_aliases, model_aliases.c.version_id == model_versions.c.id)
                .where(model_aliases.c.model_id == m.id, model_aliases.c.alias == a.value)
            ).first()
            if cur is None:
                raise NotFound(f"model {name!r} has no {a.value}", field="alias")
            conn.execute(
                model_aliases.delete().where(
                    model_aliases.c.model_id == m.id, model_aliases.c.alias == a.value
                )
            )
            audit.append(
                conn,
                actor=actor,
                role=self._acting_role(actor, roles, False),
                action=audit.ALIAS_REMOVED,
                subject=audit.Subject("version", f"{name}/{cur.version}", name),
                payload={"alias": a.value, "version": int(cur.version), "comment": comment},
                clock=self.clock,
            )

        self._guarded(actor, f"alias.remove.{a.value}", subject, body)

    def set_traffic(
        self, actor: Actor, name: str, *, challenger_share: float, salt: str | None = None
    ) -> dict[str, Any]:
        """Set the share of entities the challenger answers for (0 to 1), audited."""
        if isinstance(challenger_share, bool) or not isinstance(challenger_share, (int, float)):
            raise InvalidArgument("challenger_share must be a number", field="challenger_share")
        share = float(challenger_share)
        if not 0.0 <= share <= 1.0:
            raise InvalidArgument(
                f"challenger_share {share} is not between 0 and 1",
                field="challenger_share",
                remedy="pass a fraction, e.g. 0.1 for 10% of applicants",
            )
        subject = audit.Subject("model", name, name)
        roles = (Role.APPROVER, Role.SERVICE)

        def body(conn: Connection) -> dict[str, Any]:
            m = self._model_row(conn, name)
            if not any(actor.has(r) for r in roles):
                raise PermissionDenied(
                    f"{actor.username} may not change traffic: it needs the role approver"
                )
            cur = conn.execute(
                select(traffic_policies).where(traffic_policies.c.model_id == m.id)
            ).first()
            now = iso(self.clock())
            new_salt = salt if salt is not None else (cur.salt if cur is not None else name)
            values = {
                "challenger_share": share,
                "salt": new_salt,
                "updated_by": actor.username,
                "updated_at": now,
            }
            if cur is None:
                conn.execute(traffic_policies.insert().values(model_id=m.id, revision=1, **values))
                revision = 1
            else:
                revision = cur.revision + 1
                conn.execute(
                    traffic_policies.update()
                    .where(traffic_policies.c.model_id == m.id)
                    .values(revision=revision, **values)
                )
            payload = {
                "challenger_share": share,
                "previous_share": None if cur is None else cur.challenger_share,
                "salt_changed": cur is not None and new_salt != cur.salt,
                "revision": revision,
            }
            audit.append(
                conn,
                actor=actor,
                role=self._acting_role(actor, roles, False),
                action="traffic.set",
                subject=subject,
                payload=payload,
                clock=self.clock,
            )
            return payload

        return self._guarded(actor, "traffic.set", subject, body)

    # ------------------------------------------------------------------ canary rollouts
    def start_canary(
        self,
        actor: Actor,
        name: str,
        version: int,
        plan: Any,
        *,
        justification: str | None = None,
    ) -> dict[str, Any]:
        """Start a canary rollout of an approved version under ``plan`` (a CanaryPlan or its
        dict): it answers for the plan's first share of applicants from then on. The champion's
        rules apply (approved, passed gates, no open high finding, not its developer); an admin
        may override a refusal with a written ``justification``."""
        from charter.serving.routing import CanaryPlan, CanaryState

        p = plan if isinstance(plan, CanaryPlan) else CanaryPlan.from_dict(plan)
        subject = audit.Subject("version", f"{name}/{version}", name)

        def body(conn: Connection) -> dict[str, Any]:
            m = self._model_row(conn, name)
            v = self._version_row(conn, m, version)
            # A canary is a version put into service: the champion's rules apply.
            check = lifecycle.check_alias(self._facts(conn, v, name), actor, AliasName.CHAMPION)
            overridden = self._enforce(conn, actor, check, subject, justification)
            champion = self._champion_version(conn, m.id)
            if champion is None or champion == version:
                raise TransitionNotAllowed(
                    f"a canary needs a champion to compare with, other than version {version}",
                    remedy="promote a champion first; a canary tries a new version against it",
                )
            cur = conn.execute(
                select(traffic_policies).where(traffic_policies.c.model_id == m.id)
            ).first()
            if cur is not None and cur.canary_state is not None:
                running = jsonutil.loads(cur.canary_state).get("status") == "running"
                if running:
                    raise Conflict(
                        f"a canary of version {cur.canary_version} is already running",
                        remedy="wait for it to be promoted or rolled back",
                    )
            now = iso(self.clock())
            values = {
                "canary_version": version,
                "canary_share": p.steps[0],
                "canary_plan": jsonutil.dumps(p.to_dict()),
                "canary_state": jsonutil.dumps(CanaryState().to_dict()),
                "canary_window_start": now,
                "updated_by": actor.username,
                "updated_at": now,
            }
            if cur is None:
                conn.execute(
                    traffic_policies.insert().values(
                        model_id=m.id, challenger_share=0.0, salt=name, revision=1, **values
                    )
                )
            else:
                conn.execute(
                    traffic_policies.update()
                    .where(traffic_policies.c.model_id == m.id)
                    .values(revision=cur.revision + 1, **values)
                )
            payload = {
                "version": version,
                "champion": champion,
                "plan": p.to_dict(),
                "override": overridden,
            }
            audit.append(
                conn,
                actor=actor,
                role=self._acting_role(
                    actor, lifecycle.ALIAS_ROLES[AliasName.CHAMPION], overridden
                ),
                action="canary.started",
                subject=subject,
                payload=payload,
                clock=self.clock,
            )
            return payload

        return self._guarded(actor, "canary.start", subject, body)

    def canary(self, name: str) -> dict[str, Any] | None:
        """The model's canary rollout (version, share, plan, state, window start), if any."""
        with self.db.read() as conn:
            m = self._model_row(conn, name)
            r = conn.execute(
                select(traffic_policies).where(traffic_policies.c.model_id == m.id)
            ).first()
        if r is None or r.canary_plan is None:
            return None
        return {
            "version": r.canary_version,
            "share": r.canary_share,
            "plan": jsonutil.loads(r.canary_plan),
            "state": jsonutil.loads(r.canary_state),
            "window_start": r.canary_window_start,
        }

    def canary_step(
        self, name: str, observation: Any, *, window_end: datetime
    ) -> tuple[str, dict[str, Any]]:
        """Apply one guardrail observation (decisions since the last step) to the running canary,
        as the automation identity: hold, advance, promote (the canary becomes champion) or roll
        back. Every action but "hold" is an audit event."""
        from charter.identity import AUTOMATION_USER
        from charter.serving.routing import CanaryPlan, CanaryState, advance, share

        bot = self.identity.actor(AUTOMATION_USER)
        subject = audit.Subject("model", name, name)

        def body(conn: Connection) -> tuple[str, dict[str, Any]]:
            m = self._model_row(conn, name)
            r = conn.execute(
                select(traffic_policies).where(traffic_policies.c.model_id == m.id)
            ).first()
            if r is None or r.canary_plan is None:
                raise NotFound(f"model {name!r} has no canary", field="name")
            plan = CanaryPlan.from_dict(jsonutil.loads(r.canary_plan))
            state = CanaryState.from_dict(jsonutil.loads(r.canary_state))
            new, action = advance(plan, state, observation)
            if action in ("none", "gather"):  # nothing consumed: the window keeps its start
                return action, new.to_dict()
            values: dict[str, Any] = {
                "canary_state": jsonutil.dumps(new.to_dict()),
                "canary_share": share(plan, new) if action != "promote" else 0.0,
                "canary_window_start": iso(window_end),
            }
            if action != "hold":
                values.update(revision=r.revision + 1, updated_by=bot.username,
                              updated_at=iso(self.clock()))  # fmt: skip
            conn.execute(
                traffic_policies.update()
                .where(traffic_policies.c.model_id == m.id)
                .values(**values)
            )
            if action == "promote":
                self._promote_canary(conn, bot, m, int(r.canary_version))
            if action != "hold":
                audit.append(
                    conn,
                    actor=bot,
                    role=Role.SERVICE.value,
                    action=CANARY_EVENTS[action],
                    subject=audit.Subject("version", f"{name}/{r.canary_version}", name),
                    payload={
                        "version": r.canary_version,
                        "from_share": r.canary_share,
                        "to_share": values["canary_share"],
                        "reason": new.reason,
                        "observation": observation.to_dict(),
                    },
                    clock=self.clock,
                )
            return action, new.to_dict()

        return self._guarded(bot, "canary.step", subject, body)

    def _promote_canary(self, conn: Connection, bot: Actor, m: Row[Any], version: int) -> None:
        """Inside the canary step's transaction: the canary version becomes the champion."""
        self._set_alias_in_tx(
            conn,
            bot,
            m,
            version,
            AliasName.CHAMPION,
            comment="canary promoted: every guardrail held at every step",
        )

    def alias_holder_at(self, name: str, alias: str | AliasName, at: datetime) -> int | None:
        """Which version held ``alias`` at time ``at``, from the audit trail."""
        a = parse_alias(alias)
        if at.tzinfo is None:
            raise InvalidArgument("the time must carry a timezone", field="at", remedy="use UTC")
        with self.db.read() as conn:
            self._model_row(conn, name)
            return audit.alias_holder_at(conn, name, a.value, at)

    # ------------------------------------------------------------------ documents
    def record_report(
        self,
        actor: Actor,
        kind: str,
        *,
        model_name: str | None,
        version: int | None,
        document_sha256: str,
        audit_head_seq: int,
        files: Sequence[str] = (),
    ) -> AuditEvent:
        """Record that a document (model card, validation report, MRM pack) was produced from
        the chain up to ``audit_head_seq``: who, which document, and its sha256."""
        if not actor.roles:
            raise PermissionDenied(
                f"{actor.username} has no role; producing a governance document needs one",
                remedy="ask an admin for a role (auditor, validator, approver, ...)",
            )
        if model_name is not None:
            self.get_model(model_name)
        ident = f"{kind}/{model_name or 'all'}" + (f"/{version}" if version is not None else "")
        subject = audit.Subject("report", ident, model_name)

        def body(conn: Connection) -> AuditEvent:
            return audit.append(
                conn,
                actor=actor,
                role=",".join(sorted(r.value for r in actor.roles)),
                action="report.generated",
                subject=subject,
                payload={
                    "kind": kind,
                    "model": model_name,
                    "version": version,
                    "document_sha256": document_sha256,
                    "audit_head_seq": audit_head_seq,
                    "files": list(files),
                },
                clock=self.clock,
            )

        return self._guarded(actor, "report.generate", subject, body)

    # ------------------------------------------------------------------ audit
    def audit_log(self, **filters: Any) -> list[AuditEvent]:
        with self.db.read() as conn:
            return audit.query(conn, **filters)

    def verify_audit(self, checkpoint: Checkpoint | None = None) -> VerifyResult:
        with self.db.read() as conn:
            return audit.verify(conn, checkpoint)

    def audit_checkpoint(self) -> Checkpoint | None:
        with self.db.read() as conn:
            return audit.head(conn)


def _metrics(metrics: dict[str, Any]) -> dict[str, float]:
    if not isinstance(metrics, dict):
        raise InvalidArgument("metrics must be a mapping of name to number", field="metrics")
    out = {}
    for k, v in metrics.items():
        try:
            out[str(k)] = float(v)
        except (TypeError, ValueError):
            raise InvalidArgument(
                f"metric {k!r} is not a number: {v!r}", field=f"metrics.{k}"
            ) from None
    return out
