"""Experiment design: sample sizes and power against statsmodels (through charter.stats), the
duration arithmetic by hand, and the pre-registered plan's checks."""

from __future__ import annotations

import math

import pytest
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize

from charter.errors import InvalidArgument
from charter.experiment.design import (
    ExperimentPlan,
    Guardrails,
    applicants_needed,
    attributes_to_dict,
    build_plan,
    duration_days,
    parse_attributes,
    plan_experiment,
    plan_sha256,
)


def test_a_rate_design_matches_statsmodels_and_its_duration_is_hand_computed() -> None:
    d = plan_experiment(
        baseline_rate=0.12, mde=0.02, challenger_share=0.2, daily_volume=1000, alpha=0.05
    )
    ratio = 0.2 / 0.8
    exact = NormalIndPower().solve_power(
        effect_size=proportion_effectsize(0.14, 0.12), alpha=0.05, power=0.8, ratio=ratio
    )
    assert d.metric == "rate" and d.mode == "sample_size"
    assert d.ratio == pytest.approx(0.25)
    assert d.n_champion == math.ceil(exact)
    assert d.n_challenger == math.ceil(exact * ratio)
    assert d.n_total == d.n_champion + d.n_challenger
    # Applicants: enough for both arms at the 80/20 split; duration = ceil(applicants / volume).
    want = math.ceil(max(d.n_champion / 0.8, d.n_challenger / 0.2) - 1e-6)
    assert d.applicants_needed == want
    assert d.days == math.ceil(want / 1000)
    assert d.power == pytest.approx(0.8) and d.mde_at_target_power == pytest.approx(0.02)


def test_a_mean_design_matches_statsmodels() -> None:
    d = plan_experiment(sd=0.2, mde=0.01, challenger_share=0.5, alpha=0.01, power=0.9)
    exact = TTestIndPower().solve_power(effect_size=0.05, alpha=0.01, power=0.9, ratio=1.0)
    assert d.metric == "mean" and d.n_champion == math.ceil(exact)
    assert d.n_challenger == math.ceil(exact) and d.days is None
    assert d.applicants_needed == 2 * math.ceil(exact)


def test_duration_arithmetic_by_hand() -> None:
    # 1000 champion rows at 80% need 1250 applicants; 250 challenger rows at 20% need 1250 too
    # (1250 / 0.2 is 1250.0000000000002 in floating point: no extra applicant, no extra day).
    assert applicants_needed(1000, 250, 0.2) == 1250
    assert applicants_needed(1001, 251, 0.2) == 1255
    assert applicants_needed(10, 10, 0.5) == 20
    assert duration_days(1250, 125) == 10
    assert duration_days(1251, 125) == 11
    assert duration_days(0, 7) == 0
    with pytest.raises(InvalidArgument) as e:
        duration_days(10, 0)
    assert e.value.field == "daily_volume"


