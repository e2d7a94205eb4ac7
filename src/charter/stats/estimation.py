"""Performance estimation without labels, for a model whose score is a calibrated probability.

Labels of a credit model arrive months after the decision. Until then, if the score ``p`` is a
*calibrated* probability of the event ("bad", label 1), each row's label can be treated as an
independent ``Bernoulli(p_i)`` draw, and the performance the labels will reveal can be estimated
from the scores alone (confidence-based performance estimation). Everything here holds **only
under that calibration assumption**: a model that is miscalibrated on the current population
(concept drift, a changed meaning of the score) makes these estimates wrong, and nothing in this
module can detect it. Covariate shift (new applicants, same ``P(bad | x)``) is exactly the case it
handles: the estimates follow the shifted score distribution.

Conventions (pinned by tests):

* **Decision.** A row is *declined* (predicted bad) when ``score >= threshold`` and *approved*
  otherwise, as ``charter.stats.classification.confusion_at``.
* **Expected confusion at the threshold** is exact, whatever the bins: ``tp`` is the sum of ``p``
  over the declined rows (the expected bads among them), ``fp`` the number of declined rows minus
  ``tp``, ``fn`` the sum of ``p`` over approved rows and ``tn`` the approved rows minus ``fn``.
  ``expected_bads = tp + fn`` and ``bad_rate = expected_bads / n``; ``approval_rate`` is the
  (exact, non-random) share of rows below the threshold.
* **Ratios.** ``precision = tp / n_declined`` is the exact expectation of the realised precision,
  because the number of declines does not depend on the labels; ``recall = tp / (tp + fn)`` and
  ``f1 = 2 tp / (2 tp + fp + fn)`` are ratios of expectations (the realised ones differ from them by
  ``O(1 / n)`` in expectation). A zero denominator gives 0, as scikit-learn's ``zero_division=0``.
  ``bad_rate_sd = sqrt(sum p (1 - p)) / n`` and ``precision_sd = sqrt(sum_declined p (1 - p)) /
  n_declined`` are the exact standard deviations of the realised bad rate and precision.
* **Bins.** The AUC works on fixed score bins: by default 1,000 equal-width bins with edges
  ``k / 1000``; any strictly increasing ``edges`` from 0 to 1 may be given. Bins are closed on
  the right, ``(e[j], e[j + 1]]``, the first also holding ``e[0]`` (as ``BinnedScoreAccumulator``
  and the calibration bins). Per bin the accumulator keeps the row count ``n_b``,
  ``S1_b = sum p`` and ``S2_b = sum p**2``.
* **Ties.** A bad and a good in the same bin count one half, as tied scores do in the AUC; pairs in
  different bins are ordered by their bins. Within-bin pairs are therefore the only approximation:
  the binned AUC is within ``auc_bin_bound`` (half the expected share of same-bin bad-good pairs)
  of the AUC over the exact scores, in expectation. With the default bins it is negligible.

Expected AUC
------------
Write ``B_b`` for the number of bads in bin ``b`` (bins in score order) and ``G_b = n_b - B_b`` for
the goods. The realised binned AUC is ``N / D`` with ``N = sum_b B_b (sum_{c<b} G_c + G_b / 2)``
(correctly ordered pairs, same-bin pairs one half) and ``D = B G`` over all rows. Under calibration
``B_b`` is a sum of independent Bernoullis, so ``E[B_b] = S1_b`` and ``Var(B_b) = S1_b - S2_b``.

* Different bins hold different rows, so ``E[B_b G_c] = S1_b (n_c - S1_c)`` for ``c != b``.
* Within a bin a row cannot pair with itself: ``E[B_b G_b] = n_b S1_b - E[B_b**2]
  = n_b S1_b - (S1_b - S2_b) - S1_b**2 = S1_b (n_b - S1_b) - (S1_b - S2_b)``.
* The same identity over all rows gives ``E[D] = S1 (n - S1) - (S1 - S2)``.

``auc = E[N] / E[D]``. The realised AUC is a ratio, so this is not exactly its expectation (nor is
the expectation defined when a draw has only one class); it is the standard estimate, a weighted
average of the pairwise probabilities ``P(i bad, j good) = p_i (1 - p_j)``, and its bias is
``O(1 / n)``. It is NaN when ``E[D] = 0`` (fewer than two rows, or every score exactly 0 or 1).

The band
--------
``auc_low`` and ``auc_high`` are the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles
(``numpy.quantile``, linear interpolation) of the binned AUC over ``n_simulations`` parametric
bootstrap draws: in every bin ``B_b ~ Binomial(n_b, S1_b / n_b)`` independently (a seeded
``numpy.random.Generator``, vectorised over draws), and ``auc_sd`` is their standard deviation
(``ddof=1``). Draws with no bad or no good have no AUC and are left out; with fewer than two
usable draws the band and ``auc_sd`` are NaN.

**What the band covers:** the *sampling variability of the AUC that will be realised* on these
rows when their labels arrive, *given that the scores are calibrated*. It is a prediction
interval for that realised AUC, not a confidence interval for a population AUC, and it does
**not** cover miscalibration or concept drift: if the scores are no longer calibrated, the
realised AUC may fall far outside it. Within a bin the binomial variance ``n_b q_b (1 - q_b)``
(``q_b = S1_b / n_b``) is at least the exact ``S1_b - S2_b`` (by Cauchy-Schwarz), so the band is
slightly conservative; the excess is ``n_b`` times the variance of ``p`` within the bin, tiny with
narrow bins.

Streaming
---------
``EstimationAccumulator`` adds chunks with ``update``, combines partitions with ``merge`` (equal to
one pass: counts exactly, float sums up to rounding) and serialises with ``to_state`` /
``from_state`` (plain JSON types, so partitions computed on Spark workers can be merged on the
driver). Besides the bins it keeps exact totals above and below the threshold (count, ``sum p``,
``sum p**2``), so the threshold need not be a bin edge.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from charter.errors import InvalidArgument
from charter.stats.classification import (
    _accumulator_edges,
    _array,
    _bin_ids,
    _json_float,
    _threshold,
)

__all__ = [
    "STATE_KIND",
    "STATE_VERSION",
    "EstimatedMetrics",
    "EstimationAccumulator",
    "estimate",
]

STATE_KIND = "charter.stats.estimation.EstimationAccumulator"
STATE_VERSION = 1
_MAX_DRAW_CELLS = 4_000_000  # simulated bin counts held in memory at once

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


# --------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EstimatedMetrics:
    """Performance expected from the scores alone, assuming they are calibrated probabilities.

    Counts ``tp``, ``fp``, ``tn``, ``fn`` and ``expected_bads`` are expectations (floats);
    ``n``, ``n_declined`` and ``n_approved`` are exact. ``auc`` is ``E[N] / E[D]`` over the bins
    (see the module docstring); ``auc_low`` and ``auc_high`` bound the AUC that will be realised
    on these rows with probability ``level`` *if the scores are calibrated*, and ``auc_sd`` is its
    standard deviation, both from ``n_simulations`` parametric bootstrap draws seeded with ``seed``.
    """

    n: int
    threshold: float
    expected_bads: float
    bad_rate: float
    bad_rate_sd: float
    n_declined: int
    n_approved: int
    tp: float
    fp: float
    tn: float
    fn: float
    precision: float
    precision_sd: float
    recall: float
    f1: float
    approval_rate: float
    auc: float
    auc_low: float
    auc_high: float
    auc_sd: float
    auc_bin_bound: float
    level: float
    n_simulations: int
    seed: int

    @property
    def gini(self) -> float:
        """``2 * auc - 1``."""
        return 2.0 * self.auc - 1.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able types; NaN (an undefined AUC or band) becomes ``None``."""
        return {
            "n": int(self.n),
            "threshold": float(self.threshold),
            "expected_bads": float(self.expected_bads),
            "bad_rate": float(self.bad_rate),
            "bad_rate_sd": float(self.bad_rate_sd),
            "n_declined": int(self.n_declined),
            "n_approved": int(self.n_approved),
            "tp": float(self.tp),
            "fp": float(self.fp),
            "tn": float(self.tn),
            "fn": float(self.fn),
            "precision": float(self.precision),
            "precision_sd": float(self.precision_sd),
            "recall": float(self.recall),
            "f1": float(self.f1),
            "approval_rate": float(self.approval_rate),
            "auc": _json_float(self.auc),
            "gini": _json_float(self.gini),
            "auc_low": _json_float(self.auc_low),
            "auc_high": _json_float(self.auc_high),
            "auc_sd": _json_float(self.auc_sd),
            "auc_bin_bound": _json_float(self.auc_bin_bound),
            "level": float(self.level),
            "n_simulations": int(self.n_simulations),
            "seed": int(self.seed),
        }


