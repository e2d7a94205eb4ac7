"""The regulatory documents, built only from the audited record: data first (JSON), rendered
second (``charter.reports.render``).

* the **model card** (Mitchell et al., 2019: model details, intended use, factors, metrics,
  evaluation data, training data, quantitative analyses, ethical considerations, caveats and
  recommendations);
* the **validation report** (scope, conceptual soundness, data quality, outcomes analysis and
  backtesting, benchmarking, sensitivity, limitations, findings, conclusion and conditions);
* the **MRM committee report** (inventory by tier and status, monitoring status, open findings,
  overdue reviews, changes since the last report).

Every document states the audit-chain head (sequence number and hash) it was built from, and is a
function of that record and its ``as_of`` date only (the date decides what is overdue): the same
record and date give the same bytes. Reading happens in several queries, so a build checks the
head before and after and starts again if a change slipped in between.

Nothing here computes a statistic: the numbers are those stored with the gate runs, the
validator's record, the findings and the audit events.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import Any

from charter import __version__
from charter.entities import Finding, GateRun, ModelVersion
from charter.errors import Conflict, InvalidArgument, NotFound
from charter.registry.service import Registry
from charter.storage import jsonutil

KINDS = ("model-card", "validation", "mrm")
SCHEMA_VERSION = 1
_RETRIES = 5


def document_sha256(doc: dict[str, Any]) -> str:
    """SHA-256 of the document's canonical JSON, without its own ``document_sha256`` field."""
    body = {k: v for k, v in doc.items() if k != "document_sha256"}
    return hashlib.sha256(jsonutil.dumps(body).encode()).hexdigest()


def _provenance(registry: Registry, kind: str, as_of: date) -> dict[str, Any]:
    head = registry.audit_checkpoint()
    return {
        "document": kind,
        "schema_version": SCHEMA_VERSION,
        "generator": f"charter {__version__}",
        "as_of": as_of.isoformat(),
        "audit_head_seq": head.seq if head else 0,
        "audit_head_hash": head.hash if head else None,
        "audit_head_time": head.ts if head else None,
    }


def _stable(
    registry: Registry, kind: str, as_of: date | None, build: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    day = as_of or registry.clock().date()
    for _ in range(_RETRIES):
        before = _provenance(registry, kind, day)
        body = build()
        after = _provenance(registry, kind, day)
        if before == after:
            doc = {"provenance": before, **body}
            doc["document_sha256"] = document_sha256(doc)
            return doc
    raise Conflict(
        f"the record kept changing while the {kind} document was built",
        remedy="build it again when the registry is quieter",
    )


# ------------------------------------------------------------------------------------ pieces
def _version_ref(registry: Registry, name: str, version: int | str | None) -> ModelVersion:
    if version is None:
        m = registry.get_model(name)
        if m.champion_version is None:
            raise InvalidArgument(
                f"{name} has no champion; say which version the document is about",
                field="version",
                remedy=f"pass a version number (charter versions list {name})",
            )
        return registry.get_version(name, m.champion_version)
    return registry.resolve(name, version)


def _latest_run(registry: Registry, v: ModelVersion) -> GateRun | None:
    runs = [
        r
        for r in registry.list_gate_runs(v.model_name, v.version)
        if r.artifact_sha256 == v.artifact_sha256
    ]
    return runs[-1] if runs else None


def _gate(run: GateRun | None, gate: str) -> dict[str, Any] | None:
    if run is None:
        return None
    for g in run.report.get("gates", []):
        if g.get("gate") == gate:
            return dict(g)
    return None


def _finding(f: Finding) -> dict[str, Any]:
    return {
        "id": f.id,
        "model": f.model_name,
        "version": f.version,
        "severity": str(f.severity),
        "title": f.title,
        "description": f.description,
        "remediation_owner": f.remediation_owner,
        "due_date": f.due_date.isoformat(),
        "status": str(f.status),
        "raised_by": f.raised_by,
        "raised_at": f.raised_at.isoformat(),
        "resolution": f.resolution,
        "closure_note": f.closure_note,
    }


def _findings(registry: Registry, name: str | None, as_of: date) -> list[dict[str, Any]]:
    out = []
    for f in registry.list_findings(name=name):
        d = _finding(f)
        d["overdue"] = str(f.status) != "closed" and f.due_date < as_of
        out.append(d)
    return out


def _validations(registry: Registry, v: ModelVersion) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "validator": r.validator,
            "recommendation": r.recommendation,
            "outcome": r.outcome,
            "summary": r.summary,
            "conditions": list(r.conditions),
            "sections": dict(r.sections),
            "gate_run_id": r.gate_run_id,
            "artifact_sha256": r.artifact_sha256,
            "created_at": r.created_at.isoformat(),
        }
        for r in registry.list_validations(v.model_name, v.version)
    ]


