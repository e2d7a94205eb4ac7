"""Tests of model serialisation and safe loading."""

from __future__ import annotations

import pathlib
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from charter.errors import InvalidArgument, UnsafeArtifact
from charter.registry import formats
from charter.registry.formats import (
    DEFAULT_TRUSTED_TYPE_PREFIXES,
    FORMATS,
    SerializedModel,
    check_loadable,
    feature_names,
    load_model,
    serialize_model,
)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(7)
    n = 400
    frame = pd.DataFrame(
        {
            "income": rng.normal(50.0, 10.0, n),
            "debt": rng.normal(10.0, 3.0, n),
            "purpose": rng.choice(["car", "house", "education"], n),
        }
    )
    logit = 0.1 * (frame["income"] - 50) - 0.3 * (frame["debt"] - 10) + (frame["purpose"] == "car")
    target = pd.Series((logit + rng.normal(0, 1, n) > 0.5).astype(int), name="default")
    return frame, target


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[["income", "debt"]]


def _round_trip(model: Any) -> tuple[SerializedModel, Any]:
    serialized = serialize_model(model)
    check_loadable(serialized.data, serialized.format)
    return serialized, load_model(serialized.data, serialized.format)


# -- scikit-learn via skops ------------------------------------------------------------------


def test_logistic_regression_round_trip(data: tuple[pd.DataFrame, pd.Series]) -> None:
    frame, target = data
    model = LogisticRegression().fit(_numeric(frame), target)
    serialized, loaded = _round_trip(model)
    assert serialized.format == "skops"
    assert serialized.library == "scikit-learn"
    assert serialized.model_class == "sklearn.linear_model._logistic.LogisticRegression"
    assert isinstance(loaded, LogisticRegression)
    np.testing.assert_array_equal(
        loaded.predict_proba(_numeric(frame)), model.predict_proba(_numeric(frame))
    )
    assert feature_names(loaded) == ["income", "debt"]


