"""The TreeSHAP table (charter.serving.tree_table) against brute-force Shapley values, the
libraries' own contributions and shap's TreeExplainer."""

from __future__ import annotations

import itertools
import math
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import shap
import xgboost as xgb
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.datasets import GERMAN_CREDIT_CATEGORICAL, GERMAN_CREDIT_FEATURES, german_credit_xy
from charter.serving.compiled import NativeScorer, compile_model
from charter.serving.tree_table import (
    TableUnavailable,
    TreeTable,
    _pattern_table,
    check_against,
    lightgbm_table,
    probe_rows,
    xgboost_table,
)

FEATURES = list(GERMAN_CREDIT_FEATURES)
# XGBoost (and shap, which asks XGBoost) returns float32 contributions summed in float32 over
# the trees: 7 significant digits. The table computes in float64 (against LightGBM, which works
# in float64, it agrees to 1e-9), so XGBoost's values are matched to 1e-6 plus a float32
# rounding of their size.
F32 = {"rtol": 1e-6, "atol": 1e-6}


@pytest.fixture(scope="module")
def codes() -> tuple[np.ndarray, np.ndarray]:
    """German Credit as numbers (categorical codes), with NaN in two columns."""
    x, y = german_credit_xy()
    frame = x.copy()
    for name in GERMAN_CREDIT_CATEGORICAL:
        frame[name] = pd.Categorical(frame[name]).codes.astype(np.float64)
    matrix = frame[FEATURES].to_numpy(dtype=np.float64)
    matrix[::9, FEATURES.index("credit_amount")] = np.nan
    matrix[::13, FEATURES.index("age_in_years")] = np.nan
    return matrix, y


@pytest.fixture(scope="module")
def xgb_model(codes: tuple[np.ndarray, np.ndarray]) -> xgb.XGBClassifier:
    x, y = codes
    return xgb.XGBClassifier(
        n_estimators=200, max_depth=4, learning_rate=0.05, n_jobs=1, random_state=0
    ).fit(x, y)


def _xgb_library(booster: Any, x: np.ndarray, rounds: tuple[int, int] = (0, 0)) -> np.ndarray:
    matrix = xgb.DMatrix(x, missing=np.nan)
    return np.asarray(
        booster.predict(matrix, pred_contribs=True, iteration_range=rounds), dtype=np.float64
    )


def _brute_force(z: np.ndarray, value: float, ones: set[int]) -> list[float]:
    """Shapley values of v(S) = value * prod_j (o_j if j in S else z_j), by enumeration."""
    d = len(z)

    def v(s: tuple[int, ...]) -> float:
        return value * math.prod((1.0 if j in ones else 0.0) if j in s else z[j] for j in range(d))

    out = []
    for i in range(d):
        rest = [j for j in range(d) if j != i]
        total = 0.0
        for size in range(d):
            w = math.factorial(size) * math.factorial(d - size - 1) / math.factorial(d)
            for s in itertools.combinations(rest, size):
                total += w * (v(tuple(sorted((*s, i)))) - v(s))
        out.append(total)
    return out


def test_the_pattern_table_is_the_shapley_value_of_each_leafs_game() -> None:
    rng = np.random.default_rng(7)
    for d in range(1, 6):
        z = rng.uniform(0.05, 0.95, size=(3, d))
        value = rng.normal(size=3)
        table = _pattern_table(z, value)
        for leaf in range(3):
            for m in range(1 << d):
                ones = {j for j in range(d) if m >> j & 1}
                want = _brute_force(z[leaf], float(value[leaf]), ones)
                np.testing.assert_allclose(table[leaf, m], want, rtol=0, atol=1e-12)
                # efficiency: the values add up to v(all) - v(none)
                full = value[leaf] * (len(ones) == d)
                empty = value[leaf] * np.prod(z[leaf])
                assert table[leaf, m].sum() == pytest.approx(full - empty, abs=1e-12)


