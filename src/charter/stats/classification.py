"""Classification metrics for credit and fraud risk models.

Pure numpy, no I/O, vectorised (no Python loops over rows). Tested against scikit-learn and scipy.

Conventions (pinned by tests):

* **Labels.** ``y_true`` holds 0/1 (or booleans) where **1 is the event**: the default, the fraud,
  the "bad". ``score`` is the model's probability or score where **higher means more likely bad**.
* **Threshold direction.** A row is *predicted bad* when ``score >= threshold``. So
  ``confusion_at(y, s, t)`` counts ``tp = #(y == 1 and s >= t)``, ``fp = #(y == 0 and s >= t)``,
  ``tn = #(y == 0 and s < t)``, ``fn = #(y == 1 and s < t)``.
* **AUC** is the Mann-Whitney probability that a random bad scores above a random good, a tie
  counting one half: ``U / (n_bad * n_good)`` with midranks for tied scores, in O(n log n). With
  ``sample_weight`` it is the weighted form of the same sum over pairs, which equals the weighted
  trapezoid under the ROC curve over distinct thresholds (``sklearn.metrics.roc_auc_score``).
  **Gini** is ``2 * AUC - 1``.
* **KS** is ``max |F_bad(t) - F_good(t)|`` over the score CDFs of bads and goods, evaluated exactly
  at every boundary between two distinct score values (equal to
  ``scipy.stats.ks_2samp(score[y == 1], score[y == 0]).statistic``). Its ``threshold`` is the
  distinct score value just above that boundary, so ``TPR - FPR`` at that threshold under the
  ``score >= threshold`` rule has absolute value ``statistic``; ties in the maximum go to the lowest
  threshold.
* **Zero division** (as scikit-learn's ``zero_division=0``): precision is 0 when nothing is
  predicted bad, recall is 0 when there is no bad, F1 is ``2 tp / (2 tp + fp + fn)`` and 0 when that
  denominator is 0.
* **Calibration** (Brier, reliability table, ECE) needs probabilities: every score in [0, 1].
  *Bins* are closed on the right, ``(e[i], e[i + 1]]``, the first one closed on both sides, so a
  score equal to an inner edge belongs to the lower bin (as ``calibration_curve``). *Uniform* edges
  are ``k / n_bins`` for ``k = 0..n_bins`` (the correctly rounded quotient; numpy's ``linspace``
  may differ from it by one unit in the last place, which matters only for a score lying exactly
  on such an edge). Uniform edges on ``k / n_bins`` make every ``n_bins`` that divides the
  accumulator's bin count align exactly with it. *Quantile* edges are the
  ``np.percentile(score, 100 * k / n_bins)`` of the scores themselves (linear interpolation); tied
  scores may leave bins empty. Empty bins are kept, with count 0 and NaN means.
* **ECE** is ``sum_b (count_b / n) * |observed_b - mean_predicted_b|`` over the non-empty bins.
* **Score-band PSI** is ``sum((a - e) * ln(a / e))`` over bands fixed on the *expected*
  (reference) scores only: the inner band edges are the ``k / n_bands`` quantiles of the expected
  scores (``np.quantile``, linear interpolation), duplicates removed (so heavy ties give fewer
  bands), and the first and last bands are open-ended. A band is closed on the right like the
  calibration bins. *Zero cells:* a proportion below ``epsilon`` (in particular zero) is raised to
  ``epsilon`` (default ``PSI_EPSILON = 1e-4``, the same rule as ``charter.stats.drift``) on both
  sides before the logarithm, without renormalising.
* **Streaming.** ``BinnedScoreAccumulator`` keeps per-bin counts over fixed score edges and merges
  exactly; its AUC and KS are approximations with a reported bound (see the class).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from charter.errors import InvalidArgument

__all__ = [
    "PRF",
    "PSI_EPSILON",
    "ApproximateMetrics",
    "BinnedScoreAccumulator",
    "ClassificationMetrics",
    "Confusion",
    "HosmerLemeshowGroup",
    "HosmerLemeshowResult",
    "KSResult",
    "ReliabilityTable",
    "auc_standard_error",
    "brier_score",
    "classification_report",
    "confusion_at",
    "expected_calibration_error",
    "gini",
    "hosmer_lemeshow",
    "ks_statistic",
    "precision_recall_f1",
    "reliability_table",
    "roc_auc",
    "score_band_psi",
]

PSI_EPSILON = 1e-4
DEFAULT_ACCUMULATOR_BINS = 1000

Strategy = Literal["uniform", "quantile"]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


def _json_float(x: float) -> float | None:
    """A float for JSON: NaN and infinities become ``None``."""
    return float(x) if math.isfinite(x) else None


@dataclass(frozen=True, slots=True)
class KSResult:
    """Kolmogorov-Smirnov separation between the score distributions of bads and goods.

    ``statistic`` is ``max |TPR - FPR|``; ``threshold`` is where it occurs under the
    ``score >= threshold`` rule, and ``tpr`` and ``fpr`` are the rates there.
    """

    statistic: float
    threshold: float
    tpr: float
    fpr: float


@dataclass(frozen=True, slots=True)
class Confusion:
    """Counts at a threshold; predicted bad means ``score >= threshold``."""

    tp: int
    fp: int
    tn: int
    fn: int

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn


@dataclass(frozen=True, slots=True)
class PRF:
    """Precision, recall and F1 of the bad class; 0 where a denominator is 0."""

    precision: float
    recall: float
    f1: float


@dataclass(frozen=True, slots=True)
class ReliabilityTable:
    """Calibration by score bin.

    ``edges`` has ``n_bins + 1`` entries; bin ``i`` is ``(edges[i], edges[i + 1]]`` (the first bin
    also includes ``edges[0]``). ``count`` and ``n_bad`` are per bin; ``mean_predicted`` and
    ``observed_rate`` (bads / count) are NaN for an empty bin.
    """

    strategy: str
    edges: tuple[float, ...]
    count: tuple[int, ...]
    n_bad: tuple[int, ...]
    mean_predicted: tuple[float, ...]
    observed_rate: tuple[float, ...]

    @property
    def n_bins(self) -> int:
        return len(self.count)

    @property
    def ece(self) -> float:
        """The expected calibration error over these bins (see ``expected_calibration_error``)."""
        return _ece(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able types; NaN (empty bins) becomes ``None``."""
        return {
            "strategy": self.strategy,
            "edges": [float(e) for e in self.edges],
            "count": [int(c) for c in self.count],
            "n_bad": [int(c) for c in self.n_bad],
            "mean_predicted": [_json_float(v) for v in self.mean_predicted],
            "observed_rate": [_json_float(v) for v in self.observed_rate],
        }


