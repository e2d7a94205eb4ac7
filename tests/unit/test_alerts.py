"""The alert engine and its policy: tiers, hysteresis, cooldown, de-duplication, and a replay of
a synthetic stream with a known drift onset (the issue's definition of done)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from charter.errors import InvalidArgument
from charter.monitoring.alerts import (
    ACKNOWLEDGED,
    CRITICAL,
    DEESCALATED,
    ESCALATED,
    INFO,
    OPEN,
    OPENED,
    PENDING,
    REOPENED,
    RESOLVED,
    UPDATED,
    WARNING,
    AlertPolicy,
    AlertRule,
    AlertState,
    Evaluation,
    Observation,
    Transition,
    alertname,
    evaluate,
    fingerprint,
    labels_of,
    parse_duration,
)
from charter.monitoring.catalogue import METRICS

START = datetime(2026, 1, 1, tzinfo=UTC)
MODEL = "pd-model"


def month(i: int) -> tuple[datetime, datetime]:
    """Window i (0-based) of a monthly stream: [start, end)."""
    return START + timedelta(days=30 * i), START + timedelta(days=30 * (i + 1))


def obs(
    i: int, value: float | None, *, feature: str = "income", metric: str = "feature_psi", v: int = 1
) -> Observation:
    s, e = month(i)
    return Observation(
        metric=metric, value=value, feature=feature, model=MODEL, version=v, window_start=s,
        window_end=e,
    )  # fmt: skip


class Replay:
    """Feeds windows through ``evaluate`` in order, keeping the state like the store does."""

    def __init__(self, policy: AlertPolicy | None = None) -> None:
        self.policy = policy or AlertPolicy.default()
        self.state: dict[str, AlertState] = {}
        self.log: list[tuple[int, Transition]] = []

    def window(self, i: int, observations: Sequence[Observation]) -> Evaluation:
        ev = evaluate(self.state, observations, self.policy, month(i)[1])
        self.state = dict(ev.states)
        self.log.extend((i, t) for t in ev.transitions)
        return ev

    def of(self, feature: str, metric: str = "feature_psi") -> AlertState:
        return self.state[fingerprint(MODEL, metric, feature)]

    def kinds(self, feature: str = "income") -> list[tuple[int, str, str]]:
        return [(i, t.kind, t.after.severity) for i, t in self.log if t.after.feature == feature]


# ---------------------------------------------------------------------------------- the policy
def test_default_tiers_follow_the_psi_bands() -> None:
    rule = AlertPolicy.default().rules["feature_psi"]
    assert [rule.severity_of(x) for x in (0.0, 0.0999, 0.10, 0.2499, 0.25, 3.0)] == [
        None, None, WARNING, WARNING, CRITICAL, CRITICAL,
    ]  # fmt: skip
    assert rule.severity_of(float("inf")) == CRITICAL


def test_the_defaults_table_is_the_one_in_the_docstring() -> None:
    p = AlertPolicy.default()
    table = {m: (r.direction, r.info, r.warning, r.critical) for m, r in p.rules.items()}
    assert table == {
        "feature_psi": ("above", None, 0.10, 0.25),
        "score_psi": ("above", None, 0.10, 0.25),
        "approval_rate_change": ("abs", None, 0.05, 0.10),
        "auc_change": ("below", None, -0.03, -0.05),
        "auc_estimated_change": ("below", None, -0.03, -0.05),
        "missing_rate": ("above", None, 0.05, 0.20),
        "schema_violation_rate": ("above", None, 0.01, 0.05),
        "new_category_rate": ("above", None, 0.01, 0.05),
        "volume_ratio": ("above", None, 2.0, 3.0),
        "error_rate": ("above", None, 0.01, 0.05),
        "latency_p99_ms": ("above", None, 50.0, 200.0),
        "ece": ("above", 0.05, 0.10, None),
        "features_drifted": ("above", 3.0, None, None),
    }
    assert all(m in METRICS for m in table)
    import charter.monitoring.alerts as mod

    for metric in table:  # every default rule is a row of the module's table
        assert f"\n{metric} " in (mod.__doc__ or "")


def test_directions_below_and_abs() -> None:
    p = AlertPolicy.default()
    auc = p.rules["auc_change"]
    assert [auc.severity_of(x) for x in (0.02, -0.029, -0.03, -0.049, -0.05)] == [
        None, None, WARNING, WARNING, CRITICAL,
    ]  # fmt: skip
    appr = p.rules["approval_rate_change"]
    assert [appr.severity_of(x) for x in (0.04, -0.06, 0.07, -0.12)] == [
        None, WARNING, WARNING, CRITICAL,
    ]  # fmt: skip
    assert p.rules["ece"].severity_of(0.06) == INFO
    assert p.rules["features_drifted"].severity_of(3) == INFO
    assert p.rules["features_drifted"].severity_of(2) is None


def test_hysteresis_holds_a_tier_until_the_value_is_past_its_clear_point() -> None:
    psi = AlertPolicy.default().rules["feature_psi"]
    assert psi.clear_point(0.10) == pytest.approx(0.09)
    assert psi.judge(0.095, WARNING) == WARNING  # dipped just below 0.10: still held
    assert psi.judge(0.089, WARNING) is None
    assert psi.judge(0.24, CRITICAL) == CRITICAL  # 0.25 clears under 0.225
    assert psi.judge(0.22, CRITICAL) == WARNING
    assert psi.judge(0.095, None) is None  # nothing held: no hysteresis
    auc = AlertPolicy.default().rules["auc_change"]  # a negative threshold, direction below
    assert auc.clear_point(-0.03) == pytest.approx(-0.027)
    assert auc.judge(-0.028, WARNING) == WARNING
    assert auc.judge(-0.026, WARNING) is None


TOML = """
name = "retail"          # other top-level keys belong to other readers

