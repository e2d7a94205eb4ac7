"""Small builders shared by tests."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from charter.entities import Actor, GateRun, ModelVersion
from charter.registry import lineage
from charter.registry.service import Registry

GATES_POLICY = 'name = "test-gates"\n\n[performance]\nmin_auc = 0.5\n'


@dataclass(frozen=True)
class DemoRun:
    """`charter demo` run once per test session (per xdist worker): what it printed and its home."""

    stdout: str
    home: Path


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


def gates_report(auc: float, rows: int, min_auc: float = 0.5) -> dict[str, Any]:
    """A one-gate report in the shape of the gate engine's (performance: AUC >= min_auc)."""
    ok = bool(auc >= min_auc)
    return {
        "passed": ok,
        "failed_gates": [] if ok else ["performance"],
        "gates": [
            {
                "gate": "performance",
                "passed": ok,
                "summary": f"AUC {auc:.3f} {'>=' if ok else '<'} {min_auc} on {rows} rows",
                "criteria": [
                    {
                        "name": "auc",
                        "dataset": "train",
                        "value": auc,
                        "limit": min_auc,
                        "op": ">=",
                        "passed": ok,
                        "detail": "",
                    },
                ],
                "warnings": [],
                "evidence": {},
            }
        ],
    }


def record_gates(
    reg: Registry,
    actor: Actor,
    name: str,
    version: int,
    *,
    X: pd.DataFrame | None = None,
    y: Any = None,
    min_auc: float = 0.5,
) -> GateRun:
    """Record an honest one-gate run: the version's real AUC on its training frame (``X, y``,
    or for versions made by :func:`log_version` the synthetic frame named by its dataset id)."""
    v = reg.get_version(name, version)
    if X is None:
        td = v.training_data
        seed = int(td.dataset_id.rsplit("-", 1)[-1]) if td is not None else 0
        frame, y = training_frame(seed=seed)
        X = frame[[f.name for f in v.feature_schema]]
    auc = float(roc_auc_score(y, reg.load_model(name, version).predict_proba(X)[:, 1]))
    data = lineage.describe_training_data(X, y, dataset_id="train")
    if v.training_data is not None:  # the frame is truly the one the version was trained on
        assert data.content_hash == v.training_data.content_hash
    report = gates_report(auc, len(X), min_auc)
    return reg.record_gate_run(
        actor,
        name,
        version,
        policy_name="test-gates",
        policy_sha256=hashlib.sha256(GATES_POLICY.encode()).hexdigest(),
        policy_text=GATES_POLICY,
        datasets={"train": {"sha256": data.content_hash, "rows": len(X)}},
        passed=report["passed"],
        failed_gates=report["failed_gates"],
        report=report,
    )


def record_passing_gates(
    reg: Registry, actor: Actor, name: str, version: int, **data: Any
) -> GateRun:
    run = record_gates(reg, actor, name, version, **data)
    assert run.passed, run.report
    return run


def approved_version(
    reg: Registry, dev: Actor, val: Actor, app: Actor, name: str = "pd-model", seed: int = 0
) -> ModelVersion:
    v = log_version(reg, dev, name, seed)
    record_passing_gates(reg, dev, name, v.version)
    reg.transition(dev, name, v.version, "validation")
    reg.record_validation(val, name, v.version, outcome="pass", summary="independent validation")
    return reg.transition(app, name, v.version, "approved")


class FakeTransport(asyncio.Transport):
    """A connection's transport that keeps what is written (for driving an HTTP protocol)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.paused = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False
