""" "Why was this applicant declined?" for one logged decision, from the record alone.

``explain_decision`` gathers what an examiner asks to see for a decision id: the model version and
its artifact hash, the logged inputs, score, threshold and decision, the logged reasons, the
validation record in force when the decision was made (the latest gate run, the validator's
recommendation and the approver's decision recorded before it), the outcome if it has arrived,
a counterfactual for a decline, and a **replay**: the version's artifact is loaded again from the
content-addressed store (its hash checked), compiled as the service compiles it, and the logged
inputs are re-scored. The replay reproduces the score to 1e-9 and the same reasons, or the
explanation says it did not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from charter.clock import parse_iso
from charter.entities import ModelVersion
from charter.errors import InvalidArgument, NotFound
from charter.registry.service import Registry
from charter.serving.decision_log import DecisionRecord, get_decision, get_outcome
from charter.serving.runtime import compile_version

REPLAY_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Replay:
    score: float
    difference: float
    reproduced: bool  # |replayed - logged| <= REPLAY_TOLERANCE and the same reasons
    same_reasons: bool
    reasons: tuple[dict[str, Any], ...]
    scorer: str  # linear | native | generic

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "difference": self.difference,
            "tolerance": REPLAY_TOLERANCE,
            "reproduced": self.reproduced,
            "same_reasons": self.same_reasons,
            "reasons": [dict(r) for r in self.reasons],
            "scorer": self.scorer,
        }


@dataclass(frozen=True)
class DecisionExplanation:
    decision_id: str
    request_id: str
    model: str
    version: int
    variant: str
    artifact_sha256: str
    created_at: str
    inputs: Mapping[str, Any]
    score: float
    threshold: float
    decision: str
    reasons: tuple[dict[str, Any], ...]
    replay: Replay
    validation_in_force: Mapping[str, Any]
    counterfactual: Mapping[str, Any] | None = None
    outcome: Mapping[str, Any] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "request_id": self.request_id,
            "model": self.model,
            "version": self.version,
            "variant": self.variant,
            "artifact_sha256": self.artifact_sha256,
            "created_at": self.created_at,
            "inputs": dict(self.inputs),
            "score": self.score,
            "threshold": self.threshold,
            "decision": self.decision,
            "reasons": [dict(r) for r in self.reasons],
            "replay": self.replay.to_dict(),
            "validation_in_force": dict(self.validation_in_force),
            "counterfactual": None if self.counterfactual is None else dict(self.counterfactual),
            "outcome": None if self.outcome is None else dict(self.outcome),
            "notes": list(self.notes),
        }


def _record(registry: Registry, decision_id: str) -> DecisionRecord:
    if not isinstance(decision_id, str) or not decision_id.strip() or len(decision_id) > 36:
        raise InvalidArgument(
            f"{decision_id!r} is not a decision id",
            field="decision_id",
            remedy="pass the decision_id the scoring service returned (a UUID)",
        )
    rec = get_decision(registry.db, decision_id.strip())
    if rec is None:
        raise NotFound(
            f"no decision {decision_id!r}",
            field="decision_id",
            remedy="check the id; decisions are listed by `charter audit`-style queries "
            "on the decision log (GET /v1/decisions/{id})",
        )
    return rec


def _in_force(registry: Registry, rec: DecisionRecord, sha: str) -> dict[str, Any]:
    """The latest gate run, recommendation and approval recorded at or before the decision."""
    at = parse_iso(rec.created_at)
    runs = [
        r
        for r in registry.list_gate_runs(rec.model_name, rec.version)
        if r.artifact_sha256 == sha and r.created_at <= at
    ]
    vals = [v for v in registry.list_validations(rec.model_name, rec.version) if v.created_at <= at]
    apps = [a for a in registry.list_approvals(rec.model_name, rec.version) if a.created_at <= at]
    run = runs[-1] if runs else None
    val = vals[-1] if vals else None
    app = apps[-1] if apps else None
    return {
        "gate_run": None
        if run is None
        else {
            "id": run.id,
            "passed": run.passed,
            "failed_gates": list(run.failed_gates),
            "policy": run.policy_name,
            "policy_sha256": run.policy_sha256,
            "report_sha256": run.report_sha256,
            "created_at": run.created_at.isoformat(),
        },
        "validation": None
        if val is None
        else {
            "id": val.id,
            "validator": val.validator,
            "recommendation": val.recommendation,
            "summary": val.summary,
            "conditions": list(val.conditions),
            "created_at": val.created_at.isoformat(),
        },
        "approval": None
        if app is None
        else {
            "id": app.id,
            "approver": app.approver,
            "decision": str(app.decision),
            "conditions": list(app.conditions),
            "created_at": app.created_at.isoformat(),
        },
    }


def replay(registry: Registry, rec: DecisionRecord, v: ModelVersion) -> tuple[Replay, Any]:
    """Re-score the logged inputs with the logged version ``v``, compiled as the service
    compiles it; returns the replay and the compiled scorer."""
    scorer = compile_version(registry, v)
    score = float(scorer.score_one(rec.inputs))
    reasons = tuple(scorer.reasons(rec.inputs))
    logged = [r.get("feature") for r in rec.reason_codes]
    same = [r["feature"] for r in reasons] == logged
    diff = score - rec.score
    return (
        Replay(
            score=score,
            difference=diff,
            reproduced=abs(diff) <= REPLAY_TOLERANCE and same,
            same_reasons=same,
            reasons=reasons,
            scorer=scorer.kind,
        ),
        scorer,
    )


def _counterfactual(rec: DecisionRecord, v: ModelVersion, scorer: Any) -> dict[str, Any] | None:
    if rec.decision != "decline":
        return None
    from charter.explain.counterfactual import counterfactual

    immutable = tuple(f.name for f in v.feature_schema if f.name in IMMUTABLE_BY_DEFAULT)

    # The compiled scorer itself: a linear one lets the search solve the flip exactly.
    cf = counterfactual(scorer, dict(rec.inputs), v.feature_schema, rec.threshold,
                        immutable=immutable, score_batch=scorer.score_many)  # fmt: skip
    return None if cf is None else cf.to_dict()


# Features a counterfactual never changes unless the caller says otherwise: who the applicant is,
# not what they asked for (Regulation B; German Credit's names and common ones).
IMMUTABLE_BY_DEFAULT = frozenset(
    {
        "age",
        "age_in_years",
        "sex",
        "gender",
        "personal_status_and_sex",
        "foreign_worker",
        "race",
        "ethnicity",
        "religion",
        "marital_status",
        "national_origin",
    }
)


def explain_decision(
    registry: Registry, decision_id: str, *, with_counterfactual: bool = True
) -> DecisionExplanation:
    rec = _record(registry, decision_id)
    v = registry.get_version(rec.model_name, rec.version)
    rep, scorer = replay(registry, rec, v)
    notes: list[str] = []
    if not rep.reproduced:
        notes.append(
            f"the replay did not reproduce the decision: score difference {rep.difference:.3g}"
            + ("" if rep.same_reasons else ", different reasons")
        )
    cf = None
    if with_counterfactual:
        cf = _counterfactual(rec, v, scorer)
        if rec.decision == "decline" and cf is None:
            notes.append("no feasible change to the actionable inputs flips this decision")
    return DecisionExplanation(
        decision_id=rec.id,
        request_id=rec.request_id,
        model=rec.model_name,
        version=rec.version,
        variant=rec.variant,
        artifact_sha256=v.artifact_sha256,
        created_at=rec.created_at,
        inputs=rec.inputs,
        score=rec.score,
        threshold=rec.threshold,
        decision=rec.decision,
        reasons=tuple(rec.reason_codes),
        replay=rep,
        validation_in_force=_in_force(registry, rec, v.artifact_sha256),
        counterfactual=cf,
        outcome=get_outcome(registry.db, rec.id),
        notes=tuple(notes),
    )
