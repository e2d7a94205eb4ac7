"""Experiments end to end: traffic through the served app (real HTTP and in-process), volume
written straight into the decision log, and the decisions the analysis reaches on it."""

from __future__ import annotations

import http.client
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from scipy import stats as sps
from sqlalchemy import select
from typer.testing import CliRunner

from charter import datasets
from charter.cli import app as cli_app
from charter.clock import ManualClock, iso
from charter.experiment.analysis import (
    analyze_experiment,
    paired_ttest,
    unpaired_auc_test,
)
from charter.experiment.design import build_plan
from charter.experiment.report import render_report_html, report_data
from charter.experiment.store import get_experiment, register_experiment
from charter.registry.service import Registry
from charter.serving.app import create_app
from charter.serving.local import serve_in_thread
from charter.stats.experiments import delong_test
from charter.storage import jsonutil
from charter.storage.schema import decisions, outcomes, shadow_scores
from charter.web import auth

from .conftest import MODEL, Served, add_version, approve, scorecard

SEX = {"sex": {"column": "personal_status_and_sex", "split": ":"}}


# ---------------------------------------------------------------------------------- helpers
def _shuffled_version(served: Served) -> int:
    """A version that learned nothing (trained on permuted labels)."""
    X, y = datasets.german_credit_xy()
    y = np.random.default_rng(7).permutation(y)
    v = served.registry.log_model(
        served.people.dev, MODEL, scorecard(0.3), X=X, y=y, dataset_id="gc", fit=True,
        threshold=0.5,
    )  # fmt: skip
    approve(served.registry, served.people, v.version, y)
    return v.version


def _scores(reg: Registry, version: int) -> np.ndarray:
    X, _ = datasets.german_credit_xy()
    return reg.load_model(MODEL, version).predict_proba(X)[:, 1]


def _log(
    reg: Registry,
    served: Served,
    *,
    version: int,
    variant: str,
    rows: range,
    start: datetime,
    days: float,
    latency_ms: float = 2.0,
    decide: Any = None,
    labels: bool = True,
) -> list[str]:
    """Write decisions (and outcomes) for German Credit rows straight into the decision log,
    spread evenly over ``days`` from ``start``; returns their ids."""
    scores = _scores(reg, version)
    _, y = datasets.german_credit_xy()
    n = len(rows)
    recs, outs = [], []
    for k, i in enumerate(rows):
        did = str(uuid.uuid4())
        s = float(scores[i])
        d = decide(i, s) if decide is not None else ("decline" if s >= 0.5 else "approve")
        recs.append(
            {
                "id": did, "request_id": f"req-{did}", "entity_key": f"applicant-{i}",
                "model_name": MODEL, "version": version, "variant": variant,
                "inputs": jsonutil.dumps(served.rows[i]), "score": s, "threshold": 0.5,
                "decision": d, "reason_codes": "[]", "latency_ms": latency_ms,
                "created_at": iso(start + timedelta(days=days * (k + 0.5) / n)),
            }
        )  # fmt: skip
        if labels:
            outs.append({"decision_id": did, "label": int(y[i]), "observed_at": None,
                         "recorded_at": iso(start)})  # fmt: skip
    with reg.db.write(registry_lock=False) as conn:
        conn.execute(decisions.insert(), recs)
        if outs:
            conn.execute(outcomes.insert(), outs)
    return [r["id"] for r in recs]


def _register(served: Served, name: str, champion: int, challenger: int, **plan: Any) -> Any:
    args: dict[str, Any] = {"primary_metric": "auc", "mde": 0.05, "min_rows": 300,
                            "challenger_share": 0.5}  # fmt: skip
    args.update(plan)
    return register_experiment(served.registry, served.people.app, name, model=MODEL,
                               challenger_version=challenger, champion_version=champion,
                               plan=build_plan(**args))  # fmt: skip


def _now_for(clock: ManualClock) -> datetime:
    """Put the registry's clock at the wall clock, which stamps served decisions."""
    clock.now = datetime.now(UTC) - timedelta(seconds=5)
    return clock.now


