"""`charter demo`: two stories, one readable step after another.

1. A fresh store with four people: an admin, a developer, a validator and an approver.

Part one, in simulated time: a retail PD model's six months in production (``demo_production``).

2. retail-pd v1 is trained on a year of synthetic applications, passes its policy's gates, is
   approved and made champion.
3. Six months of applications are replayed day by day through the decision log; from month four
   the applicant mix drifts. `charter scheduler` ticks every simulated day: it monitors each
   closed window, recomputes windows whose labels matured, fires tiered alerts (delivered to a
   local Alertmanager-format webhook), fires the retraining trigger, and runs the continuous-
   training pipeline, which trains, gates, shadows and compares a candidate; the validator and
   the approver approve it, and its canary is promoted by the automation.
4. - 6. What monitoring saw, the alerts and the trigger, and the pipeline run step by step.

Part two, now: the German Credit scorecard through validation.

7. The developer adds the scorecard to the inventory, writes its intended use, and trains a
   logistic-regression scorecard on German Credit; Charter captures its lineage.
8. Validation gates: the developer submits it; the validator runs the policy's gates
   (performance, stability, fairness, calibration, sensitivity, benchmark) and Charter records
   the run bound to the artifact, data and policy hashes. Nobody validates their own model.
9. The validator records a finding and recommends approval with conditions; the approver
   approves; only the approver (not the developer) makes it champion.
10. The inventory and "who was champion when".
11. A gradient-boosting challenger runs the gates, fails the fairness gate, gets a high finding,
    and goes to shadow (shadow is allowed; customer-facing traffic is not).
12. The champion is served over HTTP; holdout applicants are replayed; every decision is logged
    before its response, and the shadow's agreement with the champion is shown.
13. The challenger's canary is refused by the deployment guard; the developer remediates with a
    scorecard without age, which passes the gates against the champion, is approved and rolled
    out as a canary that the automation promotes or rolls back on guardrails.
    Before that, the pre-registered shadow experiment's analysis (DeLong on the same applicants,
    guardrails, approval-rate parity by group) decides the gradient-boosting challenger's fate.
14. Why was this applicant declined? One decision explained from the record: reasons, a
    counterfactual, the validation in force, and a replay from the artifact store.
15. The model card, validation reports and MRM committee report, as JSON, HTML and PDF.
16. The audit trail and its verification.

Later issues extend this story (the dashboard); keep it one script.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from charter import datasets
from charter.config import Settings
from charter.entities import Actor
from charter.errors import CharterError
from charter.registry import inventory
from charter.registry.service import Registry
from charter.storage.artifacts import ArtifactStore
from charter.storage.db import Database

MODEL = "german-credit-scorecard"
SEED = 20261122
THRESHOLD = 0.5  # scores at or above it are declined
CATEGORY = {c: "category" for c in datasets.GERMAN_CREDIT_CATEGORICAL}


def _step(console: Console, n: int, title: str) -> None:
    console.print()
    console.rule(f"[bold]{n}. {title}")


def _scorecard(drop: tuple[str, ...] = (), c: float = 0.5) -> Pipeline:
    numeric = [f for f in datasets.GERMAN_CREDIT_NUMERIC if f not in drop]
    categorical = [f for f in datasets.GERMAN_CREDIT_CATEGORICAL if f not in drop]
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        ]
    )
    return Pipeline(
        [("prep", pre), ("lr", LogisticRegression(C=c, max_iter=1000, random_state=SEED))]
    )


def policy_text() -> str:
    """The German Credit validation policy shipped with the package."""
    return datasets.german_credit_path().with_name("german_credit_policy.toml").read_text()


def run(settings: Settings, console: Console) -> None:
    from charter import demo_production
    from charter.clock import ManualClock

    _step(console, 1, "A fresh store and four people")
    db = Database(settings.database_url)
    try:
        db.upgrade()
        artifacts = ArtifactStore(settings.artifact_root)
        # Part one happens in simulated time (December 2025 to June 2026), before part two, which
        # happens now: the audit chain's timestamps only move forward.
        clock = ManualClock(demo_production.SETUP_TIME)
        simulated = Registry(db, artifacts, clock=clock)
        _people(simulated, console, settings.home)
        console.print("[bold]Part one: a retail PD model's six months in production[/]")
        demo_production.story(simulated, clock, console, settings.home, first_step=2, step=_step)
        console.print("[bold]Part two: a new scorecard through validation, today[/]")
        _story(Registry(db, artifacts), console, settings.home)
    finally:
        db.dispose()
    console.print(
        f"Dashboard: CHARTER_HOME={settings.home} charter serve, then open "
        f"http://127.0.0.1:8000/ui/ and sign in with a token from {settings.home / TOKENS_FILE}"
    )


TOKENS_FILE = "demo-tokens.txt"
PEOPLE = (
    ("dana", "developer,validator", "Dana (model developer, validates others' models)"),
    ("victor", "validator", "Victor (model validation)"),
    ("petra", "approver", "Petra (model risk approver)"),
)


def _people(reg: Registry, console: Console, home: Path) -> None:
    _, admin_token = reg.identity.bootstrap_admin("ada", "Ada (platform admin)")
    admin = reg.identity.actor("ada")
    tokens = {"ada": admin_token}
    for username, role, display in PEOPLE:
        reg.identity.create_user(admin, username, role.split(","), display_name=display)
        tokens[username] = reg.identity.issue_token(admin, username, label="demo")
    # The dashboard and the CLI need a token each; the demo keeps them for its reader, readable
    # by the owner only.
    path = home / TOKENS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("".join(f"{u} {t}\n" for u, t in tokens.items()), encoding="utf-8")
    console.print(
        f"store at {reg.db.safe_url}; users: ada (admin), dana, victor, petra; their tokens in "
        f"{path}"
    )


def _gates(
    reg: Registry, console: Console, actor: Actor, version: int, data: dict[str, pd.DataFrame]
) -> Any:
    """Run the policy's gates as ``actor`` and print one line per gate."""
    from charter.validation.runner import validate

    run_, record = validate(reg, actor, MODEL, version, policy_text(), data)
    t = Table(f"gate (v{version})", "result", "summary")
    for g in run_.gates:
        t.add_row(g.gate, "[green]pass[/]" if g.passed else "[red]FAIL[/]", g.summary)
    console.print(t)
    verdict = "passed" if run_.passed else f"FAILED ({', '.join(run_.failed_gates)})"
    console.print(
        f"{actor.username} ran policy {run_.policy['name']} (sha256 {run_.policy['sha256'][:12]}) "
        f"on v{version}: {verdict}; gate run {record.id} recorded against artifact "
        f"{record.artifact_sha256[:12]}"
    )
    return run_, record


