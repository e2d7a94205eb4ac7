"""Model-agnostic Shapley values of a model's log-odds for one row, against a background sample.

The game
    ``f`` is the model's log-odds, ``x`` the row, ``B`` the background (rows ``b_1 .. b_m``) and
    ``N`` the features. A coalition ``S`` is worth ``v(S) = mean_i f(x_S, b_i[N \\ S])``: the
    features in ``S`` take the row's values, the others the background row's (the
    *interventional* or *marginal* expectation; the background's joint distribution is kept
    for the features outside ``S``, nothing is conditioned on). The Shapley value ``phi_j`` is the
    average of ``v(S + j) - v(S)`` over the orderings of ``N``, and the values are *efficient*:
    ``sum_j phi_j == f(x) - v(empty) == f(x) - mean_i f(b_i)``. For a linear logit this is
    ``w_j * (x_j - mean_i b_ij)``, the same number the compiled linear scorer reports against a
    background (:class:`charter.serving.compiled.LinearScorer`).

:func:`exact_shapley` (the oracle)
    Enumerates the ``2^d`` coalitions: ``2^d * m`` model evaluations, refused above
    :data:`MAX_EXACT_FEATURES` features.

:func:`sampling_shapley` (the estimator)
    Permutation sampling with antithetic pairs: ``n_permutations / 2`` orderings are drawn with
    ``numpy.random.default_rng(seed)`` and each is used together with its reverse. Every
    ordering is walked once per background row: starting from ``b_i`` the features are switched to
    the row's values in that order, and each feature is credited with the change of ``f`` at its
    switch. The estimate is the mean of those credits over (ordering, background row) pairs.

    * *Unbiased* for :func:`exact_shapley` on the same background: for a fixed ``b_i`` the
      expected credit over a uniform ordering is the Shapley value of ``S -> f(x_S, b_i[N\\S])``,
      an ordering and its reverse are both uniform, and Shapley values are linear in the game.
    * *Efficient exactly*: each walk telescopes from ``f(b_i)`` to ``f(x)``, so the estimate sums
      to ``f(x) - mean_i f(b_i)`` up to floating-point rounding, whatever the number of orderings.
    * *Error*: the standard error of ``phi_j`` is reported as the standard deviation, over the
      antithetic pairs, of the pair's mean credit, divided by ``sqrt(n_permutations / 2)``; it
      shrinks as ``1 / sqrt(n_permutations)``. It measures the sampling of orderings only: the
      background is used in full (its own sampling from the population is a separate choice,
      see ``background_size`` in :func:`charter.serving.compiled.compile_model`).
    * *Cost*: a feature whose row value equals the background row's value changes nothing when
      switched and is not evaluated, so a walk costs at most ``d - 1`` model evaluations (the two
      ends, ``f(b_i)`` and ``f(x)``, are evaluated once). All evaluations of one call go to the
      model as one batch: at most ``n_permutations * m * (d - 1) + m + 1`` rows.
    * *Deterministic*: the same inputs and seed give the same values, bit for bit.

:func:`background_from_profile`
    A deterministic background drawn from a stored :class:`~charter.stats.sketches.
    ReferenceProfile`. A profile keeps each column's marginal distribution but not the joint
    one, so the sample is drawn from the product of the marginals: per column, ``size`` values
    at the mid-quantiles ``(i + 1/2) / size`` of its distribution (numeric: the lower edge of the
    profile's fine bin holding that quantile, an observed reference value to within one fine bin;
    categorical: levels allocated by largest remainder in proportion to their counts; missing
    values in proportion to the missing count), each column then shuffled with its own seeded
    permutation so that columns are paired at random. Shapley values against it answer "compared
    with a typical applicant whose features vary independently". Categorical levels come back as
    text (profiles store them as text).

Missing values (``None``, NaN, ``pandas.NA``) in the row are values like any other: a coalition
with a missing feature shows the model a missing value there.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from charter.errors import InvalidArgument
from charter.stats.sketches import CategoricalProfile, NumericProfile, ReferenceProfile

__all__ = [
    "DEFAULT_PERMUTATIONS",
    "MAX_EXACT_FEATURES",
    "PredictLogit",
    "ShapleyValues",
    "background_from_profile",
    "exact_shapley",
    "sample_background",
    "sampling_shapley",
    "shapley_values",
]

PredictLogit = Callable[[pd.DataFrame], Any]
"""The model's log-odds for each row of a DataFrame whose columns are the explained features."""

