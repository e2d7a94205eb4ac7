"""Global explanations for reports: importance, dependence and the stability of the top reasons.

All three start from per-applicant contributions (log-odds, one row per applicant, one column
per feature: what :meth:`charter.serving.compiled.CompiledScorer.contributions` returns), so they
describe the model *as explained*, in the same units as the reason codes.

:func:`importance`
    Per feature: ``mean_abs`` (mean of ``|contribution|``), ``mean`` (mean contribution; near 0
    against a background drawn from the same data, since contributions are centred on the
    background) and ``share`` (``mean_abs`` over the sum of every feature's ``mean_abs``).
    Sorted by ``mean_abs`` descending, ties by feature name; ``rank`` 1 is the largest.

:func:`dependence`
    How a feature's contribution varies with its value: numeric values are cut at their own
    quantiles (``inverted_cdf`` at ``j / bins``, de-duplicated, so every cut is an observed value
    and bins are ``[lower, upper)``, the last one closed), categorical values one bin per level
    (most frequent first, ties by label); missing values are summarised apart. Each bin reports
    its count and the mean, minimum and maximum contribution.

:func:`reason_stability`
    *What is measured.* The model is fixed (not refitted); the applicants are resampled. Each
    row of ``frame`` is explained once with ``explain_fn``; then ``n_boot`` bootstrap resamples
    of the rows (``n`` rows drawn with replacement with ``numpy.random.default_rng(seed)``) each
    give a global ranking of the features by mean ``|contribution|`` (ties by feature name). Per
    feature it reports the rank on the full sample, the share of resamples in which it ranks in
    the top ``top``, its mean rank and a percentile interval of its rank (2.5th and 97.5th
    percentiles, ``inverted_cdf``, so both ends are ranks that occurred); and overall, the share
    of resamples whose top ``top`` set equals the full sample's (order ignored). A feature whose
    ``top_share`` is near 1 is a stable global reason for this population; one near 0.5 sits on
    the edge of the top ``top`` and its place in a report would change with the sample.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from charter.errors import InvalidArgument

__all__ = [
    "Dependence",
    "DependenceBin",
    "FeatureImportance",
    "FeatureStability",
    "ReasonStability",
    "dependence",
    "importance",
    "reason_stability",
    "reason_stability_from",
]


@dataclass(frozen=True)
class FeatureImportance:
    feature: str
    mean_abs: float
    mean: float
    share: float
    rank: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "mean_abs": self.mean_abs,
            "mean": self.mean,
            "share": self.share,
            "rank": self.rank,
        }


@dataclass(frozen=True)
class DependenceBin:
    """One bin: ``label`` is the level (categorical) or ``"[lower, upper)"`` (numeric)."""

    label: str
    lower: float | None
    upper: float | None
    count: int
    mean_contribution: float
    min_contribution: float
    max_contribution: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "lower": self.lower,
            "upper": self.upper,
            "count": self.count,
            "mean_contribution": self.mean_contribution,
            "min_contribution": self.min_contribution,
            "max_contribution": self.max_contribution,
        }


@dataclass(frozen=True)
class Dependence:
    kind: str  # "numeric" | "categorical"
    bins: tuple[DependenceBin, ...]
    n_missing: int
    missing_mean_contribution: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "bins": [b.to_dict() for b in self.bins],
            "n_missing": self.n_missing,
            "missing_mean_contribution": self.missing_mean_contribution,
        }


@dataclass(frozen=True)
class FeatureStability:
    feature: str
    rank: int  # on the full sample, 1 = most important
    top_share: float  # share of resamples in which it ranks in the top k
    mean_rank: float
    rank_low: int  # 2.5th percentile of the bootstrap ranks
    rank_high: int  # 97.5th percentile

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "rank": self.rank,
            "top_share": self.top_share,
            "mean_rank": self.mean_rank,
            "rank_low": self.rank_low,
            "rank_high": self.rank_high,
        }


@dataclass(frozen=True)
class ReasonStability:
    """See the module docstring for what is measured; ``features`` are in full-sample rank order."""

    features: tuple[FeatureStability, ...]
    top: int
    top_set: tuple[str, ...]
    top_set_share: float
    n_boot: int
    n_rows: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": [f.to_dict() for f in self.features],
            "top": self.top,
            "top_set": list(self.top_set),
            "top_set_share": self.top_set_share,
            "n_boot": self.n_boot,
            "n_rows": self.n_rows,
            "seed": self.seed,
            "interval": [0.025, 0.975],
        }


# --------------------------------------------------------------------------------------------


def _names(feature_names: object) -> tuple[str, ...]:
    if isinstance(feature_names, str) or not isinstance(feature_names, Sequence | np.ndarray):
        raise InvalidArgument(
            "feature_names must be a sequence of names",
            field="feature_names",
            remedy="pass the names of the contribution matrix's columns",
        )
    names = tuple(feature_names)
    if not names or any(not isinstance(n, str) or not n for n in names):
        raise InvalidArgument(
            "feature_names must be non-empty strings",
            field="feature_names",
            remedy="pass the names of the contribution matrix's columns",
        )
    if len(set(names)) != len(names):
        raise InvalidArgument(
            "feature_names has duplicates", field="feature_names", remedy="name every feature once"
        )
    return names


def _matrix(contributions: object, names: tuple[str, ...]) -> np.ndarray:
    """Contributions as an (n, d) float array in ``names`` order."""
    if isinstance(contributions, pd.DataFrame):
        missing = [n for n in names if n not in contributions.columns]
        if missing:
            raise InvalidArgument(
                f"the contributions have no column {missing[0]!r}",
                field=missing[0],
                remedy="pass a contribution column for every feature",
            )
        raw: Any = contributions.loc[:, list(names)].to_numpy(dtype=np.float64)
    elif (
        isinstance(contributions, Sequence)
        and contributions
        and all(isinstance(r, Mapping) for r in contributions)
    ):
        try:
            raw = [[float(r[n]) for n in names] for r in contributions]
        except KeyError as exc:
            raise InvalidArgument(
                f"a row of contributions has no feature {exc.args[0]!r}",
                field=str(exc.args[0]),
                remedy="pass one mapping feature -> contribution per applicant",
            ) from None
    else:
        raw = contributions
    try:
        matrix = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgument(
            "contributions must be numbers",
            field="contributions",
            remedy="pass an (applicants x features) array of log-odds contributions",
        ) from None
    if matrix.ndim != 2 or matrix.shape[1] != len(names) or matrix.shape[0] == 0:
        raise InvalidArgument(
            f"contributions must be a non-empty (n, {len(names)}) matrix, got shape {matrix.shape}",
            field="contributions",
            remedy="pass one row per applicant and one column per feature name",
        )
    if not np.isfinite(matrix).all():
        raise InvalidArgument(
            "contributions contain a value that is not finite",
            field="contributions",
            remedy="pass the log-odds contributions a scorer returned",
        )
    return matrix


def _order(scores: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Feature indices by descending score, ties by name (last axis)."""
    name_rank = np.argsort(np.argsort(np.array(names, dtype=object)))
    keys = np.broadcast_to(name_rank, scores.shape)
    return np.lexsort((keys, -scores), axis=-1)