def _rows(X: pd.DataFrame) -> Iterator[tuple[Any, dict[str, Any]]]:
    for idx, row in X.iterrows():
        yield idx, {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}


def _challenger(
    reg: Registry,
    console: Console,
    dana: Actor,
    victor: Actor,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    data: dict[str, pd.DataFrame],
) -> int:
    """A gradient-boosting challenger: gates, a high finding, shadow."""
    _step(console, 11, "A gradient-boosting challenger: gates, a finding, shadow")
    challenger = reg.log_model(
        dana,
        MODEL,
        HistGradientBoostingClassifier(
            max_iter=120,
            learning_rate=0.05,
            max_depth=3,
            min_samples_leaf=40,
            l2_regularization=1.0,
            categorical_features="from_dtype",
            random_state=SEED,
        ),
        X=X_train.astype(CATEGORY),
        y=y_train,
        dataset_id="uci-statlog-german-credit/train-70pct",
        fit=True,
        description="Histogram gradient boosting on all 20 attributes",
        threshold=THRESHOLD,
    )
    reg.transition(dana, MODEL, challenger.version, "validation")
    run_, _ = _gates(reg, console, victor, challenger.version, data)
    for gate in run_.gates:
        for c in gate.failed:
            f = reg.raise_finding(
                victor,
                MODEL,
                challenger.version,
                severity="high",
                title=f"{gate.gate} gate failed: {c.name}",
                description=f"{c.name} on {c.dataset} is {c.value:.3f}, beyond the policy's "
                f"limit {c.op} {c.limit:g}. Customer-facing use is blocked until it is fixed.",
                remediation_owner="dana",
                due_date=reg.clock().date() + timedelta(days=30),
            )
            console.print(f"victor raised finding #{f.id} (high): {f.title}")
    reg.set_alias(dana, MODEL, challenger.version, "shadow")
    console.print(
        f"v{challenger.version} ({challenger.source['model_class'].rsplit('.', 1)[-1]}) goes to "
        "shadow: it scores every request off the response path; its decisions are logged, "
        "never returned"
    )
    return challenger.version


