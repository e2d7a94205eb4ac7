"""The lifecycle of a model version as a pure state machine.

::

    development --submit--> validation --approve--> approved --(champion/challenger)--> deployed
         ^                      |
         +-----send_back--------+              any stage except retired --retire--> retired

``deployed`` is entered only by putting the version into service (the champion or challenger
alias, see :func:`check_alias`), never by a bare transition; a deployed version stays deployed
until it is retired, so a rollback can return to it. Nothing leaves ``retired``.

Each check returns the reasons that forbid the move, split by kind: ``role`` and ``sod``
(segregation of duties) become a permission denial, ``guard`` a refused transition. The service
turns them into errors and audit events; an admin's break-glass override can lift ``role``,
``sod`` and ``guard`` reasons but never an edge the state machine does not have.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from charter.entities import Actor, AliasName, Role, Stage
from charter.identity import sod_check


@dataclass(frozen=True)
class Rule:
    action: str
    roles: tuple[Role, ...]


TRANSITIONS: dict[tuple[Stage, Stage], Rule] = {
    # The automation submits what continuous training registered on a developer's behalf.
    (Stage.DEVELOPMENT, Stage.VALIDATION): Rule("submit", (Role.DEVELOPER, Role.SERVICE)),
    (Stage.VALIDATION, Stage.DEVELOPMENT): Rule("send_back", (Role.VALIDATOR, Role.APPROVER)),
    (Stage.VALIDATION, Stage.APPROVED): Rule("approve", (Role.APPROVER,)),
    (Stage.DEVELOPMENT, Stage.RETIRED): Rule("retire", (Role.DEVELOPER, Role.APPROVER)),
    (Stage.VALIDATION, Stage.RETIRED): Rule("retire", (Role.APPROVER,)),
    (Stage.APPROVED, Stage.RETIRED): Rule("retire", (Role.APPROVER,)),
    (Stage.DEPLOYED, Stage.RETIRED): Rule("retire", (Role.APPROVER,)),
}

# Which stages may hold which alias, and who may assign it.
ALIAS_STAGES: dict[AliasName, frozenset[Stage]] = {
    AliasName.CHAMPION: frozenset({Stage.APPROVED, Stage.DEPLOYED}),
    AliasName.CHALLENGER: frozenset({Stage.APPROVED, Stage.DEPLOYED}),
    AliasName.SHADOW: frozenset({Stage.VALIDATION, Stage.APPROVED, Stage.DEPLOYED}),
}
ALIAS_ROLES: dict[AliasName, tuple[Role, ...]] = {
    AliasName.CHAMPION: (Role.APPROVER, Role.SERVICE),
    AliasName.CHALLENGER: (Role.APPROVER, Role.SERVICE),
    AliasName.SHADOW: (Role.DEVELOPER, Role.VALIDATOR, Role.APPROVER, Role.SERVICE),
}
# Aliases that put a version's decisions in front of customers.
SERVING_ALIASES = frozenset({AliasName.CHAMPION, AliasName.CHALLENGER})


@dataclass(frozen=True)
class GateRunFact:
    """The newest gate run of a version's current artifact."""

    id: int
    passed: bool
    failed_gates: tuple[str, ...] = ()


@dataclass(frozen=True)
class VersionFacts:
    """What the rules need to know about a version, read in the deciding transaction."""

    stage: Stage
    author: str
    validators: tuple[str, ...] = ()  # who recorded a validation of this version
    passing_validators: tuple[str, ...] = ()  # ... with outcome "pass"
    aliases: tuple[AliasName, ...] = ()
    model_name: str = "NAME"
    version: int | None = None
    # The deployment guard: no gate run means "not shown to pass", so the default refuses.
    latest_gate_run: GateRunFact | None = None
    # Ids of high-severity findings not closed yet, on this version or on the whole model.
    open_high_findings: tuple[int, ...] = ()


@dataclass(frozen=True)
class Check:
    action: str
    role: tuple[str, ...] = field(default_factory=tuple)
    sod: tuple[str, ...] = field(default_factory=tuple)
    guard: tuple[str, ...] = field(default_factory=tuple)
    edge_exists: bool = True

    @property
    def allowed(self) -> bool:
        return self.edge_exists and not (self.role or self.sod or self.guard)


def allowed_targets(stage: Stage) -> list[Stage]:
    return [to for (frm, to) in TRANSITIONS if frm == stage]