# ---------------------------------------------------------------------------------- A/B
def test_a_clearly_worse_challenger_is_stopped(served: Served) -> None:
    reg = served.registry
    bad = _shuffled_version(served)
    e = _register(served, "worse", champion=1, challenger=bad)
    t0 = e.created_at + timedelta(minutes=1)
    _log(reg, served, version=1, variant="champion", rows=range(0, 1000, 2), start=t0, days=3)
    _log(reg, served, version=bad, variant="challenger", rows=range(1, 1000, 2), start=t0, days=3)
    result = analyze_experiment(reg, "worse", until=t0 + timedelta(days=3))
    d = result.decision
    assert d.decision == "stop", d.reasons
    assert "significantly worse on auc" in d.reasons[0]
    # One look per UTC day: 3 days from 09:01 touch 4 calendar days.
    assert d.sequential.stop and d.sequential.p_value < 0.05 and d.sequential.looks == 4
    auc = d.primary
    assert auc.verdict == "worse" and auc.estimate_a > 0.75 > auc.estimate_b + 0.1
    assert not any(g.breached for g in d.guardrails)


def test_a_clearly_better_challenger_with_enough_data_is_promoted(served: Served) -> None:
    reg = served.registry
    bad = _shuffled_version(served)
    good = add_version(reg, served.people, c=0.5)
    e = _register(served, "better", champion=bad, challenger=good)
    t0 = e.created_at + timedelta(hours=1)
    a_ids = _log(reg, served, version=bad, variant="champion", rows=range(0, 1000, 2), start=t0,
                 days=4)  # fmt: skip
    _log(reg, served, version=good, variant="canary", rows=range(1, 1000, 2), start=t0, days=4)
    result = analyze_experiment(reg, "better", until=t0 + timedelta(days=4))
    d = result.decision
    assert d.decision == "promote", d.reasons
    assert d.sample_reached and d.samples["primary_rows"] == {"champion": 500, "challenger": 500}
    # The evidence is exactly the unpaired DeLong comparison of the two arms' labelled rows.
    _, y = datasets.german_credit_xy()
    want = unpaired_auc_test(
        y[0::2].astype(float), _scores(reg, bad)[0::2], y[1::2].astype(float),
        _scores(reg, good)[1::2], confidence=0.95,
    )  # fmt: skip
    got = next(m for m in d.to_dict()["metrics"] if m["metric"] == "auc")
    assert got["tests"]["unpaired_delong"] == pytest.approx(want.to_dict())
    assert got["verdict"] == "better" and "bootstrap" in got["tests"]
    assert len(a_ids) == 500
    json.dumps(result.to_dict(), allow_nan=False)  # JSON-clean evidence


def test_too_little_data_continues_until_the_projected_date(served: Served) -> None:
    reg = served.registry
    v2 = add_version(reg, served.people, c=0.5)
    e = _register(served, "early", champion=1, challenger=v2, primary_metric="approval_rate",
                  min_rows=None, baseline_rate=0.7, max_days=120)  # fmt: skip
    plan = get_experiment(reg, "early").plan
    t0 = e.created_at
    _log(reg, served, version=1, variant="champion", rows=range(0, 40), start=t0, days=2)
    _log(reg, served, version=v2, variant="challenger", rows=range(40, 80), start=t0, days=2)
    as_of = t0 + timedelta(days=2)
    d = analyze_experiment(reg, "early", until=as_of).decision
    assert d.decision == "continue"
    # 40 rows in 2 days = 20 a day per arm; the plan needs n per arm.
    need = max(plan.n_champion, plan.n_challenger)
    assert d.continue_until == as_of.date() + timedelta(days=int(np.ceil((need - 40) / 20)))
    assert d.continue_until < (e.created_at + timedelta(days=120)).date()
    assert "not enough data" in d.reasons[0]
    # With a short maximum duration the date is the deadline.
    e2 = _register(served, "early2", champion=1, challenger=v2, primary_metric="approval_rate",
                   min_rows=None, baseline_rate=0.7, max_days=10)  # fmt: skip
    d2 = analyze_experiment(reg, "early2", since=t0, until=as_of).decision
    assert d2.decision == "continue"
    assert d2.continue_until == (e2.created_at + timedelta(days=10)).date()


# ---------------------------------------------------------------------------------- guardrails
def test_a_slow_challenger_breaches_the_latency_guardrail(served: Served) -> None:
    reg = served.registry
    v2 = add_version(reg, served.people, c=0.5)
    e = _register(served, "slow", champion=1, challenger=v2,
                  guardrails={"max_latency_p99_ms": 100.0})  # fmt: skip
    t0 = e.created_at
    _log(reg, served, version=1, variant="champion", rows=range(0, 100), start=t0, days=1)
    _log(reg, served, version=v2, variant="challenger", rows=range(100, 200), start=t0, days=1,
         latency_ms=400.0)  # fmt: skip
    d = analyze_experiment(reg, "slow", until=t0 + timedelta(days=1)).decision
    assert d.decision == "stop"
    lat = next(g for g in d.guardrails if g.name == "latency_p99_ms")
    assert lat.breached and lat.value == pytest.approx(400.0) and lat.champion_value == 2.0
    assert "latency" in d.reasons[0]