def _approvals(registry: Registry, v: ModelVersion) -> list[dict[str, Any]]:
    return [
        {
            "id": a.id,
            "approver": a.approver,
            "decision": str(a.decision),
            "conditions": list(a.conditions),
            "comment": a.comment,
            "artifact_sha256": a.artifact_sha256,
            "created_at": a.created_at.isoformat(),
        }
        for a in registry.list_approvals(v.model_name, v.version)
    ]


def _run_summary(run: GateRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "id": run.id,
        "run_by": run.run_by,
        "created_at": run.created_at.isoformat(),
        "passed": run.passed,
        "failed_gates": list(run.failed_gates),
        "policy_name": run.policy_name,
        "policy_sha256": run.policy_sha256,
        "report_sha256": run.report_sha256,
        "artifact_sha256": run.artifact_sha256,
        "training_data_hash": run.training_data_hash,
        "threshold": run.report.get("threshold"),
        "threshold_source": run.report.get("threshold_source"),
        "tier": run.report.get("tier"),
        "champion_version": run.report.get("champion_version"),
        "datasets": run.report.get("datasets", {}),
        "gates": [
            {
                "gate": g["gate"],
                "passed": g["passed"],
                "summary": g["summary"],
                "criteria": g["criteria"],
                "warnings": g["warnings"],
            }
            for g in run.report.get("gates", [])
        ],
    }


def _details(registry: Registry, v: ModelVersion) -> dict[str, Any]:
    m = registry.get_model(v.model_name)
    env = v.environment or {}
    return {
        "name": m.name,
        "version": v.version,
        "stage": v.stage.value,
        "aliases": sorted(v.aliases),
        "risk_tier": m.risk_tier.value,
        "owner": m.owner,
        "team": m.team,
        "purpose": m.purpose,
        "business_use": m.business_use,
        "decision_type": m.decision_type,
        "algorithm": v.source.get("model_class"),
        "artifact_sha256": v.artifact_sha256,
        "artifact_format": v.artifact_format,
        "developer": v.author,
        "registered_at": v.created_at.isoformat(),
        "description": v.description,
        "code_commit": v.code_commit,
        "hyperparameters": v.hyperparameters,
        "seeds": v.seeds,
        "decision_threshold": v.decision_threshold,
        "python": env.get("python"),
        "packages": env.get("packages", {}),
        "upstream": list(m.upstream),
        "downstream": list(m.downstream),
        "last_review": m.last_review.isoformat() if m.last_review else None,
        "next_review": m.next_review.isoformat(),
    }


def _training(v: ModelVersion) -> dict[str, Any]:
    td = v.training_data
    return {
        "dataset_id": td.dataset_id if td else None,
        "content_hash": td.content_hash if td else None,
        "rows": td.rows if td else None,
        "columns": list(td.columns) if td else [],
        "date_from": td.date_from if td else None,
        "date_to": td.date_to if td else None,
        "features": [f.to_dict() for f in v.feature_schema],
        "training_seconds": v.training_seconds,
        "registered_metrics": v.metrics,
    }


