"""Analysing an experiment: read its traffic from the decision log, compare, decide.

``analyze_experiment(registry, name)`` reads the registered experiment, loads its traffic
(``load_traffic``: I/O only) and hands it to ``analyze`` (pure: no I/O, no clock), which returns
an ``ExperimentAnalysis``: the ``ExperimentDecision`` (promote, keep, stop or continue, with every
test's result as evidence) and the ``Comparison`` the report draws.

Traffic
-------
* **A/B** (``kind = "ab"``): arm a is the champion version's decisions with variant
  ``champion``; arm b the challenger version's decisions with variant ``challenger`` or
  ``canary``. Different applicants: independent-sample tests.
* **Shadow** (``kind = "shadow"``): arm a is the champion's decisions, arm b the shadow version's
  scores and decisions *on the same applicants* (``shadow_scores`` joined on the decision).
  Paired tests; a champion decision without a shadow score counts as a shadow error.
* The window is ``[since, until)`` on ``created_at``; ``since`` defaults to the experiment's
  registration (data before the plan was fixed is not used), ``until`` to now.

Metrics (``b - a``; confidence ``1 - alpha`` of the plan)
---------------------------------------------------------
* **approval_rate**: A/B: pooled two-proportion z-test, Beta-Binomial ``P(b better)`` and
  ``P(b worse)`` (uniform prior), percentile bootstrap of the difference. Shadow: paired t-test
  of the 0/1 differences and a paired bootstrap.
* **bad_rate** (lower is better): label 1 = bad, on *approved* decisions with an outcome (the
  book's bad rate). A/B: z-test and Beta-Binomial. Shadow: the bad rate of each model's
  approvals among the labelled rows (all approved by the champion, so biased towards it), with
  a paired bootstrap interval and no p-value; never a shadow's primary metric.
* **mean_score**: Welch's t-test (A/B), paired t-test (shadow).
* **auc** on labelled rows (label 1 = the event, a higher score = more likely bad): shadow:
  DeLong's paired test; A/B: the unpaired difference ``z = d / sqrt(var_a + var_b)`` with each
  AUC's DeLong variance, and a bootstrap interval resampling each arm's rows.

A metric's verdict is ``better``/``worse`` (by its direction) or ``different`` (no direction)
when its p-value is below alpha (or, without one, when the interval excludes 0), else
``no_difference``; ``insufficient_data`` when the test cannot run. Directions: the plan's for
the primary metric; otherwise approval_rate and mean_score have none, bad_rate is lower-better
and auc higher-better.

Sequential test
---------------
The always-valid p-value of the primary metric is the mixture SPRT (``tau2`` and ``alpha`` of the
plan) with one look per UTC day of data, on all rows up to the end of that day: A/B rates and
means through :class:`charter.stats.experiments.MSPRT`; the AUC and every paired metric through
``msprt_likelihood_ratio`` on the estimate and its variance at each look (DeLong's for the AUC,
``var(d) / n`` of the paired differences), with the running maximum as in ``MSPRT``.

Decision
--------
1. **stop** when a guardrail is breached (``design.Guardrails``: p99 latency, error rate,
   four-fifths parity and, if the plan sets a limit, its drop from the champion), judged once
   the challenger has ``min_rows`` decisions.
2. With ``stopping_rule = "msprt"``, when the always-valid p-value is below alpha: **stop** if
   the primary difference points the worse way; else **promote**, unless a secondary metric
   with a direction (bad_rate, auc) is significantly worse: then **keep**. With
   ``"fixed_horizon"`` the same, but only at the horizon and by the fixed-sample test.
3. At the horizon (both arms have the plan's rows of the primary metric, or ``max_days`` have
   passed since registration) without a significant result: **keep** the champion.
4. Otherwise **continue** until the date the plan's rows will be reached at the observed daily
   volume (rows so far over the days since the window start, at least one day), at most the
   ``max_days`` deadline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats as sps
from sqlalchemy import and_, func, select

from charter.clock import iso
from charter.errors import InvalidArgument
from charter.experiment.design import ExperimentPlan
from charter.experiment.store import Experiment, get_experiment
from charter.registry.service import Registry
from charter.stats.classification import roc_auc
from charter.stats.experiments import (
    MSPRT,
    MSPRTResult,
    TestResult,
    beta_binomial_prob_b_better,
    bootstrap_ci,
    delong_test,
    delong_variance,
    msprt_likelihood_ratio,
    two_proportion_ztest,
    welch_ttest,
)
from charter.storage import jsonutil
from charter.storage.db import Database
from charter.storage.schema import decisions, outcomes, scoring_errors, shadow_scores
from charter.validation.gates import protected_groups
from charter.validation.policy import ProtectedAttribute

__all__ = [
    "Arm",
    "Comparison",
    "ExperimentAnalysis",
    "ExperimentDecision",
    "GuardrailCheck",
    "MetricComparison",
    "ParityResult",
    "SegmentDelta",
    "Traffic",
    "analyze",
    "analyze_experiment",
    "load_traffic",
    "paired_ttest",
    "unpaired_auc_test",
]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
METRIC_ORDER = ("approval_rate", "bad_rate", "mean_score", "auc")
SECONDARY_DIRECTION: dict[str, str | None] = {
    "approval_rate": None,
    "bad_rate": "lower",
    "mean_score": None,
    "auc": "higher",
}
HISTOGRAM_BINS = 20
GUARDRAIL_TOLERANCE = 1e-9


def _jf(x: Any) -> Any:
    """JSON-safe: non-finite floats become None, numpy scalars plain, containers recursed."""
    if isinstance(x, Mapping):
        return {str(k): _jf(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jf(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        f = float(x)
        return f if math.isfinite(f) else None
    return x


def _as_dict(result: Any) -> dict[str, Any]:
    out = result.to_dict() if hasattr(result, "to_dict") else asdict(result)
    return dict(_jf(out))


# --------------------------------------------------------------------------------------------
# Traffic
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Arm:
    """One arm's rows, in time order: decision time (ISO text), score, approved, latency,
    outcome label (NaN without one) and logged inputs; ``errors`` are its scoring errors (for a
    shadow: champion decisions it has no score for)."""

    name: str
    version: int
    created_at: NDArray[np.str_]
    scores: FloatArray
    approved: BoolArray
    latency_ms: FloatArray
    labels: FloatArray
    inputs: tuple[Mapping[str, Any], ...]
    errors: int = 0

    @property
    def n(self) -> int:
        return int(self.scores.size)

    @property
    def labelled(self) -> BoolArray:
        return np.asarray(~np.isnan(self.labels))

    @classmethod
    def build(
        cls,
        name: str,
        version: int,
        rows: Sequence[Mapping[str, Any]],
        errors: int = 0,
    ) -> Arm:
        """From rows with created_at, score, decision ("approve"/"decline"), latency_ms, label
        (None without an outcome) and inputs (a mapping or its JSON text)."""
        return cls(
            name=name,
            version=version,
            created_at=np.array([str(r["created_at"]) for r in rows], dtype=np.str_),
            scores=np.array([float(r["score"]) for r in rows], dtype=np.float64),
            approved=np.array([r["decision"] == "approve" for r in rows], dtype=np.bool_),
            latency_ms=np.array([float(r["latency_ms"]) for r in rows], dtype=np.float64),
            labels=np.array(
                [np.nan if r.get("label") is None else float(r["label"]) for r in rows],
                dtype=np.float64,
            ),
            inputs=tuple(
                jsonutil.loads(r["inputs"]) if isinstance(r["inputs"], str) else r["inputs"]
                for r in rows
            ),
            errors=int(errors),
        )


@dataclass(frozen=True, eq=False)
class Traffic:
    """Both arms of an experiment over a window; ``paired`` (shadow) rows are the same
    applicants, aligned row by row."""

    kind: str
    a: Arm
    b: Arm
    since: datetime
    until: datetime

    @property
    def paired(self) -> bool:
        return self.kind == "shadow"


def _window(model: str, since: datetime, until: datetime) -> Any:
    return and_(
        decisions.c.model_name == model,
        decisions.c.created_at >= iso(since),
        decisions.c.created_at < iso(until),
    )


_DECISION_COLUMNS = (
    decisions.c.id,
    decisions.c.created_at,
    decisions.c.score,
    decisions.c.decision,
    decisions.c.latency_ms,
    decisions.c.inputs,
    outcomes.c.label,
)


def _errors(conn: Any, model: str, version: int, variants: Sequence[str], lo: str, hi: str) -> int:
    return int(
        conn.execute(
            select(func.count())
            .select_from(scoring_errors)
            .where(
                scoring_errors.c.model_name == model,
                scoring_errors.c.version == version,
                scoring_errors.c.variant.in_(variants),
                scoring_errors.c.created_at >= lo,
                scoring_errors.c.created_at < hi,
            )
        ).scalar()
        or 0
    )


def load_traffic(db: Database, experiment: Experiment, since: datetime, until: datetime) -> Traffic:
    """Read an experiment's two arms over ``[since, until)`` from the decision log."""
    model = experiment.model_name
    lo, hi = iso(since), iso(until)
    joined = decisions.outerjoin(outcomes, outcomes.c.decision_id == decisions.c.id)
    champion_variants = ("champion",)
    challenger_variants = ("challenger", "canary")
    with db.read() as conn:

        def arm_rows(version: int, variants: Sequence[str]) -> list[dict[str, Any]]:
            q = (
                select(*_DECISION_COLUMNS)
                .select_from(joined)
                .where(
                    _window(model, since, until),
                    decisions.c.version == version,
                    decisions.c.variant.in_(variants),
                )
                .order_by(decisions.c.created_at, decisions.c.id)
            )
            return [dict(r._mapping) for r in conn.execute(q)]

        a_rows = arm_rows(experiment.champion_version, champion_variants)
        a_err = _errors(conn, model, experiment.champion_version, champion_variants, lo, hi)
        if experiment.kind == "ab":
            b_rows = arm_rows(experiment.challenger_version, challenger_variants)
            b_err = _errors(conn, model, experiment.challenger_version, challenger_variants, lo, hi)
            a = Arm.build("champion", experiment.champion_version, a_rows, a_err)
            b = Arm.build("challenger", experiment.challenger_version, b_rows, b_err)
            return Traffic("ab", a, b, since, until)
        shadow = conn.execute(
            select(
                shadow_scores.c.decision_id,
                shadow_scores.c.score,
                shadow_scores.c.decision,
                shadow_scores.c.latency_ms,
            )
            .join(decisions, decisions.c.id == shadow_scores.c.decision_id)
            .where(
                _window(model, since, until),
                decisions.c.variant == "champion",
                decisions.c.version == experiment.champion_version,
                shadow_scores.c.model_name == model,
                shadow_scores.c.version == experiment.challenger_version,
            )
            .order_by(shadow_scores.c.id)
        ).all()
    first: dict[str, Any] = {}
    for s in shadow:
        first.setdefault(s.decision_id, s)
    paired_a = [r for r in a_rows if r["id"] in first]
    paired_b = [
        dict(
            r,
            score=first[r["id"]].score,
            decision=first[r["id"]].decision,
            latency_ms=first[r["id"]].latency_ms,
        )
        for r in paired_a
    ]
    a = Arm.build("champion", experiment.champion_version, paired_a, a_err)
    b = Arm.build("shadow", experiment.challenger_version, paired_b, len(a_rows) - len(paired_a))
    return Traffic("shadow", a, b, since, until)


