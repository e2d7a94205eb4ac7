"""Gates run on a registered version and recorded as evidence bound to its hashes."""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from charter import datasets
from charter.demo import _scorecard
from charter.errors import InvalidArgument, PermissionDenied, TransitionNotAllowed
from charter.registry.service import Registry
from charter.storage import jsonutil
from charter.validation.runner import run_gates, validate

from helpers import create_model

POLICY = datasets.german_credit_path().with_name("german_credit_policy.toml").read_text()
FEATURES = list(datasets.GERMAN_CREDIT_FEATURES)


@pytest.fixture(scope="module")
def split() -> dict[str, pd.DataFrame]:
    frame = datasets.load_german_credit()
    _, y = datasets.german_credit_xy()
    train, rest = train_test_split(frame, test_size=0.3, random_state=1, stratify=y)
    holdout, oot = train_test_split(rest, test_size=0.5, random_state=2)
    return {"train": train, "holdout": holdout, "out_of_time": oot}


def _register(reg: Registry, people: Any, split: dict[str, pd.DataFrame]) -> int:
    create_model(reg, people.dev, "gc")
    train = split["train"]
    y = (train["creditability"] == "bad").to_numpy(dtype=int)
    model = _scorecard().fit(train[FEATURES], y)
    v = reg.log_model(
        people.dev, "gc", model, X=train[FEATURES], y=y, dataset_id="gc-train", threshold=0.3
    )
    return v.version


def test_a_run_is_recorded_bound_to_the_artifact_data_and_policy(
    registry: Registry, people: Any, split: dict[str, pd.DataFrame]
) -> None:
    version = _register(registry, people, split)
    run, record = validate(registry, people.val, "gc", version, POLICY, split)
    assert run.passed, [g.summary for g in run.gates if not g.passed]
    assert [g.gate for g in run.gates] == [
        "data_quality", "performance", "stability", "fairness", "calibration", "sensitivity",
        "benchmark",
    ]  # fmt: skip
    v = registry.get_version("gc", version)
    assert record.passed and record.failed_gates == ()
    assert record.artifact_sha256 == v.artifact_sha256
    assert v.training_data is not None
    assert record.training_data_hash == v.training_data.content_hash
    assert record.policy_sha256 == hashlib.sha256(POLICY.encode()).hexdigest()
    assert record.policy_text == POLICY
    assert record.report == jsonutil.loads(jsonutil.dumps(run.to_dict()))
    assert record.report_sha256 == run.report_sha256()
    assert set(record.datasets) == {"train", "holdout", "out_of_time"}
    event = registry.audit_log(action="validation.gates_run")[-1]
    assert event.actor == "victor"
    assert event.payload["report_sha256"] == run.report_sha256()
    assert event.payload["artifact_sha256"] == v.artifact_sha256
    # The high tier's bar applies (the policy's [tiers.high] override).
    assert run.policy["tier"] == "high"
    assert run.gate("performance").criteria[0].limit == 0.72
    # The same version, policy and data give the same evidence, byte for byte.
    again = run_gates(registry, "gc", version, POLICY, split)
    assert again.report_sha256() == run.report_sha256()


def test_a_failed_gate_is_recorded_and_blocks_deployment(
    registry: Registry, people: Any, split: dict[str, pd.DataFrame]
) -> None:
    version = _register(registry, people, split)
    strict = POLICY.replace("min_auc = 0.72", "min_auc = 0.99")
    run, record = validate(registry, people.dev, "gc", version, strict, split)
    assert not run.passed and record.failed_gates == ("performance",)
    registry.transition(people.dev, "gc", version, "validation")
    registry.record_validation(
        people.val, "gc", version, outcome="pass", summary="reviewed", gate_run_id=record.id
    )
    registry.transition(people.app, "gc", version, "approved")
    with pytest.raises(TransitionNotAllowed) as e:
        registry.set_alias(people.app, "gc", version, "champion")
    assert "gate" in e.value.message and "charter validate" in e.value.message
    denied = registry.audit_log(action="denied")[-1]
    assert denied.payload["attempted"] == "alias.set.champion"
    # A passing run of the same artifact lifts the block.
    validate(registry, people.val, "gc", version, POLICY, split)
    registry.set_alias(people.app, "gc", version, "champion")


def test_missing_data_and_bad_labels_are_named(
    registry: Registry, people: Any, split: dict[str, pd.DataFrame]
) -> None:
    version = _register(registry, people, split)
    with pytest.raises(InvalidArgument) as e:
        run_gates(registry, "gc", version, POLICY, {"holdout": split["holdout"]})
    assert e.value.field in ("out_of_time", "train") and "--" in (e.value.remedy or "")
    no_label = {k: f.drop(columns=["creditability"]) for k, f in split.items()}
    with pytest.raises(InvalidArgument) as e:
        run_gates(registry, "gc", version, POLICY, no_label)
    assert "creditability" in e.value.message
    lacking = {k: f.drop(columns=["age_in_years"]) for k, f in split.items()}
    with pytest.raises(InvalidArgument) as e:
        run_gates(registry, "gc", version, POLICY, lacking)
    assert "age_in_years" in e.value.message


def test_only_developers_validators_and_automation_run_gates(
    registry: Registry, people: Any, split: dict[str, pd.DataFrame]
) -> None:
    version = _register(registry, people, split)
    with pytest.raises(PermissionDenied):
        validate(registry, people.auditor, "gc", version, POLICY, split)