MAX_EXACT_FEATURES = 14
DEFAULT_PERMUTATIONS = 64
MAX_BACKGROUND = 10_000


@dataclass(frozen=True)
class ShapleyValues:
    """Shapley values of the log-odds of one row (see the module docstring for the game).

    ``values[j]`` is feature j's contribution; ``sum(values) == logit - base_value`` up to
    rounding. ``std_errors[j]`` is the Monte Carlo standard error (0.0 for ``"exact"``; NaN
    when only one antithetic pair was drawn). ``n_evaluations`` counts the rows the model scored.
    """

    values: Mapping[str, float]
    std_errors: Mapping[str, float]
    base_value: float
    logit: float
    method: str  # "exact" | "permutation"
    n_permutations: int
    n_background: int
    n_evaluations: int
    seed: int | None = None
    feature_names: tuple[str, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "values": dict(self.values),
            "std_errors": dict(self.std_errors),
            "base_value": self.base_value,
            "logit": self.logit,
            "method": self.method,
            "n_permutations": self.n_permutations,
            "n_background": self.n_background,
            "n_evaluations": self.n_evaluations,
            "seed": self.seed,
        }


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------


def _names(feature_names: object) -> tuple[str, ...]:
    if isinstance(feature_names, str) or not isinstance(feature_names, Sequence | np.ndarray):
        raise InvalidArgument(
            "feature_names must be a sequence of feature names",
            field="feature_names",
            remedy="pass the names of the features to explain",
        )
    names = tuple(feature_names)
    if not names or any(not isinstance(n, str) or not n for n in names):
        raise InvalidArgument(
            f"feature_names must be non-empty strings, got {list(names)[:5]!r}",
            field="feature_names",
            remedy="pass the names of the features to explain",
        )
    if len(set(names)) != len(names):
        raise InvalidArgument(
            "feature_names has duplicates",
            field="feature_names",
            remedy="name every feature once",
        )
    return names


def _row_values(row: object, names: tuple[str, ...]) -> list[Any]:
    if not isinstance(row, Mapping):
        raise InvalidArgument(
            f"row must be a mapping feature -> value, got {type(row).__name__}",
            field="row",
            remedy="pass one row as a dict",
        )
    missing = [n for n in names if n not in row]
    if missing:
        raise InvalidArgument(
            f"feature {missing[0]!r} is missing from the row",
            field=missing[0],
            remedy="send every explained feature (null for a missing value)",
        )
    return [row[n] for n in names]


def _background_columns(background: object, names: tuple[str, ...]) -> list[np.ndarray]:
    if not isinstance(background, pd.DataFrame) or len(background) == 0:
        raise InvalidArgument(
            "background must be a non-empty pandas DataFrame",
            field="background",
            remedy="pass a sample of the training data with the model's columns",
        )
    if len(background) > MAX_BACKGROUND:
        raise InvalidArgument(
            f"background has {len(background)} rows, more than {MAX_BACKGROUND}",
            field="background",
            remedy="pass a sample (sample_background(frame, 100))",
        )
    out = []
    for name in names:
        if name not in background.columns:
            raise InvalidArgument(
                f"background has no column {name!r}",
                field=name,
                remedy="pass a background with every explained feature",
            )
        out.append(background[name].to_numpy())
    return out


