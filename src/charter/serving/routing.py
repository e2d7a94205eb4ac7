"""Traffic routing and canary plans, as pure functions: no I/O, no clock, no randomness.

Routing
-------
``route(entity_key, policy)`` decides which version of a model answers a request. It depends on
nothing but its two arguments, so every replica of the service, and any later replay of the
decision, gives the same answer.

* **Bucket.** An entity key (an applicant or account id) is mapped to a position in ``[0, 1)`` by
  ``bucket``: SHA-256 over ``salt + "\\x1f" + key`` (both UTF-8), the first 8 bytes of the digest
  read as a big-endian unsigned 64-bit integer ``u``, and ``bucket = (u >> 11) / 2**53``. That is
  ``u / 2**64`` truncated to the 53 bits a float holds exactly, so the result is always strictly
  below 1 (plain ``u / 2**64`` rounds to 1.0 for the largest ``u``). Python's ``hash()`` is never
  used, so buckets do not change between processes, machines or ``PYTHONHASHSEED`` values.
* **Salt.** ``TrafficPolicy.salt`` defaults to the model name (an empty salt means "use the model
  name"), so two models do not put the same applicants in their canaries. Changing the salt
  reshuffles every assignment; keep it fixed for the life of an experiment.
* **Regions.** The canary takes the bottom of the interval and the challenger the top; the
  champion answers in between::

      0 ........ canary_share ................. 1 - challenger_share ........ 1
      |  canary  |            champion          |        challenger          |

  A bucket ``b`` goes to the canary when ``b < canary_share``, to the challenger when
  ``b >= 1 - challenger_share``, and to the champion otherwise. Growing either share only takes
  entities from the champion: an entity on the canary at 5% is still on it at 20%, and no
  challenger entity moves when the canary share changes (or the other way round). Had the
  challenger region started at ``canary_share``, every canary step would have moved part of the
  challenger's population back to the champion and broken the A/B comparison.
* **Shadows** score every request off the response path; ``RouteDecision.shadows`` always carries
  the policy's shadow versions, whichever variant answers. Their scores are logged, never returned.

Canary plans
------------
``advance(plan, state, observation)`` is the state machine that moves a canary through its steps
(for example 5% -> 20% -> 100%). Each ``GuardrailObservation`` describes the canary's traffic in one
window *since the previous call*; decisions are added to ``CanaryState.decisions_in_step``.

* A guardrail is breached when the observed value is strictly greater than its limit (a value equal
  to the limit holds; excesses within ``GUARDRAIL_TOLERANCE`` relative, that is float rounding as in
  ``0.65 - 0.60``, count as equal). Guardrails are checked in this order, and the first breach
  is reported: error rate (``errors / decisions``), p99 latency, score PSI (canary vs champion),
  absolute approval-rate difference. A window with zero decisions is not checked.
* Any breach, at any point of a step, rolls back at once: action ``"rollback"``, status
  ``"rolled_back"`` and a reason naming the guardrail, the observed value and the limit.
* Otherwise, while ``decisions_in_step < min_decisions`` the action is ``"hold"``. Once the step has
  seen ``min_decisions`` decisions with every window holding, the canary moves to the next step
  (action ``"advance"``, ``decisions_in_step`` restarts at 0; surplus decisions do not carry over)
  or, at the last step, is promoted (action ``"promote"``, status ``"promoted"``).
* ``"promoted"`` and ``"rolled_back"`` are terminal: ``advance`` returns the state unchanged with
  action ``"none"``.
* ``share(plan, state)`` is the canary share the traffic policy should carry: the current step's
  share while running, 1.0 once promoted, 0.0 once rolled back.

Recording each step and rollback as an audit event (by the automation identity) and applying the
new share to the traffic policy is the caller's job; this module only decides.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from charter.checks import check_int, check_number
from charter.errors import InvalidArgument

Variant = Literal["champion", "challenger", "canary"]
CanaryStatus = Literal["running", "promoted", "rolled_back"]
CanaryAction = Literal["hold", "advance", "promote", "rollback", "gather", "none"]
# A score PSI over ten bins between n canary and m champion decisions is about 9 (1/n + 1/m)
# with no change at all: 0.11 at 100 against 400, 0.22 at 50 against 200. Below this many canary
# decisions an observation is too small to judge the distributional guardrails (score PSI,
# approval-rate delta) against a 0.25 limit, so the canary gathers more.
DISTRIBUTION_MIN_DECISIONS = 100

VARIANTS: tuple[Variant, ...] = ("champion", "challenger", "canary")
CANARY_STATUSES: tuple[CanaryStatus, ...] = ("running", "promoted", "rolled_back")

KEY_SEPARATOR = "\x1f"
"""Separates salt and entity key in the hashed bytes (ASCII unit separator)."""

SHARE_TOLERANCE = 1e-9
"""Slack allowed on ``canary_share + challenger_share <= 1`` for decimal shares like 0.1 + 0.9."""

GUARDRAIL_TOLERANCE = 1e-9
"""Relative slack on guardrail limits so that float rounding alone never causes a rollback."""

_MANTISSA_SHIFT = 64 - 53
_INV_2_53 = 1.0 / (1 << 53)


# --------------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------------


def _check_number(
    value: object, field: str, *, minimum: float = 0.0, maximum: float | None = None
) -> float:
    """Routing's numbers are never negative."""
    return check_number(value, field, minimum=minimum, maximum=maximum)


