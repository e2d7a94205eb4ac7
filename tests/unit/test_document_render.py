"""The regulatory documents rendered as HTML (and PDF): sections in order, charts drawn, nothing
fetched, nothing invented, the same bytes every time.

The documents are assembled without a database, with the keys ``charter.reports.documents``
produces; the gate evidence inside them comes from actually running the gates of
``charter.validation.gates`` on small synthetic data, stored and reloaded as JSON as a gate run is.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from charter.entities import FeatureSpec, FeatureType
from charter.errors import InvalidArgument
from charter.reports import render
from charter.reports.documents import document_sha256
from charter.storage import jsonutil
from charter.validation import gates as g
from charter.validation.policy import parse_policy

MODEL_CARD_SECTIONS = [
    "Model details",
    "Intended use",
    "Factors",
    "Metrics",
    "Evaluation data",
    "Training data",
    "Quantitative analyses",
    "Ethical considerations",
    "Caveats and recommendations",
    "Governance",
    "Gaps",
]
VALIDATION_SECTIONS = [
    "Scope",
    "Conceptual soundness",
    "Data quality",
    "Outcomes analysis and backtesting",
    "Benchmarking",
    "Sensitivity",
    "Limitations",
    "Findings",
    "Conclusion and conditions",
]
MRM_SECTIONS = [
    "Inventory by tier and status",
    "Monitoring status",
    "Open findings",
    "Overdue reviews",
    "Changes since the last report",
]

POLICY = """
name = "retail-credit"
version = "2026.1"

[data]
label = "default"

[gates.data_quality]
[gates.performance]
datasets = ["holdout", "out_of_time"]
min_auc = 0.99
[gates.stability]
[gates.fairness]
min_group_size = 20
[gates.fairness.attributes.sex]
column = "sex"
[gates.calibration]
[gates.sensitivity]
[gates.benchmark]
model = "logistic_regression"
"""

SCHEMA = (
    FeatureSpec("income", FeatureType.NUMERIC, False, 0.0, 120.0),
    FeatureSpec("age", FeatureType.NUMERIC, True, 18.0, 79.0),
)
HEAD_HASH = "9f2c4e6a8b0d1f3e5a7c9b1d3f5e7a9c" * 2
SVG_NS = 'xmlns="http://www.w3.org/2000/svg"'


# ------------------------------------------------------------------------------------ data
def frame(n: int, seed: int, income_shift: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "income": rng.normal(50.0 + income_shift, 10.0, n),
            "age": rng.integers(18, 80, n).astype(float),
            "sex": rng.choice(["male", "female"], n),
        }
    )
    logit = -1.0 - (x["income"] - 50) / 10 - (x["age"] - 45) / 25
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    return x, y


def plain(obj: Any) -> Any:
    """As stored: canonical JSON and back (NaN becomes null, numpy becomes plain numbers)."""
    return json.loads(jsonutil.dumps(obj))


@pytest.fixture(scope="module")
def gate_report() -> dict[str, Any]:
    """A gate run's report, as ``ValidationRun.to_dict`` writes it, from the real gates."""
    policy = parse_policy(POLICY, tier="high")
    data = {
        "train": frame(1_500, 0),
        "holdout": frame(800, 1),
        "out_of_time": frame(800, 2, income_shift=4.0),
    }
    names = [f.name for f in SCHEMA]
    model = LogisticRegression().fit(data["train"][0][names], data["train"][1])
    weak = LogisticRegression().fit(data["train"][0][["age"]], data["train"][1])

    def score(f: pd.DataFrame) -> np.ndarray:
        return np.asarray(model.predict_proba(f[names])[:, 1], dtype=float)

    datasets = {
        k: g.Dataset(k, x, y, score(x), f"{k}-sha256-" + "0" * 40) for k, (x, y) in data.items()
    }
    ctx = g.Context(SCHEMA, 0.3, score, datasets, candidate_family="linear")
    ctx.champion = (2, lambda f: weak.predict_proba(f[["age"]])[:, 1])
    results = []
    for gate, settings in policy.gates.items():
        if gate == "fairness":
            results.append(g.fairness(ctx, settings, policy.attributes))
        else:
            results.append(getattr(g, gate)(ctx, settings))
    return plain(
        {
            "model": "retail-pd",
            "version": 3,
            "tier": "high",
            "artifact_sha256": "a" * 64,
            "training_data_hash": "t" * 64,
            "policy": policy.summary(),
            "datasets": {
                k: {"sha256": d.sha256, "rows": d.rows, "bad_rate": float(d.y.mean())}
                for k, d in datasets.items()
            },
            "threshold": 0.3,
            "threshold_source": "version",
            "champion_version": 2,
            "passed": all(r.passed for r in results),
            "failed_gates": [r.gate for r in results if not r.passed],
            "gates": [r.to_dict() for r in results],
        }
    )