def _alias_history(registry: Registry, name: str) -> list[dict[str, Any]]:
    events = registry.audit_log(model_name=name, action="alias.*")
    return [
        {
            "seq": e.seq,
            "time": e.ts,
            "action": e.action,
            "alias": e.payload.get("alias"),
            "version": e.payload.get("version"),
            "actor": e.actor,
        }
        for e in events
    ]


# -------------------------------------------------------------------------------- model card
def model_card(
    registry: Registry, name: str, version: int | str | None = None, *, as_of: date | None = None
) -> dict[str, Any]:
    """The model card of a version (the champion when ``version`` is None)."""

    def build() -> dict[str, Any]:
        v = _version_ref(registry, name, version)
        run = _latest_run(registry, v)
        narrative = registry.get_model_narrative(name)
        text = dict(narrative.sections)
        perf = _gate(run, "performance")
        fair = _gate(run, "fairness")
        calib = _gate(run, "calibration")
        findings = [
            f
            for f in _findings(registry, name, as_of or registry.clock().date())
            if f["version"] in (None, v.version)
        ]
        open_findings = [f for f in findings if f["status"] != "closed"]
        approvals = _approvals(registry, v)
        conditions = [c for a in approvals for c in a["conditions"]]
        missing = [s for s in ("intended_use", "ethical_considerations") if not text.get(s)]
        return {
            "model_details": _details(registry, v),
            "intended_use": {
                "primary_use": text.get("intended_use"),
                "business_use": registry.get_model(name).business_use,
                "out_of_scope_uses": text.get("out_of_scope_uses"),
            },
            "factors": {
                "narrative": text.get("factors"),
                "evaluated_groups": {
                    attr: {"column": e.get("column"), "groups": [g["group"] for g in e["groups"]]}
                    for attr, e in ((fair or {}).get("evidence", {}).get("attributes", {})).items()
                },
            },
            "metrics": {
                "threshold": (run.report.get("threshold") if run else v.decision_threshold),
                "measures": [
                    "AUC",
                    "Gini",
                    "KS",
                    "precision and recall at the threshold",
                    "expected calibration error",
                    "Hosmer-Lemeshow",
                    "demographic parity difference",
                    "equalized odds difference",
                    "disparate impact ratio",
                ],
                "policy": None
                if run is None
                else {"name": run.policy_name, "sha256": run.policy_sha256},
            },
            "evaluation_data": (run.report.get("datasets", {}) if run else {}),
            "training_data": _training(v),
            "quantitative_analyses": {
                "performance": (perf or {}).get("evidence", {}).get("metrics", {}),
                "champion_comparison": (perf or {}).get("evidence", {}).get("champion", {}),
                "fairness": (fair or {}).get("evidence", {}).get("attributes", {}),
                "calibration": (calib or {}).get("evidence"),
                "global_explanations": run.report.get("explanations") if run else None,
            },
            "ethical_considerations": text.get("ethical_considerations"),
            "caveats_and_recommendations": {
                "narrative": text.get("caveats_and_recommendations"),
                "conditions_of_approval": conditions,
                "open_findings": open_findings,
                "gate_warnings": [
                    w for g in (run.report["gates"] if run else []) for w in g["warnings"]
                ],
            },
            "governance": {
                "gate_run": _run_summary(run),
                "validations": _validations(registry, v),
                "approvals": approvals,
                "alias_history": _alias_history(registry, name),
                "narrative_revision": narrative.revision,
            },
            "gaps": [
                f"no {s.replace('_', ' ')} has been written (charter narrative set)"
                for s in missing
            ]
            + ([] if run else ["no gate run is recorded for this artifact (charter validate)"]),
        }

    return _stable(registry, "model-card", as_of, build)