def test_a_challenger_that_declines_one_group_breaches_parity(served: Served) -> None:
    reg = served.registry
    v2 = add_version(reg, served.people, c=0.5)
    e = _register(served, "unfair", champion=1, challenger=v2, protected_attributes=SEX,
                  guardrails={"max_parity_drop": 0.1})  # fmt: skip
    t0 = e.created_at
    X, _ = datasets.german_credit_xy()
    female = X["personal_status_and_sex"].str.startswith("female").to_numpy()

    def harsh(i: int, s: float) -> str:
        return "decline" if female[i] or s >= 0.5 else "approve"

    _log(reg, served, version=1, variant="champion", rows=range(0, 1000, 2), start=t0, days=1)
    _log(reg, served, version=v2, variant="challenger", rows=range(1, 1000, 2), start=t0, days=1,
         decide=harsh)  # fmt: skip
    d = analyze_experiment(reg, "unfair", until=t0 + timedelta(days=1)).decision
    assert d.decision == "stop"
    ratio = next(g for g in d.guardrails if g.name == "parity_ratio:sex")
    assert ratio.breached and ratio.value == 0.0 and ratio.champion_value is not None
    assert ratio.champion_value > 0.8
    drop = next(g for g in d.guardrails if g.name == "parity_drop:sex")
    assert drop.breached and drop.value == pytest.approx(ratio.champion_value)
    (parity,) = d.parity
    groups = {g[0]: g for g in parity.groups}
    assert set(groups) == {"female", "male"} and groups["female"][4] == 0.0
    assert groups["female"][1] == int(female[0::2].sum())


# ---------------------------------------------------------------------------------- shadow
def test_a_shadow_is_judged_by_delong_on_the_same_applicants(
    served: Served, clock: ManualClock
) -> None:
    reg, p = served.registry, served.people
    v2 = add_version(reg, p, c=0.05)
    reg.set_alias(p.dev, MODEL, v2, "shadow")
    _now_for(clock)
    e = _register(served, "shadow-1", champion=1, challenger=v2, kind="shadow", min_rows=60,
                  challenger_share=None, protected_attributes=SEX)  # fmt: skip
    _, y = datasets.german_credit_xy()
    with TestClient(create_app(reg, refresh_seconds=3600)) as c:
        ids = []
        for i in range(150):
            r = c.post(
                f"/v1/models/{MODEL}/score",
                headers=served.headers(),
                json={"entity_key": f"applicant-{i}", "features": served.rows[i]},
            )
            assert r.status_code == 200, r.text
            ids.append(r.json()["decision_id"])
        body = {"outcomes": [{"decision_id": d, "label": int(y[i])} for i, d in enumerate(ids)]}
        assert c.post("/v1/outcomes", json=body, headers=served.headers()).status_code == 200
    result = analyze_experiment(reg, "shadow-1", shadow=True,
                                until=datetime.now(UTC) + timedelta(minutes=1))  # fmt: skip
    # Count the same things straight from the log.
    with reg.db.read() as conn:
        rows = conn.execute(
            select(decisions.c.id, decisions.c.score, decisions.c.decision, outcomes.c.label,
                   shadow_scores.c.score.label("s_score"),
                   shadow_scores.c.decision.label("s_decision"))
            .join(shadow_scores, shadow_scores.c.decision_id == decisions.c.id)
            .join(outcomes, outcomes.c.decision_id == decisions.c.id)
            .where(shadow_scores.c.version == v2, decisions.c.created_at >= iso(e.created_at))
            .order_by(decisions.c.created_at, decisions.c.id)
        ).all()  # fmt: skip
    assert len(rows) == 150
    matrix = [[0, 0], [0, 0]]
    for r in rows:
        matrix[r.decision != "approve"][r.s_decision != "approve"] += 1
    cmp = result.comparison.to_dict()
    assert cmp["disagreement"]["matrix"] == matrix
    assert cmp["n_a"] == cmp["n_b"] == 150
    want = delong_test(
        np.array([r.label for r in rows], dtype=float),
        np.array([r.score for r in rows]),
        np.array([r.s_score for r in rows]),
    )
    d = result.decision
    auc = d.primary
    assert auc.method.startswith("DeLong") and auc.tests["delong"] == pytest.approx(want.to_dict())
    # Two fits of the same scorecard: no significant AUC difference once the rows are in.
    assert d.kind == "shadow" and d.decision == "keep" and not d.sequential.stop
    assert d.samples["challenger"]["errors"] == 0
    assert {s["attribute"] for s in cmp["segments"]} == {"sex"}
    html = render_report_html(report_data(result))
    assert "Disagreement at the thresholds" in html and "<svg" in html
    _self_contained(html)

    # The dashboard analyses it again on view: the same matrix, nothing recorded.
    token = reg.identity.issue_token(p.admin, p.dev.username)
    clock.now = datetime.now(UTC) + timedelta(minutes=1)  # the analysis runs up to "now"
    events = len(reg.audit_log())
    with TestClient(create_app(reg, refresh_seconds=3600)) as c:
        c.cookies.set(auth.SESSION_COOKIE, token)
        page = c.get(f"/ui/models/{MODEL}/experiments").text
        assert f"/ui/models/{MODEL}/experiments/shadow-1/analysis" in page
        r = c.get(f"/ui/models/{MODEL}/experiments/shadow-1/analysis")
        assert r.status_code == 200 and "not recorded" in r.text
        assert "Disagreement at the thresholds" in r.text
        cells = re.findall(r'<td class="num">(\d+)</td>', r.text.split("Disagreement")[1])
        assert [int(v) for v in cells[:4]] == [*matrix[0], *matrix[1]]
        assert "Content-Disposition" not in r.headers
        assert "default-src 'none'" in r.headers["Content-Security-Policy"]
        r = c.get(f"/ui/models/{MODEL}/experiments/shadow-1/analysis?download=1")
        assert r.headers["Content-Disposition"].startswith('attachment; filename="shadow-1-')
        assert c.get("/ui/models/other-model/experiments/shadow-1/analysis").status_code == 404
        assert c.get(f"/ui/models/{MODEL}/experiments/nope/analysis").status_code == 404
        c.cookies.clear()
        r = c.get(f"/ui/models/{MODEL}/experiments/shadow-1/analysis", follow_redirects=False)
        assert r.status_code == 303  # sign in first
    assert len(reg.audit_log()) == events  # nothing was recorded


