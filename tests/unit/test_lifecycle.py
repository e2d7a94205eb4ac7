"""The lifecycle state machine and segregation-of-duties rules, as pure functions."""

from __future__ import annotations

import pytest

from charter.entities import Actor, AliasName, Role, Stage
from charter.registry.lifecycle import (
    TRANSITIONS,
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


def facts(stage: Stage, **kw: object) -> VersionFacts:
    return VersionFacts(stage=stage, author="dana", **kw)


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
