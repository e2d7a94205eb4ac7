"""The validation and approval workflow (the registry's rules for it; ``Registry`` delegates here).

::

    developer/validator/service --record_gate_run--> gate run (evidence bound to the artifact)
    validator --record_validation--> recommendation: approve | approve_with_conditions | reject
    validator --raise_finding--> finding: open --remediate (owner's side)--> remediated
                                           --close (an independent validator)--> closed
    approver --decide--> approved | approved_with_conditions (validation -> approved)
                         | rejected (validation -> development)

Putting a version into service (champion, challenger, a canary) also needs its newest gate run to
have passed and no high-severity finding on it or its model to be open or remediated-but-not-
closed (``lifecycle.deployment_guard``, fed by :func:`latest_gate_run_fact` and
:func:`open_high_finding_ids` in the deciding transaction).

Every change is one transaction with its audit event (through ``Registry._guarded``); a refusal
(role, segregation of duties, a guard) is itself audited as ``denied``. Audit actions:
``validation.gates_run``, ``version.validated``, ``finding.raised``, ``finding.remediated``,
``finding.closed``, ``finding.reopened``, ``version.approval_decided`` and
``model.narrative_set``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, select

from charter import audit
from charter.checks import check_enum, check_text
from charter.clock import iso, parse_iso
from charter.entities import (
    NARRATIVE_SECTIONS,
    VALIDATION_SECTIONS,
    Actor,
    Approval,
    ApprovalDecision,
    Finding,
    FindingStatus,
    GateRun,
    ModelNarrative,
    Recommendation,
    Role,
    Severity,
    Stage,
    ValidationRecord,
)
from charter.errors import InvalidArgument, NotFound
from charter.registry import lifecycle
from charter.registry.lifecycle import Check, GateRunFact
from charter.storage import jsonutil
from charter.storage.db import inserted_id
from charter.storage.schema import (
    approvals,
    findings,
    gate_runs,
    model_narratives,
    model_versions,
    models,
    validations,
)

if TYPE_CHECKING:
    from charter.registry.service import Registry

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
GATE_RUN_ROLES = (Role.DEVELOPER, Role.VALIDATOR, Role.SERVICE)
NARRATIVE_ROLES = (Role.DEVELOPER, Role.APPROVER)
OPEN_STATUSES = (FindingStatus.OPEN.value, FindingStatus.REMEDIATED.value)


# ---------------------------------------------------------------------------------- arguments
def _texts(value: Iterable[str] | None, field: str, example: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        raise InvalidArgument(
            f"{field} must be a list of text, not one string",
            field=field,
            remedy=f"pass e.g. [{example!r}]",
        )
    return [check_text(v, field, example, 1000) for v in value]


def _sha256(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _SHA256.match(value):
        raise InvalidArgument(
            f"{field} is not a SHA-256 (64 lower-case hex digits): {value!r}",
            field=field,
            remedy="pass hashlib.sha256(data).hexdigest()",
        )
    return value


def parse_recommendation(value: str | Recommendation) -> Recommendation:
    return check_enum(Recommendation, value, "recommendation")


def parse_decision(value: str | ApprovalDecision) -> ApprovalDecision:
    """``approved``, ``approved_with_conditions`` or ``rejected`` (or approve, reject, ...)."""
    aliases = {
        "approve": "approved",
        "approve_with_conditions": "approved_with_conditions",
        "reject": "rejected",
    }
    return check_enum(ApprovalDecision, value, "decision", aliases=aliases)


def parse_severity(value: str | Severity) -> Severity:
    return check_enum(Severity, value, "severity")


def parse_status(value: str | FindingStatus) -> FindingStatus:
    return check_enum(FindingStatus, value, "status")


def _sections(
    value: Mapping[str, Any] | None, allowed: tuple[str, ...], field: str
) -> dict[str, str]:
    """Known section names to text; None or blank text clears a section (it is left out)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(
            f"{field} must be a mapping of section name to text",
            field=field,
            remedy=f"use the keys: {', '.join(allowed)}",
        )
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise InvalidArgument(
            f"unknown {field} {', '.join(repr(k) for k in unknown)}",
            field=field,
            remedy=f"use only these keys: {', '.join(allowed)}",
        )
    out: dict[str, str] = {}
    for k, v in value.items():
        if v is None:
            continue
        if not isinstance(v, str):
            raise InvalidArgument(
                f"{field}.{k} must be text, not {type(v).__name__}",
                field=f"{field}.{k}",
                remedy="write the section as a string",
            )
        if len(v) > 20_000:
            raise InvalidArgument(
                f"{field}.{k} is longer than 20000 characters",
                field=f"{field}.{k}",
                remedy="shorten it, or link to the full document",
            )
        if v.strip():
            out[str(k)] = v.strip()
    return out