@dataclass(frozen=True, slots=True)
class ClassificationMetrics:
    """The standard metrics of a binary risk model at one decision threshold."""

    n: int
    n_bad: int
    bad_rate: float
    threshold: float
    auc: float
    gini: float
    ks: float
    ks_threshold: float
    precision: float
    recall: float
    f1: float
    brier: float
    ece: float
    reliability: ReliabilityTable

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able types (ints, floats, lists, ``None`` for NaN)."""
        return {
            "n": int(self.n),
            "n_bad": int(self.n_bad),
            "bad_rate": float(self.bad_rate),
            "threshold": float(self.threshold),
            "auc": float(self.auc),
            "gini": float(self.gini),
            "ks": float(self.ks),
            "ks_threshold": float(self.ks_threshold),
            "precision": float(self.precision),
            "recall": float(self.recall),
            "f1": float(self.f1),
            "brier": float(self.brier),
            "ece": float(self.ece),
            "reliability": self.reliability.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class ApproximateMetrics:
    """Metrics from a ``BinnedScoreAccumulator``.

    ``auc`` counts pairs in the same bin as ties; the exact AUC lies within ``auc_bound`` of it.
    ``ks`` is the separation at the bin edges, a lower bound of the exact KS, which exceeds it by at
    most ``ks_bound``; ``ks_edge`` is the edge where it occurs (CDFs of ``score <= ks_edge``).
    ``brier`` is exact. ``reliability`` and ``ece`` are exact, or ``None`` when the requested
    uniform calibration bins do not align with the accumulator's edges.
    """

    n: int
    n_bad: int
    bad_rate: float
    auc: float
    auc_bound: float
    gini: float
    ks: float
    ks_edge: float
    ks_bound: float
    brier: float
    reliability: ReliabilityTable | None
    ece: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able types."""
        return {
            "n": int(self.n),
            "n_bad": int(self.n_bad),
            "bad_rate": float(self.bad_rate),
            "auc": float(self.auc),
            "auc_bound": float(self.auc_bound),
            "gini": float(self.gini),
            "ks": float(self.ks),
            "ks_edge": float(self.ks_edge),
            "ks_bound": float(self.ks_bound),
            "brier": float(self.brier),
            "reliability": None if self.reliability is None else self.reliability.to_dict(),
            "ece": None if self.ece is None else float(self.ece),
        }


# --------------------------------------------------------------------------------------------
# Validation at the boundary
# --------------------------------------------------------------------------------------------


def _array(x: ArrayLike, field: str) -> NDArray[Any]:
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise InvalidArgument(
            f"{field} could not be read as an array: {exc}",
            field=field,
            remedy=f"pass {field} as a 1-D numeric array",
        ) from exc
    if arr.ndim != 1:
        raise InvalidArgument(
            f"{field} must be 1-D, got an array of shape {arr.shape}",
            field=field,
            remedy=f"pass {field} as a 1-D array (flatten it, or select one column)",
        )
    if arr.dtype.kind not in "biuf":
        raise InvalidArgument(
            f"{field} must be numeric, got dtype {arr.dtype}",
            field=field,
            remedy=f"convert {field} to numbers",
        )
    return arr


def _labels(y_true: ArrayLike, *, allow_empty: bool = False) -> BoolArray:
    """``y_true`` as a boolean 'is bad' vector; values must be 0/1."""
    arr = _array(y_true, "y_true")
    if arr.size == 0 and not allow_empty:
        raise InvalidArgument(
            "y_true is empty", field="y_true", remedy="pass at least one labelled row"
        )
    if arr.dtype.kind == "b":
        return arr.astype(np.bool_, copy=False)
    ok = (arr == 0) | (arr == 1)
    if not bool(np.all(ok)):
        bad = arr[~ok][:3].tolist()
        raise InvalidArgument(
            f"y_true must hold only 0 and 1, found e.g. {bad}",
            field="y_true",
            remedy="encode the event (default, fraud) as 1 and the non-event as 0",
        )
    return arr == 1


