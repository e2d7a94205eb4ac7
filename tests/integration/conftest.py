"""A served German Credit scorecard: a champion, a service token, and a running app."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from charter import datasets
from charter.registry.service import Registry
from charter.serving.app import create_app
from charter.serving.local import serve_in_thread

from helpers import record_passing_gates

MODEL = "gc-scorecard"


def scorecard(c: float = 0.5) -> Pipeline:
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
    return Pipeline([("prep", pre), ("lr", LogisticRegression(C=c, max_iter=1000))])


@dataclass
class Served:
    registry: Registry
    people: Any
    token: str
    rows: list[dict[str, Any]]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def approve(reg: Registry, people: Any, version: int, y: Any = None) -> None:
    """Gates (the version's AUC on the German Credit frame it was trained on, with labels ``y``
    when they were not the real ones), an independent validation and approval."""
    X, real_y = datasets.german_credit_xy()
    record_passing_gates(reg, people.dev, MODEL, version, X=X, y=real_y if y is None else y)
    reg.transition(people.dev, MODEL, version, "validation")
    reg.record_validation(people.val, MODEL, version, outcome="pass", summary="ok")
    reg.transition(people.app, MODEL, version, "approved")


def add_version(reg: Registry, people: Any, c: float = 0.5, threshold: float = 0.5) -> int:
    X, y = datasets.german_credit_xy()
    v = reg.log_model(
        people.dev, MODEL, scorecard(c), X=X, y=y, dataset_id="gc", fit=True, threshold=threshold
    )
    approve(reg, people, v.version)
    return v.version


@pytest.fixture
def served(registry: Registry, people: Any) -> Served:
    registry.create_model(
        people.dev,
        name=MODEL,
        purpose="PD",
        business_use="approve or decline",
        decision_type="credit approval",
        owner="risk",
        team="analytics",
        risk_tier="high",
    )
    v = add_version(registry, people)
    registry.set_alias(people.app, MODEL, v, "champion")
    registry.identity.create_user(people.admin, "los", ["service"])
    token = registry.identity.issue_token(people.admin, "los")
    X, _ = datasets.german_credit_xy()
    rows = [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in X.to_dict("records")
    ]
    return Served(registry, people, token, rows)


@pytest.fixture
def live(served: Served) -> Iterator[int]:
    """The app over real HTTP on a free loopback port (yields the port)."""
    with serve_in_thread(create_app(served.registry, refresh_seconds=3600)) as port:
        yield port


@pytest.fixture
def client(served: Served) -> Iterator[TestClient]:
    app = create_app(served.registry, refresh_seconds=3600)
    with TestClient(app) as c:
        yield c
