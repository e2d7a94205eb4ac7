"""Compiled scorers equal the model's own predict_proba, and their contributions are exact."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

from charter.datasets import (
    GERMAN_CREDIT_CATEGORICAL,
    GERMAN_CREDIT_FEATURES,
    GERMAN_CREDIT_NUMERIC,
    german_credit_xy,
)
from charter.errors import InvalidArgument
from charter.serving.compiled import (
    CategoricalTerm,
    GenericScorer,
    LinearScorer,
    NativeScorer,
    NumericTerm,
    ReasonCode,
    compile_model,
    reason_codes,
)
from charter.stats.sketches import build_profile

NUM = list(GERMAN_CREDIT_NUMERIC)
CAT = list(GERMAN_CREDIT_CATEGORICAL)
FEATURES = list(GERMAN_CREDIT_FEATURES)
EXACT = 1e-12


def _ohe(**kw: Any) -> OneHotEncoder:
    kw.setdefault("handle_unknown", "ignore")
    return OneHotEncoder(sparse_output=False, **kw)


def _pipeline(num: Any, cat: Any, **lr: Any) -> Pipeline:
    columns = ColumnTransformer([("num", num, NUM), ("cat", cat, CAT)], remainder="drop")
    return Pipeline([("ct", columns), ("lr", LogisticRegression(max_iter=2000, **lr))])


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [dict(r) for r in frame.to_dict("records")]


@pytest.fixture(scope="module")
def german() -> tuple[pd.DataFrame, np.ndarray]:
    return german_credit_xy()


@pytest.fixture(scope="module")
def german_missing(german: tuple[pd.DataFrame, np.ndarray]) -> pd.DataFrame:
    """German Credit with about 5% of every column missing (NaN), seeded."""
    x, _ = german
    rng = np.random.default_rng(20261122)
    out = x.copy()
    for name in FEATURES:
        mask = rng.random(len(out)) < 0.05
        if name in NUM:
            out[name] = out[name].astype("float64").mask(mask)
        else:
            out[name] = out[name].mask(mask)
    return out


@pytest.fixture(scope="module")
def imputing(german: tuple[pd.DataFrame, np.ndarray], german_missing: pd.DataFrame) -> Pipeline:
    _, y = german
    num = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    cat = make_pipeline(SimpleImputer(strategy="most_frequent"), _ohe())
    return _pipeline(num, cat).fit(german_missing, y)


@pytest.fixture(scope="module")
def plain(german: tuple[pd.DataFrame, np.ndarray]) -> Pipeline:
    x, y = german
    return _pipeline(StandardScaler(), _ohe()).fit(x, y)


# ------------------------------------------------------------------------ linear: equality
def test_imputing_pipeline_equals_predict_proba_on_every_row(
    imputing: Pipeline, german_missing: pd.DataFrame
) -> None:
    scorer = compile_model(imputing, FEATURES)
    assert isinstance(scorer, LinearScorer)
    assert scorer.kind == "linear"
    expected = imputing.predict_proba(german_missing)[:, 1]
    rows = _records(german_missing)
    assert any(any(pd.isna(v) for v in r.values()) for r in rows)
    got = scorer.score_many(rows)
    assert got.dtype == np.float64
    assert got.shape == (1000,)
    np.testing.assert_allclose(got, expected, rtol=0, atol=EXACT)
    for i in range(0, 1000, 7):  # rows with and without missing values, one at a time
        single = imputing.predict_proba(german_missing.iloc[[i]])[0, 1]
        assert abs(scorer.score_one(rows[i]) - single) <= EXACT


def test_score_one_equals_predict_proba_of_a_one_row_frame(
    plain: Pipeline, german: tuple[pd.DataFrame, np.ndarray]
) -> None:
    x, _ = german
    scorer = compile_model(plain, FEATURES)
    rows = _records(x)
    np.testing.assert_allclose(
        scorer.score_many(rows), plain.predict_proba(x)[:, 1], rtol=0, atol=EXACT
    )
    for row in random.Random(7).sample(rows, 60):
        expected = plain.predict_proba(pd.DataFrame([row]))[0, 1]
        assert abs(scorer.score_one(row) - expected) <= EXACT


def test_unseen_category_and_missing_values(
    imputing: Pipeline, german: tuple[pd.DataFrame, np.ndarray]
) -> None:
    x, _ = german
    scorer = compile_model(imputing, FEATURES)
    base = _records(x)[3]
    cases = [
        {"purpose": "spaceship"},
        {"purpose": float("nan")},
        {"credit_amount": None},
        {"credit_amount": float("nan"), "age_in_years": None, "housing": float("nan")},
    ]
    for change in cases:
        row = {**base, **change}
        expected = imputing.predict_proba(pd.DataFrame([row]))[0, 1]
        assert abs(scorer.score_one(row) - expected) <= EXACT


def test_none_in_a_text_column_is_imputed_like_nan(
    imputing: Pipeline, german: tuple[pd.DataFrame, np.ndarray]
) -> None:
    # scikit-learn's SimpleImputer does not see a None in a one-row object column as missing;
    # the compiled scorer imputes it, as the pipeline does for NaN.
    x, _ = german
    scorer = compile_model(imputing, FEATURES)
    base = _records(x)[3]
    with_nan = imputing.predict_proba(pd.DataFrame([{**base, "housing": float("nan")}]))[0, 1]
    assert abs(scorer.score_one({**base, "housing": None}) - with_nan) <= EXACT
    assert abs(scorer.score_one({**base, "housing": pd.NA}) - with_nan) <= EXACT


@pytest.mark.parametrize("drop", ["first", "if_binary"])
def test_encoder_drop_options(drop: str, german: tuple[pd.DataFrame, np.ndarray]) -> None:
    x, y = german
    model = _pipeline("passthrough", _ohe(drop=drop), solver="newton-cholesky").fit(x, y)
    scorer = compile_model(model, FEATURES)
    assert scorer.kind == "linear"
    rows = _records(x)
    np.testing.assert_allclose(
        scorer.score_many(rows), model.predict_proba(x)[:, 1], rtol=0, atol=EXACT
    )
    unknown = {**rows[0], "purpose": "spaceship"}
    with pytest.warns(UserWarning, match="unknown categories"):
        expected = model.predict_proba(pd.DataFrame([unknown]))[0, 1]
    assert abs(scorer.score_one(unknown) - expected) <= EXACT


def test_numeric_only_models(german: tuple[pd.DataFrame, np.ndarray]) -> None:
    x, y = german
    xn = x[NUM]
    alone = LogisticRegression(solver="newton-cholesky").fit(xn, y)
    scaled = make_pipeline(StandardScaler(), LogisticRegression()).fit(xn, y)
    for model in (alone, scaled):
        scorer = compile_model(model, FEATURES)
        assert scorer.kind == "linear"
        np.testing.assert_allclose(
            scorer.score_many(_records(x)), model.predict_proba(xn)[:, 1], rtol=0, atol=EXACT
        )


def test_model_fitted_on_a_matrix_takes_feature_names_in_order(
    german: tuple[pd.DataFrame, np.ndarray],
) -> None:
    x, y = german
    model = LogisticRegression(solver="newton-cholesky").fit(x[NUM].to_numpy(dtype=float), y)
    scorer = compile_model(model, NUM)
    assert scorer.kind == "linear"
    expected = model.predict_proba(x[NUM].to_numpy(dtype=float))[:, 1]
    np.testing.assert_allclose(scorer.score_many(_records(x)), expected, rtol=0, atol=EXACT)
    with pytest.raises(InvalidArgument) as err:
        compile_model(model, FEATURES)
    assert err.value.field == "feature_names"


# ------------------------------------------------------------------------ linear: contributions
def test_contributions_identity_with_background(
    imputing: Pipeline, german_missing: pd.DataFrame
) -> None:
    scorer = compile_model(imputing, FEATURES, background=german_missing)
    assert isinstance(scorer, LinearScorer)
    assert scorer.baseline_source == "background"
    logits = imputing.decision_function(german_missing)
    assert scorer.baseline_logit is not None
    assert abs(scorer.baseline_logit - float(np.mean(logits))) <= EXACT
    for i, row in enumerate(_records(german_missing)):
        e = scorer.explain(row)
        assert e is not None
        assert list(e.contributions) == FEATURES
        assert abs(sum(e.contributions.values()) + e.baseline_logit - e.logit) <= EXACT
        assert abs(e.logit - logits[i]) <= EXACT
        assert abs(1.0 / (1.0 + math.exp(-e.logit)) - scorer.score_one(row)) <= EXACT
        assert scorer.contributions(row) == dict(e.contributions)
    # the mean contribution of every feature over the background is zero
    frame = pd.DataFrame([scorer.contributions(r) for r in _records(german_missing)])
    np.testing.assert_allclose(frame.mean().to_numpy(), 0.0, atol=EXACT)


def test_reference_profile_gives_the_background_baseline(
    imputing: Pipeline, german_missing: pd.DataFrame
) -> None:
    by_rows = compile_model(imputing, FEATURES, background=german_missing)
    by_profile = compile_model(imputing, FEATURES, background=build_profile(german_missing))
    assert isinstance(by_rows, LinearScorer)
    assert isinstance(by_profile, LinearScorer)
    assert by_profile.baseline_source == "profile"
    assert by_rows.baselines is not None
    assert by_profile.baselines is not None
    for name in FEATURES:
        assert abs(by_rows.baselines[name] - by_profile.baselines[name]) <= EXACT


def test_unknown_level_contributes_minus_its_baseline(
    plain: Pipeline, german: tuple[pd.DataFrame, np.ndarray]
) -> None:
    x, _ = german
    scorer = compile_model(plain, FEATURES, background=x)
    assert isinstance(scorer, LinearScorer)
    assert scorer.baselines is not None
    c = scorer.contributions({**_records(x)[0], "purpose": "spaceship"})
    assert c is not None
    assert c["purpose"] == -scorer.baselines["purpose"]


def test_scaler_mean_baseline_without_background(german: tuple[pd.DataFrame, np.ndarray]) -> None:
    x, y = german
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x[NUM], y)
    scorer = compile_model(model, FEATURES)
    assert isinstance(scorer, LinearScorer)
    assert scorer.baseline_source == "scaler_mean"
    assert scorer.baseline_logit == model[-1].intercept_[0]
    scaler, lr = model[0], model[-1]
    row = _records(x)[5]
    c = scorer.contributions(row)
    assert c is not None
    assert list(c) == NUM  # only the features the model uses, in schema order
    for j, name in enumerate(NUM):
        by_hand = lr.coef_[0, j] / scaler.scale_[j] * (row[name] - scaler.mean_[j])
        assert abs(c[name] - by_hand) <= EXACT
    e = scorer.explain(row)
    assert e is not None
    assert abs(e.logit - model.decision_function(x[NUM].iloc[[5]])[0]) <= EXACT


def test_no_baseline_means_no_contributions(
    plain: Pipeline, german: tuple[pd.DataFrame, np.ndarray]
) -> None:
    x, _ = german
    scorer = compile_model(plain, FEATURES)
    assert isinstance(scorer, LinearScorer)
    assert scorer.baseline_source is None
    assert scorer.explain(_records(x)[0]) is None
    assert scorer.contributions(_records(x)[0]) is None


def test_contributions_only_for_used_features(german: tuple[pd.DataFrame, np.ndarray]) -> None:
    x, y = german
    used = ["duration_in_month", "credit_amount", "purpose", "housing"]
    columns = ColumnTransformer(
        [("num", StandardScaler(), used[:2]), ("cat", _ohe(), used[2:])], remainder="drop"
    )
    model = Pipeline([("ct", columns), ("lr", LogisticRegression())]).fit(x, y)
    scorer = compile_model(model, FEATURES, background=x)
    assert scorer.used_features == tuple(n for n in FEATURES if n in used)
    row = {k: v for k, v in _records(x)[0].items() if k in used}  # unused features not needed
    c = scorer.contributions(row)
    assert c is not None
    assert set(c) == set(used)
    assert abs(scorer.score_one(row) - model.predict_proba(x.iloc[[0]])[0, 1]) <= EXACT


def test_a_scorecard_built_from_terms() -> None:
    scorer = LinearScorer(
        ["age", "housing"],
        -1.0,
        [NumericTerm("age", -0.02, 0.8, None, False)],
        [CategoricalTerm("housing", {"own": -0.3, "rent": 0.4}, 0.0, False)],
        background=pd.DataFrame({"age": [30, 50], "housing": ["own", "rent"]}),
    )
    z = -1.0 + (-0.02 * 40 + 0.8) + 0.4
    assert scorer.score_one({"age": 40, "housing": "rent"}) == pytest.approx(1 / (1 + math.exp(-z)))
    c = scorer.contributions({"age": 40, "housing": "rent"})
    assert c == pytest.approx({"age": 0.0, "housing": 0.35})


# ------------------------------------------------------------------------ linear: bad input
def test_bad_rows_name_the_field(plain: Pipeline, german: tuple[pd.DataFrame, np.ndarray]) -> None:
    x, _ = german
    scorer = compile_model(plain, FEATURES, background=x)
    row = _records(x)[0]
    cases: list[tuple[Any, str]] = [
        ({k: v for k, v in row.items() if k != "credit_amount"}, "credit_amount"),
        ({k: v for k, v in row.items() if k != "purpose"}, "purpose"),
        ({**row, "credit_amount": "1000"}, "credit_amount"),
        ({**row, "credit_amount": float("inf")}, "credit_amount"),
        ({**row, "credit_amount": None}, "credit_amount"),  # no imputer for it
        ({**row, "purpose": ["a", "list"]}, "purpose"),
        (["not", "a", "mapping"], "row"),
    ]
    for bad, field in cases:
        for call in (scorer.score_one, scorer.contributions):
            with pytest.raises(InvalidArgument) as err:
                call(bad)
            assert err.value.field == field, bad
        with pytest.raises(InvalidArgument) as err:
            scorer.score_many([row, bad])
        assert err.value.field == field
    not_rows: Any = row
    with pytest.raises(InvalidArgument) as err:
        scorer.score_many(not_rows)
    assert err.value.field == "rows"


def test_missing_category_without_imputer_is_an_unknown_level(
    plain: Pipeline, german: tuple[pd.DataFrame, np.ndarray]
) -> None:
    x, _ = german
    scorer = compile_model(plain, FEATURES)
    row = {**_records(x)[0], "purpose": None}
    assert abs(scorer.score_one(row) - plain.predict_proba(pd.DataFrame([row]))[0, 1]) <= EXACT


def test_encoder_that_refuses_unknown_levels(german: tuple[pd.DataFrame, np.ndarray]) -> None:
    x, y = german
    model = _pipeline(StandardScaler(), _ohe(handle_unknown="error")).fit(x, y)
    scorer = compile_model(model, FEATURES)
    assert scorer.kind == "linear"
    row = _records(x)[0]
    assert abs(scorer.score_one(row) - model.predict_proba(x.iloc[[0]])[0, 1]) <= EXACT
    for value in ("spaceship", None):
        with pytest.raises(InvalidArgument) as err:
            scorer.score_one({**row, "purpose": value})
        assert err.value.field == "purpose"


# ------------------------------------------------------------------------ fallbacks and refusals
def test_unsupported_pipelines_fall_back_to_generic(
    german: tuple[pd.DataFrame, np.ndarray],
) -> None:
    x, y = german
    models = [
        _pipeline(MinMaxScaler(), _ohe()).fit(x, y),
        _pipeline(StandardScaler(), _ohe(min_frequency=20)).fit(x, y),
        _pipeline(make_pipeline(SimpleImputer(add_indicator=True), StandardScaler()), _ohe()).fit(
            x, y
        ),
    ]
    for model in models:
        scorer = compile_model(model, FEATURES)
        assert isinstance(scorer, GenericScorer)
        assert scorer.fallback_reason
        assert scorer.contributions(_records(x)[0]) is None
        np.testing.assert_allclose(
            scorer.score_many(_records(x)[:50]),
            model.predict_proba(x.iloc[:50])[:, 1],
            rtol=0,
            atol=EXACT,
        )
    first = compile_model(models[0], FEATURES)
    assert isinstance(first, GenericScorer)
    assert "MinMaxScaler" in first.fallback_reason


def test_random_forest_uses_the_generic_scorer(german: tuple[pd.DataFrame, np.ndarray]) -> None:
    x, y = german
    forest = RandomForestClassifier(n_estimators=20, random_state=0).fit(x[NUM], y)
    scorer = compile_model(forest, FEATURES)
    assert scorer.kind == "generic"
    rows = _records(x)
    np.testing.assert_array_equal(scorer.score_many(rows), forest.predict_proba(x[NUM])[:, 1])
    assert scorer.score_one(rows[9]) == forest.predict_proba(x[NUM].iloc[[9]])[0, 1]
    assert scorer.explain(rows[9]) is None
    assert scorer.score_many([]).shape == (0,)
    with pytest.raises(InvalidArgument) as err:
        scorer.score_one({k: v for k, v in rows[0].items() if k != "age_in_years"})
    assert err.value.field == "age_in_years"
    # fitted on a matrix: scored with a matrix, so scikit-learn does not warn
    unnamed = RandomForestClassifier(n_estimators=5, random_state=0)
    unnamed.fit(x[NUM].to_numpy(dtype=float), y)
    scorer = compile_model(unnamed, NUM)
    expected = unnamed.predict_proba(x[NUM].to_numpy(dtype=float)[:10])[:, 1]
    np.testing.assert_array_equal(scorer.score_many(rows[:10]), expected)


def test_refusals_name_the_field(plain: Pipeline, german: tuple[pd.DataFrame, np.ndarray]) -> None:
    x, y = german
    labels = np.where(y == 1, "bad", "good")
    cases: list[tuple[Any, Any, Any, str]] = [
        (LogisticRegression(max_iter=2000).fit(x[NUM], labels), FEATURES, None, "model"),
        (plain, [n for n in FEATURES if n != "housing"], None, "housing"),
        (plain, [*FEATURES, "housing"], None, "feature_names"),
        (plain, [], None, "feature_names"),
        (plain, FEATURES, x.to_numpy(), "background"),
        (plain, FEATURES, x.drop(columns=["job"]), "job"),
        (object(), FEATURES, None, "model"),
        (LogisticRegression(), FEATURES, None, "model"),  # not fitted
    ]
    for model, names, background, field in cases:
        with pytest.raises(InvalidArgument) as err:
            compile_model(model, names, background=background)
        assert err.value.field == field, (model, field)


# ------------------------------------------------------------------------ native trees
@pytest.fixture(scope="module")
def numeric_missing(german_missing: pd.DataFrame) -> pd.DataFrame:
    return german_missing[NUM]


def test_xgboost_classifier_and_booster(
    german: tuple[pd.DataFrame, np.ndarray], numeric_missing: pd.DataFrame
) -> None:
    import xgboost as xgb

    _, y = german
    clf = xgb.XGBClassifier(n_estimators=30, max_depth=3, random_state=0, n_jobs=1)
    clf.fit(numeric_missing, y)
    rows = _records(numeric_missing)
    scorer = compile_model(clf, FEATURES)
    assert isinstance(scorer, NativeScorer)
    assert scorer.kind == "native"
    expected = clf.predict_proba(numeric_missing)[:, 1]
    np.testing.assert_allclose(scorer.score_many(rows), expected, rtol=0, atol=1e-9)
    for i in range(0, 1000, 50):
        assert abs(scorer.score_one(rows[i]) - expected[i]) <= 1e-9
    booster = clf.get_booster()
    margin = booster.predict(
        xgb.DMatrix(numeric_missing, missing=np.nan), output_margin=True
    ).astype(np.float64)
    for i in range(0, 1000, 25):
        e = scorer.explain(rows[i])
        assert list(e.contributions) == NUM
        assert abs(sum(e.contributions.values()) + e.baseline_logit - e.logit) <= EXACT
        assert abs(e.logit - margin[i]) <= 1e-5  # the library sums float32 contributions
    with pytest.raises(InvalidArgument) as err:
        scorer.score_one({**rows[0], "credit_amount": "lots"})
    assert err.value.field == "credit_amount"

    raw = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
        xgb.DMatrix(numeric_missing.to_numpy(), label=y, missing=np.nan),
        num_boost_round=15,
    )
    scorer = compile_model(raw, NUM)
    expected = raw.predict(xgb.DMatrix(numeric_missing.to_numpy(), missing=np.nan))
    np.testing.assert_allclose(scorer.score_many(rows), expected, rtol=0, atol=1e-9)
    assert scorer.contributions(rows[0]) is not None


def test_xgboost_early_stopping_uses_the_best_iteration(
    german: tuple[pd.DataFrame, np.ndarray], numeric_missing: pd.DataFrame
) -> None:
    import xgboost as xgb

    _, y = german
    clf = xgb.XGBClassifier(
        n_estimators=200, learning_rate=0.3, early_stopping_rounds=5, random_state=0, n_jobs=1
    )
    clf.fit(numeric_missing[:700], y[:700], eval_set=[(numeric_missing[700:], y[700:])], verbose=0)
    assert clf.best_iteration < 199
    scorer = compile_model(clf, NUM)
    expected = clf.predict_proba(numeric_missing)[:, 1]
    np.testing.assert_allclose(
        scorer.score_many(_records(numeric_missing)), expected, rtol=0, atol=1e-9
    )


def test_lightgbm_classifier_and_booster(
    german: tuple[pd.DataFrame, np.ndarray], numeric_missing: pd.DataFrame
) -> None:
    import lightgbm as lgb

    _, y = german
    clf = lgb.LGBMClassifier(n_estimators=30, num_leaves=8, verbose=-1, n_jobs=1)
    clf.fit(numeric_missing, y)
    rows = _records(numeric_missing)
    scorer = compile_model(clf, FEATURES)
    assert isinstance(scorer, NativeScorer)
    expected = clf.predict_proba(numeric_missing)[:, 1]
    np.testing.assert_allclose(scorer.score_many(rows), expected, rtol=0, atol=1e-9)
    for i in range(0, 1000, 50):
        assert abs(scorer.score_one(rows[i]) - expected[i]) <= 1e-9
    raw_score = clf.booster_.predict(numeric_missing.to_numpy(), raw_score=True)
    for i in range(0, 1000, 25):
        e = scorer.explain(rows[i])
        assert list(e.contributions) == NUM
        assert abs(sum(e.contributions.values()) + e.baseline_logit - raw_score[i]) <= 1e-9

    raw = lgb.train(
        {"objective": "binary", "num_leaves": 4, "verbose": -1, "num_threads": 1},
        lgb.Dataset(numeric_missing.to_numpy(), label=y),
        num_boost_round=10,
    )
    scorer = compile_model(raw, NUM)
    expected = raw.predict(numeric_missing.to_numpy())
    np.testing.assert_allclose(scorer.score_many(rows), expected, rtol=0, atol=1e-9)
    with pytest.raises(InvalidArgument) as err:
        compile_model(raw, FEATURES)  # 7 unnamed features, 20 names
    assert err.value.field == "feature_names"


def test_boosters_without_a_compiled_form_are_refused(
    german: tuple[pd.DataFrame, np.ndarray], numeric_missing: pd.DataFrame
) -> None:
    import lightgbm as lgb

    _, y = german
    regression = lgb.train(
        {"objective": "regression", "verbose": -1, "num_threads": 1},
        lgb.Dataset(numeric_missing.to_numpy(), label=y.astype(float)),
        num_boost_round=3,
    )
    with pytest.raises(InvalidArgument) as err:
        compile_model(regression, NUM)
    assert err.value.field == "model"
    assert "binary" in err.value.message


# ------------------------------------------------------------------------ reason codes
def test_reason_codes_order_ties_and_top() -> None:
    contributions = {"d": 0.5, "b": 0.9, "a": 0.5, "e": -1.0, "c": 0.0, "f": 0.1, "g": 0.05}
    codes = reason_codes(contributions)
    assert [c.feature for c in codes] == ["b", "a", "d", "f"]
    assert codes[0] == ReasonCode("b", 0.9, "b increased the risk")
    assert [c.feature for c in reason_codes(contributions, top=2)] == ["b", "a"]
    assert reason_codes(contributions, top=0) == []
    assert [c.feature for c in reason_codes(contributions, top=10)] == ["b", "a", "d", "f", "g"]
    shuffled = dict(sorted(contributions.items(), key=lambda kv: kv[0], reverse=True))
    assert reason_codes(shuffled) == codes
    assert reason_codes({"x": -0.2, "y": 0.0}) == []


def test_reason_codes_catalogue_and_validation() -> None:
    codes = reason_codes({"age": 0.3, "debt": 0.4}, catalogue={"debt": "Debt is high"})
    assert [(c.feature, c.text) for c in codes] == [
        ("debt", "Debt is high"),
        ("age", "age increased the risk"),
    ]
    bad_tops: list[Any] = [-1, 1.5, True]
    for top in bad_tops:
        with pytest.raises(InvalidArgument) as err:
            reason_codes({"a": 1.0}, top=top)
        assert err.value.field == "top"
    with pytest.raises(InvalidArgument) as err:
        reason_codes({"a": float("nan")})
    assert err.value.field == "a"


def test_reason_codes_from_a_linear_scorer(
    imputing: Pipeline, german_missing: pd.DataFrame
) -> None:
    scorer = compile_model(imputing, FEATURES, background=german_missing)
    for row in _records(german_missing)[:100]:
        c = scorer.contributions(row)
        assert c is not None
        codes = reason_codes(c)
        assert len(codes) <= 4
        assert all(code.contribution > 0 for code in codes)
        assert [code.contribution for code in codes] == sorted(
            (code.contribution for code in codes), reverse=True
        )
        assert codes == reason_codes(scorer.contributions(row) or {})


def test_remainder_passthrough_and_sparse_encoder(german: tuple[pd.DataFrame, np.ndarray]) -> None:
    x, y = german
    columns = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), CAT)], remainder="passthrough"
    )
    model = Pipeline(
        [("ct", columns), ("noop", "passthrough"), ("lr", LogisticRegression(solver="liblinear"))]
    ).fit(x, y)
    scorer = compile_model(model, FEATURES)
    assert scorer.kind == "linear"
    np.testing.assert_allclose(
        scorer.score_many(_records(x)), model.predict_proba(x)[:, 1], rtol=0, atol=EXACT
    )


def test_the_fused_score_and_reasons_equal_score_one_and_reason_codes(
    imputing: Pipeline, german_missing: pd.DataFrame
) -> None:
    scorer = compile_model(imputing, FEATURES, background=german_missing)
    assert isinstance(scorer, LinearScorer) and scorer._ordered is not None  # the fused path
    rng = random.Random(7)
    rows = _records(german_missing)
    # and rows moved about: other numbers (ints, floats, None), unknown levels, ties at zero
    for row in list(rows[:300]):
        moved = dict(row)
        for name in NUM:
            moved[name] = rng.choice([None, 0, 1, 7.5, -3, 1e6, row[name]])
        for name in CAT:
            moved[name] = rng.choice([None, "unseen", row[name]])
        rows.append(moved)
    for row in rows:
        for top in (0, 1, 4, 25):
            general = [
                {"feature": r.feature, "contribution": r.contribution, "text": r.text}
                for r in reason_codes(scorer.contributions(row) or {}, top=top)
            ]
            assert scorer.reasons(row, top) == general
            score, fused = scorer.score_and_reasons(row, top)
            assert fused == general and score == scorer.score_one(row)  # bit for bit
    with pytest.raises(InvalidArgument, match="top"):
        scorer.score_and_reasons(rows[0], -1)
    with pytest.raises(InvalidArgument, match="duration_in_month"):
        scorer.score_and_reasons({k: v for k, v in rows[0].items() if k != "duration_in_month"})
