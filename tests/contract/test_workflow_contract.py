"""The validation and approval workflow's contract, on every backend: gate runs, the validator's
recommendation, findings and their segregation of duties, the approver's decision, the model
card's narrative, and the deployment guard that needs all of them."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pytest
from sqlalchemy import text

from charter.entities import ApprovalDecision, FindingStatus, Severity, Stage
from charter.errors import InvalidArgument, PermissionDenied, TransitionNotAllowed
from charter.registry import inventory
from charter.registry.service import Registry
from charter.storage import jsonutil

from helpers import (
    GATES_POLICY,
    approved_version,
    create_model,
    log_version,
    record_gates,
    record_passing_gates,
)

PLAN = {
    "steps": [0.2, 1.0],
    "min_decisions": 10,
    "max_error_rate": 0.01,
    "max_latency_p99_ms": 50.0,
    "max_score_psi": 0.25,
    "max_approval_rate_delta": 0.1,
}
WHY = "Incident INC-4711: the CRO agreed on the bridge call to accept this for 48 hours"


def _in_validation(reg: Registry, people, seed: int = 0, gates: bool = True) -> int:
    v = log_version(reg, people.dev, seed=seed)
    if gates:
        record_passing_gates(reg, people.dev, "pd-model", v.version)
    reg.transition(people.dev, "pd-model", v.version, "validation")
    return v.version


def _approved_without_gates(reg: Registry, people, seed: int = 0) -> int:
    version = _in_validation(reg, people, seed, gates=False)
    reg.record_validation(people.val, "pd-model", version, recommendation="approve", summary="ok")
    reg.decide(people.app, "pd-model", version, "approved")
    return version


def _last_denial(reg: Registry) -> dict:
    return reg.audit_log(action="denied")[-1].payload


# ---------------------------------------------------------------------------------- gate runs
def test_a_gate_run_is_bound_to_the_artifact_and_audited(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    v = log_version(registry, people.dev)
    run = record_passing_gates(registry, people.dev, "pd-model", 1)
    assert run.artifact_sha256 == v.artifact_sha256 and run.run_by == "dana" and run.passed
    assert v.training_data is not None
    assert run.training_data_hash == v.training_data.content_hash
    assert run.datasets == {"train": {"sha256": v.training_data.content_hash, "rows": 200}}
    assert run.policy_text == GATES_POLICY and run.failed_gates == ()
    assert run.report_sha256 == hashlib.sha256(jsonutil.dumps(run.report).encode()).hexdigest()
    assert 0.5 < run.report["gates"][0]["criteria"][0]["value"] < 1.0  # the version's real AUC
    assert registry.list_gate_runs("pd-model", 1) == [run]
    assert registry.get_gate_run(run.id) == run
    event = registry.audit_log(action="validation.gates_run")[0]
    assert event.subject == "pd-model/1" and event.role == "developer"
    assert event.payload == {
        "version": 1,
        "gate_run_id": run.id,
        "report_sha256": run.report_sha256,
        "passed": True,
        "failed_gates": [],
        "policy_name": "test-gates",
        "policy_sha256": run.policy_sha256,
        "artifact_sha256": v.artifact_sha256,
        "training_data_hash": v.training_data.content_hash,
        "datasets": run.datasets,
    }


def test_gate_run_arguments_and_roles(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    log_version(registry, people.dev)
    good = {
        "policy_name": "p",
        "policy_sha256": hashlib.sha256(b"x = 1").hexdigest(),
        "policy_text": "x = 1",
        "datasets": {"holdout": {"sha256": "a" * 64, "rows": 10}},
        "passed": True,
        "failed_gates": [],
        "report": {"passed": True, "gates": []},
    }
    before = len(registry.audit_log())
    for change, field in [
        ({"policy_sha256": "b" * 64}, "policy_sha256"),
        ({"passed": True, "failed_gates": ["performance"]}, "failed_gates"),
        ({"passed": False, "report": {}}, "failed_gates"),
        ({"report": {"passed": False}}, "passed"),
        ({"datasets": {"holdout": {"sha256": "nope", "rows": 10}}}, "datasets.holdout.sha256"),
        ({"datasets": {"holdout": {"sha256": "a" * 64, "rows": -1}}}, "datasets.holdout.rows"),
    ]:
        with pytest.raises(InvalidArgument) as e:
            registry.record_gate_run(people.dev, "pd-model", 1, **{**good, **change})
        assert e.value.field == field and e.value.remedy is not None
    assert len(registry.audit_log()) == before
    with pytest.raises(PermissionDenied) as e:
        registry.record_gate_run(people.app, "pd-model", 1, **good)
    assert "needs the role developer or validator or service" in e.value.message
    assert _last_denial(registry)["attempted"] == "validation.gates_run"
    assert registry.record_gate_run(people.val, "pd-model", 1, **good).run_by == "victor"
    registry.transition(people.dev, "pd-model", 1, "retired")
    with pytest.raises(TransitionNotAllowed) as e:
        registry.record_gate_run(people.dev, "pd-model", 1, **good)
    assert "retired" in e.value.message


# ---------------------------------------------------------------------------------- deployment
def test_an_unapproved_version_is_not_deployed(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    _in_validation(registry, people)
    with pytest.raises(TransitionNotAllowed) as e:
        registry.set_alias(people.app, "pd-model", 1, "champion")
    assert "a version in validation cannot be champion" in e.value.message
    assert "approve it first" in e.value.message
    denial = _last_denial(registry)
    assert denial["attempted"] == "alias.set.champion"
    assert denial["code"] == "transition_not_allowed"
    assert registry.get_model("pd-model").champion_version is None


def test_no_deployment_without_a_passed_gate_run(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    _approved_without_gates(registry, people)
    with pytest.raises(TransitionNotAllowed) as e:
        registry.set_alias(people.app, "pd-model", 1, "champion")
    assert "no gate run" in e.value.message
    assert "run `charter validate pd-model 1 --policy FILE`" in e.value.message
    assert _last_denial(registry)["attempted"] == "alias.set.champion"
    # Honest gates the version cannot pass: its AUC is below 0.99.
    failed = record_gates(registry, people.val, "pd-model", 1, min_auc=0.99)
    assert not failed.passed and failed.failed_gates == ("performance",)
    with pytest.raises(TransitionNotAllowed) as e:
        registry.set_alias(people.app, "pd-model", 1, "challenger")
    assert f"latest gate run #{failed.id} failed (performance)" in e.value.message
    assert _last_denial(registry)["attempted"] == "alias.set.challenger"
    record_passing_gates(registry, people.val, "pd-model", 1)
    registry.set_alias(people.app, "pd-model", 1, "champion")
    # The newest run counts: a later failed run stops the next deployment of the version.
    record_gates(registry, people.val, "pd-model", 1, min_auc=0.99)
    registry.remove_alias(people.app, "pd-model", "champion")
    with pytest.raises(TransitionNotAllowed):
        registry.set_alias(people.app, "pd-model", 1, "champion")
    # Shadow answers no customer and needs none of it.
    _approved_without_gates(registry, people, seed=1)
    registry.set_alias(people.dev, "pd-model", 2, "shadow")


def test_a_canary_needs_the_same_guard(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    approved_version(registry, people.dev, people.val, people.app, seed=0)
    registry.set_alias(people.app, "pd-model", 1, "champion")
    _approved_without_gates(registry, people, seed=1)
    with pytest.raises(TransitionNotAllowed) as e:
        registry.start_canary(people.app, "pd-model", 2, PLAN)
    assert "charter validate pd-model 2 --policy FILE" in e.value.message
    assert _last_denial(registry)["attempted"] == "canary.start"
    assert registry.canary("pd-model") is None
    record_passing_gates(registry, people.dev, "pd-model", 2)
    assert registry.start_canary(people.app, "pd-model", 2, PLAN)["version"] == 2


def test_an_open_high_finding_blocks_deployment_until_closed(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    approved_version(registry, people.dev, people.val, people.app)
    f = registry.raise_finding(
        people.val, "pd-model", 1, severity="high", title="Unstable coefficients",
        description="Signs flip across vintages", remediation_owner="dana", due_date="2026-12-31",
    )  # fmt: skip
    low = registry.raise_finding(
        people.val, "pd-model", 1, severity="low", title="Typo in documentation",
        description="Section 3", remediation_owner="dana", due_date="2026-12-31",
    )  # fmt: skip
    with pytest.raises(TransitionNotAllowed) as e:
        registry.set_alias(people.app, "pd-model", 1, "champion")
    assert f"high-severity finding #{f.id} is not closed" in e.value.message
    assert f"close finding #{f.id}" in e.value.message
    assert f"#{low.id}" not in e.value.message  # a low finding does not block
    assert _last_denial(registry)["reasons"] == [e.value.message]
    registry.remediate_finding(people.dev, f.id, "Refit on 2019-2025 vintages")
    with pytest.raises(TransitionNotAllowed):  # remediated is not closed
        registry.set_alias(people.app, "pd-model", 1, "champion")
    registry.close_finding(people.val, f.id, "Re-tested: stable")
    registry.set_alias(people.app, "pd-model", 1, "champion")
    # A model-level high finding blocks every version of the model.
    approved_version(registry, people.dev, people.val, people.app, seed=1)
    m = registry.raise_finding(
        people.val, "pd-model", None, severity="high", title="Population shift",
        description="The portfolio changed", remediation_owner="Head of Credit Risk",
        due_date=date(2027, 1, 31),
    )  # fmt: skip
    assert m.version is None
    with pytest.raises(TransitionNotAllowed) as e:
        registry.set_alias(people.app, "pd-model", 2, "challenger")
    assert f"#{m.id}" in e.value.message
    assert len(registry.audit_log(action="denied")) == 3


def test_nobody_deploys_their_own_version(registry: Registry, people) -> None:
    ident = registry.identity
    ident.create_user(people.admin, "sam", ["developer", "approver"])
    sam = ident.actor("sam")
    create_model(registry, people.dev)
    approved_version(registry, people.dev, people.val, people.app, seed=0)
    registry.set_alias(people.app, "pd-model", 1, "champion")
    v = log_version(registry, sam, seed=1)
    record_passing_gates(registry, sam, "pd-model", v.version)
    registry.transition(sam, "pd-model", v.version, "validation")
    registry.record_validation(people.val, "pd-model", v.version, recommendation="approve",
                               summary="ok")  # fmt: skip
    registry.decide(people.app, "pd-model", v.version, "approved")
    with pytest.raises(PermissionDenied) as e:
        registry.set_alias(sam, "pd-model", v.version, "challenger")
    assert "sam developed this version and so may not deploy it" in e.value.message
    assert _last_denial(registry)["code"] == "permission_denied"
    with pytest.raises(PermissionDenied) as e:
        registry.start_canary(sam, "pd-model", v.version, PLAN)
    assert "segregation of duties" in e.value.message
    assert [d.payload["attempted"] for d in registry.audit_log(action="denied")] == [
        "alias.set.challenger",
        "canary.start",
    ]


def test_an_admin_overrides_the_guard_with_a_justification(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    _approved_without_gates(registry, people)
    f = registry.raise_finding(
        people.val, "pd-model", 1, severity="high", title="Missing segment analysis",
        description="No analysis by region", remediation_owner="dana", due_date="2026-12-01",
    )  # fmt: skip
    with pytest.raises(PermissionDenied):  # only an admin breaks glass
        registry.set_alias(people.app, "pd-model", 1, "champion", justification=WHY)
    with pytest.raises(InvalidArgument) as e:
        registry.set_alias(people.admin, "pd-model", 1, "champion", justification="because")
    assert e.value.field == "justification"
    a = registry.set_alias(people.admin, "pd-model", 1, "champion", justification=WHY)
    assert a.version == 1
    (override,) = registry.audit_log(action="override")
    assert override.payload["overridden"] == "alias.champion"
    assert override.payload["justification"] == WHY
    reasons = override.payload["reasons"]
    assert any("no gate run" in r for r in reasons)
    assert any(f"finding #{f.id}" in r for r in reasons)
    alias_set = registry.audit_log(action="alias.set")[-1]
    assert alias_set.payload["override"] is True and alias_set.role == "admin"
    # And for a canary: a failed gate run, overridden.
    _approved_without_gates(registry, people, seed=1)
    record_gates(registry, people.dev, "pd-model", 2, min_auc=0.99)
    with pytest.raises(TransitionNotAllowed):
        registry.start_canary(people.app, "pd-model", 2, PLAN)
    started = registry.start_canary(people.admin, "pd-model", 2, PLAN, justification=WHY)
    assert started["override"] is True
    overrides = registry.audit_log(action="override")
    assert [o.payload["overridden"] for o in overrides] == ["alias.champion", "alias.champion"]
    assert any("failed (performance)" in r for r in overrides[-1].payload["reasons"])
    event = registry.audit_log(action="canary.started")[0]
    assert event.role == "admin" and event.actor == "ada"
    assert registry.verify_audit().ok


# ---------------------------------------------------------------------------------- findings
def test_the_findings_lifecycle_and_its_segregation_of_duties(registry: Registry, people) -> None:
    ident = registry.identity
    ident.create_user(people.admin, "sam", ["developer", "validator"])
    sam = ident.actor("sam")
    create_model(registry, people.dev)
    log_version(registry, people.dev)  # v1 by dana
    log_version(registry, sam, seed=1)  # v2 by sam
    args = {
        "severity": "medium",
        "title": "Weak monotonicity",
        "description": "Score falls with income in the top decile",
        "remediation_owner": "dana",
        "due_date": "2026-12-15",
    }
    with pytest.raises(PermissionDenied) as e:
        registry.raise_finding(people.dev, "pd-model", 1, **args)
    assert "needs the role validator" in e.value.message
    with pytest.raises(PermissionDenied) as e:  # sam validates, but not his own version
        registry.raise_finding(sam, "pd-model", 2, **args)
    assert "sam developed this version" in e.value.message
    for bad, field in [
        ({"severity": "critical"}, "severity"),
        ({"due_date": "2026-11-01"}, "due_date"),
        ({"due_date": "15/12/2026"}, "due_date"),
        ({"title": " "}, "title"),
    ]:
        with pytest.raises(InvalidArgument) as e:
            registry.raise_finding(people.val, "pd-model", 1, **{**args, **bad})
        assert e.value.field == field and e.value.remedy
    f = registry.raise_finding(sam, "pd-model", 1, **args)  # sam may judge dana's version
    assert (f.status, f.severity, f.version, f.raised_by) == (
        FindingStatus.OPEN, Severity.MEDIUM, 1, "sam",
    )  # fmt: skip
    assert f.due_date == date(2026, 12, 15) and not f.overdue
    with pytest.raises(TransitionNotAllowed) as e:  # closing needs a remediation first
        registry.close_finding(people.val, f.id, "fine")
    assert f"charter findings remediate {f.id}" in e.value.message
    with pytest.raises(PermissionDenied):  # a validator is not the owner's side
        registry.remediate_finding(people.val, f.id, "fixed it myself")
    r = registry.remediate_finding(sam, f.id, "Added a monotone constraint")  # sam develops
    assert (r.status, r.remediated_by, r.resolution) == (
        FindingStatus.REMEDIATED, "sam", "Added a monotone constraint",
    )  # fmt: skip
    with pytest.raises(PermissionDenied) as e:  # closure is independent of the remediation
        registry.close_finding(sam, f.id, "looks fixed to me")
    assert "sam remediated finding" in e.value.message
    with pytest.raises(PermissionDenied):
        registry.close_finding(people.dev, f.id, "done")  # a developer does not close
    c = registry.close_finding(people.val, f.id, "Re-tested on the holdout")
    assert (c.status, c.closure_note, c.updated_by) == (
        FindingStatus.CLOSED, "Re-tested on the holdout", "victor",
    )  # fmt: skip
    with pytest.raises(TransitionNotAllowed):
        registry.remediate_finding(people.dev, f.id, "again")
    o = registry.reopen_finding(people.val, f.id, "The constraint breaks calibration")
    assert o.status is FindingStatus.OPEN and o.remediated_by is None
    # The named remediation owner remediates whatever their role.
    ident.create_user(people.admin, "olga", ["auditor"])
    g = registry.raise_finding(
        people.val, "pd-model", None, **{**args, "remediation_owner": "olga"}
    )
    assert registry.remediate_finding(ident.actor("olga"), g.id, "Documented").remediated_by == (
        "olga"
    )
    assert [x.id for x in registry.list_findings("pd-model", "open")] == [f.id]
    assert [x.id for x in registry.list_findings(status="remediated")] == [g.id]
    assert registry.get_finding(g.id).version is None
    events = [e.action for e in registry.audit_log(action="finding.*")]
    assert events == [
        "finding.raised",
        "finding.remediated",
        "finding.closed",
        "finding.reopened",
        "finding.raised",
        "finding.remediated",
    ]
    closed = registry.audit_log(action="finding.closed")[0]
    assert closed.subject_type == "finding" and closed.subject == str(f.id)
    assert closed.payload["remediated_by"] == "sam" and closed.payload["from"] == "remediated"
    assert [d.payload["attempted"] for d in registry.audit_log(action="denied")] == [
        "finding.raise",
        "finding.raise",
        "finding.close",
        "finding.remediate",
        "finding.close",
        "finding.close",
        "finding.remediate",
    ]
    assert registry.verify_audit().ok


def test_overdue_findings_appear_in_the_inventory(registry: Registry, people, clock) -> None:
    create_model(registry, people.dev)
    create_model(registry, people.dev, name="fraud-model", risk_tier="medium")
    log_version(registry, people.dev)
    args = {"description": "d", "remediation_owner": "dana"}
    a = registry.raise_finding(people.val, "pd-model", 1, severity="high", title="A",
                               due_date="2026-12-01", **args)  # fmt: skip
    registry.raise_finding(people.val, "pd-model", None, severity="low", title="B",
                           due_date="2027-06-30", **args)  # fmt: skip
    c = registry.raise_finding(people.val, "fraud-model", None, severity="medium", title="C",
                               due_date="2026-12-10", **args)  # fmt: skip
    inv = inventory.build(registry)
    assert inv.summary()["open_findings"] == 3 and inv.summary()["overdue_findings"] == 0
    clock.advance(timedelta(days=20))  # 2026-12-12: A and C are overdue
    assert registry.get_finding(a.id).overdue
    assert [f.id for f in registry.list_findings(status="overdue")] == [a.id, c.id]
    registry.remediate_finding(people.dev, c.id, "done")  # remediated, not closed: still overdue
    inv = inventory.build(registry)
    assert inv.summary()["open_findings"] == 3
    assert inv.summary()["open_high_findings"] == 1
    assert inv.summary()["overdue_findings"] == 2
    rows = {r["name"]: r for r in jsonutil.loads(inventory.to_json(inv))["models"]}
    assert (rows["pd-model"]["open_findings"], rows["pd-model"]["open_high_findings"],
            rows["pd-model"]["overdue_findings"]) == (2, 1, 1)  # fmt: skip
    assert rows["fraud-model"]["overdue_findings"] == 1
    header = inventory.to_csv(inv).splitlines()[0].split(",")
    assert {"open_findings", "open_high_findings", "overdue_findings"} <= set(header)
    assert "3 findings not closed (1 high), 2 overdue" in inventory.to_markdown(inv)
    registry.close_finding(people.val, c.id, "verified")
    assert inventory.build(registry).summary()["overdue_findings"] == 1
    assert rows["pd-model"]["review_overdue"] is False


# ---------------------------------------------------------------------------------- decisions
def test_recommend_and_approve_with_conditions(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    _in_validation(registry, people)
    run = registry.list_gate_runs("pd-model", 1)[0]
    with pytest.raises(InvalidArgument) as e:
        registry.record_validation(people.val, "pd-model", 1, summary="s",
                                   recommendation="approve_with_conditions")  # fmt: skip
    assert e.value.field == "conditions"
    with pytest.raises(InvalidArgument) as e:
        registry.record_validation(people.val, "pd-model", 1, summary="s", recommendation="approve",
                                   sections={"scope": "x", "verdict": "y"})  # fmt: skip
    assert e.value.field == "sections" and "conceptual_soundness" in (e.value.remedy or "")
    with pytest.raises(InvalidArgument) as e:
        registry.record_validation(people.val, "pd-model", 1, summary="s", recommendation="maybe")
    assert e.value.field == "recommendation"
    rec = registry.record_validation(
        people.val, "pd-model", 1, recommendation="approve-with-conditions",
        summary="Sound, with two conditions", conditions=["Monthly PSI report", "Recalibrate Q3"],
        sections={"scope": "PD for cards", "conclusion": "Fit for use"}, gate_run_id=run.id,
    )  # fmt: skip
    assert (rec.recommendation, rec.outcome, rec.gate_run_id) == (
        "approve_with_conditions", "pass", run.id,
    )  # fmt: skip
    assert rec.conditions == ("Monthly PSI report", "Recalibrate Q3")
    assert rec.sections == {"scope": "PD for cards", "conclusion": "Fit for use"}
    assert registry.list_validations("pd-model", 1) == [rec]
    validated = registry.audit_log(action="version.validated")[0].payload
    assert validated["recommendation"] == "approve_with_conditions"
    assert validated["conditions"] == list(rec.conditions)
    with pytest.raises(InvalidArgument) as e:
        registry.decide(people.app, "pd-model", 1, "approved_with_conditions")
    assert e.value.field == "conditions"
    with pytest.raises(PermissionDenied):  # the validator does not approve what they validated
        registry.decide(people.val, "pd-model", 1, "approved")
    a = registry.decide(
        people.app, "pd-model", 1, "approve_with_conditions", comment="Accepted",
        conditions=["Monthly PSI report to the MRM committee"],
    )  # fmt: skip
    assert a.decision is ApprovalDecision.APPROVED_WITH_CONDITIONS and a.approver == "petra"
    assert a.conditions == ("Monthly PSI report to the MRM committee",)
    assert registry.get_version("pd-model", 1).stage is Stage.APPROVED
    assert registry.list_approvals("pd-model", 1) == [a]
    actions = [e.action for e in registry.audit_log(model_name="pd-model")][-2:]
    assert actions == ["version.approve", "version.approval_decided"]
    decided = registry.audit_log(action="version.approval_decided")[0]
    assert decided.payload["decision"] == "approved_with_conditions"
    assert decided.payload["approval_id"] == a.id and decided.role == "approver"
    registry.set_alias(people.app, "pd-model", 1, "champion")


def test_reject_sends_the_version_back(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    _in_validation(registry, people)
    rec = registry.record_validation(
        people.val, "pd-model", 1, recommendation="reject", summary="Fails the stability gate"
    )
    assert rec.outcome == "fail"
    with pytest.raises(TransitionNotAllowed) as e:
        registry.decide(people.app, "pd-model", 1, "approved")
    assert "no passing validation by an independent validator" in e.value.message
    with pytest.raises(InvalidArgument) as e:
        registry.decide(people.app, "pd-model", 1, "rejected")
    assert e.value.field == "comment"
    with pytest.raises(PermissionDenied) as e:  # a rejection is the approver's decision
        registry.decide(people.val, "pd-model", 1, "reject", comment="no")
    assert "needs the role approver" in e.value.message
    a = registry.decide(people.app, "pd-model", 1, "reject", comment="Rework the segmentation")
    assert a.decision is ApprovalDecision.REJECTED and a.comment == "Rework the segmentation"
    assert registry.get_version("pd-model", 1).stage is Stage.DEVELOPMENT
    actions = [e.action for e in registry.audit_log(model_name="pd-model")][-2:]
    assert actions == ["version.send_back", "version.approval_decided"]
    with pytest.raises(TransitionNotAllowed):  # not in validation any more
        registry.decide(people.app, "pd-model", 1, "reject", comment="again")
    assert [d.payload["attempted"] for d in registry.audit_log(action="denied")] == [
        "version.decide.approved",
        "version.decide.rejected",
        "version.decide.rejected",
    ]


def test_transition_to_approved_records_an_approval(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    approved_version(registry, people.dev, people.val, people.app)
    (a,) = registry.list_approvals("pd-model", 1)
    assert a.decision is ApprovalDecision.APPROVED and a.approver == "petra"
    assert a.artifact_sha256 == registry.get_version("pd-model", 1).artifact_sha256


def test_outcome_is_still_accepted_and_must_agree(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    _in_validation(registry, people)
    r = registry.record_validation(people.val, "pd-model", 1, outcome="pass", summary="ok")
    assert (r.recommendation, r.outcome, r.conditions, r.sections) == ("approve", "pass", (), {})
    with pytest.raises(InvalidArgument) as e:
        registry.record_validation(
            people.val, "pd-model", 1, outcome="pass", recommendation="reject", summary="?"
        )
    assert e.value.field == "outcome"
    with pytest.raises(InvalidArgument) as e:
        registry.record_validation(people.val, "pd-model", 1, summary="neither")
    assert e.value.field == "recommendation"


# ---------------------------------------------------------------------------------- narrative
def test_the_model_card_narrative(registry: Registry, people) -> None:
    create_model(registry, people.dev)
    empty = registry.get_model_narrative("pd-model")
    assert empty.revision == 0 and empty.sections == {}
    with pytest.raises(InvalidArgument) as e:
        registry.set_model_narrative(people.dev, "pd-model", {"purpose": "x"})
    assert e.value.field == "sections"
    assert "intended_use" in (e.value.remedy or "") and "caveats_and_recommendations" in (
        e.value.remedy or ""
    )
    with pytest.raises(PermissionDenied):
        registry.set_model_narrative(people.val, "pd-model", {"intended_use": "x"})
    n = registry.set_model_narrative(
        people.dev, "pd-model", {"intended_use": "Retail cards", "factors": "Age, income"}
    )
    assert n.revision == 1 and n.updated_by == "dana"
    n = registry.set_model_narrative(
        people.app, "pd-model", {"factors": "", "caveats_and_recommendations": "Recalibrate yearly"}
    )
    assert n.revision == 2 and n.sections == {
        "intended_use": "Retail cards",
        "caveats_and_recommendations": "Recalibrate yearly",
    }
    assert registry.get_model_narrative("pd-model") == n
    events = registry.audit_log(action="model.narrative_set")
    assert [e.payload["revision"] for e in events] == [1, 2]
    assert events[1].payload["cleared"] == ["factors"]


# ---------------------------------------------------------------------------------- migration
def test_old_validations_get_a_recommendation(database_url: str) -> None:
    from charter.storage.db import Database

    db = Database(database_url)
    try:
        db.upgrade("0004")
        ts = "2026-11-01T00:00:00.000000Z"
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO models (id, name, purpose, business_use, decision_type, owner, "
                    "team, risk_tier, upstream, downstream, review_cadence_months, tags, "
                    "created_at, created_by) VALUES (1, 'm1', 'p', 'b', 'd', 'o', 't', 'high', "
                    "'[]', '[]', 12, '{}', :ts, 'dana')"
                ),
                {"ts": ts},
            )
            conn.execute(
                text(
                    "INSERT INTO model_versions (id, model_id, version, stage, artifact_sha256, "
                    "artifact_format, artifact_size, feature_schema, hyperparameters, seeds, "
                    "metrics, environment, author, description, source, created_at) VALUES "
                    "(1, 1, 1, 'validation', :sha, 'skops', 1, '[]', '{}', '{}', '{}', '{}', "
                    "'dana', '', '{}', :ts)"
                ),
                {"sha": "a" * 64, "ts": ts},
            )
            for vid, outcome in ((1, "pass"), (2, "fail")):
                conn.execute(
                    text(
                        "INSERT INTO validations (id, version_id, validator, outcome, summary, "
                        "artifact_sha256, created_at) VALUES (:id, 1, 'victor', :o, 's', :sha, :ts)"
                    ),
                    {"id": vid, "o": outcome, "sha": "a" * 64, "ts": ts},
                )
        db.upgrade()
        db.check_schema()
        with db.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT outcome, recommendation, conditions, sections, gate_run_id "
                    "FROM validations ORDER BY id"
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            ("pass", "approve", "[]", "{}", None),
            ("fail", "reject", "[]", "{}", None),
        ]
    finally:
        db.dispose()
