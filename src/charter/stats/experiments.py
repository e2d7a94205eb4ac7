"""Statistics for champion/challenger experiments: tests, power, bootstrap, Bayes and mSPRT.

Pure numpy (scipy for distribution tails, root finding and one integral), no I/O, vectorised over
rows. Tested against scipy, statsmodels and scikit-learn, and by hand-computed cases.

Conventions (pinned by tests):

* **Arms.** ``a`` is the control (the champion, the current model or policy) and ``b`` the
  treatment (the challenger). Every difference is ``b - a``: a positive difference means the
  challenger has the larger AUC, mean or rate.
* **Alternatives** use statsmodels' names: ``"two-sided"``, ``"larger"`` (H1: ``b > a``, a positive
  difference) and ``"smaller"`` (H1: ``b < a``). scipy's ``"greater"``/``"less"`` are refused, so a
  caller cannot silently mix the two vocabularies.
* **Confidence intervals** are always two-sided at ``confidence`` (default 0.95), whatever the
  alternative of the p-value.
* **Zero variance.** When the standard error of a tested difference is 0 (identical score vectors
  in DeLong, both proportions 0 or both 1, two constant samples), the statistic is 0 with p-value 1
  if the estimated difference is 0, and ``+-inf`` with p-value 0 (1 for the one-sided alternative
  pointing the other way) otherwise; the interval collapses to the point. Never NaN, never a
  numpy warning.
* **Sizes.** ``n = 0`` is refused everywhere (``InvalidArgument``): proportions need ``n >= 1``
  per arm, Welch's test ``n >= 2`` per arm, DeLong at least 2 events and 2 non-events (the
  structural components' sample variance has ``ddof = 1``; with one event it is undefined).
* **Labels and scores** (DeLong) as ``charter.stats.classification``: ``y_true`` is 0/1 with
  **1 the event** (default, fraud), and a higher score means more likely the event.
* **DeLong** (DeLong, DeLong & Clarke-Pearson 1988) by the O(n log n) midrank algorithm of Sun &
  Xu (2014). For each score vector, the placement of an event is the share of non-events scored
  below it and of a non-event the share of events scored above it, ties counting one half
  (``V10``, ``V01``); the AUC is the mean of either. The covariance of two AUCs is
  ``cov(V10_a, V10_b) / m + cov(V01_a, V01_b) / n`` with ``ddof = 1`` over the ``m`` events and
  ``n`` non-events; the variance of the difference is computed from the differences of the
  placements directly, so identical (or identically ranked) scores give exactly 0.
* **Two-proportion z-test.** The statistic uses the *pooled* standard error
  ``sqrt(p (1 - p) (1 / n_a + 1 / n_b))`` with ``p = (s_a + s_b) / (n_a + n_b)`` (as
  ``statsmodels.stats.proportion.proportions_ztest``); the interval is the *unpooled* Wald interval
  with ``se = sqrt(p_a (1 - p_a) / n_a + p_b (1 - p_b) / n_b)``, which ``TestResult.se`` reports.
  No continuity correction.
* **Welch's t-test.** Variances are sample variances (``ddof = 1``); ``df`` is the
  Welch-Satterthwaite value (``scipy.stats.ttest_ind(b, a, equal_var=False)``). When both variances
  are 0, ``df`` is reported as ``n_a + n_b - 2`` (any value gives the same degenerate p-value).
* **Power and sample size.** ``alpha`` is the size of the test named by ``alternative``; power must
  exceed ``alpha``. ``ratio = n_b / n_a`` is the traffic split (2.0: the challenger gets twice the
  control's traffic). ``mde`` is an *absolute* difference ``b - a`` (0.01 on a 10% rate means 11%);
  its sign must agree with a one-sided alternative. Proportions use the normal test on Cohen's
  ``h = 2 asin(sqrt(p_a + mde)) - 2 asin(sqrt(p_a))`` (statsmodels ``NormalIndPower`` with
  ``proportion_effectsize``); means use the two-sample Student t-test with the noncentral t
  (statsmodels ``TTestIndPower``) on Cohen's ``d = mde / sd``. The exact solution ``n_a_exact`` is
  found by root finding; ``n_a = ceil(n_a_exact)`` and ``n_b = ceil(n_a_exact * ratio)``.
* **Bootstrap.** Percentile intervals (``np.percentile``, linear interpolation) of the statistic
  over ``n_resamples`` resamples drawn with ``numpy.random.default_rng(seed)``: the same inputs and
  seed give the same interval bit for bit. Independent samples are resampled separately;
  ``paired=True`` resamples row indices jointly (needed for an AUC difference on the same rows).
* **Bayesian A/B.** Beta posteriors ``Beta(prior_alpha + s, prior_beta + n - s)`` per arm; the
  probability that ``b`` is better is exact: Evan Miller's closed-form sum when a posterior
  ``alpha`` is a whole number (up to ``CLOSED_FORM_MAX_TERMS`` terms), else adaptive quadrature.
* **mSPRT** (Johari, Pekelis & Walsh 2017/2022) with a normal mixing distribution
  ``N(0, tau2)`` on the difference ``theta = mean_b - mean_a``. With the estimate ``D`` of
  variance ``V``, the mixture likelihood ratio is
  ``sqrt(V / (V + tau2)) * exp(tau2 * D**2 / (2 * V * (V + tau2)))``. The always-valid p-value is
  the running minimum of ``1 / LR`` over the looks, capped at 1, and the test stops once the LR
  has reached ``1 / alpha``. See ``MSPRT``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import integrate as _integrate
from scipy import optimize as _optimize
from scipy import special as _special
from scipy import stats as _sps

from charter.errors import InvalidArgument

# The boundary checks of arrays, labels and scores are those of the classification metrics.
from charter.stats.classification import _array, _labels, _scores

__all__ = [
    "ALTERNATIVES",
    "CLOSED_FORM_MAX_TERMS",
    "MSPRT",
    "AUCInterval",
    "BetaBinomialResult",
    "BootstrapResult",
    "DeLongResult",
    "MSPRTResult",
    "PowerPlan",
    "TestResult",
    "auc_confidence_interval",
    "beta_binomial_prob_b_better",
    "bootstrap_ci",
    "delong_test",
    "delong_variance",
    "minimum_detectable_effect",
    "msprt",
    "msprt_likelihood_ratio",
    "power_means",
    "power_proportions",
    "sample_size_means",
    "sample_size_proportions",
    "two_proportion_ztest",
    "welch_ttest",
    "welch_ttest_from_stats",
]

Alternative = Literal["two-sided", "larger", "smaller"]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

ALTERNATIVES: tuple[str, ...] = ("two-sided", "larger", "smaller")
CLOSED_FORM_MAX_TERMS = 200_000
BOOTSTRAP_BATCH_ELEMENTS = 4_000_000


def _json_float(x: float) -> float | None:
    """A float for JSON: NaN and infinities become ``None``."""
    return float(x) if math.isfinite(x) else None


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TestResult:
    """A two-sample test of ``b`` against ``a``.

    ``statistic`` is z (``df`` is infinite) or t; ``difference = estimate_b - estimate_a``; ``se``
    is the standard error of the difference behind the interval ``[ci_low, ci_high]`` (two-sided at
    ``confidence``), which for the z-test is the unpooled one (the statistic uses the pooled one).
    """

    __test__ = False  # not a pytest test class, despite its name

    method: str
    alternative: str
    statistic: float
    p_value: float
    df: float
    estimate_a: float
    estimate_b: float
    difference: float
    se: float
    ci_low: float
    ci_high: float
    confidence: float
    n_a: int
    n_b: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able types; infinities (``df`` of a z-test) become ``None``."""
        return {
            "method": self.method,
            "alternative": self.alternative,
            "statistic": _json_float(self.statistic),
            "p_value": float(self.p_value),
            "df": _json_float(self.df),
            "estimate_a": float(self.estimate_a),
            "estimate_b": float(self.estimate_b),
            "difference": float(self.difference),
            "se": float(self.se),
            "ci_low": float(self.ci_low),
            "ci_high": float(self.ci_high),
            "confidence": float(self.confidence),
            "n_a": int(self.n_a),
            "n_b": int(self.n_b),
        }