# --------------------------------------------------------------------------------------------
# Paired and unpaired tests not in charter.stats.experiments
# --------------------------------------------------------------------------------------------


def paired_ttest(a: FloatArray, b: FloatArray, *, confidence: float = 0.95) -> TestResult:
    """Two-sided paired t-test of ``mean(b - a)`` (as ``scipy.stats.ttest_rel(b, a)``), with the
    t interval; ``n >= 2`` pairs. All differences equal: statistic 0 and p-value 1 when they are
    0, else an infinite statistic and p-value 0 (the stats module's zero-variance rule)."""
    xa = np.asarray(a, dtype=np.float64)
    xb = np.asarray(b, dtype=np.float64)
    if xa.shape != xb.shape or xa.ndim != 1 or xa.size < 2:
        raise InvalidArgument(
            "a paired t-test needs two equally long samples of at least 2 pairs",
            field="b",
            remedy="pass the two models' values on the same rows",
        )
    d = xb - xa
    n = int(d.size)
    mean = float(d.mean())
    se = float(d.std(ddof=1)) / math.sqrt(n)
    df = float(n - 1)
    if se > 0.0:
        t = mean / se
        p = float(2.0 * sps.t.sf(abs(t), df))
    else:
        t = 0.0 if mean == 0.0 else math.copysign(math.inf, mean)
        p = 1.0 if mean == 0.0 else 0.0
    half = float(sps.t.ppf(0.5 + confidence / 2.0, df)) * se
    return TestResult(
        method="paired t-test",
        alternative="two-sided",
        statistic=t,
        p_value=min(p, 1.0),
        df=df,
        estimate_a=float(xa.mean()),
        estimate_b=float(xb.mean()),
        difference=mean,
        se=se,
        ci_low=mean - half,
        ci_high=mean + half,
        confidence=confidence,
        n_a=n,
        n_b=n,
    )