def importance(
    contributions_matrix: Any, feature_names: Sequence[str]
) -> tuple[FeatureImportance, ...]:
    """Mean |contribution|, mean contribution and share per feature, most important first.

    ``contributions_matrix`` is an (applicants x features) array in ``feature_names`` order, a
    DataFrame with those columns, or a sequence of mappings feature -> contribution.
    """
    names = _names(feature_names)
    c = _matrix(contributions_matrix, names)
    mean_abs = np.abs(c).mean(axis=0)
    mean = c.mean(axis=0)
    total = float(mean_abs.sum())
    order = _order(mean_abs, names)
    return tuple(
        FeatureImportance(
            feature=names[j],
            mean_abs=float(mean_abs[j]),
            mean=float(mean[j]),
            share=float(mean_abs[j] / total) if total > 0 else 0.0,
            rank=r + 1,
        )
        for r, j in enumerate(order.tolist())
    )


def _missing_mask(values: pd.Series) -> np.ndarray:
    return np.asarray(values.isna().to_numpy(), dtype=bool)


def _summary(label: str, lower: float | None, upper: float | None, c: np.ndarray) -> DependenceBin:
    return DependenceBin(
        label=label,
        lower=lower,
        upper=upper,
        count=int(c.size),
        mean_contribution=float(c.mean()),
        min_contribution=float(c.min()),
        max_contribution=float(c.max()),
    )


