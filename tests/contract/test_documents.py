"""The documents are functions of the audited record: same record, same bytes; they state the
chain head they were built from; the MRM pack lists what changed since the previous pack."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from charter import datasets
from charter.demo import _scorecard, policy_text
from charter.errors import InvalidArgument, NotFound
from charter.registry.service import Registry
from charter.reports import documents
from charter.storage import jsonutil
from charter.validation.runner import validate

from helpers import create_model

FEATURES = list(datasets.GERMAN_CREDIT_FEATURES)


@pytest.fixture(scope="module")
def split() -> dict[str, pd.DataFrame]:
    frame = datasets.load_german_credit()
    _, y = datasets.german_credit_xy()
    train, rest = train_test_split(frame, test_size=0.3, random_state=1, stratify=y)
    holdout, oot = train_test_split(rest, test_size=0.5, random_state=2)
    return {"train": train, "holdout": holdout, "out_of_time": oot}


@pytest.fixture
def validated(registry: Registry, people: Any, split: dict[str, pd.DataFrame]) -> int:
    create_model(registry, people.dev, "gc")
    train = split["train"]
    y = (train["creditability"] == "bad").to_numpy(dtype=int)
    v = registry.log_model(
        people.dev, "gc", _scorecard().fit(train[FEATURES], y), X=train[FEATURES], y=y,
        dataset_id="gc", threshold=0.5,
    )  # fmt: skip
    registry.set_model_narrative(people.dev, "gc", {"intended_use": "Retail credit decisions"})
    registry.transition(people.dev, "gc", v.version, "validation")
    _, run = validate(registry, people.val, "gc", v.version, policy_text(), split)
    registry.raise_finding(
        people.val, "gc", v.version, severity="low", title="Document the cut-off",
        description="The operating threshold's rationale is not written down",
        remediation_owner="dana", due_date=date(2026, 12, 1),
    )  # fmt: skip
    registry.record_validation(
        people.val, "gc", v.version, recommendation="approve_with_conditions",
        summary="gates passed", conditions=["annual review"], gate_run_id=run.id,
        sections={"scope": "initial validation", "conclusion": "fit for use"},
    )  # fmt: skip
    registry.decide(
        people.app, "gc", v.version, "approve_with_conditions", comment="ok",
        conditions=["annual review"],
    )  # fmt: skip
    registry.set_alias(people.app, "gc", v.version, "champion")
    return v.version


def test_same_record_same_document_and_the_head_is_stated(
    registry: Registry, validated: int
) -> None:
    for kind in documents.KINDS:
        a = documents.build_document(registry, kind, "gc", validated, as_of=date(2026, 11, 22))
        b = documents.build_document(registry, kind, "gc", validated, as_of=date(2026, 11, 22))
        assert jsonutil.dumps(a) == jsonutil.dumps(b)
        head = registry.audit_checkpoint()
        assert head is not None
        assert a["provenance"]["audit_head_seq"] == head.seq
        assert a["provenance"]["audit_head_hash"] == head.hash
        assert a["document_sha256"] == documents.document_sha256(a)


def test_the_model_card_and_validation_report_carry_the_record(
    registry: Registry, validated: int
) -> None:
    card = documents.model_card(registry, "gc")  # the champion
    assert card["model_details"]["version"] == validated
    assert card["intended_use"]["primary_use"] == "Retail credit decisions"
    assert set(card["quantitative_analyses"]["fairness"]) == {"sex", "age_band", "foreign_worker"}
    assert card["caveats_and_recommendations"]["conditions_of_approval"] == ["annual review"]
    assert [f["title"] for f in card["caveats_and_recommendations"]["open_findings"]] == [
        "Document the cut-off"
    ]
    assert any("ethical considerations" in g for g in card["gaps"])  # never invented
    explained = card["quantitative_analyses"]["global_explanations"]
    assert explained["available"] and explained["method"] == "exact"
    ranked = explained["importance"]
    assert len(ranked) == len(FEATURES) and ranked[0]["rank"] == 1
    assert abs(sum(f["share"] for f in ranked) - 1.0) < 1e-9
    assert len(explained["reason_stability"]["top_set"]) == 4
    report = documents.validation_report(registry, "gc", validated)
    assert report["scope"]["narrative"] == "initial validation"
    assert report["scope"]["gate_run"]["passed"] is True
    assert report["conclusion"]["recommendation"] == "approve_with_conditions"
    assert report["conclusion"]["approvals"][0]["decision"] == "approved_with_conditions"
    assert report["benchmarking"]["benchmark"]["gate"] == "benchmark"
    assert report["data_quality"]["passed"] is True


def test_overdue_depends_on_the_as_of_date_only(registry: Registry, validated: int) -> None:
    before = documents.mrm_report(registry, as_of=date(2026, 11, 30))
    after = documents.mrm_report(registry, as_of=date(2026, 12, 2))
    assert before["overdue_findings"] == []
    assert [f["title"] for f in after["overdue_findings"]] == ["Document the cut-off"]
    assert after["inventory"]["by_tier_and_status"] == {"high": {"production": 1}}


def test_the_mrm_pack_lists_changes_since_the_previous_pack(
    registry: Registry, people: Any, validated: int
) -> None:
    first = documents.mrm_report(registry)
    assert first["changes_since_last_report"]["since_seq"] == 0
    registry.record_report(
        people.app, "mrm", model_name=None, version=None,
        document_sha256=first["document_sha256"],
        audit_head_seq=first["provenance"]["audit_head_seq"],
    )  # fmt: skip
    registry.record_review(people.app, "gc", "2026-11-22")
    create_model(registry, people.dev, "fraud-cards", risk_tier="medium")
    second = documents.mrm_report(registry)
    changes = second["changes_since_last_report"]
    assert changes["since_seq"] == first["provenance"]["audit_head_seq"]
    assert "model.created" in changes["by_action"]
    assert [c["subject"] for c in changes["notable"] if c["action"] == "model.created"] == [
        "fraud-cards"
    ]
    assert "report.generated" in changes["by_action"]


def test_a_validation_report_needs_a_gate_run_and_kinds_are_checked(
    registry: Registry, people: Any
) -> None:
    create_model(registry, people.dev, "bare")
    from helpers import log_version

    log_version(registry, people.dev, "bare")
    with pytest.raises(NotFound) as e:
        documents.validation_report(registry, "bare", 1)
    assert "charter validate bare 1" in (e.value.remedy or "")
    with pytest.raises(InvalidArgument):
        documents.build_document(registry, "annual-report", "bare")
    with pytest.raises(InvalidArgument) as e2:
        documents.model_card(registry, "bare")  # no champion and no version given
    assert e2.value.field == "version"