def test_a_fixed_duration_gives_power_and_mde_like_statsmodels() -> None:
    d = plan_experiment(
        baseline_rate=0.12, mde=0.02, challenger_share=0.2, daily_volume=1000, days=7
    )
    assert d.mode == "fixed_size" and d.days == 7 and d.applicants_needed == 7000
    assert (d.n_champion, d.n_challenger) == (5600, 1400)
    power = NormalIndPower().power(
        proportion_effectsize(0.14, 0.12), nobs1=5600, alpha=0.05, ratio=0.25
    )
    assert d.power == pytest.approx(power, rel=1e-9)
    h = NormalIndPower().solve_power(nobs1=5600, alpha=0.05, power=0.8, ratio=0.25)
    mde = math.sin(math.asin(math.sqrt(0.12)) + h / 2) ** 2 - 0.12
    assert d.mde_at_target_power == pytest.approx(mde, rel=1e-4)  # statsmodels solves to ~1e-5
    # The sample the design needs is larger than a week gives: the week has less power.
    full = plan_experiment(baseline_rate=0.12, mde=0.02, challenger_share=0.2)
    assert d.power is not None and d.power < 0.8 and full.n_champion > 5600
    n = plan_experiment(sd=1.0, challenger_share=0.5, applicants=400, daily_volume=150)
    assert (n.n_champion, n.n_challenger, n.days, n.power) == (200, 200, 3, None)
    d_eff = TTestIndPower().solve_power(nobs1=200, alpha=0.05, power=0.8, ratio=1.0)
    assert n.mde_at_target_power == pytest.approx(d_eff, rel=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "fld"),
    [
        ({"mde": 0.02}, "baseline_rate"),
        ({"baseline_rate": 0.1, "sd": 1.0, "mde": 0.02}, "sd"),
        ({"baseline_rate": 0.1}, "mde"),
        ({"baseline_rate": 0.1, "mde": 0.02, "challenger_share": 1.0}, "challenger_share"),
        ({"baseline_rate": 0.1, "mde": 0.02, "days": 7}, "daily_volume"),
        ({"baseline_rate": 0.1, "mde": 0.02, "daily_volume": 0}, "daily_volume"),
        ({"baseline_rate": 0.1, "mde": 0.02, "alternative": "greater"}, "alternative"),
        ({"baseline_rate": 0.1, "mde": 0.95}, "mde"),
    ],
)
def test_bad_design_inputs_name_the_field(kwargs: dict, fld: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        plan_experiment(**kwargs)
    assert e.value.field == fld and e.value.remedy


def test_a_plan_computes_its_rows_from_the_design_and_round_trips() -> None:
    attrs = {"sex": {"column": "personal_status_and_sex", "split": ":"},
             "age": {"column": "age_in_years", "bins": [25, 40, 60]}}  # fmt: skip
    p = build_plan(
        primary_metric="bad_rate", mde=0.02, baseline_rate=0.3, challenger_share=0.2,
        protected_attributes=attrs, guardrails={"max_latency_p99_ms": 80},
    )  # fmt: skip
    assert p.direction == "lower" and p.tau2 == pytest.approx(0.0004)
    exact = NormalIndPower().solve_power(
        effect_size=proportion_effectsize(0.28, 0.3), alpha=0.05, power=0.8, ratio=0.25
    )
    assert p.n_champion == math.ceil(exact) and p.n_challenger == math.ceil(exact * 0.25)
    assert p.guardrails == Guardrails(max_latency_p99_ms=80.0)
    assert attributes_to_dict(p.attributes) == {
        "sex": {"column": "personal_status_and_sex", "split": ":"},
        "age": {"column": "age_in_years", "bins": [25.0, 40.0, 60.0]},
    }
    again = ExperimentPlan.from_dict(p.to_dict())
    assert again == p and plan_sha256(again) == plan_sha256(p)
    auc = build_plan(kind="shadow", primary_metric="auc", mde=0.02, min_rows=500)
    assert (auc.n_champion, auc.n_challenger, auc.challenger_share) == (500, 500, None)


@pytest.mark.parametrize(
    ("kwargs", "fld"),
    [
        ({"primary_metric": "gini", "mde": 0.1}, "plan.primary_metric"),
        ({"primary_metric": "auc", "mde": 0.02, "challenger_share": 0.5}, "plan.min_rows"),
        ({"primary_metric": "approval_rate", "mde": 0.02, "challenger_share": 0.5},
         "plan.baseline_rate"),
        ({"primary_metric": "approval_rate", "mde": 0.02, "baseline_rate": 0.7},
         "plan.challenger_share"),
        ({"primary_metric": "mean_score", "mde": 0.02, "sd": 0.2, "challenger_share": 0.5},
         "plan.direction"),
        ({"kind": "shadow", "primary_metric": "bad_rate", "mde": 0.02, "baseline_rate": 0.3},
         "plan.primary_metric"),
        ({"primary_metric": "auc", "mde": 0.02, "min_rows": 100, "challenger_share": 0.5,
          "stopping_rule": "peek"}, "plan.stopping_rule"),
        ({"primary_metric": "auc", "mde": -0.02, "min_rows": 100, "challenger_share": 0.5},
         "plan.mde"),
        ({"primary_metric": "auc", "mde": 0.02, "min_rows": 100, "challenger_share": 0.5,
          "guardrails": {"max_latency": 5}}, "plan.guardrails.max_latency"),
        ({"primary_metric": "auc", "mde": 0.02, "min_rows": 100, "challenger_share": 0.5,
          "protected_attributes": {"sex": {"split": ":"}}},
         "plan.protected_attributes.sex.column"),
    ],
)  # fmt: skip
def test_bad_plan_inputs_name_the_field(kwargs: dict, fld: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        build_plan(**kwargs)
    assert e.value.field == fld and e.value.remedy


def test_attributes_take_one_of_split_map_or_bins() -> None:
    got = parse_attributes({"fw": {"column": "foreign_worker", "map": {"yes": "foreign"}}})
    assert got[0].mapping == {"yes": "foreign"} and got[0].split is None
    with pytest.raises(InvalidArgument) as e:
        parse_attributes({"x": {"column": "c", "split": ":", "bins": [1, 2]}})
    assert e.value.field == "plan.protected_attributes.x"