def _serve_and_shadow(
    reg: Registry,
    console: Console,
    admin: Actor,
    challenger: int,
    X_test: pd.DataFrame,
    y_test: np.ndarray,
) -> tuple[str, list[dict[str, Any]]]:
    """Serve the champion over HTTP with the challenger in shadow; replay the test applicants."""
    _step(console, 12, "Serving the champion over HTTP and replaying the holdout applicants")
    reg.identity.create_user(admin, "loan-origination", ["service"])
    token = reg.identity.issue_token(admin, "loan-origination", label="demo")
    with _running_server(reg) as base:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        decided = []
        for i, (idx, features) in enumerate(_rows(X_test)):
            body = {
                "request_id": f"demo-{idx}",
                "entity_key": f"applicant-{idx}",
                "features": features,
            }
            decided.append(_post(f"{base}/v1/models/{MODEL}/score", body, headers))
            if i == 0:
                first = decided[0]
                reasons = "; ".join(r["feature"] for r in first["reason_codes"]) or "none"
                console.print(
                    f"POST /v1/models/{MODEL}/score -> {first['decision']} (score "
                    f"{first['score']:.3f}, v{first['version']}), top reasons: {reasons}"
                )
        shadow_rows = _wait_for_shadows(reg, len(decided))
        # The outcomes arrive (here at once; in a bank months later): 1 = the applicant defaulted.
        labels = [
            {"decision_id": d["decision_id"], "label": int(label)}
            for d, label in zip(decided, y_test, strict=True)
        ]
        _post(f"{base}/v1/outcomes", {"outcomes": labels}, headers)
    by_id = {d["decision_id"]: d for d in decided}
    matrix = {(a, b): 0 for a in ("approve", "decline") for b in ("approve", "decline")}
    for decision_id, shadow_decision in shadow_rows:
        matrix[(by_id[decision_id]["decision"], shadow_decision)] += 1
    agree = matrix[("approve", "approve")] + matrix[("decline", "decline")]
    t = Table(f"champion v{decided[0]['version']} \\ shadow v{challenger}", "approve", "decline")
    for a in ("approve", "decline"):
        t.add_row(a, str(matrix[(a, "approve")]), str(matrix[(a, "decline")]))
    console.print(
        f"{len(decided)} decisions logged before their responses; shadow agreement "
        f"{agree}/{len(shadow_rows)} = {agree / max(len(shadow_rows), 1):.1%}"
    )
    console.print(t)
    return token, decided


def _register_shadow_experiment(reg: Registry, petra: Actor, challenger: int) -> str:
    """Pre-register the shadow experiment (its plan fixed before any traffic is seen)."""
    import tomllib

    from charter.experiment.design import build_plan
    from charter.experiment.store import register_experiment

    experiment = register_experiment(
        reg,
        petra,
        f"v{challenger}-shadow",
        model=MODEL,
        challenger_version=challenger,
        plan=build_plan(
            kind="shadow",
            primary_metric="auc",
            mde=0.03,
            min_rows=100,
            max_days=90,
            protected_attributes=tomllib.loads(policy_text())["gates"]["fairness"]["attributes"],
        ),
    )
    return experiment.name