def check_transition(facts: VersionFacts, actor: Actor, to: Stage) -> Check:
    rule = TRANSITIONS.get((facts.stage, to))
    if rule is None:
        targets = ", ".join(s.value for s in allowed_targets(facts.stage)) or "none"
        hint = (
            " (a version is deployed by making it champion or challenger: charter promote)"
            if to is Stage.DEPLOYED
            else ""
        )
        return Check(
            action=f"{facts.stage.value}->{to.value}",
            guard=(
                f"a version cannot move from {facts.stage.value} to {to.value}; "
                f"allowed from {facts.stage.value}: {targets}{hint}",
            ),
            edge_exists=False,
        )
    role: list[str] = []
    sod: list[str] = []
    guard: list[str] = []
    if not any(actor.has(r) for r in rule.roles):
        need = " or ".join(r.value for r in rule.roles)
        role.append(f"{actor.username} may not {rule.action} a version: it needs the role {need}")
    if (
        rule.action == "submit"
        and actor.username != facts.author
        and not actor.has(Role.ADMIN)
        and not actor.is_automation
    ):
        sod.append(f"only the version's developer ({facts.author}) submits it for validation")
    if rule.action == "approve":
        reason = sod_check(
            actor, action="approve", author=facts.author, validators=facts.validators
        )
        if reason:
            sod.append(reason)
        independent = [v for v in facts.passing_validators if v != facts.author]
        if not independent:
            guard.append(
                "the version has no passing validation by an independent validator; "
                "a validator must record one first (`charter recommend NAME VERSION ...`)"
            )
    if rule.action == "retire" and facts.aliases:
        held = ", ".join(a.value for a in facts.aliases)
        guard.append(f"the version still holds {held}; move the alias to another version first")
    return Check(action=rule.action, role=tuple(role), sod=tuple(sod), guard=tuple(guard))


def check_validation(facts: VersionFacts, actor: Actor) -> Check:
    """May ``actor`` record a validation outcome for this version?"""
    role: list[str] = []
    sod: list[str] = []
    guard: list[str] = []
    if not actor.has(Role.VALIDATOR):
        role.append(f"{actor.username} may not validate a version: it needs the role validator")
    reason = sod_check(actor, action="validate", author=facts.author)
    if reason:
        sod.append(reason)
    if facts.stage is not Stage.VALIDATION:
        guard.append(
            f"the version is in {facts.stage.value}; only a version in validation is validated "
            "(the developer submits it first)"
        )
    return Check(action="validate", role=tuple(role), sod=tuple(sod), guard=tuple(guard))


def check_alias(facts: VersionFacts, actor: Actor, alias: AliasName) -> Check:
    """May ``actor`` give ``alias`` to this version?"""
    role: list[str] = []
    sod: list[str] = []
    guard: list[str] = []
    roles = ALIAS_ROLES[alias]
    if not any(actor.has(r) for r in roles):
        need = " or ".join(r.value for r in roles)
        role.append(f"{actor.username} may not assign {alias.value}: it needs the role {need}")
    if alias in SERVING_ALIASES:
        reason = sod_check(actor, action="deploy", author=facts.author)
        if reason:
            sod.append(reason)
    if facts.stage not in ALIAS_STAGES[alias]:
        ok = ", ".join(sorted(s.value for s in ALIAS_STAGES[alias]))
        guard.append(
            f"a version in {facts.stage.value} cannot be {alias.value}; it must be {ok} "
            "(validate and approve it first)"
        )
    if alias in SERVING_ALIASES:
        guard.extend(deployment_guard(facts))
    return Check(
        action=f"alias.{alias.value}", role=tuple(role), sod=tuple(sod), guard=tuple(guard)
    )


def deployment_guard(facts: VersionFacts) -> list[str]:
    """Why this version may not answer customers yet, beyond its stage: its newest gate run
    (for its current artifact) must exist and have passed, and no high-severity finding on it or
    on its model may be open or remediated-but-not-closed."""
    reasons: list[str] = []
    ref = f"{facts.model_name} {facts.version if facts.version is not None else 'VERSION'}"
    run = facts.latest_gate_run
    if run is None:
        reasons.append(
            "the version has no gate run for its artifact; run "
            f"`charter validate {ref} --policy FILE` and deploy it once the gates pass"
        )
    elif not run.passed:
        failed = ", ".join(run.failed_gates) or "unnamed gates"
        reasons.append(
            f"the version's latest gate run #{run.id} failed ({failed}); fix the model and run "
            f"`charter validate {ref} --policy FILE` again"
        )
    if facts.open_high_findings:
        ids = ", ".join(f"#{i}" for i in facts.open_high_findings)
        first = facts.open_high_findings[0]
        reasons.append(
            f"high-severity finding {ids} is not closed: close finding {ids} first (the owner "
            f"runs `charter findings remediate {first} --note TEXT`, then an independent "
            f"validator `charter findings close {first} --note TEXT`)"
        )
    return reasons


def stage_after_alias(stage: Stage, alias: AliasName) -> Stage:
    """Putting a version into service (champion or challenger) makes it deployed."""
    if alias in SERVING_ALIASES and stage is Stage.APPROVED:
        return Stage.DEPLOYED
    return stage
