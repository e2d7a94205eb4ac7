"""Shapley values: the exact oracle by hand, the sampling estimator against it, and the generic
scorer's explanations (TreeSHAP against shap's TreeExplainer, sampling against the oracle)."""

from __future__ import annotations

import builtins
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
import shap
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.tree import DecisionTreeClassifier

from charter.datasets import (
    GERMAN_CREDIT_CATEGORICAL,
    GERMAN_CREDIT_FEATURES,
    GERMAN_CREDIT_NUMERIC,
    german_credit_xy,
)
from charter.demo import _scorecard
from charter.errors import InvalidArgument, OptionalDependencyMissing
from charter.explain.shapley import (
    MAX_EXACT_FEATURES,
    background_from_profile,
    exact_shapley,
    sample_background,
    sampling_shapley,
    shapley_values,
)
from charter.serving.compiled import (
    GenericScorer,
    LinearScorer,
    compile_model,
    reason_codes,
)
from charter.stats.sketches import build_profile

NUM = list(GERMAN_CREDIT_NUMERIC)
FEATURES = list(GERMAN_CREDIT_FEATURES)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [dict(r) for r in frame.to_dict("records")]


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


@pytest.fixture(scope="module")
def german() -> tuple[pd.DataFrame, np.ndarray]:
    return german_credit_xy()


@pytest.fixture(scope="module")
def deep_gb(german: tuple[pd.DataFrame, np.ndarray]) -> GradientBoostingClassifier:
    """Depth-4 trees: interactions of up to four features, so sampling is not trivially exact."""
    x, y = german
    return GradientBoostingClassifier(n_estimators=40, max_depth=4, random_state=0).fit(x[NUM], y)