def unpaired_auc_test(
    y_a: FloatArray,
    score_a: FloatArray,
    y_b: FloatArray,
    score_b: FloatArray,
    *,
    confidence: float = 0.95,
) -> TestResult:
    """Two-sided z-test of ``AUC_b - AUC_a`` on different applicants: each AUC's DeLong variance,
    ``se = sqrt(var_a + var_b)`` (independent samples), Wald interval."""
    auc_a, var_a = delong_variance(y_a, score_a)
    auc_b, var_b = delong_variance(y_b, score_b)
    diff = auc_b - auc_a
    se = math.sqrt(max(var_a + var_b, 0.0))
    if se > 0.0:
        z = diff / se
        p = float(2.0 * sps.norm.sf(abs(z)))
    else:
        z = 0.0 if diff == 0.0 else math.copysign(math.inf, diff)
        p = 1.0 if diff == 0.0 else 0.0
    half = float(sps.norm.ppf(0.5 + confidence / 2.0)) * se
    return TestResult(
        method="unpaired AUC difference (DeLong variances)",
        alternative="two-sided",
        statistic=z,
        p_value=min(p, 1.0),
        df=math.inf,
        estimate_a=auc_a,
        estimate_b=auc_b,
        difference=diff,
        se=se,
        ci_low=diff - half,
        ci_high=diff + half,
        confidence=confidence,
        n_a=int(np.asarray(y_a).size),
        n_b=int(np.asarray(y_b).size),
    )


def _auc_ready(y: FloatArray) -> bool:
    events = int(np.sum(y == 1.0))
    return events >= 2 and int(y.size) - events >= 2


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricComparison:
    """One metric of the challenger (b) against the champion (a), with every test behind it."""

    metric: str
    better: str | None
    method: str
    n_a: int
    n_b: int
    estimate_a: float | None
    estimate_b: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    alpha: float
    verdict: str
    tests: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(
            _jf(
                {
                    "metric": self.metric,
                    "better": self.better,
                    "method": self.method,
                    "n_a": self.n_a,
                    "n_b": self.n_b,
                    "estimate_a": self.estimate_a,
                    "estimate_b": self.estimate_b,
                    "difference": self.difference,
                    "ci_low": self.ci_low,
                    "ci_high": self.ci_high,
                    "p_value": self.p_value,
                    "alpha": self.alpha,
                    "verdict": self.verdict,
                    "tests": dict(self.tests),
                    "note": self.note,
                }
            )
        )


@dataclass(frozen=True, slots=True)
class GuardrailCheck:
    """One guardrail on the challenger: ``value`` against ``limit`` (``op`` is what holds)."""

    name: str
    value: float | None
    champion_value: float | None
    limit: float
    op: str
    judged: bool
    breached: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return dict(
            _jf(
                {
                    "name": self.name,
                    "value": self.value,
                    "champion_value": self.champion_value,
                    "limit": self.limit,
                    "op": self.op,
                    "judged": self.judged,
                    "breached": self.breached,
                    "detail": self.detail,
                }
            )
        )


@dataclass(frozen=True, slots=True)
class ParityResult:
    """Approval rates by group of one protected attribute, per arm, and the four-fifths ratio
    (lowest over highest rate among groups of at least ``min_group_size``; None with fewer than
    two such groups or no approval at all)."""

    attribute: str
    groups: tuple[tuple[str, int, float | None, int, float | None], ...]
    ratio_a: float | None
    ratio_b: float | None
    min_group_size: int

    @property
    def change(self) -> float | None:
        if self.ratio_a is None or self.ratio_b is None:
            return None
        return self.ratio_b - self.ratio_a

    def to_dict(self) -> dict[str, Any]:
        return dict(
            _jf(
                {
                    "attribute": self.attribute,
                    "groups": [
                        {"group": g, "n_a": na, "approval_a": ra, "n_b": nb, "approval_b": rb}
                        for g, na, ra, nb, rb in self.groups
                    ],
                    "ratio_a": self.ratio_a,
                    "ratio_b": self.ratio_b,
                    "change": self.change,
                    "min_group_size": self.min_group_size,
                }
            )
        )


@dataclass(frozen=True, slots=True)
class ExperimentDecision:
    """The decision on an experiment and its evidence.

    ``decision`` is ``promote``, ``keep``, ``stop`` or ``continue`` (then ``continue_until`` is
    the date to analyse again); ``reasons`` say why. ``to_dict()`` is the evidence that
    ``record_experiment_decision`` stores and hashes: the plan's SHA-256, the window, the sample
    counts, the sequential test and every metric's and guardrail's result.
    """

    experiment: str
    model: str
    kind: str
    champion_version: int
    challenger_version: int
    plan_sha256: str
    primary_metric: str
    stopping_rule: str
    decision: str
    reasons: tuple[str, ...]
    continue_until: date | None
    analysed_at: datetime
    since: datetime
    until: datetime
    deadline: datetime
    sample_reached: bool
    samples: Mapping[str, Any]
    sequential: MSPRTResult
    metrics: tuple[MetricComparison, ...]
    guardrails: tuple[GuardrailCheck, ...]
    parity: tuple[ParityResult, ...]

    @property
    def primary(self) -> MetricComparison:
        return next(m for m in self.metrics if m.metric == self.primary_metric)

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "model": self.model,
            "kind": self.kind,
            "champion_version": self.champion_version,
            "challenger_version": self.challenger_version,
            "plan_sha256": self.plan_sha256,
            "primary_metric": self.primary_metric,
            "stopping_rule": self.stopping_rule,
            "decision": self.decision,
            "reasons": list(self.reasons),
            "continue_until": None
            if self.continue_until is None
            else self.continue_until.isoformat(),
            "analysed_at": iso(self.analysed_at),
            "window": {"since": iso(self.since), "until": iso(self.until)},
            "horizon": {"deadline": iso(self.deadline), "sample_reached": self.sample_reached},
            "samples": dict(_jf(self.samples)),
            "sequential": _as_dict(self.sequential),
            "metrics": [m.to_dict() for m in self.metrics],
            "guardrails": [g.to_dict() for g in self.guardrails],
            "parity": [p.to_dict() for p in self.parity],
        }


