"""Lineage capture: schema inference, data hashing, parameters, seeds, environment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from charter.entities import FeatureType
from charter.errors import InvalidArgument
from charter.registry import lineage
from charter.storage import jsonutil


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "amount": [100.5, 2500.0, np.nan, 40.0],
            "term": [12, 24, 36, 48],
            "owner": [True, False, True, True],
            "purpose": ["car", "tv", "car", None],
            "applied": pd.to_datetime(["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01"]),
        }
    )


def test_infer_feature_schema(frame: pd.DataFrame) -> None:
    s = {f.name: f for f in lineage.infer_feature_schema(frame)}
    assert s["amount"].type is FeatureType.NUMERIC and s["amount"].nullable
    assert (s["amount"].minimum, s["amount"].maximum) == (40.0, 2500.0)
    assert s["term"].type is FeatureType.INTEGER and not s["term"].nullable
    assert (s["term"].minimum, s["term"].maximum) == (12.0, 48.0)
    assert s["owner"].type is FeatureType.BOOLEAN
    assert s["purpose"].type is FeatureType.CATEGORICAL and s["purpose"].nullable
    assert s["purpose"].categories == ("car", "tv")
    assert s["applied"].type is FeatureType.DATETIME
    with pytest.raises(InvalidArgument) as e:
        lineage.infer_feature_schema(np.zeros((2, 2)))
    assert e.value.field == "X"


def test_frame_hash_is_deterministic_and_sensitive(frame: pd.DataFrame) -> None:
    h = lineage.frame_hash(frame)
    assert h == lineage.frame_hash(frame.copy())
    changed = frame.copy()
    changed.loc[1, "amount"] = 2500.01
    assert lineage.frame_hash(changed) != h
    assert lineage.frame_hash(frame.iloc[::-1]) != h  # row order is part of the data
    assert lineage.frame_hash(frame.rename(columns={"term": "tenor"})) != h
    as_float = frame.assign(term=frame["term"].astype(float))
    assert lineage.frame_hash(as_float) != h  # dtype is part of the data


def test_training_data_description(frame: pd.DataFrame) -> None:
    td = lineage.describe_training_data(
        frame, [0, 1, 0, 1], dataset_id="apps", date_column="applied"
    )
    assert td.rows == 4 and td.date_from == "2026-01-01" and td.date_to == "2026-04-01"
    other_y = lineage.describe_training_data(frame, [1, 1, 0, 1], dataset_id="apps")
    assert other_y.content_hash != td.content_hash
    with pytest.raises(InvalidArgument) as e:
        lineage.describe_training_data(frame, dataset_id="apps", date_column="nope")
    assert e.value.field == "date_column"
    with pytest.raises(InvalidArgument):
        lineage.describe_training_data(frame, dataset_id=" ")


def test_hyperparameters_and_seeds() -> None:
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("rf", RandomForestClassifier(n_estimators=7, random_state=3)),
        ]
    )
    params = lineage.hyperparameters(pipe)
    assert params["rf__n_estimators"] == 7
    assert params["scale"].endswith("StandardScaler")
    jsonutil.dumps(params)  # JSON-safe
    assert lineage.seeds(params) == {"rf__random_state": 3}
    assert lineage.seeds(lineage.hyperparameters(LogisticRegression())) == {"random_state": None}
    assert lineage.hyperparameters(object()) == {}


def test_environment_and_commit(tmp_path) -> None:
    env = lineage.environment()
    assert env["python"].count(".") == 2 and "numpy" in env["packages"]
    assert lineage.code_commit(tmp_path) is None  # not a git repository


def test_canonical_json_handles_numpy_and_non_finite() -> None:
    text = jsonutil.dumps({"b": np.float64(1.5), "a": np.int64(2), "c": float("nan"), "d": [1.0]})
    assert text == '{"a":2,"b":1.5,"c":null,"d":[1.0]}'
    assert jsonutil.dumps({"x": float("inf")}) == '{"x":"Infinity"}'