@dataclass(frozen=True, slots=True)
class DeLongResult:
    """DeLong's test of two correlated AUCs on the same rows; ``difference = auc_b - auc_a``.

    ``variance_a``, ``variance_b`` and ``covariance`` are DeLong's estimates; ``se`` is the
    standard error of the difference, ``z = difference / se``, and ``[ci_low, ci_high]`` the
    two-sided Wald interval of the difference at ``confidence``.
    """

    auc_a: float
    auc_b: float
    difference: float
    variance_a: float
    variance_b: float
    covariance: float
    se: float
    z: float
    p_value: float
    ci_low: float
    ci_high: float
    confidence: float
    alternative: str
    n_events: int
    n_nonevents: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able types; an infinite ``z`` becomes ``None``."""
        return {
            "auc_a": float(self.auc_a),
            "auc_b": float(self.auc_b),
            "difference": float(self.difference),
            "variance_a": float(self.variance_a),
            "variance_b": float(self.variance_b),
            "covariance": float(self.covariance),
            "se": float(self.se),
            "z": _json_float(self.z),
            "p_value": float(self.p_value),
            "ci_low": float(self.ci_low),
            "ci_high": float(self.ci_high),
            "confidence": float(self.confidence),
            "alternative": self.alternative,
            "n_events": int(self.n_events),
            "n_nonevents": int(self.n_nonevents),
        }


@dataclass(frozen=True, slots=True)
class AUCInterval:
    """An AUC with DeLong's standard error and Wald interval, clipped to [0, 1]."""

    auc: float
    se: float
    ci_low: float
    ci_high: float
    confidence: float
    n_events: int
    n_nonevents: int


@dataclass(frozen=True, slots=True)
class PowerPlan:
    """A sample-size, power or minimum-detectable-effect calculation and its inputs.

    ``metric`` is ``"proportions"`` (normal test on Cohen's h; ``p_baseline`` set, ``sd`` None) or
    ``"means"`` (Student t-test on Cohen's d; ``sd`` set, ``p_baseline`` None). ``mde`` is the
    absolute difference ``b - a`` and ``effect_size`` its standardised form (h or d). ``n_a`` and
    ``n_b`` are whole rows per arm (``n_b`` about ``ratio * n_a``), ``n_total`` their sum and
    ``n_a_exact`` the unrounded solution (or the given ``n_a``).
    """

    metric: str
    alternative: str
    alpha: float
    power: float
    ratio: float
    mde: float
    effect_size: float
    p_baseline: float | None
    sd: float | None
    n_a: int
    n_b: int
    n_total: int
    n_a_exact: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "alternative": self.alternative,
            "alpha": float(self.alpha),
            "power": float(self.power),
            "ratio": float(self.ratio),
            "mde": float(self.mde),
            "effect_size": float(self.effect_size),
            "p_baseline": None if self.p_baseline is None else float(self.p_baseline),
            "sd": None if self.sd is None else float(self.sd),
            "n_a": int(self.n_a),
            "n_b": int(self.n_b),
            "n_total": int(self.n_total),
            "n_a_exact": float(self.n_a_exact),
        }


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    """A percentile bootstrap interval; ``estimate`` is the statistic on the original samples.

    ``se`` is the standard deviation (``ddof = 1``) of the resampled statistics.
    """

    estimate: float
    ci_low: float
    ci_high: float
    se: float
    confidence: float
    n_resamples: int
    seed: int
    paired: bool


@dataclass(frozen=True, slots=True)
class BetaBinomialResult:
    """Bayesian comparison of two rates with Beta posteriors.

    ``prob_b_better`` is ``P(p_b > p_a)`` (``better="higher"``) or ``P(p_b < p_a)``
    (``better="lower"``, e.g. default rates). ``expected_loss_b`` is the expected amount by which
    ``b`` is worse if ``b`` is chosen (``E[max(p_a - p_b, 0)]`` when higher is better), and
    ``expected_loss_a`` the same for choosing ``a``. ``method`` is ``"closed-form"`` or
    ``"quadrature"`` (how ``prob_b_better`` was computed).
    """

    prob_b_better: float
    expected_loss_b: float
    expected_loss_a: float
    mean_a: float
    mean_b: float
    alpha_a: float
    beta_a: float
    alpha_b: float
    beta_b: float
    better: str
    method: str


@dataclass(frozen=True, slots=True)
class MSPRTResult:
    """The state of an mSPRT after its last look.

    ``difference = mean_b - mean_a`` with ``variance`` (the variance of that estimate: known
    ``sigma2`` or plug-in, see ``MSPRT``); ``likelihood_ratio`` is the mixture LR at the last look
    and ``max_likelihood_ratio`` its largest value over all looks; ``p_value`` (always valid) is
    ``min(1, 1 / max_likelihood_ratio)``; ``stop`` is ``max_likelihood_ratio >= 1 / alpha``.
    ``[ci_low, ci_high]`` is the always-valid confidence interval for the difference at this look
    (level ``1 - alpha``); it is infinite while the variance is not yet defined (``variance`` is
    then NaN, as are the means of an arm without rows and the difference).
    """

    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    difference: float
    variance: float
    likelihood_ratio: float
    max_likelihood_ratio: float
    p_value: float
    stop: bool
    looks: int
    alpha: float
    tau2: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_a": int(self.n_a),
            "n_b": int(self.n_b),
            "mean_a": _json_float(self.mean_a),
            "mean_b": _json_float(self.mean_b),
            "difference": _json_float(self.difference),
            "variance": _json_float(self.variance),
            "likelihood_ratio": _json_float(self.likelihood_ratio),
            "max_likelihood_ratio": _json_float(self.max_likelihood_ratio),
            "p_value": float(self.p_value),
            "stop": bool(self.stop),
            "looks": int(self.looks),
            "alpha": float(self.alpha),
            "tau2": float(self.tau2),
            "ci_low": _json_float(self.ci_low),
            "ci_high": _json_float(self.ci_high),
        }


# --------------------------------------------------------------------------------------------
# Validation at the boundary
# --------------------------------------------------------------------------------------------


