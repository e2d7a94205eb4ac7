"""Global importance, dependence and reason stability, pinned by hand-computed cases."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from charter.datasets import GERMAN_CREDIT_FEATURES, german_credit_xy
from charter.demo import _scorecard
from charter.errors import InvalidArgument
from charter.explain.global_importance import dependence, importance, reason_stability
from charter.serving.compiled import compile_model

FEATURES = list(GERMAN_CREDIT_FEATURES)


def test_importance_by_hand() -> None:
    c = np.array([[1.0, -2.0, 0.0], [3.0, 0.0, 0.0]])
    out = importance(c, ["a", "b", "c"])
    assert [f.feature for f in out] == ["a", "b", "c"]
    a, b, z = out
    assert (a.mean_abs, a.mean, a.share, a.rank) == (2.0, 2.0, pytest.approx(2 / 3), 1)
    assert (b.mean_abs, b.mean, b.share, b.rank) == (1.0, -1.0, pytest.approx(1 / 3), 2)
    assert (z.mean_abs, z.share, z.rank) == (0.0, 0.0, 3)
    # the same from a DataFrame and from a list of mappings
    frame = pd.DataFrame(c, columns=["a", "b", "c"])
    assert importance(frame, ["a", "b", "c"]) == out
    assert importance(frame.to_dict("records"), ["a", "b", "c"]) == out
    # ties are broken by name
    tied = importance(np.array([[1.0, -1.0]]), ["z", "y"])
    assert [f.feature for f in tied] == ["y", "z"]
    assert out[0].to_dict()["share"] == pytest.approx(2 / 3)


def test_importance_refuses_bad_input() -> None:
    with pytest.raises(InvalidArgument) as err:
        importance(np.ones((2, 3)), ["a", "b"])
    assert err.value.field == "contributions"
    with pytest.raises(InvalidArgument) as err:
        importance(np.array([[np.nan, 1.0]]), ["a", "b"])
    assert err.value.field == "contributions"
    with pytest.raises(InvalidArgument) as err:
        importance(np.ones((2, 2)), ["a", "a"])
    assert err.value.field == "feature_names"
    with pytest.raises(InvalidArgument) as err:
        importance([{"a": 1.0}], ["a", "b"])
    assert err.value.field == "b"


def test_numeric_dependence_by_hand() -> None:
    values = pd.Series([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10, np.nan])
    contributions = [v * 0.1 for v in range(1, 11)] + [-1.0]
    d = dependence(values, contributions, bins=2)
    assert d.kind == "numeric"
    # the median cut (inverted_cdf at 1/2) is the 5th value, 5: [1, 5) and [5, 10]
    lo, hi = d.bins
    assert (lo.label, lo.lower, lo.upper, lo.count) == ("[1, 5)", 1.0, 5.0, 4)
    assert lo.mean_contribution == pytest.approx(0.25)
    assert (hi.label, hi.count, hi.min_contribution, hi.max_contribution) == (
        "[5, 10]",
        6,
        pytest.approx(0.5),
        pytest.approx(1.0),
    )
    assert hi.mean_contribution == pytest.approx(0.75)
    assert (d.n_missing, d.missing_mean_contribution) == (1, -1.0)
    # repeated values never make empty bins
    flat = dependence([3, 3, 3, 3], [0.1, 0.2, 0.3, 0.4], bins=4)
    assert [(b.count, b.mean_contribution) for b in flat.bins] == [(4, pytest.approx(0.25))]


def test_categorical_dependence_by_hand() -> None:
    values = ["rent", "own", "own", None, "own", "free"]
    d = dependence(values, [0.5, -0.1, -0.3, 2.0, -0.2, 0.4])
    assert d.kind == "categorical"
    assert [(b.label, b.count) for b in d.bins] == [("own", 3), ("free", 1), ("rent", 1)]
    assert d.bins[0].mean_contribution == pytest.approx(-0.2)
    assert (d.n_missing, d.missing_mean_contribution) == (1, 2.0)
    assert d.to_dict()["bins"][1]["label"] == "free"
    with pytest.raises(InvalidArgument) as err:
        dependence(values, [0.0])
    assert err.value.field == "contributions"
    with pytest.raises(InvalidArgument) as err:
        dependence(values, [0.0] * 6, bins=0)
    assert err.value.field == "bins"


def _fixed(contributions: list[dict[str, float]]) -> Any:
    table = {i: c for i, c in enumerate(contributions)}

    def explain(row: dict[str, Any]) -> dict[str, float]:
        return table[int(row["id"])]

    return explain


def test_reason_stability_of_a_clear_ordering() -> None:
    rng = np.random.default_rng(0)
    scales = {"a": 10.0, "b": 5.0, "c": 1.0, "d": 0.5, "e": 0.1}
    contributions = [
        {k: float(s * (0.9 + 0.2 * rng.random())) for k, s in scales.items()} for _ in range(30)
    ]
    frame = pd.DataFrame({"id": range(30)})
    out = reason_stability(_fixed(contributions), frame, n_boot=40, top=2, seed=1)
    assert out.top_set == ("a", "b") and out.top_set_share == 1.0
    assert [f.feature for f in out.features] == ["a", "b", "c", "d", "e"]
    for rank, f in enumerate(out.features, start=1):
        assert f.rank == rank and f.mean_rank == rank
        assert f.rank_low == f.rank_high == rank
        assert f.top_share == (1.0 if rank <= 2 else 0.0)
    assert out.to_dict()["n_boot"] == 40


def test_reason_stability_near_a_tie() -> None:
    rng = np.random.default_rng(3)
    contributions = [
        {"a": 3.0, "b": float(rng.normal(1.0, 1.0)), "c": float(rng.normal(1.0, 1.0))}
        for _ in range(40)
    ]
    frame = pd.DataFrame({"id": range(40)})
    out = reason_stability(_fixed(contributions), frame, n_boot=60, top=2, seed=0)
    again = reason_stability(_fixed(contributions), frame, n_boot=60, top=2, seed=0)
    assert out == again
    shares = {f.feature: f.top_share for f in out.features}
    assert shares["a"] == 1.0
    assert 0.0 < shares["b"] < 1.0 and 0.0 < shares["c"] < 1.0
    # every resample has exactly ``top`` features in its top: the shares add up to it
    assert sum(shares.values()) == pytest.approx(2.0)
    assert out.top_set_share == pytest.approx(shares[out.top_set[1]])
    for f in out.features:
        assert f.rank_low <= f.mean_rank <= f.rank_high


def test_reason_stability_with_a_scorer() -> None:
    x, y = german_credit_xy()
    scorer = compile_model(_scorecard().fit(x, y), FEATURES, background=x)
    out = reason_stability(scorer.contributions, x.iloc[:150], n_boot=30, seed=2)
    assert out.n_rows == 150 and out.top == 4 and len(out.features) == len(FEATURES)
    top = sorted(out.features, key=lambda f: -f.top_share)[:4]
    assert sum(f.top_share for f in out.features) == pytest.approx(4.0)
    assert top[0].top_share > 0.5
    with pytest.raises(InvalidArgument) as err:
        reason_stability(lambda row: None, x.iloc[:3])
    assert err.value.field == "explain_fn"
    with pytest.raises(InvalidArgument) as err:
        reason_stability(scorer.contributions, x.iloc[:3], n_boot=0)
    assert err.value.field == "n_boot"