# --------------------------------------------------------------------------------------------
# Validation at the boundary
# --------------------------------------------------------------------------------------------


def _edges(edges: ArrayLike | None) -> FloatArray:
    e = _accumulator_edges(edges)
    if e[0] != 0.0 or e[-1] != 1.0:
        raise InvalidArgument(
            f"edges must run from 0 to 1 (every probability needs a bin), got "
            f"{float(e[0])} to {float(e[-1])}",
            field="edges",
            remedy="start the edges at 0.0 and end them at 1.0",
        )
    e.setflags(write=False)
    return e


def _probability_threshold(threshold: float) -> float:
    t = _threshold(threshold)
    if not 0.0 <= t <= 1.0:
        raise InvalidArgument(
            f"threshold must lie in [0, 1] (the score is a probability), got {t}",
            field="threshold",
            remedy="pass the probability cut-off at which applications are declined",
        )
    return t


def _probabilities(scores: ArrayLike) -> FloatArray:
    p = _array(scores, "score").astype(np.float64, copy=False)
    finite = np.isfinite(p)
    if not bool(np.all(finite)):
        raise InvalidArgument(
            f"score contains {int(np.count_nonzero(~finite))} NaN or infinite values",
            field="score",
            remedy="drop or impute the rows whose score is missing",
        )
    if p.size and bool(np.any((p < 0.0) | (p > 1.0))):
        raise InvalidArgument(
            f"score must hold probabilities in [0, 1]; it ranges from {float(p.min())} to "
            f"{float(p.max())}",
            field="score",
            remedy="pass the model's calibrated probability of the event, not points or log-odds",
        )
    return p


