"""The demo's second part: six months of a retail PD model in production.

The building blocks are library calls that the integration tests reuse: a champion registered,
validated, approved and deployed in simulated time (:func:`register_champion`), and the live
period replayed through the decision log day by day (:func:`replay_live`), with a callback at each
simulated day where monitoring, the scheduler or a canary can act.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd

from charter.clock import ManualClock
from charter.datasets import retail_pd
from charter.entities import Actor
from charter.registry.service import Registry

VALIDATION_OOT_DAYS = 90


@dataclass(frozen=True)
class Champion:
    version: int
    gate_run_id: int
    auc_holdout: float
    auc_out_of_time: float


def split_history(frame: pd.DataFrame, seed: int = 7) -> dict[str, pd.DataFrame]:
    """Train (70% of the first nine months), holdout (the other 30%) and out-of-time (the last
    three months before going live)."""
    cut = retail_pd.LIVE_START - timedelta(days=VALIDATION_OOT_DAYS)
    early = frame[frame["decision_time"] < cut]
    holdout = early.sample(frac=0.3, random_state=seed)
    return {
        "train": early.drop(holdout.index),
        "holdout": holdout,
        "out_of_time": frame[frame["decision_time"] >= cut],
    }


def register_champion(
    reg: Registry,
    *,
    developer: Actor,
    validator: Actor,
    approver: Actor,
    history: pd.DataFrame | None = None,
) -> Champion:
    """Create the retail PD model, train v1 on the history, run the policy's gates as the
    validator, recommend, approve and make it champion (each by the right person)."""
    from charter.validation.runner import validate

    frame = retail_pd.history() if history is None else history
    data = split_history(frame)
    reg.create_model(
        developer,
        name=retail_pd.MODEL,
        purpose="Probability that a retail loan applicant defaults (synthetic population)",
        business_use="Approve or decline personal loan applications",
        decision_type="credit approval",
        owner="Head of Retail Credit Risk",
        team="Retail Credit Analytics",
        risk_tier="high",
        upstream=["loan-origination.applications"],
        downstream=["loan-origination-system"],
    )
    train = data["train"]
    v = reg.log_model(
        developer,
        retail_pd.MODEL,
        retail_pd.estimator(),
        X=train[list(retail_pd.FEATURES)],
        y=train[retail_pd.LABEL].to_numpy(),
        dataset_id="synthetic-retail-applications/history-train",
        fit=True,
        description="Scaled logistic regression with one-hot categories",
        threshold=retail_pd.THRESHOLD,
    )
    reg.transition(developer, retail_pd.MODEL, v.version, "validation")
    run, record = validate(
        reg, validator, retail_pd.MODEL, v.version, retail_pd.policy_text(), data
    )
    perf = run.gate("performance").evidence["metrics"]
    auc_h, auc_o = perf["holdout"]["auc"], perf["out_of_time"]["auc"]
    if not run.passed:
        raise RuntimeError(f"the retail PD champion failed its gates: {run.failed_gates}")
    reg.record_validation(
        validator,
        retail_pd.MODEL,
        v.version,
        recommendation="approve",
        summary=f"All gates passed: AUC {auc_h:.3f} holdout, {auc_o:.3f} out-of-time",
        gate_run_id=record.id,
    )
    reg.decide(approver, retail_pd.MODEL, v.version, "approve", comment="first release")
    reg.set_alias(approver, retail_pd.MODEL, v.version, "champion", expected=None)
    return Champion(v.version, record.id, auc_h, auc_o)


def replay_live(
    reg: Registry,
    clock: ManualClock,
    frame: pd.DataFrame,
    *,
    on_day: Callable[[date], None] | None = None,
    canary_every: timedelta | None = timedelta(hours=12),
    **kw: Any,
) -> Any:
    """Replay live applications through the decision log; at the end of each simulated day the
    clock moves to the next midnight, then ``on_day`` runs."""
    from charter.monitoring.replay import replay_applications

    def tick(day: date) -> None:
        clock.now = datetime.combine(day + timedelta(days=1), time(0), UTC)
        if on_day is not None:
            on_day(day)

    return replay_applications(
        reg,
        retail_pd.MODEL,
        frame,
        features=list(retail_pd.FEATURES),
        on_day=tick,
        canary_every=canary_every,
        **kw,
    )
