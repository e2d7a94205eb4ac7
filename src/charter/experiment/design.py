"""Designing an experiment: sample size, power and duration, and the pre-registered plan.

``plan_experiment`` answers "how many applicants, and how many days?" for a rate (an approval or
bad rate: ``baseline_rate``) or a mean (``sd``), and, given a duration, "what power, and what is
the smallest effect we would see?". ``build_plan`` turns the same inputs into the
``ExperimentPlan`` that is stored, once, when an experiment is registered: the primary metric, the
tests' alpha, the stopping rule, the guardrails and the protected attributes are fixed before any
data is analysed.

Conventions (pinned by tests/unit/test_experiment_design.py):

* **Arms.** ``a`` is the champion (control), ``b`` the challenger; ``mde`` is an absolute
  difference ``b - a`` as in :mod:`charter.stats.experiments`, which does the statistics.
* **Split.** ``challenger_share`` ``s`` is the challenger's share of the applicants the two arms
  see; the traffic ratio is ``ratio = n_b / n_a = s / (1 - s)``.
* **Duration.** With ``n_a`` and ``n_b`` rows needed per arm, the applicants needed are
  ``ceil(max(n_a / (1 - s), n_b / s))`` (both arms reach their size when that many applicants have
  arrived) and the duration is ``days = ceil(applicants_needed / daily_volume)``. Ceilings forgive
  a relative excess of 1e-9, so decimal shares (``1250 / 0.2``) do not round up a whole day.
* **Fixed size.** Given ``days`` and ``daily_volume`` (``days * daily_volume`` applicants) or
  ``applicants`` directly, the applicants split into ``n_a = floor(applicants * (1 - s))`` and
  ``n_b = applicants - n_a``; the power at ``mde`` and the minimum detectable effect at the
  target power use ``n_a`` and ``ratio``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from charter.checks import check_int, check_number
from charter.errors import InvalidArgument
from charter.stats.experiments import (
    PowerPlan,
    minimum_detectable_effect,
    power_means,
    power_proportions,
    sample_size_means,
    sample_size_proportions,
)
from charter.storage import jsonutil
from charter.validation import policy
from charter.validation.policy import ProtectedAttribute

__all__ = [
    "DEFAULT_DIRECTION",
    "KINDS",
    "PRIMARY_METRICS",
    "STOPPING_RULES",
    "ExperimentDesign",
    "ExperimentPlan",
    "Guardrails",
    "attributes_to_dict",
    "build_plan",
    "parse_attributes",
    "plan_experiment",
    "plan_sha256",
]

KINDS = ("ab", "shadow")
PRIMARY_METRICS = ("approval_rate", "bad_rate", "mean_score", "auc")
DEFAULT_DIRECTION: dict[str, str] = {
    "approval_rate": "higher",
    "bad_rate": "lower",
    "auc": "higher",
}
STOPPING_RULES = ("msprt", "fixed_horizon")
_ALTERNATIVES = ("two-sided", "larger", "smaller")
_CEIL_SLACK = 1e-9


def _ceil(x: float) -> int:
    """``ceil(x)``, forgiving a relative excess of 1e-9 (float noise of decimal shares)."""
    return max(0, math.ceil(x - _CEIL_SLACK * max(1.0, abs(x))))


def _share(value: object, fld: str = "challenger_share") -> float:
    s = check_number(value, fld, minimum=0.0, maximum=1.0)
    if not 0.0 < s < 1.0:
        raise InvalidArgument(
            f"{fld} must lie strictly between 0 and 1, got {s:g}",
            field=fld,
            remedy="pass the challenger's share of applicants, e.g. 0.2 for 20%",
        )
    return s


def _unit(value: object, fld: str, example: str) -> float:
    x = check_number(value, fld)
    if not 0.0 < x < 1.0:
        raise InvalidArgument(
            f"{fld} must lie strictly between 0 and 1, got {x:g}",
            field=fld,
            remedy=f"pass e.g. {example}",
        )
    return x


def _positive(value: object, fld: str, example: str) -> float:
    x = check_number(value, fld)
    if x <= 0.0:
        raise InvalidArgument(f"{fld} must be > 0, got {x:g}", field=fld, remedy=f"e.g. {example}")
    return x


# --------------------------------------------------------------------------------------------
# Sample size, power and duration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExperimentDesign:
    """Sample sizes, power and duration of a two-arm experiment on one metric.

    ``metric`` is ``"rate"`` (``baseline_rate`` set) or ``"mean"`` (``sd`` set). ``mode`` is
    ``"sample_size"`` (rows needed for ``mde`` at ``target_power``) or ``"fixed_size"`` (the
    rows ``days * daily_volume`` or ``applicants`` give, ``power`` at ``mde`` if one was given, and
    ``mde_at_target_power``). ``n_champion``/``n_challenger`` are rows per arm, ``n_total``
    their sum and ``applicants_needed`` the traffic that fills both at the split (see the module
    conventions). ``power_plan`` and ``mde_plan`` are the statistics module's results.
    """

    metric: str
    mode: str
    alternative: str
    alpha: float
    target_power: float
    baseline_rate: float | None
    sd: float | None
    mde: float | None
    challenger_share: float
    ratio: float
    n_champion: int
    n_challenger: int
    n_total: int
    applicants_needed: int
    daily_volume: int | None
    days: int | None
    power: float | None
    mde_at_target_power: float | None
    power_plan: PowerPlan | None
    mde_plan: PowerPlan | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "mode": self.mode,
            "alternative": self.alternative,
            "alpha": self.alpha,
            "target_power": self.target_power,
            "baseline_rate": self.baseline_rate,
            "sd": self.sd,
            "mde": self.mde,
            "challenger_share": self.challenger_share,
            "ratio": self.ratio,
            "n_champion": self.n_champion,
            "n_challenger": self.n_challenger,
            "n_total": self.n_total,
            "applicants_needed": self.applicants_needed,
            "daily_volume": self.daily_volume,
            "days": self.days,
            "power": self.power,
            "mde_at_target_power": self.mde_at_target_power,
            "power_plan": None if self.power_plan is None else self.power_plan.to_dict(),
            "mde_plan": None if self.mde_plan is None else self.mde_plan.to_dict(),
        }


def applicants_needed(n_champion: int, n_challenger: int, challenger_share: float) -> int:
    """Applicants that must arrive for both arms to reach their sizes at this split."""
    s = _share(challenger_share)
    return _ceil(max(n_champion / (1.0 - s), n_challenger / s))


def duration_days(applicants: int, daily_volume: int) -> int:
    """``ceil(applicants / daily_volume)``: whole days to see that many applicants."""
    n = check_int(applicants, "applicants", minimum=0)
    v = check_int(daily_volume, "daily_volume", minimum=1)
    return -(-n // v)


def plan_experiment(
    *,
    baseline_rate: float | None = None,
    sd: float | None = None,
    mde: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    challenger_share: float = 0.5,
    daily_volume: int | None = None,
    days: int | None = None,
    applicants: int | None = None,
    alternative: str = "two-sided",
) -> ExperimentDesign:
    """Sample size and duration (``mde`` given), or power and MDE for a fixed size.

    Pass exactly one of ``baseline_rate`` (a rate metric: the champion's rate, e.g. 0.12) or
    ``sd`` (a mean metric: the per-row standard deviation). ``daily_volume`` is the applicants a
    day the two arms share; with it the design reports ``days``. With ``days`` (which needs
    ``daily_volume``) or ``applicants`` (the applicants both arms will see in all) the design is
    for that fixed size: the power at ``mde`` (then optional) and the MDE at ``power``.
    """
    if (baseline_rate is None) == (sd is None):
        raise InvalidArgument(
            "pass exactly one of baseline_rate (a rate metric) or sd (a mean metric)",
            field="baseline_rate" if baseline_rate is None else "sd",
            remedy="e.g. --baseline-rate 0.12 for an approval or bad rate, --sd 0.2 for a mean",
        )
    if alternative not in _ALTERNATIVES:
        raise InvalidArgument(
            f"alternative must be one of {', '.join(_ALTERNATIVES)}, got {alternative!r}",
            field="alternative",
            remedy="use two-sided unless the direction is fixed before seeing data",
        )
    metric = "rate" if baseline_rate is not None else "mean"
    s = _share(challenger_share)
    ratio = s / (1.0 - s)
    vol = None if daily_volume is None else check_int(daily_volume, "daily_volume", minimum=1)
    if days is not None and applicants is not None:
        raise InvalidArgument(
            "pass days or applicants, not both",
            field="applicants",
            remedy="a fixed duration is days * daily_volume applicants",
        )
    if days is not None:
        d = check_int(days, "days", minimum=1)
        if vol is None:
            raise InvalidArgument(
                "a fixed duration needs the daily volume",
                field="daily_volume",
                remedy="pass --daily-volume N with --days",
            )
        return _fixed_size(metric, baseline_rate, sd, mde, alpha, power, s, ratio, d * vol, vol,
                           alternative)  # fmt: skip
    if applicants is not None:
        n = check_int(applicants, "applicants", minimum=2)
        return _fixed_size(metric, baseline_rate, sd, mde, alpha, power, s, ratio, n, vol,
                           alternative)  # fmt: skip
    if mde is None:
        raise InvalidArgument(
            "the minimum detectable effect is required for a sample size",
            field="mde",
            remedy="pass --mde (an absolute difference b - a, e.g. 0.02), or --days to get the "
            "MDE of a fixed duration",
        )
    if baseline_rate is not None:
        plan = sample_size_proportions(baseline_rate, mde, alpha, power, ratio, alternative)
    else:
        assert sd is not None
        plan = sample_size_means(sd, mde, alpha, power, ratio, alternative)
    needed = applicants_needed(plan.n_a, plan.n_b, s)
    return ExperimentDesign(
        metric=metric,
        mode="sample_size",
        alternative=plan.alternative,
        alpha=plan.alpha,
        target_power=plan.power,
        baseline_rate=plan.p_baseline,
        sd=plan.sd,
        mde=plan.mde,
        challenger_share=s,
        ratio=ratio,
        n_champion=plan.n_a,
        n_challenger=plan.n_b,
        n_total=plan.n_total,
        applicants_needed=needed,
        daily_volume=vol,
        days=None if vol is None else duration_days(needed, vol),
        power=plan.power,
        mde_at_target_power=plan.mde,
        power_plan=plan,
        mde_plan=None,
    )


def _fixed_size(
    metric: str,
    baseline_rate: float | None,
    sd: float | None,
    mde: float | None,
    alpha: float,
    power: float,
    s: float,
    ratio: float,
    applicants: int,
    vol: int | None,
    alternative: str,
) -> ExperimentDesign:
    n_a = math.floor(applicants * (1.0 - s) + _CEIL_SLACK * applicants)
    n_b = applicants - n_a
    if n_a < 1 or n_b < 1:
        raise InvalidArgument(
            f"{applicants} applicants give an arm no rows at share {s:g}",
            field="days" if vol is not None else "applicants",
            remedy="lengthen the experiment or raise the volume",
        )
    mde_plan = minimum_detectable_effect(
        n_a, p_baseline=baseline_rate, sd=sd, alpha=alpha, power=power, ratio=ratio,
        alternative=alternative,
    )  # fmt: skip
    power_plan: PowerPlan | None = None
    if mde is not None:
        if baseline_rate is not None:
            power_plan = power_proportions(baseline_rate, mde, n_a, alpha, ratio, alternative)
        else:
            assert sd is not None
            power_plan = power_means(sd, mde, n_a, alpha, ratio, alternative)
    return ExperimentDesign(
        metric=metric,
        mode="fixed_size",
        alternative=mde_plan.alternative,
        alpha=mde_plan.alpha,
        target_power=mde_plan.power,
        baseline_rate=mde_plan.p_baseline,
        sd=mde_plan.sd,
        mde=None if power_plan is None else power_plan.mde,
        challenger_share=s,
        ratio=ratio,
        n_champion=n_a,
        n_challenger=n_b,
        n_total=applicants,
        applicants_needed=applicants,
        daily_volume=vol,
        days=None if vol is None else duration_days(applicants, vol),
        power=None if power_plan is None else power_plan.power,
        mde_at_target_power=mde_plan.mde,
        power_plan=power_plan,
        mde_plan=mde_plan,
    )


# --------------------------------------------------------------------------------------------
# Protected attributes (the validation policy's [gates.fairness.attributes] tables)
# --------------------------------------------------------------------------------------------


def parse_attributes(
    raw: Mapping[str, Any] | None, where: str = "plan.protected_attributes"
) -> tuple[ProtectedAttribute, ...]:
    """``{name: {column, split | map | bins}}`` (as a validation policy's
    ``[gates.fairness.attributes]``) to ``ProtectedAttribute``s, every key checked by the
    policy's own parser; errors name the plan's field."""
    if raw is None:
        return ()
    return policy.parse_attributes(raw, where=where, prefix="")


def attributes_to_dict(attributes: tuple[ProtectedAttribute, ...]) -> dict[str, Any]:
    """The inverse of :func:`parse_attributes` (only the keys that are set)."""
    out: dict[str, Any] = {}
    for a in attributes:
        spec: dict[str, Any] = {"column": a.column}
        if a.split is not None:
            spec["split"] = a.split
        if a.mapping is not None:
            spec["map"] = dict(a.mapping)
        if a.bins:
            spec["bins"] = list(a.bins)
        out[a.name] = spec
    return out


# --------------------------------------------------------------------------------------------
# The pre-registered plan
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Guardrails:
    """Limits on the challenger that stop an experiment whatever its metrics say.

    Latency is the challenger's p99 scoring latency; the error rate is scoring errors over
    decisions plus errors (for a shadow: champion decisions without a shadow score). Parity is
    the four-fifths rule per protected attribute: the lowest approval rate of a group over the
    highest, among groups of at least ``min_group_size``; it is breached below
    ``min_parity_ratio`` and, when ``max_parity_drop`` is set, when it falls by more than that
    from the champion's (unset by default: on groups of tens of rows the ratio moves by several
    points by chance; the change is always reported). Nothing is judged before the challenger
    has ``min_rows`` decisions.
    """

    max_latency_p99_ms: float = 250.0
    max_error_rate: float = 0.01
    min_parity_ratio: float = 0.8
    max_parity_drop: float | None = None
    min_group_size: int = 20
    min_rows: int = 30

    def __post_init__(self) -> None:
        check_number(self.max_latency_p99_ms, "guardrails.max_latency_p99_ms", minimum=0.0)
        check_number(self.max_error_rate, "guardrails.max_error_rate", minimum=0.0, maximum=1.0)
        check_number(self.min_parity_ratio, "guardrails.min_parity_ratio", minimum=0, maximum=1)
        if self.max_parity_drop is not None:
            check_number(self.max_parity_drop, "guardrails.max_parity_drop", minimum=0, maximum=1)
        check_int(self.min_group_size, "guardrails.min_group_size", minimum=1)
        check_int(self.min_rows, "guardrails.min_rows", minimum=1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_latency_p99_ms": float(self.max_latency_p99_ms),
            "max_error_rate": float(self.max_error_rate),
            "min_parity_ratio": float(self.min_parity_ratio),
            "max_parity_drop": None
            if self.max_parity_drop is None
            else float(self.max_parity_drop),
            "min_group_size": int(self.min_group_size),
            "min_rows": int(self.min_rows),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Guardrails:
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise InvalidArgument(
                "guardrails must be a mapping", field="plan.guardrails", remedy="see to_dict()"
            )
        known = cls().to_dict()
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise InvalidArgument(
                f"unknown guardrail {unknown[0]!r}",
                field=f"plan.guardrails.{unknown[0]}",
                remedy=f"use only: {', '.join(known)}",
            )
        return cls(**{k: data[k] for k in known if k in data})


@dataclass(frozen=True, slots=True)
class ExperimentPlan:
    """What an experiment will decide on, fixed when it is registered.

    ``primary_metric`` (approval_rate, bad_rate, mean_score or auc) is the one metric whose test
    decides promote or stop; ``direction`` says which way is better (higher or lower).
    ``n_champion``/``n_challenger`` are the primary metric's rows needed per arm (from the design
    for rates and means, from ``min_rows`` for the AUC). ``stopping_rule`` is ``"msprt"``
    (decide at any look when the always-valid p-value of the mixture SPRT with mixing variance
    ``tau2`` falls below ``alpha``; at the horizon without that, keep the champion) or
    ``"fixed_horizon"`` (decide only at the horizon, by the fixed-sample test at ``alpha``). The
    horizon is reached when both arms have their rows or ``max_days`` have passed since the
    experiment was registered.
    """

    kind: str
    primary_metric: str
    direction: str
    alpha: float
    power: float
    mde: float
    tau2: float
    max_days: int
    stopping_rule: str
    challenger_share: float | None
    baseline_rate: float | None
    sd: float | None
    n_champion: int
    n_challenger: int
    guardrails: Guardrails = field(default_factory=Guardrails)
    attributes: tuple[ProtectedAttribute, ...] = ()
    design: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "primary_metric": self.primary_metric,
            "direction": self.direction,
            "alpha": float(self.alpha),
            "power": float(self.power),
            "mde": float(self.mde),
            "tau2": float(self.tau2),
            "max_days": int(self.max_days),
            "stopping_rule": self.stopping_rule,
            "challenger_share": self.challenger_share,
            "baseline_rate": self.baseline_rate,
            "sd": self.sd,
            "n_champion": int(self.n_champion),
            "n_challenger": int(self.n_challenger),
            "guardrails": self.guardrails.to_dict(),
            "protected_attributes": attributes_to_dict(self.attributes),
            "design": None if self.design is None else dict(self.design),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExperimentPlan:
        """A stored plan, as it was registered (nothing is recomputed)."""
        required = (
            "kind", "primary_metric", "direction", "alpha", "power", "mde", "tau2", "max_days",
            "stopping_rule", "n_champion", "n_challenger",
        )  # fmt: skip
        for k in required:
            if k not in data:
                raise InvalidArgument(
                    f"the plan has no {k}", field=f"plan.{k}", remedy="register a new experiment"
                )
        return cls(
            kind=str(data["kind"]),
            primary_metric=str(data["primary_metric"]),
            direction=str(data["direction"]),
            alpha=float(data["alpha"]),
            power=float(data["power"]),
            mde=float(data["mde"]),
            tau2=float(data["tau2"]),
            max_days=int(data["max_days"]),
            stopping_rule=str(data["stopping_rule"]),
            challenger_share=_opt_float(data.get("challenger_share")),
            baseline_rate=_opt_float(data.get("baseline_rate")),
            sd=_opt_float(data.get("sd")),
            n_champion=int(data["n_champion"]),
            n_challenger=int(data["n_challenger"]),
            guardrails=Guardrails.from_dict(data.get("guardrails")),
            attributes=parse_attributes(data.get("protected_attributes")),
            design=data.get("design"),
        )


def _opt_float(x: Any) -> float | None:
    return None if x is None else float(x)


def plan_sha256(plan: ExperimentPlan) -> str:
    """SHA-256 of the plan's canonical JSON: what the audit trail and the evidence carry."""
    return hashlib.sha256(jsonutil.dumps(plan.to_dict()).encode("utf-8")).hexdigest()