def _shadow_experiment(reg: Registry, console: Console, victor: Actor, name: str) -> None:
    """The pre-registered shadow experiment's analysis decides the challenger's fate."""
    from charter.experiment.analysis import analyze_experiment
    from charter.experiment.store import get_experiment, record_experiment_decision

    experiment = get_experiment(reg, name)
    d = analyze_experiment(reg, name, seed=SEED).decision
    recorded = record_experiment_decision(reg, victor, experiment.id, d)
    t = Table("metric", "champion", f"shadow v{d.challenger_version}", "difference", "p",
              "verdict")  # fmt: skip
    for m in d.metrics:
        t.add_row(
            m.metric,
            "n/a" if m.estimate_a is None else f"{m.estimate_a:.4f}",
            "n/a" if m.estimate_b is None else f"{m.estimate_b:.4f}",
            "n/a" if m.difference is None else f"{m.difference:+.4f}",
            "n/a" if m.p_value is None else f"{m.p_value:.3g}",
            m.verdict,
        )
    console.print(t)
    for p in d.parity:
        if p.ratio_a is not None and p.ratio_b is not None:
            console.print(
                f"  approval-rate parity by {p.attribute} (four-fifths ratio): champion "
                f"{p.ratio_a:.3f}, shadow {p.ratio_b:.3f}"
            )
    for g in d.guardrails:
        if g.breached:
            console.print(f"  [red]guardrail breached:[/] {g.name}: {g.detail}")
    until = f" until {d.continue_until}" if d.continue_until else ""
    console.print(
        f"experiment {name} (pre-registered plan sha256 {d.plan_sha256[:12]}): "
        f"[bold]{d.decision}{until}[/]: {'; '.join(d.reasons)} "
        f"(decision {recorded.id} recorded by victor)"
    )


def _why_declined(reg: Registry, console: Console, decided: list[dict[str, Any]]) -> None:
    """Explain one declined applicant from the record, with a replay and a counterfactual."""
    from charter.explain.decision import explain_decision

    _step(console, 14, "Why was this applicant declined?")
    declined = next((d for d in decided if d["decision"] == "decline"), None)
    if declined is None:
        console.print("no applicant was declined")
        return
    e = explain_decision(reg, declined["decision_id"])
    console.print(
        f"charter explain {e.decision_id}: {e.decision} by {MODEL} v{e.version} "
        f"(artifact {e.artifact_sha256[:12]}), score {e.score:.4f} >= threshold {e.threshold:g}"
    )
    for i, r in enumerate(e.reasons, 1):
        console.print(f"  reason {i}: {r['feature']} (log-odds {r['contribution']:+.3f})")
    if e.counterfactual is not None:
        changes = "; ".join(
            f"{c['feature']} {c['from']} -> {c['to']}" for c in e.counterfactual["changes"]
        )
        console.print(
            f"  approved instead with: {changes} (score {e.counterfactual['score']:.6f}; age, "
            "sex and foreign-worker status are never changed)"
        )
    vf = e.validation_in_force
    console.print(
        f"  replay from the artifact store: score {e.replay.score:.12f}, "
        f"{'reproduced' if e.replay.reproduced else 'NOT reproduced'}; in force then: gate run "
        f"{vf['gate_run']['id'] if vf['gate_run'] else '-'}, "
        f"{vf['validation']['recommendation'] if vf['validation'] else 'no validation'}, "
        f"{vf['approval']['decision'] if vf['approval'] else 'no approval'}"
    )


CANARY_PLAN = {
    "steps": [0.2, 0.5, 1.0],
    "min_decisions": 40,
    "max_error_rate": 0.01,
    "max_latency_p99_ms": 50.0,
    "max_score_psi": 0.25,
    "max_approval_rate_delta": 0.10,
    # a round of 300 applicants gives a 20% canary about 60 decisions: judge the score
    # distribution on that many (Charter's default waits for 100)
    "min_judged_decisions": 50,
}


