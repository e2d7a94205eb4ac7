"""Training specs and pipeline specs: strict keys, errors that name the field, the estimator
allow-list, preprocessing Charter can compile, seeded splits, and the shadow comparison rule."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from charter.errors import InvalidArgument
from charter.pipelines.ct import CompareRule, PipelineSpec, compare_shadow, split_frame
from charter.pipelines.training import TrainingSpec, build_estimator, train_model

POLICY = 'name = "p"\n\n[data]\nlabel = "default"\n\n[gates.performance]\nmin_auc = 0.6\n'
CANARY = {
    "steps": [0.1, 1.0],
    "min_decisions": 50,
    "max_error_rate": 0.01,
    "max_latency_p99_ms": 50.0,
    "max_score_psi": 0.25,
    "max_approval_rate_delta": 0.1,
}
EXAMPLE = """
model = "retail-pd"
developer = "dana"                  # the person accountable for the candidates
seed = 20261122
shadow_decisions = 500
threshold = 0.4                     # optional: default, the champion's

[data]
path = "applications.csv"           # or: function = "my_bank.data:applications"
id = "applications@2026-11"
max_out_of_range_rate = 0.02

[training]
estimator = "sklearn.linear_model.LogisticRegression"
params = { C = 0.5, max_iter = 1000 }

[validation]
policy = "policy.toml"
split = "date"
date_column = "applied_at"
holdout = 0.15
out_of_time = 0.2

[compare]
min_labels = 200
max_auc_drop = 0.01

[canary]
steps = [0.1, 1.0]
min_decisions = 50
max_error_rate = 0.01
max_latency_p99_ms = 50.0
max_score_psi = 0.25
max_approval_rate_delta = 0.1