@dataclass(frozen=True, slots=True)
class SegmentDelta:
    """One group of a protected attribute: rows, approval rates and mean scores per arm and, for
    a shadow, the share of its applicants the two models decide differently."""

    attribute: str
    group: str
    n_a: int
    n_b: int
    approval_a: float | None
    approval_b: float | None
    mean_score_a: float | None
    mean_score_b: float | None
    disagreement_rate: float | None

    @property
    def approval_delta(self) -> float | None:
        if self.approval_a is None or self.approval_b is None:
            return None
        return self.approval_b - self.approval_a

    def to_dict(self) -> dict[str, Any]:
        return dict(
            _jf(
                {
                    "attribute": self.attribute,
                    "group": self.group,
                    "n_a": self.n_a,
                    "n_b": self.n_b,
                    "approval_a": self.approval_a,
                    "approval_b": self.approval_b,
                    "approval_delta": self.approval_delta,
                    "mean_score_a": self.mean_score_a,
                    "mean_score_b": self.mean_score_b,
                    "disagreement_rate": self.disagreement_rate,
                }
            )
        )


@dataclass(frozen=True, slots=True)
class Comparison:
    """What the comparison report draws: score histograms on shared bins (densities, and the
    empirical CDF at the bin edges), approval
    rates, the disagreement matrix of a shadow at each model's own threshold (rows: champion
    approve/decline; columns: challenger approve/decline) and the deltas by segment."""

    kind: str
    edges: tuple[float, ...]
    density_a: tuple[float, ...]
    density_b: tuple[float, ...]
    cdf_a: tuple[float, ...]
    cdf_b: tuple[float, ...]
    n_a: int
    n_b: int
    approval_a: float | None
    approval_b: float | None
    disagreement: tuple[tuple[int, int], tuple[int, int]] | None
    segments: tuple[SegmentDelta, ...]

    @property
    def approval_delta(self) -> float | None:
        if self.approval_a is None or self.approval_b is None:
            return None
        return self.approval_b - self.approval_a

    def to_dict(self) -> dict[str, Any]:
        dis = None
        if self.disagreement is not None:
            (aa, ad), (da, dd) = self.disagreement
            dis = {
                "rows": "champion approve, champion decline",
                "columns": "challenger approve, challenger decline",
                "matrix": [[aa, ad], [da, dd]],
                "agree": aa + dd,
                "disagree": ad + da,
                "disagreement_rate": (ad + da) / (aa + ad + da + dd) if aa + ad + da + dd else None,
            }
        return dict(
            _jf(
                {
                    "kind": self.kind,
                    "score_histogram": {
                        "edges": list(self.edges),
                        "density_a": list(self.density_a),
                        "density_b": list(self.density_b),
                        "cdf_a": list(self.cdf_a),
                        "cdf_b": list(self.cdf_b),
                    },
                    "n_a": self.n_a,
                    "n_b": self.n_b,
                    "approval_a": self.approval_a,
                    "approval_b": self.approval_b,
                    "approval_delta": self.approval_delta,
                    "disagreement": dis,
                    "segments": [s.to_dict() for s in self.segments],
                }
            )
        )


@dataclass(frozen=True, slots=True)
class ExperimentAnalysis:
    """An analysis: the decision (with its evidence) and the comparison for the report."""

    decision: ExperimentDecision
    comparison: Comparison

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision.to_dict(), "comparison": self.comparison.to_dict()}


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def _verdict(
    better: str | None,
    difference: float | None,
    p_value: float | None,
    ci: tuple[float | None, float | None],
    alpha: float,
) -> str:
    if difference is None:
        return "insufficient_data"
    if p_value is not None:
        significant = p_value < alpha
    else:
        lo, hi = ci
        significant = lo is not None and hi is not None and (lo > 0.0 or hi < 0.0)
    if not significant:
        return "no_difference"
    if better is None:
        return "different"
    return "better" if (difference > 0.0) == (better == "higher") else "worse"


def _from_test(
    metric: str,
    better: str | None,
    alpha: float,
    test: TestResult,
    tests: Mapping[str, Any],
    note: str = "",
) -> MetricComparison:
    return MetricComparison(
        metric=metric,
        better=better,
        method=test.method,
        n_a=test.n_a,
        n_b=test.n_b,
        estimate_a=test.estimate_a,
        estimate_b=test.estimate_b,
        difference=test.difference,
        ci_low=test.ci_low,
        ci_high=test.ci_high,
        p_value=test.p_value,
        alpha=alpha,
        verdict=_verdict(better, test.difference, test.p_value, (test.ci_low, test.ci_high), alpha),
        tests=tests,
        note=note,
    )


def _insufficient(metric: str, better: str | None, alpha: float, na: int, nb: int, why: str) -> (
    MetricComparison
):  # fmt: skip
    return MetricComparison(
        metric=metric, better=better, method="", n_a=na, n_b=nb, estimate_a=None,
        estimate_b=None, difference=None, ci_low=None, ci_high=None, p_value=None, alpha=alpha,
        verdict="insufficient_data", note=why,
    )  # fmt: skip


def _diff_of_means(a: FloatArray, b: FloatArray) -> Any:
    return b.mean(axis=-1) - a.mean(axis=-1)


def _safe_bootstrap(statistic: Callable[..., Any], *samples: Any, **kw: Any) -> dict[str, Any]:
    try:
        return _as_dict(bootstrap_ci(statistic, *samples, **kw))
    except InvalidArgument as e:
        return {"skipped": e.message}


def _rates(
    metric: str,
    better: str | None,
    alpha: float,
    xa: FloatArray,
    xb: FloatArray,
    boot: Mapping[str, Any],
    note: str = "",
) -> MetricComparison:
    """An A/B rate: z-test, Beta-Binomial and a bootstrap of the difference."""
    na, nb = int(xa.size), int(xb.size)
    if na < 1 or nb < 1:
        return _insufficient(metric, better, alpha, na, nb, "an arm has no rows")
    sa, sb = int(xa.sum()), int(xb.sum())
    z = two_proportion_ztest(sa, na, sb, nb, confidence=1.0 - alpha)
    bayes = beta_binomial_prob_b_better(sa, na, sb, nb, better=better or "higher")
    bb = _as_dict(bayes)
    bb["prob_b_worse"] = 1.0 - bayes.prob_b_better
    tests = {
        "z_test": z.to_dict(),
        "beta_binomial": bb,
        "bootstrap": _safe_bootstrap(_diff_of_means, xa, xb, vectorized=True, **boot),
    }
    return _from_test(metric, better, alpha, z, tests, note)