def _choice(value: object, options: tuple[str, ...], fld: str, remedy: str) -> str:
    if value not in options:
        raise InvalidArgument(
            f"{fld} must be one of {', '.join(options)}, got {value!r}", field=fld, remedy=remedy
        )
    return str(value)


def build_plan(
    *,
    kind: str = "ab",
    primary_metric: str,
    mde: float,
    direction: str | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    baseline_rate: float | None = None,
    sd: float | None = None,
    min_rows: int | None = None,
    tau2: float | None = None,
    max_days: int = 28,
    stopping_rule: str = "msprt",
    challenger_share: float | None = None,
    guardrails: Guardrails | Mapping[str, Any] | None = None,
    protected_attributes: Mapping[str, Any] | tuple[ProtectedAttribute, ...] | None = None,
) -> ExperimentPlan:
    """Check the inputs of an experiment and compute its sample sizes: the plan to register.

    ``mde`` is the smallest difference of the primary metric worth acting on, as a positive
    magnitude (the design tests ``b - a = +mde`` when higher is better, ``-mde`` when lower is).
    Rates need ``baseline_rate`` (the champion's current approval or bad rate), ``mean_score``
    needs ``sd`` and a ``direction``, and ``auc`` needs ``min_rows`` (labelled rows per arm);
    ``min_rows`` overrides the design for the others. ``tau2`` defaults to ``mde ** 2`` (the
    mixing variance of the mSPRT, on the metric's scale). ``challenger_share`` is required for
    an A/B experiment (the traffic split) and unused for a shadow (the same applicants).
    """
    k = _choice(kind, KINDS, "plan.kind", "ab for live A/B traffic, shadow for shadow scores")
    metric = _choice(
        primary_metric,
        PRIMARY_METRICS,
        "plan.primary_metric",
        "approval_rate, bad_rate, mean_score or auc",
    )
    if k == "shadow" and metric == "bad_rate":
        raise InvalidArgument(
            "a shadow experiment cannot decide on the bad rate: outcomes exist only for the "
            "champion's approvals",
            field="plan.primary_metric",
            remedy="decide a shadow on auc (DeLong on the same applicants) or approval_rate",
        )
    if direction is None:
        if metric not in DEFAULT_DIRECTION:
            raise InvalidArgument(
                f"{metric} has no natural better direction",
                field="plan.direction",
                remedy="pass direction = higher or lower",
            )
        direction = DEFAULT_DIRECTION[metric]
    d = _choice(direction, ("higher", "lower"), "plan.direction", "higher or lower")
    a = _unit(alpha, "plan.alpha", "0.05")
    pw = _unit(power, "plan.power", "0.8")
    if pw <= a:
        raise InvalidArgument(
            f"power {pw:g} must exceed alpha {a:g}", field="plan.power", remedy="e.g. 0.8"
        )
    m = _positive(mde, "plan.mde", "0.02 (two points of a rate)")
    t2 = m**2 if tau2 is None else _positive(tau2, "plan.tau2", f"{m**2:g} (mde squared)")
    days = check_int(max_days, "plan.max_days", minimum=1)
    rule = _choice(
        stopping_rule, STOPPING_RULES, "plan.stopping_rule", "msprt (always valid) or fixed_horizon"
    )
    if k == "ab":
        if challenger_share is None:
            raise InvalidArgument(
                "an A/B experiment needs its traffic split",
                field="plan.challenger_share",
                remedy="pass the challenger's share of applicants, e.g. 0.2",
            )
        share: float | None = _share(challenger_share, "plan.challenger_share")
        assert share is not None
        ratio = share / (1.0 - share)
    else:
        share, ratio = None, 1.0
    signed = m if d == "higher" else -m
    design: PowerPlan | None = None
    rate = sdv = None
    if metric in ("approval_rate", "bad_rate"):
        if baseline_rate is None:
            raise InvalidArgument(
                f"the {metric} design needs the champion's current rate",
                field="plan.baseline_rate",
                remedy="pass baseline_rate, e.g. 0.7 for a 70% approval rate",
            )
        rate = _unit(baseline_rate, "plan.baseline_rate", "0.7")
        design = sample_size_proportions(rate, signed, a, pw, ratio, "two-sided")
    elif metric == "mean_score":
        if sd is None:
            raise InvalidArgument(
                "the mean_score design needs the score's standard deviation",
                field="plan.sd",
                remedy="pass sd, e.g. 0.2",
            )
        sdv = _positive(sd, "plan.sd", "0.2")
        design = sample_size_means(sdv, signed, a, pw, ratio, "two-sided")
    elif min_rows is None:
        raise InvalidArgument(
            "an AUC experiment needs the labelled rows per arm to collect",
            field="plan.min_rows",
            remedy="pass min_rows, e.g. 2000",
        )
    if min_rows is not None:
        n_a = check_int(min_rows, "plan.min_rows", minimum=2)
        n_b = _ceil(n_a * ratio) if k == "ab" else n_a
    else:
        assert design is not None
        n_a, n_b = design.n_a, design.n_b
    g = guardrails if isinstance(guardrails, Guardrails) else Guardrails.from_dict(guardrails)
    attrs = (
        protected_attributes
        if isinstance(protected_attributes, tuple)
        else parse_attributes(protected_attributes)
    )
    return ExperimentPlan(
        kind=k,
        primary_metric=metric,
        direction=d,
        alpha=a,
        power=pw,
        mde=m,
        tau2=t2,
        max_days=days,
        stopping_rule=rule,
        challenger_share=share,
        baseline_rate=rate,
        sd=sdv,
        n_champion=n_a,
        n_challenger=max(n_b, 1),
        guardrails=g,
        attributes=attrs,
        design=None if design is None else design.to_dict(),
    )