def _scores(score: ArrayLike, n: int, field: str = "score") -> FloatArray:
    arr = _array(score, field).astype(np.float64, copy=False)
    if arr.size != n:
        raise InvalidArgument(
            f"{field} has {arr.size} values but y_true has {n}",
            field=field,
            remedy=f"pass one {field} per label, in the same order",
        )
    if not bool(np.all(np.isfinite(arr))):
        raise InvalidArgument(
            f"{field} contains {int(np.sum(~np.isfinite(arr)))} NaN or infinite values",
            field=field,
            remedy=f"drop or impute the rows whose {field} is missing",
        )
    return arr


def _inputs(
    y_true: ArrayLike, score: ArrayLike, *, allow_empty: bool = False
) -> tuple[BoolArray, FloatArray]:
    bad = _labels(y_true, allow_empty=allow_empty)
    return bad, _scores(score, bad.size)


def _need_both_classes(bad: BoolArray, what: str) -> tuple[int, int]:
    n_bad = int(np.count_nonzero(bad))
    n_good = bad.size - n_bad
    if n_bad == 0 or n_good == 0:
        missing = "bad (1)" if n_bad == 0 else "good (0)"
        raise InvalidArgument(
            f"{what} needs both classes, but y_true has no {missing} row",
            field="y_true",
            remedy="evaluate on a sample that contains both bads and goods",
        )
    return n_bad, n_good


def _need_probabilities(score: FloatArray) -> None:
    if bool(np.any((score < 0.0) | (score > 1.0))):
        raise InvalidArgument(
            f"calibration metrics need probabilities in [0, 1]; score ranges from "
            f"{float(score.min())} to {float(score.max())}",
            field="score",
            remedy="pass calibrated probabilities of the event, not raw scores or points",
        )


def _threshold(threshold: float) -> float:
    try:
        t = float(threshold)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"threshold must be a number, got {threshold!r}",
            field="threshold",
            remedy="pass a finite score cut-off",
        ) from exc
    if not math.isfinite(t):
        raise InvalidArgument(
            f"threshold must be finite, got {t}",
            field="threshold",
            remedy="pass a finite score cut-off",
        )
    return t


def _count(value: int, field: str) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        k = operator.index(value)
    except TypeError as exc:
        raise InvalidArgument(
            f"{field} must be an integer, got {value!r}",
            field=field,
            remedy=f"pass {field} as an integer >= 1",
        ) from exc
    if k < 1:
        raise InvalidArgument(
            f"{field} must be >= 1, got {k}", field=field, remedy=f"pass {field} >= 1"
        )
    return k


def _strategy(strategy: str) -> Strategy:
    if strategy == "uniform":
        return "uniform"
    if strategy == "quantile":
        return "quantile"
    raise InvalidArgument(
        f"strategy must be 'uniform' or 'quantile', got {strategy!r}",
        field="strategy",
        remedy="use 'uniform' (equal-width bins on [0, 1]) or 'quantile' (equal-count bins)",
    )


def _weights(sample_weight: ArrayLike, n: int) -> FloatArray:
    w = _scores(sample_weight, n, field="sample_weight")
    if bool(np.any(w < 0)):
        raise InvalidArgument(
            "sample_weight must be non-negative",
            field="sample_weight",
            remedy="pass weights >= 0 (a zero weight drops the row)",
        )
    return w


# --------------------------------------------------------------------------------------------
# Ranking metrics
# --------------------------------------------------------------------------------------------