def _role_check(actor: Actor, roles: tuple[Role, ...], action: str, doing: str) -> Check:
    if any(actor.has(r) for r in roles):
        return Check(action=action)
    need = " or ".join(r.value for r in roles)
    return Check(
        action=action, role=(f"{actor.username} may not {doing}: it needs the role {need}",)
    )


# ---------------------------------------------------------------------------------- facts
def latest_gate_run_fact(conn: Connection, v: Row[Any]) -> GateRunFact | None:
    """The newest gate run of the version's current artifact (None: the gates never ran)."""
    r = conn.execute(
        select(gate_runs.c.id, gate_runs.c.passed, gate_runs.c.failed_gates)
        .where(gate_runs.c.version_id == v.id, gate_runs.c.artifact_sha256 == v.artifact_sha256)
        .order_by(gate_runs.c.id.desc())
        .limit(1)
    ).first()
    if r is None:
        return None
    return GateRunFact(int(r.id), bool(r.passed), tuple(jsonutil.loads(r.failed_gates)))


def open_high_finding_ids(conn: Connection, model_id: int, version_id: int) -> tuple[int, ...]:
    """High-severity findings not closed, on this version or on the model as a whole."""
    rows = conn.execute(
        select(findings.c.id)
        .where(
            findings.c.model_id == model_id,
            (findings.c.version_id == version_id) | findings.c.version_id.is_(None),
            findings.c.severity == Severity.HIGH.value,
            findings.c.status.in_(OPEN_STATUSES),
        )
        .order_by(findings.c.id)
    )
    return tuple(int(r.id) for r in rows)


# ---------------------------------------------------------------------------------- rows
def _gate_run(r: Row[Any], model_name: str, version: int) -> GateRun:
    return GateRun(
        id=r.id,
        model_name=model_name,
        version=version,
        run_by=r.run_by,
        policy_name=r.policy_name,
        policy_sha256=r.policy_sha256,
        policy_text=r.policy_text,
        artifact_sha256=r.artifact_sha256,
        training_data_hash=r.training_data_hash,
        datasets=jsonutil.loads(r.datasets),
        passed=bool(r.passed),
        failed_gates=tuple(jsonutil.loads(r.failed_gates)),
        report=jsonutil.loads(r.report),
        report_sha256=r.report_sha256,
        created_at=parse_iso(r.created_at),
    )


def validation_record(r: Row[Any], model_name: str, version: int) -> ValidationRecord:
    return ValidationRecord(
        id=r.id,
        model_name=model_name,
        version=version,
        validator=r.validator,
        outcome=r.outcome,
        summary=r.summary,
        artifact_sha256=r.artifact_sha256,
        created_at=parse_iso(r.created_at),
        recommendation=r.recommendation,
        conditions=tuple(jsonutil.loads(r.conditions)),
        sections=jsonutil.loads(r.sections),
        gate_run_id=r.gate_run_id,
    )


def _finding_query() -> Any:
    return (
        select(
            findings,
            models.c.name.label("model_name"),
            model_versions.c.version.label("version_number"),
        )
        .join(models, models.c.id == findings.c.model_id)
        .outerjoin(model_versions, model_versions.c.id == findings.c.version_id)
    )


def _finding(r: Row[Any], today: date) -> Finding:
    due = date.fromisoformat(r.due_date)
    status = FindingStatus(r.status)
    return Finding(
        id=r.id,
        model_name=r.model_name,
        version=r.version_number,
        severity=Severity(r.severity),
        title=r.title,
        description=r.description,
        remediation_owner=r.remediation_owner,
        due_date=due,
        status=status,
        raised_by=r.raised_by,
        raised_at=parse_iso(r.raised_at),
        updated_by=r.updated_by,
        updated_at=parse_iso(r.updated_at),
        resolution=r.resolution,
        remediated_by=r.remediated_by,
        closure_note=r.closure_note,
        overdue=status is not FindingStatus.CLOSED and due < today,
    )


def _approval(r: Row[Any], model_name: str, version: int) -> Approval:
    return Approval(
        id=r.id,
        model_name=model_name,
        version=version,
        approver=r.approver,
        decision=ApprovalDecision(r.decision),
        conditions=tuple(jsonutil.loads(r.conditions)),
        comment=r.comment,
        artifact_sha256=r.artifact_sha256,
        created_at=parse_iso(r.created_at),
    )