# ------------------------------------------------------------------------------- hand cases
def test_exact_shapley_of_a_linear_logit_is_weight_times_distance_to_the_mean() -> None:
    w = np.array([0.5, -2.0, 1.5])
    background = pd.DataFrame({"a": [0.0, 2.0], "b": [1.0, 3.0], "c": [4.0, 4.0]})

    def f(frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(frame[["a", "b", "c"]].to_numpy(dtype=float) @ w + 0.25)

    row = {"a": 3.0, "b": 0.0, "c": 5.0}
    phi = exact_shapley(f, row, background, ["a", "b", "c"])
    # w_j * (x_j - mean b_j): 0.5 * (3 - 1), -2 * (0 - 2), 1.5 * (5 - 4)
    assert phi == pytest.approx({"a": 1.0, "b": 4.0, "c": 1.5}, abs=1e-12)
    # an additive game is estimated exactly by any ordering
    assert sampling_shapley(f, row, background, ["a", "b", "c"], n_permutations=2) == (
        pytest.approx(phi, abs=1e-12)
    )


def test_exact_shapley_splits_a_pure_interaction_evenly() -> None:
    background = pd.DataFrame({"a": [0.0], "b": [0.0], "c": [0.0]})

    def f(frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(frame["a"] * frame["b"] + 3.0 * frame["c"], dtype=float)

    phi = exact_shapley(f, {"a": 2.0, "b": 5.0, "c": 1.0}, background, ["a", "b", "c"])
    assert phi == pytest.approx({"a": 5.0, "b": 5.0, "c": 3.0}, abs=1e-12)


def test_one_antithetic_pair_is_exact_for_pairwise_interactions() -> None:
    """A game with interactions of at most two features is estimated exactly by an ordering and
    its reverse (each pair of features appears once in each order)."""
    rng = np.random.default_rng(7)
    names = [f"x{i}" for i in range(6)]
    background = pd.DataFrame(rng.normal(size=(5, 6)), columns=names)
    pairs = rng.normal(size=(6, 6))

    def f(frame: pd.DataFrame) -> np.ndarray:
        m = frame[names].to_numpy(dtype=float)
        return np.einsum("ni,ij,nj->n", m, np.triu(pairs, 1), m) + m @ np.arange(6)

    row = dict(zip(names, rng.normal(size=6).tolist(), strict=True))
    exact = exact_shapley(f, row, background, names)
    for seed in range(3):
        est = sampling_shapley(f, row, background, names, n_permutations=2, seed=seed)
        assert est == pytest.approx(exact, abs=1e-10)


# ------------------------------------------------------------------ estimator against oracle
def test_sampling_converges_to_the_exact_values_and_is_efficient(
    german: tuple[pd.DataFrame, np.ndarray], deep_gb: GradientBoostingClassifier
) -> None:
    x, _ = german

    def f(frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(deep_gb.decision_function(frame), dtype=float)

    background = x[NUM].iloc[:12]
    row = _records(x[NUM])[40]
    exact = shapley_values(f, row, background, NUM, method="exact")
    gap = exact.logit - exact.base_value
    assert math.fsum(exact.values.values()) == pytest.approx(gap, abs=1e-12)
    assert exact.logit == pytest.approx(float(f(x[NUM].iloc[[40]])[0]), abs=1e-12)
    errors = []
    for p in (4, 32, 256):
        est = shapley_values(f, row, background, NUM, n_permutations=p, seed=1)
        # efficiency holds exactly for every number of orderings
        assert math.fsum(est.values.values()) == pytest.approx(gap, abs=1e-12)
        assert est.base_value == pytest.approx(exact.base_value, abs=1e-12)
        err = np.array([est.values[n] - exact.values[n] for n in NUM])
        se = np.array([est.std_errors[n] for n in NUM])
        assert np.all(np.abs(err) <= 5 * se + 1e-9)
        errors.append(float(np.sqrt(np.mean(err**2))))
    assert errors[2] < errors[1] < errors[0]
    assert errors[2] < 0.01 * max(abs(v) for v in exact.values.values())


def test_sampling_is_unbiased_over_seeds(
    german: tuple[pd.DataFrame, np.ndarray], deep_gb: GradientBoostingClassifier
) -> None:
    x, _ = german

    def f(frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(deep_gb.decision_function(frame), dtype=float)

    background = x[NUM].iloc[:8]
    row = _records(x[NUM])[3]
    exact = exact_shapley(f, row, background, NUM)
    runs = [sampling_shapley(f, row, background, NUM, n_permutations=4, seed=s) for s in range(40)]
    mean = {n: float(np.mean([r[n] for r in runs])) for n in NUM}
    spread = {n: float(np.std([r[n] for r in runs], ddof=1)) / math.sqrt(40) for n in NUM}
    for n in NUM:
        assert abs(mean[n] - exact[n]) <= 5 * spread[n] + 1e-9


def test_sampling_is_deterministic_for_a_seed(
    german: tuple[pd.DataFrame, np.ndarray], deep_gb: GradientBoostingClassifier
) -> None:
    x, _ = german

    def f(frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(deep_gb.decision_function(frame), dtype=float)

    row = _records(x[NUM])[5]
    a = sampling_shapley(f, row, x[NUM].iloc[:10], NUM, n_permutations=8, seed=3)
    b = sampling_shapley(f, row, x[NUM].iloc[:10], NUM, n_permutations=8, seed=3)
    c = sampling_shapley(f, row, x[NUM].iloc[:10], NUM, n_permutations=8, seed=4)
    assert a == b
    assert a != c


def test_mixed_types_and_missing_values_reach_the_model(
    german: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """Categorical text, integer columns and a missing level in the row (None) all go through
    to the model; the efficiency identity holds whatever the types."""
    x, y = german
    model = _scorecard().fit(x, y)
    names = ["credit_amount", "purpose", "housing", "duration_in_month"]
    first = x.iloc[[0]]

    def f(frame: pd.DataFrame) -> np.ndarray:
        full = first.loc[first.index.repeat(len(frame))].reset_index(drop=True)
        for n in names:
            full[n] = frame[n].to_numpy()
        return _logit(model.predict_proba(full)[:, 1])

    row = {**_records(x)[0], "housing": None}
    background = x.iloc[:6]
    exact = shapley_values(f, row, background, names, method="exact")
    est = shapley_values(f, row, background, names, n_permutations=2)
    # the model is additive in log-odds: one ordering is exact
    assert est.values == pytest.approx(exact.values, abs=1e-10)
    assert math.fsum(est.values.values()) == pytest.approx(est.logit - est.base_value, abs=1e-12)
    assert est.n_evaluations < 2 * 6 * (len(names) - 1) + 6 + 1 + 1


def test_arguments_are_checked(german: tuple[pd.DataFrame, np.ndarray]) -> None:
    x, _ = german

    def f(frame: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(frame))

    row = _records(x)[0]
    bg = x.iloc[:4]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"n_permutations": 3}, "n_permutations"),
        ({"n_permutations": 0}, "n_permutations"),
        ({"seed": -1}, "seed"),
        ({"method": "kernel"}, "method"),
        ({"background": bg.to_numpy()}, "background"),
        ({"background": bg.drop(columns=["job"])}, "job"),
        ({"row": {k: v for k, v in row.items() if k != "job"}}, "job"),
        ({"feature_names": []}, "feature_names"),
        ({"feature_names": ["job", "job"]}, "feature_names"),
    ]
    for change, field in cases:
        kwargs: dict[str, Any] = {
            "row": row,
            "background": bg,
            "feature_names": FEATURES,
            "n_permutations": 2,
            **change,
        }
        with pytest.raises(InvalidArgument) as err:
            shapley_values(f, **kwargs)
        assert err.value.field == field
    with pytest.raises(InvalidArgument) as err:
        exact_shapley(f, row, bg, FEATURES[: MAX_EXACT_FEATURES + 1])
    assert err.value.field == "feature_names"
    with pytest.raises(InvalidArgument) as err:
        sampling_shapley(lambda frame: np.zeros(1), row, bg, NUM, n_permutations=2)
    assert err.value.field == "predict_logit"
    with pytest.raises(InvalidArgument) as err:
        sampling_shapley(lambda frame: np.full(len(frame), np.inf), row, bg, NUM)
    assert err.value.field == "predict_logit"


# ------------------------------------------------------------------------------ backgrounds
def test_background_from_profile_follows_the_marginals(
    german: tuple[pd.DataFrame, np.ndarray],
) -> None:
    x, _ = german
    frame = x.copy()
    frame["credit_amount"] = frame["credit_amount"].astype(float).mask(frame.index % 10 == 0)
    profile = build_profile(frame)
    bg = background_from_profile(profile, ["credit_amount", "housing", "age_in_years"], 40)
    again = background_from_profile(profile, ["credit_amount", "housing", "age_in_years"], 40)
    pd.testing.assert_frame_equal(bg, again)
    assert list(bg.columns) == ["credit_amount", "housing", "age_in_years"]
    assert len(bg) == 40
    # 10% missing -> 4 of 40; the others are observed values at the mid-quantiles
    amounts = bg["credit_amount"]
    assert int(amounts.isna().sum()) == 4
    observed = set(frame["credit_amount"].dropna().tolist())
    assert set(amounts.dropna().tolist()) <= observed
    present = frame["credit_amount"].dropna().to_numpy()
    assert float(np.median(amounts.dropna())) == pytest.approx(np.median(present), rel=0.05)
    # housing: 713 own, 179 rent, 108 for free -> quotas 28.52, 7.16, 4.32 of 40; floors
    # 28, 7, 4 (39) and the one left goes to the largest remainder (0.52, "own")
    counts = bg["housing"].value_counts().to_dict()
    assert counts == {"own": 29, "rent": 7, "for free": 4}
    # each column is shuffled on its own: not sorted
    assert not bg["age_in_years"].is_monotonic_increasing
    with pytest.raises(InvalidArgument) as err:
        background_from_profile(profile, ["nope"], 10)
    assert err.value.field == "nope"


def test_sample_background_is_seeded_and_ordered(german: tuple[pd.DataFrame, np.ndarray]) -> None:
    x, _ = german
    a = sample_background(x, 25, columns=NUM, seed=5)
    b = sample_background(x, 25, columns=NUM, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 25 and list(a.columns) == NUM
    assert len(sample_background(x.iloc[:10], 25)) == 10


# ------------------------------------------------------------------- the generic scorer
def test_generic_sampling_equals_the_linear_scorer_on_the_same_background(
    german: tuple[pd.DataFrame, np.ndarray],
) -> None:
    """For a logistic pipeline the log-odds are additive, so sampled Shapley values are exact
    and equal the compiled linear scorer's contributions against the same background."""
    x, y = german
    model = _scorecard().fit(x, y)
    generic = GenericScorer(model, FEATURES, background=x, explainer="sampling")
    assert generic.explain_method == "permutation_sampling"
    assert generic.background is not None and len(generic.background) == 16
    linear = compile_model(model, FEATURES, background=generic.background)
    assert isinstance(linear, LinearScorer)
    for row in _records(x)[:5]:
        g, lin = generic.explain(row), linear.explain(row)
        assert g is not None and lin is not None
        assert g.method == "permutation_sampling" and lin.method == "exact"
        assert g.baseline_logit == pytest.approx(lin.baseline_logit, abs=1e-9)
        for name in FEATURES:
            assert g.contributions[name] == pytest.approx(lin.contributions[name], abs=1e-9)
        p = generic.score_one(row)
        assert g.logit == pytest.approx(math.log(p / (1 - p)), abs=1e-9)


def test_generic_categorical_boosting_uses_sampling_from_the_profile(
    german: tuple[pd.DataFrame, np.ndarray],
) -> None:
    x, y = german
    frame = x.astype(dict.fromkeys(GERMAN_CREDIT_CATEGORICAL, "category"))
    model = HistGradientBoostingClassifier(
        max_iter=30, max_depth=3, categorical_features="from_dtype", random_state=0
    ).fit(frame, y)
    scorer = compile_model(model, FEATURES, background=build_profile(x))
    assert isinstance(scorer, GenericScorer)
    assert scorer.explain_method == "permutation_sampling"
    assert "categorical" in scorer.explain_note
    row = _records(x)[1]
    e = scorer.explain(row)
    assert e is not None and e.std_errors is not None
    assert e == scorer.explain(row)  # deterministic: replays give the same reasons
    p = scorer.score_one(row)
    assert e.logit == pytest.approx(math.log(p / (1 - p)), abs=1e-9)
    assert math.fsum(e.contributions.values()) == pytest.approx(e.logit - e.baseline_logit)
    assert set(e.contributions) == set(FEATURES)
    codes = reason_codes(scorer.contributions(row) or {})
    assert 1 <= len(codes) <= 4 and all(c.contribution > 0 for c in codes)


def _shap_values(model: Any, background: pd.DataFrame, x: np.ndarray) -> tuple[np.ndarray, float]:
    explainer = shap.TreeExplainer(
        model, data=background.to_numpy(dtype=float), feature_perturbation="interventional"
    )
    raw = np.asarray(explainer.shap_values(x), dtype=float)
    expected = np.asarray(explainer.expected_value, dtype=float).reshape(-1)
    if raw.ndim == 3:
        return raw[:, :, 1], float(expected[1])
    return raw, float(expected[0])


def test_tree_shap_equals_shaps_tree_explainer_and_the_exact_oracle(
    german: tuple[pd.DataFrame, np.ndarray],
) -> None:
    x, y = german
    frame = x[NUM].astype(float)
    frame.loc[frame.index % 9 == 0, "credit_amount"] = np.nan  # HGB routes NaN natively
    with_nan = _records(x)[:6]
    for i, r in enumerate(with_nan):
        r["credit_amount"] = float(frame.loc[i, "credit_amount"])
    models = {
        "hgb": HistGradientBoostingClassifier(max_iter=40, random_state=0).fit(frame, y),
        "gb": GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0).fit(
            x[NUM], y
        ),
    }
    for name, model in models.items():
        bg = frame if name == "hgb" else x[NUM]
        rows = with_nan if name == "hgb" else _records(x)[:6]
        scorer = compile_model(model, FEATURES, background=bg, background_size=20)
        assert isinstance(scorer, GenericScorer)
        assert scorer.explain_method == "tree_shap_interventional", scorer.explain_note
        assert scorer.background is not None
        matrix = np.array([[r[n] for n in NUM] for r in rows], dtype=float)
        expected, base = _shap_values(model, scorer.background, matrix)
        for i, row in enumerate(rows):
            e = scorer.explain(row)
            assert e is not None and e.method == "tree_shap_interventional"
            got = np.array([e.contributions[n] for n in NUM])
            np.testing.assert_allclose(got, expected[i], rtol=0, atol=1e-6)
            assert e.baseline_logit == pytest.approx(base, abs=1e-6)
            p = scorer.score_one(row)
            assert e.logit == pytest.approx(math.log(p / (1 - p)), abs=1e-6)

        # the same numbers as the model-agnostic oracle on the same game
        def f(fr: pd.DataFrame, model: Any = model) -> np.ndarray:
            return np.asarray(model.decision_function(fr), dtype=float)

        exact = exact_shapley(f, rows[0], scorer.background, NUM)
        e0 = scorer.explain(rows[0])
        assert e0 is not None
        for n in NUM:
            assert e0.contributions[n] == pytest.approx(exact[n], abs=1e-6)


def test_averaging_forests_are_rescaled_to_log_odds(
    german: tuple[pd.DataFrame, np.ndarray],
) -> None:
    x, y = german
    models = [
        RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0).fit(x[NUM], y),
        DecisionTreeClassifier(max_depth=4, random_state=0).fit(x[NUM], y),
    ]
    rows = _records(x)[:5]
    for model in models:
        scorer = compile_model(model, FEATURES, background=x, background_size=20)
        assert isinstance(scorer, GenericScorer)
        assert scorer.kind == "generic"
        assert scorer.explain_method == "tree_shap_interventional_rescaled"
        assert scorer.background is not None
        matrix = np.array([[r[n] for n in NUM] for r in rows], dtype=float)
        expected, base = _shap_values(model, scorer.background, matrix)
        for i, row in enumerate(rows):
            e = scorer.explain(row)
            assert e is not None
            p = base + expected[i].sum()
            q = np.clip(np.array([base, p]), 1e-12, 1 - 1e-12)
            z0, z = _logit(q)
            factor = (z - z0) / (p - base) if abs(p - base) > 1e-12 else 1 / (p * (1 - p))
            got = np.array([e.contributions[n] for n in NUM])
            np.testing.assert_allclose(got, expected[i] * factor, rtol=0, atol=1e-6)
            assert e.baseline_logit == pytest.approx(z0, abs=1e-6)
            assert e.logit == pytest.approx(z, abs=1e-6)
            # signs and order are shap's
            assert np.array_equal(np.sign(got), np.sign(expected[i] * factor))


def test_explainer_choices_and_refusals(
    german: tuple[pd.DataFrame, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y = german
    forest = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(x[NUM], y)
    row = _records(x)[0]
    # no background: nothing to explain against (as before)
    assert compile_model(forest, FEATURES).explain(row) is None
    off = compile_model(forest, FEATURES, background=x, explainer="none")
    assert isinstance(off, GenericScorer) and off.explain(row) is None
    forced = compile_model(forest, FEATURES, background=x, explainer="sampling")
    assert isinstance(forced, GenericScorer) and forced.explain_method == "permutation_sampling"
    with pytest.raises(InvalidArgument) as err:
        compile_model(forest, FEATURES, explainer="bogus")
    assert err.value.field == "explainer"
    with pytest.raises(InvalidArgument) as err:
        compile_model(forest, FEATURES, explainer="tree_shap")
    assert err.value.field == "background"
    with pytest.raises(InvalidArgument) as err:
        compile_model(forest, FEATURES, background=x, n_permutations=5)
    assert err.value.field == "n_permutations"
    pipeline = _scorecard(c=0.1)
    pipeline.steps[-1] = ("lr", RandomForestClassifier(n_estimators=3, random_state=0))
    pipeline.fit(x, y)
    with pytest.raises(InvalidArgument) as err:
        compile_model(pipeline, FEATURES, background=x, explainer="tree_shap")
    assert err.value.field == "explainer"
    # shap missing: auto falls back to sampling, tree_shap says what to install
    real_import = builtins.__import__

    def no_shap(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "shap":
            raise ImportError("No module named 'shap'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_shap)
    fallback = compile_model(forest, FEATURES, background=x)
    assert isinstance(fallback, GenericScorer)
    assert fallback.explain_method == "permutation_sampling"
    assert "shap" in fallback.explain_note
    with pytest.raises(OptionalDependencyMissing) as missing:
        compile_model(forest, FEATURES, background=x, explainer="tree_shap")
    assert missing.value.remedy == "pip install shap"