def _metrics(traffic: Traffic, plan: ExperimentPlan, seed: int, n_resamples: int) -> (
    tuple[MetricComparison, ...]
):  # fmt: skip
    a, b = traffic.a, traffic.b
    alpha = plan.alpha
    conf = 1.0 - alpha
    boot = {"n_resamples": n_resamples, "seed": seed, "confidence": conf}

    def better(metric: str) -> str | None:
        return plan.direction if metric == plan.primary_metric else SECONDARY_DIRECTION[metric]

    out: list[MetricComparison] = []
    xa = a.approved.astype(np.float64)
    xb = b.approved.astype(np.float64)
    # approval rate
    if traffic.paired:
        if a.n < 2:
            out.append(_insufficient("approval_rate", better("approval_rate"), alpha, a.n, b.n,
                                     "fewer than 2 paired rows"))  # fmt: skip
        else:
            t = paired_ttest(xa, xb, confidence=conf)
            tests = {
                "paired_t_test": t.to_dict(),
                "bootstrap": _safe_bootstrap(
                    _diff_of_means, xa, xb, paired=True, vectorized=True, **boot
                ),
            }
            out.append(_from_test("approval_rate", better("approval_rate"), alpha, t, tests))
    else:
        out.append(_rates("approval_rate", better("approval_rate"), alpha, xa, xb, boot))
    # bad rate on approved, labelled rows
    if traffic.paired:
        lab = a.labelled
        y = a.labels[lab]
        ap_a, ap_b = a.approved[lab], b.approved[lab]
        na, nb = int(ap_a.sum()), int(ap_b.sum())
        if na < 1 or nb < 1:
            out.append(_insufficient("bad_rate", better("bad_rate"), alpha, na, nb,
                                     "no labelled approvals in an arm"))  # fmt: skip
        else:
            ra, rb = float(y[ap_a].mean()), float(y[ap_b].mean())
            both = np.column_stack([y, ap_a, ap_b]).astype(np.float64)
            bs = _safe_bootstrap(_paired_bad_rate_diff, both, **boot)
            lo, hi = bs.get("ci_low"), bs.get("ci_high")
            out.append(
                MetricComparison(
                    metric="bad_rate", better=better("bad_rate"),
                    method="bad rate of each model's approvals (paired bootstrap)", n_a=na,
                    n_b=nb, estimate_a=ra, estimate_b=rb, difference=rb - ra, ci_low=lo,
                    ci_high=hi, p_value=None, alpha=alpha,
                    verdict=_verdict(better("bad_rate"), rb - ra, None, (lo, hi), alpha),
                    tests={"bootstrap": bs},
                    note="outcomes exist only where the champion approved: biased towards it",
                )
            )  # fmt: skip
    else:
        ya = a.labels[a.approved & a.labelled]
        yb = b.labels[b.approved & b.labelled]
        out.append(_rates("bad_rate", better("bad_rate"), alpha, ya, yb, boot,
                          "label 1 = bad, on approved decisions with an outcome"))  # fmt: skip
    # mean score
    if a.n < 2 or b.n < 2:
        out.append(_insufficient("mean_score", better("mean_score"), alpha, a.n, b.n,
                                 "fewer than 2 rows in an arm"))  # fmt: skip
    elif traffic.paired:
        t = paired_ttest(a.scores, b.scores, confidence=conf)
        out.append(_from_test("mean_score", better("mean_score"), alpha, t,
                              {"paired_t_test": t.to_dict()}))  # fmt: skip
    else:
        t = welch_ttest(a.scores, b.scores, confidence=conf)
        out.append(_from_test("mean_score", better("mean_score"), alpha, t,
                              {"welch_t_test": t.to_dict()}))  # fmt: skip
    # AUC on labelled rows
    out.append(_auc(traffic, better("auc"), alpha, boot))
    return tuple(out)


def _paired_bad_rate_diff(rows: FloatArray) -> float:
    y, ap_a, ap_b = rows[:, 0], rows[:, 1] > 0.5, rows[:, 2] > 0.5
    if not ap_a.any() or not ap_b.any():
        return math.nan
    return float(y[ap_b].mean() - y[ap_a].mean())


def _auc(
    traffic: Traffic, better: str | None, alpha: float, boot: Mapping[str, Any]
) -> MetricComparison:
    a, b = traffic.a, traffic.b
    conf = 1.0 - alpha
    if traffic.paired:
        lab = a.labelled
        y = a.labels[lab]
        if not _auc_ready(y):
            return _insufficient("auc", better, alpha, int(y.size), int(y.size),
                                 "fewer than 2 events or 2 non-events labelled")  # fmt: skip
        dl = delong_test(y, a.scores[lab], b.scores[lab], confidence=conf)
        return MetricComparison(
            metric="auc", better=better, method="DeLong (paired, same applicants)",
            n_a=int(y.size), n_b=int(y.size), estimate_a=dl.auc_a, estimate_b=dl.auc_b,
            difference=dl.difference, ci_low=dl.ci_low, ci_high=dl.ci_high, p_value=dl.p_value,
            alpha=alpha,
            verdict=_verdict(better, dl.difference, dl.p_value, (dl.ci_low, dl.ci_high), alpha),
            tests={"delong": dl.to_dict()},
        )  # fmt: skip
    ya, yb = a.labels[a.labelled], b.labels[b.labelled]
    if not (_auc_ready(ya) and _auc_ready(yb)):
        return _insufficient("auc", better, alpha, int(ya.size), int(yb.size),
                             "fewer than 2 events or 2 non-events labelled in an arm")  # fmt: skip
    t = unpaired_auc_test(ya, a.scores[a.labelled], yb, b.scores[b.labelled], confidence=conf)
    sa = np.column_stack([ya, a.scores[a.labelled]])
    sb = np.column_stack([yb, b.scores[b.labelled]])
    tests = {
        "unpaired_delong": t.to_dict(),
        "bootstrap": _safe_bootstrap(_auc_diff, sa, sb, **boot),
    }
    return _from_test("auc", better, alpha, t, tests)


def _auc_diff(sa: FloatArray, sb: FloatArray) -> float:
    ya, yb = sa[:, 0], sb[:, 0]
    if not (_auc_ready(ya) and _auc_ready(yb)):
        return math.nan
    return float(roc_auc(yb, sb[:, 1]) - roc_auc(ya, sa[:, 1]))


# --------------------------------------------------------------------------------------------
# Sequential test
# --------------------------------------------------------------------------------------------


def _days(created_at: NDArray[np.str_]) -> NDArray[np.str_]:
    return np.array([t[:10] for t in created_at], dtype=np.str_)