def _check_share(value: object, field: str) -> float:
    return _check_number(value, field, minimum=0.0, maximum=1.0)


def _check_mapping(
    data: object, where: str, required: Iterable[str], optional: Iterable[str]
) -> None:
    if not isinstance(data, Mapping):
        raise InvalidArgument(
            f"{where} must be a mapping, got {type(data).__name__}",
            field=where,
            remedy="pass the dict that to_dict() produced",
        )
    required = tuple(required)
    known = set(required) | set(optional)
    for key in required:
        if key not in data:
            raise InvalidArgument(
                f"{where} is missing {key!r}", field=key, remedy=f"add {key!r} to the {where}"
            )
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise InvalidArgument(
            f"{where} has unknown keys {unknown}",
            field=unknown[0],
            remedy=f"use only {sorted(known)}",
        )


def _check_entity_key(entity_key: object) -> str:
    if not isinstance(entity_key, str) or not entity_key:
        raise InvalidArgument(
            f"entity_key must be a non-empty string, got {entity_key!r}",
            field="entity_key",
            remedy="route by a stable id of the applicant or account (for example its customer id)",
        )
    return entity_key


# --------------------------------------------------------------------------------------------------
# Buckets and routing
# --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _salt_prefix(salt: str) -> bytes:
    """The bytes hashed before every key for ``salt``; cached so the hot path only concatenates."""
    return (salt + KEY_SEPARATOR).encode("utf-8")


def bucket(entity_key: str, salt: str) -> float:
    """The position of ``entity_key`` in ``[0, 1)`` for ``salt``: deterministic and uniform.

    SHA-256 of ``salt + "\\x1f" + entity_key`` (UTF-8); the first 8 digest bytes as a big-endian
    unsigned integer ``u``; the result is ``(u >> 11) / 2**53``, strictly less than 1. The same key
    and salt give the same bucket in every process. Raises ``InvalidArgument`` (field
    ``entity_key``) for an empty or non-string key.
    """
    if not isinstance(salt, str):
        raise InvalidArgument(
            f"salt must be a string, got {salt!r}", field="salt", remedy="pass a string salt"
        )
    key = _check_entity_key(entity_key)
    digest = hashlib.sha256(_salt_prefix(salt) + key.encode("utf-8")).digest()
    return (int.from_bytes(digest[:8], "big") >> _MANTISSA_SHIFT) * _INV_2_53