def test_xgboost_table_equals_pred_contribs_and_shaps_tree_explainer(
    codes: tuple[np.ndarray, np.ndarray], xgb_model: xgb.XGBClassifier
) -> None:
    x, _ = codes
    booster = xgb_model.get_booster()
    table = xgboost_table(booster, (0, 0))
    assert table.leaves > 2000 and table.strict
    got = table(x)
    np.testing.assert_allclose(got, _xgb_library(booster, x), **F32)
    explainer = shap.TreeExplainer(xgb_model)
    values = np.asarray(explainer.shap_values(x), dtype=np.float64)
    np.testing.assert_allclose(got[:, :-1], values, **F32)
    assert got[0, -1] == pytest.approx(float(np.ravel(explainer.expected_value)[0]), abs=1e-6)
    margin = booster.predict(xgb.DMatrix(x, missing=np.nan), output_margin=True)
    np.testing.assert_allclose(got.sum(axis=1), margin, rtol=0, atol=1e-5)


def test_xgboost_table_reads_the_best_iteration_and_one_leaf_trees(
    codes: tuple[np.ndarray, np.ndarray],
) -> None:
    x, y = codes
    clf = xgb.XGBClassifier(
        n_estimators=200, learning_rate=0.3, early_stopping_rounds=5, random_state=0, n_jobs=1
    )
    clf.fit(x[:700], y[:700], eval_set=[(x[700:], y[700:])], verbose=0)
    rounds = (0, int(clf.best_iteration) + 1)
    table = xgboost_table(clf.get_booster(), rounds)
    want = _xgb_library(clf.get_booster(), x, rounds)
    np.testing.assert_allclose(table(x), want, **F32)

    # a huge gamma leaves every tree a single leaf: everything is bias
    stumps = xgb.XGBClassifier(n_estimators=5, gamma=1e9, n_jobs=1).fit(x, y)
    table = xgboost_table(stumps.get_booster(), (0, 0))
    assert table.leaves == 0
    np.testing.assert_allclose(table(x[:20]), _xgb_library(stumps.get_booster(), x[:20]), **F32)


@pytest.mark.parametrize("missing", ["nan", "none", "zero"])
def test_lightgbm_table_equals_pred_contrib_for_each_missing_value_rule(
    codes: tuple[np.ndarray, np.ndarray], missing: str
) -> None:
    x, y = codes
    params: dict[str, Any] = {}
    train = x
    if missing == "none":  # trained without NaN: a NaN is read as 0.0
        train = np.nan_to_num(x, nan=1.0)
    if missing == "zero":  # zeros (and NaN) are missing and take the default direction
        params["zero_as_missing"] = True
    model = lgb.LGBMClassifier(
        n_estimators=150,
        max_depth=4,
        num_leaves=15,
        learning_rate=0.05,
        n_jobs=1,
        random_state=0,
        verbose=-1,
        **params,
    ).fit(train, y)
    booster = model.booster_
    table = lightgbm_table(booster)
    kinds = {n.get("missing_type") for t in booster.dump_model()["tree_info"] for n in _nodes(t)}
    assert {"nan": "NaN", "none": "None", "zero": "Zero"}[missing] in kinds
    rows = np.vstack([x, np.where(np.isnan(x), 0.0, x), np.full((1, x.shape[1]), 1e-40)])
    rows[-50:, ::3] = -1e-36  # inside the zero range, not zero
    got = table(rows)
    # (shap's TreeExplainer returns this same pred_contrib for LightGBM models)
    np.testing.assert_allclose(got, booster.predict(rows, pred_contrib=True), rtol=0, atol=1e-9)


def _nodes(tree: dict[str, Any]) -> list[dict[str, Any]]:
    out, stack = [], [tree["tree_structure"]]
    while stack:
        node = stack.pop()
        if "split_feature" in node:
            out.append(node)
            stack += [node["left_child"], node["right_child"]]
    return out


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(0, 10_000),  # an index into the model's own bounds
            st.floats(-1e6, 1e6, allow_nan=False),
            st.just(math.nan),
        ),
        min_size=len(FEATURES),
        max_size=len(FEATURES),
    ),
    st.booleans(),
)
def test_the_table_agrees_with_the_library_on_any_row(
    xgb_model: xgb.XGBClassifier, picks: list[Any], below: bool
) -> None:
    table = _cached_table(xgb_model)
    bounds = _bounds(table)
    row = np.empty(len(FEATURES))
    for f, pick in enumerate(picks):
        if isinstance(pick, int) and bounds[f]:
            b = bounds[f][pick % len(bounds[f])]  # exactly on a split, or the float just below
            row[f] = np.nextafter(b, -np.inf) if below else b
        else:
            row[f] = float(pick)
    want = _xgb_library(xgb_model.get_booster(), row[None, :])
    np.testing.assert_allclose(table(row[None, :]), want, **F32)


