"""Retraining triggers: a pure judgement of one monitored window against the retraining policy.

Hybrid by default: a schedule (retrain at least every ``schedule``) plus events. The events are
the issue's: PSI over ``feature_psi`` on ``min_features`` or more features, the AUC on matured
labels down more than ``auc_drop`` (relative) from the validation baseline and significantly so
(one-sided p under ``auc_drop_alpha``, with Hanley and McNeil's standard error: a 3% fall is
within the noise of a window of a few hundred defaults), volume more than
``volume_ratio`` times normal, and a business KPI outside its limit. A trigger does not fire again
within ``cooldown`` of the previous one, so a drift that lasts for months starts one retraining.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from charter.monitoring.policy import RetrainPolicy
from charter.monitoring.window import WindowResult


@dataclass(frozen=True)
class TriggerReason:
    kind: str  # schedule | feature_psi | auc_drop | volume | kpi
    detail: str
    value: float | None = None
    limit: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "detail": self.detail, "value": self.value, "limit": self.limit}


@dataclass(frozen=True)
class TriggerDecision:
    model_name: str
    version: int
    window_end: datetime
    reasons: tuple[TriggerReason, ...]
    suppressed: str | None = None  # why a trigger that would fire does not (cooldown)

    @property
    def fire(self) -> bool:
        return bool(self.reasons) and self.suppressed is None

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(r.kind for r in self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "version": self.version,
            "window_end": self.window_end.isoformat(),
            "fire": self.fire,
            "reasons": [r.to_dict() for r in self.reasons],
            "suppressed": self.suppressed,
        }


def evaluate_triggers(
    policy: RetrainPolicy,
    result: WindowResult,
    *,
    trained_at: datetime,
    last_trigger_at: datetime | None = None,
) -> TriggerDecision:
    """Which triggers this window fires. ``trained_at`` is when the version in service was
    registered; ``last_trigger_at`` the window end of the model's previous trigger."""
    reasons: list[TriggerReason] = []
    end = result.window_end
    if policy.on_schedule and end - trained_at >= policy.schedule:
        reasons.append(
            TriggerReason(
                "schedule",
                f"{(end - trained_at).days} days since v{result.version} was trained "
                f"(schedule: every {policy.schedule.days} days)",
                float((end - trained_at).days),
                float(policy.schedule.days),
            )
        )
    if policy.on_events:
        drifted = [
            (row["feature"], row["psi"])
            for row in result.dimensions["data_drift"].get("features", [])
            if row["psi"] is not None and row["psi"] > policy.feature_psi
        ]
        if len(drifted) >= policy.min_features:
            names = ", ".join(f"{f} ({p:.2f})" for f, p in sorted(drifted, key=lambda x: -x[1]))
            reasons.append(
                TriggerReason(
                    "feature_psi",
                    f"{len(drifted)} features with PSI over {policy.feature_psi:g}: {names}",
                    float(len(drifted)),
                    float(policy.min_features),
                )
            )
        change = result.value("auc_change")
        p_drop = result.dimensions["performance"].get("auc_drop_p")
        if (
            change is not None
            and change < -policy.auc_drop
            and p_drop is not None
            and p_drop < policy.auc_drop_alpha
        ):
            reasons.append(
                TriggerReason(
                    "auc_drop",
                    f"AUC {change:+.1%} from the validation baseline on matured labels "
                    f"(one-sided p {p_drop:.3g})",
                    change,
                    -policy.auc_drop,
                )
            )
        ratio = result.value("volume_ratio")
        if ratio is not None and ratio > policy.volume_ratio:
            reasons.append(
                TriggerReason(
                    "volume",
                    f"volume {ratio:.2f} times normal",
                    ratio,
                    policy.volume_ratio,
                )
            )
        if policy.kpi is not None:
            v = result.value(policy.kpi.metric)
            if policy.kpi.breached(v):
                limit = policy.kpi.max if policy.kpi.max is not None else policy.kpi.min
                reasons.append(
                    TriggerReason("kpi", f"{policy.kpi.metric} {v:.4g} outside its limit", v, limit)
                )
    suppressed = None
    if reasons and last_trigger_at is not None and end - last_trigger_at < policy.cooldown:
        suppressed = (
            f"the previous trigger ({last_trigger_at.date()}) is within the "
            f"{policy.cooldown.days}-day cooldown"
        )
    return TriggerDecision(result.model_name, result.version, end, tuple(reasons), suppressed)