def _positive_int(value: object, name: str, remedy: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise InvalidArgument(
            f"{name} must be a positive integer, got {value!r}", field=name, remedy=remedy
        )
    return int(value)


def _seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or int(seed) < 0:
        raise InvalidArgument(
            f"seed must be a non-negative integer, got {seed!r}",
            field="seed",
            remedy="pass seed=0 or another fixed integer",
        )
    return int(seed)


# --------------------------------------------------------------------------------------------
# Building coalition rows
# --------------------------------------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float | np.floating):
        return bool(value != value)
    return False


def _fits(dtype: np.dtype[Any], value: Any) -> str:
    """How ``value`` goes into an array of ``dtype``: "same", "float" (upcast) or "object"."""
    kind = dtype.kind
    real = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    if kind == "f":
        return "same" if real or _is_missing(value) else "object"
    if kind in "iu":
        if isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_):
            info = np.iinfo(dtype)
            return "same" if info.min <= int(value) <= info.max else "object"
        return "float" if real or _is_missing(value) else "object"
    if kind == "b":
        return "same" if isinstance(value, bool | np.bool_) else "object"
    return "object"


def _column(base: np.ndarray, take: np.ndarray, value: Any) -> np.ndarray:
    """``base`` with ``value`` where ``take`` is set (upcast when it does not fit)."""
    if not take.any():
        return base
    how = _fits(base.dtype, value)
    if how == "float":
        out = base.astype(np.float64)
    elif how == "object":
        out = base.astype(object)
    else:
        out = base.copy()
    if out.dtype.kind == "f" and _is_missing(value):
        out[take] = np.nan
    else:
        out[take] = value
    return out


def _frame(
    columns: list[np.ndarray],
    x: list[Any],
    names: tuple[str, ...],
    bidx: np.ndarray,
    take_x: np.ndarray,
) -> pd.DataFrame:
    data = {
        name: _column(col[bidx], take_x[:, j], x[j])
        for j, (name, col) in enumerate(zip(names, columns, strict=True))
    }
    return pd.DataFrame(data, columns=list(names))


def _same(a: Any, b: Any) -> bool:
    if _is_missing(a) or _is_missing(b):
        return _is_missing(a) and _is_missing(b)
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _differs(columns: list[np.ndarray], x: list[Any]) -> np.ndarray:
    """(m, d): does background row i differ from the row in feature j?"""
    m = len(columns[0])
    out = np.ones((m, len(columns)), dtype=bool)
    for j, (col, value) in enumerate(zip(columns, x, strict=True)):
        real = isinstance(value, numbers.Real) and not _is_missing(value)
        if col.dtype.kind in "fiub" and real:
            out[:, j] = col != float(value)
        elif col.dtype.kind == "f" and _is_missing(value):
            out[:, j] = ~np.isnan(col)
        else:
            out[:, j] = [not _same(v, value) for v in col.tolist()]
    return out


def _evaluate(predict_logit: PredictLogit, frame: pd.DataFrame) -> np.ndarray:
    raw = predict_logit(frame)
    try:
        out = np.asarray(raw, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"predict_logit must return numbers, got {type(raw).__name__}: {exc}",
            field="predict_logit",
            remedy="return the model's log-odds as a 1-D float array, one per row",
        ) from None
    if out.shape != (len(frame),):
        raise InvalidArgument(
            f"predict_logit returned {out.size} values for {len(frame)} rows",
            field="predict_logit",
            remedy="return the model's log-odds as a 1-D float array, one per row",
        )
    if not np.isfinite(out).all():
        raise InvalidArgument(
            "predict_logit returned a value that is not finite",
            field="predict_logit",
            remedy="clip probabilities away from 0 and 1 before taking log-odds",
        )
    return out


def _ends(
    predict_logit: PredictLogit,
    columns: list[np.ndarray],
    x: list[Any],
    names: tuple[str, ...],
) -> tuple[float, np.ndarray]:
    """``f(x)`` and ``f(b_i)`` for every background row, in one model call."""
    m, d = len(columns[0]), len(names)
    bidx = np.concatenate([[0], np.arange(m)])
    take = np.zeros((m + 1, d), dtype=bool)
    take[0] = True
    values = _evaluate(predict_logit, _frame(columns, x, names, bidx, take))
    return float(values[0]), values[1:]


# --------------------------------------------------------------------------------------------
# Exact and sampled Shapley values
# --------------------------------------------------------------------------------------------