def dependence(
    values: Any, contributions: Any, bins: int = 10, *, kind: str | None = None
) -> Dependence:
    """Binned mean contribution by feature value (numeric) or by level (categorical).

    ``values`` and ``contributions`` are one feature's values and its contributions, one per
    applicant. ``kind`` ("numeric" or "categorical") is inferred from the values' dtype unless
    given. See the module docstring for the bins.
    """
    if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or int(bins) < 1:
        raise InvalidArgument(
            f"bins must be a positive integer, got {bins!r}", field="bins", remedy="pass bins=10"
        )
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    series = series.reset_index(drop=True)
    try:
        c = np.asarray(contributions, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidArgument(
            "contributions must be numbers",
            field="contributions",
            remedy="pass the feature's log-odds contributions, one per applicant",
        ) from None
    if c.size != len(series) or c.size == 0:
        raise InvalidArgument(
            f"{len(series)} values but {c.size} contributions",
            field="contributions",
            remedy="pass one contribution per value (and at least one)",
        )
    if not np.isfinite(c).all():
        raise InvalidArgument(
            "contributions contain a value that is not finite",
            field="contributions",
            remedy="pass the log-odds contributions a scorer returned",
        )
    missing = _missing_mask(series)
    if kind is None:
        present = series[~missing]
        numeric = pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
            series.dtype
        )
        if series.dtype == object and len(present):
            numeric = all(
                isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_)
                for v in present.tolist()
            )
        kind = "numeric" if numeric else "categorical"
    if kind not in ("numeric", "categorical"):
        raise InvalidArgument(
            f"kind must be 'numeric' or 'categorical', got {kind!r}",
            field="kind",
            remedy="leave kind=None to infer it from the values",
        )
    out: list[DependenceBin] = []
    keep = ~missing
    if kind == "numeric":
        try:
            x = series[keep].to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidArgument(
                "values are not numeric",
                field="values",
                remedy="pass kind='categorical' for text values",
            ) from None
        cx = c[keep]
        if x.size:
            ordered = np.sort(x)
            idx = np.ceil(np.arange(1, int(bins)) * x.size / int(bins)).astype(np.int64) - 1
            cuts = np.unique(ordered[np.clip(idx, 0, x.size - 1)])
            cuts = cuts[cuts > ordered[0]]
            edges = np.concatenate([[ordered[0]], cuts, [ordered[-1]]])
            which = np.searchsorted(cuts, x, side="right")
            for b in range(cuts.size + 1):
                sel = which == b
                if not sel.any():
                    continue
                lo, hi = float(edges[b]), float(edges[b + 1])
                label = f"[{lo:g}, {hi:g}]" if b == cuts.size else f"[{lo:g}, {hi:g})"
                out.append(_summary(label, lo, hi, cx[sel]))
    else:
        labels = series[keep].astype(str).to_numpy(dtype=object)
        cx = c[keep]
        levels, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        order = sorted(range(levels.size), key=lambda i: (-int(counts[i]), str(levels[i])))
        for i in order:
            out.append(_summary(str(levels[i]), None, None, cx[inverse == i]))
    n_missing = int(missing.sum())
    return Dependence(
        kind=kind,
        bins=tuple(out),
        n_missing=n_missing,
        missing_mean_contribution=float(c[missing].mean()) if n_missing else None,
    )