def _number(value: object, field: str, remedy: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgument(
            f"{field} must be a number, got {value!r}", field=field, remedy=remedy
        )
    out = float(value)
    if not math.isfinite(out):
        raise InvalidArgument(f"{field} must be finite, got {out}", field=field, remedy=remedy)
    return out


def _open_unit(value: object, field: str, remedy: str | None = None) -> float:
    """A number strictly between 0 and 1."""
    fix = remedy or f"pass {field} strictly between 0 and 1"
    out = _number(value, field, fix)
    if not 0.0 < out < 1.0:
        raise InvalidArgument(f"{field} must lie in (0, 1), got {out:g}", field=field, remedy=fix)
    return out


def _positive(value: object, field: str, remedy: str | None = None) -> float:
    fix = remedy or f"pass {field} > 0"
    out = _number(value, field, fix)
    if out <= 0.0:
        raise InvalidArgument(f"{field} must be > 0, got {out:g}", field=field, remedy=fix)
    return out


def _non_negative(value: object, field: str) -> float:
    fix = f"pass {field} >= 0"
    out = _number(value, field, fix)
    if out < 0.0:
        raise InvalidArgument(f"{field} must be >= 0, got {out:g}", field=field, remedy=fix)
    return out


def _whole(value: object, field: str, minimum: int) -> int:
    fix = f"pass {field} as a whole number >= {minimum}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidArgument(
            f"{field} must be a whole number, got {value!r}", field=field, remedy=fix
        )
    out = int(value)
    if out < minimum:
        raise InvalidArgument(f"{field} must be >= {minimum}, got {out}", field=field, remedy=fix)
    return out


def _alternative(value: object) -> Alternative:
    if value == "two-sided":
        return "two-sided"
    if value == "larger":
        return "larger"
    if value == "smaller":
        return "smaller"
    raise InvalidArgument(
        f"alternative must be 'two-sided', 'larger' or 'smaller', got {value!r}",
        field="alternative",
        remedy="use 'larger' for H1: b > a and 'smaller' for H1: b < a (scipy's 'greater' and "
        "'less')",
    )


def _confidence(value: object) -> float:
    return _open_unit(value, "confidence", "pass a confidence level such as 0.95")


def _alpha(value: object) -> float:
    return _open_unit(value, "alpha", "pass a significance level such as 0.05")


def _finite(x: ArrayLike, field: str) -> FloatArray:
    arr = _array(x, field).astype(np.float64, copy=False)
    if not bool(np.all(np.isfinite(arr))):
        raise InvalidArgument(
            f"{field} contains {int(np.sum(~np.isfinite(arr)))} NaN or infinite values",
            field=field,
            remedy=f"drop or impute the missing values of {field}",
        )
    return arr


def _counts(successes: object, n: object, arm: str) -> tuple[int, int]:
    n_ = _whole(n, f"n_{arm}", 1)
    s = _whole(successes, f"successes_{arm}", 0)
    if s > n_:
        raise InvalidArgument(
            f"successes_{arm} ({s}) exceeds n_{arm} ({n_})",
            field=f"successes_{arm}",
            remedy=f"pass the number of successes among the n_{arm} trials",
        )
    return s, n_


# --------------------------------------------------------------------------------------------
# Shared pieces of the tests
# --------------------------------------------------------------------------------------------


def _sf(x: float, df: float) -> float:
    """Upper tail of N(0, 1) (``df`` infinite) or of Student's t."""
    if math.isinf(df):
        return float(_sps.norm.sf(x))
    return float(_sps.t.sf(x, df))


def _quantile(q: float, df: float) -> float:
    if math.isinf(df):
        return float(_sps.norm.ppf(q))
    return float(_sps.t.ppf(q, df))


def _statistic(difference: float, se: float) -> float:
    """``difference / se``, with the zero-variance rule of the module docstring."""
    if se > 0.0:
        return difference / se
    if difference == 0.0:
        return 0.0
    return math.copysign(math.inf, difference)


def _p_value(statistic: float, alternative: Alternative, df: float = math.inf) -> float:
    if alternative == "two-sided":
        return min(1.0, 2.0 * _sf(abs(statistic), df))
    if alternative == "larger":
        return _sf(statistic, df)
    return _sf(-statistic, df)


def _interval(
    difference: float, se: float, confidence: float, df: float = math.inf
) -> tuple[float, float]:
    half = _quantile(0.5 + confidence / 2.0, df) * se if se > 0.0 else 0.0
    return difference - half, difference + half


# --------------------------------------------------------------------------------------------
# DeLong
# --------------------------------------------------------------------------------------------