@dataclass(frozen=True)
class TrafficPolicy:
    """Who answers for a model: the champion, plus optional challenger, canary and shadows.

    Versions are registry version numbers (>= 1). Shares are fractions of entities in ``[0, 1]``;
    ``canary_share + challenger_share`` may not exceed 1 (within ``SHARE_TOLERANCE``). A version
    holds at most one role, so the champion, challenger, canary and shadows are all different
    versions. A share above 0 needs its version; a version with share 0 is configured but gets no
    traffic. ``salt`` reshuffles assignments when changed; empty means "the model name" (see
    ``effective_salt``). Invalid values raise ``InvalidArgument`` naming the field.
    """

    model: str
    champion: int
    challenger: int | None = None
    challenger_share: float = 0.0
    canary: int | None = None
    canary_share: float = 0.0
    shadows: tuple[int, ...] = ()
    salt: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise InvalidArgument(
                f"model must be a non-empty string, got {self.model!r}",
                field="model",
                remedy="pass the registered model name",
            )
        if not isinstance(self.salt, str):
            raise InvalidArgument(
                f"salt must be a string, got {self.salt!r}",
                field="salt",
                remedy='pass a string, or "" to salt with the model name',
            )
        check_int(self.champion, "champion", minimum=1)
        if self.challenger is not None:
            check_int(self.challenger, "challenger", minimum=1)
        if self.canary is not None:
            check_int(self.canary, "canary", minimum=1)
        _check_share(self.challenger_share, "challenger_share")
        _check_share(self.canary_share, "canary_share")
        if isinstance(self.shadows, str | bytes) or not isinstance(self.shadows, Iterable):
            raise InvalidArgument(
                f"shadows must be a sequence of versions, got {self.shadows!r}",
                field="shadows",
                remedy="pass a tuple of version numbers, for example (3, 4)",
            )
        shadows = tuple(self.shadows)
        for v in shadows:
            check_int(v, "shadows", minimum=1)
        object.__setattr__(self, "shadows", shadows)

        if self.challenger_share > 0 and self.challenger is None:
            raise InvalidArgument(
                f"challenger_share is {self.challenger_share:g} but no challenger is set",
                field="challenger",
                remedy="set the challenger version, or set challenger_share to 0",
            )
        if self.canary_share > 0 and self.canary is None:
            raise InvalidArgument(
                f"canary_share is {self.canary_share:g} but no canary is set",
                field="canary",
                remedy="set the canary version, or set canary_share to 0",
            )
        if self.challenger_share + self.canary_share > 1.0 + SHARE_TOLERANCE:
            raise InvalidArgument(
                f"challenger_share + canary_share is "
                f"{self.challenger_share + self.canary_share:g}, more than 1",
                field="challenger_share",
                remedy="lower one of the shares so that together they are at most 1",
            )
        if self.challenger is not None and self.challenger == self.champion:
            raise InvalidArgument(
                f"version {self.champion} cannot be both champion and challenger",
                field="challenger",
                remedy="choose a different version as challenger",
            )
        if self.canary is not None and self.canary == self.champion:
            raise InvalidArgument(
                f"version {self.champion} cannot be both champion and canary",
                field="canary",
                remedy="choose a different version as canary",
            )
        if self.canary is not None and self.canary == self.challenger:
            raise InvalidArgument(
                f"version {self.canary} cannot be both challenger and canary",
                field="canary",
                remedy="choose a different version as canary",
            )
        if len(set(shadows)) != len(shadows):
            raise InvalidArgument(
                f"shadows lists a version twice: {list(shadows)}",
                field="shadows",
                remedy="list each shadow version once",
            )
        for role, version in (
            ("champion", self.champion),
            ("challenger", self.challenger),
            ("canary", self.canary),
        ):
            if version is not None and version in shadows:
                raise InvalidArgument(
                    f"version {version} cannot be both {role} and shadow",
                    field="shadows",
                    remedy=f"remove version {version} from shadows",
                )

    @property
    def effective_salt(self) -> str:
        """The salt actually hashed: ``salt`` if set, else the model name."""
        return self.salt or self.model

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; ``from_dict(to_dict())`` gives an equal policy."""
        return {
            "model": self.model,
            "champion": self.champion,
            "challenger": self.challenger,
            "challenger_share": float(self.challenger_share),
            "canary": self.canary,
            "canary_share": float(self.canary_share),
            "shadows": list(self.shadows),
            "salt": self.salt,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrafficPolicy:
        """Read a policy from ``to_dict`` output; only ``model`` and ``champion`` are required."""
        _check_mapping(
            data,
            "traffic policy",
            required=("model", "champion"),
            optional=(
                "challenger",
                "challenger_share",
                "canary",
                "canary_share",
                "shadows",
                "salt",
            ),
        )
        shadows = data.get("shadows", ())
        if isinstance(shadows, list):
            shadows = tuple(shadows)
        return cls(
            model=data["model"],
            champion=data["champion"],
            challenger=data.get("challenger"),
            challenger_share=data.get("challenger_share", 0.0),
            canary=data.get("canary"),
            canary_share=data.get("canary_share", 0.0),
            shadows=shadows,
            salt=data.get("salt", ""),
        )


@dataclass(frozen=True)
class RouteDecision:
    """Which version answers one request.

    ``variant`` is "champion", "challenger" or "canary"; ``bucket`` is the entity's position in
    ``[0, 1)``; ``shadows`` are the versions to score off the response path (never returned).
    """

    version: int
    variant: Variant
    bucket: float
    shadows: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "variant": self.variant,
            "bucket": self.bucket,
            "shadows": list(self.shadows),
        }


def route(entity_key: str, policy: TrafficPolicy) -> RouteDecision:
    """Route ``entity_key`` under ``policy``: canary if ``bucket < canary_share``, challenger if
    ``bucket >= 1 - challenger_share``, champion otherwise; shadows always passed through.

    Pure and sticky: the same key and policy give the same decision everywhere. Raises
    ``InvalidArgument`` (field ``entity_key``) for an empty key.
    """
    b = bucket(entity_key, policy.effective_salt)
    if policy.canary is not None and b < policy.canary_share:
        return RouteDecision(policy.canary, "canary", b, policy.shadows)
    if policy.challenger is not None and b >= 1.0 - policy.challenger_share:
        return RouteDecision(policy.challenger, "challenger", b, policy.shadows)
    return RouteDecision(policy.champion, "champion", b, policy.shadows)


# --------------------------------------------------------------------------------------------------
# Canary plans
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CanaryPlan:
    """How a canary grows and when it is stopped.

    ``steps`` are canary shares, strictly increasing, each in ``(0, 1]``, the last exactly 1.0 (for
    example ``(0.05, 0.20, 1.0)``). A step is passed after ``min_decisions`` canary decisions with
    every guardrail holding. Guardrails (a breach is ``observed > limit``): ``max_error_rate``
    (errors per decision, in [0, 1]), ``max_latency_p99_ms``, ``max_score_psi`` (PSI of the canary's
    score distribution against the champion's) and ``max_approval_rate_delta`` (absolute difference
    of approval rates, in [0, 1]). The two distributional guardrails are judged only on an
    observation of at least ``min_judged_decisions`` canary decisions (default
    :data:`DISTRIBUTION_MIN_DECISIONS`); a smaller one makes the canary gather more.
    """

    steps: tuple[float, ...]
    min_decisions: int
    max_error_rate: float
    max_latency_p99_ms: float
    max_score_psi: float
    max_approval_rate_delta: float
    min_judged_decisions: int = DISTRIBUTION_MIN_DECISIONS

    def __post_init__(self) -> None:
        if isinstance(self.steps, str | bytes) or not isinstance(self.steps, Iterable):
            raise InvalidArgument(
                f"steps must be a sequence of shares, got {self.steps!r}",
                field="steps",
                remedy="pass shares such as (0.05, 0.2, 1.0)",
            )
        steps = tuple(self.steps)
        if not steps:
            raise InvalidArgument(
                "steps is empty", field="steps", remedy="pass shares such as (0.05, 0.2, 1.0)"
            )
        for s in steps:
            value = _check_share(s, "steps")
            if value <= 0.0:
                raise InvalidArgument(
                    f"every step must be above 0, got {value:g}",
                    field="steps",
                    remedy="remove the zero step: a canary starts at its first positive share",
                )
        for before, after in itertools.pairwise(steps):
            if after <= before:
                raise InvalidArgument(
                    f"steps must be strictly increasing, got {before:g} then {after:g}",
                    field="steps",
                    remedy="order the shares from smallest to largest, each once",
                )
        if steps[-1] != 1.0:
            raise InvalidArgument(
                f"the last step must be 1.0 (full traffic), got {steps[-1]:g}",
                field="steps",
                remedy="end the plan with 1.0",
            )
        object.__setattr__(self, "steps", steps)
        check_int(self.min_decisions, "min_decisions", minimum=1)
        _check_number(self.max_error_rate, "max_error_rate", maximum=1.0)
        _check_number(self.max_latency_p99_ms, "max_latency_p99_ms")
        _check_number(self.max_score_psi, "max_score_psi")
        _check_number(self.max_approval_rate_delta, "max_approval_rate_delta", maximum=1.0)
        check_int(self.min_judged_decisions, "min_judged_decisions", minimum=1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": [float(s) for s in self.steps],
            "min_decisions": self.min_decisions,
            "max_error_rate": float(self.max_error_rate),
            "max_latency_p99_ms": float(self.max_latency_p99_ms),
            "max_score_psi": float(self.max_score_psi),
            "max_approval_rate_delta": float(self.max_approval_rate_delta),
            "min_judged_decisions": self.min_judged_decisions,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CanaryPlan:
        fields = (
            "steps",
            "min_decisions",
            "max_error_rate",
            "max_latency_p99_ms",
            "max_score_psi",
            "max_approval_rate_delta",
        )
        _check_mapping(data, "canary plan", required=fields, optional=("min_judged_decisions",))
        steps = data["steps"]
        return cls(
            steps=tuple(steps) if isinstance(steps, list) else steps,
            min_decisions=data["min_decisions"],
            max_error_rate=data["max_error_rate"],
            max_latency_p99_ms=data["max_latency_p99_ms"],
            max_score_psi=data["max_score_psi"],
            max_approval_rate_delta=data["max_approval_rate_delta"],
            min_judged_decisions=data.get("min_judged_decisions", DISTRIBUTION_MIN_DECISIONS),
        )


@dataclass(frozen=True)
class CanaryState:
    """Where a canary is: ``step`` (index into ``CanaryPlan.steps``), ``status`` ("running",
    "promoted" or "rolled_back"), ``decisions_in_step`` (canary decisions counted in the current
    step) and ``reason`` (why the last transition happened, empty at the start).

    ``CanaryState()`` is the start of every plan: step 0, running, no decisions.
    """

    step: int = 0
    status: CanaryStatus = "running"
    decisions_in_step: int = 0
    reason: str = ""

    def __post_init__(self) -> None:
        check_int(self.step, "step", minimum=0)
        if self.status not in CANARY_STATUSES:
            raise InvalidArgument(
                f"status must be one of {list(CANARY_STATUSES)}, got {self.status!r}",
                field="status",
                remedy=f"use one of {list(CANARY_STATUSES)}",
            )
        check_int(self.decisions_in_step, "decisions_in_step", minimum=0)
        if not isinstance(self.reason, str):
            raise InvalidArgument(
                f"reason must be a string, got {self.reason!r}",
                field="reason",
                remedy="pass a string",
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "status": self.status,
            "decisions_in_step": self.decisions_in_step,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CanaryState:
        _check_mapping(
            data,
            "canary state",
            required=("step", "status"),
            optional=("decisions_in_step", "reason"),
        )
        return cls(
            step=data["step"],
            status=data["status"],
            decisions_in_step=data.get("decisions_in_step", 0),
            reason=data.get("reason", ""),
        )


@dataclass(frozen=True)
class GuardrailObservation:
    """What the canary did in one window since the previous ``advance`` call.

    ``decisions`` canary decisions of which ``errors`` failed; ``latency_p99_ms`` the canary's p99
    latency; ``score_psi`` the PSI of the canary's scores against the champion's; and the approval
    rates (fractions in [0, 1]) of canary and champion over the same window.
    """

    decisions: int
    errors: int
    latency_p99_ms: float
    score_psi: float
    approval_rate_canary: float
    approval_rate_champion: float

    def __post_init__(self) -> None:
        check_int(self.decisions, "decisions", minimum=0)
        check_int(self.errors, "errors", minimum=0)
        if self.errors > self.decisions:
            raise InvalidArgument(
                f"errors ({self.errors}) cannot exceed decisions ({self.decisions})",
                field="errors",
                remedy="count errors among the window's decisions",
            )
        _check_number(self.latency_p99_ms, "latency_p99_ms")
        _check_number(self.score_psi, "score_psi")
        _check_share(self.approval_rate_canary, "approval_rate_canary")
        _check_share(self.approval_rate_champion, "approval_rate_champion")

    @property
    def error_rate(self) -> float:
        """``errors / decisions``; 0.0 for an empty window."""
        return self.errors / self.decisions if self.decisions else 0.0

    @property
    def approval_rate_delta(self) -> float:
        """``|approval_rate_canary - approval_rate_champion|``."""
        return abs(self.approval_rate_canary - self.approval_rate_champion)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decisions": self.decisions,
            "errors": self.errors,
            "latency_p99_ms": float(self.latency_p99_ms),
            "score_psi": float(self.score_psi),
            "approval_rate_canary": float(self.approval_rate_canary),
            "approval_rate_champion": float(self.approval_rate_champion),
        }


def _check_state_fits(plan: CanaryPlan, state: CanaryState) -> None:
    if state.step >= len(plan.steps):
        raise InvalidArgument(
            f"state is at step {state.step} but the plan has only {len(plan.steps)} steps",
            field="step",
            remedy="pass the state that belongs to this plan",
        )


def _step_label(plan: CanaryPlan, step: int) -> str:
    return f"step {step + 1} of {len(plan.steps)} ({plan.steps[step]:.0%} canary)"


def _first_breach(
    plan: CanaryPlan, obs: GuardrailObservation, *, distribution: bool = True
) -> str | None:
    """``"<guardrail> <observed> > <limit name> <limit>"`` for the first breached guardrail
    (the distributional ones, score PSI and approval-rate delta, only when ``distribution``)."""
    checks = [
        ("error_rate", obs.error_rate, "max_error_rate", plan.max_error_rate),
        ("latency_p99_ms", obs.latency_p99_ms, "max_latency_p99_ms", plan.max_latency_p99_ms),
    ]
    if distribution:
        checks += [
            ("score_psi", obs.score_psi, "max_score_psi", plan.max_score_psi),
            (
                "approval_rate_delta",
                obs.approval_rate_delta,
                "max_approval_rate_delta",
                plan.max_approval_rate_delta,
            ),
        ]
    for name, observed, limit_name, limit in checks:
        if observed > limit + GUARDRAIL_TOLERANCE * max(1.0, abs(limit)):
            return f"{name} {observed:.6g} > {limit_name} {limit:.6g}"
    return None


def advance(
    plan: CanaryPlan, state: CanaryState, obs: GuardrailObservation
) -> tuple[CanaryState, CanaryAction]:
    """One step of the canary state machine: the new state and the action taken.

    Actions: "rollback" (a guardrail breached, status becomes "rolled_back"), "hold" (the step has
    fewer than ``min_decisions`` decisions), "advance" (next step, decision count reset),
    "promote" (the last step passed, status becomes "promoted"), "gather" (the observation holds
    fewer than the plan's ``min_judged_decisions`` canary decisions, too few to judge a score
    distribution or an approval rate: nothing is consumed and the caller observes the same window
    again, longer),
    "none" (the state was already terminal and is returned unchanged). Error rate and latency
    are judged on any observation. Raises ``InvalidArgument`` if the state's step is not in the
    plan.
    """
    _check_state_fits(plan, state)
    if state.status != "running":
        return state, "none"
    total = state.decisions_in_step + obs.decisions
    where = _step_label(plan, state.step)
    if obs.decisions > 0:
        judged = obs.decisions >= plan.min_judged_decisions
        breach = _first_breach(plan, obs, distribution=judged)
        if breach is None and not judged:
            gathering = CanaryState(
                step=state.step,
                status="running",
                decisions_in_step=state.decisions_in_step,
                reason=f"gathering at {where}: {obs.decisions} of {plan.min_judged_decisions} "
                "decisions before the score distribution and approval rate are judged",
            )
            return gathering, "gather"
        if breach is not None:
            rolled_back = CanaryState(
                step=state.step,
                status="rolled_back",
                decisions_in_step=total,
                reason=f"rolled back at {where}: {breach}",
            )
            return rolled_back, "rollback"
    if total < plan.min_decisions:
        held = CanaryState(
            step=state.step,
            status="running",
            decisions_in_step=total,
            reason=f"holding at {where}: {total} of {plan.min_decisions} decisions",
        )
        return held, "hold"
    if state.step == len(plan.steps) - 1:
        promoted = CanaryState(
            step=state.step,
            status="promoted",
            decisions_in_step=total,
            reason=f"promoted after {where}: guardrails held for {total} decisions",
        )
        return promoted, "promote"
    advanced = CanaryState(
        step=state.step + 1,
        status="running",
        decisions_in_step=0,
        reason=(
            f"advanced to {_step_label(plan, state.step + 1)}: "
            f"guardrails held for {total} decisions at {where}"
        ),
    )
    return advanced, "advance"


def share(plan: CanaryPlan, state: CanaryState) -> float:
    """The canary share for ``state``: the step's share while running, 1.0 promoted, 0.0 rolled
    back. Raises ``InvalidArgument`` if the state's step is not in the plan."""
    _check_state_fits(plan, state)
    if state.status == "promoted":
        return 1.0
    if state.status == "rolled_back":
        return 0.0
    return float(plan.steps[state.step])
