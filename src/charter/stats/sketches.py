"""Reference profiles and mergeable accumulators.

A :class:`ReferenceProfile` is computed once from the reference (training or validation) data and
saved as JSON next to the model version; monitoring then never needs the reference rows again.
Current data flows through a :class:`CurrentAccumulator` with ``update`` (a chunk), ``merge``
(another accumulator, e.g. from another worker) and is compared with :func:`charter.stats.compare`.

Numeric columns
    *Cuts* are reference quantiles at ``j / fine_bins`` (``inverted_cdf``: each cut is an observed
    value), taken from a systematic sample of at most ``sample_size`` rows, de-duplicated, with any
    cut at the reference minimum dropped so that no bin is empty by construction. Bins are
    ``(-inf, c1), [c1, c2), ..., [ck, inf)``. The coarse PSI bins (``bins``, deciles by default)
    are a subset of the same cuts, so their counts are sums of the fine counts and agree exactly
    however the data was split. Four more cuts record data quality: below the reference minimum,
    above the reference maximum, and outside the outlier fences ``Q1 - 3 IQR`` and ``Q3 + 3 IQR``
    (Tukey's far-out fences on the reference).
    Moments are kept as sums of ``x - reference mean`` and its square, so merging is addition.
    NaN counts as missing, +-inf as a non-finite (schema) violation; neither enters a distribution.

Categorical columns
    Counts per level (as text). Levels unseen in the reference are counted under their own name
    and reported as new categories; missing values (None, NaN) are counted apart.

Merging adds integer counts, so binned statistics are exactly the same for one pass, a stream of
chunks, or partitions merged in any order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from charter.errors import InvalidArgument

PROFILE_VERSION = 1
DEFAULT_BINS = 10
DEFAULT_FINE_BINS = 1000
DEFAULT_SAMPLE_SIZE = 250_000
FENCE_IQR = 3.0
MAX_LEVELS = 10_000
BLOCK = 1 << 15

Data = Any  # a pandas DataFrame or a mapping of column name to 1-D array


# ------------------------------------------------------------------------------------ binning
class Binner:
    """Fast bin index of values against sorted cuts (``searchsorted(cuts, x, 'right')``).

    A uniform lookup table over the inner range maps each value to the index of the first cut
    at or above its cell, and at most a few vectorised steps finish the job; values outside the
    table's range (the tails) use ``searchsorted``. The result equals ``searchsorted`` exactly.
    """

    def __init__(self, cuts: np.ndarray, inner: tuple[float, float] | None = None) -> None:
        self.cuts = np.asarray(cuts, dtype=np.float64)
        self.nbins = self.cuts.size + 1
        self._lut: np.ndarray | None = None
        if self.cuts.size < 8:
            return
        lo, hi = inner if inner is not None else (float(self.cuts[0]), float(self.cuts[-1]))
        if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
            return
        for grid in (1 << 16, 1 << 18, 1 << 20):
            starts = lo + (hi - lo) * (np.arange(grid, dtype=np.float64) / grid)
            lut = np.searchsorted(self.cuts, starts, side="right").astype(np.int32)
            last = np.searchsorted(self.cuts, hi, side="right")
            nxt = np.append(lut[1:], np.int32(last)).astype(np.int32)
            steps = int(np.max(nxt - lut))
            if steps <= 3:
                self._lut, self._steps, self._lo, self._hi = lut, steps, lo, hi
                self._scale = grid / (hi - lo)
                self._grid = grid
                self._padded = np.append(self.cuts, np.inf)
                return

    def __call__(
        self, x: np.ndarray, xmin: float | None = None, xmax: float | None = None
    ) -> np.ndarray:
        """Bin indices of finite values ``x`` (``xmin``/``xmax``, when known, save two passes)."""
        if self._lut is None:
            return np.searchsorted(self.cuts, x, side="right")
        cell = np.subtract(x, self._lo)
        cell *= self._scale
        np.clip(cell, 0, self._grid - 1, out=cell)
        b = self._lut[cell.astype(np.int32)]
        del cell
        for _ in range(self._steps):
            b += x >= self._padded[b]
        lo_out = (float(x.min()) if xmin is None else xmin) < self._lo
        hi_out = (float(x.max()) if xmax is None else xmax) >= self._hi
        for out in (
            np.flatnonzero(x < self._lo) if lo_out else None,
            np.flatnonzero(x >= self._hi) if hi_out else None,
        ):
            if out is not None and out.size:
                b[out] = np.searchsorted(self.cuts, x[out], side="right")
        return b

    def summarize(
        self, x: np.ndarray, shift: float
    ) -> tuple[np.ndarray, float, float, float, float]:
        """One blocked pass over finite ``x``: bin counts, sum and sum of squares of
        ``x - shift``, minimum and maximum.

        Blocks of ``BLOCK`` values stay in cache and reuse scratch buffers, so a million values
        cost no large temporary arrays (whose page faults would dominate the arithmetic).
        """
        n = x.size
        counts = np.zeros(self.nbins, dtype=np.int64)
        s1 = s2 = 0.0
        lo_all, hi_all = math.inf, -math.inf
        size = min(BLOCK, n)
        f = np.empty(size, dtype=np.float64)
        idx = np.empty(size, dtype=np.int32)
        b = np.empty(size, dtype=np.int32)
        ge = np.empty(size, dtype=np.bool_)
        for start in range(0, n, BLOCK):
            xb = x[start : start + BLOCK]
            m = xb.size
            fb, ib, bb, gb = f[:m], idx[:m], b[:m], ge[:m]
            np.subtract(xb, shift, out=fb)
            s1 += float(fb.sum())
            s2 += float(np.dot(fb, fb))
            bmin, bmax = float(xb.min()), float(xb.max())
            lo_all, hi_all = min(lo_all, bmin), max(hi_all, bmax)
            if self._lut is None:
                counts += np.bincount(
                    np.searchsorted(self.cuts, xb, side="right"), minlength=self.nbins
                )
                continue
            np.subtract(xb, self._lo, out=fb)
            fb *= self._scale
            np.clip(fb, 0, self._grid - 1, out=fb)
            np.copyto(ib, fb, casting="unsafe")
            np.take(self._lut, ib, out=bb)
            for _ in range(self._steps):
                np.take(self._padded, bb, out=fb)
                np.greater_equal(xb, fb, out=gb)
                bb += gb
            if bmin < self._lo or bmax >= self._hi:
                out = np.flatnonzero((xb < self._lo) | (xb >= self._hi))
                bb[out] = np.searchsorted(self.cuts, xb[out], side="right")
            counts += np.bincount(bb, minlength=self.nbins)
        return counts, s1, s2, lo_all, hi_all


def _column(data: Data, name: str) -> Any:
    try:
        return data[name]
    except (KeyError, IndexError):
        raise InvalidArgument(
            f"column {name!r} is missing from the data",
            field=name,
            remedy="pass data with the same columns as the reference profile",
        ) from None


def _columns_of(data: Data) -> list[str]:
    cols = getattr(data, "columns", None)
    return [str(c) for c in (cols if cols is not None else data.keys())]


def _numeric_values(col: Any, name: str) -> np.ndarray:
    values = col.to_numpy() if hasattr(col, "to_numpy") else np.asarray(col)
    if values.dtype.kind in "fiub":
        return values.astype(np.float64, copy=False)
    try:
        return pd.to_numeric(pd.Series(values), errors="raise").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
    except (TypeError, ValueError):
        raise InvalidArgument(
            f"column {name!r} should be numeric but holds text",
            field=name,
            remedy="fix the upstream type, or declare the column categorical",
        ) from None


def _coerce_numeric(col: Any) -> tuple[np.ndarray, int]:
    """Values as float64 and how many were present but not numbers (type violations)."""
    values = col.to_numpy() if hasattr(col, "to_numpy") else np.asarray(col)
    if values.dtype.kind in "fiub":
        return values.astype(np.float64, copy=False), 0
    s = pd.Series(values, dtype=object)
    out = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = int((np.isnan(out) & s.notna().to_numpy()).sum())
    return out, bad


def is_numeric_column(col: Any) -> bool:
    dtype = getattr(col, "dtype", None)
    if dtype is None:
        dtype = np.asarray(col).dtype
    return bool(pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))


def count_levels(col: Any) -> tuple[dict[str, int], int]:
    """Counts per level (as text) and the number of missing values."""
    if isinstance(col, pd.Series) and isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        cats = col.cat.categories
        counts = np.bincount(codes[codes >= 0], minlength=len(cats))
        by_level = {str(c): int(n) for c, n in zip(cats, counts, strict=True) if n}
        return by_level, int(np.sum(codes < 0))
    s = col if isinstance(col, pd.Series) else pd.Series(np.asarray(col, dtype=object))
    vc = s.value_counts(dropna=True)
    out: dict[str, int] = {}
    for k, v in zip(vc.index, vc.to_numpy(), strict=True):
        key = str(k)
        out[key] = out.get(key, 0) + int(v)
    return out, int(s.isna().sum())


# ------------------------------------------------------------------------------------ profiles
@dataclass(frozen=True)
class NumericProfile:
    name: str
    n: int  # finite values
    n_missing: int
    n_nonfinite: int
    mean: float
    std: float
    minimum: float
    maximum: float
    q1: float
    q3: float
    cuts: np.ndarray  # all cuts, sorted (quantile cuts plus the quality cuts)
    counts: np.ndarray  # reference counts per fine bin (len(cuts) + 1)
    psi_cuts: np.ndarray  # indices into ``cuts`` of the coarse PSI bin boundaries
    quality_cuts: dict[str, int]  # below_min, above_max, outlier_low, outlier_high -> cut index
    kind: str = "numeric"

    @property
    def fence_low(self) -> float:
        return self.q1 - FENCE_IQR * (self.q3 - self.q1)

    @property
    def fence_high(self) -> float:
        return self.q3 + FENCE_IQR * (self.q3 - self.q1)

    def coarse(self, fine_counts: np.ndarray) -> np.ndarray:
        starts = np.concatenate([[0], self.psi_cuts + 1]).astype(np.int64)
        return np.add.reduceat(np.asarray(fine_counts), starts) if fine_counts.size else fine_counts

    def coarse_edges(self) -> np.ndarray:
        return self.cuts[self.psi_cuts]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "numeric",
            "name": self.name,
            "n": self.n,
            "n_missing": self.n_missing,
            "n_nonfinite": self.n_nonfinite,
            "mean": self.mean,
            "std": self.std,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "q1": self.q1,
            "q3": self.q3,
            "cuts": [float(c).hex() for c in self.cuts],  # hex: exact round trip through JSON
            "counts": self.counts.tolist(),
            "psi_cuts": self.psi_cuts.tolist(),
            "quality_cuts": dict(self.quality_cuts),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NumericProfile:
        return cls(
            name=str(d["name"]),
            n=int(d["n"]),
            n_missing=int(d["n_missing"]),
            n_nonfinite=int(d["n_nonfinite"]),
            mean=float(d["mean"]),
            std=float(d["std"]),
            minimum=float(d["minimum"]),
            maximum=float(d["maximum"]),
            q1=float(d["q1"]),
            q3=float(d["q3"]),
            cuts=np.array([float.fromhex(c) for c in d["cuts"]], dtype=np.float64),
            counts=np.asarray(d["counts"], dtype=np.int64),
            psi_cuts=np.asarray(d["psi_cuts"], dtype=np.int64),
            quality_cuts={str(k): int(v) for k, v in d["quality_cuts"].items()},
        )


@dataclass(frozen=True)
class CategoricalProfile:
    name: str
    n: int
    n_missing: int
    levels: tuple[str, ...]
    counts: np.ndarray
    kind: str = "categorical"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "categorical",
            "name": self.name,
            "n": self.n,
            "n_missing": self.n_missing,
            "levels": list(self.levels),
            "counts": self.counts.tolist(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CategoricalProfile:
        return cls(
            name=str(d["name"]),
            n=int(d["n"]),
            n_missing=int(d["n_missing"]),
            levels=tuple(str(x) for x in d["levels"]),
            counts=np.asarray(d["counts"], dtype=np.int64),
        )


ColumnProfile = NumericProfile | CategoricalProfile


def _quantile_cuts(sample: np.ndarray, k: int) -> np.ndarray:
    """``inverted_cdf`` quantiles of a sorted sample at j/k, j = 1..k-1."""
    m = sample.size
    idx = np.ceil(np.arange(1, k) * m / k).astype(np.int64) - 1
    return sample[np.clip(idx, 0, m - 1)]


def _numeric_profile(
    name: str, values: np.ndarray, bins: int, fine_bins: int, sample_size: int
) -> tuple[NumericProfile, Binner]:
    missing = np.isnan(values)
    finite_mask = np.isfinite(values)
    x = values[finite_mask] if not finite_mask.all() else values
    n = int(x.size)
    n_missing = int(missing.sum())
    n_nonfinite = int(values.size - n - n_missing)
    if n == 0:
        raise InvalidArgument(
            f"reference column {name!r} has no finite values",
            field=name,
            remedy="drop the column from the profile, or declare it categorical",
        )
    step = max(1, n // sample_size)
    sample = np.sort(x[::step])
    mean = float(x.mean())
    lo, hi = float(x.min()), float(x.max())
    q1, q3 = (float(v) for v in _quantile_cuts(sample, 4)[[0, 2]])
    fine = np.unique(_quantile_cuts(sample, fine_bins))
    fine = fine[fine > lo]
    coarse = np.unique(_quantile_cuts(sample, bins))
    coarse = coarse[coarse > lo]
    fence_lo, fence_hi = q1 - FENCE_IQR * (q3 - q1), q3 + FENCE_IQR * (q3 - q1)
    quality = {
        "below_min": lo,
        "above_max": float(np.nextafter(hi, np.inf)),
        "outlier_low": fence_lo,
        "outlier_high": float(np.nextafter(fence_hi, np.inf)),
    }
    cuts = np.unique(np.concatenate([fine, coarse, list(quality.values())]))
    psi_idx = np.searchsorted(cuts, coarse)
    q_idx = {k: int(np.searchsorted(cuts, v)) for k, v in quality.items()}
    binner = _binner_for(cuts, q_idx)
    counts, s1, s2, _, _ = binner.summarize(x, mean)
    std = math.sqrt(max(s2 / n - (s1 / n) ** 2, 0.0))
    profile = NumericProfile(
        name=name,
        n=n,
        n_missing=n_missing,
        n_nonfinite=n_nonfinite,
        mean=mean,
        std=std,
        minimum=lo,
        maximum=hi,
        q1=q1,
        q3=q3,
        cuts=cuts,
        counts=counts,
        psi_cuts=psi_idx.astype(np.int64),
        quality_cuts=q_idx,
    )
    return profile, binner


def _binner_for(cuts: np.ndarray, quality_cuts: Mapping[str, int]) -> Binner:
    """The lookup table spans the quantile cuts only: the quality cuts (reference extremes and
    outlier fences) lie in the tails, where ``searchsorted`` handles the few values."""
    mask = np.ones(cuts.size, dtype=bool)
    mask[list(quality_cuts.values())] = False
    inner = cuts[mask]
    return Binner(cuts, (float(inner[0]), float(inner[-1])) if inner.size > 1 else None)


def _categorical_profile(name: str, col: Any) -> CategoricalProfile:
    counts, n_missing = count_levels(col)
    if len(counts) > MAX_LEVELS:
        raise InvalidArgument(
            f"column {name!r} has {len(counts)} levels, more than {MAX_LEVELS}",
            field=name,
            remedy="an identifier is not a feature: drop it from the profile, or bucket it",
        )
    levels = tuple(sorted(counts, key=lambda k: (-counts[k], k)))
    return CategoricalProfile(
        name=name,
        n=int(sum(counts.values())),
        n_missing=n_missing,
        levels=levels,
        counts=np.array([counts[k] for k in levels], dtype=np.int64),
    )


@dataclass(frozen=True)
class ReferenceProfile:
    """What monitoring needs to know about the reference data, per column."""

    columns: dict[str, ColumnProfile]
    n_rows: int
    bins: int = DEFAULT_BINS
    fine_bins: int = DEFAULT_FINE_BINS
    version: int = PROFILE_VERSION
    binners: dict[str, Binner] = field(default_factory=dict, compare=False, repr=False)

    def binner(self, name: str) -> Binner:
        b = self.binners.get(name)
        if b is None:
            p = self.columns[name]
            assert isinstance(p, NumericProfile)
            b = _binner_for(p.cuts, p.quality_cuts)
            self.binners[name] = b
        return b

    def accumulator(self) -> CurrentAccumulator:
        return CurrentAccumulator(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "charter_profile_version": self.version,
            "n_rows": self.n_rows,
            "bins": self.bins,
            "fine_bins": self.fine_bins,
            "columns": [p.to_dict() for p in self.columns.values()],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReferenceProfile:
        if d.get("charter_profile_version") != PROFILE_VERSION:
            raise InvalidArgument(
                f"unsupported profile version {d.get('charter_profile_version')!r}",
                field="charter_profile_version",
                remedy="rebuild the profile with this version of Charter",
            )
        cols: dict[str, ColumnProfile] = {}
        for c in d["columns"]:
            p: ColumnProfile = (
                NumericProfile.from_dict(c) if c["kind"] == "numeric"
                else CategoricalProfile.from_dict(c)
            )  # fmt: skip
            cols[p.name] = p
        return cls(cols, int(d["n_rows"]), int(d["bins"]), int(d["fine_bins"]))

    @classmethod
    def from_json(cls, text: str) -> ReferenceProfile:
        try:
            return cls.from_dict(json.loads(text))
        except InvalidArgument:
            raise
        except (ValueError, KeyError, TypeError) as e:
            raise InvalidArgument(
                f"not a Charter reference profile: {e}",
                field="profile",
                remedy="build one with charter.stats.build_profile",
            ) from None


def build_profile(
    data: Data,
    *,
    numeric: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    bins: int = DEFAULT_BINS,
    fine_bins: int = DEFAULT_FINE_BINS,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
) -> ReferenceProfile:
    """Profile the reference data. Column kinds are inferred unless ``numeric``/``categorical``
    name them (then only those columns are profiled)."""
    if not isinstance(bins, int) or bins < 2:
        raise InvalidArgument("bins must be an integer of at least 2", field="bins")
    if not isinstance(fine_bins, int) or fine_bins < bins or fine_bins % bins:
        raise InvalidArgument(
            "fine_bins must be a multiple of bins", field="fine_bins", remedy="e.g. 1000 for 10"
        )
    if sample_size < fine_bins:
        raise InvalidArgument("sample_size must be at least fine_bins", field="sample_size")
    if numeric is None and categorical is None:
        names = _columns_of(data)
        numeric = [c for c in names if is_numeric_column(_column(data, c))]
        categorical = [c for c in names if c not in numeric]
    numeric, categorical = list(numeric or []), list(categorical or [])
    if overlap := set(numeric) & set(categorical):
        raise InvalidArgument(
            f"columns declared both numeric and categorical: {sorted(overlap)}", field="numeric"
        )
    n_rows = len(data[(numeric + categorical)[0]]) if numeric + categorical else 0

    profiles: dict[str, ColumnProfile] = {}
    binners: dict[str, Binner] = {}
    for name in numeric:
        values = _numeric_values(_column(data, name), name)
        profiles[name], binners[name] = _numeric_profile(name, values, bins, fine_bins, sample_size)
    for name in categorical:
        profiles[name] = _categorical_profile(name, _column(data, name))
    return ReferenceProfile(profiles, n_rows, bins, fine_bins, binners=binners)


# ------------------------------------------------------------------------------------ accumulators
@dataclass
class NumericAccumulator:
    counts: np.ndarray
    n: int = 0
    n_missing: int = 0
    n_nonfinite: int = 0
    n_type_errors: int = 0
    shifted_sum: float = 0.0  # sum of (x - reference mean)
    shifted_sumsq: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf

    def merge(self, o: NumericAccumulator) -> NumericAccumulator:
        return NumericAccumulator(
            self.counts + o.counts,
            self.n + o.n,
            self.n_missing + o.n_missing,
            self.n_nonfinite + o.n_nonfinite,
            self.n_type_errors + o.n_type_errors,
            self.shifted_sum + o.shifted_sum,
            self.shifted_sumsq + o.shifted_sumsq,
            min(self.minimum, o.minimum),
            max(self.maximum, o.maximum),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "numeric",
            "counts": self.counts.tolist(),
            "n": self.n,
            "n_missing": self.n_missing,
            "n_nonfinite": self.n_nonfinite,
            "n_type_errors": self.n_type_errors,
            "shifted_sum": self.shifted_sum,
            "shifted_sumsq": self.shifted_sumsq,
            "minimum": self.minimum,
            "maximum": self.maximum,
        }


@dataclass
class CategoricalAccumulator:
    counts: dict[str, int] = field(default_factory=dict)
    n_missing: int = 0

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    def merge(self, o: CategoricalAccumulator) -> CategoricalAccumulator:
        out = dict(self.counts)
        for k, v in o.counts.items():
            out[k] = out.get(k, 0) + v
        return CategoricalAccumulator(out, self.n_missing + o.n_missing)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "categorical", "counts": dict(self.counts), "n_missing": self.n_missing}


ColumnAccumulator = NumericAccumulator | CategoricalAccumulator


def _merge(a: ColumnAccumulator, b: ColumnAccumulator) -> ColumnAccumulator:
    if isinstance(a, NumericAccumulator) and isinstance(b, NumericAccumulator):
        return a.merge(b)
    if isinstance(a, CategoricalAccumulator) and isinstance(b, CategoricalAccumulator):
        return a.merge(b)
    raise InvalidArgument("cannot merge a numeric and a categorical accumulator", field="other")


class CurrentAccumulator:
    """Current-window state for every profiled column: ``update``, ``merge``, then compare."""

    def __init__(self, profile: ReferenceProfile) -> None:
        self.profile = profile
        self.rows = 0
        self.missing_columns: set[str] = set()  # profiled columns absent from some chunk
        self.extra_columns: set[str] = set()  # columns the profile does not know
        self.columns: dict[str, ColumnAccumulator] = {
            name: (
                NumericAccumulator(np.zeros(p.cuts.size + 1, dtype=np.int64))
                if isinstance(p, NumericProfile)
                else CategoricalAccumulator()
            )
            for name, p in profile.columns.items()
        }

    def _update_numeric(self, name: str, col: Any) -> NumericAccumulator:
        p = self.profile.columns[name]
        assert isinstance(p, NumericProfile)
        values, type_errors = _coerce_numeric(col)
        finite = np.isfinite(values)
        if finite.all():
            x, n_missing, n_nonfinite = values, 0, 0
        else:
            x = values[finite]
            n_missing = int(np.isnan(values).sum()) - type_errors
            n_nonfinite = int(values.size - x.size - n_missing - type_errors)
        if x.size == 0:
            z = np.zeros(p.cuts.size + 1, dtype=np.int64)
            return NumericAccumulator(z, 0, n_missing, n_nonfinite, type_errors)
        counts, s1, s2, xmin, xmax = self.profile.binner(name).summarize(x, p.mean)
        return NumericAccumulator(
            counts, int(x.size), n_missing, n_nonfinite, type_errors, s1, s2, xmin, xmax
        )

    def _update_one(self, name: str, data: Data, n_rows: int) -> ColumnAccumulator:
        if name in self.missing_columns:
            prof = self.profile.columns[name]
            if isinstance(prof, NumericProfile):
                return NumericAccumulator(np.zeros(prof.cuts.size + 1, dtype=np.int64), 0, n_rows)
            return CategoricalAccumulator({}, n_rows)
        col = _column(data, name)
        if isinstance(self.profile.columns[name], NumericProfile):
            return self._update_numeric(name, col)
        counts, n_missing = count_levels(col)
        return CategoricalAccumulator(counts, n_missing)

    def update(self, data: Data) -> CurrentAccumulator:
        """Add a chunk of rows (a DataFrame or a mapping of column to array)."""
        present = set(_columns_of(data))
        names = list(self.columns)
        self.missing_columns |= {n for n in names if n not in present}
        self.extra_columns |= present - set(names)
        lengths = {len(_column(data, n)) for n in names if n in present}
        if len(lengths) > 1:
            raise InvalidArgument("columns have different lengths", field="data")
        n_rows = lengths.pop() if lengths else 0
        parts = [self._update_one(n, data, n_rows) for n in names]
        for name, part in zip(names, parts, strict=True):
            self.columns[name] = _merge(self.columns[name], part)
        self.rows += n_rows
        return self

    def merge(self, other: CurrentAccumulator) -> CurrentAccumulator:
        """A new accumulator holding both; the profiles must be the same."""
        if other.profile is not self.profile and other.profile.to_dict() != self.profile.to_dict():
            raise InvalidArgument(
                "cannot merge accumulators built on different reference profiles",
                field="other",
                remedy="build every partition's accumulator from the same profile",
            )
        out = CurrentAccumulator(self.profile)
        out.rows = self.rows + other.rows
        out.missing_columns = self.missing_columns | other.missing_columns
        out.extra_columns = self.extra_columns | other.extra_columns
        for name in self.columns:
            out.columns[name] = _merge(self.columns[name], other.columns[name])
        return out

    def to_state(self) -> dict[str, Any]:
        """Plain JSON types (no profile: the receiver has it), for moving partial accumulators
        between processes, e.g. from Spark workers to the driver."""
        cols: dict[str, Any] = {}
        for name, a in self.columns.items():
            d = a.to_dict()
            if isinstance(a, NumericAccumulator):
                d["minimum"] = None if math.isinf(a.minimum) else a.minimum
                d["maximum"] = None if math.isinf(a.maximum) else a.maximum
            cols[name] = d
        return {
            "rows": self.rows,
            "missing_columns": sorted(self.missing_columns),
            "extra_columns": sorted(self.extra_columns),
            "columns": cols,
        }

    @classmethod
    def from_state(cls, profile: ReferenceProfile, state: Mapping[str, Any]) -> CurrentAccumulator:
        """The accumulator that ``to_state`` described, on ``profile``."""
        out = cls(profile)
        if set(state["columns"]) != set(out.columns):
            raise InvalidArgument(
                "the state's columns are not the profile's",
                field="state.columns",
                remedy="restore the state on the profile it was computed with",
            )
        out.rows = int(state["rows"])
        out.missing_columns = set(state["missing_columns"])
        out.extra_columns = set(state["extra_columns"])
        for name, d in state["columns"].items():
            if d["kind"] == "numeric":
                lo, hi = d["minimum"], d["maximum"]
                out.columns[name] = NumericAccumulator(
                    np.asarray(d["counts"], dtype=np.int64),
                    int(d["n"]),
                    int(d["n_missing"]),
                    int(d["n_nonfinite"]),
                    int(d["n_type_errors"]),
                    float(d["shifted_sum"]),
                    float(d["shifted_sumsq"]),
                    math.inf if lo is None else float(lo),
                    -math.inf if hi is None else float(hi),
                )
            else:
                counts = {str(k): int(v) for k, v in d["counts"].items()}
                out.columns[name] = CategoricalAccumulator(counts, int(d["n_missing"]))
        return out


def accumulate(profile: ReferenceProfile, chunks: Iterable[Data]) -> CurrentAccumulator:
    acc = profile.accumulator()
    for chunk in chunks:
        acc.update(chunk)
    return acc