def _canary(
    reg: Registry,
    console: Console,
    dana: Actor,
    victor: Actor,
    petra: Actor,
    challenger: int,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_test: pd.DataFrame,
    data: dict[str, pd.DataFrame],
    token: str,
) -> int:
    """The failed challenger's canary is refused; a remediated scorecard goes through one."""
    _step(console, 13, "The deployment guard, a remediated challenger, and its canary")
    try:
        reg.start_canary(petra, MODEL, challenger, CANARY_PLAN)
    except CharterError as refused:
        console.print(f"[yellow]canary of v{challenger} refused, and audited:[/] {refused.message}")
    features = [c for c in X_train.columns if c != "age_in_years"]
    remedy = reg.log_model(
        dana,
        MODEL,
        _scorecard(drop=("age_in_years",), c=0.3),
        X=X_train[features],
        y=y_train,
        dataset_id="uci-statlog-german-credit/train-70pct",
        fit=True,
        description="Logistic-regression scorecard without age",
        threshold=THRESHOLD,
    )
    console.print(f"dana trains v{remedy.version}: the scorecard without age, more regularised")
    for f in reg.list_findings(name=MODEL, version=challenger):
        reg.remediate_finding(dana, f.id, f"superseded by v{remedy.version} (age removed)")
        reg.close_finding(
            victor, f.id, f"v{challenger} stays in shadow; v{remedy.version} validated"
        )
        console.print(f"finding #{f.id}: remediated by dana, closed by victor")
    reg.transition(dana, MODEL, remedy.version, "validation")
    run_, gates = _gates(reg, console, victor, remedy.version, data)
    champ = run_.gate("performance").evidence["champion"].get("out_of_time")
    if champ:
        console.print(
            f"against champion v{champ['version']} on out-of-time applicants: AUC "
            f"{champ['auc_b']:.3f} vs {champ['auc_a']:.3f} (DeLong p = {champ['p_value']:.2f})"
        )
    reg.record_validation(
        victor,
        MODEL,
        remedy.version,
        recommendation="approve" if run_.passed else "reject",
        summary="gates " + ("passed" if run_.passed else "failed"),
        gate_run_id=gates.id,
    )
    if not run_.passed:
        console.print(f"[yellow]v{remedy.version} failed its gates; the champion stays[/]")
        return remedy.version
    reg.decide(petra, MODEL, remedy.version, "approve", comment="approved for a canary")
    reg.start_canary(petra, MODEL, remedy.version, CANARY_PLAN)
    console.print(
        f"petra started a canary of v{remedy.version}: 20% -> 50% -> 100% of applicants, each "
        "step held for 40 decisions; rolled back at once if the error rate exceeds 1%, p99 "
        "latency 50 ms, score PSI 0.25 or the approval-rate gap 10 points"
    )
    from charter.serving.canary import tick

    with _running_server(reg) as base:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for round_ in range(1, 4):
            for idx, row in _rows(X_test):
                body = {
                    "request_id": f"canary-{round_}-{idx}",
                    "entity_key": f"applicant-{idx}",
                    "features": row,
                }
                _post(f"{base}/v1/models/{MODEL}/score", body, headers)
            result = tick(reg, MODEL, datetime.now(UTC))
            if result is None:
                break
            action, state = result
            console.print(f"round {round_}: {action}: {state['reason']}")
            if action in ("promote", "rollback"):
                break
    champion = reg.get_model(MODEL).champion_version
    console.print(f"champion of {MODEL} is now version {champion}")
    return remedy.version


def _documents(
    reg: Registry, console: Console, actor: Actor, home: Path, versions: list[int]
) -> None:
    """The model cards, validation reports and the MRM pack, from the audited record."""
    from charter.reports import documents

    _step(console, 15, "Documents from the audited record: model cards, validation reports, MRM")
    out = home / "reports"
    docs = []
    for v in sorted(set(versions)):
        docs.append(documents.model_card(reg, MODEL, v))
        docs.append(documents.validation_report(reg, MODEL, v))
    docs.append(documents.mrm_report(reg))
    t = Table("document", "audit head", "sha256", "files")
    for doc in docs:
        paths = documents.publish(reg, actor, doc, out)
        kind = doc["provenance"]["document"]
        label = kind if kind == "mrm" else f"{kind} v{documents.subject(doc)[1]}"
        t.add_row(
            label,
            f"#{doc['provenance']['audit_head_seq']}",
            doc["document_sha256"][:16],
            paths["json"].stem + ".{" + ",".join(paths) + "}",
        )
    console.print(t)
    console.print(f"written to {out}; open the HTML in a browser, or the PDF")


@contextlib.contextmanager
def _running_server(reg: Registry) -> Iterator[str]:
    from charter.serving.app import create_app
    from charter.serving.local import serve_in_thread

    app = create_app(reg, refresh_seconds=3600, canary_seconds=0)  # the demo steps canaries itself
    with serve_in_thread(app) as port:
        yield f"http://127.0.0.1:{port}"


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        result: dict[str, Any] = json.loads(r.read())
    return result


