"""The model inventory export: every model with the fields a model risk team tracks, the count of
models in production by risk tier, the overdue reviews and the validation findings not closed yet.
Data first (``Inventory``), rendered to CSV, JSON or Markdown second.

Findings columns: ``open_findings`` counts findings not closed (open or remediated, awaiting a
validator's closure), ``open_high_findings`` those of high severity, ``overdue_findings`` those
past their due date (by the registry's clock)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from charter.entities import Finding, FindingStatus, Model, RiskTier, Severity
from charter.errors import InvalidArgument
from charter.registry.service import Registry

FORMATS = ("csv", "json", "md")
COLUMNS = (
    "name",
    "risk_tier",
    "status",
    "champion_version",
    "owner",
    "team",
    "purpose",
    "business_use",
    "decision_type",
    "upstream",
    "downstream",
    "review_cadence_months",
    "last_review",
    "next_review",
    "review_overdue",
    "open_findings",
    "open_high_findings",
    "overdue_findings",
    "tags",
)


@dataclass(frozen=True)
class FindingCounts:
    open: int = 0  # not closed: open or remediated
    open_high: int = 0
    overdue: int = 0


def count_findings(findings: list[Finding]) -> dict[str, FindingCounts]:
    """Per model: findings not closed, those of high severity, and those overdue."""
    acc: dict[str, list[int]] = {}
    for f in findings:
        if f.status is FindingStatus.CLOSED:
            continue
        c = acc.setdefault(f.model_name, [0, 0, 0])
        c[0] += 1
        c[1] += f.severity is Severity.HIGH
        c[2] += f.overdue
    return {name: FindingCounts(*c) for name, c in acc.items()}


@dataclass(frozen=True)
class Inventory:
    generated_at: str
    models: tuple[Model, ...]
    audit_head_seq: int | None
    audit_head_hash: str | None
    findings: dict[str, FindingCounts] = field(default_factory=dict)

    def findings_of(self, name: str) -> FindingCounts:
        return self.findings.get(name, FindingCounts())

    @property
    def in_production_by_tier(self) -> dict[str, int]:
        counts = {t.value: 0 for t in RiskTier}
        for m in self.models:
            if m.status == "production":
                counts[m.risk_tier.value] += 1
        return counts

    @property
    def overdue(self) -> tuple[Model, ...]:
        return tuple(m for m in self.models if m.review_overdue)

    def summary(self) -> dict[str, Any]:
        by_tier = self.in_production_by_tier
        return {
            "models": len(self.models),
            "in_production": sum(by_tier.values()),
            "in_production_by_tier": by_tier,
            "overdue_reviews": [m.name for m in self.overdue],
            "open_findings": sum(c.open for c in self.findings.values()),
            "open_high_findings": sum(c.open_high for c in self.findings.values()),
            "overdue_findings": sum(c.overdue for c in self.findings.values()),
        }


def build(registry: Registry) -> Inventory:
    head = registry.audit_checkpoint()
    models = tuple(registry.list_models())
    return Inventory(
        generated_at=registry.clock().isoformat(timespec="seconds"),
        models=models,
        audit_head_seq=head.seq if head else None,
        audit_head_hash=head.hash if head else None,
        findings=count_findings(registry.list_findings()),
    )


def _row(m: Model, f: FindingCounts) -> dict[str, Any]:
    return {
        "name": m.name,
        "risk_tier": m.risk_tier.value,
        "status": m.status,
        "champion_version": m.champion_version,
        "owner": m.owner,
        "team": m.team,
        "purpose": m.purpose,
        "business_use": m.business_use,
        "decision_type": m.decision_type,
        "upstream": list(m.upstream),
        "downstream": list(m.downstream),
        "review_cadence_months": m.review_cadence_months,
        "last_review": m.last_review.isoformat() if m.last_review else None,
        "next_review": m.next_review.isoformat(),
        "review_overdue": m.review_overdue,
        "open_findings": f.open,
        "open_high_findings": f.open_high,
        "overdue_findings": f.overdue,
        "tags": dict(m.tags),
    }


def to_json(inv: Inventory) -> str:
    return json.dumps(
        {
            "generated_at": inv.generated_at,
            "audit_head": {"seq": inv.audit_head_seq, "hash": inv.audit_head_hash},
            "summary": inv.summary(),
            "models": [_row(m, inv.findings_of(m.name)) for m in inv.models],
        },
        indent=2,
        sort_keys=False,
    )


def to_csv(inv: Inventory) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for m in inv.models:
        r = _row(m, inv.findings_of(m.name))
        r["upstream"] = ";".join(r["upstream"])
        r["downstream"] = ";".join(r["downstream"])
        r["tags"] = ";".join(f"{k}={v}" for k, v in sorted(r["tags"].items()))
        w.writerow(r)
    return buf.getvalue()


def _md_cell(v: Any) -> str:
    if isinstance(v, list):
        v = ", ".join(v)
    elif isinstance(v, dict):
        v = ", ".join(f"{k}={x}" for k, x in sorted(v.items()))
    elif v is None:
        v = ""
    return str(v).replace("|", "\\|").replace("\n", " ")


def to_markdown(inv: Inventory) -> str:
    s = inv.summary()
    t = s["in_production_by_tier"]
    lines = [
        "# Model inventory",
        "",
        f"Generated {inv.generated_at} from audit event {inv.audit_head_seq} "
        f"(hash {inv.audit_head_hash}).",
        "",
        f"**{s['in_production']} models in production:** {t['high']} high, {t['medium']} medium, "
        f"{t['low']} low risk. {len(s['overdue_reviews'])} reviews overdue. "
        f"{s['open_findings']} findings not closed ({s['open_high_findings']} high), "
        f"{s['overdue_findings']} overdue.",
        "",
    ]
    cols = (
        "name",
        "risk_tier",
        "status",
        "champion_version",
        "owner",
        "next_review",
        "review_overdue",
        "open_findings",
        "open_high_findings",
        "overdue_findings",
    )
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "---|" * len(cols))
    for m in inv.models:
        r = _row(m, inv.findings_of(m.name))
        lines.append("| " + " | ".join(_md_cell(r[c]) for c in cols) + " |")
    if inv.overdue:
        lines += ["", "## Overdue reviews", ""]
        lines += [f"- {m.name} ({m.risk_tier.value}): due {m.next_review}" for m in inv.overdue]
    return "\n".join(lines) + "\n"


def render(inv: Inventory, fmt: str) -> str:
    if fmt == "csv":
        return to_csv(inv)
    if fmt == "json":
        return to_json(inv)
    if fmt == "md":
        return to_markdown(inv)
    raise InvalidArgument(
        f"unknown inventory format {fmt!r}", field="format", remedy="use csv, json or md"
    )