[approval]
required_tiers = ["high", "medium", "low"]
"""


def _frame(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "income": rng.normal(50_000, 10_000, n),
            "age": rng.integers(18, 80, n),
            "region": rng.choice(["north", "south", "east"], n),
        }
    )
    logit = (X["income"] - 50_000) / 10_000 + (X["region"] == "east") - 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    return X, y


def _write(tmp_path: Path, text: str = EXAMPLE) -> Path:
    (tmp_path / "policy.toml").write_text(POLICY)
    (tmp_path / "applications.csv").write_text("income,default\n1,0\n")
    p = tmp_path / "ct.toml"
    p.write_text(textwrap.dedent(text))
    return p


def _spec_dict(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "model": "retail-pd",
        "developer": "dana",
        "data": {"path": "applications.csv"},
        "training": {"estimator": "sklearn.linear_model.LogisticRegression"},
        "validation": {"policy_text": POLICY},
        "canary": dict(CANARY),
    }
    d.update(over)
    return d


def _field(fn: Any, *args: Any, **kw: Any) -> str | None:
    with pytest.raises(InvalidArgument) as e:
        fn(*args, **kw)
    return e.value.field


# ---------------------------------------------------------------------------------- training
@pytest.mark.parametrize(
    "path",
    ["os.system", "subprocess.Popen", "builtins.eval", "my_bank.models.Scorecard",
     "sklearn.__loader__", "LogisticRegression"],
)  # fmt: skip
def test_an_estimator_outside_the_allow_list_is_refused(path: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        TrainingSpec(estimator=path)
    assert e.value.field == "training.estimator"


def test_an_estimator_must_be_a_probabilistic_classifier() -> None:
    with pytest.raises(InvalidArgument, match="predict_proba"):
        TrainingSpec(estimator="sklearn.linear_model.LinearRegression")
    assert _field(TrainingSpec, estimator="sklearn.linear_model.NoSuchModel") == (
        "training.estimator"
    )


def test_training_keys_are_strict_and_exactly_one_way_is_given() -> None:
    est = "sklearn.linear_model.LogisticRegression"
    assert _field(TrainingSpec.from_dict, {"estimator": est, "param": {}}) == "training.param"
    assert _field(TrainingSpec.from_dict, {}) == "training"
    assert _field(TrainingSpec, estimator=est, function="math:floor") == "training"
    assert _field(TrainingSpec, function="math:floor", params={"C": 1}) == "training.params"
    assert _field(TrainingSpec, estimator=est, params={"C": object()}) == "training.params.C"
    assert _field(TrainingSpec, estimator=est, preprocess="magic") == "training.preprocess"
    assert _field(TrainingSpec, function="no_such_module_xyz:train") == "training.function"
    assert _field(TrainingSpec, function="not a reference") == "training.function"


def test_unknown_constructor_parameters_name_the_valid_ones() -> None:
    X, y = _frame()
    spec = TrainingSpec(estimator="sklearn.linear_model.LogisticRegression", params={"colour": 1})
    with pytest.raises(InvalidArgument, match="max_iter") as e:
        train_model(spec, X, y, seed=0)
    assert e.value.field == "training.params"


def test_auto_preprocessing_is_a_pipeline_charter_compiles() -> None:
    from charter.serving.compiled import compile_model

    X, y = _frame()
    spec = TrainingSpec(
        estimator="sklearn.linear_model.LogisticRegression", params={"C": 0.5, "max_iter": 500}
    )
    est = build_estimator(spec, X, seed=42)
    assert isinstance(est, Pipeline) and isinstance(est.steps[0][1], ColumnTransformer)
    model = est.steps[-1][1]
    assert isinstance(model, LogisticRegression) and model.random_state == 42 and model.C == 0.5
    trained = train_model(spec, X, y, seed=42)
    scorer = compile_model(trained.model, list(X.columns))
    assert scorer.kind == "linear"
    row = X.iloc[0].to_dict()
    assert scorer.score_one(row) == pytest.approx(trained.model.predict_proba(X.iloc[[0]])[0, 1])
    plain = build_estimator(
        TrainingSpec(estimator="sklearn.linear_model.LogisticRegression", preprocess="none"),
        X,
        seed=1,
    )
    assert isinstance(plain, LogisticRegression)


def test_missing_values_get_an_imputer() -> None:
    X, y = _frame()
    X.loc[:9, "income"] = np.nan
    X.loc[10:19, "region"] = None
    spec = TrainingSpec(estimator="sklearn.linear_model.LogisticRegression")
    trained = train_model(spec, X, y, seed=0)
    assert np.isfinite(trained.model.predict_proba(X)).all()


def test_a_training_function_gets_the_seed_and_must_return_a_classifier() -> None:
    X, y = _frame()
    seen: dict[str, Any] = {}

    def train(X: pd.DataFrame, y: np.ndarray, seed: int) -> Any:
        seen["seed"] = seed
        return LogisticRegression(random_state=seed).fit(X[["income", "age"]], y)

    out = train_model(TrainingSpec(train_fn=train), X, y, seed=9)
    assert seen == {"seed": 9} and out.description.endswith("train")
    assert TrainingSpec(train_fn=train).to_dict()["function"].endswith(":" + train.__qualname__)

    def not_a_classifier(X: pd.DataFrame, y: np.ndarray) -> Any:
        return object()

    def broken(X: pd.DataFrame, y: np.ndarray) -> Any:
        raise ValueError("boom")

    def three_classes(X: pd.DataFrame, y: np.ndarray) -> Any:
        return LogisticRegression().fit(X[["income"]], np.arange(len(y)) % 3)

    assert _field(train_model, TrainingSpec(train_fn=not_a_classifier), X, y, seed=0) == (
        "training"
    )
    with pytest.raises(InvalidArgument, match="boom") as e:
        train_model(TrainingSpec(train_fn=broken), X, y, seed=0)
    assert e.value.field == "training.function"
    with pytest.raises(InvalidArgument, match=r"not \[0, 1\]"):
        train_model(TrainingSpec(train_fn=three_classes), X, y, seed=0)


def test_a_named_training_function_is_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bank_training.py").write_text(
        "from sklearn.linear_model import LogisticRegression\n"
        "def train(X, y):\n"
        "    return LogisticRegression().fit(X[['income']], y)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = TrainingSpec.from_dict({"function": "bank_training:train"})
    X, y = _frame()
    assert train_model(spec, X, y, seed=0).model.coef_.shape == (1, 1)
    assert spec.to_dict() == {"function": "bank_training:train"}
    assert _field(TrainingSpec, function="bank_training:nope") == "training.function"


# ---------------------------------------------------------------------------------- the spec
def test_the_documented_example_reads_and_round_trips(tmp_path: Path) -> None:
    spec = PipelineSpec.from_toml(_write(tmp_path))
    assert spec.model == "retail-pd" and spec.developer == "dana"
    assert spec.label == "default" and spec.positive is None  # from the policy
    assert spec.data.path == tmp_path / "applications.csv"
    assert spec.data.identifier == "applications@2026-11"
    assert spec.checks.max_out_of_range_rate == 0.02 and spec.checks.max_missing_rate == 0.0
    assert spec.split.method == "date" and spec.split.date_column == "applied_at"
    assert spec.compare.min_labels == 200 and spec.canary.steps == (0.1, 1.0)
    assert spec.approval.required_tiers == ("high", "low", "medium")
    assert spec.training.params == {"C": 0.5, "max_iter": 1000}
    again = PipelineSpec.from_dict(spec.to_dict())
    assert again == spec and again.sha256() == spec.sha256()


@pytest.mark.parametrize(
    ("over", "fld"),
    [
        ({"shadow_decision": 5}, "spec.shadow_decision"),
        ({"compare": {"min_label": 5}}, "compare.min_label"),
        ({"data": {"path": "a.csv", "sep": ";"}}, "data.sep"),
        ({"validation": {"policy_text": POLICY, "splits": "date"}}, "validation.splits"),
        ({"approval": {"tiers": ["high"]}}, "approval.tiers"),
        ({"developer": "charter-automation"}, "developer"),
        ({"developer": ""}, "developer"),
        ({"model": "Retail PD"}, "model"),
        ({"label": "outcome"}, "label"),
        ({"positive": "bad"}, "positive"),
        ({"features": ["default"]}, "features"),
        ({"features": ["a", "a"]}, "features"),
        ({"shadow_decisions": 0}, "shadow_decisions"),
        ({"threshold": 1.0}, "threshold"),
        ({"seed": -1}, "seed"),
        ({"data": {"path": "a.xlsx"}}, "data.path"),
        ({"data": {"path": "a.csv", "function": "math:floor"}}, "data"),
        ({"data": {"path": "a.csv", "min_rows": 1}}, "data.min_rows"),
        ({"data": {"path": "a.csv", "max_missing_rate": 2}}, "data.max_missing_rate"),
        ({"validation": {}}, "validation.policy"),
        ({"validation": {"policy": "missing.toml"}}, "validation.policy"),
        ({"validation": {"policy_text": POLICY, "split": "random"}}, "validation.split"),
        ({"validation": {"policy_text": POLICY, "split": "date"}}, "validation.date_column"),
        ({"validation": {"policy_text": POLICY, "holdout": 0.5, "out_of_time": 0.5}},
         "validation.holdout"),
        ({"validation": {"policy_text": POLICY, "holdout": 0}}, "validation.holdout"),
        ({"compare": {"alpha": 0.7}}, "compare.alpha"),
        ({"compare": {"require_labels": "yes"}}, "compare.require_labels"),
        ({"approval": {"required_tiers": ["medium"]}}, "approval.required_tiers"),
        ({"approval": {"required_tiers": "high"}}, "approval.required_tiers"),
        ({"approval": {"required_tiers": ["high", "extreme"]}}, "approval.required_tiers"),
        ({"canary": {**CANARY, "steps": [0.5, 0.9]}}, "canary.steps"),
        ({"canary": {**CANARY, "min_decision": 5}}, "canary.min_decision"),
    ],
)  # fmt: skip
def test_a_bad_spec_is_refused_naming_the_field(
    tmp_path: Path, over: dict[str, Any], fld: str
) -> None:
    assert _field(PipelineSpec.from_dict, _spec_dict(**over), base_dir=tmp_path) == fld


@pytest.mark.parametrize("missing", ["model", "developer", "data", "training", "validation",
                                     "canary"])  # fmt: skip
def test_a_spec_without_a_required_part_names_it(missing: str) -> None:
    d = _spec_dict()
    del d[missing]
    assert _field(PipelineSpec.from_dict, d) == missing


def test_a_spec_file_that_is_not_toml_or_not_there(tmp_path: Path) -> None:
    assert _field(PipelineSpec.from_toml, tmp_path / "nope.toml") == "spec"
    bad = tmp_path / "bad.toml"
    bad.write_text("model = \n")
    assert _field(PipelineSpec.from_toml, bad) == "spec"


# ---------------------------------------------------------------------------------- splits
def _spec(**validation: Any) -> PipelineSpec:
    v = {"policy_text": POLICY, **validation}
    return PipelineSpec.from_dict(_spec_dict(validation=v, seed=3), base_dir=Path("/tmp"))


def test_a_fraction_split_is_seeded_stratified_and_a_partition() -> None:
    X, y = _frame(1000)
    frame = X.assign(default=y)
    spec = _spec(holdout=0.2, out_of_time=0.1)
    parts = split_frame(frame, spec)
    again = split_frame(frame, spec)
    assert all(parts[k].index.equals(again[k].index) for k in parts)
    idx = [set(p.index) for p in parts.values()]
    assert sum(map(len, idx)) == len(frame) and set().union(*idx) == set(frame.index)
    assert len(parts["holdout"]) == pytest.approx(200, abs=2)
    assert len(parts["out_of_time"]) == pytest.approx(100, abs=2)
    rate = y.mean()
    for p in parts.values():
        assert p["default"].mean() == pytest.approx(rate, abs=0.01)
    no_oot = split_frame(frame, _spec(holdout=0.2, out_of_time=0.0))
    assert set(no_oot) == {"train", "holdout"}


def test_a_date_split_keeps_the_latest_rows_out_of_time() -> None:
    X, y = _frame(500)
    dates = pd.date_range("2025-01-01", periods=500, freq="D")
    frame = X.assign(default=y, applied_at=np.random.default_rng(1).permutation(dates))
    parts = split_frame(frame, _spec(split="date", date_column="applied_at", out_of_time=0.2))
    oot = parts["out_of_time"]["applied_at"]
    assert len(oot) == 100
    assert oot.min() > parts["train"]["applied_at"].max()
    assert oot.min() > parts["holdout"]["applied_at"].max()


# ---------------------------------------------------------------------------------- compare
def _rows(shadow: np.ndarray, champion: np.ndarray, y: np.ndarray | None) -> list[Any]:
    out = []
    for i, (b, a) in enumerate(zip(shadow, champion, strict=True)):
        out.append(
            SimpleNamespace(
                shadow_score=float(b),
                shadow_decision="decline" if b >= 0.5 else "approve",
                score=float(a),
                decision="decline" if a >= 0.5 else "approve",
                label=None if y is None else int(y[i]),
            )
        )
    return out


def test_the_comparison_rule() -> None:
    rng = np.random.default_rng(5)
    y = (rng.random(400) < 0.3).astype(int)
    champion = np.clip(0.3 + 0.4 * (y - 0.3) + rng.normal(0, 0.15, 400), 0.01, 0.99)
    same = np.clip(champion + rng.normal(0, 0.02, 400), 0.01, 0.99)
    noise = rng.random(400)
    rule = CompareRule(min_labels=100)

    fine = compare_shadow(_rows(same, champion, y), rule)
    assert fine["verdict"] == "not_worse" and fine["agreement"] > 0.9
    assert fine["auc"]["candidate"] == pytest.approx(fine["auc"]["champion"], abs=0.02)

    worse = compare_shadow(_rows(noise, champion, y), rule)
    assert worse["verdict"] == "worse" and "trails the champion" in worse["reasons"][0]

    unlabelled = compare_shadow(_rows(noise, champion, None), rule)
    assert unlabelled["verdict"] == "insufficient_labels" and "auc" not in unlabelled

    strict = compare_shadow(_rows(noise, champion, None), CompareRule(min_agreement=0.95))
    assert strict["verdict"] == "worse" and "agreement" in strict["reasons"][0]


# ---------------------------------------------------------------------------------- data
def test_the_data_checks_against_the_champions_schema() -> None:
    from charter.entities import FeatureSpec, FeatureType
    from charter.pipelines.ct import DataChecks, _check_feature

    limits = DataChecks(max_out_of_range_rate=0.1, max_unseen_category_rate=0.0)

    def failed(values: list[Any], spec: FeatureSpec) -> list[str]:
        return [c["check"] for c in _check_feature(pd.Series(values), spec, limits)
                if not c["passed"]]  # fmt: skip

    age = FeatureSpec("age", FeatureType.INTEGER, minimum=18, maximum=80)
    assert failed([20, 30, 40, 50], age) == []
    assert failed([20, 30, 40, 95], age) == ["out_of_range_rate"]  # 25% > 10%
    assert failed([20.5, 30, 40, 50], age) == ["whole_numbers"]
    assert failed([20, None, 40, 50], age) == ["missing_rate"]
    assert failed(["a", "b", "c", "d"], age) == ["type"]
    nullable = FeatureSpec("age", FeatureType.NUMERIC, nullable=True)
    assert failed([1.0, None, None, 2.0], nullable) == []
    region = FeatureSpec("region", FeatureType.CATEGORICAL, categories=("north", "south"))
    assert failed(["north", "south", "north", "north"], region) == []
    assert failed(["north", "west", "north", "north"], region) == ["unseen_category_rate"]


def test_a_data_source_names_what_is_wrong(tmp_path: Path) -> None:
    from charter.pipelines.ct import DataSource

    assert _field(DataSource(path=tmp_path / "nope.csv").load) == "data.path"
    assert _field(DataSource(loader=lambda: 5).load) == "data.function"
    assert _field(DataSource(loader=lambda: pd.DataFrame()).load) == "data"

    def broken() -> pd.DataFrame:
        raise OSError("the warehouse is down")

    with pytest.raises(InvalidArgument, match="the warehouse is down") as e:
        DataSource(loader=broken).load()
    assert e.value.field == "data"
    frame = pd.DataFrame({"a": [1, 2]})
    frame.to_parquet(tmp_path / "d.parquet")
    source = DataSource(path=tmp_path / "d.parquet")
    assert source.load().equals(frame) and source.identifier == "d.parquet"
    assert DataSource(loader=broken).source.startswith("callable:")