[alerts]
cooldown = "14d"
clear_windows = 3

[alerts.feature_psi]
warning = 0.12
critical = 0.30
hysteresis = 0.2

[alerts.ece]
info = false
critical = 0.2

[alerts.auc]
direction = "below"
warning = 0.70
critical = 0.65

[alerts.volume_ratio]
enabled = false
"""


def test_toml_is_merged_key_by_key_over_the_defaults() -> None:
    p = AlertPolicy.from_toml(TOML)
    psi = p.rules["feature_psi"]
    assert (psi.warning, psi.critical, psi.hysteresis) == (0.12, 0.30, 0.2)
    assert psi.cooldown == timedelta(days=14) and psi.clear_windows == 3  # shared settings
    assert p.rules["score_psi"].cooldown == timedelta(days=14)
    assert (p.rules["ece"].info, p.rules["ece"].warning, p.rules["ece"].critical) == (
        None, 0.10, 0.2,
    )  # fmt: skip
    assert p.rules["auc"].severity_of(0.68) == WARNING
    assert p.rule("volume_ratio") is None and "volume_ratio" in p.rules
    assert AlertPolicy.from_toml('name = "x"\n') == AlertPolicy.default()
    only = AlertPolicy.from_dict({"use_defaults": False, "score_psi": {}})
    assert set(only.rules) == {"score_psi"}
    assert p.to_dict()["feature_psi"]["cooldown"] == "2w"


@pytest.mark.parametrize(
    ("table", "field", "words"),
    [
        ({"feature_psi": {"critcal": 0.3}}, "policy.alerts.feature_psi.critcal", "critical"),
        ({"feature_pis": {"critical": 0.3}}, "policy.alerts.feature_pis", "feature_psi"),
        ({"hysteresys": 0.1}, "policy.alerts.hysteresys", "use_defaults"),
        ({"feature_psi": {"critical": "high"}}, "policy.alerts.feature_psi.critical", "number"),
        ({"feature_psi": {"critical": 0.05}}, "policy.alerts.feature_psi.critical", "warning"),
        ({"auc_change": {"critical": -0.01}}, "policy.alerts.auc_change.critical", "below"),
        ({"feature_psi": {"hysteresis": 1.5}}, "policy.alerts.feature_psi.hysteresis", "[0, 1)"),
        ({"feature_psi": {"clear_windows": 0}}, "policy.alerts.feature_psi.clear_windows", "1"),
        ({"feature_psi": {"cooldown": "soon"}}, "policy.alerts.feature_psi.cooldown", "7d"),
        ({"feature_psi": {"direction": "up"}}, "policy.alerts.feature_psi.direction", "below"),
        ({"auc": {"warning": 0.7}}, "policy.alerts.auc.direction", "direction"),
        ({"approval_rate_change": {"warning": -0.05}}, "policy.alerts.approval_rate_change.warning",
         "0.05"),
        ({"ece": {"info": False, "warning": False, "critical": False}}, "policy.alerts.ece",
         "enabled = false"),
        ({"use_defaults": "yes"}, "policy.alerts.use_defaults", "true or false"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_naming_the_field_and_the_fix(
    table: Mapping[str, object], field: str, words: str
) -> None:
    with pytest.raises(InvalidArgument) as e:
        AlertPolicy.from_dict(table)
    assert e.value.field == field
    assert words in (e.value.remedy or "") + e.value.message


def test_errors_name_the_field_under_the_callers_prefix() -> None:
    with pytest.raises(InvalidArgument) as e:
        AlertPolicy.from_dict({"score_psi": {"critical": 0.01}}, where="monitoring.alerts")
    assert e.value.field == "monitoring.alerts.score_psi.critical"
    with pytest.raises(InvalidArgument) as e:
        AlertPolicy.from_toml("[alerts\n")
    assert e.value.field == "policy"


def test_durations() -> None:
    assert parse_duration("90m", "x") == timedelta(minutes=90)
    assert parse_duration("2w", "x") == timedelta(days=14)
    assert parse_duration(0, "x") == timedelta(0)
    for bad in ("-1d", "1y", True, -5):
        with pytest.raises(InvalidArgument):
            parse_duration(bad, "x")


def test_a_rule_must_be_for_a_catalogue_metric() -> None:
    with pytest.raises(InvalidArgument) as e:
        AlertRule(metric="gini_change", warning=0.1)
    assert e.value.field == "policy.alerts.gini_change"


# ------------------------------------------------------------------ the replay (definition of done)
ONSET = 6  # the seventh monthly window is the first with drift


def drifting_stream(seed: int = 7) -> list[list[Observation]]:
    """Twelve monthly windows: three stable features with PSI drawn around 0.02, and ``income``
    drifting from the onset (0.15 rising to 0.40)."""
    rng = np.random.default_rng(seed)
    drift = [0.15, 0.18, 0.22, 0.28, 0.33, 0.40]
    out = []
    for i in range(12):
        values = {f: float(rng.gamma(4.0, 0.005)) for f in ("income", "age", "region")}
        if i >= ONSET:
            values["income"] = drift[i - ONSET] + float(rng.normal(0, 0.005))
        out.append([obs(i, v, feature=f) for f, v in values.items()])
    return out


def test_replay_first_warning_within_two_windows_no_critical_when_stable_one_alert() -> None:
    stream = drifting_stream()
    stable = [o.value for w in stream[:ONSET] for o in w]
    assert max(v for v in stable if v is not None) < 0.10  # the stream is what it says
    r = Replay()
    for i, window in enumerate(stream):
        r.window(i, window)

    # the first WARNING comes within two windows of the onset
    first_warning = min(i for i, t in r.log if t.after.severity == WARNING)
    assert ONSET <= first_warning <= ONSET + 1
    # no CRITICAL (indeed nothing at all) on the stable months
    assert not [t for i, t in r.log if i < ONSET]
    assert all(t.after.feature == "income" for _, t in r.log)  # stable features stay quiet
    # repeated breaches make one alert: one fingerprint, one opening, escalated once
    assert r.kinds() == [
        (6, OPENED, WARNING),
        (7, UPDATED, WARNING),
        (8, UPDATED, WARNING),
        (9, ESCALATED, CRITICAL),
        (10, UPDATED, CRITICAL),
        (11, UPDATED, CRITICAL),
    ]
    assert len({t.after.fingerprint for _, t in r.log}) == 1
    assert [i for i, t in r.log if t.notify] == [6, 9]  # opened, escalated: not one per window
    alert = r.of("income")
    assert (alert.status, alert.severity, alert.windows_breached) == (OPEN, CRITICAL, 6)
    assert alert.first_window_end == month(ONSET)[1]
    assert alert.value == pytest.approx(0.40, abs=0.02)


def test_a_dip_just_under_the_threshold_does_not_resolve_and_clean_windows_do() -> None:
    r = Replay()
    values = [0.02, 0.15, 0.095, 0.12, 0.095, 0.05, 0.04, 0.03]
    for i, v in enumerate(values):
        r.window(i, [obs(i, v)])
    assert r.kinds() == [
        (1, OPENED, WARNING),
        (2, UPDATED, WARNING),  # 0.095 >= 0.09: hysteresis holds it
        (3, UPDATED, WARNING),
        (4, UPDATED, WARNING),
        (5, UPDATED, WARNING),  # 0.05: first clean window of two
        (6, RESOLVED, WARNING),
    ]
    resolved = r.of("income")
    assert resolved.status == RESOLVED and resolved.resolved_at == month(6)[1]
    assert resolved.clean_windows == 2 and resolved.windows_breached == 4
    assert [t.notification_status for _, t in r.log if t.notify] == ["firing", "resolved"]


def test_a_single_clean_window_resets_when_the_breach_returns() -> None:
    r = Replay()
    for i, v in enumerate([0.2, 0.01, 0.2, 0.01, 0.01]):
        r.window(i, [obs(i, v)])
    assert [k for _, k, _ in r.kinds()] == [OPENED, UPDATED, UPDATED, UPDATED, RESOLVED]


def test_de_escalation_waits_for_clear_windows_and_respects_the_cooldown() -> None:
    r = Replay()
    for i, v in enumerate([0.30, 0.20, 0.20, 0.20, 0.30, 0.21, 0.21]):
        r.window(i, [obs(i, v)])
    assert r.kinds() == [
        (0, OPENED, CRITICAL),
        (1, UPDATED, CRITICAL),  # 0.20 < 0.225: under the critical clear point, 1 of 2
        (2, DEESCALATED, WARNING),
        (3, UPDATED, WARNING),
        (4, ESCALATED, CRITICAL),  # severity rises: always notified
        (5, UPDATED, CRITICAL),
        (6, DEESCALATED, WARNING),
    ]
    notified = [(i, t.kind) for i, t in r.log if t.notify]
    # monthly windows and a 30-day cooldown: both step-downs come a month after a notification
    assert notified == [(0, OPENED), (2, DEESCALATED), (4, ESCALATED), (6, DEESCALATED)]
    slow = Replay(AlertPolicy.from_dict({"cooldown": "90d"}))
    for i, v in enumerate([0.30, 0.20, 0.20, 0.20, 0.30, 0.21, 0.21]):
        slow.window(i, [obs(i, v)])
    assert [(i, t.kind) for i, t in slow.log if t.notify] == [(0, OPENED), (4, ESCALATED)]


def test_a_breach_within_the_cooldown_reopens_the_same_alert() -> None:
    policy = AlertPolicy.from_dict({"cooldown": "45d"})
    r = Replay(policy)
    for i, v in enumerate([0.15, 0.01, 0.01, 0.16]):  # resolved at 2, breached again at 3
        r.window(i, [obs(i, v)])
    assert [k for _, k, _ in r.kinds()] == [OPENED, UPDATED, RESOLVED, REOPENED]
    reopened = r.log[-1][1]
    assert reopened.notify and reopened.after.started_at == month(0)[1]  # the original start
    assert reopened.after.windows_breached == 2 and reopened.after.resolved_at is None
    # outside the cooldown it is a new alert (the store then writes a new row)
    r2 = Replay(AlertPolicy.from_dict({"cooldown": "20d"}))
    for i, v in enumerate([0.15, 0.01, 0.01, 0.16]):
        r2.window(i, [obs(i, v)])
    assert [k for _, k, _ in r2.kinds()] == [OPENED, UPDATED, RESOLVED, OPENED]
    assert r2.log[-1][1].before is None and r2.log[-1][1].after.started_at == month(3)[1]


def test_one_alert_per_feature_and_versions_do_not_split_it() -> None:
    r = Replay()
    r.window(0, [obs(0, 0.3, feature="income"), obs(0, 0.12, feature="age")])
    # champion and challenger in one window: the worse value is judged, once
    r.window(1, [obs(1, 0.13, feature="income", v=1), obs(1, 0.31, feature="income", v=2)])
    # the next version carries on the same alert
    r.window(2, [obs(2, 0.35, feature="income", v=2), obs(2, 0.12, feature="age", v=2)])
    fps = {t.after.fingerprint for _, t in r.log}
    assert len(fps) == 2
    assert [k for _, k, _ in r.kinds("income")] == [OPENED, UPDATED, UPDATED]
    assert r.of("income").version == 2 and r.of("income").value == 0.35
    assert r.of("income").fingerprint == fingerprint(MODEL, "feature_psi", "income")
    assert fingerprint(MODEL, "feature_psi", "income") != fingerprint(MODEL, "feature_psi", "age")
    assert labels_of(r.of("income")) == {
        "alertname": "CharterFeaturePsi",
        "severity": CRITICAL,
        "model": MODEL,
        "metric": "feature_psi",
        "version": "2",
        "feature": "income",
    }
    assert alertname("auc_estimated_change") == "CharterAucEstimatedChange"


def test_min_windows_keeps_a_new_alert_pending_until_the_streak_is_long_enough() -> None:
    r = Replay(AlertPolicy.from_dict({"min_windows": 2}))
    r.window(0, [obs(0, 0.2)])
    assert r.of("income").status == PENDING and not r.log
    ev = r.window(1, [obs(1, 0.01)])  # the streak breaks: forgotten
    assert ev.dropped == (fingerprint(MODEL, "feature_psi", "income"),) and not r.state
    r.window(2, [obs(2, 0.2)])
    r.window(3, [obs(3, 0.3)])
    assert r.kinds() == [(3, OPENED, CRITICAL)]
    assert r.of("income").first_window_end == month(2)[1]
    assert r.of("income").windows_breached == 2


def test_not_judged_values_and_old_windows_change_nothing() -> None:
    r = Replay()
    r.window(0, [obs(0, 0.3)])
    before = dict(r.state)
    ev = r.window(1, [obs(1, None), obs(1, float("nan"))])
    assert not ev.transitions and r.state == before
    again = r.window(0, [obs(0, 0.01)])  # a window judged already (re-applied): skipped
    assert again.skipped == (fingerprint(MODEL, "feature_psi", "income"),)
    assert r.state == before
    other = r.window(1, [obs(1, 0.5, metric="gini")])  # no rule for gini: ignored
    assert not other.transitions


def test_an_escalation_puts_an_acknowledged_alert_back_to_open() -> None:
    r = Replay()
    r.window(0, [obs(0, 0.12)])
    fp = fingerprint(MODEL, "feature_psi", "income")
    r.state[fp] = replace(r.state[fp], status=ACKNOWLEDGED)
    r.window(1, [obs(1, 0.13)])
    assert r.state[fp].status == ACKNOWLEDGED
    r.window(2, [obs(2, 0.3)])
    assert r.state[fp].status == OPEN and r.log[-1][1].kind == ESCALATED


def test_evaluate_refuses_a_naive_time_and_observations_check_their_window() -> None:
    with pytest.raises(InvalidArgument) as e:
        evaluate({}, [], AlertPolicy.default(), datetime(2026, 1, 1))
    assert e.value.field == "now"
    s, end = month(0)
    with pytest.raises(InvalidArgument) as e:
        Observation(metric="feature_psi", value=0.1, model=MODEL, window_start=end, window_end=s)
    assert e.value.field == "observation.window_end"
