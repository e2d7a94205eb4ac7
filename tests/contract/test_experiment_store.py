"""Experiments in the registry, on every backend: pre-registration, recorded decisions, roles,
and the audit events that carry the plan's and the evidence's SHA-256."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from charter.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    TransitionNotAllowed,
)
from charter.experiment.analysis import analyze_experiment
from charter.experiment.design import build_plan, plan_sha256
from charter.experiment.store import (
    get_experiment,
    list_experiment_decisions,
    list_experiments,
    record_experiment_decision,
    register_experiment,
)
from charter.registry.service import Registry
from charter.storage import jsonutil
from charter.storage.schema import experiment_decisions, experiments

from helpers import create_model, log_version

ATTRS = {"region": {"column": "region"}}


def _plan(**kw):
    args = {"primary_metric": "approval_rate", "mde": 0.05, "baseline_rate": 0.6,
            "challenger_share": 0.3, "protected_attributes": ATTRS}  # fmt: skip
    args.update(kw)
    return build_plan(**args)


def _two_versions(reg: Registry, people) -> tuple[int, int]:
    create_model(reg, people.dev)
    v1 = log_version(reg, people.dev, seed=0).version
    v2 = log_version(reg, people.dev, seed=1).version
    return v1, v2


def test_registering_stores_the_plan_once_and_audits_it(registry: Registry, people) -> None:
    v1, v2 = _two_versions(registry, people)
    plan = _plan()
    e = register_experiment(registry, people.app, "pd-ab-1", model="pd-model",
                            challenger_version=v2, champion_version=v1, plan=plan)  # fmt: skip
    assert (e.name, e.model_name, e.kind, e.status) == ("pd-ab-1", "pd-model", "ab", "running")
    assert (e.champion_version, e.challenger_version) == (v1, v2)
    assert e.plan == plan and e.plan_sha256 == plan_sha256(plan)
    assert e.created_by == "petra"
    assert get_experiment(registry, "pd-ab-1") == e
    assert [x.name for x in list_experiments(registry, "pd-model")] == ["pd-ab-1"]
    with registry.db.read() as conn:
        stored = conn.execute(select(experiments.c.plan)).scalar_one()
    assert hashlib.sha256(stored.encode()).hexdigest() == e.plan_sha256
    (event,) = registry.audit_log(action="experiment.*")
    assert event.action == "experiment.registered" and event.subject == "pd-ab-1"
    assert event.subject_type == "experiment" and event.model_name == "pd-model"
    assert event.role == "approver" and event.payload["plan_sha256"] == e.plan_sha256
    assert event.payload["plan"] == plan.to_dict()
    assert event.payload["plan"]["protected_attributes"] == ATTRS
    # A developer may register too; the experiment's name is unique.
    register_experiment(registry, people.dev, "pd-ab-2", model="pd-model",
                        challenger_version=v2, champion_version=v1, plan=plan)  # fmt: skip
    with pytest.raises(AlreadyExists) as ex:
        register_experiment(registry, people.dev, "pd-ab-2", model="pd-model",
                            challenger_version=v2, champion_version=v1, plan=plan)  # fmt: skip
    assert ex.value.field == "name"
    assert registry.verify_audit().ok


def test_registering_needs_a_role_two_versions_and_a_champion(registry: Registry, people) -> None:
    v1, v2 = _two_versions(registry, people)
    for who in (people.auditor, people.val):
        with pytest.raises(PermissionDenied):
            register_experiment(registry, who, "nope", model="pd-model", challenger_version=v2,
                                champion_version=v1, plan=_plan())  # fmt: skip
    denied = registry.audit_log(action="denied")
    assert [d.payload["attempted"] for d in denied] == ["experiment.register"] * 2
    with pytest.raises(InvalidArgument) as e:
        register_experiment(registry, people.dev, "same", model="pd-model",
                            challenger_version=v1, champion_version=v1, plan=_plan())  # fmt: skip
    assert e.value.field == "challenger_version"
    with pytest.raises(NotFound) as nf:
        register_experiment(registry, people.dev, "gone", model="pd-model",
                            challenger_version=9, champion_version=v1, plan=_plan())  # fmt: skip
    assert nf.value.field == "version"
    with pytest.raises(TransitionNotAllowed):  # no champion alias to default to
        register_experiment(registry, people.dev, "nochamp", model="pd-model",
                            challenger_version=v2, plan=_plan())  # fmt: skip
    with pytest.raises(InvalidArgument) as bad:
        register_experiment(registry, people.dev, "Bad Name", model="pd-model",
                            challenger_version=v2, champion_version=v1, plan=_plan())  # fmt: skip
    assert bad.value.field == "name"
    assert list_experiments(registry) == []
    assert registry.audit_log(action="experiment.*") == []


def test_decisions_are_recorded_with_their_evidence_hash_until_a_final_one(
    registry: Registry, people, clock
) -> None:
    v1, v2 = _two_versions(registry, people)
    e = register_experiment(registry, people.dev, "pd-ab", model="pd-model",
                            challenger_version=v2, champion_version=v1,
                            plan=_plan(max_days=14))  # fmt: skip
    # No traffic yet: continue, at most until the deadline.
    first = analyze_experiment(registry, "pd-ab").decision
    assert first.decision == "continue"
    assert first.continue_until == (e.created_at + timedelta(days=14)).date()
    rec = record_experiment_decision(registry, people.dev, e.id, first)
    assert rec.decision == "continue" and rec.decided_until == first.continue_until
    assert rec.evidence == jsonutil.loads(jsonutil.dumps(first.to_dict()))
    with registry.db.read() as conn:
        text = conn.execute(select(experiment_decisions.c.evidence)).scalar_one()
    assert hashlib.sha256(text.encode()).hexdigest() == rec.evidence_sha256
    assert get_experiment(registry, "pd-ab").status == "running"

    # Past the maximum duration without a significant result: keep the champion (final).
    later = analyze_experiment(registry, "pd-ab", until=e.created_at + timedelta(days=15))
    final = later.decision
    assert final.decision == "keep" and final.continue_until is None
    with pytest.raises(PermissionDenied):
        record_experiment_decision(registry, people.auditor, e.id, final)
    done = record_experiment_decision(registry, people.app, e.id, final)
    assert get_experiment(registry, "pd-ab").status == "decided"
    assert [r.decision for r in list_experiment_decisions(registry, e.id)] == ["continue", "keep"]
    with pytest.raises(TransitionNotAllowed):
        record_experiment_decision(registry, people.app, e.id, final)

    events = registry.audit_log(action="experiment.*")
    assert [ev.action for ev in events] == [
        "experiment.registered", "experiment.decided", "experiment.decided",
    ]  # fmt: skip
    decided = events[-1]
    assert decided.actor == "petra" and decided.role == "approver"
    assert decided.payload["decision"] == "keep"
    assert decided.payload["evidence_sha256"] == done.evidence_sha256
    assert decided.payload["plan_sha256"] == e.plan_sha256
    assert events[1].payload["decided_until"] == first.continue_until.isoformat()
    attempts = [d.payload["attempted"] for d in registry.audit_log(action="denied")]
    assert attempts == ["experiment.decide", "experiment.decide"]
    # The registered plan is unchanged by all of it.
    assert get_experiment(registry, "pd-ab").plan == e.plan
    assert registry.verify_audit().ok


def test_evidence_must_come_from_the_experiment_and_its_plan(registry: Registry, people) -> None:
    v1, v2 = _two_versions(registry, people)
    a = register_experiment(registry, people.dev, "exp-a", model="pd-model",
                            challenger_version=v2, champion_version=v1, plan=_plan())  # fmt: skip
    register_experiment(registry, people.dev, "exp-b", model="pd-model", challenger_version=v2,
                        champion_version=v1, plan=_plan(mde=0.1))  # fmt: skip
    other = analyze_experiment(registry, "exp-b").decision
    with pytest.raises(InvalidArgument) as e:
        record_experiment_decision(registry, people.dev, a.id, other)
    assert e.value.field == "decision"
    with pytest.raises(NotFound):
        record_experiment_decision(registry, people.dev, 999, other)
    assert list_experiment_decisions(registry, a.id) == []


def test_an_analysis_window_must_not_be_empty_and_shadow_must_match(
    registry: Registry, people
) -> None:
    v1, v2 = _two_versions(registry, people)
    e = register_experiment(registry, people.dev, "exp", model="pd-model",
                            challenger_version=v2, champion_version=v1, plan=_plan())  # fmt: skip
    with pytest.raises(InvalidArgument) as ex:
        analyze_experiment(registry, "exp", until=e.created_at - timedelta(days=1))
    assert ex.value.field == "until"
    with pytest.raises(InvalidArgument) as sh:
        analyze_experiment(registry, "exp", shadow=True)
    assert sh.value.field == "shadow"