def _wait_for_shadows(reg: Registry, expected: int) -> list[tuple[str, str]]:
    from sqlalchemy import select

    from charter.storage.schema import shadow_scores

    deadline = time.monotonic() + 30
    while True:
        with reg.db.read() as conn:
            rows = [
                (r.decision_id, r.decision)
                for r in conn.execute(
                    select(shadow_scores.c.decision_id, shadow_scores.c.decision).where(
                        shadow_scores.c.model_name == MODEL
                    )
                )
            ]
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def _story(reg: Registry, console: Console, home: Path) -> None:
    admin = reg.identity.actor("ada")
    dana, victor, petra = (reg.identity.actor(u) for u, _, _ in PEOPLE)

    _step(console, 7, "Inventory entry and a scorecard trained with its lineage")
    reg.create_model(
        dana,
        name=MODEL,
        purpose="Probability that a retail credit applicant defaults (German Credit, UCI)",
        business_use="Approve or decline consumer credit applications",
        decision_type="credit approval",
        owner="Head of Retail Credit Risk",
        team="Retail Credit Analytics",
        risk_tier="high",
        upstream=["core-banking.applications", "credit-bureau.reports"],
        downstream=["loan-origination-system"],
        tags={"regulation": "SR 26-2", "portfolio": "consumer"},
    )
    reg.set_model_narrative(
        dana,
        MODEL,
        {
            "intended_use": "Rank consumer credit applicants by probability of default and "
            "decline those at or above the operating threshold, with reason codes for adverse "
            "action notices.",
            "out_of_scope_uses": "Business or mortgage lending; pricing; applicants outside the "
            "population the 1,000-applicant German Credit sample represents.",
            "factors": "Sex (derived from personal status), age band and foreign-worker status "
            "are evaluated for disparate impact; sex and foreign-worker status are not inputs.",
            "ethical_considerations": "Historical lending decisions may encode bias; the fairness "
            "gate applies the four-fifths rule and equalized odds to approvals by group.",
            "caveats_and_recommendations": "The sample is small and from 1994; its out-of-time "
            "set is a separate random draw, since the data carry no dates. Recalibrate on "
            "local data before any real use.",
        },
    )
    frame = datasets.load_german_credit()
    X, y = datasets.german_credit_xy()
    i_train, i_test = train_test_split(
        np.arange(len(X)), test_size=0.3, stratify=y, random_state=SEED
    )
    i_hold, i_oot = train_test_split(i_test, test_size=0.5, stratify=y[i_test], random_state=SEED)
    X_train, X_test, y_train = X.iloc[i_train], X.iloc[i_test], y[i_train]
    data = {
        "train": frame.iloc[i_train],
        "holdout": frame.iloc[i_hold],
        "out_of_time": frame.iloc[i_oot],
    }
    model = _scorecard()
    version = reg.log_model(
        dana,
        MODEL,
        model,
        X=X_train,
        y=y_train,
        dataset_id="uci-statlog-german-credit/train-70pct",
        fit=True,
        description="Logistic-regression scorecard, all 20 attributes",
        threshold=THRESHOLD,
    )
    console.print(
        f"{MODEL} v{version.version} registered by {version.author} "
        f"(operating threshold {THRESHOLD}: scores at or above it are declined)"
    )
    t = Table("lineage", "value", show_header=False)
    t.add_row("artifact", f"{version.artifact_format} sha256 {version.artifact_sha256}")
    td = version.training_data
    if td is not None:
        t.add_row("training data", f"{td.dataset_id}: {td.rows} rows, sha256 {td.content_hash}")
    n_cat = sum(f.categories is not None for f in version.feature_schema)
    t.add_row("features", f"{len(version.feature_schema)} ({n_cat} categorical)")
    t.add_row("seeds", str(version.seeds))
    t.add_row("code commit", str(version.code_commit))
    t.add_row(
        "environment",
        f"Python {version.environment['python']}, "
        + ", ".join(f"{k} {v}" for k, v in sorted(version.environment["packages"].items())),
    )
    t.add_row("training time", f"{version.training_seconds:.3f} s")
    console.print(t)

    _step(console, 8, "Validation gates, run by an independent validator")
    reg.transition(dana, MODEL, version.version, "validation", comment="ready for validation")
    try:
        reg.record_validation(dana, MODEL, version.version, outcome="pass", summary="looks good")
    except CharterError as e:
        console.print(f"[yellow]refused, and audited:[/] {e.message}")
    run1, gates1 = _gates(reg, console, victor, version.version, data)

    _step(console, 9, "A finding, a recommendation with conditions, approval, champion")
    today = reg.clock().date()
    unscored = [
        m["feature"] for m in run1.gate("sensitivity").evidence["missing"] if not m["scores"]
    ]
    if unscored:
        f = reg.raise_finding(
            victor,
            MODEL,
            version.version,
            severity="medium",
            title="Missing numeric inputs cannot be scored",
            description=f"The scorecard fails on a missing value of {len(unscored)} numeric "
            f"inputs ({', '.join(unscored[:3])}, ...); serving rejects incomplete applications "
            "at the boundary, so they get no decision.",
            remediation_owner="dana",
            due_date=today + timedelta(days=90),
        )
        console.print(f"victor raised finding #{f.id} ({f.severity}): {f.title}")
    perf = run1.gate("performance").evidence["metrics"]
    auc_h, auc_o = perf["holdout"]["auc"], perf["out_of_time"]["auc"]
    conditions = [
        "Re-validate within 12 months or when the score PSI exceeds 0.25",
        "Report approval rates by age band to the MRM committee quarterly",
    ]
    reg.record_validation(
        victor,
        MODEL,
        version.version,
        recommendation="approve_with_conditions",
        summary=f"All gates passed: AUC {auc_h:.3f} holdout, {auc_o:.3f} out-of-time",
        conditions=conditions,
        gate_run_id=gates1.id,
        sections={
            "scope": "Initial validation of the retail scorecard before first use: all seven "
            "gates of policy german-credit-retail on a 15% holdout and a 15% out-of-time draw.",
            "conceptual_soundness": "A regularised logistic regression on standardised numeric "
            "inputs and one-hot categorical inputs: transparent, monotone in each input, "
            "exact reason codes.",
            "limitations": "1,000 applicants; no application dates; small age groups under 25 "
            "and over 60 are reported, not judged.",
            "conclusion": "Fit for use under the conditions stated.",
        },
    )
    console.print(f"victor recommends approval with {len(conditions)} conditions")
    reg.decide(
        petra,
        MODEL,
        version.version,
        "approve_with_conditions",
        comment="approved by the model risk committee",
        conditions=conditions,
    )
    console.print(f"petra approved v{version.version} with conditions")
    try:
        reg.set_alias(dana, MODEL, version.version, "champion")
    except CharterError as refused:
        console.print(f"[yellow]dana may not deploy it:[/] {refused.message}")
    reg.set_alias(petra, MODEL, version.version, "champion", expected=None)
    console.print(f"petra made v{version.version} the champion")

    _step(console, 10, "The inventory a model risk team asks for")
    inv = inventory.build(reg)
    s = inv.summary()
    tiers = s["in_production_by_tier"]
    console.print(
        f"{s['in_production']} model(s) in production: {tiers['high']} high, "
        f"{tiers['medium']} medium, {tiers['low']} low risk; "
        f"{len(s['overdue_reviews'])} overdue review(s)"
    )
    console.print(inventory.to_markdown(inv), markup=False)
    now = datetime.now(UTC)
    holder = reg.alias_holder_at(MODEL, "champion", now)
    console.print(f"champion of {MODEL} at {now:%Y-%m-%d %H:%M:%S} UTC: version {holder}")

    challenger = _challenger(reg, console, dana, victor, X_train, y_train, data)
    experiment = _register_shadow_experiment(reg, petra, challenger)
    token, decided = _serve_and_shadow(reg, console, admin, challenger, X_test, y[i_test])
    _shadow_experiment(reg, console, victor, experiment)
    final = _canary(reg, console, dana, victor, petra, challenger, X_train, y_train, X_test,
                    data, token)  # fmt: skip
    _why_declined(reg, console, decided)
    _documents(reg, console, petra, home, [version.version, challenger, final])

    _step(console, 16, "The audit trail")
    t = Table("seq", "actor", "role", "action", "subject")
    for ev in reg.audit_log(model_name=MODEL):
        t.add_row(str(ev.seq), ev.actor, ev.role, ev.action, ev.subject)
    console.print(t)
    result = reg.verify_audit()
    if not result.ok:
        raise SystemExit(f"audit chain BROKEN at event {result.first_broken_seq}: {result.reason}")
    head = result.head
    assert head is not None
    console.print(
        f"audit chain verified: {result.events_checked} events, head {head.seq} {head.hash}"
    )