def _mixture_looks(
    looks: Sequence[tuple[int, int, float, float, float]], tau2: float, alpha: float
) -> MSPRTResult:
    """The mSPRT over looks ``(n_a, n_b, estimate_a, estimate_b, variance of b - a)``, with the
    running maximum of the mixture LR as ``MSPRT`` keeps it (a look without a positive finite
    variance carries no evidence), and its always-valid interval at the last look."""
    max_lr = 0.0
    last_lr = 1.0
    last = (0, 0, math.nan, math.nan, math.nan)
    for look in looks:
        _, _, ea, eb, v = look
        lr = msprt_likelihood_ratio(eb - ea, v, tau2) if math.isfinite(v) and v > 0.0 else 1.0
        last_lr = lr
        max_lr = max(max_lr, lr)
        last = look
    na, nb, ea, eb, v = last
    diff = eb - ea
    if not (math.isfinite(v) and v > 0.0):
        lo, hi = -math.inf, math.inf
    else:
        radius = 2.0 * v * (v + tau2) / tau2 * (-math.log(alpha) + 0.5 * math.log((v + tau2) / v))
        lo, hi = diff - math.sqrt(radius), diff + math.sqrt(radius)
    max_lr = max_lr if looks else 1.0
    return MSPRTResult(
        n_a=na, n_b=nb, mean_a=ea, mean_b=eb, difference=diff, variance=v,
        likelihood_ratio=last_lr, max_likelihood_ratio=max_lr,
        p_value=min(1.0, 1.0 / max_lr) if max_lr > 1.0 else 1.0,
        stop=max_lr >= 1.0 / alpha, looks=len(looks), alpha=alpha, tau2=tau2, ci_low=lo,
        ci_high=hi,
    )  # fmt: skip


def _sequential(traffic: Traffic, plan: ExperimentPlan) -> MSPRTResult:
    a, b = traffic.a, traffic.b
    metric = plan.primary_metric
    da, db = _days(a.created_at), _days(b.created_at)
    days = sorted(set(da.tolist()) | set(db.tolist()))
    if not traffic.paired and metric in ("approval_rate", "bad_rate", "mean_score"):
        if metric == "approval_rate":
            ma, mb = np.ones(a.n, bool), np.ones(b.n, bool)
            va, vb = a.approved.astype(np.float64), b.approved.astype(np.float64)
        elif metric == "bad_rate":
            ma, mb = a.approved & a.labelled, b.approved & b.labelled
            va, vb = a.labels, b.labels
        else:
            ma, mb = np.ones(a.n, bool), np.ones(b.n, bool)
            va, vb = a.scores, b.scores
        kind = "means" if metric == "mean_score" else "proportions"
        test = MSPRT(plan.tau2, plan.alpha, metric=kind)
        for d in days:
            test.update(va[ma & (da == d)], vb[mb & (db == d)])
        return test.result()
    looks: list[tuple[int, int, float, float, float]] = []
    for d in days:
        ia, ib = da <= d, db <= d
        if metric == "auc" and traffic.paired:
            lab = a.labelled & ia
            y = a.labels[lab]
            if _auc_ready(y):
                dl = delong_test(y, a.scores[lab], b.scores[lab])
                looks.append((y.size, y.size, dl.auc_a, dl.auc_b, dl.se**2))
            else:
                looks.append((y.size, y.size, math.nan, math.nan, math.nan))
        elif metric == "auc":
            la, lb = a.labelled & ia, b.labelled & ib
            ya, yb = a.labels[la], b.labels[lb]
            if _auc_ready(ya) and _auc_ready(yb):
                auc_a, var_a = delong_variance(ya, a.scores[la])
                auc_b, var_b = delong_variance(yb, b.scores[lb])
                looks.append((ya.size, yb.size, auc_a, auc_b, var_a + var_b))
            else:
                looks.append((ya.size, yb.size, math.nan, math.nan, math.nan))
        else:  # paired approval rate or mean score: the paired differences
            if metric == "approval_rate":
                xa, xb = a.approved[ia].astype(np.float64), b.approved[ia].astype(np.float64)
            else:
                xa, xb = a.scores[ia], b.scores[ia]
            n = int(xa.size)
            var = float(np.var(xb - xa, ddof=1)) / n if n >= 2 else math.nan
            ea = float(xa.mean()) if n else math.nan
            eb = float(xb.mean()) if n else math.nan
            looks.append((n, n, ea, eb, var))
    return _mixture_looks(looks, plan.tau2, plan.alpha)


# --------------------------------------------------------------------------------------------
# Guardrails and parity
# --------------------------------------------------------------------------------------------


def _inputs_frame(arm: Arm) -> pd.DataFrame:
    return pd.DataFrame.from_records(list(arm.inputs)) if arm.n else pd.DataFrame()


def _groups(arm: Arm, frame: pd.DataFrame, attr: ProtectedAttribute) -> NDArray[np.object_]:
    if not arm.n:
        return np.array([], dtype=object)
    g = protected_groups(frame, attr, where="plan.protected_attributes")
    return np.asarray(g.to_numpy(dtype=object, na_value=None), dtype=object)


def _ratio(groups: NDArray[np.object_], approved: BoolArray, min_size: int) -> float | None:
    rates = []
    for g in {x for x in groups.tolist() if x is not None}:
        m = groups == g
        if int(m.sum()) >= min_size:
            rates.append(float(approved[m].mean()))
    if len(rates) < 2 or max(rates) <= 0.0:
        return None
    return min(rates) / max(rates)


def _parity(traffic: Traffic, plan: ExperimentPlan) -> tuple[
    tuple[ParityResult, ...], dict[str, tuple[NDArray[np.object_], NDArray[np.object_]]]
]:  # fmt: skip
    a, b = traffic.a, traffic.b
    attrs = plan.attributes
    if not attrs:
        return (), {}
    fa = _inputs_frame(a)
    fb = fa if traffic.paired else _inputs_frame(b)
    size = plan.guardrails.min_group_size
    results = []
    groups: dict[str, tuple[NDArray[np.object_], NDArray[np.object_]]] = {}
    for attr in attrs:
        ga = _groups(a, fa, attr)
        gb = ga if traffic.paired else _groups(b, fb, attr)
        groups[attr.name] = (ga, gb)
        names = sorted({x for x in [*ga.tolist(), *gb.tolist()] if x is not None}, key=str)
        rows = []
        for g in names:
            ma, mb = ga == g, gb == g
            na, nb = int(ma.sum()), int(mb.sum())
            rows.append(
                (
                    str(g),
                    na,
                    float(a.approved[ma].mean()) if na else None,
                    nb,
                    float(b.approved[mb].mean()) if nb else None,
                )
            )
        results.append(
            ParityResult(
                attribute=attr.name,
                groups=tuple(rows),
                ratio_a=_ratio(ga, a.approved, size),
                ratio_b=_ratio(gb, b.approved, size),
                min_group_size=size,
            )
        )
    return tuple(results), groups