# ---------------------------------------------------------------------------------- gate runs
def record_gate_run(
    reg: Registry,
    actor: Actor,
    name: str,
    version: int,
    *,
    policy_name: str,
    policy_sha256: str,
    policy_text: str,
    datasets: Mapping[str, Mapping[str, Any]],
    passed: bool,
    failed_gates: Iterable[str],
    report: Mapping[str, Any],
) -> GateRun:
    pname = check_text(policy_name, "policy_name", "retail-pd-2026", 200)
    psha = _sha256(policy_sha256, "policy_sha256")
    if not isinstance(policy_text, str) or not policy_text.strip():
        raise InvalidArgument(
            "policy_text is required", field="policy_text", remedy="pass the policy file's text"
        )
    if hashlib.sha256(policy_text.encode("utf-8")).hexdigest() != psha:
        raise InvalidArgument(
            "policy_sha256 is not the SHA-256 of policy_text",
            field="policy_sha256",
            remedy="pass hashlib.sha256(policy_text.encode('utf-8')).hexdigest()",
        )
    if not isinstance(passed, bool):
        raise InvalidArgument(
            "passed must be True or False", field="passed", remedy="pass the run's verdict"
        )
    failed = _texts(failed_gates, "failed_gates", "performance")
    if passed and failed:
        raise InvalidArgument(
            f"a passed gate run cannot have failed gates ({', '.join(failed)})",
            field="failed_gates",
            remedy="pass passed=False, or leave failed_gates empty",
        )
    if not passed and not failed:
        raise InvalidArgument(
            "a failed gate run must name the gates that failed",
            field="failed_gates",
            remedy="pass e.g. failed_gates=['performance']",
        )
    if not isinstance(datasets, Mapping):
        raise InvalidArgument(
            "datasets must map a name to {sha256, rows}",
            field="datasets",
            remedy="pass e.g. {'holdout': {'sha256': '…', 'rows': 300}}",
        )
    ds: dict[str, dict[str, Any]] = {}
    for dname, d in datasets.items():
        f = f"datasets.{dname}"
        if not isinstance(d, Mapping):
            raise InvalidArgument(
                f"{f} must be {{sha256, rows}}", field=f, remedy="e.g. {'sha256': '…', 'rows': 300}"
            )
        rows = d.get("rows")
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            raise InvalidArgument(
                f"{f}.rows must be a whole number of rows, not {rows!r}",
                field=f"{f}.rows",
                remedy="pass len(frame) of the data set the gates ran on",
            )
        ds[str(dname)] = {"sha256": _sha256(d.get("sha256"), f"{f}.sha256"), "rows": rows}
    if not isinstance(report, Mapping):
        raise InvalidArgument(
            "report must be a mapping (the gate report's JSON)",
            field="report",
            remedy="pass the report as a dict",
        )
    if isinstance(report.get("passed"), bool) and report["passed"] is not passed:
        raise InvalidArgument(
            f"the report says passed={report['passed']} but passed={passed} was given",
            field="passed",
            remedy="record what the report says",
        )
    report_text = jsonutil.dumps(dict(report))
    report_sha = hashlib.sha256(report_text.encode("utf-8")).hexdigest()
    subject = audit.Subject("version", f"{name}/{version}", name)

    def body(conn: Connection) -> GateRun:
        m = reg._model_row(conn, name)
        v = reg._version_row(conn, m, version)
        check = _role_check(actor, GATE_RUN_ROLES, "gates_run", "record a gate run")
        if v.stage == Stage.RETIRED.value:
            check = replace(
                check, guard=(f"{name} v{version} is retired; its gates are not run any more",)
            )
        reg._enforce(conn, actor, check, subject, None)
        td = jsonutil.loads(v.training_data)
        td_hash = td.get("content_hash") if td else None
        now = iso(reg.clock())
        rid = inserted_id(
            conn.execute(
                gate_runs.insert().values(
                    version_id=v.id,
                    run_by=actor.username,
                    policy_name=pname,
                    policy_sha256=psha,
                    policy_text=policy_text,
                    artifact_sha256=v.artifact_sha256,
                    training_data_hash=td_hash,
                    datasets=jsonutil.dumps(ds),
                    passed=passed,
                    failed_gates=jsonutil.dumps(failed),
                    report=report_text,
                    report_sha256=report_sha,
                    created_at=now,
                )
            )
        )
        audit.append(
            conn,
            actor=actor,
            role=reg._acting_role(actor, GATE_RUN_ROLES, False),
            action="validation.gates_run",
            subject=subject,
            payload={
                "version": version,
                "gate_run_id": rid,
                "report_sha256": report_sha,
                "passed": passed,
                "failed_gates": failed,
                "policy_name": pname,
                "policy_sha256": psha,
                "artifact_sha256": v.artifact_sha256,
                "training_data_hash": td_hash,
                "datasets": ds,
            },
            clock=reg.clock,
        )
        row = conn.execute(select(gate_runs).where(gate_runs.c.id == rid)).one()
        return _gate_run(row, name, version)

    return reg._guarded(actor, "validation.gates_run", subject, body)