def _self_contained(html: str) -> None:
    low = html.lower()
    assert "<script" not in low and "url(" not in low and "@import" not in low
    assert 'href="http' not in low and 'src="' not in low
    assert "default-src 'none'" in html


def test_paired_t_and_unpaired_auc_tests_match_their_oracles() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(0.3, 0.1, 80)
    b = a + rng.normal(0.01, 0.05, 80)
    t = paired_ttest(a, b)
    ref = sps.ttest_rel(b, a)
    assert t.statistic == pytest.approx(ref.statistic) and t.p_value == pytest.approx(ref.pvalue)
    ci = ref.confidence_interval(0.95)
    assert (t.ci_low, t.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    same = paired_ttest(a, a)
    assert (same.statistic, same.p_value) == (0.0, 1.0)
    y = (rng.random(200) < 0.3).astype(float)
    s = y * 0.5 + rng.random(200)
    u = unpaired_auc_test(y[:100], s[:100], y[100:], s[100:])
    assert u.n_a == u.n_b == 100 and 0.0 < u.p_value <= 1.0
    assert u.se**2 == pytest.approx(
        sum(v for _, v in (_dv(y[:100], s[:100]), _dv(y[100:], s[100:])))
    )


def _dv(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    from charter.stats.experiments import delong_variance

    return delong_variance(y, s)


# ---------------------------------------------------------------------------------- real HTTP + CLI
def _post(port: int, token: str, path: str, body: Any) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST",
            path,
            json.dumps(body).encode(),
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        r = conn.getresponse()
        return r.status, json.loads(r.read())
    finally:
        conn.close()  # fmt: skip


def test_ab_traffic_over_real_http_and_the_cli(
    served: Served, clock: ManualClock, database_url: str, tmp_path: Path
) -> None:
    reg, p = served.registry, served.people
    v2 = add_version(reg, p, c=0.05)
    reg.set_alias(p.app, MODEL, v2, "challenger")
    reg.set_traffic(p.app, MODEL, challenger_share=0.5)
    _now_for(clock)
    petra = reg.identity.issue_token(p.admin, "petra")
    env = {"CHARTER_HOME": str(tmp_path / "home"), "CHARTER_DATABASE_URL": database_url,
           "COLUMNS": "200", "CHARTER_TOKEN": petra}  # fmt: skip
    runner = CliRunner()

    def cli(*args: str, code: int = 0) -> str:
        r = runner.invoke(cli_app, list(args), env=env)
        assert r.exit_code == code, (args, r.stdout, r.stderr)
        return r.stdout

    planned = json.loads(
        cli(
            "experiment",
            "plan",
            "--baseline-rate",
            "0.12",
            "--mde",
            "0.02",
            "--challenger-share",
            "0.2",
            "--daily-volume",
            "1000",
            "--json",
        )
    )
    assert planned["days"] == -(-planned["applicants_needed"] // 1000)
    assert "duration" in cli("experiment", "plan", "--sd", "0.2", "--mde", "0.05",
                             "--daily-volume", "500")  # fmt: skip
    assert "field: mde" in (runner.invoke(cli_app, ["experiment", "plan", "--baseline-rate",
                                                    "0.1"], env=env).stderr)  # fmt: skip
    attrs = tmp_path / "attrs.toml"
    attrs.write_text('[gates.fairness.attributes.sex]\ncolumn = "personal_status_and_sex"\n'
                     'split = ":"\n')  # fmt: skip
    registered = json.loads(cli(
        "experiment", "register", "live-ab", "--model", MODEL, "--challenger", str(v2),
        "--metric", "approval_rate", "--baseline-rate", "0.7", "--mde", "0.05",
        "--challenger-share", "0.5", "--attributes", str(attrs), "--json",
    ))  # fmt: skip
    assert registered["champion_version"] == 1 and registered["status"] == "running"
    assert registered["plan"]["protected_attributes"] == SEX

    _, y = datasets.german_credit_xy()
    seen: list[dict[str, Any]] = []
    with serve_in_thread(create_app(reg, refresh_seconds=3600)) as port:
        for i in range(160):
            status, body = _post(
                port,
                served.token,
                f"/v1/models/{MODEL}/score",
                {"entity_key": f"applicant-{i}", "features": served.rows[i]},
            )
            assert status == 200, body
            seen.append(body)
        outs = [{"decision_id": d["decision_id"], "label": int(y[i])} for i, d in enumerate(seen)]
        status, _ = _post(port, served.token, "/v1/outcomes", {"outcomes": outs})
        assert status == 200
    by_variant = {v: [d for d in seen if d["variant"] == v] for v in ("champion", "challenger")}
    assert len(by_variant["champion"]) + len(by_variant["challenger"]) == 160
    assert len(by_variant["challenger"]) > 30

    until = (datetime.now(UTC) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    report = tmp_path / "ab.html"
    out = json.loads(cli("experiment", "analyze", "live-ab", "--until", until, "--json",
                         "--record", "--report", str(report)))  # fmt: skip
    dec = out["decision"]
    assert dec["decision"] == "continue" and dec["continue_until"]
    assert dec["samples"]["champion"]["decisions"] == len(by_variant["champion"])
    assert dec["samples"]["challenger"]["decisions"] == len(by_variant["challenger"])
    approval = next(m for m in dec["metrics"] if m["metric"] == "approval_rate")
    for arm, key in (("champion", "estimate_a"), ("challenger", "estimate_b")):
        rows = by_variant[arm]
        assert approval[key] == pytest.approx(
            sum(d["decision"] == "approve" for d in rows) / len(rows)
        )
    assert set(approval["tests"]) == {"z_test", "beta_binomial", "bootstrap"}
    assert out["recorded"]["evidence_sha256"]
    assert [g["name"] for g in dec["guardrails"]][:2] == ["latency_p99_ms", "error_rate"]
    html = report.read_text(encoding="utf-8")
    assert "live-ab" in html and "Approval rate by segment" in html
    _self_contained(html)
    text = cli("experiment", "analyze", "live-ab", "--until", until)
    assert "continue until" in text
    shown = json.loads(cli("experiment", "show", "live-ab", "--json"))
    assert [r["decision"] for r in shown["decisions"]] == ["continue"]
    assert [x["name"] for x in json.loads(cli("experiment", "list", "--json"))] == ["live-ab"]
    events = reg.audit_log(action="experiment.*")
    assert [e.action for e in events] == ["experiment.registered", "experiment.decided"]
    assert events[-1].actor == "petra"
    assert events[-1].payload["evidence_sha256"] == out["recorded"]["evidence_sha256"]
    err = runner.invoke(cli_app, ["experiment", "analyze", "live-ab", "--shadow"], env=env)
    assert err.exit_code == 2 and "field: shadow" in err.stderr