# ------------------------------------------------------------------------- validation report
def validation_report(
    registry: Registry, name: str, version: int | str | None = None, *, as_of: date | None = None
) -> dict[str, Any]:
    day = as_of or registry.clock().date()

    def build() -> dict[str, Any]:
        v = _version_ref(registry, name, version)
        run = _latest_run(registry, v)
        if run is None:
            raise NotFound(
                f"{name} v{v.version} has no gate run for its artifact; a validation report "
                "needs one",
                field="version",
                remedy=f"run charter validate {name} {v.version} --policy FILE --holdout FILE",
            )
        vals = _validations(registry, v)
        latest = vals[-1] if vals else None
        sections = dict(latest["sections"]) if latest else {}
        findings = [f for f in _findings(registry, name, day) if f["version"] in (None, v.version)]
        approvals = _approvals(registry, v)
        perf = _gate(run, "performance")
        warnings = [f"{g['gate']}: {w}" for g in run.report.get("gates", []) for w in g["warnings"]]
        return {
            "scope": {
                "narrative": sections.get("scope"),
                "model": _details(registry, v),
                "policy": run.report.get("policy", {}),
                "policy_text": run.policy_text,
                "gate_run": _run_summary(run),
            },
            "conceptual_soundness": {
                "narrative": sections.get("conceptual_soundness"),
                "algorithm": v.source.get("model_class"),
                "hyperparameters": v.hyperparameters,
                "features": [f.to_dict() for f in v.feature_schema],
                "training_data": _training(v),
                "global_explanations": run.report.get("explanations"),
            },
            "data_quality": _gate(run, "data_quality"),
            "outcomes_analysis": {
                "performance": perf,
                "calibration": _gate(run, "calibration"),
                "stability": _gate(run, "stability"),
                "fairness": _gate(run, "fairness"),
            },
            "benchmarking": {
                "benchmark": _gate(run, "benchmark"),
                "champion": (perf or {}).get("evidence", {}).get("champion", {}),
            },
            "sensitivity": _gate(run, "sensitivity"),
            "limitations": {"narrative": sections.get("limitations"), "gate_warnings": warnings},
            "findings": findings,
            "conclusion": {
                "narrative": sections.get("conclusion"),
                "gates_passed": run.passed,
                "failed_gates": list(run.failed_gates),
                "validations": vals,
                "recommendation": latest["recommendation"] if latest else None,
                "validator": latest["validator"] if latest else None,
                "approvals": approvals,
                "conditions": sorted(
                    {c for a in approvals for c in a["conditions"]}
                    | {c for r in vals for c in r["conditions"]}
                ),
            },
        }

    return _stable(registry, "validation", as_of, build)


# ------------------------------------------------------------------------------- MRM report
def _previous_report_seq(registry: Registry) -> int:
    events = registry.audit_log(action="report.generated")
    seqs = [e.payload.get("audit_head_seq", 0) for e in events if e.payload.get("kind") == "mrm"]
    return int(seqs[-1]) if seqs else 0