def _over(value: float, limit: float) -> bool:
    return value > limit + GUARDRAIL_TOLERANCE * max(1.0, abs(limit))


def _guardrails(
    traffic: Traffic, plan: ExperimentPlan, parity: Sequence[ParityResult]
) -> tuple[GuardrailCheck, ...]:
    a, b = traffic.a, traffic.b
    g = plan.guardrails
    judged = b.n >= g.min_rows
    wait = f"not judged before {g.min_rows} challenger decisions (has {b.n})"
    p99_b = float(np.percentile(b.latency_ms, 99)) if b.n else None
    p99_a = float(np.percentile(a.latency_ms, 99)) if a.n else None
    err_b = b.errors / (b.n + b.errors) if b.n + b.errors else None
    err_a = a.errors / (a.n + a.errors) if a.n + a.errors else None
    out = []
    lat_breach = judged and p99_b is not None and _over(p99_b, g.max_latency_p99_ms)
    out.append(
        GuardrailCheck(
            name="latency_p99_ms", value=p99_b, champion_value=p99_a,
            limit=g.max_latency_p99_ms, op="<=", judged=judged, breached=lat_breach,
            detail=(f"challenger p99 latency {p99_b:.1f} ms > {g.max_latency_p99_ms:g} ms"
                    if lat_breach else ("" if judged else wait)),
        )
    )  # fmt: skip
    err_breach = judged and err_b is not None and _over(err_b, g.max_error_rate)
    out.append(
        GuardrailCheck(
            name="error_rate", value=err_b, champion_value=err_a, limit=g.max_error_rate,
            op="<=", judged=judged, breached=err_breach,
            detail=(f"challenger error rate {err_b:.4f} > {g.max_error_rate:g}"
                    if err_breach else ("" if judged else wait)),
        )
    )  # fmt: skip
    for p in parity:
        ok = judged and p.ratio_b is not None
        low = ok and p.ratio_b is not None and _over(g.min_parity_ratio, p.ratio_b)
        out.append(
            GuardrailCheck(
                name=f"parity_ratio:{p.attribute}", value=p.ratio_b, champion_value=p.ratio_a,
                limit=g.min_parity_ratio, op=">=", judged=ok, breached=low,
                detail=(f"challenger approval-rate ratio across {p.attribute} groups "
                        f"{p.ratio_b:.3f} < {g.min_parity_ratio:g} (four-fifths rule)"
                        if low and p.ratio_b is not None else
                        ("" if ok else wait if not judged else
                         f"fewer than two {p.attribute} groups of {g.min_group_size}+ rows")),
            )
        )  # fmt: skip
        if g.max_parity_drop is None:
            continue
        change = p.change
        drop = None if change is None else -change
        ok_drop = judged and drop is not None
        fell = ok_drop and drop is not None and _over(drop, g.max_parity_drop)
        out.append(
            GuardrailCheck(
                name=f"parity_drop:{p.attribute}", value=drop, champion_value=p.ratio_a,
                limit=g.max_parity_drop, op="<=", judged=ok_drop, breached=fell,
                detail=(f"{p.attribute} parity ratio fell by {drop:.3f} from the champion's "
                        f"{p.ratio_a:.3f} (limit {g.max_parity_drop:g})"
                        if fell and drop is not None and p.ratio_a is not None else
                        ("" if ok_drop else wait if not judged else
                         "no ratio to compare")),
            )
        )  # fmt: skip
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Comparison (report data)
# --------------------------------------------------------------------------------------------


def _mean(x: FloatArray) -> float | None:
    return float(x.mean()) if x.size else None


def _comparison(
    traffic: Traffic,
    groups: Mapping[str, tuple[NDArray[np.object_], NDArray[np.object_]]],
) -> Comparison:
    a, b = traffic.a, traffic.b
    both = np.concatenate([a.scores, b.scores])
    if both.size and float(both.min()) >= 0.0 and float(both.max()) <= 1.0:
        lo, hi = 0.0, 1.0
    elif both.size:
        lo, hi = float(both.min()), float(both.max())
        hi = hi if hi > lo else lo + 1.0
    else:
        lo, hi = 0.0, 1.0
    edges = np.linspace(lo, hi, HISTOGRAM_BINS + 1)

    def density(x: FloatArray) -> tuple[float, ...]:
        if not x.size:
            return tuple(0.0 for _ in range(HISTOGRAM_BINS))
        counts, _ = np.histogram(x, bins=edges)
        return tuple(float(c) for c in counts / (x.size * np.diff(edges)))

    def cdf(x: FloatArray) -> tuple[float, ...]:
        if not x.size:
            return tuple(0.0 for _ in edges)
        counts, _ = np.histogram(x, bins=edges)
        return (0.0, *(float(c) for c in np.cumsum(counts) / x.size))

    dis = None
    if traffic.paired:
        aa = int(np.sum(a.approved & b.approved))
        ad = int(np.sum(a.approved & ~b.approved))
        da = int(np.sum(~a.approved & b.approved))
        dd = int(np.sum(~a.approved & ~b.approved))
        dis = ((aa, ad), (da, dd))
    segments = []
    for attr, (ga, gb) in groups.items():
        names = sorted({x for x in [*ga.tolist(), *gb.tolist()] if x is not None}, key=str)
        for g in names:
            ma, mb = ga == g, gb == g
            segments.append(
                SegmentDelta(
                    attribute=attr,
                    group=str(g),
                    n_a=int(ma.sum()),
                    n_b=int(mb.sum()),
                    approval_a=_mean(a.approved[ma].astype(np.float64)),
                    approval_b=_mean(b.approved[mb].astype(np.float64)),
                    mean_score_a=_mean(a.scores[ma]),
                    mean_score_b=_mean(b.scores[mb]),
                    disagreement_rate=_mean((a.approved[ma] != b.approved[ma]).astype(np.float64))
                    if traffic.paired
                    else None,
                )
            )
    return Comparison(
        kind=traffic.kind,
        edges=tuple(float(e) for e in edges),
        density_a=density(a.scores),
        density_b=density(b.scores),
        cdf_a=cdf(a.scores),
        cdf_b=cdf(b.scores),
        n_a=a.n,
        n_b=b.n,
        approval_a=_mean(a.approved.astype(np.float64)),
        approval_b=_mean(b.approved.astype(np.float64)),
        disagreement=dis,
        segments=tuple(segments),
    )