def test_pipeline_round_trip(data: tuple[pd.DataFrame, pd.Series]) -> None:
    frame, target = data
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("cat", OneHotEncoder(handle_unknown="ignore"), ["purpose"]),
                        ("num", StandardScaler(), ["income", "debt"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(frame, target)
    serialized, loaded = _round_trip(model)
    assert serialized.format == "skops"
    assert serialized.model_class == "sklearn.pipeline.Pipeline"
    np.testing.assert_array_equal(loaded.predict_proba(frame), model.predict_proba(frame))
    assert feature_names(loaded) == ["income", "debt", "purpose"]


def test_hist_gradient_boosting_round_trip(data: tuple[pd.DataFrame, pd.Series]) -> None:
    frame, target = data
    model = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(_numeric(frame), target)
    _, loaded = _round_trip(model)
    np.testing.assert_array_equal(
        loaded.predict_proba(_numeric(frame)), model.predict_proba(_numeric(frame))
    )


def test_random_forest_round_trip(data: tuple[pd.DataFrame, pd.Series]) -> None:
    frame, target = data
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(_numeric(frame), target)
    _, loaded = _round_trip(model)
    np.testing.assert_array_equal(
        loaded.predict_proba(_numeric(frame)), model.predict_proba(_numeric(frame))
    )


def test_hist_gradient_boosting_native_categoricals(data: tuple[pd.DataFrame, pd.Series]) -> None:
    frame, target = data
    categorical = frame.assign(purpose=frame["purpose"].astype("category"))
    model = HistGradientBoostingClassifier(
        max_iter=10, categorical_features="from_dtype", random_state=0
    ).fit(categorical, target)
    _, loaded = _round_trip(model)
    np.testing.assert_array_equal(
        loaded.predict_proba(categorical), model.predict_proba(categorical)
    )


def test_allow_list_is_exact_names() -> None:
    assert all(not entry.endswith(".") for entry in DEFAULT_TRUSTED_TYPE_PREFIXES)
    assert "builtins.eval" not in DEFAULT_TRUSTED_TYPE_PREFIXES


class Scorecard:
    """A helper object defined here, so skops does not trust it."""

    def __init__(self, points: int = 0) -> None:
        self.points = points


class ScorecardClassifier(ClassifierMixin, BaseEstimator):
    """A toy estimator whose fitted attribute is an instance of a class skops does not know."""

    def __init__(self, points: int = 3) -> None:
        self.points = points

    def fit(self, X: Any, y: Any) -> ScorecardClassifier:
        self.card_ = Scorecard(self.points)
        self.classes_ = np.array([0, 1])
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.full(len(X), self.card_.points % 2)


def test_untrusted_skops_type_is_refused_then_accepted(
    data: tuple[pd.DataFrame, pd.Series],
) -> None:
    frame, target = data
    model = ScorecardClassifier(points=5).fit(frame, target)
    serialized = serialize_model(model)
    assert serialized.format == "skops"
    with pytest.raises(UnsafeArtifact) as info:
        load_model(serialized.data, "skops")
    card_type = f"{Scorecard.__module__}.Scorecard"
    estimator_type = f"{ScorecardClassifier.__module__}.ScorecardClassifier"
    assert card_type in info.value.message
    assert estimator_type in info.value.message
    assert info.value.remedy is not None and "trusted_types" in info.value.remedy
    assert sorted(info.value.details["untrusted_types"]) == sorted([card_type, estimator_type])
    with pytest.raises(UnsafeArtifact):
        check_loadable(serialized.data, "skops")
    with pytest.raises(UnsafeArtifact):  # approving only one of the two is not enough
        load_model(serialized.data, "skops", trusted_types=[estimator_type])

    loaded = load_model(serialized.data, "skops", trusted_types=[card_type, estimator_type])
    assert isinstance(loaded, ScorecardClassifier)
    assert loaded.card_.points == 5
    # a module prefix ending in "." covers every type in that module
    module_prefix = f"{Scorecard.__module__}."
    check_loadable(serialized.data, "skops", trusted_types=[module_prefix])
    # ... but a bare prefix without the dot is an exact name and covers nothing else
    with pytest.raises(UnsafeArtifact):
        load_model(serialized.data, "skops", trusted_types=[Scorecard.__module__])


def test_trusted_types_must_be_a_sequence_of_names(data: tuple[pd.DataFrame, pd.Series]) -> None:
    frame, target = data
    serialized = serialize_model(LogisticRegression().fit(_numeric(frame), target))
    with pytest.raises(InvalidArgument):
        load_model(serialized.data, "skops", trusted_types="sklearn.")
    with pytest.raises(InvalidArgument):
        load_model(serialized.data, "skops", trusted_types=["."])


def test_garbage_skops_data_is_invalid() -> None:
    with pytest.raises(InvalidArgument):
        load_model(b"not a zip file", "skops")


# -- xgboost and lightgbm --------------------------------------------------------------------


def test_xgboost_classifier_round_trip(data: tuple[pd.DataFrame, pd.Series]) -> None:
    import xgboost as xgb

    frame, target = data
    model = xgb.XGBClassifier(n_estimators=20, max_depth=3, random_state=0)
    model.fit(_numeric(frame), target)
    serialized, loaded = _round_trip(model)
    assert serialized.format == "xgboost-json"
    assert serialized.library == "xgboost"
    assert serialized.model_class == "xgboost.sklearn.XGBClassifier"
    assert serialized.data.startswith(b'{"')
    assert isinstance(loaded, xgb.XGBClassifier)
    np.testing.assert_array_equal(
        loaded.predict_proba(_numeric(frame)), model.predict_proba(_numeric(frame))
    )
    np.testing.assert_array_equal(loaded.predict(_numeric(frame)), model.predict(_numeric(frame)))
    assert feature_names(loaded) == ["income", "debt"]
    # the caller's model is not modified by serialisation
    assert model.get_booster().attributes() == {}
    assert "charter_sklearn_class" not in loaded.get_booster().attributes()


def test_xgboost_ubj_and_booster(data: tuple[pd.DataFrame, pd.Series]) -> None:
    import xgboost as xgb

    frame, target = data
    model = xgb.XGBRegressor(n_estimators=10, max_depth=2).fit(_numeric(frame), target)
    ubj = serialize_model(model, "xgboost-ubj")
    assert ubj.format == "xgboost-ubj"
    loaded = load_model(ubj.data, "xgboost-ubj")
    assert isinstance(loaded, xgb.XGBRegressor)
    np.testing.assert_array_equal(loaded.predict(_numeric(frame)), model.predict(_numeric(frame)))
    with pytest.raises(InvalidArgument):  # UBJ bytes recorded as JSON
        load_model(ubj.data, "xgboost-json")
    json_data = serialize_model(model, "xgboost-json").data
    with pytest.raises(InvalidArgument):  # JSON bytes recorded as UBJ
        load_model(json_data, "xgboost-ubj")
    pretty = b"{\n  " + json_data[1:]  # JSON with whitespace is still JSON
    np.testing.assert_array_equal(
        load_model(pretty, "xgboost-json").predict(_numeric(frame)),
        model.predict(_numeric(frame)),
    )

    booster = model.get_booster()
    serialized, loaded_booster = _round_trip(booster)
    assert serialized.model_class == "xgboost.core.Booster"
    assert isinstance(loaded_booster, xgb.Booster)
    matrix = xgb.DMatrix(_numeric(frame))
    np.testing.assert_array_equal(loaded_booster.predict(matrix), booster.predict(matrix))
    assert feature_names(loaded_booster) == ["income", "debt"]


def test_lightgbm_classifier_round_trip(data: tuple[pd.DataFrame, pd.Series]) -> None:
    import lightgbm as lgb

    frame, target = data
    model = lgb.LGBMClassifier(n_estimators=20, verbose=-1, random_state=0)
    model.fit(_numeric(frame), target)
    serialized, loaded = _round_trip(model)
    assert serialized.format == "lightgbm-txt"
    assert serialized.library == "lightgbm"
    assert serialized.model_class == "lightgbm.sklearn.LGBMClassifier"
    # LightGBM cannot rebuild its sklearn wrapper; the booster predicts P(class 1)
    assert isinstance(loaded, lgb.Booster)
    np.testing.assert_array_equal(
        loaded.predict(_numeric(frame)), model.predict_proba(_numeric(frame))[:, 1]
    )
    assert feature_names(loaded) == ["income", "debt"]
    assert feature_names(model) == ["income", "debt"]


def test_lightgbm_generated_names_are_not_feature_names(
    data: tuple[pd.DataFrame, pd.Series],
) -> None:
    import lightgbm as lgb

    frame, target = data
    model = lgb.LGBMClassifier(n_estimators=3, verbose=-1)
    model.fit(_numeric(frame).to_numpy(), target.to_numpy())
    assert feature_names(model) is None
    assert feature_names(model.booster_) is None


def test_wrong_native_format_for_model(data: tuple[pd.DataFrame, pd.Series]) -> None:
    frame, target = data
    model = LogisticRegression().fit(_numeric(frame), target)
    with pytest.raises(InvalidArgument):
        serialize_model(model, "xgboost-json")
    with pytest.raises(InvalidArgument):
        serialize_model(model, "lightgbm-txt")


# -- pickle ----------------------------------------------------------------------------------


class _Evil:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (pathlib.Path.touch, (self.target,))


def test_pickle_is_never_loaded_by_default(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_Evil(marker), protocol=5)
    with pytest.raises(UnsafeArtifact) as info:
        load_model(evil, "pickle")
    assert info.value.remedy is not None
    assert not marker.exists()
    check_loadable(evil, "pickle")  # header check only
    assert not marker.exists()
    with pytest.raises(InvalidArgument):
        check_loadable(b"not a pickle", "pickle")
    with pytest.raises(InvalidArgument):
        check_loadable(pickle.dumps(1, protocol=0), "pickle")  # no protocol header
    assert not marker.exists()


def test_pickle_loads_only_when_allowed(data: tuple[pd.DataFrame, pd.Series]) -> None:
    frame, target = data
    model = LogisticRegression().fit(_numeric(frame), target)
    with pytest.raises(UnsafeArtifact):
        serialize_model(model, "pickle")
    serialized = serialize_model(model, "pickle", allow_pickle=True)
    assert serialized.format == "pickle"
    assert serialized.library == "sklearn"
    check_loadable(serialized.data, "pickle")
    loaded: Any = load_model(serialized.data, "pickle", allow_pickle=True)
    np.testing.assert_array_equal(
        loaded.predict_proba(_numeric(frame)), model.predict_proba(_numeric(frame))
    )


def test_pickle_is_never_chosen_automatically() -> None:
    with pytest.raises(InvalidArgument) as info:
        serialize_model(object())
    assert info.value.remedy is not None and "pickle" in info.value.remedy


# -- formats ---------------------------------------------------------------------------------


def test_unknown_format_lists_valid_ones() -> None:
    for call in (
        lambda: load_model(b"x", "onnx"),
        lambda: check_loadable(b"x", "onnx"),
        lambda: serialize_model(LogisticRegression(), "onnx"),
    ):
        with pytest.raises(InvalidArgument) as info:
            call()
        assert info.value.field == "format"
        assert info.value.remedy is not None
        assert all(name in info.value.remedy for name in FORMATS)


def test_format_constants() -> None:
    assert FORMATS == ("skops", "xgboost-json", "xgboost-ubj", "lightgbm-txt", "pickle")
    assert formats.SKOPS == "skops" and formats.PICKLE == "pickle"


def test_feature_names_absent() -> None:
    assert feature_names(LogisticRegression()) is None
    assert feature_names(object()) is None


def test_optional_libraries_are_imported_lazily() -> None:
    code = (
        "import sys, charter.registry.formats; "
        "print(','.join(m for m in ('xgboost', 'lightgbm', 'skops') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