def _int_at_least(value: Any, field: str, minimum: int) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        k = operator.index(value)
    except TypeError as exc:
        raise InvalidArgument(
            f"{field} must be an integer, got {value!r}",
            field=field,
            remedy=f"pass {field} as an integer >= {minimum}",
        ) from exc
    if k < minimum:
        raise InvalidArgument(
            f"{field} must be >= {minimum}, got {k}",
            field=field,
            remedy=f"pass {field} >= {minimum}",
        )
    return int(k)


def _level(level: float) -> float:
    try:
        x = float(level)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"level must be a number, got {level!r}",
            field="level",
            remedy="pass a coverage probability such as 0.95",
        ) from exc
    if not 0.0 < x < 1.0:
        raise InvalidArgument(
            f"level must lie strictly between 0 and 1, got {level!r}",
            field="level",
            remedy="pass a coverage probability such as 0.95",
        )
    return x


# --------------------------------------------------------------------------------------------
# The computation
# --------------------------------------------------------------------------------------------


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0.0 else 0.0


def _expected_pairs(
    count: FloatArray, s1: FloatArray, s2: FloatArray
) -> tuple[float, float, float]:
    """``E[N]``, ``E[D]`` and the expected same-bin bad-good pairs (see the module docstring)."""
    goods = count - s1
    goods_below = np.cumsum(goods) - goods
    # E[B_b G_b] = S1 (n - S1) - Var(B_b): 0 for a bin of one row, clipped at 0 against rounding.
    same = np.where(count > 1, np.maximum(s1 * goods - (s1 - s2), 0.0), 0.0)
    same_total = float(np.sum(same))
    numerator = float(np.sum(s1 * goods_below)) + 0.5 * same_total
    n, t1, t2 = float(count.sum()), float(s1.sum()), float(s2.sum())
    denominator = max(t1 * (n - t1) - (t1 - t2), 0.0)
    return numerator, denominator, same_total