_TABLES: dict[int, TreeTable] = {}


def _cached_table(model: xgb.XGBClassifier) -> TreeTable:
    if id(model) not in _TABLES:
        _TABLES[id(model)] = xgboost_table(model.get_booster(), (0, 0))
    return _TABLES[id(model)]


def _bounds(table: TreeTable) -> list[list[float]]:
    out: list[set[float]] = [set() for _ in range(table.n_features)]
    for f, lo, hi in zip(
        table._feature.ravel().tolist(),
        table._lo.ravel().tolist(),
        table._hi.ravel().tolist(),
        strict=True,
    ):
        out[f].update(b for b in (lo, hi) if math.isfinite(b))
    return [sorted(b) for b in out]


def test_models_the_table_cannot_hold_keep_the_librarys_contributions(
    codes: tuple[np.ndarray, np.ndarray], xgb_model: xgb.XGBClassifier
) -> None:
    x, y = codes
    with pytest.raises(TableUnavailable, match="entries"):
        xgboost_table(xgb_model.get_booster(), (0, 0), max_entries=1000)
    deep = lgb.LGBMClassifier(
        n_estimators=20, num_leaves=200, min_child_samples=2, n_jobs=1, verbose=-1
    ).fit(x, y)
    with pytest.raises(TableUnavailable, match="distinct features"):
        lightgbm_table(deep.booster_)
    dart = xgb.XGBClassifier(
        n_estimators=20, booster="dart", max_depth=3, n_jobs=1, random_state=0
    ).fit(x, y)
    with pytest.raises(TableUnavailable, match="dart"):
        xgboost_table(dart.get_booster(), (0, 0))
    rows = [dict(zip(FEATURES, r.tolist(), strict=True)) for r in x[:30]]
    for model, library in ((deep, "lightgbm"), (dart, "xgboost")):
        scorer = compile_model(model, FEATURES)
        assert isinstance(scorer, NativeScorer) and scorer.library == library
        assert scorer.table is None
        for row in rows:
            e = scorer.explain(row)
            assert e.contributions == scorer.contributions_from_library(row)


def test_a_table_that_disagrees_with_the_library_is_refused(
    xgb_model: xgb.XGBClassifier,
) -> None:
    booster = xgb_model.get_booster()
    table = xgboost_table(booster, (0, 0))
    check_against(table, lambda m: _xgb_library(booster, m), 1e-4)  # a sound table passes
    assert len(probe_rows(table)) >= 10
    table._table[::7] += 0.01
    with pytest.raises(TableUnavailable, match="differs"):
        check_against(table, lambda m: _xgb_library(booster, m), 1e-4)


def test_native_scorers_explain_from_the_table(
    codes: tuple[np.ndarray, np.ndarray], xgb_model: xgb.XGBClassifier
) -> None:
    x, _ = codes
    scorer = compile_model(xgb_model, FEATURES)
    assert isinstance(scorer, NativeScorer) and scorer.table is not None
    expected = xgb_model.predict_proba(x)[:, 1]
    for i in range(0, 1000, 37):
        row = dict(zip(FEATURES, x[i].tolist(), strict=True))
        e = scorer.explain(row)
        library = scorer.contributions_from_library(row)
        np.testing.assert_allclose(
            [e.contributions[n] for n in FEATURES], [library[n] for n in FEATURES], **F32
        )
        score, reasons = scorer.score_and_reasons(row)
        assert score == scorer.score_one(row) and abs(score - expected[i]) <= 1e-9
        assert reasons == scorer.reasons(row)
        assert all(r["contribution"] > 0 for r in reasons) and len(reasons) <= 4
