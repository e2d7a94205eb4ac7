"""Routing (entity key + traffic policy -> variant) and the canary state machine, both pure."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import os
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import chisquare

from charter.errors import InvalidArgument
from charter.serving.routing import (
    CanaryPlan,
    CanaryState,
    GuardrailObservation,
    RouteDecision,
    TrafficPolicy,
    advance,
    bucket,
    route,
    share,
)

N_KEYS = 100_000
KEYS = [f"applicant-{i:07d}" for i in range(N_KEYS)]


def policy(**kw: Any) -> TrafficPolicy:
    base: dict[str, Any] = {"model": "credit-pd", "champion": 1}
    base.update(kw)
    return TrafficPolicy(**base)


def variants(p: TrafficPolicy, keys: list[str] = KEYS) -> list[str]:
    return [route(k, p).variant for k in keys]


# --------------------------------------------------------------------------------------------------
# bucket
# --------------------------------------------------------------------------------------------------

# Worked once by hand for key "applicant-42", salt "credit-pd-v1":
# sha256(b"credit-pd-v1\x1fapplicant-42") starts with the 8 bytes ab dd e9 6c 8c 54 38 a4,
# u = 0xabdde96c8c5438a4 = 12384311202758801572, bucket = (u >> 11) / 2**53 = 0.6713548555383831.
EXPECTED_PREFIX = "abdde96c8c5438a4"
EXPECTED_BUCKET = 0.6713548555383831


def test_bucket_matches_the_hand_computed_value() -> None:
    digest = hashlib.sha256(b"credit-pd-v1" + b"\x1f" + b"applicant-42").digest()
    assert digest[:8].hex() == EXPECTED_PREFIX
    u = int.from_bytes(digest[:8], "big")
    assert u == 12384311202758801572
    assert (u >> 11) / 2**53 == EXPECTED_BUCKET
    assert bucket("applicant-42", "credit-pd-v1") == EXPECTED_BUCKET


def test_bucket_is_the_same_across_calls_and_processes() -> None:
    assert [bucket("applicant-42", "credit-pd-v1") for _ in range(3)] == [EXPECTED_BUCKET] * 3
    code = (
        "from charter.serving.routing import bucket; "
        "print(repr(bucket('applicant-42', 'credit-pd-v1')))"
    )
    for seed in ("0", "12345"):  # Python's own hash() differs between these; buckets must not.
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert float(out.stdout.strip()) == EXPECTED_BUCKET


def test_bucket_is_in_the_unit_interval_and_never_one() -> None:
    values = [bucket(k, "s") for k in KEYS[:10_000]]
    assert all(0.0 <= v < 1.0 for v in values)
    # The largest possible 64-bit prefix still maps below 1 (plain u / 2**64 would round to 1.0).
    assert ((2**64 - 1) >> 11) / 2**53 < 1.0
    assert (2**64 - 1) / 2**64 == 1.0


def test_buckets_are_uniform() -> None:
    counts = [0] * 20
    for k in KEYS:
        counts[int(bucket(k, "credit-pd") * 20)] += 1
    result = chisquare(counts)
    assert result.pvalue > 0.001, (counts, result)


def test_bucket_handles_non_ascii_keys() -> None:
    expected = int.from_bytes(hashlib.sha256("s\x1fjosé".encode()).digest()[:8], "big") >> 11
    assert bucket("josé", "s") == expected / 2**53


@pytest.mark.parametrize("key", ["", None, 42])
def test_bucket_and_route_refuse_a_bad_entity_key(key: Any) -> None:
    with pytest.raises(InvalidArgument) as exc:
        bucket(key, "s")
    assert exc.value.field == "entity_key"
    with pytest.raises(InvalidArgument) as exc:
        route(key, policy())
    assert exc.value.field == "entity_key"
    assert isinstance(exc.value, ValueError)


# --------------------------------------------------------------------------------------------------
# route
# --------------------------------------------------------------------------------------------------


def test_champion_only_policy_always_answers_with_the_champion() -> None:
    p = policy(champion=7)
    decisions = [route(k, p) for k in KEYS[:1000]]
    assert {d.version for d in decisions} == {7}
    assert {d.variant for d in decisions} == {"champion"}


def test_route_is_sticky() -> None:
    p = policy(challenger=2, challenger_share=0.3, canary=3, canary_share=0.2, shadows=(4,))
    first = [route(k, p) for k in KEYS[:5000]]
    again = [route(k, p) for k in KEYS[:5000]]
    assert first == again
    copy = TrafficPolicy.from_dict(p.to_dict())
    assert [route(k, copy) for k in KEYS[:5000]] == first


def test_route_regions() -> None:
    p = policy(challenger=2, challenger_share=0.3, canary=3, canary_share=0.2)
    for k in KEYS[:5000]:
        d = route(k, p)
        if d.bucket < 0.2:
            assert (d.variant, d.version) == ("canary", 3)
        elif d.bucket >= 0.7:
            assert (d.variant, d.version) == ("challenger", 2)
        else:
            assert (d.variant, d.version) == ("champion", 1)


def test_shares_are_honoured_within_one_percent() -> None:
    p = policy(challenger=2, challenger_share=0.10, canary=3, canary_share=0.05)
    vs = variants(p)
    assert abs(vs.count("canary") / N_KEYS - 0.05) < 0.01
    assert abs(vs.count("challenger") / N_KEYS - 0.10) < 0.01
    assert abs(vs.count("champion") / N_KEYS - 0.85) < 0.01


def test_full_shares() -> None:
    assert set(variants(policy(canary=3, canary_share=1.0), KEYS[:2000])) == {"canary"}
    assert set(variants(policy(challenger=2, challenger_share=1.0), KEYS[:2000])) == {"challenger"}
    both = variants(policy(challenger=2, challenger_share=0.9, canary=3, canary_share=0.1))
    assert "champion" not in both


def test_growing_the_canary_keeps_every_canary_entity_and_moves_no_challenger() -> None:
    # 5% -> 20% -> 50% next to a 30% challenger, then 100% once the challenger is withdrawn.
    policies = [
        policy(challenger=2, challenger_share=0.3, canary=3, canary_share=s)
        for s in (0.05, 0.20, 0.50)
    ]
    policies.append(policy(challenger=2, challenger_share=0.0, canary=3, canary_share=1.0))
    steps = [variants(p) for p in policies]
    for before, after in itertools.pairwise(steps):
        was_canary = [i for i, v in enumerate(before) if v == "canary"]
        assert was_canary
        assert all(after[i] == "canary" for i in was_canary)
    # While the challenger's share stays 30%, only champion entities join the canary and the
    # challenger's population is untouched.
    for before, after in itertools.pairwise(steps[:3]):
        joined = [i for i, v in enumerate(after) if v == "canary" and before[i] != "canary"]
        assert joined
        assert all(before[i] == "champion" for i in joined)
        assert [i for i, v in enumerate(before) if v == "challenger"] == [
            i for i, v in enumerate(after) if v == "challenger"
        ]
    assert abs(steps[1].count("canary") / N_KEYS - 0.20) < 0.01


def test_growing_the_challenger_keeps_every_challenger_entity() -> None:
    small = variants(policy(challenger=2, challenger_share=0.1, canary=3, canary_share=0.1))
    large = variants(policy(challenger=2, challenger_share=0.4, canary=3, canary_share=0.1))
    assert all(large[i] == "challenger" for i, v in enumerate(small) if v == "challenger")
    assert [v == "canary" for v in small] == [v == "canary" for v in large]


def test_the_salt_reshuffles_assignments() -> None:
    keys = KEYS[:20_000]
    default = variants(policy(canary=3, canary_share=0.2), keys)
    named = variants(policy(canary=3, canary_share=0.2, salt="credit-pd"), keys)
    assert default == named  # the default salt is the model name
    other = variants(policy(canary=3, canary_share=0.2, salt="experiment-2"), keys)
    in_both = sum(a == b == "canary" for a, b in zip(default, other, strict=True))
    # Independent assignments: about 20% x 20% = 4% of keys are on the canary under both salts.
    assert abs(in_both / len(keys) - 0.04) < 0.01
    # A different model with the same versions and shares draws a different canary population.
    other_model = variants(TrafficPolicy("fraud", 1, canary=3, canary_share=0.2), keys)
    assert other_model != default


def test_shadows_are_always_passed_through() -> None:
    p = policy(challenger=2, challenger_share=0.3, canary=3, canary_share=0.3, shadows=(5, 6))
    decisions = [route(k, p) for k in KEYS[:3000]]
    assert {d.variant for d in decisions} == {"champion", "challenger", "canary"}
    assert all(d.shadows == (5, 6) for d in decisions)
    assert all(d.version not in d.shadows for d in decisions)
    assert route("x", policy()).shadows == ()


def test_route_decision_is_frozen_and_serialisable() -> None:
    d = route("applicant-42", policy(shadows=(2,), salt="credit-pd-v1"))
    assert d == RouteDecision(1, "champion", EXPECTED_BUCKET, (2,))
    assert d.to_dict() == {
        "version": 1,
        "variant": "champion",
        "bucket": EXPECTED_BUCKET,
        "shadows": [2],
    }
    attribute = "version"
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(d, attribute, 2)


@given(
    key=st.text(min_size=1, max_size=40),
    salt=st.text(max_size=10),
    canary_share=st.floats(0.0, 1.0),
    fraction=st.floats(0.0, 1.0),
)
def test_route_is_deterministic_and_the_bucket_lies_in_its_variant_region(
    key: str, salt: str, canary_share: float, fraction: float
) -> None:
    challenger_share = (1.0 - canary_share) * fraction
    p = policy(
        challenger=2,
        challenger_share=challenger_share,
        canary=3,
        canary_share=canary_share,
        shadows=(9,),
        salt=salt,
    )
    d = route(key, p)
    assert d == route(key, p)
    assert d.bucket == bucket(key, p.effective_salt)
    assert 0.0 <= d.bucket < 1.0
    assert d.shadows == (9,)
    if d.variant == "canary":
        assert d.version == 3 and d.bucket < canary_share
    elif d.variant == "challenger":
        assert d.version == 2 and canary_share <= d.bucket and d.bucket >= 1.0 - challenger_share
    else:
        assert d.version == 1 and canary_share <= d.bucket < 1.0 - challenger_share


# --------------------------------------------------------------------------------------------------
# TrafficPolicy validation
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"model": ""}, "model"),
        ({"champion": 0}, "champion"),
        ({"champion": True}, "champion"),
        ({"champion": "1"}, "champion"),
        ({"challenger": 2, "challenger_share": 1.5}, "challenger_share"),
        ({"challenger": 2, "challenger_share": -0.1}, "challenger_share"),
        ({"challenger": 2, "challenger_share": float("nan")}, "challenger_share"),
        ({"canary": 3, "canary_share": 2.0}, "canary_share"),
        ({"challenger_share": 0.1}, "challenger"),
        ({"canary_share": 0.1}, "canary"),
        (
            {"challenger": 2, "challenger_share": 0.6, "canary": 3, "canary_share": 0.5},
            "challenger_share",
        ),
        ({"challenger": 1}, "challenger"),
        ({"canary": 1}, "canary"),
        ({"challenger": 2, "canary": 2}, "canary"),
        ({"shadows": (1,)}, "shadows"),
        ({"challenger": 2, "shadows": (2,)}, "shadows"),
        ({"canary": 3, "shadows": (3,)}, "shadows"),
        ({"shadows": (4, 4)}, "shadows"),
        ({"shadows": (0,)}, "shadows"),
        ({"shadows": "4"}, "shadows"),
        ({"salt": 5}, "salt"),
    ],
)
def test_policy_validation_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        policy(**kwargs)
    assert exc.value.field == field
    assert exc.value.remedy
    assert isinstance(exc.value, ValueError)


def test_policy_accepts_edge_values() -> None:
    p = policy(challenger=2, challenger_share=0.9, canary=3, canary_share=0.1, shadows=[4, 5])
    assert p.shadows == (4, 5)  # a list is stored as a tuple, so the policy stays hashable
    assert hash(p) == hash(
        policy(challenger=2, challenger_share=0.9, canary=3, canary_share=0.1, shadows=(4, 5))
    )
    configured_but_idle = policy(canary=3, canary_share=0.0)
    assert set(variants(configured_but_idle, KEYS[:1000])) == {"champion"}


def test_policy_round_trips_through_a_dict() -> None:
    p = policy(
        challenger=2, challenger_share=0.25, canary=3, canary_share=0.05, shadows=(4,), salt="exp-1"
    )
    d = p.to_dict()
    assert d == {
        "model": "credit-pd",
        "champion": 1,
        "challenger": 2,
        "challenger_share": 0.25,
        "canary": 3,
        "canary_share": 0.05,
        "shadows": [4],
        "salt": "exp-1",
    }
    assert TrafficPolicy.from_dict(d) == p
    assert TrafficPolicy.from_dict({"model": "m", "champion": 1}) == TrafficPolicy("m", 1)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"champion": 1}, "model"),
        ({"model": "m"}, "champion"),
        ({"model": "m", "champion": 1, "weights": [1]}, "weights"),
        ({"model": "m", "champion": 1, "shadows": [1]}, "shadows"),
    ],
)
def test_policy_from_dict_refuses_bad_data(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        TrafficPolicy.from_dict(data)
    assert exc.value.field == field


# --------------------------------------------------------------------------------------------------
# Canary plan
# --------------------------------------------------------------------------------------------------

PLAN = CanaryPlan(
    steps=(0.05, 0.20, 1.0),
    min_decisions=500,
    max_error_rate=0.01,
    max_latency_p99_ms=250.0,
    max_score_psi=0.10,
    max_approval_rate_delta=0.05,
)


def healthy(decisions: int = 250) -> GuardrailObservation:
    return GuardrailObservation(
        decisions=decisions,
        errors=0,
        latency_p99_ms=120.0,
        score_psi=0.02,
        approval_rate_canary=0.61,
        approval_rate_champion=0.60,
    )


def test_hold_advance_promote() -> None:
    state = CanaryState()
    assert share(PLAN, state) == 0.05
    trail: list[tuple[str, int, str, float]] = []
    for _ in range(6):
        state, action = advance(PLAN, state, healthy(250))
        trail.append((action, state.step, state.status, share(PLAN, state)))
    assert trail == [
        ("hold", 0, "running", 0.05),
        ("advance", 1, "running", 0.20),
        ("hold", 1, "running", 0.20),
        ("advance", 2, "running", 1.0),
        ("hold", 2, "running", 1.0),
        ("promote", 2, "promoted", 1.0),
    ]
    assert state.decisions_in_step == 500
    assert "promoted" in state.reason


def test_hold_counts_decisions_and_advance_resets_them() -> None:
    state, action = advance(PLAN, CanaryState(), healthy(499))
    assert (action, state.decisions_in_step) == ("hold", 499)
    assert "499 of 500" in state.reason
    state, action = advance(PLAN, state, healthy(0))
    assert (action, state.decisions_in_step) == ("hold", 499)
    state, action = advance(PLAN, state, healthy(700))
    assert (action, state.step, state.decisions_in_step) == ("advance", 1, 0)
    assert "20%" in state.reason


def test_a_value_equal_to_the_limit_holds() -> None:
    at_limit = GuardrailObservation(
        decisions=500,
        errors=5,  # exactly 1%
        latency_p99_ms=250.0,
        score_psi=0.10,
        approval_rate_canary=0.65,
        approval_rate_champion=0.60,
    )
    assert advance(PLAN, CanaryState(), at_limit)[1] == "advance"
    just_over = dataclasses.replace(at_limit, latency_p99_ms=250.001)
    assert advance(PLAN, CanaryState(), just_over)[1] == "rollback"


@pytest.mark.parametrize(
    ("change", "guardrail", "observed", "limit"),
    [
        ({"errors": 6}, "error_rate", "0.024", "max_error_rate 0.01"),
        ({"latency_p99_ms": 400.0}, "latency_p99_ms", "400", "max_latency_p99_ms 250"),
        ({"score_psi": 0.25}, "score_psi", "0.25", "max_score_psi 0.1"),
        ({"approval_rate_canary": 0.70}, "approval_rate_delta", "0.1", "max_approval_rate_delta"),
        ({"approval_rate_canary": 0.50}, "approval_rate_delta", "0.1", "max_approval_rate_delta"),
    ],
)
def test_each_guardrail_rolls_back_with_a_reason(
    change: dict[str, Any], guardrail: str, observed: str, limit: str
) -> None:
    obs = dataclasses.replace(healthy(250), **change)
    state, action = advance(PLAN, CanaryState(step=1, decisions_in_step=100), obs)
    assert action == "rollback"
    assert state.status == "rolled_back"
    assert state.step == 1
    assert f"{guardrail} {observed}" in state.reason
    assert limit in state.reason
    assert "step 2 of 3" in state.reason
    assert share(PLAN, state) == 0.0


def test_rollback_happens_before_min_decisions_and_reports_the_first_breach() -> None:
    obs = dataclasses.replace(healthy(10), errors=5, latency_p99_ms=900.0)
    state, action = advance(PLAN, CanaryState(), obs)
    assert action == "rollback"
    assert "error_rate 0.5 > max_error_rate 0.01" in state.reason
    assert "latency" not in state.reason


def test_an_empty_window_is_not_checked() -> None:
    obs = GuardrailObservation(0, 0, 9999.0, 5.0, 1.0, 0.0)
    state, action = advance(PLAN, CanaryState(), obs)
    assert (action, state.status, state.decisions_in_step) == ("hold", "running", 0)


def test_terminal_states_absorb() -> None:
    promoted = CanaryState(step=2, status="promoted", decisions_in_step=500, reason="done")
    rolled_back = CanaryState(step=1, status="rolled_back", decisions_in_step=3, reason="psi")
    bad = dataclasses.replace(healthy(), errors=250)
    for terminal in (promoted, rolled_back):
        for obs in (healthy(10_000), bad):
            assert advance(PLAN, terminal, obs) == (terminal, "none")
    assert share(PLAN, promoted) == 1.0
    assert share(PLAN, rolled_back) == 0.0


def test_single_step_plan_promotes_directly() -> None:
    plan = dataclasses.replace(PLAN, steps=(1.0,), min_decisions=1, min_judged_decisions=1)
    assert share(plan, CanaryState()) == 1.0
    state, action = advance(plan, CanaryState(), healthy(1))
    assert (action, state.status) == ("promote", "promoted")


def test_a_small_observation_gathers_before_the_distribution_is_judged() -> None:
    plan = dataclasses.replace(PLAN, min_judged_decisions=100)
    drifted = dataclasses.replace(healthy(40), score_psi=0.9)
    state, action = advance(plan, CanaryState(), drifted)
    assert action == "gather" and state.decisions_in_step == 0 and state.status == "running"
    assert "40 of 100" in state.reason
    # the same breach on a judged sample rolls back; errors roll back on any sample
    assert (
        advance(plan, CanaryState(), dataclasses.replace(drifted, decisions=100))[1] == "rollback"
    )
    failing = dataclasses.replace(healthy(10), errors=5)
    assert advance(plan, CanaryState(), failing)[1] == "rollback"
    assert CanaryPlan.from_dict({**plan.to_dict()}).min_judged_decisions == 100


def test_state_from_another_plan_is_refused() -> None:
    with pytest.raises(InvalidArgument) as exc:
        advance(PLAN, CanaryState(step=3), healthy())
    assert exc.value.field == "step"
    with pytest.raises(InvalidArgument):
        share(PLAN, CanaryState(step=5))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"steps": ()}, "steps"),
        ({"steps": (0.2, 0.05, 1.0)}, "steps"),
        ({"steps": (0.05, 0.05, 1.0)}, "steps"),
        ({"steps": (0.0, 0.5, 1.0)}, "steps"),
        ({"steps": (0.05, 0.5)}, "steps"),
        ({"steps": (0.5, 1.5)}, "steps"),
        ({"steps": "0.5"}, "steps"),
        ({"min_decisions": 0}, "min_decisions"),
        ({"min_decisions": 10.5}, "min_decisions"),
        ({"max_error_rate": 1.5}, "max_error_rate"),
        ({"max_error_rate": -0.1}, "max_error_rate"),
        ({"max_latency_p99_ms": float("inf")}, "max_latency_p99_ms"),
        ({"max_score_psi": -1.0}, "max_score_psi"),
        ({"max_approval_rate_delta": 2.0}, "max_approval_rate_delta"),
    ],
)
def test_plan_validation_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        dataclasses.replace(PLAN, **change)
    assert exc.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"step": -1}, "step"),
        ({"status": "paused"}, "status"),
        ({"decisions_in_step": -5}, "decisions_in_step"),
        ({"reason": None}, "reason"),
    ],
)
def test_state_validation_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        CanaryState(**kwargs)
    assert exc.value.field == field


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"decisions": -1}, "decisions"),
        ({"errors": 251}, "errors"),
        ({"latency_p99_ms": float("nan")}, "latency_p99_ms"),
        ({"score_psi": -0.1}, "score_psi"),
        ({"approval_rate_canary": 1.2}, "approval_rate_canary"),
        ({"approval_rate_champion": -0.2}, "approval_rate_champion"),
    ],
)
def test_observation_validation_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as exc:
        dataclasses.replace(healthy(250), **change)
    assert exc.value.field == field


def test_plan_state_and_observation_serialise() -> None:
    assert CanaryPlan.from_dict(PLAN.to_dict()) == PLAN
    assert PLAN.to_dict()["steps"] == [0.05, 0.2, 1.0]
    state = CanaryState(step=1, status="running", decisions_in_step=42, reason="holding")
    assert CanaryState.from_dict(state.to_dict()) == state
    assert healthy(250).to_dict()["decisions"] == 250
    with pytest.raises(InvalidArgument) as exc:
        CanaryPlan.from_dict({"steps": [1.0]})
    assert exc.value.field == "min_decisions"
    with pytest.raises(InvalidArgument):
        CanaryState.from_dict({"step": 0, "status": "running", "extra": 1})