def _groups(sorted_score: FloatArray) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Start index and size of each run of equal values in a sorted vector."""
    n = sorted_score.size
    flags = np.empty(n, dtype=np.bool_)
    flags[0] = True
    np.not_equal(sorted_score[1:], sorted_score[:-1], out=flags[1:])
    starts = np.flatnonzero(flags)
    sizes = np.diff(np.append(starts, n))
    return starts, sizes


def _auc(bad: BoolArray, score: FloatArray, weight: FloatArray | None) -> float:
    order = np.argsort(score, kind="stable")
    s = score[order]
    b = bad[order]
    starts, sizes = _groups(s)
    if weight is None:
        n_bad = int(np.count_nonzero(b))
        n_good = b.size - n_bad
        # Midrank of each group of ties (1-based ranks start+1 .. start+size).
        midrank = starts + (sizes + 1) / 2.0
        ranks = np.repeat(midrank, sizes)
        rank_sum = float(np.sum(ranks[b]))
        u = rank_sum - n_bad * (n_bad + 1) / 2.0
        return u / (float(n_bad) * float(n_good))
    w = weight[order]
    w_bad = np.add.reduceat(np.where(b, w, 0.0), starts)
    w_good = np.add.reduceat(np.where(b, 0.0, w), starts)
    total_bad = float(w_bad.sum())
    total_good = float(w_good.sum())
    if total_bad <= 0.0 or total_good <= 0.0:
        raise InvalidArgument(
            "sample_weight gives zero total weight to the "
            + ("bads" if total_bad <= 0.0 else "goods"),
            field="sample_weight",
            remedy="give a positive weight to at least one bad and one good",
        )
    good_below = np.cumsum(w_good) - w_good
    pairs = float(np.sum(w_bad * (good_below + 0.5 * w_good)))
    return pairs / (total_bad * total_good)


def auc_standard_error(auc: float, n_bad: int, n_good: int) -> float:
    """Hanley and McNeil's (1982) standard error of an AUC from ``n_bad`` positives and
    ``n_good`` negatives: ``sqrt((A(1-A) + (nb-1)(Q1-A^2) + (ng-1)(Q2-A^2)) / (nb ng))`` with
    ``Q1 = A/(2-A)`` and ``Q2 = 2A^2/(1+A)`` (exponential score distributions; a good
    approximation for the AUCs credit models reach)."""
    a = float(auc)
    if not 0.0 <= a <= 1.0 or not math.isfinite(a):
        raise InvalidArgument(f"auc {auc!r} is not in [0, 1]", field="auc", remedy="pass an AUC")
    nb, ng = _count(n_bad, "n_bad"), _count(n_good, "n_good")
    q1, q2 = a / (2.0 - a), 2.0 * a * a / (1.0 + a)
    var = (a * (1.0 - a) + (nb - 1) * (q1 - a * a) + (ng - 1) * (q2 - a * a)) / (nb * ng)
    return math.sqrt(max(var, 0.0))


def roc_auc(y_true: ArrayLike, score: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
    """Area under the ROC curve: P(score of a bad > score of a good), ties counting one half.

    Unweighted, it is the Mann-Whitney ``U / (n_bad * n_good)`` from midranks; weighted, each pair
    counts ``w_bad * w_good`` (the weighted trapezoid over distinct thresholds, as scikit-learn).
    Needs at least one bad and one good (and, weighted, positive total weight in each class).
    """
    bad, s = _inputs(y_true, score)
    _need_both_classes(bad, "AUC")
    w = None if sample_weight is None else _weights(sample_weight, bad.size)
    return _auc(bad, s, w)


def gini(y_true: ArrayLike, score: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
    """Gini coefficient (accuracy ratio) ``2 * AUC - 1``; 0 is random, 1 is perfect."""
    return 2.0 * roc_auc(y_true, score, sample_weight) - 1.0


def _ks(bad: BoolArray, score: FloatArray, n_bad: int, n_good: int) -> KSResult:
    order = np.argsort(score, kind="stable")
    s = score[order]
    b = bad[order]
    cum_bad = np.cumsum(b, dtype=np.int64)
    cum_good = np.arange(1, b.size + 1, dtype=np.int64) - cum_bad
    # Last index of every run of equal scores except the final one: the boundaries between
    # distinct values. Beyond the last value both CDFs are 1 (separation 0).
    ends = np.flatnonzero(s[1:] != s[:-1])
    if ends.size == 0:
        return KSResult(statistic=0.0, threshold=float(s[0]), tpr=1.0, fpr=1.0)
    # Locate the maximum on exact integers (cross-multiplied), so equal separations tie exactly
    # and the lowest threshold wins; then report it as the difference of the two proportions.
    k = int(np.argmax(np.abs(cum_bad[ends] * n_good - cum_good[ends] * n_bad)))
    end = int(ends[k])
    return KSResult(
        statistic=float(abs(cum_bad[end] / n_bad - cum_good[end] / n_good)),
        threshold=float(s[end + 1]),
        tpr=float((n_bad - cum_bad[end]) / n_bad),
        fpr=float((n_good - cum_good[end]) / n_good),
    )


def ks_statistic(y_true: ArrayLike, score: ArrayLike) -> KSResult:
    """Kolmogorov-Smirnov statistic: the largest gap between the score CDFs of bads and goods.

    Exact over the boundaries between distinct score values; ``threshold`` is the score at which
    ``|TPR - FPR|`` (predicted bad when ``score >= threshold``) reaches the statistic, the lowest
    such score on ties. If all scores are equal the statistic is 0 at that score.
    """
    bad, s = _inputs(y_true, score)
    n_bad, n_good = _need_both_classes(bad, "KS")
    return _ks(bad, s, n_bad, n_good)


# --------------------------------------------------------------------------------------------
# Threshold metrics
# --------------------------------------------------------------------------------------------


def _confusion(bad: BoolArray, score: FloatArray, threshold: float) -> Confusion:
    pred = score >= threshold
    tp = int(np.count_nonzero(pred & bad))
    fp = int(np.count_nonzero(pred & ~bad))
    fn = int(np.count_nonzero(~pred & bad))
    return Confusion(tp=tp, fp=fp, tn=bad.size - tp - fp - fn, fn=fn)


def confusion_at(y_true: ArrayLike, score: ArrayLike, threshold: float) -> Confusion:
    """Confusion counts when rows with ``score >= threshold`` are predicted bad."""
    bad, s = _inputs(y_true, score)
    return _confusion(bad, s, _threshold(threshold))


def _prf(c: Confusion) -> PRF:
    precision = c.tp / (c.tp + c.fp) if c.tp + c.fp > 0 else 0.0
    recall = c.tp / (c.tp + c.fn) if c.tp + c.fn > 0 else 0.0
    denom = 2 * c.tp + c.fp + c.fn
    f1 = 2 * c.tp / denom if denom > 0 else 0.0
    return PRF(precision=float(precision), recall=float(recall), f1=float(f1))


def precision_recall_f1(y_true: ArrayLike, score: ArrayLike, threshold: float) -> PRF:
    """Precision, recall and F1 of the bad class at ``score >= threshold``.

    Zero division gives 0 (scikit-learn's ``zero_division=0``): precision is 0 when no row is
    predicted bad, recall is 0 when there is no bad, F1 ``= 2 tp / (2 tp + fp + fn)`` is 0 when
    there is neither a bad nor a predicted bad.
    """
    return _prf(confusion_at(y_true, score, threshold))


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------


def brier_score(y_true: ArrayLike, score: ArrayLike) -> float:
    """Mean squared error of the predicted probability against the 0/1 outcome."""
    bad, s = _inputs(y_true, score)
    _need_probabilities(s)
    return float(np.mean((s - bad) ** 2))


def _uniform_edges(n_bins: int) -> FloatArray:
    return np.arange(n_bins + 1, dtype=np.float64) / n_bins


def _bin_ids(edges: FloatArray, values: FloatArray) -> NDArray[np.intp]:
    """Bin index with bins closed on the right; values beyond the ends go to the end bins."""
    return np.searchsorted(edges[1:-1], values, side="left")


def _safe_ratio(num: NDArray[Any], den: FloatArray) -> FloatArray:
    out = np.full(num.shape, np.nan, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _table(
    strategy: str,
    edges: FloatArray,
    count: NDArray[Any],
    n_bad: NDArray[Any],
    sum_pred: NDArray[Any],
) -> ReliabilityTable:
    den = count.astype(np.float64)
    return ReliabilityTable(
        strategy=strategy,
        edges=tuple(float(e) for e in edges),
        count=tuple(int(c) for c in count),
        n_bad=tuple(int(c) for c in n_bad),
        mean_predicted=tuple(float(v) for v in _safe_ratio(sum_pred, den)),
        observed_rate=tuple(float(v) for v in _safe_ratio(n_bad.astype(np.float64), den)),
    )


def _reliability(
    bad: BoolArray, s: FloatArray, n_bins: int, strategy: Strategy
) -> ReliabilityTable:
    if strategy == "uniform":
        edges = _uniform_edges(n_bins)
    else:
        edges = np.percentile(s, np.linspace(0.0, 1.0, n_bins + 1) * 100.0)
    ids = _bin_ids(edges, s)
    count = np.bincount(ids, minlength=n_bins)
    n_bad = np.bincount(ids[bad], minlength=n_bins)
    sum_pred = np.bincount(ids, weights=s, minlength=n_bins)
    return _table(strategy, edges, count, n_bad, sum_pred)


def _ece(table: ReliabilityTable) -> float:
    count = np.asarray(table.count, dtype=np.float64)
    obs = np.asarray(table.observed_rate)
    pred = np.asarray(table.mean_predicted)
    nonempty = count > 0
    gap = np.abs(obs[nonempty] - pred[nonempty])
    return float(np.sum(count[nonempty] * gap) / count.sum())


def reliability_table(
    y_true: ArrayLike, score: ArrayLike, n_bins: int = 10, strategy: str = "uniform"
) -> ReliabilityTable:
    """Observed bad rate against mean predicted probability, by score bin.

    ``strategy='uniform'``: edges ``k / n_bins`` on [0, 1]; ``'quantile'``: edges at the
    ``k / n_bins`` percentiles of ``score``. Bins are ``(e[i], e[i + 1]]`` (the first also holds
    ``e[0]``), as ``sklearn.calibration.calibration_curve``, whose output equals the non-empty rows
    here. Empty bins have count 0 and NaN means. Scores must be probabilities in [0, 1].
    """
    bad, s = _inputs(y_true, score)
    k = _count(n_bins, "n_bins")
    strat = _strategy(strategy)
    _need_probabilities(s)
    return _reliability(bad, s, k, strat)


def expected_calibration_error(
    y_true: ArrayLike, score: ArrayLike, n_bins: int = 10, strategy: str = "uniform"
) -> float:
    """ECE: ``sum_b (count_b / n) * |observed_b - mean_predicted_b|`` over the reliability bins."""
    return _ece(reliability_table(y_true, score, n_bins=n_bins, strategy=strategy))


# --------------------------------------------------------------------------------------------
# Stability of the score distribution
# --------------------------------------------------------------------------------------------


def score_band_psi(
    expected_scores: ArrayLike,
    actual_scores: ArrayLike,
    n_bands: int = 10,
    *,
    epsilon: float = PSI_EPSILON,
) -> float:
    """Population stability index of the score distribution over quantile bands.

    Band edges are the ``k / n_bands`` quantiles (``k = 1..n_bands - 1``) of ``expected_scores``
    only, duplicates removed; the first and last bands are open-ended and bands are closed on the
    right. PSI ``= sum((a - e) * ln(a / e))`` over the band proportions ``e`` (expected) and ``a``
    (actual), each proportion below ``epsilon`` (in particular an empty band) raised to
    ``epsilon`` first, without renormalising.
    """
    e_arr = _array(expected_scores, "expected_scores").astype(np.float64, copy=False)
    a_arr = _array(actual_scores, "actual_scores").astype(np.float64, copy=False)
    for arr, field in ((e_arr, "expected_scores"), (a_arr, "actual_scores")):
        if arr.size == 0:
            raise InvalidArgument(
                f"{field} is empty", field=field, remedy=f"pass at least one value in {field}"
            )
        if not bool(np.all(np.isfinite(arr))):
            raise InvalidArgument(
                f"{field} contains NaN or infinite values",
                field=field,
                remedy="drop or impute the missing scores",
            )
    k = _count(n_bands, "n_bands")
    eps = float(epsilon)
    if not (0.0 < eps < 1.0):
        raise InvalidArgument(
            f"epsilon must lie in (0, 1), got {epsilon!r}",
            field="epsilon",
            remedy="use a small positive value such as 1e-4",
        )
    inner = np.unique(np.quantile(e_arr, np.arange(1, k) / k))
    n_cells = inner.size + 1
    e_prop = np.bincount(np.searchsorted(inner, e_arr, side="left"), minlength=n_cells) / e_arr.size
    a_prop = np.bincount(np.searchsorted(inner, a_arr, side="left"), minlength=n_cells) / a_arr.size
    e_p = np.maximum(e_prop, eps)
    a_p = np.maximum(a_prop, eps)
    return float(np.sum((a_p - e_p) * np.log(a_p / e_p)))


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


def classification_report(
    y_true: ArrayLike, score: ArrayLike, threshold: float, n_bins: int = 10
) -> ClassificationMetrics:
    """All the metrics above at once; ``score`` must be probabilities in [0, 1].

    The reliability table and ECE use uniform bins. Needs both classes.
    """
    bad, s = _inputs(y_true, score)
    t = _threshold(threshold)
    k = _count(n_bins, "n_bins")
    n_bad, n_good = _need_both_classes(bad, "the classification report")
    _need_probabilities(s)
    auc = _auc(bad, s, None)
    ks = _ks(bad, s, n_bad, n_good)
    prf = _prf(_confusion(bad, s, t))
    table = _reliability(bad, s, k, "uniform")
    return ClassificationMetrics(
        n=int(bad.size),
        n_bad=n_bad,
        bad_rate=n_bad / bad.size,
        threshold=t,
        auc=auc,
        gini=2.0 * auc - 1.0,
        ks=ks.statistic,
        ks_threshold=ks.threshold,
        precision=prf.precision,
        recall=prf.recall,
        f1=prf.f1,
        brier=float(np.mean((s - bad) ** 2)),
        ece=_ece(table),
        reliability=table,
    )


# --------------------------------------------------------------------------------------------
# Streaming
# --------------------------------------------------------------------------------------------


def _accumulator_edges(edges: ArrayLike | None) -> FloatArray:
    """A writable copy of ``edges`` (default: 1,000 equal bins on [0, 1]), checked to be at least
    two finite, strictly increasing values."""
    if edges is None:
        return _uniform_edges(DEFAULT_ACCUMULATOR_BINS)
    e = _array(edges, "edges").astype(np.float64, copy=True)
    if e.size < 2 or not bool(np.all(np.isfinite(e))) or not bool(np.all(np.diff(e) > 0)):
        raise InvalidArgument(
            "edges must be at least two finite, strictly increasing values",
            field="edges",
            remedy="pass sorted distinct bin edges, e.g. np.linspace(0, 1, 1001)",
        )
    return e


class BinnedScoreAccumulator:
    """Mergeable per-bin counts of bads and goods over fixed score edges.

    Edges default to ``k / 1000`` for ``k = 0..1000`` (1,000 equal-width bins on [0, 1]); pass
    ``edges`` (strictly increasing, finite) for other scales, e.g. scorecard points. Bins are
    closed on the right like the calibration bins, and every score must lie within
    ``[edges[0], edges[-1]]``. ``update`` adds a chunk in place, ``merge`` returns a new
    accumulator equal to one pass over both (counts exactly, float sums up to rounding), and
    ``result`` computes:

    * **AUC** with all pairs in the same bin counted as ties (one half). Pairs in different bins are
      ordered exactly, so only within-bin pairs can be wrong, each by at most one half:
      ``|AUC_binned - AUC_exact| <= auc_bound = sum_b bad_b * good_b / (2 * n_bad * n_good)``
      (half the cruder ``sum_b bad_b * good_b / (n_bad * n_good)``).
    * **KS** at the bin edges: ``KS_binned <= KS_exact <= KS_binned + ks_bound`` with
      ``ks_bound = max_b max(bad_b / n_bad, good_b / n_good)``, since within one bin either CDF
      can move by at most that bin's share.
    * **Brier** exactly (the sum of squared errors is accumulated), meaningful for probabilities.
    * The **reliability table** and **ECE** exactly when the uniform ``k / n_bins`` edges are all
      accumulator edges (e.g. any ``n_bins`` dividing 1000 with the default edges) and the
      accumulator lies within [0, 1]; otherwise ``None``.
    """

    def __init__(self, edges: ArrayLike | None = None) -> None:
        e = _accumulator_edges(edges)
        e.setflags(write=False)
        self._edges: FloatArray = e
        m = e.size - 1
        self._bad = np.zeros(m, dtype=np.int64)
        self._good = np.zeros(m, dtype=np.int64)
        self._sum_score = np.zeros(m, dtype=np.float64)
        self._sum_sq_err = 0.0

    @property
    def edges(self) -> FloatArray:
        return self._edges

    @property
    def n_bins(self) -> int:
        return int(self._edges.size - 1)

    @property
    def bad_counts(self) -> NDArray[np.int64]:
        return self._bad.copy()

    @property
    def good_counts(self) -> NDArray[np.int64]:
        return self._good.copy()

    @property
    def score_sums(self) -> FloatArray:
        return self._sum_score.copy()

    @property
    def sum_squared_error(self) -> float:
        return self._sum_sq_err

    @property
    def n(self) -> int:
        return int(self._bad.sum() + self._good.sum())

    def update(self, y_true: ArrayLike, score: ArrayLike) -> None:
        """Add a chunk of labelled scores (in place); an empty chunk is allowed."""
        bad, s = _inputs(y_true, score, allow_empty=True)
        if bad.size == 0:
            return
        lo, hi = float(self._edges[0]), float(self._edges[-1])
        if bool(np.any((s < lo) | (s > hi))):
            raise InvalidArgument(
                f"score must lie within the accumulator's edges [{lo}, {hi}]; got values from "
                f"{float(s.min())} to {float(s.max())}",
                field="score",
                remedy="create the accumulator with edges that cover the score's range",
            )
        m = self.n_bins
        ids = _bin_ids(self._edges, s)
        self._bad += np.bincount(ids[bad], minlength=m)
        self._good += np.bincount(ids[~bad], minlength=m)
        self._sum_score += np.bincount(ids, weights=s, minlength=m)
        self._sum_sq_err += float(np.sum((s - bad) ** 2))

    def merge(self, other: BinnedScoreAccumulator) -> BinnedScoreAccumulator:
        """A new accumulator holding both; the edges must be identical."""
        if not isinstance(other, BinnedScoreAccumulator) or not np.array_equal(
            self._edges, other._edges
        ):
            raise InvalidArgument(
                "can only merge accumulators with identical edges",
                field="other",
                remedy="create every partition's accumulator with the same edges",
            )
        out = BinnedScoreAccumulator(self._edges)
        out._bad = self._bad + other._bad
        out._good = self._good + other._good
        out._sum_score = self._sum_score + other._sum_score
        out._sum_sq_err = self._sum_sq_err + other._sum_sq_err
        return out

    def to_state(self) -> dict[str, Any]:
        """Plain JSON types; edges as hex text so they round-trip exactly."""
        return {
            "edges": [float(e).hex() for e in self._edges],
            "bad": self._bad.tolist(),
            "good": self._good.tolist(),
            "sum_score": self._sum_score.tolist(),
            "sum_sq_err": self._sum_sq_err,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> BinnedScoreAccumulator:
        out = cls(np.array([float.fromhex(e) for e in state["edges"]], dtype=np.float64))
        m = out.n_bins
        bad = np.asarray(state["bad"], dtype=np.int64)
        good = np.asarray(state["good"], dtype=np.int64)
        sums = np.asarray(state["sum_score"], dtype=np.float64)
        if not bad.shape == good.shape == sums.shape == (m,):
            raise InvalidArgument(
                "the state's counts do not match its edges",
                field="state",
                remedy="pass a state written by BinnedScoreAccumulator.to_state",
            )
        out._bad, out._good, out._sum_score = bad, good, sums
        out._sum_sq_err = float(state["sum_sq_err"])
        return out

    def reliability_table(self, n_bins: int = 10) -> ReliabilityTable | None:
        """The uniform reliability table (exact), or ``None`` if its edges do not align."""
        k = _count(n_bins, "n_bins")
        target = _uniform_edges(k)
        e = self._edges
        if e[0] < 0.0 or e[-1] > 1.0 or not bool(np.all(np.isin(target[1:-1], e))):
            return None
        # Accumulator bin j is (e[j], e[j+1]]; it lies inside the target bin of its upper edge.
        coarse = _bin_ids(target, e[1:])
        count = np.bincount(coarse, weights=self._bad + self._good, minlength=k)
        n_bad = np.bincount(coarse, weights=self._bad, minlength=k)
        sum_pred = np.bincount(coarse, weights=self._sum_score, minlength=k)
        return _table("uniform", target, count.astype(np.int64), n_bad.astype(np.int64), sum_pred)

    def result(self, n_bins: int = 10) -> ApproximateMetrics:
        """Approximate AUC and KS with their bounds, exact Brier and (if aligned) calibration."""
        b = self._bad.astype(np.float64)
        g = self._good.astype(np.float64)
        n_bad = int(self._bad.sum())
        n_good = int(self._good.sum())
        if n_bad == 0 or n_good == 0:
            missing = "bad (1)" if n_bad == 0 else "good (0)"
            raise InvalidArgument(
                f"the accumulator has no {missing} row; AUC and KS need both classes",
                field="y_true",
                remedy="update the accumulator with data containing both bads and goods",
            )
        pairs = float(n_bad) * float(n_good)
        good_below = np.cumsum(g) - g
        auc = float(np.sum(b * (good_below + 0.5 * g))) / pairs
        auc_bound = 0.5 * float(np.sum(b * g)) / pairs
        # CDFs at the inner edges e[1..m-1] (scores <= edge); at e[m] both are 1. The maximum is
        # located on exact integers, the first (lowest) edge winning ties.
        cum_bad = np.cumsum(self._bad)[:-1]
        cum_good = np.cumsum(self._good)[:-1]
        if cum_bad.size == 0:
            ks, ks_edge = 0.0, float(self._edges[-1])
        else:
            j = int(np.argmax(np.abs(cum_bad * n_good - cum_good * n_bad)))
            ks = float(abs(cum_bad[j] / n_bad - cum_good[j] / n_good))
            ks_edge = float(self._edges[j + 1])
        ks_bound = float(np.max(np.maximum(b / n_bad, g / n_good)))
        n = n_bad + n_good
        table = self.reliability_table(n_bins)
        return ApproximateMetrics(
            n=n,
            n_bad=n_bad,
            bad_rate=n_bad / n,
            auc=auc,
            auc_bound=auc_bound,
            gini=2.0 * auc - 1.0,
            ks=ks,
            ks_edge=ks_edge,
            ks_bound=ks_bound,
            brier=self._sum_sq_err / n,
            reliability=table,
            ece=None if table is None else _ece(table),
        )


# --------------------------------------------------------------------------------------------
# Hosmer-Lemeshow
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HosmerLemeshowGroup:
    """One risk group of the Hosmer-Lemeshow table.

    ``lower`` and ``upper`` are the smallest and largest predicted probability in the group,
    ``observed`` the number of events (``y == 1``) and ``expected`` the sum of the predicted
    probabilities; the non-event columns are ``count - observed`` and ``count - expected``.
    """

    lower: float
    upper: float
    count: int
    observed: int
    expected: float

    @property
    def mean_predicted(self) -> float:
        return self.expected / self.count

    @property
    def observed_rate(self) -> float:
        return self.observed / self.count


@dataclass(frozen=True, slots=True)
class HosmerLemeshowResult:
    """Hosmer-Lemeshow goodness-of-fit test: ``statistic`` ~ chi-square with ``df`` under H0.

    ``table`` holds the non-empty groups, lowest predicted probabilities first; ``df`` is their
    number minus 2. A small ``p_value`` means the probabilities are miscalibrated.
    """

    statistic: float
    df: int
    p_value: float
    table: tuple[HosmerLemeshowGroup, ...]

    @property
    def n_groups(self) -> int:
        return len(self.table)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able types; an infinite statistic becomes ``None``."""
        return {
            "statistic": _json_float(self.statistic),
            "df": int(self.df),
            "p_value": float(self.p_value),
            "table": [
                {
                    "lower": float(g.lower),
                    "upper": float(g.upper),
                    "count": int(g.count),
                    "observed": int(g.observed),
                    "expected": float(g.expected),
                }
                for g in self.table
            ],
        }


def _hl_terms(observed: FloatArray, expected: FloatArray) -> FloatArray:
    """``(O - E)**2 / E``; a cell with ``E == 0`` adds 0 if ``O == 0`` and infinity otherwise."""
    out = np.where(observed > 0, np.inf, 0.0)
    np.divide((observed - expected) ** 2, expected, out=out, where=expected > 0)
    return out


def hosmer_lemeshow(y_true: ArrayLike, prob: ArrayLike, n_groups: int = 10) -> HosmerLemeshowResult:
    """Hosmer-Lemeshow test of calibration over quantile groups of the predicted probability.

    Conventions:

    * **Groups.** Edges are ``np.quantile(prob, k / n_groups)`` for ``k = 0..n_groups`` (linear
      interpolation) and groups are closed on the right, ``(e[k], e[k + 1]]``, the first closed on
      both sides (as the quantile bins of ``reliability_table``). Equal probabilities therefore
      always share a group (ties are never split), so heavy ties can leave a group empty or make
      groups unequal; **empty groups are dropped**.
    * **Statistic** ``sum_g (O1 - E1)**2 / E1 + (O0 - E0)**2 / E0`` over the non-empty groups, with
      ``O1`` the events, ``E1`` the sum of the probabilities, ``O0`` the non-events and ``E0`` the
      sum of ``1 - prob``. A cell whose expected count is 0 (all probabilities exactly 0, or
      exactly 1) adds 0 if its observed count is 0 too, and infinity (p-value 0) otherwise.
    * **p-value** ``scipy.stats.chi2.sf(statistic, df)`` with ``df = groups - 2`` (the usual
      reference for a model fitted on other data; no small-sample correction).

    ``prob`` must hold probabilities in [0, 1]; at least 3 non-empty groups are needed (raise
    ``InvalidArgument`` otherwise, e.g. when the model predicts fewer than 3 distinct values).
    """
    from scipy import stats as _sps

    bad = _labels(y_true)
    p = _scores(prob, bad.size, field="prob")
    k = _count(n_groups, "n_groups")
    if k < 3:
        raise InvalidArgument(
            f"n_groups must be >= 3 (df = groups - 2), got {k}",
            field="n_groups",
            remedy="use the customary 10 groups, or at least 3",
        )
    if bool(np.any((p < 0.0) | (p > 1.0))):
        raise InvalidArgument(
            f"prob must hold probabilities in [0, 1]; it ranges from {float(p.min())} to "
            f"{float(p.max())}",
            field="prob",
            remedy="pass calibrated probabilities of the event, not raw scores or points",
        )
    edges = np.quantile(p, np.arange(k + 1) / k)
    ids = _bin_ids(edges, p)
    count = np.bincount(ids, minlength=k)
    keep = count > 0
    if int(np.count_nonzero(keep)) < 3:
        raise InvalidArgument(
            f"the Hosmer-Lemeshow test needs at least 3 non-empty groups, but the predictions "
            f"form {int(np.count_nonzero(keep))} (too few distinct probabilities)",
            field="prob",
            remedy="pass probabilities with at least 3 distinct values, or use the reliability "
            "table instead",
        )
    n = count[keep].astype(np.float64)
    o1 = np.bincount(ids[bad], minlength=k)[keep].astype(np.float64)
    e1 = np.bincount(ids, weights=p, minlength=k)[keep].astype(np.float64)
    e0 = np.bincount(ids, weights=1.0 - p, minlength=k)[keep].astype(np.float64)
    statistic = float(np.sum(_hl_terms(o1, e1)) + np.sum(_hl_terms(n - o1, e0)))
    df = int(n.size - 2)
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    sorted_p = p[order]
    starts = np.searchsorted(sorted_ids, np.flatnonzero(keep), side="left")
    lower = np.minimum.reduceat(sorted_p, starts)
    upper = np.maximum.reduceat(sorted_p, starts)
    table = tuple(
        HosmerLemeshowGroup(
            lower=float(lo),
            upper=float(hi),
            count=int(c),
            observed=int(o),
            expected=float(e),
        )
        for lo, hi, c, o, e in zip(lower, upper, n, o1, e1, strict=True)
    )
    p_value = 0.0 if math.isinf(statistic) else float(_sps.chi2.sf(statistic, df))
    return HosmerLemeshowResult(statistic=statistic, df=df, p_value=p_value, table=table)
