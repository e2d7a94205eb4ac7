"""Exact path-dependent TreeSHAP for XGBoost and LightGBM ensembles, tabulated at load.

The libraries' own ``pred_contribs`` / ``pred_contrib`` walk every tree's paths for each row and
cost 0.3-1.5 ms for a 200-tree model on one row, most of it the Python wrapper (XGBoost builds a
``DMatrix`` per call). This module computes the same numbers from a table built once per model
version, so a row costs a handful of numpy operations over the ensemble's leaves.

The identity it rests on (Lundberg et al., "From local explanations to global understanding with
explainable AI for trees", 2020, Algorithm 2): path-dependent TreeSHAP values are the Shapley
values of the game ``v(S) = sum over leaves l of value_l * prod_{j in U_l} (o_lj if j in S else
z_lj)``, where ``U_l`` are the distinct features split on along the path to leaf ``l``, ``o_lj``
is 1 when the row follows every split on feature ``j`` along that path (else 0) and ``z_lj`` is
the product of the cover fractions (child cover / parent cover) of those splits. Each leaf's term
depends only on its own ``d = |U_l|`` features, so its Shapley value for ``i`` in ``U_l`` is::

    value_l * (o_i - z_i) * sum_{S subset of U_l - {i}} w(|S|, d) * prod_{j in S} o_j
                                                      * prod_{j in U_l - S - {i}} z_j

with ``w(s, d) = s! (d - s - 1)! / d!``. The ``o`` are bits, so for one leaf the value is a
function of the row's bit pattern over ``U_l`` only: ``2**d`` patterns times ``d`` features.
:class:`TreeTable` stores that table for every leaf (grouped by ``d``; the inner sum is the
weighted elementary symmetric polynomials of the ``z`` of the pattern's one-bits). Per row it
evaluates every split on every path (a vector compare), folds the failed splits into each leaf's
pattern, gathers the table entries and adds them up per feature. The bias is the base margin plus
``sum_l value_l * prod_j z_lj`` (the ensemble's expected margin), as the libraries report it.

The table is refused (the caller keeps the library's own contributions) when it would exceed
:data:`MAX_TABLE_ENTRIES` (deep trees), and every table is checked against the library's own
contributions on probe rows when it is built (:func:`check_against`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# 4M float64 entries (32 MB): a 500-tree ensemble of depth 6 fits with room to spare, depth 8
# and beyond (256 patterns x 8 features per leaf) generally does not.
MAX_TABLE_ENTRIES = 1 << 22
LIGHTGBM_ZERO = 1e-35  # LightGBM's kZeroThreshold: |x| <= this counts as zero


class TableUnavailable(Exception):
    """The model cannot be tabulated; the caller keeps the library's contributions."""


@dataclass(frozen=True)
class Tree:
    """One tree as parallel per-node arrays (a leaf has ``left == -1``).

    ``nan_default``: a NaN input takes the ``default_left`` direction (else it is read as 0.0,
    LightGBM's ``missing_type=None``); ``zero_default``: an input with ``|x| <= 1e-35`` takes the
    default direction (LightGBM's ``missing_type=Zero``).
    """

    left: Sequence[int]
    right: Sequence[int]
    feature: Sequence[int]
    threshold: Sequence[float]
    default_left: Sequence[bool]
    nan_default: Sequence[bool]
    zero_default: Sequence[bool]
    cover: Sequence[float]
    value: Sequence[float]


class _Leaf:
    __slots__ = ("features", "steps", "value", "z")

    def __init__(self, value: float) -> None:
        self.value = value
        self.features: list[int] = []  # distinct features on the path, in first-seen order
        self.z: list[float] = []  # their cover fractions
        self.steps: list[tuple[int, bool]] = []  # (node, the path goes left there)