def reason_stability(
    explain_fn: Callable[[Mapping[str, Any]], Mapping[str, float] | None],
    frame: pd.DataFrame,
    *,
    n_boot: int = 50,
    top: int = 4,
    seed: int = 0,
    feature_names: Sequence[str] | None = None,
) -> ReasonStability:
    """How stable the global top-``top`` reasons are under resampling of the applicants.

    ``explain_fn`` maps one row (a mapping feature -> value) to its contributions (e.g.
    ``scorer.contributions``); it is called once per row of ``frame``. ``feature_names``
    defaults to the keys of the first row's contributions. See the module docstring for exactly
    what is measured.
    """
    if not callable(explain_fn):
        raise InvalidArgument(
            "explain_fn must be callable",
            field="explain_fn",
            remedy="pass scorer.contributions",
        )
    if not isinstance(frame, pd.DataFrame) or len(frame) == 0:
        raise InvalidArgument(
            "frame must be a non-empty pandas DataFrame",
            field="frame",
            remedy="pass the applicants to explain",
        )
    for value, name in ((n_boot, "n_boot"), (top, "top")):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
            raise InvalidArgument(
                f"{name} must be a positive integer, got {value!r}",
                field=name,
                remedy="pass n_boot=50 and top=4",
            )
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or int(seed) < 0:
        raise InvalidArgument(
            f"seed must be a non-negative integer, got {seed!r}",
            field="seed",
            remedy="pass seed=0",
        )
    rows = [dict(r) for r in frame.to_dict("records")]
    explained: list[Mapping[str, float]] = []
    for i, row in enumerate(rows):
        contributions = explain_fn(row)
        if contributions is None:
            raise InvalidArgument(
                f"explain_fn returned no contributions for row {i}",
                field="explain_fn",
                remedy="compile the model with a background so that it can be explained",
            )
        explained.append(contributions)
    names = _names(list(explained[0]) if feature_names is None else feature_names)
    return reason_stability_from(explained, names, n_boot=int(n_boot), top=int(top),
                                 seed=int(seed))  # fmt: skip


def reason_stability_from(
    contributions: Any, feature_names: Sequence[str], *, n_boot: int = 50, top: int = 4,
    seed: int = 0,
) -> ReasonStability:  # fmt: skip
    """:func:`reason_stability` on contributions already computed (an applicants x features
    matrix, a DataFrame, or a sequence of mappings feature -> contribution)."""
    names = _names(feature_names)
    c = np.abs(_matrix(contributions, names))
    n, d = c.shape
    k = min(int(top), d)
    rng = np.random.default_rng(int(seed))
    weights = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(n_boot)])
    boot = weights.astype(np.float64) @ c / n  # (n_boot, d) mean |contribution| per resample
    full = c.mean(axis=0)
    order = _order(boot, names)  # (n_boot, d) feature indices by rank
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, d + 1)[None, :], axis=1)
    full_order = _order(full, names)
    full_rank = np.empty(d, dtype=np.int64)
    full_rank[full_order] = np.arange(1, d + 1)
    top_set = frozenset(full_order[:k].tolist())
    same_set = sum(frozenset(o[:k].tolist()) == top_set for o in order)
    features = []
    for j in full_order.tolist():
        r = ranks[:, j]
        low, high = np.quantile(r, [0.025, 0.975], method="inverted_cdf")
        features.append(
            FeatureStability(
                feature=names[j],
                rank=int(full_rank[j]),
                top_share=float(np.mean(r <= k)),
                mean_rank=float(r.mean()),
                rank_low=int(low),
                rank_high=int(high),
            )
        )
    return ReasonStability(
        features=tuple(features),
        top=k,
        top_set=tuple(names[j] for j in full_order[:k].tolist()),
        top_set_share=same_set / int(n_boot),
        n_boot=int(n_boot),
        n_rows=n,
        seed=int(seed),
    )
