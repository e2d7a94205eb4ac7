"""`charter demo`: the German Credit story, one readable step after another.

1. A fresh store with four people: an admin, a developer, a validator and an approver.
2. The developer adds the scorecard to the inventory and trains a logistic-regression scorecard
   on German Credit; Charter captures its lineage.
3. Segregation of duties at work: the developer cannot validate their own version.
4. The validator validates it, the approver approves it and makes it champion.
5. The inventory and "who was champion when".
6. A gradient-boosting challenger is validated and put in shadow.
7. The champion is served over HTTP; the holdout applicants are replayed; every decision is logged
   before its response, and the shadow's agreement with the champion is shown.
8. The challenger is approved and rolled out as a canary that the automation advances, promotes
   or rolls back on guardrails measured from the decision log.
9. The audit trail and its verification.

Later issues extend this story (serving, monitoring, reports); keep it one script of steps.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
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


def _step(console: Console, n: int, title: str) -> None:
    console.print()
    console.rule(f"[bold]{n}. {title}")


def _scorecard() -> Pipeline:
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), list(datasets.GERMAN_CREDIT_NUMERIC)),
            (
                "cat",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(datasets.GERMAN_CREDIT_CATEGORICAL),
            ),
        ]
    )
    return Pipeline(
        [("prep", pre), ("lr", LogisticRegression(C=0.5, max_iter=1000, random_state=SEED))]
    )


def run(settings: Settings, console: Console) -> None:
    _step(console, 1, "A fresh store and four people")
    db = Database(settings.database_url)
    try:
        db.upgrade()
        _story(Registry(db, ArtifactStore(settings.artifact_root)), console)
    finally:
        db.dispose()


def _serve_and_shadow(
    reg: Registry,
    console: Console,
    admin: Actor,
    dana: Actor,
    victor: Actor,
    petra: Actor,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_test: pd.DataFrame,
) -> None:
    """Serve the champion over HTTP, shadow a gradient-boosting challenger, replay traffic."""
    _step(console, 6, "A gradient-boosting challenger, validated, in shadow")
    challenger = reg.log_model(
        dana,
        MODEL,
        HistGradientBoostingClassifier(
            max_iter=150, learning_rate=0.05, categorical_features="from_dtype", random_state=SEED
        ),
        X=X_train.astype({c: "category" for c in datasets.GERMAN_CREDIT_CATEGORICAL}),
        y=y_train,
        dataset_id="uci-statlog-german-credit/train-70pct",
        fit=True,
        description="Histogram gradient boosting on all 20 attributes",
    )
    reg.transition(dana, MODEL, challenger.version, "validation")
    reg.record_validation(
        victor, MODEL, challenger.version, outcome="pass", summary="benchmark challenger"
    )
    reg.set_alias(dana, MODEL, challenger.version, "shadow")
    console.print(
        f"v{challenger.version} ({challenger.source['model_class'].rsplit('.', 1)[-1]}) scores "
        "every request off the response path; its decisions are logged, never returned"
    )

    _step(console, 7, "Serving the champion over HTTP and replaying the holdout applicants")
    reg.identity.create_user(admin, "loan-origination", ["service"])
    token = reg.identity.issue_token(admin, "loan-origination", label="demo")
    with _running_server(reg) as base:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        decided = []
        for i, (idx, row) in enumerate(X_test.iterrows()):
            features = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
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
    by_id = {d["decision_id"]: d for d in decided}
    matrix = {(a, b): 0 for a in ("approve", "decline") for b in ("approve", "decline")}
    for decision_id, shadow_decision in shadow_rows:
        matrix[(by_id[decision_id]["decision"], shadow_decision)] += 1
    agree = matrix[("approve", "approve")] + matrix[("decline", "decline")]
    t = Table(
        f"champion v{decided[0]['version']} \\ shadow v{challenger.version}", "approve", "decline"
    )
    for a in ("approve", "decline"):
        t.add_row(a, str(matrix[(a, "approve")]), str(matrix[(a, "decline")]))
    console.print(
        f"{len(decided)} decisions logged before their responses; shadow agreement "
        f"{agree}/{len(shadow_rows)} = {agree / max(len(shadow_rows), 1):.1%}"
    )
    console.print(t)

    _step(console, 8, "A canary of the challenger, guarded by the decision log")
    reg.transition(petra, MODEL, challenger.version, "approved", comment="approved for a canary")
    plan = {
        "steps": [0.2, 0.5, 1.0],
        "min_decisions": 40,
        "max_error_rate": 0.01,
        "max_latency_p99_ms": 50.0,
        "max_score_psi": 0.25,
        "max_approval_rate_delta": 0.10,
    }
    reg.start_canary(petra, MODEL, challenger.version, plan)
    console.print(
        f"petra started a canary of v{challenger.version}: 20% -> 50% -> 100% of applicants, "
        "each step held for 40 decisions; rolled back at once if the error rate exceeds 1%, p99 "
        "latency 50 ms, score PSI 0.25 or the approval-rate gap 10 points"
    )
    from charter.serving.canary import tick

    with _running_server(reg) as base:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for round_ in range(1, 4):
            for idx, row in X_test.iterrows():
                features = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                body = {
                    "request_id": f"canary-{round_}-{idx}",
                    "entity_key": f"applicant-{idx}",
                    "features": features,
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
                for r in conn.execute(select(shadow_scores.c.decision_id, shadow_scores.c.decision))
            ]
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def _story(reg: Registry, console: Console) -> None:
    reg.identity.bootstrap_admin("ada", "Ada (platform admin)")
    admin = reg.identity.actor("ada")
    people = [
        ("dana", "developer,validator", "Dana (model developer, validates others' models)"),
        ("victor", "validator", "Victor (model validation)"),
        ("petra", "approver", "Petra (model risk approver)"),
    ]
    for username, role, display in people:
        reg.identity.create_user(admin, username, role.split(","), display_name=display)
    console.print(f"store at {reg.db.safe_url}; users: ada (admin), dana, victor, petra")
    dana, victor, petra = (reg.identity.actor(u) for u, _, _ in people)

    _step(console, 2, "Inventory entry and a scorecard trained with its lineage")
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
    X, y = datasets.german_credit_xy()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=SEED
    )
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
    )
    auc = float(roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]))
    console.print(
        f"{MODEL} v{version.version} registered by {version.author}: holdout AUC {auc:.3f}, "
        f"Gini {2 * auc - 1:.3f} ({len(y_test)} applicants, {int(np.sum(y_test))} bad)"
    )
    t = Table("lineage", "value", show_header=False)
    t.add_row("artifact", f"{version.artifact_format} sha256 {version.artifact_sha256}")
    td = version.training_data
    if td is not None:
        t.add_row("training data", f"{td.dataset_id}: {td.rows} rows, sha256 {td.content_hash}")
    n_cat = sum(f.categories is not None for f in version.feature_schema)
    t.add_row(
        "features",
        f"{len(version.feature_schema)} ({n_cat} categorical)",
    )
    t.add_row("seeds", str(version.seeds))
    t.add_row("code commit", str(version.code_commit))
    t.add_row(
        "environment",
        f"Python {version.environment['python']}, "
        + ", ".join(f"{k} {v}" for k, v in sorted(version.environment["packages"].items())),
    )
    t.add_row("training time", f"{version.training_seconds:.3f} s")
    console.print(t)

    _step(console, 3, "Segregation of duties: nobody validates their own model")
    reg.transition(dana, MODEL, version.version, "validation", comment="ready for validation")
    try:
        reg.record_validation(dana, MODEL, version.version, outcome="pass", summary="looks good")
    except CharterError as e:
        console.print(f"[yellow]refused, and audited:[/] {e.message}")

    _step(console, 4, "Independent validation, approval, champion")
    reg.record_validation(
        victor,
        MODEL,
        version.version,
        outcome="pass",
        summary=f"Holdout AUC {auc:.3f} above the 0.70 floor for high-tier scorecards; "
        "conceptually sound; no findings",
    )
    console.print(f"victor validated v{version.version}: pass")
    reg.transition(petra, MODEL, version.version, "approved", comment="approved by MRM")
    console.print(f"petra approved v{version.version}")
    try:
        reg.set_alias(dana, MODEL, version.version, "champion")
    except CharterError as refused:
        console.print(f"[yellow]dana may not deploy it:[/] {refused.message}")
    reg.set_alias(petra, MODEL, version.version, "champion", expected=None)
    console.print(f"petra made v{version.version} the champion")

    _step(console, 5, "The inventory a model risk team asks for")
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

    _serve_and_shadow(reg, console, admin, dana, victor, petra, X_train, y_train, X_test)

    _step(console, 9, "The audit trail")
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
