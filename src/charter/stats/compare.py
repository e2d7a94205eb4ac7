"""Compare a current window with the reference profile: drift and data quality per feature.

``compare(profile, accumulator, policy)`` returns a frozen :class:`DriftReport`; its ``to_dict()``
is the JSON snapshot that the CLI prints, the HTML report renders and the dashboard reads.
Numeric features are tested with KS, categorical ones with the chi-square test of homogeneity;
p-values are corrected across all tested features (``policy.correction``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from charter.errors import InvalidArgument
from charter.stats import drift
from charter.stats.policy import TIERS, DriftPolicy, adjust_p_values, tier_for
from charter.stats.sketches import (
    CategoricalAccumulator,
    CategoricalProfile,
    CurrentAccumulator,
    Data,
    NumericAccumulator,
    NumericProfile,
    ReferenceProfile,
    build_profile,
)

PLOT_BINS = 40


@dataclass(frozen=True)
class ColumnQuality:
    """Data quality of one column in the current window."""

    n_rows: int
    missing_rate: float
    nonfinite: int = 0  # +-inf in a numeric column
    type_errors: int = 0  # text where a number belongs
    below_min: int = 0  # below the reference minimum
    above_max: int = 0  # above the reference maximum
    out_of_range_rate: float = 0.0
    outlier_rate: float = 0.0  # outside the reference's far-out fences (Q1 - 3 IQR, Q3 + 3 IQR)
    reference_outlier_rate: float = 0.0
    reference_missing_rate: float = 0.0
    new_categories: tuple[str, ...] = ()
    new_category_rate: float = 0.0
    column_missing: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["new_categories"] = list(self.new_categories)
        return d


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str  # numeric | categorical
    n_reference: int
    n_current: int
    psi: float
    js_distance: float
    kl_divergence: float
    test: str  # ks | chi2
    statistic: float  # the KS D or the chi-square statistic
    p_value: float
    p_adjusted: float
    tier: str
    reasons: tuple[str, ...]
    quality: ColumnQuality
    ks_bound: float | None = None
    wasserstein: float | None = None
    wasserstein_normalised: float | None = None
    wasserstein_bound: float | None = None
    chi2_dof: int | None = None
    pooled_levels: tuple[str, ...] = ()
    reference_mean: float | None = None
    current_mean: float | None = None
    # Evidence for plots: bin labels or edges, reference and current proportions.
    bins: tuple[str, ...] = ()
    reference_share: tuple[float, ...] = ()
    current_share: tuple[float, ...] = ()
    plot_edges: tuple[float, ...] = ()
    plot_reference_density: tuple[float, ...] = ()
    plot_current_density: tuple[float, ...] = ()

    @property
    def effect(self) -> float:
        if self.kind == "numeric":
            return float(self.wasserstein_normalised or 0.0)
        return self.js_distance

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for k, v in self.__dict__.items():
            if isinstance(v, ColumnQuality):
                d[k] = v.to_dict()
            elif isinstance(v, tuple):
                d[k] = list(v)
            elif isinstance(v, float) and not np.isfinite(v):
                d[k] = None
            else:
                d[k] = v
        return d


@dataclass(frozen=True)
class DriftReport:
    features: tuple[FeatureDrift, ...]
    policy: DriftPolicy
    n_reference: int
    n_current: int
    missing_columns: tuple[str, ...] = ()
    extra_columns: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def flagged(self) -> tuple[FeatureDrift, ...]:
        return tuple(f for f in self.features if f.tier != "stable")

    def by_tier(self) -> dict[str, int]:
        out = dict.fromkeys(TIERS, 0)
        for f in self.features:
            out[f.tier] += 1
        return out

    @property
    def worst_tier(self) -> str:
        return max((f.tier for f in self.features), key=TIERS.index, default="stable")

    def feature(self, name: str) -> FeatureDrift:
        for f in self.features:
            if f.feature == name:
                return f
        raise InvalidArgument(f"no feature {name!r} in the report", field="feature")

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": {
                "n_reference": self.n_reference,
                "n_current": self.n_current,
                "features": len(self.features),
                "by_tier": self.by_tier(),
                "worst_tier": self.worst_tier,
                "flagged": [f.feature for f in self.flagged],
                "missing_columns": list(self.missing_columns),
                "extra_columns": list(self.extra_columns),
            },
            "policy": self.policy.to_dict(),
            "features": [f.to_dict() for f in self.features],
            "notes": list(self.notes),
        }


def _plot_bins(p: NumericProfile, ref: np.ndarray, cur: np.ndarray, lo: float, hi: float) -> tuple:
    """Densities over about PLOT_BINS reference-quantile bins clipped to the observed range."""
    # A constant column (or one whose range is subnormal, where densities would overflow): one
    # bar of unit width around the value.
    if not hi - lo >= np.finfo(np.float64).tiny:
        return (lo - 0.5, lo + 0.5), (1.0 if ref.sum() else 0.0,), (1.0 if cur.sum() else 0.0,)
    inner = np.arange(p.cuts.size)
    step = max(1, inner.size // PLOT_BINS)
    pick = inner[step - 1 :: step]
    edges = np.clip(np.concatenate([[lo], p.cuts[pick], [hi]]), lo, hi)
    starts = np.concatenate([[0], pick + 1]).astype(np.int64)
    r = np.add.reduceat(ref, starts) / max(ref.sum(), 1)
    c = np.add.reduceat(cur, starts) / max(cur.sum(), 1)
    # Bins narrower than a billionth of the range (a point mass on a cut) join the next bin.
    keep = np.diff(edges) > (hi - lo) * 1e-9
    kept = np.flatnonzero(keep)
    group = np.minimum(np.searchsorted(kept, np.arange(keep.size)), kept.size - 1)
    rg = np.bincount(group, weights=r, minlength=kept.size)
    cg = np.bincount(group, weights=c, minlength=kept.size)
    e = np.concatenate([[edges[0]], edges[kept + 1]])
    e[-1] = edges[-1]
    widths = np.diff(e)
    return (
        tuple(float(x) for x in e),
        tuple(float(x) for x in rg / widths),
        tuple(float(x) for x in cg / widths),
    )


def _numeric(p: NumericProfile, a: NumericAccumulator) -> dict[str, Any]:
    ref, cur = p.counts, a.counts
    cref, ccur = p.coarse(ref), p.coarse(cur)
    psi = float(drift.psi(cref, ccur)) if a.n else 0.0
    js = float(drift.js_distance(cref, ccur)) if a.n else 0.0
    kl = float(drift.kl_divergence(cref, ccur)) if a.n else 0.0
    d, bound = drift.ks_from_counts(ref, cur)
    ks = float(d[0]) if a.n else 0.0
    p_value = float(drift.ks_p_value(ks, p.n, a.n)) if a.n else float("nan")
    if a.n:
        w, wb = drift.wasserstein_from_counts(
            p.cuts, ref, cur, (p.minimum, p.maximum), (a.minimum, a.maximum)
        )
    else:
        w, wb = 0.0, 0.0
    scale = p.std if p.std > 0 else 1.0
    q = p.quality_cuts
    below = int(cur[: q["below_min"] + 1].sum())
    above = int(cur[q["above_max"] + 1 :].sum())
    out_lo = int(cur[: q["outlier_low"] + 1].sum())
    out_hi = int(cur[q["outlier_high"] + 1 :].sum())
    ref_out = int(ref[: q["outlier_low"] + 1].sum() + ref[q["outlier_high"] + 1 :].sum())
    n_rows = a.n + a.n_missing + a.n_nonfinite + a.n_type_errors
    quality = ColumnQuality(
        n_rows=n_rows,
        missing_rate=a.n_missing / n_rows if n_rows else 0.0,
        nonfinite=a.n_nonfinite,
        type_errors=a.n_type_errors,
        below_min=below,
        above_max=above,
        out_of_range_rate=(below + above) / a.n if a.n else 0.0,
        outlier_rate=(out_lo + out_hi) / a.n if a.n else 0.0,
        reference_outlier_rate=ref_out / p.n if p.n else 0.0,
        reference_missing_rate=p.n_missing / (p.n + p.n_missing + p.n_nonfinite),
    )
    edges = p.coarse_edges()
    labels = [f"< {edges[0]:.6g}"] if edges.size else ["all"]
    labels += [f"[{a_:.6g}, {b_:.6g})" for a_, b_ in itertools.pairwise(edges)]
    if edges.size:
        labels.append(f">= {edges[-1]:.6g}")
    lo = min(p.minimum, a.minimum) if a.n else p.minimum
    hi = max(p.maximum, a.maximum) if a.n else p.maximum
    pe, pr, pc = _plot_bins(p, ref, cur, lo, hi)
    return {
        "kind": "numeric",
        "n_reference": p.n,
        "n_current": a.n,
        "psi": psi,
        "js_distance": js,
        "kl_divergence": kl,
        "test": "ks",
        "statistic": ks,
        "p_value": p_value,
        "ks_bound": float(bound[0]),
        "wasserstein": w,
        "wasserstein_normalised": w / scale,
        "wasserstein_bound": wb,
        "reference_mean": p.mean,
        "current_mean": p.mean + a.shifted_sum / a.n if a.n else None,
        "quality": quality,
        "bins": tuple(labels),
        "reference_share": tuple(float(x) for x in drift.proportions(cref)),
        "current_share": tuple(float(x) for x in drift.proportions(ccur)),
        "plot_edges": pe,
        "plot_reference_density": pr,
        "plot_current_density": pc,
    }


def _categorical(p: CategoricalProfile, a: CategoricalAccumulator) -> dict[str, Any]:
    new = tuple(sorted((k for k in a.counts if k not in set(p.levels)), key=lambda k: -a.counts[k]))
    levels = (*p.levels, *new)
    ref = np.concatenate([p.counts, np.zeros(len(new), dtype=np.int64)])
    cur = np.array([a.counts.get(k, 0) for k in levels], dtype=np.int64)
    n = int(cur.sum())
    chi = drift.chi2_homogeneity(ref, cur, levels) if n else None
    n_rows = n + a.n_missing
    quality = ColumnQuality(
        n_rows=n_rows,
        missing_rate=a.n_missing / n_rows if n_rows else 0.0,
        new_categories=new,
        new_category_rate=sum(a.counts[k] for k in new) / n if n else 0.0,
        reference_missing_rate=p.n_missing / (p.n + p.n_missing) if p.n + p.n_missing else 0.0,
    )
    return {
        "kind": "categorical",
        "n_reference": p.n,
        "n_current": n,
        "psi": float(drift.psi(ref, cur)) if n else 0.0,
        "js_distance": float(drift.js_distance(ref, cur)) if n else 0.0,
        "kl_divergence": float(drift.kl_divergence(ref, cur)) if n else 0.0,
        "test": "chi2",
        "statistic": chi.statistic if chi else 0.0,
        "p_value": chi.p_value if chi else float("nan"),
        "chi2_dof": chi.dof if chi else 0,
        "pooled_levels": chi.pooled if chi else (),
        "quality": quality,
        "bins": tuple(levels),
        "reference_share": tuple(float(x) for x in drift.proportions(ref)),
        "current_share": tuple(float(x) for x in drift.proportions(cur)),
    }


def compare(
    profile: ReferenceProfile,
    current: CurrentAccumulator,
    policy: DriftPolicy | None = None,
) -> DriftReport:
    """Drift and data quality of every profiled feature, tiered by ``policy``."""
    pol = policy or DriftPolicy()
    if current.profile is not profile and current.profile.to_dict() != profile.to_dict():
        raise InvalidArgument(
            "the accumulator was built on another reference profile", field="current"
        )
    parts: list[tuple[str, dict[str, Any]]] = []
    for name, p in profile.columns.items():
        acc = current.columns[name]
        if isinstance(p, NumericProfile) and isinstance(acc, NumericAccumulator):
            parts.append((name, _numeric(p, acc)))
        elif isinstance(p, CategoricalProfile) and isinstance(acc, CategoricalAccumulator):
            parts.append((name, _categorical(p, acc)))
    p_adj = adjust_p_values(np.array([d["p_value"] for _, d in parts]), pol.correction)
    features = []
    for (name, d), pa in zip(parts, p_adj, strict=True):
        effect = d.get("wasserstein_normalised") if d["kind"] == "numeric" else d["js_distance"]
        tier, reasons = tier_for(
            pol,
            kind=d["kind"],
            psi=d["psi"],
            effect=float(effect or 0.0),
            p_adjusted=float(pa),
            n_current=d["n_current"],
        )
        if name in current.missing_columns:
            reasons = (*reasons, "the column is missing from the current data")
            tier = "critical"
        q: ColumnQuality = d.pop("quality")
        if name in current.missing_columns:
            q = ColumnQuality(**{**q.__dict__, "column_missing": True})
        features.append(
            FeatureDrift(
                feature=name, p_adjusted=float(pa), tier=tier, reasons=reasons, quality=q, **d
            )
        )
    return DriftReport(
        features=tuple(features),
        policy=pol,
        n_reference=profile.n_rows,
        n_current=current.rows,
        missing_columns=tuple(sorted(current.missing_columns)),
        extra_columns=tuple(sorted(current.extra_columns)),
    )


def drift_report(
    reference: Data,
    current: Data,
    *,
    policy: DriftPolicy | None = None,
    numeric: list[str] | None = None,
    categorical: list[str] | None = None,
    bins: int = 10,
) -> DriftReport:
    """One call for two in-memory data sets: profile the reference, accumulate, compare."""
    profile = build_profile(reference, numeric=numeric, categorical=categorical, bins=bins,
                            fine_bins=bins * 100)  # fmt: skip
    return compare(profile, profile.accumulator().update(current), policy)
