"""Small builders shared by tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from charter.entities import Actor, ModelVersion
from charter.registry.service import Registry


def create_model(reg: Registry, actor: Actor, name: str = "pd-model", **overrides: Any) -> None:
    fields: dict[str, Any] = {
        "purpose": "Probability of default",
        "business_use": "Approve or decline",
        "decision_type": "credit approval",
        "owner": "Head of Credit Risk",
        "team": "Credit Analytics",
        "risk_tier": "high",
    }
    fields.update(overrides)
    reg.create_model(actor, name=name, **fields)


def training_frame(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "income": rng.normal(50_000, 10_000, n),
            "age": rng.integers(18, 80, n),
            "region": rng.choice(["north", "south", "east"], n),
        }
    )
    logit = (X["income"] - 50_000) / 10_000 - (X["age"] - 45) / 20
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y.to_numpy()


def log_version(reg: Registry, dev: Actor, name: str = "pd-model", seed: int = 0) -> ModelVersion:
    X, y = training_frame(seed=seed)
    return reg.log_model(
        dev,
        name,
        LogisticRegression(random_state=seed),
        X=X[["income", "age"]],
        y=y,
        dataset_id=f"synthetic-{seed}",
        fit=True,
        metrics={"auc": 0.75},
    )


def approved_version(
    reg: Registry, dev: Actor, val: Actor, app: Actor, name: str = "pd-model", seed: int = 0
) -> ModelVersion:
    v = log_version(reg, dev, name, seed)
    reg.transition(dev, name, v.version, "validation")
    reg.record_validation(val, name, v.version, outcome="pass", summary="independent validation")
    return reg.transition(app, name, v.version, "approved")