def list_gate_runs(reg: Registry, name: str, version: int) -> list[GateRun]:
    with reg.db.read() as conn:
        m = reg._model_row(conn, name)
        v = reg._version_row(conn, m, version)
        rows = conn.execute(
            select(gate_runs).where(gate_runs.c.version_id == v.id).order_by(gate_runs.c.id)
        ).all()
    return [_gate_run(r, name, version) for r in rows]


def get_gate_run(reg: Registry, gate_run_id: int) -> GateRun:
    with reg.db.read() as conn:
        r = conn.execute(
            select(gate_runs, models.c.name.label("model_name"), model_versions.c.version)
            .join(model_versions, model_versions.c.id == gate_runs.c.version_id)
            .join(models, models.c.id == model_versions.c.model_id)
            .where(gate_runs.c.id == gate_run_id)
        ).first()
    if r is None:
        raise NotFound(
            f"no gate run #{gate_run_id}",
            field="gate_run_id",
            remedy="list a version's gate runs with Registry.list_gate_runs(name, version)",
        )
    return _gate_run(r, r.model_name, int(r.version))


# ---------------------------------------------------------------------------------- validation
def record_validation(
    reg: Registry,
    actor: Actor,
    name: str,
    version: int,
    *,
    recommendation: str | Recommendation | None,
    outcome: str | None,
    summary: str,
    conditions: Iterable[str],
    sections: Mapping[str, Any] | None,
    gate_run_id: int | None,
    justification: str | None,
) -> ValidationRecord:
    if outcome is not None and outcome not in ("pass", "fail"):
        raise InvalidArgument(
            f"validation outcome {outcome!r} is not pass or fail",
            field="outcome",
            remedy="use pass or fail, or give a recommendation instead",
        )
    if recommendation is None:
        if outcome is None:
            raise InvalidArgument(
                "a validation needs a recommendation",
                field="recommendation",
                remedy="use approve, approve_with_conditions or reject",
            )
        rec = Recommendation.APPROVE if outcome == "pass" else Recommendation.REJECT
    else:
        rec = parse_recommendation(recommendation)
    result = "fail" if rec is Recommendation.REJECT else "pass"
    if outcome is not None and outcome != result:
        raise InvalidArgument(
            f"outcome {outcome!r} contradicts the recommendation {rec.value!r}",
            field="outcome",
            remedy="give only the recommendation",
        )
    conds = _texts(conditions, "conditions", "Recalibrate within 6 months")
    if rec is Recommendation.APPROVE_WITH_CONDITIONS and not conds:
        raise InvalidArgument(
            "approve_with_conditions needs at least one condition",
            field="conditions",
            remedy="name the conditions, or recommend approve",
        )
    if rec is not Recommendation.APPROVE_WITH_CONDITIONS and conds:
        raise InvalidArgument(
            f"a recommendation to {rec.value} carries no conditions",
            field="conditions",
            remedy="recommend approve_with_conditions, or raise findings for what must be fixed",
        )
    secs = _sections(sections, VALIDATION_SECTIONS, "sections")
    text = check_text(summary, "summary", "Gates passed: AUC 0.78 on holdout; no findings")
    if gate_run_id is not None and (
        isinstance(gate_run_id, bool) or not isinstance(gate_run_id, int)
    ):
        raise InvalidArgument(
            "gate_run_id must be a gate run's number",
            field="gate_run_id",
            remedy="pass GateRun.id from record_gate_run or list_gate_runs",
        )
    subject = audit.Subject("version", f"{name}/{version}", name)

    def body(conn: Connection) -> ValidationRecord:
        m = reg._model_row(conn, name)
        v = reg._version_row(conn, m, version)
        if gate_run_id is not None:
            g = conn.execute(
                select(gate_runs.c.version_id, gate_runs.c.artifact_sha256).where(
                    gate_runs.c.id == gate_run_id
                )
            ).first()
            if g is None or g.version_id != v.id or g.artifact_sha256 != v.artifact_sha256:
                raise InvalidArgument(
                    f"gate run #{gate_run_id} is not a gate run of {name} v{version}",
                    field="gate_run_id",
                    remedy=f"pick one of Registry.list_gate_runs({name!r}, {version})",
                )
        check = lifecycle.check_validation(reg._facts(conn, v, name), actor)
        overridden = reg._enforce(conn, actor, check, subject, justification)
        now = iso(reg.clock())
        rid = inserted_id(
            conn.execute(
                validations.insert().values(
                    version_id=v.id,
                    validator=actor.username,
                    outcome=result,
                    summary=text,
                    artifact_sha256=v.artifact_sha256,
                    created_at=now,
                    recommendation=rec.value,
                    conditions=jsonutil.dumps(conds),
                    sections=jsonutil.dumps(secs),
                    gate_run_id=gate_run_id,
                )
            )
        )
        audit.append(
            conn,
            actor=actor,
            role=reg._acting_role(actor, (Role.VALIDATOR,), overridden),
            action="version.validated",
            subject=subject,
            payload={
                "version": version,
                "outcome": result,
                "recommendation": rec.value,
                "conditions": conds,
                "summary": text,
                "sections": secs,
                "gate_run_id": gate_run_id,
                "artifact_sha256": v.artifact_sha256,
                "validation_id": rid,
                "override": overridden,
            },
            clock=reg.clock,
        )
        row = conn.execute(select(validations).where(validations.c.id == rid)).one()
        return validation_record(row, name, version)

    return reg._guarded(actor, "version.validate", subject, body)