def gate(report: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((dict(x) for x in report["gates"] if x["gate"] == name), None)


def run_summary(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": 7,
        "run_by": "vera.validator",
        "created_at": "2026-03-02T10:00:00+00:00",
        "passed": report["passed"],
        "failed_gates": report["failed_gates"],
        "policy_name": report["policy"]["name"],
        "policy_sha256": report["policy"]["sha256"],
        "report_sha256": "r" * 64,
        "artifact_sha256": report["artifact_sha256"],
        "training_data_hash": report["training_data_hash"],
        "threshold": report["threshold"],
        "threshold_source": report["threshold_source"],
        "tier": report["tier"],
        "champion_version": report["champion_version"],
        "datasets": report["datasets"],
        "gates": [
            {k: x[k] for k in ("gate", "passed", "summary", "criteria", "warnings")}
            for x in report["gates"]
        ],
    }


def details() -> dict[str, Any]:
    return {
        "name": "retail-pd",
        "version": 3,
        "stage": "validation",
        "aliases": ["challenger"],
        "risk_tier": "high",
        "owner": "ada.owner",
        "team": "retail risk",
        "purpose": "probability of default of retail loan applicants",
        "business_use": "approve or decline personal loans up to 25k",
        "decision_type": "automated with manual review",
        "algorithm": "sklearn.linear_model.LogisticRegression",
        "artifact_sha256": "a" * 64,
        "artifact_format": "skops",
        "developer": "dev.eloper",
        "registered_at": "2026-02-20T09:00:00+00:00",
        "description": "logistic scorecard on income and age",
        "code_commit": "0123abcd",
        "hyperparameters": {"C": 1.0, "max_iter": 100, "penalty": "l2"},
        "seeds": {"numpy": 0},
        "decision_threshold": 0.3,
        "python": "3.11.9",
        "packages": {"scikit-learn": "1.5.2", "numpy": "2.1.0"},
        "upstream": [],
        "downstream": ["collections-strategy"],
        "last_review": None,
        "next_review": "2027-02-20",
    }


def training() -> dict[str, Any]:
    return {
        "dataset_id": "ds-retail-2025",
        "content_hash": "t" * 64,
        "rows": 1500,
        "columns": ["income", "age", "sex", "default"],
        "date_from": "2024-01-01",
        "date_to": "2025-06-30",
        "features": [f.to_dict() for f in SCHEMA],
        "training_seconds": 1.25,
        "registered_metrics": {"auc": 0.74},
    }


def finding(fid: int, severity: str, *, overdue: bool = False) -> dict[str, Any]:
    return {
        "id": fid,
        "model": "retail-pd",
        "version": 3,
        "severity": severity,
        "title": f"finding {fid}: age is not scored when missing",
        "description": "the model raises on a missing age although the schema allows it",
        "remediation_owner": "ada.owner",
        "due_date": "2026-04-01",
        "status": "open",
        "raised_by": "vera.validator",
        "raised_at": "2026-03-02T11:00:00+00:00",
        "resolution": None,
        "closure_note": None,
        "overdue": overdue,
    }


def finalize(kind: str, body: dict[str, Any], as_of: str = "2026-03-15") -> dict[str, Any]:
    doc = {
        "provenance": {
            "document": kind,
            "schema_version": 1,
            "generator": "charter 0.1.0",
            "as_of": as_of,
            "audit_head_seq": 42,
            "audit_head_hash": HEAD_HASH,
            "audit_head_time": "2026-03-14T17:30:00.000000Z",
        },
        **body,
    }
    doc["document_sha256"] = document_sha256(doc)
    return doc


def model_card_doc(report: dict[str, Any] | None, **narrative: str | None) -> dict[str, Any]:
    text = {k: v for k, v in narrative.items() if v}
    fair = gate(report, "fairness") if report else None
    perf = gate(report, "performance") if report else None
    calib = gate(report, "calibration") if report else None
    missing = [s for s in ("intended_use", "ethical_considerations") if not text.get(s)]
    body = {
        "model_details": details(),
        "intended_use": {
            "primary_use": text.get("intended_use"),
            "business_use": details()["business_use"],
            "out_of_scope_uses": text.get("out_of_scope_uses"),
        },
        "factors": {
            "narrative": text.get("factors"),
            "evaluated_groups": {
                attr: {"column": e.get("column"), "groups": [x["group"] for x in e["groups"]]}
                for attr, e in (fair or {}).get("evidence", {}).get("attributes", {}).items()
            },
        },
        "metrics": {
            "threshold": 0.3,
            "measures": ["AUC", "Gini", "KS", "precision and recall at the threshold"],
            "policy": None if report is None else {"name": "retail-credit", "sha256": "p" * 64},
        },
        "evaluation_data": report["datasets"] if report else {},
        "training_data": training(),
        "quantitative_analyses": {
            "performance": (perf or {}).get("evidence", {}).get("metrics", {}),
            "champion_comparison": (perf or {}).get("evidence", {}).get("champion", {}),
            "fairness": (fair or {}).get("evidence", {}).get("attributes", {}),
            "calibration": (calib or {}).get("evidence"),
        },
        "ethical_considerations": text.get("ethical_considerations"),
        "caveats_and_recommendations": {
            "narrative": text.get("caveats_and_recommendations"),
            "conditions_of_approval": ["monitor the approval rate by sex monthly"],
            "open_findings": [finding(1, "high")],
            "gate_warnings": [w for x in (report or {}).get("gates", []) for w in x["warnings"]],
        },
        "governance": {
            "gate_run": None if report is None else run_summary(report),
            "validations": [],
            "approvals": [
                {
                    "id": 1,
                    "approver": "carl.committee",
                    "decision": "approved_with_conditions",
                    "conditions": ["monitor the approval rate by sex monthly"],
                    "comment": "",
                    "artifact_sha256": "a" * 64,
                    "created_at": "2026-03-10T12:00:00+00:00",
                }
            ],
            "alias_history": [
                {
                    "seq": 40,
                    "time": "2026-03-11T08:00:00.000000Z",
                    "action": "alias.set",
                    "alias": "challenger",
                    "version": 3,
                    "actor": "ada.owner",
                }
            ],
            "narrative_revision": 2,
        },
        "gaps": [
            f"no {s.replace('_', ' ')} has been written (charter narrative set)" for s in missing
        ]
        + ([] if report else ["no gate run is recorded for this artifact (charter validate)"]),
    }
    return finalize("model-card", body)


def validation_doc(report: dict[str, Any], *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    def gate_of(name: str) -> dict[str, Any] | None:
        return None if name in drop else gate(report, name)

    perf = gate_of("performance")
    body = {
        "scope": {
            "narrative": "Version 3 of the retail PD model, before it replaces version 2.",
            "model": details(),
            "policy": report["policy"],
            "policy_text": POLICY,
            "gate_run": run_summary(report),
        },
        "conceptual_soundness": {
            "narrative": None,
            "algorithm": "sklearn.linear_model.LogisticRegression",
            "hyperparameters": details()["hyperparameters"],
            "features": [f.to_dict() for f in SCHEMA],
            "training_data": training(),
        },
        "data_quality": gate_of("data_quality"),
        "outcomes_analysis": {
            "performance": perf,
            "calibration": gate_of("calibration"),
            "stability": gate_of("stability"),
            "fairness": gate_of("fairness"),
        },
        "benchmarking": {
            "benchmark": gate_of("benchmark"),
            "champion": (perf or {}).get("evidence", {}).get("champion", {}),
        },
        "sensitivity": gate_of("sensitivity"),
        "limitations": {
            "narrative": None,
            "gate_warnings": [f"{x['gate']}: {w}" for x in report["gates"] for w in x["warnings"]],
        },
        "findings": [finding(1, "high", overdue=True), finding(2, "low")],
        "conclusion": {
            "narrative": None,
            "gates_passed": report["passed"],
            "failed_gates": report["failed_gates"],
            "validations": [],
            "recommendation": None,
            "validator": None,
            "approvals": [],
            "conditions": [],
        },
    }
    return finalize("validation", body)


def model_row(name: str, tier: str, status: str, **over: Any) -> dict[str, Any]:
    row = {
        "name": name,
        "risk_tier": tier,
        "status": status,
        "owner": "ada.owner",
        "champion_version": 1 if status == "production" else None,
        "next_review": "2027-01-01",
        "review_overdue": False,
        "open_findings": 0,
        "open_high_findings": 0,
        "champion_gates": None,
        "canary": None,
    }
    row.update(over)
    return row


def mrm_doc() -> dict[str, Any]:
    rows = [
        model_row(
            "retail-pd",
            "high",
            "production",
            open_findings=1,
            open_high_findings=1,
            champion_gates={"passed": False, "run_id": 7, "failed_gates": ["performance"]},
            canary={
                "version": 3,
                "state": {"step": 1, "status": "running", "decisions_in_step": 120, "reason": ""},
                "share": 0.1,
            },
        ),
        model_row(
            "sme-pd",
            "high",
            "production",
            champion_gates={"passed": True, "run_id": 3, "failed_gates": []},
        ),
        model_row("fraud-cards", "medium", "production"),
        model_row("churn", "low", "development", next_review="2026-01-01", review_overdue=True),
    ]
    open_f = [finding(1, "high", overdue=True)]
    body = {
        "inventory": {
            "models": 4,
            "in_production": 3,
            "by_tier_and_status": {
                "high": {"production": 2},
                "medium": {"production": 1},
                "low": {"development": 1},
            },
            "models_list": rows,
        },
        "monitoring_status": {
            "note": "Monitoring runs (charter monitor) are not part of this release yet; "
            "the status below is what the registry records: canary rollouts and the gate "
            "results of each champion.",
            "canaries": [r for r in rows if r["canary"] is not None],
            "champions_failing_gates": ["retail-pd"],
        },
        "open_findings": open_f,
        "overdue_findings": open_f,
        "overdue_reviews": [r for r in rows if r["review_overdue"]],
        "changes_since_last_report": {
            "since_seq": 30,
            "events": 12,
            "by_action": {"alias.set": 2, "finding.raised": 1, "version.registered": 3},
            "notable": [
                {
                    "seq": 31,
                    "time": "2026-03-01T09:00:00.000000Z",
                    "actor": "dev.eloper",
                    "action": "version.registered",
                    "subject": "retail-pd/3",
                }
            ],
        },
    }
    return finalize("mrm", body)


# ------------------------------------------------------------------------------ helpers
def h2s(html: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", html)


def figures(html: str) -> list[str]:
    return re.findall(r'<figure class="chart">(.*?)</figure>', html, flags=re.S)


def assert_offline(html: str) -> None:
    rest = html.replace(SVG_NS, "")
    assert "http://" not in rest and "https://" not in rest
    assert "<script" not in html.lower()
    assert "url(" not in html and "@import" not in html and " src=" not in html


def assert_drawn(chart: str) -> None:
    assert chart.startswith("<svg") and chart.endswith("</svg>")
    assert re.search(r"<(polyline|path|circle)\b|<rect [^>]*fill-opacity", chart), chart[:300]


@pytest.fixture(scope="module")
def card(gate_report: dict[str, Any]) -> dict[str, Any]:
    return model_card_doc(gate_report, intended_use="Pricing <b>retail</b> loans.\n\nNot SME.")


@pytest.fixture(scope="module")
def validation(gate_report: dict[str, Any]) -> dict[str, Any]:
    return validation_doc(gate_report)


# --------------------------------------------------------------------------------- tests
def test_model_card_has_its_sections_in_order_and_a_provenance_header(
    card: dict[str, Any],
) -> None:
    html = render.render_html(card)
    assert h2s(html) == MODEL_CARD_SECTIONS
    assert "<h1>retail-pd v3</h1>" in html and "As of 2026-03-15" in html
    assert (
        f"Built from audit chain head #42 ({HEAD_HASH[:16]}…) at 2026-03-14T17:30:00.000000Z;"
        in html
    )
    assert f"document sha256 {card['document_sha256'][:16]}…;" in html
    assert "verify with <code>charter audit verify</code>" in html
    assert "does not match" not in html
    for h3 in ("Performance", "Fairness", "Calibration"):
        assert f"<h3>{h3}</h3>" in html
    for metric in (
        "Demographic parity difference",
        "Equalized odds difference",
        "Disparate impact ratio",
    ):
        assert metric in html
    assert "no ethical considerations has been written" in html  # the gaps are listed
    assert_offline(html)


def test_validation_report_has_its_sections_in_order(validation: dict[str, Any]) -> None:
    html = render.render_html(validation)
    assert h2s(html) == VALIDATION_SECTIONS
    assert "<h1>retail-pd v3</h1>" in html
    for h3 in ("Performance", "Calibration", "Stability", "Fairness"):
        assert f"<h3>{h3}</h3>" in html
    assert "not run under this policy" not in html  # every gate ran
    assert_offline(html)


def test_mrm_report_has_its_sections_and_counts() -> None:
    html = render.render_html(mrm_doc())
    assert h2s(html) == MRM_SECTIONS
    assert "<h1>All models</h1>" in html
    assert "3 models in production: 2 high, 1 medium, 0 low" in html
    assert "Monitoring runs (charter monitor) are not part of this release yet" in html
    assert "churn" in html.split("<h2>Overdue reviews</h2>")[1]
    assert "running, step 1" in html
    assert_offline(html)


def test_every_chart_is_a_drawn_svg(card: dict[str, Any], validation: dict[str, Any]) -> None:
    card_html = render.render_html(card)
    val_html = render.render_html(validation)
    mrm_html = render.render_html(mrm_doc())
    # model card: ROC, two score histograms, approval by sex, reliability diagram
    assert len(figures(card_html)) == 5
    # validation: the same, plus PSI, score stability and sensitivity
    assert len(figures(val_html)) == 8
    assert len(figures(mrm_html)) == 2
    for html in (card_html, val_html, mrm_html):
        assert html.count("<svg") == len(figures(html))  # every chart is a figure
        for chart in figures(html):
            assert_drawn(chart)
    charts = " ".join(figures(val_html))
    for title in (
        "ROC curve by data set",
        "Scores on holdout",
        "Scores on out_of_time",
        "Approval rate by sex",
        "Reliability diagram",
        "PSI by feature",
        "Score distribution: holdout against out_of_time",
        "Mean |score change| at ±10%",
    ):
        assert f"<title>{title}" in charts, title
    roc = next(c for c in figures(val_html) if "ROC curve" in c)
    assert roc.count("<polyline") == 2  # one curve per data set
    reliability = next(c for c in figures(val_html) if "Reliability diagram" in c)
    assert "<circle" in reliability and 'stroke-dasharray="4 3"' in reliability
    psi = next(c for c in figures(val_html) if "PSI by feature" in c)
    assert ">warning</text>" in psi and ">limit</text>" in psi  # the policy's bands


def test_narratives_not_written_are_said_so_and_written_ones_are_escaped(
    gate_report: dict[str, Any], card: dict[str, Any], validation: dict[str, Any]
) -> None:
    html = render.render_html(card)
    # out-of-scope uses, factors, ethical considerations, caveats: four unwritten narratives
    assert html.count(render.NOT_WRITTEN) == 4
    assert '<p class="not-written">' + render.NOT_WRITTEN in html
    assert "Pricing &lt;b&gt;retail&lt;/b&gt; loans." in html and "<b>retail" not in html
    assert '<p class="narrative">Not SME.</p>' in html
    written = model_card_doc(
        gate_report,
        intended_use="a",
        out_of_scope_uses="b",
        factors="c",
        ethical_considerations="d",
        caveats_and_recommendations="e",
    )
    written_html = render.render_html(written)
    assert render.NOT_WRITTEN not in written_html
    assert "<h2>Gaps</h2>" not in written_html
    # validation: conceptual soundness, limitations and conclusion are unwritten
    assert render.render_html(validation).count(render.NOT_WRITTEN) == 3


def test_a_failing_criterion_renders_as_fail(validation: dict[str, Any]) -> None:
    html = render.render_html(validation)
    rows = re.findall(r'<tr class="(pass|fail)"><td>AUC</td><td>(\w+)</td>(.*?)</tr>', html)
    assert {(cls, ds) for cls, ds, _ in rows} == {("fail", "holdout"), ("fail", "out_of_time")}
    assert all('<span class="verdict fail">FAIL</span>' in rest for _, _, rest in rows)
    assert all("≥ 0.99" in rest for _, _, rest in rows)
    passing = re.search(r'<tr class="pass"><td>max missing rate</td>(.*?)</tr>', html)
    assert passing and '<span class="verdict pass">pass</span>' in passing.group(1)
    assert "<strong>Performance gate:</strong> " + '<span class="verdict fail">FAIL</span>' in html


def test_a_gate_the_policy_did_not_run_is_said_so(gate_report: dict[str, Any]) -> None:
    doc = validation_doc(gate_report, drop=("sensitivity", "benchmark", "stability"))
    html = render.render_html(doc)
    assert h2s(html) == VALIDATION_SECTIONS
    for name in ("sensitivity", "benchmark", "stability"):
        assert f"The {name} gate was not run under this policy." in html
    assert "PSI by feature" not in html
    # a model card without any gate run: no charts, and it says why
    bare = render.render_html(model_card_doc(None))
    assert h2s(bare) == MODEL_CARD_SECTIONS
    assert figures(bare) == []
    assert "No gate run is recorded for this artifact" in bare
    assert_offline(bare)


def test_the_same_document_renders_to_the_same_string(
    card: dict[str, Any], validation: dict[str, Any]
) -> None:
    for doc in (card, validation, mrm_doc()):
        assert render.render_html(doc) == render.render_html(json.loads(json.dumps(doc)))


def reversed_keys(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: reversed_keys(obj[k]) for k in reversed(list(obj))}
    if isinstance(obj, list):
        return [reversed_keys(v) for v in obj]
    return obj


def test_the_order_of_keys_does_not_change_the_page(
    card: dict[str, Any], validation: dict[str, Any]
) -> None:
    for doc in (card, validation, mrm_doc()):
        assert render.render_html(reversed_keys(doc)) == render.render_html(doc)


def test_a_changed_document_is_flagged_in_its_header() -> None:
    doc = mrm_doc()
    doc["inventory"]["in_production"] = 4
    html = render.render_html(doc)
    assert "does not match the document's content" in html


def test_an_unknown_document_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="not a charter document"):
        render.render_html({"provenance": {"document": "memo"}})
    with pytest.raises(InvalidArgument):
        render.render_html({})


def test_write_document_writes_json_and_html_under_the_default_stem(
    tmp_path: Path, card: dict[str, Any], validation: dict[str, Any]
) -> None:
    paths = render.write_document(card, tmp_path / "out", formats=("json", "html"))
    assert paths == {
        "json": tmp_path / "out" / "model-card_retail-pd_v3.json",
        "html": tmp_path / "out" / "model-card_retail-pd_v3.html",
    }
    assert json.loads(paths["json"].read_text()) == card
    assert paths["json"].read_text() == json.dumps(card, indent=2, sort_keys=True) + "\n"
    assert paths["html"].read_text(encoding="utf-8") == render.render_html(card)
    assert render.default_stem(validation) == "validation_retail-pd_v3"
    assert render.default_stem(mrm_doc()) == "mrm_2026-03-15"
    named = render.write_document(mrm_doc(), tmp_path, stem="pack", formats=("json",))
    assert named == {"json": tmp_path / "pack.json"}
    with pytest.raises(InvalidArgument, match="unknown document format"):
        render.write_document(card, tmp_path, formats=("docx",))


def test_render_pdf_gives_a_pdf(tmp_path: Path) -> None:
    doc = mrm_doc()
    pdf = render.render_pdf(doc)
    assert pdf.startswith(b"%PDF")
    paths = render.write_document(doc, tmp_path, formats=("pdf",))
    assert paths["pdf"].read_bytes().startswith(b"%PDF")