def mrm_report(
    registry: Registry, *, since_seq: int | None = None, as_of: date | None = None
) -> dict[str, Any]:
    """The committee pack: every model, its state, and what changed since the last pack."""
    day = as_of or registry.clock().date()

    def build() -> dict[str, Any]:
        models = registry.list_models()
        findings = _findings(registry, None, day)
        open_f = [f for f in findings if f["status"] != "closed"]
        rows = []
        by_tier_status: dict[str, Counter[str]] = {}
        for m in models:
            by_tier_status.setdefault(m.risk_tier.value, Counter())[m.status] += 1
            canary = registry.canary(m.name)
            champion_run = None
            if m.champion_version is not None:
                champion_run = _latest_run(
                    registry, registry.get_version(m.name, m.champion_version)
                )
            mine = [f for f in open_f if f["model"] == m.name]
            rows.append(
                {
                    "name": m.name,
                    "risk_tier": m.risk_tier.value,
                    "status": m.status,
                    "owner": m.owner,
                    "champion_version": m.champion_version,
                    "next_review": m.next_review.isoformat(),
                    "review_overdue": m.next_review < day and m.status != "retired",
                    "open_findings": len(mine),
                    "open_high_findings": sum(f["severity"] == "high" for f in mine),
                    "champion_gates": None
                    if champion_run is None
                    else {
                        "passed": champion_run.passed,
                        "run_id": champion_run.id,
                        "failed_gates": list(champion_run.failed_gates),
                    },
                    "canary": None
                    if canary is None
                    else {
                        "version": canary.get("version"),
                        "state": canary.get("state"),
                        "share": canary.get("share"),
                    },
                }
            )
        start = _previous_report_seq(registry) if since_seq is None else since_seq
        events = [e for e in registry.audit_log() if e.seq > start]
        notable = (
            "model.created",
            "version.registered",
            "version.approve",
            "version.approval_decided",
            "alias.set",
            "alias.removed",
            "canary.",
            "finding.",
            "model.retired",
            "override",
            "validation.gates_run",
        )
        changes = [
            {
                "seq": e.seq,
                "time": e.ts,
                "actor": e.actor,
                "action": e.action,
                "subject": e.subject,
            }
            for e in events
            if e.action.startswith(notable)
        ]
        tiers = sorted(by_tier_status, key=["high", "medium", "low"].index)
        return {
            "inventory": {
                "models": len(models),
                "in_production": sum(r["status"] == "production" for r in rows),
                "by_tier_and_status": {t: dict(sorted(by_tier_status[t].items())) for t in tiers},
                "models_list": rows,
            },
            "monitoring_status": {
                "note": "Monitoring runs (charter monitor) are not part of this release yet; "
                "the status below is what the registry records: canary rollouts and the gate "
                "results of each champion.",
                "canaries": [r for r in rows if r["canary"] is not None],
                "champions_failing_gates": [
                    r["name"]
                    for r in rows
                    if r["champion_gates"] and not r["champion_gates"]["passed"]
                ],
            },
            "open_findings": open_f,
            "overdue_findings": [f for f in open_f if f["overdue"]],
            "overdue_reviews": [r for r in rows if r["review_overdue"]],
            "changes_since_last_report": {
                "since_seq": start,
                "events": len(events),
                "by_action": dict(sorted(Counter(e.action for e in events).items())),
                "notable": changes,
            },
        }

    return _stable(registry, "mrm", as_of, build)


def build_document(
    registry: Registry,
    kind: str,
    name: str | None = None,
    version: int | str | None = None,
    *,
    as_of: date | None = None,
) -> dict[str, Any]:
    if kind not in KINDS:
        raise InvalidArgument(
            f"unknown document {kind!r}", field="kind", remedy=f"use one of: {', '.join(KINDS)}"
        )
    if kind == "mrm":
        return mrm_report(registry, as_of=as_of)
    if name is None:
        raise InvalidArgument(
            f"the {kind} document is about one model", field="name", remedy="name the model"
        )
    if kind == "model-card":
        return model_card(registry, name, version, as_of=as_of)
    return validation_report(registry, name, version, as_of=as_of)


def subject(doc: dict[str, Any]) -> tuple[str | None, int | None]:
    """The model and version a document is about (both None for the MRM pack)."""
    details = doc.get("model_details") or (doc.get("scope") or {}).get("model") or {}
    return details.get("name"), details.get("version")


def publish(
    registry: Registry,
    actor: Any,
    doc: dict[str, Any],
    out_dir: Any,
    formats: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Write the document (JSON, HTML, PDF) and record its generation as an audit event with
    its sha256 and the chain head it was built from; returns the path of each format."""
    from charter.reports import render

    paths = render.write_document(doc, out_dir, formats=formats or render.FORMATS)
    model, version = subject(doc)
    registry.record_report(
        actor,
        doc["provenance"]["document"],
        model_name=model,
        version=version,
        document_sha256=doc["document_sha256"],
        audit_head_seq=doc["provenance"]["audit_head_seq"],
        files=[p.name for p in paths.values()],
    )
    return paths
