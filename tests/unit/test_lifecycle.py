"""The lifecycle state machine and segregation-of-duties rules, as pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from charter.entities import Actor, AliasName, Role, Stage
from charter.registry.lifecycle import (
    TRANSITIONS,
    GateRunFact,
    VersionFacts,
    allowed_targets,
    check_alias,
    check_transition,
    check_validation,
    stage_after_alias,
)


def actor(name: str, *roles: Role) -> Actor:
    return Actor(name, frozenset(roles))


DEV = actor("dana", Role.DEVELOPER)
VAL = actor("victor", Role.VALIDATOR)
APP = actor("petra", Role.APPROVER)
ADMIN = actor("ada", Role.ADMIN)
BOT = Actor("charter-automation", frozenset({Role.SERVICE}), is_automation=True)


PASSED = GateRunFact(id=1, passed=True)


def facts(stage: Stage, **kw: Any) -> VersionFacts:
    kw.setdefault("latest_gate_run", PASSED)
    return VersionFacts(stage=stage, author="dana", model_name="pd", version=2, **kw)


def test_the_edges() -> None:
    assert allowed_targets(Stage.DEVELOPMENT) == [Stage.VALIDATION, Stage.RETIRED]
    assert allowed_targets(Stage.RETIRED) == []
    assert all(to is not Stage.DEPLOYED for (_, to) in TRANSITIONS)
    for frm in Stage:
        for to in Stage:
            c = check_transition(facts(frm), ADMIN, to)
            assert c.edge_exists == ((frm, to) in TRANSITIONS)


def test_submit_is_the_developers() -> None:
    assert check_transition(facts(Stage.DEVELOPMENT), DEV, Stage.VALIDATION).allowed
    other_dev = actor("sam", Role.DEVELOPER)
    c = check_transition(facts(Stage.DEVELOPMENT), other_dev, Stage.VALIDATION)
    assert c.sod and not c.role
    c = check_transition(facts(Stage.DEVELOPMENT), VAL, Stage.VALIDATION)
    assert c.role


def test_approval_rules() -> None:
    ready = facts(Stage.VALIDATION, validators=("victor",), passing_validators=("victor",))
    assert check_transition(ready, APP, Stage.APPROVED).allowed
    assert check_transition(ready, DEV, Stage.APPROVED).role
    unvalidated = facts(Stage.VALIDATION)
    assert check_transition(unvalidated, APP, Stage.APPROVED).guard
    failed = facts(Stage.VALIDATION, validators=("victor",))
    assert check_transition(failed, APP, Stage.APPROVED).guard
    super_dev = actor("dana", Role.DEVELOPER, Role.APPROVER)
    assert check_transition(ready, super_dev, Stage.APPROVED).sod
    val_app = actor("victor", Role.VALIDATOR, Role.APPROVER)
    assert check_transition(ready, val_app, Stage.APPROVED).sod
    self_validated = facts(Stage.VALIDATION, validators=("dana",), passing_validators=("dana",))
    assert check_transition(self_validated, APP, Stage.APPROVED).guard


def test_validation_rules() -> None:
    assert check_validation(facts(Stage.VALIDATION), VAL).allowed
    assert check_validation(facts(Stage.VALIDATION), actor("dana", Role.VALIDATOR)).sod
    assert check_validation(facts(Stage.DEVELOPMENT), VAL).guard
    assert check_validation(facts(Stage.VALIDATION), APP).role


@pytest.mark.parametrize(
    ("alias", "stage", "who", "ok"),
    [
        (AliasName.CHAMPION, Stage.APPROVED, APP, True),
        (AliasName.CHAMPION, Stage.DEPLOYED, BOT, True),
        (AliasName.CHAMPION, Stage.VALIDATION, APP, False),
        (AliasName.CHAMPION, Stage.APPROVED, DEV, False),
        (AliasName.CHAMPION, Stage.RETIRED, APP, False),
        (AliasName.CHALLENGER, Stage.APPROVED, APP, True),
        (AliasName.SHADOW, Stage.VALIDATION, DEV, True),
        (AliasName.SHADOW, Stage.DEVELOPMENT, DEV, False),
    ],
)
def test_alias_rules(alias: AliasName, stage: Stage, who: Actor, ok: bool) -> None:
    assert check_alias(facts(stage), who, alias).allowed is ok


def test_author_cannot_put_own_version_in_service() -> None:
    dev_app = actor("dana", Role.DEVELOPER, Role.APPROVER)
    assert check_alias(facts(Stage.APPROVED), dev_app, AliasName.CHAMPION).sod
    assert check_alias(facts(Stage.APPROVED), dev_app, AliasName.SHADOW).allowed


def test_retire_needs_aliases_gone_and_serving_aliases_deploy() -> None:
    held = facts(Stage.DEPLOYED, aliases=(AliasName.CHAMPION,))
    assert check_transition(held, APP, Stage.RETIRED).guard
    assert check_transition(facts(Stage.DEPLOYED), APP, Stage.RETIRED).allowed
    assert stage_after_alias(Stage.APPROVED, AliasName.CHAMPION) is Stage.DEPLOYED
    assert stage_after_alias(Stage.APPROVED, AliasName.SHADOW) is Stage.APPROVED
    assert stage_after_alias(Stage.DEPLOYED, AliasName.CHALLENGER) is Stage.DEPLOYED


def test_serving_needs_passed_gates_and_no_open_high_finding() -> None:
    approved = facts(Stage.APPROVED)
    assert check_alias(approved, APP, AliasName.CHAMPION).allowed
    never = facts(Stage.APPROVED, latest_gate_run=None)
    c = check_alias(never, APP, AliasName.CHAMPION)
    assert not c.role and not c.sod
    assert c.guard == (
        "the version has no gate run for its artifact; run `charter validate pd 2 --policy FILE` "
        "and deploy it once the gates pass",
    )
    failed = facts(
        Stage.APPROVED, latest_gate_run=GateRunFact(7, False, ("performance", "stability"))
    )
    (reason,) = check_alias(failed, APP, AliasName.CHALLENGER).guard
    assert "gate run #7 failed (performance, stability)" in reason
    assert "charter validate pd 2 --policy FILE" in reason
    flagged = facts(Stage.DEPLOYED, open_high_findings=(3, 5))
    (reason,) = check_alias(flagged, BOT, AliasName.CHAMPION).guard
    assert "#3, #5" in reason and "charter findings close 3" in reason
    # Shadow answers no customer: neither rule applies to it.
    assert check_alias(facts(Stage.VALIDATION, latest_gate_run=None), DEV, AliasName.SHADOW).allowed
    assert check_alias(flagged, DEV, AliasName.SHADOW).allowed
