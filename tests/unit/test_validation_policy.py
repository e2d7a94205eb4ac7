"""The validation policy file: defaults, tiers, hashing and clear refusals of bad settings."""

from __future__ import annotations

import hashlib

import pytest

from charter.datasets import german_credit_path
from charter.errors import InvalidArgument
from charter.validation.policy import GATE_DEFAULTS, load_policy, parse_policy

BASE = """
name = "retail"
[data]
label = "default"
[gates.performance]
min_auc = 0.7
[gates.calibration]
[gates.benchmark]
[tiers.high.gates.performance]
min_auc = 0.75
[tiers.low]
skip = ["benchmark"]
"""


def test_defaults_fill_in_and_the_hash_is_of_the_text() -> None:
    p = parse_policy(BASE)
    assert p.name == "retail"
    assert p.label == "default"
    assert p.sha256 == hashlib.sha256(BASE.encode()).hexdigest()
    assert p.settings("performance")["min_auc"] == 0.7
    assert p.settings("performance")["min_ks"] == GATE_DEFAULTS["performance"]["min_ks"]
    assert p.settings("calibration") == GATE_DEFAULTS["calibration"]
    assert list(p.gates) == ["performance", "calibration", "benchmark"]  # the run order
    assert not p.runs("fairness")


def test_a_tier_overrides_key_by_key_and_can_skip_gates() -> None:
    high = parse_policy(BASE, tier="high")
    assert high.settings("performance")["min_auc"] == 0.75
    assert high.settings("performance")["min_ks"] == GATE_DEFAULTS["performance"]["min_ks"]
    assert high.tier == "high"
    low = parse_policy(BASE, tier="low")
    assert low.settings("performance")["min_auc"] == 0.7
    assert not low.runs("benchmark")
    assert low.runs("calibration")


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ('name = "x"\n[gates.performance]\nmin_aucc = 0.7', "policy.gates.performance.min_aucc",
         "min_auc"),
        ('name = "x"\n[gates.perfomance]', "policy.gates.perfomance", "performance"),
        ('name = "x"\n[gates.performance]\nmin_auc = 1.7', "policy.gates.performance.min_auc",
         "[0.0, 1.0]"),
        ('name = "x"\n[gates.performance]\nmin_auc = "high"', "policy.gates.performance.min_auc",
         "number"),
        ('[gates.performance]', "policy.name", "name ="),
        ('name = "x"', "policy.gates", "at least one"),
        ('name = "x"\n[gates.fairness]', "policy.gates.fairness.attributes", "column"),
        ('name = "x"\n[gates.fairness.attributes.sex]\nsplit = ":"',
         "policy.gates.fairness.attributes.sex.column", "column"),
        ('name = "x"\n[gates.sensitivity]\nmissing = "sometimes"',
         "policy.gates.sensitivity.missing", "must_score"),
        ('name = "x"\n[tiers.extreme]', "policy.tiers.extreme", "high"),
        ('name = "x"\n[gates.performance]\n[tiers.low]\nskip = ["everything"]',
         "policy.tiers.low.skip", "performance"),
        ("name = ", "policy", "TOML"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_naming_the_field_and_the_fix(
    text: str, field: str, words: str
) -> None:
    with pytest.raises(InvalidArgument) as e:
        parse_policy(text)
    assert e.value.field == field
    assert words in (e.value.message + " " + (e.value.remedy or ""))


def test_the_shipped_german_credit_policy_parses_for_every_tier() -> None:
    path = german_credit_path().with_name("german_credit_policy.toml")
    for tier in ("high", "medium", "low"):
        p = load_policy(path, tier=tier)
        assert p.label == "creditability" and p.positive == "bad"
        assert [a.name for a in p.attributes] == ["sex", "age_band", "foreign_worker"]
    assert load_policy(path, tier="high").settings("performance")["min_auc"] == 0.72
    assert not load_policy(path, tier="low").runs("benchmark")


def test_an_unreadable_policy_file_names_the_option(tmp_path: object) -> None:
    with pytest.raises(InvalidArgument) as e:
        load_policy("/nonexistent/policy.toml")
    assert e.value.field == "policy"