def shapley_values(
    predict_logit: PredictLogit,
    row: Mapping[str, Any],
    background: pd.DataFrame,
    feature_names: Sequence[str],
    *,
    method: str = "permutation",
    n_permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> ShapleyValues:
    """Shapley values of ``predict_logit`` at ``row`` against ``background`` (full result).

    ``method`` is ``"permutation"`` (:func:`sampling_shapley`) or ``"exact"``
    (:func:`exact_shapley`). ``predict_logit`` receives DataFrames with the columns
    ``feature_names`` (in that order) built from the row's and the background's values.
    """
    names = _names(feature_names)
    x = _row_values(row, names)
    columns = _background_columns(background, names)
    if method == "exact":
        return _exact(predict_logit, x, columns, names)
    if method != "permutation":
        raise InvalidArgument(
            f"method must be 'permutation' or 'exact', got {method!r}",
            field="method",
            remedy="use 'exact' for a few features, 'permutation' otherwise",
        )
    p = _positive_int(n_permutations, "n_permutations", "pass an even number such as 64")
    if p % 2:
        raise InvalidArgument(
            f"n_permutations must be even (orderings come in antithetic pairs), got {p}",
            field="n_permutations",
            remedy=f"pass {p + 1}",
        )
    return _permutation(predict_logit, x, columns, names, p, _seed(seed))


def exact_shapley(
    predict_logit: PredictLogit,
    row: Mapping[str, Any],
    background: pd.DataFrame,
    feature_names: Sequence[str],
) -> dict[str, float]:
    """Exact interventional Shapley values by enumerating every coalition (the test oracle).

    Costs ``2^d * len(background)`` model evaluations; refused above
    :data:`MAX_EXACT_FEATURES` features.
    """
    result = shapley_values(predict_logit, row, background, feature_names, method="exact")
    return dict(result.values)


def sampling_shapley(
    predict_logit: PredictLogit,
    row: Mapping[str, Any],
    background: pd.DataFrame,
    feature_names: Sequence[str],
    *,
    n_permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> dict[str, float]:
    """Permutation-sampling estimate of :func:`exact_shapley` (antithetic pairs, seeded).

    Deterministic for a given ``seed``; efficient exactly (the values sum to ``f(row) -
    mean f(background)``); unbiased, with standard errors in :func:`shapley_values`.
    """
    result = shapley_values(
        predict_logit,
        row,
        background,
        feature_names,
        method="permutation",
        n_permutations=n_permutations,
        seed=seed,
    )
    return dict(result.values)


def _exact(
    predict_logit: PredictLogit,
    x: list[Any],
    columns: list[np.ndarray],
    names: tuple[str, ...],
) -> ShapleyValues:
    d, m = len(names), len(columns[0])
    if d > MAX_EXACT_FEATURES:
        raise InvalidArgument(
            f"exact Shapley values enumerate 2^{d} coalitions; at most {MAX_EXACT_FEATURES} "
            "features are allowed",
            field="feature_names",
            remedy="use method='permutation' (sampling_shapley)",
        )
    fx, fb = _ends(predict_logit, columns, x, names)
    coalitions = np.arange(1 << d, dtype=np.int64)
    bits = ((coalitions[:, None] >> np.arange(d)) & 1).astype(bool)  # (2^d, d)
    inner = coalitions[1:-1]  # the empty and the full coalition are the ends
    take = np.repeat(bits[inner], m, axis=0)
    bidx = np.tile(np.arange(m), inner.size)
    v = np.empty(1 << d, dtype=np.float64)
    v[0] = math.fsum(fb.tolist()) / m
    v[-1] = fx
    if inner.size:
        values = _evaluate(predict_logit, _frame(columns, x, names, bidx, take))
        v[1:-1] = values.reshape(inner.size, m).mean(axis=1)
    sizes = bits.sum(axis=1)
    weight = np.array(
        [math.factorial(s) * math.factorial(d - s - 1) / math.factorial(d) for s in range(d)]
    )
    phi: dict[str, float] = {}
    for j, name in enumerate(names):
        without = coalitions[~bits[:, j]]
        gains = v[without | (1 << j)] - v[without]
        phi[name] = math.fsum((weight[sizes[without]] * gains).tolist())
    return ShapleyValues(
        values=phi,
        std_errors=dict.fromkeys(names, 0.0),
        base_value=float(v[0]),
        logit=fx,
        method="exact",
        n_permutations=0,
        n_background=m,
        n_evaluations=int(inner.size * m + m + 1),
        seed=None,
        feature_names=names,
    )


def _permutation(
    predict_logit: PredictLogit,
    x: list[Any],
    columns: list[np.ndarray],
    names: tuple[str, ...],
    n_permutations: int,
    seed: int,
) -> ShapleyValues:
    d, m, p = len(names), len(columns[0]), n_permutations
    rng = np.random.default_rng(seed)
    perms = np.empty((p, d), dtype=np.int64)
    for i in range(p // 2):
        order = rng.permutation(d)
        perms[2 * i] = order
        perms[2 * i + 1] = order[::-1]
    rank = np.argsort(perms, axis=1)  # rank[q, j]: the step (0-based) at which j is switched
    fx, fb = _ends(predict_logit, columns, x, names)
    differ = _differs(columns, x)  # (m, d)
    # switch[q, i, k]: the feature switched at step k + 1 of walk (q, i) changes the row
    switch = differ[np.arange(m)[None, :, None], perms[:, None, :]]  # (p, m, d)
    done = np.cumsum(switch, axis=2)  # differing features switched after step k + 1
    total = differ.sum(axis=1)[None, :, None]
    needed = switch & (done < total)
    q_idx, i_idx, k_idx = np.nonzero(needed)
    # values[q, i, k] for k = 0..d: the walk's log-odds after k switches
    values = np.full((p, m, d + 1), np.nan)
    values[:, :, 0] = fb[None, :]
    complete = np.concatenate([np.zeros((p, m, 1), dtype=bool), done == total], axis=2)
    complete[:, :, 0] = False
    values[complete] = fx
    if q_idx.size:
        take = rank[q_idx] <= k_idx[:, None]
        frame = _frame(columns, x, names, i_idx, take)
        values[q_idx, i_idx, k_idx + 1] = _evaluate(predict_logit, frame)
    # unchanged rows (a switched feature equal to the background's) keep the previous value
    index = np.where(np.isnan(values), 0, np.arange(d + 1)[None, None, :])
    np.maximum.accumulate(index, axis=2, out=index)
    values = np.take_along_axis(values, index, axis=2)
    credit_by_step = np.diff(values, axis=2)  # (p, m, d), step k credits perms[q, k]
    credit = np.take_along_axis(credit_by_step, np.broadcast_to(rank[:, None, :], (p, m, d)), 2)
    per_walk = credit.mean(axis=1)  # (p, d): mean over background rows per ordering
    phi = per_walk.mean(axis=0)
    pairs = per_walk.reshape(p // 2, 2, d).mean(axis=1)
    enough = p // 2 >= 2  # a standard deviation needs two pairs
    se = pairs.std(axis=0, ddof=1) / math.sqrt(p // 2) if enough else np.full(d, np.nan)
    return ShapleyValues(
        values={name: float(phi[j]) for j, name in enumerate(names)},
        std_errors={name: float(se[j]) for j, name in enumerate(names)},
        base_value=math.fsum(fb.tolist()) / m,
        logit=fx,
        method="permutation",
        n_permutations=p,
        n_background=m,
        n_evaluations=int(q_idx.size + m + 1),
        seed=seed,
        feature_names=names,
    )


# --------------------------------------------------------------------------------------------
# Backgrounds
# --------------------------------------------------------------------------------------------


def sample_background(
    frame: pd.DataFrame, size: int, *, columns: Sequence[str] | None = None, seed: int = 0
) -> pd.DataFrame:
    """At most ``size`` rows of ``frame`` (its ``columns``), drawn without replacement with
    ``numpy.random.default_rng(seed)`` and kept in their original order; the whole frame when
    it is small enough. The index is reset."""
    if not isinstance(frame, pd.DataFrame) or len(frame) == 0:
        raise InvalidArgument(
            "background must be a non-empty pandas DataFrame",
            field="background",
            remedy="pass a sample of the training data with the model's columns",
        )
    size = _positive_int(size, "background_size", "pass e.g. 32")
    cols = list(frame.columns) if columns is None else list(columns)
    for name in cols:
        if name not in frame.columns:
            raise InvalidArgument(
                f"background has no column {name!r}",
                field=name,
                remedy="pass a sample of the training data with every column the model uses",
            )
    if len(frame) <= size:
        return frame.loc[:, cols].reset_index(drop=True)
    rng = np.random.default_rng(_seed(seed))
    picked = np.sort(rng.choice(len(frame), size=size, replace=False))
    return frame.iloc[picked].loc[:, cols].reset_index(drop=True)


def _allocate(weights: np.ndarray, size: int) -> np.ndarray:
    """Integer counts summing to ``size`` in proportion to ``weights`` (largest remainder,
    ties to the earlier entry)."""
    total = float(weights.sum())
    quota = weights * (size / total)
    counts = np.floor(quota).astype(np.int64)
    left = size - int(counts.sum())
    if left:
        order = np.lexsort((np.arange(weights.size), -(quota - counts)))
        counts[order[:left]] += 1
    return counts


def _numeric_sample(p: NumericProfile, size: int) -> np.ndarray:
    counts = p.counts.astype(np.float64).copy()
    edges = np.concatenate([[p.minimum], p.cuts])  # bin k >= 1 is [cuts[k-1], cuts[k])
    # outlier fences and the cut above the maximum are not observed values: their bins' mass
    # goes to the bin below, whose lower edge is
    for key in ("outlier_low", "outlier_high", "above_max"):
        k = p.quality_cuts.get(key)
        if k is not None and k + 1 < counts.size:
            counts[k] += counts[k + 1]
            counts[k + 1] = 0.0
    n_missing = 0
    if p.n_missing:
        n_missing = int(_allocate(np.array([float(p.n), float(p.n_missing)]), size)[1])
    present = size - n_missing
    out = np.full(size, np.nan)
    if present:
        cdf = np.cumsum(counts) / counts.sum()
        levels = (np.arange(present) + 0.5) / present
        which = np.minimum(np.searchsorted(cdf, levels, side="left"), counts.size - 1)
        out[:present] = edges[which]
    return out


def _categorical_sample(p: CategoricalProfile, size: int) -> np.ndarray:
    weights = np.concatenate([p.counts.astype(np.float64), [float(p.n_missing)]])
    counts = _allocate(weights, size)
    values: list[Any] = []
    for level, c in zip((*p.levels, None), counts.tolist(), strict=True):
        values.extend([level] * int(c))
    return np.array(values, dtype=object)


def background_from_profile(
    profile: ReferenceProfile, columns: Sequence[str], size: int, *, seed: int = 0
) -> pd.DataFrame:
    """A deterministic ``size``-row background from a reference profile (see the module
    docstring: product of the marginals, mid-quantiles, columns shuffled with ``seed``)."""
    if not isinstance(profile, ReferenceProfile):
        raise InvalidArgument(
            f"profile must be a ReferenceProfile, got {type(profile).__name__}",
            field="background",
            remedy="pass the version's reference profile",
        )
    size = _positive_int(size, "background_size", "pass e.g. 32")
    rng = np.random.default_rng(_seed(seed))
    data: dict[str, np.ndarray] = {}
    for name in _names(columns):
        col = profile.columns.get(name)
        if col is None:
            raise InvalidArgument(
                f"the reference profile has no column {name!r}",
                field=name,
                remedy="profile the training data with every column the model uses",
            )
        if col.n + col.n_missing <= 0:
            raise InvalidArgument(
                f"the reference profile has no values of {name!r}",
                field=name,
                remedy="profile the data the model was trained on",
            )
        if isinstance(col, NumericProfile):
            values = _numeric_sample(col, size)
        else:
            values = _categorical_sample(col, size)
        data[name] = values[rng.permutation(size)]
    return pd.DataFrame(data)