def _leaves(tree: Tree) -> list[_Leaf]:
    out: list[_Leaf] = []
    # iterative walk: (node, path so far as (node, goes_left, child cover fraction))
    stack: list[tuple[int, list[tuple[int, bool, float]]]] = [(0, [])]
    while stack:
        node, path = stack.pop()
        if tree.left[node] < 0:
            leaf = _Leaf(float(tree.value[node]))
            for parent, goes_left, fraction in path:
                f = int(tree.feature[parent])
                if f in leaf.features:
                    leaf.z[leaf.features.index(f)] *= fraction
                else:
                    leaf.features.append(f)
                    leaf.z.append(fraction)
                leaf.steps.append((parent, goes_left))
            out.append(leaf)
            continue
        cover = float(tree.cover[node])
        for child, goes_left in ((tree.left[node], True), (tree.right[node], False)):
            fraction = float(tree.cover[child]) / cover if cover > 0 else 0.0
            stack.append((int(child), [*path, (node, goes_left, fraction)]))
    return out


def _pattern_table(z: np.ndarray, value: np.ndarray) -> np.ndarray:
    """For leaves sharing ``d``: ``table[l, m, i]``, the leaf's SHAP value for its i-th feature
    when the row's bit pattern over the leaf's features is ``m``. ``z`` is (L, d)."""
    n, d = z.shape
    weights = [math.factorial(s) * math.factorial(d - s - 1) / math.factorial(d) for s in range(d)]
    table = np.empty((n, 1 << d, d), dtype=np.float64)
    for m in range(1 << d):
        ones = [j for j in range(d) if m >> j & 1]
        for i in range(d):
            others = [j for j in ones if j != i]
            # coefficients of prod_{j in others} (z_j + t): coef[s] = e_{a-s}(z_others)
            coef = [np.ones(n)]
            for j in others:
                nxt = [coef[0] * z[:, j]]
                for s in range(1, len(coef)):
                    nxt.append(coef[s - 1] + coef[s] * z[:, j])
                nxt.append(coef[-1].copy())
                coef = nxt
            inner = sum((weights[s] * coef[s] for s in range(len(coef))), np.zeros(n))
            zeros = [j for j in range(d) if j != i and not m >> j & 1]
            rest = np.prod(z[:, zeros], axis=1) if zeros else np.ones(n)
            table[:, m, i] = value * ((m >> i & 1) - z[:, i]) * rest * inner
    return table


class _Condition:
    """What a path asks of one feature: the interval its splits leave, and the outcome for a
    NaN and for a LightGBM zero (the splits' missing-value rules, fixed at build time)."""

    __slots__ = ("has_zero", "hi", "lo", "nan", "tiny_threshold", "zero")

    def __init__(self) -> None:
        self.lo = -math.inf
        self.hi = math.inf
        self.nan = True
        self.zero = True
        self.has_zero = False  # a split with missing_type=Zero: |x| <= 1e-35 takes its default
        self.tiny_threshold = False


def _conditions(tree: Tree, leaf: _Leaf) -> list[_Condition]:
    out = [_Condition() for _ in leaf.features]
    for node, goes_left in leaf.steps:
        c = out[leaf.features.index(int(tree.feature[node]))]
        t = float(tree.threshold[node])  # (XGBoost's bounds are made float32 in TreeTable)
        if goes_left:
            c.hi = min(c.hi, t)
        else:
            c.lo = max(c.lo, t)
        default = bool(tree.default_left[node]) == goes_left
        if tree.nan_default[node] or tree.zero_default[node]:
            c.nan &= default
        else:  # LightGBM missing_type=None: NaN is read as 0.0
            c.nan &= (t >= 0.0) == goes_left
        if tree.zero_default[node]:
            c.zero &= default
            c.has_zero = True
        else:
            c.zero &= (t >= 0.0) == goes_left
            c.tiny_threshold |= -LIGHTGBM_ZERO <= t < LIGHTGBM_ZERO
    for c in out:
        if c.has_zero and c.tiny_threshold:  # a tiny x would not compare as 0.0 does
            raise TableUnavailable("a split threshold inside LightGBM's zero range")
    return out


