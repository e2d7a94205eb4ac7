"""Drift statistics between a reference and a current distribution.

Every function here is pure and vectorised; the binned forms take counts, so the same code serves
raw data, a stream of chunks and partitions merged from several workers.

Conventions (pinned by tests):

* **PSI** ``sum((a - e) * ln(a / e))`` over bins, with ``e`` the reference and ``a`` the current
  proportions. Bins are fixed on the reference only. *Empty bins:* a proportion of zero is replaced
  by ``PSI_EPSILON`` (1e-4) before the logarithm, on both sides, without renormalising, so one
  empty bin adds a bounded, visible amount instead of infinity. The per-feature PSI is what credit
  risk calls the CSI (characteristic stability index); on the score it is the PSI proper.
* **KS** the two-sample Kolmogorov-Smirnov statistic ``sup |F_ref - F_cur|``. On raw data it is
  exact (equal to ``scipy.stats.ks_2samp``). On binned data it is evaluated at the bin edges, which
  is a lower bound of the raw statistic; the raw one exceeds it by at most the largest probability
  mass of either sample in a single bin (``ks_bound``). The p-value is the asymptotic two-sided one
  (Kolmogorov distribution with ``n = round(n1 n2 / (n1 + n2))``, as scipy's ``method='asymp'``);
  from binned data it is conservative, because a smaller statistic gives a larger p-value.
* **Chi-square** a test of homogeneity on the 2 x k contingency table (reference counts, current
  counts), never a goodness-of-fit test against reference proportions taken as exact, which
  roughly doubles the statistic. Levels whose expected count is below 5 in either row are pooled
  into one "other" level (reported), so the asymptotic distribution holds. No continuity
  correction. Equal to ``scipy.stats.chi2_contingency(table, correction=False)``.
* **Wasserstein** (earth mover's, order 1) ``integral |F_ref - F_cur| dx``; on raw data equal to
  ``scipy.stats.wasserstein_distance``. From bins, both CDFs are taken as linear within each bin
  (end bins run to each sample's own minimum and maximum); ``wasserstein_bound`` bounds the error.
  Normalised Wasserstein divides by the reference standard deviation (a shift of 0.1 sd gives 0.1).
* **Jensen-Shannon** distance: the square root of the JS divergence with base-2 logarithms, so it
  lies in [0, 1]; zero cells contribute nothing (0 log 0 = 0), no epsilon needed.
* **KL** divergence ``KL(current || reference) = sum(a * ln(a / e))`` in nats, with the PSI
  epsilon rule for empty reference bins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special as _special
from scipy import stats as _sps

from charter.errors import InvalidArgument

PSI_EPSILON = 1e-4
CHI2_MIN_EXPECTED = 5.0


def _as_2d(counts: np.ndarray, field: str) -> np.ndarray:
    a = np.asarray(counts, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise InvalidArgument(
            f"{field} must be a vector of bin counts or a matrix (features x bins)", field=field
        )
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise InvalidArgument(f"{field} must be finite and non-negative", field=field)
    return a


def proportions(counts: np.ndarray) -> np.ndarray:
    """Row-wise proportions; a row of zeros stays zeros."""
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, c / np.where(total > 0, total, 1.0), 0.0)


def psi_from_proportions(expected: np.ndarray, actual: np.ndarray) -> np.ndarray | float:
    """PSI of proportions (vectors, or matrices with one row per feature)."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_EPSILON)
    a = np.maximum(np.asarray(actual, dtype=np.float64), PSI_EPSILON)
    if e.shape != a.shape:
        raise InvalidArgument(
            f"expected and actual have different shapes {e.shape} and {a.shape}",
            field="actual",
            remedy="bin both on the same (reference) edges",
        )
    out = np.sum((a - e) * np.log(a / e), axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def psi(expected_counts: np.ndarray, actual_counts: np.ndarray) -> np.ndarray | float:
    """PSI from bin counts on the same reference bins (rows are features)."""
    e = _as_2d(expected_counts, "expected_counts")
    a = _as_2d(actual_counts, "actual_counts")
    out = np.atleast_1d(psi_from_proportions(proportions(e), proportions(a)))
    return float(out[0]) if np.ndim(expected_counts) == 1 else out


def kl_divergence(expected_counts: np.ndarray, actual_counts: np.ndarray) -> np.ndarray | float:
    """KL(actual || expected) in nats over the same bins; empty expected bins use PSI_EPSILON."""
    e = np.maximum(proportions(_as_2d(expected_counts, "expected_counts")), PSI_EPSILON)
    a = proportions(_as_2d(actual_counts, "actual_counts"))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(a > 0, a * np.log(np.where(a > 0, a, 1.0) / e), 0.0)
    out = terms.sum(axis=-1)
    return float(out[0]) if np.ndim(expected_counts) == 1 else out


def js_distance(expected_counts: np.ndarray, actual_counts: np.ndarray) -> np.ndarray | float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two binned distributions."""
    p = proportions(_as_2d(expected_counts, "expected_counts"))
    q = proportions(_as_2d(actual_counts, "actual_counts"))
    m = 0.5 * (p + q)

    def _kl(x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(x > 0, x * np.log2(np.where(x > 0, x, 1.0) / np.where(m > 0, m, 1.0)), 0.0)
        return t.sum(axis=-1)

    js = np.clip(0.5 * _kl(p) + 0.5 * _kl(q), 0.0, 1.0)
    out = np.sqrt(js)
    return float(out[0]) if np.ndim(expected_counts) == 1 else out


# ---------------------------------------------------------------------------------------- KS
@dataclass(frozen=True)
class KSResult:
    statistic: float
    p_value: float
    n_reference: int
    n_current: int
    bound: float = 0.0  # how far the raw-data statistic can exceed ``statistic`` (0 when exact)


KS_EXACT_N = 10_000


def ks_p_value(
    statistic: np.ndarray | float, n1: np.ndarray | int, n2: np.ndarray | int
) -> np.ndarray:
    """Asymptotic two-sided KS p-value.

    With ``n = round(n1 n2 / (n1 + n2))`` up to ``KS_EXACT_N`` this is the one-sample Kolmogorov
    distribution of size n, as scipy's ``ks_2samp(method='asymp')``; above it, its limit
    ``kolmogorov(sqrt(n) * D)`` (scipy's finite-n computation costs ~20 ms there and differs
    from the limit by less than the sampling error).
    """
    d = np.atleast_1d(np.asarray(statistic, dtype=np.float64))
    a = np.asarray(n1, dtype=np.float64)
    b = np.asarray(n2, dtype=np.float64)
    en = np.broadcast_to(np.round(a * b / np.maximum(a + b, 1.0)), d.shape)
    p = np.empty_like(d)
    small = en <= KS_EXACT_N
    with np.errstate(invalid="ignore"):
        if small.any():
            p[small] = _sps.kstwo.sf(d[small], np.maximum(en[small], 1.0))
        if (~small).any():
            p[~small] = _special.kolmogorov(np.sqrt(en[~small]) * d[~small])
    valid = np.broadcast_to((a > 0) & (b > 0), d.shape)
    out = np.where(valid, np.clip(p, 0.0, 1.0), np.nan)
    return out if np.ndim(statistic) else out.reshape(())


def ks_2samp(reference: np.ndarray, current: np.ndarray) -> KSResult:
    """Exact two-sample KS statistic on raw data (NaN excluded), asymptotic p-value."""
    r = np.sort(_finite_1d(reference, "reference"))
    c = np.sort(_finite_1d(current, "current"))
    if r.size == 0 or c.size == 0:
        raise InvalidArgument(
            "KS needs data on both sides", field="current" if r.size else "reference"
        )
    grid = np.concatenate([r, c])
    cdf_r = np.searchsorted(r, grid, side="right") / r.size
    cdf_c = np.searchsorted(c, grid, side="right") / c.size
    d = float(np.max(np.abs(cdf_r - cdf_c)))
    return KSResult(d, float(ks_p_value(d, r.size, c.size)), int(r.size), int(c.size))


def ks_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """KS statistic at the bin edges and its bound, per row (features x bins)."""
    r = _as_2d(ref_counts, "ref_counts")
    c = _as_2d(cur_counts, "cur_counts")
    pr, pc = proportions(r), proportions(c)
    d = np.max(np.abs(np.cumsum(pr, axis=1) - np.cumsum(pc, axis=1)), axis=1)
    bound = np.max(np.maximum(pr, pc), axis=1)
    return d, bound


# ---------------------------------------------------------------------------------------- chi2
@dataclass(frozen=True)
class Chi2Result:
    statistic: float
    dof: int
    p_value: float
    levels: tuple[str, ...]  # levels tested (after pooling), "other" last when present
    pooled: tuple[str, ...]  # levels pooled into "other" for having expected counts below 5


def chi2_homogeneity(
    ref_counts: np.ndarray,
    cur_counts: np.ndarray,
    levels: tuple[str, ...] | None = None,
    *,
    pool: bool = True,
) -> Chi2Result:
    """Chi-square test that two samples come from the same categorical distribution."""
    r = np.asarray(ref_counts, dtype=np.float64)
    c = np.asarray(cur_counts, dtype=np.float64)
    if r.shape != c.shape or r.ndim != 1:
        raise InvalidArgument(
            "reference and current counts must be vectors over the same levels", field="cur_counts"
        )
    names = tuple(levels) if levels is not None else tuple(str(i) for i in range(r.size))
    keep = (r + c) > 0
    r, c, names = r[keep], c[keep], tuple(n for n, k in zip(names, keep, strict=True) if k)
    pooled: tuple[str, ...] = ()
    if pool and r.size > 1:
        n_r, n_c = r.sum(), c.sum()
        total = r + c
        exp_r, exp_c = total * n_r / (n_r + n_c), total * n_c / (n_r + n_c)
        small = (exp_r < CHI2_MIN_EXPECTED) | (exp_c < CHI2_MIN_EXPECTED)
        if small.any():
            pooled = tuple(n for n, s in zip(names, small, strict=True) if s)
            r = np.append(r[~small], r[small].sum())
            c = np.append(c[~small], c[small].sum())
            names = (*tuple(n for n, s in zip(names, small, strict=True) if not s), "__other__")
    if r.size < 2 or r.sum() == 0 or c.sum() == 0:
        return Chi2Result(0.0, 0, 1.0, names, pooled)
    table = np.vstack([r, c])
    expected = table.sum(axis=0, keepdims=True) * table.sum(axis=1, keepdims=True) / table.sum()
    stat = float(np.sum((table - expected) ** 2 / expected))
    dof = int(r.size - 1)
    return Chi2Result(stat, dof, float(_sps.chi2.sf(stat, dof)), names, pooled)


# ---------------------------------------------------------------------------------------- W1
def wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    """Exact 1-Wasserstein distance between two raw samples (NaN excluded)."""
    r = np.sort(_finite_1d(reference, "reference"))
    c = np.sort(_finite_1d(current, "current"))
    if r.size == 0 or c.size == 0:
        raise InvalidArgument("Wasserstein needs data on both sides", field="current")
    allv = np.concatenate([r, c])
    allv.sort()
    deltas = np.diff(allv)
    cdf_r = np.searchsorted(r, allv[:-1], side="right") / r.size
    cdf_c = np.searchsorted(c, allv[:-1], side="right") / c.size
    return float(np.sum(np.abs(cdf_r - cdf_c) * deltas))


def _linear_cdf_knots(
    cuts: np.ndarray, counts: np.ndarray, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray]:
    """Knots of a CDF that is linear within bins: bins (-inf,c1), [c1,c2), ..., [ck, inf)
    with the end bins spanning [lo, c1] and [ck, hi]."""
    p = proportions(counts)
    x = np.concatenate([[min(lo, cuts[0])], cuts, [max(hi, cuts[-1])]])
    f = np.concatenate([[0.0], np.cumsum(p)])
    f[-1] = 1.0 if p.sum() > 0 else 0.0
    return x, f


def wasserstein_from_counts(
    cuts: np.ndarray,
    ref_counts: np.ndarray,
    cur_counts: np.ndarray,
    ref_range: tuple[float, float],
    cur_range: tuple[float, float],
) -> tuple[float, float]:
    """Wasserstein distance between two binned samples on the same cuts, and an error bound.

    Each CDF is linear within its bins; the bound is ``sum_b width_b * (p_ref_b + p_cur_b)``.
    """
    cuts = np.asarray(cuts, dtype=np.float64)
    if cuts.size == 0:  # a constant feature: all mass at one point per sample
        return abs(float(ref_range[0]) - float(cur_range[0])), 0.0
    xr, fr = _linear_cdf_knots(cuts, ref_counts, *ref_range)
    xc, fc = _linear_cdf_knots(cuts, cur_counts, *cur_range)
    knots = np.unique(np.concatenate([xr, xc]))
    a = np.interp(knots, xr, fr) - np.interp(knots, xc, fc)
    dx = np.diff(knots)
    a0, a1 = a[:-1], a[1:]
    same = a0 * a1 >= 0
    # |linear| over a segment: trapezoid when no sign change, two triangles otherwise.
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = (a0 * a0 + a1 * a1) / (2.0 * (np.abs(a0) + np.abs(a1)))
    seg = np.where(same, 0.5 * (np.abs(a0) + np.abs(a1)), np.nan_to_num(cross)) * dx
    w = float(np.sum(seg))
    pr, pc = proportions(ref_counts), proportions(cur_counts)
    widths_r = np.diff(xr)
    widths_c = np.diff(xc)
    bound = float(np.sum(widths_r * pr) + np.sum(widths_c * pc))
    return w, bound


def _finite_1d(x: np.ndarray, field: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise InvalidArgument(f"{field} must be one-dimensional", field=field)
    return a[np.isfinite(a)]