# ---------------------------------------------------------------------------------- findings
def _finding_row(conn: Connection, finding_id: int) -> Row[Any]:
    if isinstance(finding_id, bool) or not isinstance(finding_id, int) or finding_id < 1:
        raise InvalidArgument(
            f"a finding is named by its number, not {finding_id!r}",
            field="finding_id",
            remedy="see `charter findings list`",
        )
    r = conn.execute(_finding_query().where(findings.c.id == finding_id)).first()
    if r is None:
        raise NotFound(
            f"no finding #{finding_id}", field="finding_id", remedy="see `charter findings list`"
        )
    return r


def _version_author(conn: Connection, version_id: int | None) -> str | None:
    if version_id is None:
        return None
    return conn.execute(
        select(model_versions.c.author).where(model_versions.c.id == version_id)
    ).scalar()


def _independence(actor: Actor, author: str | None, doing: str) -> tuple[str, ...]:
    if author is not None and actor.username == author:
        return (
            f"{actor.username} developed this version and so may not {doing} "
            "(segregation of duties)",
        )
    return ()


def raise_finding(
    reg: Registry,
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
    sev = parse_severity(severity)
    ttl = check_text(title, "title", "Unstable coefficients across vintages", 200)
    desc = check_text(description, "description", "What was found, and why it matters", 10_000)
    owner = check_text(remediation_owner, "remediation_owner", "dana", 200)
    due = _date(due_date, "due_date")
    if due < reg.clock().date():
        raise InvalidArgument(
            f"due date {due.isoformat()} is in the past",
            field="due_date",
            remedy="give the date by which the owner must remediate it (YYYY-MM-DD)",
        )
    where = "" if version is None else f"/{version}"
    subject = audit.Subject("version" if version is not None else "model", name + where, name)

    def body(conn: Connection) -> Finding:
        m = reg._model_row(conn, name)
        v = None if version is None else reg._version_row(conn, m, version)
        check = _role_check(actor, (Role.VALIDATOR,), "finding.raise", "raise a finding")
        sod = _independence(actor, None if v is None else v.author, "raise findings on it")
        reg._enforce(conn, actor, replace(check, sod=sod), subject, None)
        now = iso(reg.clock())
        fid = inserted_id(
            conn.execute(
                findings.insert().values(
                    model_id=m.id,
                    version_id=None if v is None else v.id,
                    severity=sev.value,
                    title=ttl,
                    description=desc,
                    remediation_owner=owner,
                    due_date=due.isoformat(),
                    status=FindingStatus.OPEN.value,
                    raised_by=actor.username,
                    raised_at=now,
                    updated_by=actor.username,
                    updated_at=now,
                )
            )
        )
        audit.append(
            conn,
            actor=actor,
            role=Role.VALIDATOR.value,
            action="finding.raised",
            subject=audit.Subject("finding", str(fid), name),
            payload={
                "finding_id": fid,
                "version": version,
                "severity": sev.value,
                "title": ttl,
                "description": desc,
                "remediation_owner": owner,
                "due_date": due.isoformat(),
            },
            clock=reg.clock,
        )
        row = conn.execute(_finding_query().where(findings.c.id == fid)).one()
        return _finding(row, reg.clock().date())

    return reg._guarded(actor, "finding.raise", subject, body)


def _date(value: date | str, field: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidArgument(
            f"{field} {value!r} is not a date", field=field, remedy="use YYYY-MM-DD"
        ) from None


def _change_finding(
    reg: Registry,
    actor: Actor,
    finding_id: int,
    *,
    action: str,
    event: str,
    roles: tuple[Role, ...],
    doing: str,
    rule: Callable[[Connection, Row[Any]], Check],
    values: Callable[[Row[Any]], dict[str, Any]],
    payload: Callable[[Row[Any]], dict[str, Any]],
) -> Finding:
    """One change of a finding's status: ``rule`` adds the SoD and guard reasons to the role
    check, ``values`` gives the columns to write and ``payload`` the audit payload."""
    with reg.db.read() as conn:
        model_name = _finding_row(conn, finding_id).model_name
    subject = audit.Subject("finding", str(finding_id), model_name)

    def body(conn: Connection) -> Finding:
        r = _finding_row(conn, finding_id)
        reasons = rule(conn, r)
        check = _role_check(actor, roles, action, doing)
        if action == "finding.remediate" and actor.username == r.remediation_owner:
            check = Check(action=action)  # the named owner remediates, whatever their role
        check = replace(check, sod=reasons.sod, guard=reasons.guard)
        reg._enforce(conn, actor, check, subject, None)
        now = iso(reg.clock())
        conn.execute(
            findings.update()
            .where(findings.c.id == finding_id)
            .values(updated_by=actor.username, updated_at=now, **values(r))
        )
        audit.append(
            conn,
            actor=actor,
            role=reg._acting_role(actor, roles, False),
            action=event,
            subject=subject,
            payload={
                "finding_id": finding_id,
                "version": r.version_number,
                "severity": r.severity,
                "from": r.status,
                **payload(r),
            },
            clock=reg.clock,
        )
        row = conn.execute(_finding_query().where(findings.c.id == finding_id)).one()
        return _finding(row, reg.clock().date())

    return reg._guarded(actor, action, subject, body)


def remediate_finding(reg: Registry, actor: Actor, finding_id: int, note: str) -> Finding:
    """The owner's side (a developer, or the named remediation owner) reports it fixed."""
    text = check_text(note, "note", "Refit on 2019-2025 vintages; coefficients now stable", 10_000)

    def rule(conn: Connection, r: Row[Any]) -> Check:
        if r.status != FindingStatus.OPEN.value:
            return Check(
                action="finding.remediate",
                guard=(
                    f"finding #{r.id} is {r.status}; only an open finding is remediated "
                    "(a validator reopens it first)",
                ),
            )
        return Check(action="finding.remediate")

    return _change_finding(
        reg,
        actor,
        finding_id,
        action="finding.remediate",
        event="finding.remediated",
        roles=(Role.DEVELOPER,),
        doing="remediate findings (a developer or the finding's remediation owner does)",
        rule=rule,
        values=lambda r: {
            "status": FindingStatus.REMEDIATED.value,
            "resolution": text,
            "remediated_by": actor.username,
        },
        payload=lambda r: {"to": FindingStatus.REMEDIATED.value, "note": text},
    )


def close_finding(reg: Registry, actor: Actor, finding_id: int, note: str) -> Finding:
    """An independent validator accepts the remediation and closes the finding."""
    text = check_text(note, "note", "Re-tested on the 2025 holdout; stable", 10_000)

    def rule(conn: Connection, r: Row[Any]) -> Check:
        sod = list(_independence(actor, _version_author(conn, r.version_id), "close its findings"))
        if r.remediated_by is not None and actor.username == r.remediated_by:
            sod.append(
                f"{actor.username} remediated finding #{r.id} and so may not close it: closure "
                "is an independent check (segregation of duties)"
            )
        guard: tuple[str, ...] = ()
        if r.status != FindingStatus.REMEDIATED.value:
            guard = (
                f"finding #{r.id} is {r.status}; only a remediated finding is closed "
                f"(the owner runs `charter findings remediate {r.id} --note TEXT` first)",
            )
        return Check(action="finding.close", sod=tuple(sod), guard=guard)

    return _change_finding(
        reg,
        actor,
        finding_id,
        action="finding.close",
        event="finding.closed",
        roles=(Role.VALIDATOR,),
        doing="close findings",
        rule=rule,
        values=lambda r: {"status": FindingStatus.CLOSED.value, "closure_note": text},
        payload=lambda r: {
            "to": FindingStatus.CLOSED.value,
            "note": text,
            "remediated_by": r.remediated_by,
        },
    )


def reopen_finding(reg: Registry, actor: Actor, finding_id: int, note: str) -> Finding:
    """A validator finds the remediation wanting (or the issue back): the finding is open again."""
    text = check_text(note, "note", "The refit still fails the stability gate", 10_000)

    def rule(conn: Connection, r: Row[Any]) -> Check:
        sod = _independence(actor, _version_author(conn, r.version_id), "reopen its findings")
        guard: tuple[str, ...] = ()
        if r.status == FindingStatus.OPEN.value:
            guard = (f"finding #{r.id} is open already",)
        return Check(action="finding.reopen", sod=sod, guard=guard)

    return _change_finding(
        reg,
        actor,
        finding_id,
        action="finding.reopen",
        event="finding.reopened",
        roles=(Role.VALIDATOR,),
        doing="reopen findings",
        rule=rule,
        values=lambda r: {
            "status": FindingStatus.OPEN.value,
            "remediated_by": None,
            "closure_note": None,
        },
        payload=lambda r: {"to": FindingStatus.OPEN.value, "note": text},
    )


def list_findings(
    reg: Registry,
    name: str | None = None,
    status: str | FindingStatus | None = None,
    *,
    version: int | None = None,
) -> list[Finding]:
    """Findings, oldest first; ``status`` is open, remediated, closed, or ``overdue`` (not
    closed and due before today)."""
    overdue_only = isinstance(status, str) and status.strip().lower() == "overdue"
    st = None if status is None or overdue_only else parse_status(status)
    today = reg.clock().date()
    with reg.db.read() as conn:
        q = _finding_query()
        if name is not None:
            m = reg._model_row(conn, name)
            q = q.where(findings.c.model_id == m.id)
            if version is not None:
                v = reg._version_row(conn, m, version)
                q = q.where(findings.c.version_id == v.id)
        if st is not None:
            q = q.where(findings.c.status == st.value)
        if overdue_only:
            q = q.where(
                findings.c.status.in_(OPEN_STATUSES), findings.c.due_date < today.isoformat()
            )
        rows = conn.execute(q.order_by(findings.c.id)).all()
    return [_finding(r, today) for r in rows]


def get_finding(reg: Registry, finding_id: int) -> Finding:
    with reg.db.read() as conn:
        r = _finding_row(conn, finding_id)
    return _finding(r, reg.clock().date())


# ---------------------------------------------------------------------------------- approvals
def write_approval(
    reg: Registry,
    conn: Connection,
    actor: Actor,
    name: str,
    v: Row[Any],
    decision: ApprovalDecision,
    *,
    conditions: list[str],
    comment: str,
    overridden: bool,
) -> Approval:
    """Inside the deciding transaction: the approvals row and its audit event."""
    now = iso(reg.clock())
    aid = inserted_id(
        conn.execute(
            approvals.insert().values(
                version_id=v.id,
                approver=actor.username,
                decision=decision.value,
                conditions=jsonutil.dumps(conditions),
                comment=comment,
                artifact_sha256=v.artifact_sha256,
                created_at=now,
            )
        )
    )
    audit.append(
        conn,
        actor=actor,
        role=reg._acting_role(actor, (Role.APPROVER,), overridden),
        action="version.approval_decided",
        subject=audit.Subject("version", f"{name}/{v.version}", name),
        payload={
            "version": int(v.version),
            "approval_id": aid,
            "decision": decision.value,
            "conditions": conditions,
            "comment": comment,
            "artifact_sha256": v.artifact_sha256,
            "override": overridden,
        },
        clock=reg.clock,
    )
    row = conn.execute(select(approvals).where(approvals.c.id == aid)).one()
    return _approval(row, name, int(v.version))


def decide(
    reg: Registry,
    actor: Actor,
    name: str,
    version: int,
    decision: str | ApprovalDecision,
    *,
    comment: str,
    conditions: Iterable[str],
    justification: str | None,
) -> Approval:
    d = parse_decision(decision)
    conds = _texts(conditions, "conditions", "Monitor PSI monthly; recalibrate by Q3")
    if d is ApprovalDecision.APPROVED_WITH_CONDITIONS and not conds:
        raise InvalidArgument(
            "approval with conditions needs at least one condition",
            field="conditions",
            remedy="name the conditions, or approve without them",
        )
    if d is not ApprovalDecision.APPROVED_WITH_CONDITIONS and conds:
        raise InvalidArgument(
            f"a decision {d.value!r} carries no conditions",
            field="conditions",
            remedy="decide approved_with_conditions to attach conditions",
        )
    if not isinstance(comment, str):
        raise InvalidArgument("comment must be text", field="comment", remedy="pass a string")
    note = comment.strip()
    if d is ApprovalDecision.REJECTED and not note:
        raise InvalidArgument(
            "a rejection needs a comment saying why",
            field="comment",
            remedy="say what must change before the version comes back",
        )
    target = Stage.DEVELOPMENT if d is ApprovalDecision.REJECTED else Stage.APPROVED
    subject = audit.Subject("version", f"{name}/{version}", name)

    def extra(facts: lifecycle.VersionFacts, check: Check) -> Check:
        # A rejection is the approver's decision (a validator sends back with `transition`).
        if target is Stage.DEVELOPMENT and not actor.has(Role.APPROVER) and check.edge_exists:
            reason = f"{actor.username} may not decide on a version: it needs the role approver"
            return replace(check, role=(*check.role, reason))
        return check

    def body(conn: Connection) -> Approval:
        m = reg._model_row(conn, name)
        v = reg._version_row(conn, m, version)
        overridden = reg._transition_in_tx(
            conn, actor, name, v, target, comment=note, justification=justification, extra=extra
        )
        return write_approval(
            reg, conn, actor, name, v, d, conditions=conds, comment=note, overridden=overridden
        )

    return reg._guarded(actor, f"version.decide.{d.value}", subject, body)


def list_approvals(reg: Registry, name: str, version: int) -> list[Approval]:
    with reg.db.read() as conn:
        m = reg._model_row(conn, name)
        v = reg._version_row(conn, m, version)
        rows = conn.execute(
            select(approvals).where(approvals.c.version_id == v.id).order_by(approvals.c.id)
        ).all()
    return [_approval(r, name, version) for r in rows]


# ---------------------------------------------------------------------------------- narrative
def _narrative(model_name: str, r: Row[Any] | None) -> ModelNarrative:
    if r is None:
        return ModelNarrative(model_name=model_name, sections={})
    secs = {k: getattr(r, k) for k in NARRATIVE_SECTIONS if getattr(r, k)}
    return ModelNarrative(
        model_name=model_name,
        sections=secs,
        revision=r.revision,
        updated_by=r.updated_by,
        updated_at=parse_iso(r.updated_at),
    )


def set_model_narrative(
    reg: Registry, actor: Actor, name: str, sections: Mapping[str, str | None]
) -> ModelNarrative:
    """Set the given narrative sections of the model card (others stay); blank or None clears."""
    if isinstance(sections, Mapping) and not sections:
        raise InvalidArgument(
            "no narrative sections given",
            field="sections",
            remedy=f"set one or more of: {', '.join(NARRATIVE_SECTIONS)}",
        )
    given = _sections(sections, NARRATIVE_SECTIONS, "sections")
    cleared = sorted(str(k) for k in sections if str(k) not in given)
    subject = audit.Subject("model", name, name)

    def body(conn: Connection) -> ModelNarrative:
        m = reg._model_row(conn, name)
        check = _role_check(actor, NARRATIVE_ROLES, "narrative.set", "edit the model card")
        reg._enforce(conn, actor, check, subject, None)
        cur = conn.execute(
            select(model_narratives).where(model_narratives.c.model_id == m.id)
        ).first()
        now = iso(reg.clock())
        values: dict[str, Any] = {k: given.get(k) for k in (*given, *cleared)}
        values.update(updated_by=actor.username, updated_at=now)
        if cur is None:
            revision = 1
            conn.execute(
                model_narratives.insert().values(model_id=m.id, revision=revision, **values)
            )
        else:
            revision = cur.revision + 1
            conn.execute(
                model_narratives.update()
                .where(model_narratives.c.model_id == m.id)
                .values(revision=revision, **values)
            )
        audit.append(
            conn,
            actor=actor,
            role=reg._acting_role(actor, NARRATIVE_ROLES, False),
            action="model.narrative_set",
            subject=subject,
            payload={"revision": revision, "sections": given, "cleared": cleared},
            clock=reg.clock,
        )
        row = conn.execute(
            select(model_narratives).where(model_narratives.c.model_id == m.id)
        ).one()
        return _narrative(name, row)

    return reg._guarded(actor, "model.narrative_set", subject, body)


def get_model_narrative(reg: Registry, name: str) -> ModelNarrative:
    with reg.db.read() as conn:
        m = reg._model_row(conn, name)
        r = conn.execute(
            select(model_narratives).where(model_narratives.c.model_id == m.id)
        ).first()
    return _narrative(name, r)