class TreeTable:
    """Path-dependent TreeSHAP (and nothing else) for one ensemble; see the module docstring.

    ``strict``: a split sends ``x`` left when ``x < threshold`` compared in float32 (XGBoost);
    otherwise when ``x <= threshold`` in float64 (LightGBM).

    Per row: every (leaf, feature on its path) cell checks the row's value against the interval
    the path's splits on that feature leave (NaN and LightGBM's zero rule are fixed per cell at
    build time), the cells' bits are packed into each leaf's pattern, and the pattern picks the
    leaf's table row. Cells sit in a dense (leaves, width) matrix, ``width`` the largest ``d``
    rounded up to 1, 2, 4 or 8, so the bits pack with one ``np.packbits``.
    """

    def __init__(
        self,
        trees: Sequence[Tree],
        n_features: int,
        base_margin: float,
        *,
        strict: bool,
        max_entries: int = MAX_TABLE_ENTRIES,
    ) -> None:
        self.n_features = n_features
        self.strict = strict
        leaves: list[_Leaf] = []
        conditions: list[list[_Condition]] = []
        bias = base_margin
        for tree in trees:
            for leaf in _leaves(tree):
                bias += leaf.value * math.prod(leaf.z)
                if leaf.features:  # a one-leaf tree is all bias
                    leaves.append(leaf)
                    conditions.append(_conditions(tree, leaf))
        self.bias = bias
        self.leaves = len(leaves)
        d = np.array([len(leaf.features) for leaf in leaves], dtype=np.int64)
        deepest = int(d.max()) if len(d) else 1
        if deepest > 8:
            raise TableUnavailable(f"a path splits on {deepest} distinct features (more than 8)")
        self.entries = int(((np.int64(1) << d) * d).sum())
        if self.entries > max_entries:
            raise TableUnavailable(f"the table would hold {self.entries} entries (> {max_entries})")
        if any(not (0 <= f < n_features) for leaf in leaves for f in leaf.features):
            raise TableUnavailable("a split reads a feature outside the model's inputs")
        width = next(w for w in (1, 2, 4, 8) if w >= deepest)
        rows = -(-max(len(leaves), 1) // (8 // width)) * (8 // width)  # whole bytes of bits
        self._width = width

        # the table, laid out flat: leaf l's entry (m, i) is at offset[l] + m * d_l + i
        offset = np.zeros(len(leaves), dtype=np.int64)
        if len(leaves):
            offset[1:] = np.cumsum((np.int64(1) << d) * d)[:-1]
        table = np.empty(self.entries, dtype=np.float64)
        for size in sorted(set(d.tolist())):
            members = np.flatnonzero(d == size)
            z = np.array([leaves[k].z for k in members], dtype=np.float64)
            value = np.array([leaves[k].value for k in members], dtype=np.float64)
            block = _pattern_table(z, value).reshape(len(members), -1)
            table[offset[members][:, None] + np.arange(block.shape[1])[None, :]] = block
        self._table = table

        # the cells; padding cells never hold (lo = +inf), read feature 0 and count to a spare
        # slot past the last feature
        feature = np.zeros((rows, width), dtype=np.intp)
        slot = np.full((rows, width), n_features, dtype=np.intp)
        lo = np.full((rows, width), math.inf)
        hi = np.full((rows, width), math.inf)
        nan = np.zeros((rows, width), dtype=bool)
        zero = np.zeros((rows, width), dtype=bool)
        has_zero = np.zeros((rows, width), dtype=bool)
        cell = np.zeros((rows, width), dtype=np.int64)  # offset[l] + i (i clipped for padding)
        for k, (leaf, conds) in enumerate(zip(leaves, conditions, strict=True)):
            cell[k] = offset[k] + np.minimum(np.arange(width), len(conds) - 1)
            for i, (f, c) in enumerate(zip(leaf.features, conds, strict=True)):
                feature[k, i] = slot[k, i] = f
                lo[k, i], hi[k, i] = c.lo, c.hi
                nan[k, i], zero[k, i], has_zero[k, i] = c.nan, c.zero, c.has_zero
        if strict:  # XGBoost's bounds are float32 and so is what it compares: half the bytes
            lo, hi = lo.astype(np.float32), hi.astype(np.float32)
        self._feature, self._slot, self._lo, self._hi = feature, slot.ravel(), lo, hi
        self._nan, self._cell = nan, cell
        self._zero_cells = has_zero if has_zero.any() else None
        self._zero = zero
        self._d = np.zeros(rows, dtype=np.int64)
        self._d[: len(leaves)] = d
        self._shifts = list(range(0, 8, width))
        self._mask = np.uint8((1 << width) - 1)

    def row(self, x: np.ndarray) -> np.ndarray:
        """SHAP values of one row (float64, the model's feature order), bias last."""
        if not self.leaves:
            bias_only = np.zeros(self.n_features + 1)
            bias_only[-1] = self.bias
            return bias_only
        if self.strict:  # XGBoost compares in float32
            with np.errstate(over="ignore"):
                x = x.astype(np.float32)
        v = x.take(self._feature)
        # XGBoost: lo <= x < hi (a split sends x < t left); LightGBM: lo < x <= hi (x <= t)
        strict = self.strict
        hold = (self._lo <= v) & (v < self._hi) if strict else (self._lo < v) & (v <= self._hi)
        missing = np.isnan(x)
        if missing.any():
            hold = np.where(missing.take(self._feature), self._nan, hold)
        if self._zero_cells is not None:
            tiny = np.abs(x) <= LIGHTGBM_ZERO
            if tiny.any():
                hold = np.where(tiny.take(self._feature) & self._zero_cells, self._zero, hold)
        packed = np.packbits(hold.ravel(), bitorder="little")
        if self._width < 8:  # several leaves to a byte: spread them out, one pattern per leaf
            pattern = np.empty(len(self._d), dtype=np.uint8)
            step = len(self._shifts)
            for k, shift in enumerate(self._shifts):
                pattern[k::step] = (packed >> shift) & self._mask
        else:
            pattern = packed
        index = self._cell + (pattern * self._d)[:, None]
        values = self._table.take(index.ravel())
        sums: np.ndarray = np.bincount(self._slot, weights=values, minlength=self.n_features + 1)
        sums[-1] = self.bias  # (the spare slot past the last feature collected the padding)
        return sums

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """SHAP values of each row of a 2-D matrix: shape (rows, n_features + 1), bias last."""
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected a matrix with {self.n_features} columns, got {x.shape}")
        out = np.empty((x.shape[0], self.n_features + 1), dtype=np.float64)
        for k, r in enumerate(np.asarray(x, dtype=np.float64)):
            out[k] = self.row(r)
        return out


# ------------------------------------------------------------------------------------ parsers
def xgboost_table(
    booster: Any, iteration_range: tuple[int, int], max_entries: int = MAX_TABLE_ENTRIES
) -> TreeTable:
    """The table of a ``binary:logistic`` gbtree booster (numeric splits only), restricted to
    ``iteration_range`` as ``predict`` reads it ((0, 0) is every iteration)."""
    model = json.loads(booster.save_raw("json"))["learner"]
    booster_model = model["gradient_booster"]
    if booster_model["name"] != "gbtree":
        raise TableUnavailable(f"booster {booster_model['name']!r}")
    body = booster_model["model"]
    indptr = [int(i) for i in body["iteration_indptr"]]
    start, end = iteration_range
    end = len(indptr) - 1 if end == 0 else end
    chosen = body["trees"][indptr[start] : indptr[end]]
    params = model["learner_model_param"]
    if int(params.get("num_target", "1")) != 1 or int(params.get("num_class", "0")) > 1:
        raise TableUnavailable("more than one output")
    base_score = float(np.float32(float(str(params["base_score"]).strip("[]"))))
    base_margin = math.log(base_score / (1 - base_score))
    trees = []
    for t in chosen:
        if any(int(s) != 0 for s in t["split_type"]):
            raise TableUnavailable("categorical splits")
        if int(t["tree_param"].get("size_leaf_vector", "1")) > 1:
            raise TableUnavailable("vector leaves")
        n = len(t["left_children"])
        trees.append(
            Tree(
                left=t["left_children"],
                right=t["right_children"],
                feature=t["split_indices"],
                threshold=t["split_conditions"],
                default_left=[bool(b) for b in t["default_left"]],
                nan_default=[True] * n,
                zero_default=[False] * n,
                cover=t["sum_hessian"],
                value=[float(np.float32(c)) for c in t["split_conditions"]],
            )
        )
    return TreeTable(
        trees,
        booster.num_features(),
        base_margin,
        strict=True,
        max_entries=max_entries,
    )


def _lightgbm_tree(root: dict[str, Any]) -> Tree:
    """One tree of ``dump_model()`` as per-node arrays (nodes numbered in walk order)."""
    nodes: list[dict[str, Any]] = []
    left: list[int] = []
    right: list[int] = []
    stack: list[tuple[dict[str, Any], int, bool]] = [(root, -1, False)]
    while stack:
        node, parent, is_left = stack.pop()
        index = len(nodes)
        nodes.append(node)
        left.append(-1)
        right.append(-1)
        if parent >= 0:
            (left if is_left else right)[parent] = index
        if "split_feature" in node:
            if node.get("decision_type") != "<=":
                raise TableUnavailable("categorical splits")
            stack += [(node["right_child"], index, False), (node["left_child"], index, True)]
        elif "leaf_value" not in node:
            raise TableUnavailable("a node that is neither a split nor a leaf")
        elif "leaf_coeff" in node:
            raise TableUnavailable("linear trees")
    missing = [str(n.get("missing_type", "None")) for n in nodes]
    return Tree(
        left=left,
        right=right,
        feature=[int(n.get("split_feature", 0)) for n in nodes],
        threshold=[float(n.get("threshold", 0.0)) for n in nodes],
        default_left=[bool(n.get("default_left", False)) for n in nodes],
        nan_default=[m == "NaN" for m in missing],
        zero_default=[m == "Zero" for m in missing],
        cover=[float(n.get("internal_count", n.get("leaf_count", 0))) for n in nodes],
        value=[float(n.get("leaf_value", 0.0)) for n in nodes],
    )


def lightgbm_table(booster: Any, max_entries: int = MAX_TABLE_ENTRIES) -> TreeTable:
    """The table of a binary LightGBM booster (numerical splits, no linear trees), with the
    iterations ``predict`` uses by default (the best iteration when there is one)."""
    dump = booster.dump_model()
    if int(dump.get("num_tree_per_iteration", 1)) != 1 or dump.get("average_output"):
        raise TableUnavailable("more than one tree per iteration, or averaged output")
    trees = [_lightgbm_tree(info["tree_structure"]) for info in dump["tree_info"]]
    return TreeTable(
        trees, int(dump["max_feature_idx"]) + 1, 0.0, strict=False, max_entries=max_entries
    )


def probe_rows(table: TreeTable) -> np.ndarray:
    """Rows that put the table's edge cases to it: each feature at the bounds its paths' splits
    leave (equal, and the next number below), zero, and NaN."""
    n = table.n_features
    rows: list[np.ndarray] = [np.zeros(n), np.full(n, np.nan)]
    bounds: list[list[float]] = [[] for _ in range(n)]
    for f, lo, hi in zip(
        table._feature.ravel().tolist(),
        table._lo.ravel().tolist(),
        table._hi.ravel().tolist(),
        strict=True,
    ):
        bounds[f].extend(b for b in (lo, hi) if math.isfinite(b))
    distinct = [sorted(set(b)) for b in bounds]
    for k in range(8):
        row = np.zeros(n)
        for f, values in enumerate(distinct):
            if values:
                t = values[(k * 7919) % len(values)]
                row[f] = t if k % 2 == 0 else np.nextafter(t, -np.inf)
            if (f + k) % 5 == 0:
                row[f] = np.nan
        rows.append(row)
    return np.vstack(rows)


def check_against(
    table: TreeTable, library: Callable[[np.ndarray], np.ndarray], tolerance: float
) -> None:
    """Refuse the table unless it gives the library's contributions on :func:`probe_rows`."""
    rows = probe_rows(table)
    want = np.asarray(library(rows), dtype=np.float64)
    got = table(rows)
    gap = float(np.max(np.abs(got - want))) if want.size else 0.0
    if want.shape != got.shape or not gap <= tolerance:
        raise TableUnavailable(f"the table differs from the library's contributions by {gap:g}")
