"""The monitoring policy (strict TOML) and the retraining triggers (a pure judgement)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from charter.errors import InvalidArgument
from charter.monitoring.policy import MonitoringPolicy, RetrainPolicy, parse_duration
from charter.monitoring.runner import window_bounds
from charter.monitoring.triggers import evaluate_triggers
from charter.monitoring.window import WindowResult
from charter.validation.policy import parse_policy

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def result(
    psi: list[float] | None = None,
    auc_change: float | None = None,
    auc_drop_p: float | None = 0.001,
    volume_ratio: float | None = 1.0,
    default_rate: float | None = 0.05,
    end: datetime = T0 + timedelta(days=30),
) -> WindowResult:
    features = [
        {"feature": f"x{i}", "psi": p, "p_value": 0.0, "tier": "stable"}
        for i, p in enumerate(psi or [])
    ]
    dims: dict[str, dict[str, Any]] = {
        "performance": {
            "judged": auc_change is not None,
            "auc_change": auc_change,
            "auc_drop_p": auc_drop_p,
        },
        "estimated": {},
        "data_drift": {"features": features, "features_drifted": 0},
        "prediction": {},
        "data_quality": {},
        "operations": {"volume_ratio": volume_ratio},
        "business": {"default_rate": default_rate},
    }
    return WindowResult("m", 1, end - timedelta(days=30), end, end, 1000, "matured", {}, dims)


def test_durations() -> None:
    assert parse_duration("30d", "w") == timedelta(days=30)
    assert parse_duration("12h", "w") == timedelta(hours=12)
    assert parse_duration("2w", "w") == timedelta(days=14)
    for bad in ("30", "0d", "-1d", 30, "1y"):
        with pytest.raises(InvalidArgument) as e:
            parse_duration(bad, "monitoring.window")
        assert e.value.field == "monitoring.window"


def test_policy_from_toml_and_strict_keys() -> None:
    p = MonitoringPolicy.from_toml(
        """
[monitoring]
window = "7d"
step = "1d"
label_maturity = "60d"
[monitoring.cost]
false_negative = 10.0
[retraining]
mode = "events"
kpi = { metric = "default_rate", max = 0.08 }
"""
    )
    assert p.monitoring.window == timedelta(days=7)
    assert p.monitoring.step == timedelta(days=1)
    assert p.monitoring.cost.false_negative == 10.0
    assert p.retraining.on_events and not p.retraining.on_schedule
    assert p.retraining.kpi is not None and p.retraining.kpi.max == 0.08
    with pytest.raises(InvalidArgument) as e:
        MonitoringPolicy.from_toml("[monitoring]\nwindwo = '7d'\n")
    assert e.value.field == "monitoring.windwo"
    assert "window" in (e.value.remedy or "")
    with pytest.raises(InvalidArgument) as e:
        MonitoringPolicy.from_toml("[monitoring]\nwindow = '7d'\nstep = '8d'\n")
    assert e.value.field == "monitoring.step"
    with pytest.raises(InvalidArgument) as e:
        MonitoringPolicy.from_toml("[retraining]\nkpi = { metric = 'profit', max = 1 }\n")
    assert e.value.field == "retraining.kpi.metric"


def test_the_shipped_model_policy_is_one_file_for_gates_and_monitoring() -> None:
    from importlib.resources import files

    text = files("charter.datasets").joinpath("german_credit_policy.toml").read_text()
    parse_policy(text, tier="high")
    MonitoringPolicy.from_toml(text)


def test_window_bounds_tumbling_and_sliding() -> None:
    end = T0 + timedelta(days=90)
    assert len(window_bounds(T0, end, timedelta(days=30), timedelta(days=30))) == 3
    sliding = window_bounds(T0, end, timedelta(days=30), timedelta(days=10))
    assert len(sliding) == 7
    assert sliding[-1] == (T0 + timedelta(days=60), end)


def test_event_triggers() -> None:
    pol = RetrainPolicy(mode="events", kpi=None)
    trained = T0 - timedelta(days=10)
    quiet = evaluate_triggers(pol, result([0.25, 0.3]), trained_at=trained)
    assert not quiet.fire  # two features drifted, three needed
    psi = evaluate_triggers(pol, result([0.25, 0.3, 0.21, 0.05]), trained_at=trained)
    assert psi.fire and psi.kinds == ("feature_psi",)
    auc = evaluate_triggers(pol, result(auc_change=-0.031), trained_at=trained)
    assert auc.kinds == ("auc_drop",)
    assert not evaluate_triggers(pol, result(auc_change=-0.029), trained_at=trained).fire
    # a 3% fall that is within the window's noise does not retrain
    noisy = result(auc_change=-0.034, auc_drop_p=0.08)
    assert not evaluate_triggers(pol, noisy, trained_at=trained).fire
    vol = evaluate_triggers(pol, result(volume_ratio=2.01), trained_at=trained)
    assert vol.kinds == ("volume",)
    kpi_pol = RetrainPolicy.from_dict(
        {"mode": "events", "kpi": {"metric": "default_rate", "max": 0.08}}
    )
    assert evaluate_triggers(kpi_pol, result(default_rate=0.09), trained_at=trained).kinds == (
        "kpi",
    )


def test_schedule_and_cooldown() -> None:
    pol = RetrainPolicy()  # hybrid, 90 days, 30-day cooldown
    r = result(end=T0 + timedelta(days=120))
    d = evaluate_triggers(pol, r, trained_at=T0)
    assert d.kinds == ("schedule",) and d.fire
    again = evaluate_triggers(
        pol, r, trained_at=T0, last_trigger_at=r.window_end - timedelta(days=5)
    )
    assert again.reasons and not again.fire and "cooldown" in (again.suppressed or "")
    later = evaluate_triggers(
        pol, r, trained_at=T0, last_trigger_at=r.window_end - timedelta(days=31)
    )
    assert later.fire
    off = evaluate_triggers(replace(pol, mode="off"), result([1, 1, 1]), trained_at=T0)
    assert not off.reasons
