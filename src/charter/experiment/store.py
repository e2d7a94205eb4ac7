"""Experiments in the registry: pre-registration and recorded decisions, each audited.

::

    developer/approver --register_experiment--> experiment (running), plan fixed for good
    developer/validator/approver/service --record_experiment_decision-->
        continue (stays running) | promote | keep | stop (decided: no more decisions)

Every change is one transaction with its audit event, through ``Registry._guarded`` (a refusal
for a missing role or a decided experiment is itself audited as ``denied``). Audit actions:
``experiment.registered`` (payload: the plan and its SHA-256) and ``experiment.decided``
(payload: the decision, the date to continue until, the evidence's SHA-256 and the plan's).

There is no update path for a plan: the analysis judges the data by the plan registered before
it, and a changed plan is a new experiment. Recording a decision does not move any alias:
``charter promote`` (an approver) puts a promoted challenger into service.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, select

from charter import audit
from charter.clock import iso, parse_iso
from charter.entities import Actor, Role
from charter.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
)
from charter.experiment.design import ExperimentPlan, plan_sha256
from charter.registry.service import validate_model_name
from charter.storage import jsonutil
from charter.storage.db import inserted_id
from charter.storage.schema import experiment_decisions, experiments, models

if TYPE_CHECKING:
    from charter.experiment.analysis import ExperimentDecision
    from charter.registry.service import Registry

REGISTER_ROLES = (Role.DEVELOPER, Role.APPROVER)
DECIDE_ROLES = (Role.DEVELOPER, Role.VALIDATOR, Role.APPROVER, Role.SERVICE)
DECISIONS = ("promote", "keep", "stop", "continue")
FINAL_DECISIONS = ("promote", "keep", "stop")


@dataclass(frozen=True, slots=True)
class Experiment:
    """A registered experiment: the champion and challenger versions of one model and the plan
    that will judge them."""

    id: int
    model_name: str
    name: str
    kind: str
    champion_version: int
    challenger_version: int
    plan: ExperimentPlan
    plan_sha256: str
    status: str
    created_by: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model_name,
            "name": self.name,
            "kind": self.kind,
            "champion_version": self.champion_version,
            "challenger_version": self.challenger_version,
            "plan": self.plan.to_dict(),
            "plan_sha256": self.plan_sha256,
            "status": self.status,
            "created_by": self.created_by,
            "created_at": iso(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class ExperimentDecisionRecord:
    """One recorded analysis of an experiment and its evidence (as stored, with its hash)."""

    id: int
    experiment_id: int
    experiment: str
    decision: str
    decided_until: date | None
    evidence: dict[str, Any]
    evidence_sha256: str
    decided_by: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "experiment_id": self.experiment_id,
            "experiment": self.experiment,
            "decision": self.decision,
            "decided_until": None if self.decided_until is None else self.decided_until.isoformat(),
            "evidence": self.evidence,
            "evidence_sha256": self.evidence_sha256,
            "decided_by": self.decided_by,
            "created_at": iso(self.created_at),
        }


def _experiment(r: Row[Any], model_name: str) -> Experiment:
    plan = ExperimentPlan.from_dict(jsonutil.loads(r.plan))
    return Experiment(
        id=int(r.id),
        model_name=model_name,
        name=r.name,
        kind=r.kind,
        champion_version=int(r.champion_version),
        challenger_version=int(r.challenger_version),
        plan=plan,
        plan_sha256=hashlib.sha256(r.plan.encode("utf-8")).hexdigest(),
        status=r.status,
        created_by=r.created_by,
        created_at=parse_iso(r.created_at),
    )


def _record(r: Row[Any], experiment_name: str) -> ExperimentDecisionRecord:
    return ExperimentDecisionRecord(
        id=int(r.id),
        experiment_id=int(r.experiment_id),
        experiment=experiment_name,
        decision=r.decision,
        decided_until=None if r.decided_until is None else date.fromisoformat(r.decided_until),
        evidence=jsonutil.loads(r.evidence),
        evidence_sha256=r.evidence_sha256,
        decided_by=r.decided_by,
        created_at=parse_iso(r.created_at),
    )


def _role(actor: Actor, roles: tuple[Role, ...], doing: str) -> str:
    for r in roles:
        if actor.has(r):
            return r.value
    need = ", ".join(r.value for r in roles)
    raise PermissionDenied(
        f"{actor.username} may not {doing}: it needs one of the roles {need}",
        remedy="ask an admin for one of those roles, or have someone who holds one do it",
    )


def register_experiment(
    reg: Registry,
    actor: Actor,
    name: str,
    *,
    model: str,
    challenger_version: int,
    plan: ExperimentPlan,
    champion_version: int | None = None,
) -> Experiment:
    """Register an experiment of ``challenger_version`` against ``champion_version`` (default:
    the model's champion now) under ``plan`` (see ``design.build_plan``; its ``kind`` is the
    experiment's). Developers and approvers; audited ``experiment.registered`` with the plan."""
    validate_model_name(name, "name")
    if not isinstance(plan, ExperimentPlan):
        raise InvalidArgument(
            "plan must be an ExperimentPlan",
            field="plan",
            remedy="build it with charter.experiment.design.build_plan(...)",
        )
    plan_text = jsonutil.dumps(plan.to_dict())
    sha = plan_sha256(plan)
    subject = audit.Subject("experiment", name, model)

    def body(conn: Connection) -> Experiment:
        m = reg._model_row(conn, model)
        role = _role(actor, REGISTER_ROLES, "register experiments")
        champion = champion_version
        if champion is None:
            champion = reg._champion_version(conn, m.id)
            if champion is None:
                raise TransitionNotAllowed(
                    f"model {model!r} has no champion to compare the challenger with",
                    remedy="promote a champion first, or pass champion_version",
                )
        reg._version_row(conn, m, champion)
        reg._version_row(conn, m, challenger_version)
        if champion == challenger_version:
            raise InvalidArgument(
                f"the challenger is the champion (version {champion})",
                field="challenger_version",
                remedy="compare two different versions",
            )
        if conn.execute(select(experiments.c.id).where(experiments.c.name == name)).first():
            raise AlreadyExists(
                f"an experiment named {name!r} exists already",
                field="name",
                remedy="choose another name: a changed plan is a new experiment",
            )
        now = iso(reg.clock())
        eid = inserted_id(
            conn.execute(
                experiments.insert().values(
                    model_id=m.id,
                    name=name,
                    kind=plan.kind,
                    champion_version=champion,
                    challenger_version=challenger_version,
                    plan=plan_text,
                    status="running",
                    created_by=actor.username,
                    created_at=now,
                )
            )
        )
        audit.append(
            conn,
            actor=actor,
            role=role,
            action="experiment.registered",
            subject=subject,
            payload={
                "experiment_id": eid,
                "kind": plan.kind,
                "champion_version": champion,
                "challenger_version": challenger_version,
                "plan": plan.to_dict(),
                "plan_sha256": sha,
            },
            clock=reg.clock,
        )
        row = conn.execute(select(experiments).where(experiments.c.id == eid)).one()
        return _experiment(row, model)

    return reg._guarded(actor, "experiment.register", subject, body)


def _experiment_row(conn: Connection, *, name: str | None = None, id: int | None = None) -> Any:
    q = select(experiments, models.c.name.label("model_name")).join(
        models, models.c.id == experiments.c.model_id
    )
    q = q.where(experiments.c.name == name) if name is not None else q.where(experiments.c.id == id)
    r = conn.execute(q).first()
    if r is None:
        what = f"named {name!r}" if name is not None else f"with id {id}"
        raise NotFound(
            f"no experiment {what}",
            field="name" if name is not None else "experiment_id",
            remedy="list experiments with `charter experiment list`",
        )
    return r


def get_experiment(reg: Registry, name: str) -> Experiment:
    with reg.db.read() as conn:
        r = _experiment_row(conn, name=name)
    return _experiment(r, r.model_name)


def list_experiments(reg: Registry, model: str | None = None) -> list[Experiment]:
    """Experiments (of one model, or all), oldest first."""
    q = select(experiments, models.c.name.label("model_name")).join(
        models, models.c.id == experiments.c.model_id
    )
    with reg.db.read() as conn:
        if model is not None:
            m = reg._model_row(conn, model)
            q = q.where(experiments.c.model_id == m.id)
        rows = conn.execute(q.order_by(experiments.c.id)).all()
    return [_experiment(r, r.model_name) for r in rows]


def list_experiment_decisions(reg: Registry, experiment_id: int) -> list[ExperimentDecisionRecord]:
    """An experiment's recorded decisions, oldest first."""
    with reg.db.read() as conn:
        e = _experiment_row(conn, id=experiment_id)
        rows = conn.execute(
            select(experiment_decisions)
            .where(experiment_decisions.c.experiment_id == experiment_id)
            .order_by(experiment_decisions.c.id)
        ).all()
    return [_record(r, e.name) for r in rows]


def record_experiment_decision(
    reg: Registry, actor: Actor, experiment_id: int, decision: ExperimentDecision
) -> ExperimentDecisionRecord:
    """Record an analysis's decision with its evidence (``decision.to_dict()``) as canonical JSON
    and its SHA-256; audited ``experiment.decided``. The evidence must have been computed under
    this experiment's registered plan. A final decision (promote, keep, stop) closes the
    experiment: nothing more is recorded on it."""
    evidence = decision.to_dict()
    verdict = decision.decision
    if verdict not in DECISIONS:
        raise InvalidArgument(
            f"unknown decision {verdict!r}",
            field="decision",
            remedy=f"use one of: {', '.join(DECISIONS)}",
        )
    until = decision.continue_until
    if (verdict == "continue") != (until is not None):
        raise InvalidArgument(
            "a continue decision, and only one, carries the date to continue until",
            field="decision.continue_until",
            remedy="pass the analysis's ExperimentDecision unchanged",
        )
    evidence_text = jsonutil.dumps(evidence)
    evidence_sha = hashlib.sha256(evidence_text.encode("utf-8")).hexdigest()
    with reg.db.read() as conn:
        found = _experiment_row(conn, id=experiment_id)
    subject = audit.Subject("experiment", found.name, found.model_name)

    def body(conn: Connection) -> ExperimentDecisionRecord:
        e = _experiment_row(conn, id=experiment_id)
        role = _role(actor, DECIDE_ROLES, "record experiment decisions")
        plan_sha = hashlib.sha256(e.plan.encode("utf-8")).hexdigest()
        if decision.experiment != e.name or decision.plan_sha256 != plan_sha:
            raise InvalidArgument(
                f"the decision is not an analysis of experiment {e.name!r} under its registered "
                "plan",
                field="decision",
                remedy=f"analyse {e.name!r} again and record that decision",
            )
        if e.status != "running":
            raise TransitionNotAllowed(
                f"experiment {e.name!r} is {e.status} already; nothing more is recorded on it",
                remedy="register a new experiment to test again",
            )
        now = iso(reg.clock())
        did = inserted_id(
            conn.execute(
                experiment_decisions.insert().values(
                    experiment_id=e.id,
                    decision=verdict,
                    decided_until=None if until is None else until.isoformat(),
                    evidence=evidence_text,
                    evidence_sha256=evidence_sha,
                    decided_by=actor.username,
                    created_at=now,
                )
            )
        )
        if verdict in FINAL_DECISIONS:
            conn.execute(
                experiments.update().where(experiments.c.id == e.id).values(status="decided")
            )
        audit.append(
            conn,
            actor=actor,
            role=role,
            action="experiment.decided",
            subject=subject,
            payload={
                "experiment_id": e.id,
                "decision_id": did,
                "decision": verdict,
                "decided_until": None if until is None else until.isoformat(),
                "reasons": list(decision.reasons),
                "evidence_sha256": evidence_sha,
                "plan_sha256": plan_sha,
            },
            clock=reg.clock,
        )
        row = conn.execute(
            select(experiment_decisions).where(experiment_decisions.c.id == did)
        ).one()
        return _record(row, e.name)

    return reg._guarded(actor, "experiment.decide", subject, body)


__all__ = [
    "DECIDE_ROLES",
    "DECISIONS",
    "FINAL_DECISIONS",
    "REGISTER_ROLES",
    "Experiment",
    "ExperimentDecisionRecord",
    "get_experiment",
    "list_experiment_decisions",
    "list_experiments",
    "plan_sha256",
    "record_experiment_decision",
    "register_experiment",
]