def _midranks(x: FloatArray) -> FloatArray:
    """1-based ranks with ties given the mean of the ranks they span."""
    n = x.size
    order = np.argsort(x, kind="stable")
    s = x[order]
    first = np.empty(n, dtype=np.bool_)
    first[0] = True
    np.not_equal(s[1:], s[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    sizes = np.diff(np.append(starts, n))
    out = np.empty(n, dtype=np.float64)
    out[order] = np.repeat(starts + (sizes + 1) / 2.0, sizes)
    return out


def _placements(event: BoolArray, score: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Sun & Xu's structural components ``V10`` (per event) and ``V01`` (per non-event)."""
    m = int(np.count_nonzero(event))
    n = event.size - m
    tz = _midranks(score)
    tx = _midranks(score[event])
    ty = _midranks(score[~event])
    v10 = (tz[event] - tx) / n
    v01 = 1.0 - (tz[~event] - ty) / m
    return v10, v01


def _delong_inputs(y_true: ArrayLike) -> tuple[BoolArray, int, int]:
    event = _labels(y_true)
    m = int(np.count_nonzero(event))
    n = event.size - m
    if m < 2 or n < 2:
        few = "events (1)" if m < 2 else "non-events (0)"
        raise InvalidArgument(
            f"DeLong's variance needs at least 2 events and 2 non-events; y_true has {m} events "
            f"and {n} non-events, too few {few}",
            field="y_true",
            remedy="evaluate on a sample with at least two rows of each class (far more for a "
            "useful interval)",
        )
    return event, m, n


def _var(x: FloatArray) -> float:
    return float(np.var(x, ddof=1))


def _cov(x: FloatArray, y: FloatArray) -> float:
    return float(np.dot(x - x.mean(), y - y.mean()) / (x.size - 1))


def delong_variance(y_true: ArrayLike, score: ArrayLike) -> tuple[float, float]:
    """``(auc, variance)``: the AUC and DeLong's estimate of its variance.

    Needs at least 2 events and 2 non-events. The AUC equals ``sklearn.metrics.roc_auc_score``.
    """
    event, m, n = _delong_inputs(y_true)
    s = _scores(score, event.size, "score")
    v10, v01 = _placements(event, s)
    return float(v10.mean()), _var(v10) / m + _var(v01) / n


def auc_confidence_interval(
    y_true: ArrayLike, score: ArrayLike, confidence: float = 0.95
) -> AUCInterval:
    """The AUC with DeLong's standard error and ``auc +- z * se``, clipped to [0, 1]."""
    conf = _confidence(confidence)
    event, m, n = _delong_inputs(y_true)
    s = _scores(score, event.size, "score")
    v10, v01 = _placements(event, s)
    auc = float(v10.mean())
    se = math.sqrt(max(_var(v10) / m + _var(v01) / n, 0.0))
    lo, hi = _interval(auc, se, conf)
    return AUCInterval(
        auc=auc,
        se=se,
        ci_low=max(lo, 0.0),
        ci_high=min(hi, 1.0),
        confidence=conf,
        n_events=m,
        n_nonevents=n,
    )


def delong_test(
    y_true: ArrayLike,
    score_a: ArrayLike,
    score_b: ArrayLike,
    *,
    confidence: float = 0.95,
    alternative: str = "two-sided",
) -> DeLongResult:
    """DeLong's test of ``AUC_b - AUC_a`` for two models scored on the same rows.

    ``score_a`` is the champion, ``score_b`` the challenger; ``"larger"`` tests H1: the
    challenger's AUC is higher. Needs at least 2 events and 2 non-events. O(n log n).
    """
    conf = _confidence(confidence)
    alt = _alternative(alternative)
    event, m, n = _delong_inputs(y_true)
    sa = _scores(score_a, event.size, "score_a")
    sb = _scores(score_b, event.size, "score_b")
    v10a, v01a = _placements(event, sa)
    v10b, v01b = _placements(event, sb)
    auc_a = float(v10a.mean())
    auc_b = float(v10b.mean())
    var_a = _var(v10a) / m + _var(v01a) / n
    var_b = _var(v10b) / m + _var(v01b) / n
    cov = _cov(v10a, v10b) / m + _cov(v01a, v01b) / n
    var_diff = _var(v10b - v10a) / m + _var(v01b - v01a) / n
    se = math.sqrt(max(var_diff, 0.0))
    diff = auc_b - auc_a
    z = _statistic(diff, se)
    lo, hi = _interval(diff, se, conf)
    return DeLongResult(
        auc_a=auc_a,
        auc_b=auc_b,
        difference=diff,
        variance_a=var_a,
        variance_b=var_b,
        covariance=cov,
        se=se,
        z=z,
        p_value=_p_value(z, alt),
        ci_low=lo,
        ci_high=hi,
        confidence=conf,
        alternative=alt,
        n_events=m,
        n_nonevents=n,
    )


# --------------------------------------------------------------------------------------------
# Two-sample tests
# --------------------------------------------------------------------------------------------


def two_proportion_ztest(
    successes_a: int,
    n_a: int,
    successes_b: int,
    n_b: int,
    alternative: str = "two-sided",
    *,
    confidence: float = 0.95,
) -> TestResult:
    """Pooled two-proportion z-test of ``p_b - p_a`` with the unpooled Wald interval.

    Equal to ``proportions_ztest([successes_b, successes_a], [n_b, n_a], alternative=...)``.
    """
    alt = _alternative(alternative)
    conf = _confidence(confidence)
    sa, na = _counts(successes_a, n_a, "a")
    sb, nb = _counts(successes_b, n_b, "b")
    pa = sa / na
    pb = sb / nb
    diff = pb - pa
    pooled = (sa + sb) / (na + nb)
    se_pooled = math.sqrt(pooled * (1.0 - pooled) * (1.0 / na + 1.0 / nb))
    se = math.sqrt(pa * (1.0 - pa) / na + pb * (1.0 - pb) / nb)
    z = _statistic(diff, se_pooled)
    lo, hi = _interval(diff, se, conf)
    return TestResult(
        method="two-proportion z-test (pooled)",
        alternative=alt,
        statistic=z,
        p_value=_p_value(z, alt),
        df=math.inf,
        estimate_a=pa,
        estimate_b=pb,
        difference=diff,
        se=se,
        ci_low=lo,
        ci_high=hi,
        confidence=conf,
        n_a=na,
        n_b=nb,
    )


def welch_ttest_from_stats(
    mean_a: float,
    var_a: float,
    n_a: int,
    mean_b: float,
    var_b: float,
    n_b: int,
    alternative: str = "two-sided",
    *,
    confidence: float = 0.95,
) -> TestResult:
    """Welch's t-test of ``mean_b - mean_a`` from summary statistics.

    ``var_a`` and ``var_b`` are sample variances (``ddof = 1``); each arm needs ``n >= 2``.
    """
    alt = _alternative(alternative)
    conf = _confidence(confidence)
    ma = _number(mean_a, "mean_a", "pass the sample mean of arm a")
    mb = _number(mean_b, "mean_b", "pass the sample mean of arm b")
    va = _non_negative(var_a, "var_a")
    vb = _non_negative(var_b, "var_b")
    na = _whole(n_a, "n_a", 2)
    nb = _whole(n_b, "n_b", 2)
    qa = va / na
    qb = vb / nb
    total = qa + qb
    if total > 0.0:
        df = total**2 / (qa**2 / (na - 1) + qb**2 / (nb - 1))
    else:
        df = float(na + nb - 2)
    se = math.sqrt(total)
    diff = mb - ma
    t = _statistic(diff, se)
    lo, hi = _interval(diff, se, conf, df)
    return TestResult(
        method="Welch t-test",
        alternative=alt,
        statistic=t,
        p_value=_p_value(t, alt, df),
        df=df,
        estimate_a=ma,
        estimate_b=mb,
        difference=diff,
        se=se,
        ci_low=lo,
        ci_high=hi,
        confidence=conf,
        n_a=na,
        n_b=nb,
    )


def welch_ttest(
    a: ArrayLike, b: ArrayLike, alternative: str = "two-sided", *, confidence: float = 0.95
) -> TestResult:
    """Welch's unequal-variance t-test of ``mean(b) - mean(a)``; each sample needs 2+ values.

    Equal to ``scipy.stats.ttest_ind(b, a, equal_var=False, alternative=...)`` (with scipy's
    ``'greater'`` for ``'larger'``), including ``df`` and the interval.
    """
    xa = _finite(a, "a")
    xb = _finite(b, "b")
    for arr, field in ((xa, "a"), (xb, "b")):
        if arr.size < 2:
            raise InvalidArgument(
                f"{field} has {arr.size} values; Welch's test needs at least 2 per sample",
                field=field,
                remedy=f"collect at least two observations in {field}",
            )
    return welch_ttest_from_stats(
        float(xa.mean()),
        float(np.var(xa, ddof=1)),
        int(xa.size),
        float(xb.mean()),
        float(np.var(xb, ddof=1)),
        int(xb.size),
        alternative,
        confidence=confidence,
    )


# --------------------------------------------------------------------------------------------
# Power and sample size
# --------------------------------------------------------------------------------------------

Metric = Literal["proportions", "means"]


def _power_at(
    metric: Metric, effect: float, nobs1: float, alpha: float, ratio: float, two: bool
) -> float:
    """Power for a non-negative standardised effect; ``two`` selects the two-sided test."""
    nobs = nobs1 * ratio / (1.0 + ratio)
    tail = alpha / 2.0 if two else alpha
    if metric == "proportions":
        crit = float(_sps.norm.isf(tail))
        shift = effect * math.sqrt(nobs)
        out = float(_sps.norm.sf(crit - shift))
        if two:
            out += float(_sps.norm.cdf(-crit - shift))
        return out
    df = nobs1 * (1.0 + ratio) - 2.0
    crit = float(_sps.t.isf(tail, df))
    nc = effect * math.sqrt(nobs)
    out = 1.0 - float(_special.nctdtr(df, nc, crit))
    if two:
        out += float(_special.nctdtr(df, nc, -crit))
    return out


def _min_nobs1(metric: Metric, ratio: float) -> float:
    # The t-test needs df = n_a (1 + ratio) - 2 >= 1; the z-test only n > 0.
    return 3.0 / (1.0 + ratio) if metric == "means" else 1e-9


def _solve_n(
    metric: Metric, effect: float, alpha: float, power: float, ratio: float, two: bool
) -> float:
    lo = _min_nobs1(metric, ratio)
    if _power_at(metric, effect, lo, alpha, ratio, two) >= power:
        return lo
    tail = alpha / 2.0 if two else alpha
    z = float(_sps.norm.isf(tail) + _sps.norm.ppf(power))
    hi = max(2.0 * lo, 1.5 * (z / effect) ** 2 * (1.0 + ratio) / ratio + 10.0)
    for _ in range(60):
        if _power_at(metric, effect, hi, alpha, ratio, two) >= power:
            break
        lo, hi = hi, 2.0 * hi
    root = _optimize.brentq(
        lambda x: _power_at(metric, effect, x, alpha, ratio, two) - power, lo, hi, xtol=1e-10
    )
    return float(root)


def _solve_effect(
    metric: Metric, nobs1: float, alpha: float, power: float, ratio: float, two: bool
) -> float:
    tail = alpha / 2.0 if two else alpha
    z = float(_sps.norm.isf(tail) + _sps.norm.ppf(power))
    hi = z / math.sqrt(nobs1 * ratio / (1.0 + ratio))
    for _ in range(60):
        if _power_at(metric, hi, nobs1, alpha, ratio, two) >= power:
            break
        hi *= 2.0
    root = _optimize.brentq(
        lambda d: _power_at(metric, d, nobs1, alpha, ratio, two) - power, 0.0, hi, xtol=1e-14
    )
    return float(root)


def _design(alpha: float, ratio: float, alternative: str) -> tuple[float, float, Alternative]:
    a = _alpha(alpha)
    r = _positive(ratio, "ratio", "pass ratio = n_b / n_a > 0 (1.0 for an even split)")
    return a, r, _alternative(alternative)


def _target_power(power: float, alpha: float) -> float:
    p = _open_unit(power, "power", "pass the target power, e.g. 0.8")
    if p <= alpha:
        raise InvalidArgument(
            f"power ({p:g}) must exceed alpha ({alpha:g}): a test reaches power alpha with no data",
            field="power",
            remedy="pass a target power above alpha, e.g. 0.8",
        )
    return p


def _direction(mde: float, alternative: Alternative) -> None:
    if mde == 0.0:
        raise InvalidArgument(
            "mde must not be 0: no sample size detects a zero difference",
            field="mde",
            remedy="pass the smallest difference b - a worth detecting",
        )
    if (alternative == "larger" and mde < 0.0) or (alternative == "smaller" and mde > 0.0):
        raise InvalidArgument(
            f"mde = {mde:g} points against the alternative {alternative!r}",
            field="mde",
            remedy="pass a positive mde for 'larger', a negative one for 'smaller', or use "
            "'two-sided'",
        )


def _cohens_h(
    p_baseline: object, mde: object, alternative: Alternative
) -> tuple[float, float, float]:
    pa = _open_unit(p_baseline, "p_baseline", "pass the control's rate strictly between 0 and 1")
    d = _number(mde, "mde", "pass the absolute difference b - a to detect")
    _direction(d, alternative)
    pb = pa + d
    if not 0.0 < pb < 1.0:
        raise InvalidArgument(
            f"p_baseline + mde = {pb:g} is not a rate in (0, 1)",
            field="mde",
            remedy="mde is an absolute difference: 0.01 moves a 10% rate to 11%",
        )
    h = 2.0 * math.asin(math.sqrt(pb)) - 2.0 * math.asin(math.sqrt(pa))
    return pa, d, h


def _cohens_d(sd: object, mde: object, alternative: Alternative) -> tuple[float, float, float]:
    s = _positive(sd, "sd", "pass the standard deviation of the metric per row (> 0)")
    d = _number(mde, "mde", "pass the absolute difference b - a to detect")
    _direction(d, alternative)
    return s, d, d / s


def _plan(
    metric: Metric,
    alternative: Alternative,
    alpha: float,
    power: float,
    ratio: float,
    mde: float,
    effect: float,
    p_baseline: float | None,
    sd: float | None,
    n_a_exact: float,
    n_a: int,
    n_b: int,
) -> PowerPlan:
    return PowerPlan(
        metric=metric,
        alternative=alternative,
        alpha=alpha,
        power=power,
        ratio=ratio,
        mde=mde,
        effect_size=effect,
        p_baseline=p_baseline,
        sd=sd,
        n_a=n_a,
        n_b=n_b,
        n_total=n_a + n_b,
        n_a_exact=n_a_exact,
    )


def _ceil(x: float) -> int:
    return max(1, math.ceil(x))


def sample_size_proportions(
    p_baseline: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    alternative: str = "two-sided",
) -> PowerPlan:
    """Rows per arm to detect ``p_b = p_baseline + mde`` with the two-proportion z-test.

    Uses Cohen's ``h`` and the normal power function of statsmodels' ``NormalIndPower`` (whose
    ``solve_power(effect_size=proportion_effectsize(p_b, p_a), ...)`` gives ``n_a_exact``).
    """
    a, r, alt = _design(alpha, ratio, alternative)
    target = _target_power(power, a)
    pa, d, h = _cohens_h(p_baseline, mde, alt)
    exact = _solve_n("proportions", abs(h), a, target, r, alt == "two-sided")
    return _plan(
        "proportions", alt, a, target, r, d, h, pa, None, exact, _ceil(exact), _ceil(exact * r)
    )


def sample_size_means(
    sd: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    alternative: str = "two-sided",
) -> PowerPlan:
    """Rows per arm to detect a difference of means ``mde`` when each row has s.d. ``sd``.

    Uses the two-sample Student t-test's noncentral-t power (statsmodels ``TTestIndPower``, with
    ``df = n_a + n_b - 2``) on Cohen's ``d = mde / sd``; at least ``3 / (1 + ratio)`` rows in
    arm a so that ``df >= 1``.
    """
    a, r, alt = _design(alpha, ratio, alternative)
    target = _target_power(power, a)
    s, d, eff = _cohens_d(sd, mde, alt)
    exact = _solve_n("means", abs(eff), a, target, r, alt == "two-sided")
    return _plan("means", alt, a, target, r, d, eff, None, s, exact, _ceil(exact), _ceil(exact * r))


def power_proportions(
    p_baseline: float,
    mde: float,
    n_a: int,
    alpha: float = 0.05,
    ratio: float = 1.0,
    alternative: str = "two-sided",
) -> PowerPlan:
    """Power of the two-proportion z-test with ``n_a`` rows in arm a and ``n_a * ratio`` in b.

    As statsmodels ``NormalIndPower().power(h, nobs1=n_a, alpha, ratio, alternative)``; the power
    uses ``n_a * ratio`` exactly, ``n_b`` reports its ceiling.
    """
    a, r, alt = _design(alpha, ratio, alternative)
    n = _whole(n_a, "n_a", 1)
    pa, d, h = _cohens_h(p_baseline, mde, alt)
    pw = _power_at("proportions", abs(h), float(n), a, r, alt == "two-sided")
    return _plan("proportions", alt, a, pw, r, d, h, pa, None, float(n), n, _ceil(n * r))


def power_means(
    sd: float,
    mde: float,
    n_a: int,
    alpha: float = 0.05,
    ratio: float = 1.0,
    alternative: str = "two-sided",
) -> PowerPlan:
    """Power of the two-sample t-test (statsmodels ``TTestIndPower().power``) for ``mde``.

    Needs ``n_a * (1 + ratio) >= 3`` so that the t-test has at least one degree of freedom.
    """
    a, r, alt = _design(alpha, ratio, alternative)
    n = _whole(n_a, "n_a", 1)
    if n * (1.0 + r) < 3.0:
        raise InvalidArgument(
            f"n_a = {n} with ratio {r:g} leaves the t-test no degree of freedom",
            field="n_a",
            remedy="pass n_a with n_a * (1 + ratio) >= 3",
        )
    s, d, eff = _cohens_d(sd, mde, alt)
    pw = _power_at("means", abs(eff), float(n), a, r, alt == "two-sided")
    return _plan("means", alt, a, pw, r, d, eff, None, s, float(n), n, _ceil(n * r))


def minimum_detectable_effect(
    n_a: int,
    *,
    p_baseline: float | None = None,
    sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    alternative: str = "two-sided",
) -> PowerPlan:
    """The smallest absolute difference ``b - a`` detectable with ``n_a`` rows in arm a.

    Pass exactly one of ``p_baseline`` (proportions: the effect is solved as Cohen's h, then
    turned into a rate) or ``sd`` (means: Cohen's d times ``sd``). The MDE is positive for
    ``"two-sided"`` and ``"larger"`` (an increase; with Cohen's h a decrease of the same
    detectability differs) and negative for ``"smaller"``.
    """
    a, r, alt = _design(alpha, ratio, alternative)
    target = _target_power(power, a)
    n = _whole(n_a, "n_a", 1)
    if (p_baseline is None) == (sd is None):
        raise InvalidArgument(
            "pass exactly one of p_baseline (a rate) or sd (a mean's standard deviation)",
            field="p_baseline" if p_baseline is None else "sd",
            remedy="use p_baseline for conversion or default rates, sd for continuous metrics",
        )
    sign = -1.0 if alt == "smaller" else 1.0
    two = alt == "two-sided"
    b = _ceil(n * r)
    if sd is None:
        pa = _open_unit(p_baseline, "p_baseline", "pass the control's rate strictly in (0, 1)")
        h = _solve_effect("proportions", float(n), a, target, r, two)
        phi = 2.0 * math.asin(math.sqrt(pa)) + sign * h
        pb = math.sin(phi / 2.0) ** 2
        if not 0.0 <= phi <= math.pi or not 0.0 < pb < 1.0:
            raise InvalidArgument(
                f"with n_a = {n} no rate in (0, 1) is detectable from p_baseline = {pa:g}",
                field="n_a",
                remedy="increase n_a (or the alpha, or lower the power)",
            )
        return _plan("proportions", alt, a, target, r, pb - pa, sign * h, pa, None, float(n), n, b)
    s = _positive(sd, "sd", "pass the standard deviation of the metric per row (> 0)")
    if n * (1.0 + r) < 3.0:
        raise InvalidArgument(
            f"n_a = {n} with ratio {r:g} leaves the t-test no degree of freedom",
            field="n_a",
            remedy="pass n_a with n_a * (1 + ratio) >= 3",
        )
    eff = _solve_effect("means", float(n), a, target, r, two)
    return _plan("means", alt, a, target, r, sign * eff * s, sign * eff, None, s, float(n), n, b)


# --------------------------------------------------------------------------------------------
# Bootstrap
# --------------------------------------------------------------------------------------------


def bootstrap_ci(
    statistic: Callable[..., Any],
    *samples: ArrayLike,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    paired: bool = False,
    vectorized: bool = False,
) -> BootstrapResult:
    """Percentile bootstrap interval of ``statistic(*samples)``.

    Rows are resampled with replacement along the first axis of each sample: separately per sample,
    or with the same row indices for all samples when ``paired=True`` (all samples then need the
    same length; use it for an AUC difference of two models on the same rows). With
    ``vectorized=True`` the statistic is called on stacks of resamples (each sample gains a leading
    resample axis) and must reduce the last row axis, e.g. ``lambda x: x.mean(axis=-1)``, returning
    one value per resample. The statistic must return a finite number on every resample.
    """
    if not callable(statistic):
        raise InvalidArgument(
            "statistic must be callable", field="statistic", remedy="pass a function of the samples"
        )
    if not samples:
        raise InvalidArgument(
            "bootstrap_ci needs at least one sample",
            field="samples",
            remedy="pass the data after the statistic: bootstrap_ci(np.mean, x)",
        )
    k = _whole(n_resamples, "n_resamples", 2)
    conf = _confidence(confidence)
    sd = _whole(seed, "seed", 0)
    arrays: list[NDArray[Any]] = []
    for i, sample in enumerate(samples):
        arr = np.asarray(sample)
        if arr.ndim == 0 or arr.shape[0] == 0:
            raise InvalidArgument(
                f"sample {i} is empty or a scalar",
                field="samples",
                remedy="pass each sample as a non-empty array with rows on the first axis",
            )
        arrays.append(arr)
    sizes = [a.shape[0] for a in arrays]
    if paired and len(set(sizes)) != 1:
        raise InvalidArgument(
            f"paired resampling needs samples of equal length, got {sizes}",
            field="samples",
            remedy="pass one value per row in every sample, or use paired=False",
        )

    def _scalar(value: Any) -> float:
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(
                f"statistic returned {value!r}, not a number",
                field="statistic",
                remedy="return a single float (or, vectorized, one per resample)",
            ) from exc

    estimate = _scalar(statistic(*arrays))
    rng = np.random.default_rng(sd)
    per_resample = sizes[0] if paired else sum(sizes)
    batch = max(1, min(k, BOOTSTRAP_BATCH_ELEMENTS // max(per_resample, 1)))
    theta = np.empty(k, dtype=np.float64)
    done = 0
    while done < k:
        b = min(batch, k - done)
        if paired:
            idx = rng.integers(0, sizes[0], size=(b, sizes[0]))
            indices = [idx] * len(arrays)
        else:
            indices = [rng.integers(0, n, size=(b, n)) for n in sizes]
        if vectorized:
            stacked = [arr[ix] for arr, ix in zip(arrays, indices, strict=True)]
            out = np.asarray(statistic(*stacked), dtype=np.float64)
            if out.shape != (b,):
                raise InvalidArgument(
                    f"a vectorized statistic must return shape ({b},), got {out.shape}",
                    field="statistic",
                    remedy="reduce the last axis (e.g. x.mean(axis=-1)) or pass vectorized=False",
                )
            theta[done : done + b] = out
        else:
            for j in range(b):
                resample = [arr[ix[j]] for arr, ix in zip(arrays, indices, strict=True)]
                theta[done + j] = _scalar(statistic(*resample))
        done += b
    bad = int(np.count_nonzero(~np.isfinite(theta)))
    if bad or not math.isfinite(estimate):
        raise InvalidArgument(
            f"statistic was not finite on {bad} of {k} resamples"
            + ("" if math.isfinite(estimate) else " nor on the original samples"),
            field="statistic",
            remedy="make the statistic defined on every resample (e.g. enough events for an AUC)",
        )
    tail = (1.0 - conf) / 2.0
    lo, hi = np.percentile(theta, [100.0 * tail, 100.0 * (1.0 - tail)])
    return BootstrapResult(
        estimate=estimate,
        ci_low=float(lo),
        ci_high=float(hi),
        se=float(np.std(theta, ddof=1)),
        confidence=conf,
        n_resamples=k,
        seed=sd,
        paired=bool(paired),
    )


# --------------------------------------------------------------------------------------------
# Bayesian A/B on rates
# --------------------------------------------------------------------------------------------


def _is_whole(x: float) -> bool:
    return float(x).is_integer()


def _prob_greater_closed(a1: float, b1: float, a2: float, b2: float) -> float:
    """``P(X > Y)``, X ~ Beta(a1, b1), Y ~ Beta(a2, b2), for whole ``a1`` (Evan Miller).

    ``sum_{i=0}^{a1-1} B(a2 + i, b1 + b2) / ((b1 + i) B(1 + i, b1) B(a2, b2))``, summed in logs.
    """
    i = np.arange(int(a1), dtype=np.float64)
    log_terms = (
        _special.betaln(a2 + i, b1 + b2)
        - np.log(b1 + i)
        - _special.betaln(1.0 + i, b1)
        - _special.betaln(a2, b2)
    )
    return float(np.exp(_special.logsumexp(log_terms)))


def _prob_greater_quad(a1: float, b1: float, a2: float, b2: float) -> float:
    """``P(X > Y) = integral f_X(x) F_Y(x) dx`` over the central ``1 - 2e-15`` of X."""
    log_norm = float(_special.betaln(a1, b1))

    def integrand(x: float) -> float:
        log_pdf = (a1 - 1.0) * math.log(x) + (b1 - 1.0) * math.log1p(-x) - log_norm
        return math.exp(log_pdf) * float(_special.betainc(a2, b2, x))

    tail = 1e-15
    lo = float(_special.betaincinv(a1, b1, tail))
    hi = float(_special.betaincinv(a1, b1, 1.0 - tail))
    lo = max(lo, 1e-300)
    hi = min(hi, 1.0 - 1e-16)
    if not lo < hi:
        return float(_special.betainc(a2, b2, lo))
    marks = [
        float(_special.betaincinv(a, b, q))
        for a, b in ((a1, b1), (a2, b2))
        for q in (0.001, 0.5, 0.999)
    ]
    points = sorted({m for m in marks if lo < m < hi})
    out = _integrate.quad(
        integrand,
        lo,
        hi,
        points=points or None,
        epsabs=1e-13,
        epsrel=1e-11,
        limit=500,
        full_output=1,
    )
    return float(min(max(out[0], 0.0), 1.0))


def _prob_greater(a1: float, b1: float, a2: float, b2: float) -> tuple[float, str]:
    """``P(X > Y)`` and the method used (closed form on the shorter whole-number sum)."""
    options: list[tuple[float, bool]] = []
    if _is_whole(a1) and a1 <= CLOSED_FORM_MAX_TERMS:
        options.append((a1, False))
    if _is_whole(a2) and a2 <= CLOSED_FORM_MAX_TERMS:
        options.append((a2, True))
    if not options:
        return _prob_greater_quad(a1, b1, a2, b2), "quadrature"
    _, flip = min(options)
    p = 1.0 - _prob_greater_closed(a2, b2, a1, b1) if flip else _prob_greater_closed(a1, b1, a2, b2)
    return min(max(p, 0.0), 1.0), "closed-form"


def beta_binomial_prob_b_better(
    successes_a: int,
    n_a: int,
    successes_b: int,
    n_b: int,
    prior_alpha: float = 1.0,
    prior_beta: float = 1.0,
    better: str = "higher",
) -> BetaBinomialResult:
    """Posterior probability that the challenger's rate is better, and the expected losses.

    Posteriors ``Beta(prior_alpha + s, prior_beta + n - s)`` (the default prior is uniform).
    ``better="higher"`` for conversion-like rates, ``"lower"`` for default or fraud rates. The
    expected losses use ``E[p 1{p > q}] = E[p] P(p' > q)`` with ``p'`` the posterior with one more
    success, so they are exact too.
    """
    sa, na = _counts(successes_a, n_a, "a")
    sb, nb = _counts(successes_b, n_b, "b")
    pa0 = _positive(prior_alpha, "prior_alpha", "pass a Beta prior parameter > 0, e.g. 1")
    pb0 = _positive(prior_beta, "prior_beta", "pass a Beta prior parameter > 0, e.g. 1")
    if better not in ("higher", "lower"):
        raise InvalidArgument(
            f"better must be 'higher' or 'lower', got {better!r}",
            field="better",
            remedy="'higher' when a larger rate is good (conversion), 'lower' when it is bad "
            "(default, fraud)",
        )
    aa, ba = pa0 + sa, pb0 + na - sa
    ab, bb = pa0 + sb, pb0 + nb - sb
    mean_a = aa / (aa + ba)
    mean_b = ab / (ab + bb)
    b_over_a, method = _prob_greater(ab, bb, aa, ba)
    # E[max(p_b - p_a, 0)] and E[max(p_a - p_b, 0)], by the shifted posteriors.
    gain_b = (
        mean_b * _prob_greater(ab + 1.0, bb, aa, ba)[0]
        - mean_a * _prob_greater(ab, bb, aa + 1.0, ba)[0]
    )
    gain_a = (
        mean_a * _prob_greater(aa + 1.0, ba, ab, bb)[0]
        - mean_b * _prob_greater(aa, ba, ab + 1.0, bb)[0]
    )
    gain_b = max(gain_b, 0.0)
    gain_a = max(gain_a, 0.0)
    if better == "higher":
        prob, loss_b, loss_a = b_over_a, gain_a, gain_b
    else:
        prob, loss_b, loss_a = 1.0 - b_over_a, gain_b, gain_a
    return BetaBinomialResult(
        prob_b_better=prob,
        expected_loss_b=loss_b,
        expected_loss_a=loss_a,
        mean_a=mean_a,
        mean_b=mean_b,
        alpha_a=aa,
        beta_a=ba,
        alpha_b=ab,
        beta_b=bb,
        better=better,
        method=method,
    )


# --------------------------------------------------------------------------------------------
# mSPRT
# --------------------------------------------------------------------------------------------


def _log_lr(difference: float, variance: float, tau2: float) -> float:
    return 0.5 * math.log(variance / (variance + tau2)) + tau2 * difference**2 / (
        2.0 * variance * (variance + tau2)
    )


def _exp(x: float) -> float:
    return math.exp(x) if x < 709.0 else math.inf


def msprt_likelihood_ratio(difference: float, variance: float, tau2: float) -> float:
    """The normal-mixture likelihood ratio of Johari et al.

    ``sqrt(V / (V + tau2)) * exp(tau2 * D**2 / (2 * V * (V + tau2)))`` for an estimate ``D`` of
    the difference with variance ``V > 0`` and mixing variance ``tau2 > 0`` (``inf`` on overflow).
    """
    d = _number(difference, "difference", "pass the estimated difference b - a")
    v = _positive(variance, "variance", "pass the variance of the estimated difference (> 0)")
    t = _positive(tau2, "tau2", "pass the mixing variance tau2 > 0")
    return _exp(_log_lr(d, v, t))


@dataclass(frozen=True, slots=True)
class _Arm:
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean

    def add(self, n: int, mean: float, m2: float) -> _Arm:
        """Chan et al.'s pairwise combination of counts, means and squared deviations."""
        if n == 0:
            return self
        if self.n == 0:
            return _Arm(n, mean, m2)
        total = self.n + n
        delta = mean - self.mean
        return _Arm(
            total,
            self.mean + delta * n / total,
            self.m2 + m2 + delta * delta * self.n * n / total,
        )

    @property
    def variance(self) -> float:
        return self.m2 / (self.n - 1) if self.n > 1 else math.nan


class MSPRT:
    """Mixture sequential probability ratio test (always-valid p-values) for two arms.

    ``metric="means"`` for continuous outcomes, ``"proportions"`` for 0/1 outcomes. ``tau2`` is
    the variance of the normal mixing distribution of the true difference ``mean_b - mean_a``, on
    the metric's own scale: set it near the square of the differences you expect (e.g.
    ``0.01**2`` for about one point on a conversion rate). The variance ``V`` of the estimated
    difference is ``sigma2 * (1 / n_a + 1 / n_b)`` when the per-row variance ``sigma2`` is known;
    otherwise a plug-in: ``s_a**2 / n_a + s_b**2 / n_b`` (sample variances, ``ddof = 1``) for means,
    ``p (1 - p) (1 / n_a + 1 / n_b)`` with the pooled rate ``p`` for proportions. Ville's inequality
    makes the p-value valid at every look for known ``sigma2``; plug-ins are valid asymptotically.

    ``update(a, b)`` adds a batch of observations of each arm (either may be empty) and then
    *looks*: it evaluates the LR on all the data so far and keeps the running maximum, so the
    always-valid p-value ``min(1, 1 / max LR)`` can only fall. A look at which an arm has no row
    (or, for plug-in means, fewer than two), or where the plug-in variance is 0, carries no
    evidence (LR 1). ``merge(other)`` adds the data of ``other`` (e.g. a partition of the next
    batch, accumulated elsewhere) as one batch and looks; the looks ``other`` took on its own data
    alone are discarded, so ``a.merge(b)`` equals feeding ``a``'s batches then ``b``'s data in one
    pass, and is not symmetric.
    """

    def __init__(
        self,
        tau2: float,
        alpha: float = 0.05,
        *,
        sigma2: float | None = None,
        metric: str = "means",
    ) -> None:
        self._tau2 = _positive(tau2, "tau2", "pass the mixing variance tau2 > 0")
        self._alpha = _alpha(alpha)
        self._sigma2 = (
            None
            if sigma2 is None
            else _positive(sigma2, "sigma2", "pass the per-row variance (> 0) or None")
        )
        if metric not in ("means", "proportions"):
            raise InvalidArgument(
                f"metric must be 'means' or 'proportions', got {metric!r}",
                field="metric",
                remedy="'proportions' for 0/1 outcomes, 'means' for continuous ones",
            )
        self._metric = metric
        self._a = _Arm()
        self._b = _Arm()
        self._last_log_lr = 0.0
        self._max_log_lr = -math.inf
        self._looks = 0

    @property
    def tau2(self) -> float:
        return self._tau2

    @property
    def alpha(self) -> float:
        return self._alpha

    @property
    def sigma2(self) -> float | None:
        return self._sigma2

    @property
    def metric(self) -> str:
        return self._metric

    def _batch(self, x: ArrayLike, field: str) -> tuple[int, float, float]:
        arr = _finite(x, field)
        if self._metric == "proportions" and not bool(np.all((arr == 0.0) | (arr == 1.0))):
            raise InvalidArgument(
                f"{field} must hold only 0 and 1 for metric='proportions'",
                field=field,
                remedy="pass the 0/1 outcome of every row, or use metric='means'",
            )
        if arr.size == 0:
            return 0, 0.0, 0.0
        mean = float(arr.mean())
        return int(arr.size), mean, float(np.sum((arr - mean) ** 2))

    def _variance(self) -> float:
        a, b = self._a, self._b
        if a.n == 0 or b.n == 0:
            return math.nan
        inv = 1.0 / a.n + 1.0 / b.n
        if self._sigma2 is not None:
            return self._sigma2 * inv
        if self._metric == "proportions":
            p = (a.mean * a.n + b.mean * b.n) / (a.n + b.n)
            return p * (1.0 - p) * inv
        if a.n < 2 or b.n < 2:
            return math.nan
        return a.variance / a.n + b.variance / b.n

    def _look(self) -> None:
        v = self._variance()
        if math.isnan(v) or v <= 0.0:
            log_lr = 0.0
        else:
            log_lr = _log_lr(self._b.mean - self._a.mean, v, self._tau2)
        self._last_log_lr = log_lr
        self._max_log_lr = max(self._max_log_lr, log_lr)
        self._looks += 1

    def update(self, a: ArrayLike, b: ArrayLike) -> None:
        """Add one batch of observations of arm a and arm b (in place), then look."""
        na, ma, qa = self._batch(a, "a")
        nb, mb, qb = self._batch(b, "b")
        self._a = self._a.add(na, ma, qa)
        self._b = self._b.add(nb, mb, qb)
        self._look()

    def merge(self, other: MSPRT) -> MSPRT:
        """A new test holding this one's history plus ``other``'s data as one more batch."""
        if not isinstance(other, MSPRT) or (
            other._tau2,
            other._alpha,
            other._sigma2,
            other._metric,
        ) != (self._tau2, self._alpha, self._sigma2, self._metric):
            raise InvalidArgument(
                "can only merge mSPRTs with the same tau2, alpha, sigma2 and metric",
                field="other",
                remedy="create every partition's MSPRT with the same settings",
            )
        out = MSPRT(self._tau2, self._alpha, sigma2=self._sigma2, metric=self._metric)
        out._a = self._a.add(other._a.n, other._a.mean, other._a.m2)
        out._b = self._b.add(other._b.n, other._b.mean, other._b.m2)
        out._max_log_lr = self._max_log_lr
        out._looks = self._looks
        out._look()
        return out

    def result(self) -> MSPRTResult:
        """The test after its last look (no looks yet: LR 1, p-value 1)."""
        v = self._variance()
        a, b = self._a, self._b
        diff = b.mean - a.mean if a.n and b.n else math.nan
        if math.isnan(v) or v <= 0.0:
            lo, hi = -math.inf, math.inf
        else:
            t = self._tau2
            radius = 2.0 * v * (v + t) / t * (-math.log(self._alpha) + 0.5 * math.log((v + t) / v))
            half = math.sqrt(radius)
            lo, hi = diff - half, diff + half
        max_log = self._max_log_lr if self._looks else 0.0
        return MSPRTResult(
            n_a=a.n,
            n_b=b.n,
            mean_a=a.mean if a.n else math.nan,
            mean_b=b.mean if b.n else math.nan,
            difference=diff,
            variance=v,
            likelihood_ratio=_exp(self._last_log_lr),
            max_likelihood_ratio=_exp(max_log),
            p_value=min(1.0, math.exp(-max_log)) if max_log > 0.0 else 1.0,
            stop=max_log >= -math.log(self._alpha),
            looks=self._looks,
            alpha=self._alpha,
            tau2=self._tau2,
            ci_low=lo,
            ci_high=hi,
        )


def msprt(
    batches: Iterable[tuple[ArrayLike, ArrayLike]],
    *,
    tau2: float,
    alpha: float = 0.05,
    sigma2: float | None = None,
    metric: str = "means",
) -> MSPRTResult:
    """Run an ``MSPRT`` over ``(a_batch, b_batch)`` pairs, looking after each; the final result."""
    test = MSPRT(tau2, alpha, sigma2=sigma2, metric=metric)
    for a, b in batches:
        test.update(a, b)
    return test.result()
