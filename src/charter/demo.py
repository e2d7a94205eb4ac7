"""`charter demo`: the German Credit story, one readable step after another.

1. A fresh store with four people: an admin, a developer, a validator and an approver.
2. The developer adds the scorecard to the inventory and trains a logistic-regression scorecard
   on German Credit; Charter captures its lineage.
3. Segregation of duties at work: the developer cannot validate their own version.
4. The validator validates it, the approver approves it and makes it champion.
5. The inventory, "who was champion when", and the verified audit chain.

Later issues extend this story (serving, monitoring, reports); keep it one script of steps.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from charter import datasets
from charter.config import Settings
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

    _step(console, 6, "The audit trail")
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