# --------------------------------------------------------------------------------------------
# The decision
# --------------------------------------------------------------------------------------------


def _direction_of(difference: float, direction: str) -> str:
    return "better" if (difference > 0.0) == (direction == "higher") else "worse"


def _continue_until(
    n_rows: tuple[int, int],
    needed: tuple[int, int],
    since: datetime,
    as_of: datetime,
    deadline: datetime,
) -> date:
    elapsed = max((as_of - since).total_seconds() / 86400.0, 1.0)
    more = 0
    for have, need in zip(n_rows, needed, strict=True):
        if have >= need:
            continue
        rate = have / elapsed
        if rate <= 0.0:
            return deadline.date()
        more = max(more, math.ceil((need - have) / rate))
    return min(as_of.date() + timedelta(days=max(more, 1)), deadline.date())


def analyze(
    traffic: Traffic,
    experiment: Experiment,
    *,
    as_of: datetime,
    seed: int = 0,
    n_resamples: int = 1000,
) -> ExperimentAnalysis:
    """Compare the arms, run the sequential test and the guardrails, and decide (pure)."""
    plan = experiment.plan
    metrics = _metrics(traffic, plan, seed, n_resamples)
    primary = next(m for m in metrics if m.metric == plan.primary_metric)
    seq = _sequential(traffic, plan)
    parity, groups = _parity(traffic, plan)
    guards = _guardrails(traffic, plan, parity)
    deadline = experiment.created_at + timedelta(days=plan.max_days)
    needed = (plan.n_champion, plan.n_challenger)
    have = (primary.n_a, primary.n_b)
    sample_reached = have[0] >= needed[0] and have[1] >= needed[1]
    horizon = sample_reached or as_of >= deadline
    worse_secondary = [
        m for m in metrics if m.metric != plan.primary_metric and m.verdict == "worse"
    ]
    until: date | None = None
    breaches = [g for g in guards if g.breached]
    significant: str | None = None
    how = ""
    if plan.stopping_rule == "msprt" and seq.stop and math.isfinite(seq.difference):
        significant = _direction_of(seq.difference, plan.direction)
        how = f"always-valid p-value {seq.p_value:.3g} < alpha {plan.alpha:g} (mSPRT)"
    elif (
        plan.stopping_rule == "fixed_horizon"
        and horizon
        and primary.verdict
        in (
            "better",
            "worse",
        )
    ):
        significant = primary.verdict
        how = f"p-value {primary.p_value:.3g} < alpha {plan.alpha:g} at the horizon"
    if breaches:
        decision = "stop"
        reasons = tuple(f"guardrail breached: {g.detail}" for g in breaches)
    elif significant == "worse":
        decision = "stop"
        reasons = (f"the challenger is significantly worse on {plan.primary_metric}: {how}",)
    elif significant == "better" and worse_secondary:
        decision = "keep"
        reasons = (
            f"the challenger is significantly better on {plan.primary_metric} ({how}) but "
            "significantly worse on " + ", ".join(m.metric for m in worse_secondary),
        )
    elif significant == "better":
        decision = "promote"
        reasons = (f"the challenger is significantly better on {plan.primary_metric}: {how}",)
    elif horizon:
        decision = "keep"
        why = (
            f"the planned rows ({needed[0]} champion, {needed[1]} challenger) are reached"
            if sample_reached
            else f"the maximum duration of {plan.max_days} days has passed"
        )
        reasons = (f"{why} without a significant difference on {plan.primary_metric}",)
    else:
        decision = "continue"
        until = _continue_until(have, needed, traffic.since, as_of, deadline)
        reasons = (
            f"not enough data yet: {have[0]} of {needed[0]} champion and {have[1]} of "
            f"{needed[1]} challenger rows for {plan.primary_metric}; at the observed volume "
            f"the plan's rows are reached by {until.isoformat()}",
        )
    a, b = traffic.a, traffic.b
    samples = {
        "champion": {"decisions": a.n, "labelled": int(a.labelled.sum()), "errors": a.errors},
        "challenger": {"decisions": b.n, "labelled": int(b.labelled.sum()), "errors": b.errors},
        "primary_rows": {"champion": have[0], "challenger": have[1]},
        "needed_rows": {"champion": needed[0], "challenger": needed[1]},
    }
    dec = ExperimentDecision(
        experiment=experiment.name,
        model=experiment.model_name,
        kind=experiment.kind,
        champion_version=experiment.champion_version,
        challenger_version=experiment.challenger_version,
        plan_sha256=experiment.plan_sha256,
        primary_metric=plan.primary_metric,
        stopping_rule=plan.stopping_rule,
        decision=decision,
        reasons=reasons,
        continue_until=until,
        analysed_at=as_of,
        since=traffic.since,
        until=traffic.until,
        deadline=deadline,
        sample_reached=sample_reached,
        samples=samples,
        sequential=seq,
        metrics=metrics,
        guardrails=guards,
        parity=parity,
    )
    return ExperimentAnalysis(dec, _comparison(traffic, groups))


def _aware(value: datetime | None, fld: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidArgument(
            f"{fld} must carry a timezone", field=fld, remedy="use UTC, e.g. 2026-11-22T00:00Z"
        )
    return value


def analyze_experiment(
    registry: Registry,
    name: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
    shadow: bool | None = None,
    seed: int = 0,
    n_resamples: int = 1000,
) -> ExperimentAnalysis:
    """Analyse experiment ``name`` on its traffic in ``[since, until)``: ``since`` defaults to its
    registration, ``until`` to now (the registry's clock, or ``now``). The analysis is as of
    ``until`` when given. ``shadow`` (the CLI's ``--shadow``) must agree with the experiment's
    kind when passed."""
    exp = get_experiment(registry, name)
    if shadow is not None and shadow != (exp.kind == "shadow"):
        raise InvalidArgument(
            f"experiment {name!r} is {'a shadow' if exp.kind == 'shadow' else 'an A/B'} experiment",
            field="shadow",
            remedy="drop --shadow for an A/B experiment; register a shadow experiment to "
            "analyse shadow scores",
        )
    current = _aware(now, "now") or registry.clock()
    start = _aware(since, "since") or exp.created_at
    end = _aware(until, "until") or current
    if end <= start:
        raise InvalidArgument(
            f"the window is empty: until {iso(end)} is not after since {iso(start)}",
            field="until",
            remedy="pass an until after since (or leave both out)",
        )
    traffic = load_traffic(registry.db, exp, start.astimezone(UTC), end.astimezone(UTC))
    return analyze(traffic, exp, as_of=end, seed=seed, n_resamples=n_resamples)