def _simulated_aucs(
    count: IntArray, s1: FloatArray, n_simulations: int, rng: np.random.Generator
) -> FloatArray:
    """Binned AUC of each draw ``B_b ~ Binomial(n_b, S1_b / n_b)``; NaN where undefined."""
    keep = count > 0
    n_b = count[keep]
    q_b = np.clip(s1[keep] / n_b, 0.0, 1.0)
    m = int(n_b.size)
    out = np.full(n_simulations, np.nan, dtype=np.float64)
    if m == 0:
        return out
    chunk = max(1, _MAX_DRAW_CELLS // m)
    total = float(n_b.sum())
    for start in range(0, n_simulations, chunk):
        k = min(chunk, n_simulations - start)
        bads = rng.binomial(n_b, q_b, size=(k, m)).astype(np.float64)
        goods = n_b - bads
        goods_below = np.cumsum(goods, axis=1) - goods
        numerator = np.sum(bads * (goods_below + 0.5 * goods), axis=1)
        n_bad = bads.sum(axis=1)
        pairs = n_bad * (total - n_bad)
        np.divide(numerator, pairs, out=out[start : start + k], where=pairs > 0)
    return out


# --------------------------------------------------------------------------------------------
# The accumulator
# --------------------------------------------------------------------------------------------


class EstimationAccumulator:
    """Mergeable sums of calibrated scores for label-free performance estimation.

    ``threshold`` is the decline cut-off (declined when ``score >= threshold``), in [0, 1].
    ``edges`` default to ``k / 1000`` for ``k = 0..1000``; custom edges must be strictly increasing
    from 0.0 to 1.0. Per bin it keeps the row count, ``sum p`` and ``sum p**2``, and exact totals of
    the same three above and below the threshold. ``update`` adds a chunk in place; ``merge``
    returns a new accumulator equal to one pass over both; ``to_state`` / ``from_state``
    round-trip through plain JSON types; ``result`` computes :class:`EstimatedMetrics`.
    """

    def __init__(self, threshold: float, edges: ArrayLike | None = None) -> None:
        self._threshold = _probability_threshold(threshold)
        self._edges: FloatArray = _edges(edges)
        m = self._edges.size - 1
        self._count: IntArray = np.zeros(m, dtype=np.int64)
        self._s1: FloatArray = np.zeros(m, dtype=np.float64)
        self._s2: FloatArray = np.zeros(m, dtype=np.float64)
        self._n_above = 0
        self._s1_above = 0.0
        self._s2_above = 0.0
        self._n_below = 0
        self._s1_below = 0.0
        self._s2_below = 0.0

    # -- read-only views -----------------------------------------------------------------------

    @property
    def threshold(self) -> float:
        return self._threshold

    @property
    def edges(self) -> FloatArray:
        return self._edges

    @property
    def n_bins(self) -> int:
        return int(self._edges.size - 1)

    @property
    def n(self) -> int:
        return self._n_above + self._n_below

    @property
    def counts(self) -> IntArray:
        return self._count.copy()

    @property
    def sum_p(self) -> FloatArray:
        return self._s1.copy()

    @property
    def sum_p2(self) -> FloatArray:
        return self._s2.copy()

    # -- update / merge --------------------------------------------------------------------------

    def update(self, scores: ArrayLike) -> EstimationAccumulator:
        """Add a chunk of scores (in place) and return ``self``; an empty chunk is allowed."""
        p = _probabilities(scores)
        if p.size == 0:
            return self
        m = self.n_bins
        ids = _bin_ids(self._edges, p)
        sq = p * p
        self._count += np.bincount(ids, minlength=m)
        self._s1 += np.bincount(ids, weights=p, minlength=m)
        self._s2 += np.bincount(ids, weights=sq, minlength=m)
        above = p >= self._threshold
        n_above = int(np.count_nonzero(above))
        self._n_above += n_above
        self._n_below += int(p.size) - n_above
        self._s1_above += float(np.sum(p[above]))
        self._s2_above += float(np.sum(sq[above]))
        self._s1_below += float(np.sum(p[~above]))
        self._s2_below += float(np.sum(sq[~above]))
        return self

    def merge(self, other: EstimationAccumulator) -> EstimationAccumulator:
        """A new accumulator holding both; threshold and edges must be identical."""
        if not isinstance(other, EstimationAccumulator):
            raise InvalidArgument(
                f"can only merge another EstimationAccumulator, got {type(other).__name__}",
                field="other",
                remedy="merge accumulators of the same kind",
            )
        if other._threshold != self._threshold:
            raise InvalidArgument(
                f"can only merge accumulators with the same threshold, got {self._threshold} "
                f"and {other._threshold}",
                field="other",
                remedy="create every partition's accumulator with the same threshold",
            )
        if not np.array_equal(self._edges, other._edges):
            raise InvalidArgument(
                "can only merge accumulators with identical edges",
                field="other",
                remedy="create every partition's accumulator with the same edges",
            )
        out = EstimationAccumulator(self._threshold, self._edges)
        out._count = self._count + other._count
        out._s1 = self._s1 + other._s1
        out._s2 = self._s2 + other._s2
        out._n_above = self._n_above + other._n_above
        out._s1_above = self._s1_above + other._s1_above
        out._s2_above = self._s2_above + other._s2_above
        out._n_below = self._n_below + other._n_below
        out._s1_below = self._s1_below + other._s1_below
        out._s2_below = self._s2_below + other._s2_below
        return out

    # -- serialisation ---------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """The accumulator as plain JSON types (floats round-trip exactly through ``json``)."""
        return {
            "kind": STATE_KIND,
            "version": STATE_VERSION,
            "threshold": self._threshold,
            "edges": [float(e) for e in self._edges],
            "count": [int(c) for c in self._count],
            "sum_p": [float(v) for v in self._s1],
            "sum_p2": [float(v) for v in self._s2],
            "above": {
                "count": self._n_above,
                "sum_p": self._s1_above,
                "sum_p2": self._s2_above,
            },
            "below": {
                "count": self._n_below,
                "sum_p": self._s1_below,
                "sum_p2": self._s2_below,
            },
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> EstimationAccumulator:
        """Rebuild an accumulator from ``to_state()``; a bad state raises ``InvalidArgument``."""

        def bad(why: str) -> InvalidArgument:
            return InvalidArgument(
                f"not a valid EstimationAccumulator state: {why}",
                field="state",
                remedy="pass the dict produced by EstimationAccumulator.to_state(), unchanged",
            )

        if not isinstance(state, Mapping):
            raise bad(f"expected a mapping, got {type(state).__name__}")
        if state.get("kind") != STATE_KIND or state.get("version") != STATE_VERSION:
            raise bad(
                f"kind/version must be {STATE_KIND!r}/{STATE_VERSION}, got "
                f"{state.get('kind')!r}/{state.get('version')!r}"
            )
        try:
            out = cls(state["threshold"], state["edges"])
        except KeyError as exc:
            raise bad(f"missing key {exc}") from exc
        except InvalidArgument as exc:
            raise bad(exc.message) from exc
        m = out.n_bins
        try:
            count = np.asarray(state["count"])
            s1 = np.asarray(state["sum_p"], dtype=np.float64)
            s2 = np.asarray(state["sum_p2"], dtype=np.float64)
            parts = [
                (
                    state[side]["count"],
                    float(state[side]["sum_p"]),
                    float(state[side]["sum_p2"]),
                )
                for side in ("above", "below")
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"missing or malformed entry ({exc})") from exc
        if count.shape != (m,) or s1.shape != (m,) or s2.shape != (m,):
            raise bad(f"count, sum_p and sum_p2 must each hold {m} values, one per bin")
        if count.dtype.kind not in "iu" or bool(np.any(count < 0)):
            raise bad("count must hold non-negative integers")
        sums = np.concatenate([s1, s2, [v for _, a, b in parts for v in (a, b)]])
        if not bool(np.all(np.isfinite(sums))) or bool(np.any(sums < 0)):
            raise bad("the sums must be finite and non-negative")
        counts = [c for c, _, _ in parts]
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
            raise bad("the above/below counts must be non-negative integers")
        if sum(counts) != int(count.sum()):
            raise bad("the above/below counts do not add up to the bin counts")
        out._count = count.astype(np.int64)
        out._s1 = s1.copy()
        out._s2 = s2.copy()
        (out._n_above, out._s1_above, out._s2_above) = parts[0]
        (out._n_below, out._s1_below, out._s2_below) = parts[1]
        return out

    # -- the result ------------------------------------------------------------------------------

    def result(
        self, n_simulations: int = 200, seed: int = 0, level: float = 0.95
    ) -> EstimatedMetrics:
        """The expected metrics and the AUC band (see the module docstring)."""
        sims = _int_at_least(n_simulations, "n_simulations", 2)
        seed_ = _int_at_least(seed, "seed", 0)
        lvl = _level(level)
        n = self.n
        if n == 0:
            raise InvalidArgument(
                "the accumulator holds no scores; there is nothing to estimate",
                field="score",
                remedy="update the accumulator with the window's scores before asking for a result",
            )
        tp = self._s1_above
        fn = self._s1_below
        fp = max(self._n_above - tp, 0.0)
        tn = max(self._n_below - fn, 0.0)
        expected_bads = tp + fn
        var_bads = max(expected_bads - (self._s2_above + self._s2_below), 0.0)
        var_tp = max(tp - self._s2_above, 0.0)

        count = self._count.astype(np.float64)
        numerator, denominator, same = _expected_pairs(count, self._s1, self._s2)
        if denominator > 0.0:
            auc = numerator / denominator
            bin_bound = 0.5 * same / denominator
        else:
            auc = bin_bound = math.nan
        aucs = _simulated_aucs(self._count, self._s1, sims, np.random.default_rng(seed_))
        valid = aucs[np.isfinite(aucs)]
        if valid.size >= 2:
            low, high = np.quantile(valid, [(1.0 - lvl) / 2.0, (1.0 + lvl) / 2.0])
            auc_low, auc_high = float(low), float(high)
            auc_sd = float(np.std(valid, ddof=1))
        else:
            auc_low = auc_high = auc_sd = math.nan
        return EstimatedMetrics(
            n=n,
            threshold=self._threshold,
            expected_bads=expected_bads,
            bad_rate=expected_bads / n,
            bad_rate_sd=math.sqrt(var_bads) / n,
            n_declined=self._n_above,
            n_approved=self._n_below,
            tp=tp,
            fp=fp,
            tn=tn,
            fn=fn,
            precision=_ratio(tp, float(self._n_above)),
            precision_sd=_ratio(math.sqrt(var_tp), float(self._n_above)),
            recall=_ratio(tp, expected_bads),
            f1=_ratio(2.0 * tp, 2.0 * tp + fp + fn),
            approval_rate=self._n_below / n,
            auc=auc,
            auc_low=auc_low,
            auc_high=auc_high,
            auc_sd=auc_sd,
            auc_bin_bound=bin_bound,
            level=lvl,
            n_simulations=sims,
            seed=seed_,
        )


def estimate(
    scores: ArrayLike,
    threshold: float,
    *,
    edges: ArrayLike | None = None,
    n_simulations: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> EstimatedMetrics:
    """Label-free metrics of one batch of calibrated scores (one ``EstimationAccumulator`` pass)."""
    acc = EstimationAccumulator(threshold, edges)
    acc.update(scores)
    return acc.result(n_simulations=n_simulations, seed=seed, level=level)
