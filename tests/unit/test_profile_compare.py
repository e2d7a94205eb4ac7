"""Reference profiles, mergeable accumulators, comparison and data quality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from charter.datasets import PLANTED_DRIFTS, drift_benchmark_frame
from charter.errors import InvalidArgument
from charter.stats.compare import compare, drift_report
from charter.stats.policy import DriftPolicy
from charter.stats.sketches import (
    NumericAccumulator,
    ReferenceProfile,
    accumulate,
    build_profile,
)


@pytest.fixture(scope="module")
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    return (
        drift_benchmark_frame(30_000, seed=1, drifted=False),
        drift_benchmark_frame(30_000, seed=2, drifted=True),
    )


@pytest.fixture(scope="module")
def profile(frames: tuple[pd.DataFrame, pd.DataFrame]) -> ReferenceProfile:
    return build_profile(frames[0])


def _counts(acc) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, a in acc.columns.items():
        out[name] = a.counts.tolist() if isinstance(a, NumericAccumulator) else dict(a.counts)
    return out


def test_profile_json_round_trip_is_exact(profile: ReferenceProfile) -> None:
    again = ReferenceProfile.from_json(profile.to_json())
    assert again.to_dict() == profile.to_dict()
    p, q = profile.columns["num_04"], again.columns["num_04"]
    np.testing.assert_array_equal(p.cuts, q.cuts)
    with pytest.raises(InvalidArgument) as e:
        ReferenceProfile.from_json('{"charter_profile_version": 99}')
    assert e.value.field == "charter_profile_version"


def test_profile_bins_are_reference_quantiles(profile: ReferenceProfile) -> None:
    p = profile.columns["num_00"]
    coarse = p.coarse(p.counts)
    assert coarse.size == 10 and coarse.sum() == 30_000
    np.testing.assert_allclose(coarse / coarse.sum(), 0.1, atol=0.002)


def test_chunks_and_partitions_equal_one_pass(
    profile: ReferenceProfile, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    cur = frames[1]
    one = profile.accumulator().update(cur)
    chunked = accumulate(profile, (cur.iloc[i : i + 7001] for i in range(0, len(cur), 7001)))
    parts = [profile.accumulator().update(cur.iloc[i::3]) for i in range(3)]
    merged = parts[2].merge(parts[0]).merge(parts[1])
    assert _counts(one) == _counts(chunked) == _counts(merged)
    assert one.rows == chunked.rows == merged.rows == len(cur)
    r1, r2 = compare(profile, one), compare(profile, merged)
    for a, b in zip(r1.features, r2.features, strict=True):
        assert a.psi == b.psi and a.statistic == b.statistic and a.tier == b.tier
        if a.kind == "numeric":
            assert a.current_mean == pytest.approx(b.current_mean, rel=1e-12)


def test_shuffling_changes_nothing(
    profile: ReferenceProfile, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    cur = frames[1]
    shuffled = cur.sample(frac=1.0, random_state=5).reset_index(drop=True)
    assert _counts(profile.accumulator().update(cur)) == _counts(
        profile.accumulator().update(shuffled)
    )


def test_reference_against_itself_is_stable(
    profile: ReferenceProfile, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    rep = compare(profile, profile.accumulator().update(frames[0]))
    assert all(f.psi == 0.0 and f.statistic == 0.0 for f in rep.features if f.kind == "numeric")
    assert rep.flagged == () and rep.worst_tier == "stable"


def test_planted_drifts_are_the_flagged_ones(
    profile: ReferenceProfile, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    rep = compare(profile, profile.accumulator().update(frames[1]))
    assert {f.feature for f in rep.flagged} == {d.column for d in PLANTED_DRIFTS}
    big = rep.feature("num_01")  # 0.5 sd mean shift
    assert big.tier == "critical" and big.wasserstein_normalised == pytest.approx(0.5, abs=0.05)
    d = rep.to_dict()
    assert d["summary"]["by_tier"]["stable"] == 18 and set(d["summary"]["flagged"]) == {
        x.column for x in PLANTED_DRIFTS
    }


def test_binned_statistics_match_raw_within_bounds(
    profile: ReferenceProfile, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    ref, cur = frames
    rep = compare(profile, profile.accumulator().update(cur))
    for name in ("num_00", "num_05", "num_13", "num_17"):
        f = rep.feature(name)
        exact_ks = sps.ks_2samp(ref[name], cur[name]).statistic
        assert f.statistic <= exact_ks + 1e-12 <= f.statistic + f.ks_bound + 1e-12
        exact_w = sps.wasserstein_distance(ref[name], cur[name])
        assert abs(f.wasserstein - exact_w) <= f.wasserstein_bound
        assert f.current_mean == pytest.approx(cur[name].mean(), rel=1e-9)


def test_categorical_chi2_matches_scipy_on_the_same_table(
    profile: ReferenceProfile, frames: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    ref, cur = frames
    f = compare(profile, profile.accumulator().update(cur)).feature("cat_1")
    table = pd.crosstab(
        np.r_[np.zeros(len(ref)), np.ones(len(cur))],
        pd.concat([ref["cat_1"], cur["cat_1"]]).astype(str).to_numpy(),
    ).to_numpy()
    stat, _, dof, _ = sps.chi2_contingency(table, correction=False)
    assert not f.pooled_levels
    assert f.statistic == pytest.approx(stat, rel=1e-9) and f.chi2_dof == dof


def test_data_quality() -> None:
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"x": rng.normal(100, 10, 5000), "c": rng.choice(["a", "b", "c"], 5000)})
    prof = build_profile(ref)
    cur = pd.DataFrame(
        {
            "x": pd.Series([np.nan, np.inf, "oops", 1e6, -1e6, 100.0, 101.0, 99.0], dtype=object),
            "c": ["a", "b", None, "zzz", "zzz", "a", "a", "b"],
            "extra": range(8),
        }
    )
    rep = compare(prof, prof.accumulator().update(cur))
    x, c = rep.feature("x").quality, rep.feature("c").quality
    assert (x.n_rows, x.type_errors, x.nonfinite) == (8, 1, 1)
    assert x.missing_rate == pytest.approx(1 / 8)
    assert (x.below_min, x.above_max) == (1, 1) and x.out_of_range_rate == pytest.approx(2 / 5)
    assert x.outlier_rate == pytest.approx(2 / 5) and x.reference_outlier_rate == 0.0
    assert c.new_categories == ("zzz",) and c.new_category_rate == pytest.approx(2 / 7)
    assert c.missing_rate == pytest.approx(1 / 8)
    assert rep.extra_columns == ("extra",)
    missing = prof.accumulator().update(pd.DataFrame({"c": ["a", "b"]}))
    rep2 = compare(prof, missing)
    assert rep2.missing_columns == ("x",) and rep2.feature("x").tier == "critical"
    assert rep2.feature("x").quality.column_missing


def test_too_few_rows_are_not_judged(profile: ReferenceProfile) -> None:
    tiny = drift_benchmark_frame(20, seed=9, drifted=True)
    rep = compare(profile, profile.accumulator().update(tiny))
    assert rep.flagged == () and "only 20 current rows" in rep.features[0].reasons[0]


def test_build_profile_validates_arguments() -> None:
    df = pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "b"]})
    with pytest.raises(InvalidArgument) as e:
        build_profile(df, bins=1)
    assert e.value.field == "bins"
    with pytest.raises(InvalidArgument) as e:
        build_profile(df, fine_bins=15)
    assert e.value.field == "fine_bins"
    with pytest.raises(InvalidArgument) as e:
        build_profile(df, numeric=["y"])
    assert e.value.field == "y"
    with pytest.raises(InvalidArgument) as e:
        build_profile(pd.DataFrame({"x": [np.nan, np.nan]}))
    assert e.value.field == "x"


def test_discrete_and_constant_columns() -> None:
    ref = pd.DataFrame({"d": np.repeat([1.0, 2.0, 3.0], [700, 200, 100]), "k": np.full(1000, 7.0)})
    prof = build_profile(ref)
    d = prof.columns["d"]
    assert np.all(d.coarse(d.counts) > 0)
    rep = compare(prof, prof.accumulator().update(ref))
    assert rep.flagged == ()
    shifted = pd.DataFrame(
        {"d": np.repeat([1.0, 2.0, 3.0], [300, 300, 400]), "k": np.full(1000, 7.0)}
    )
    assert rep is not None
    f = compare(prof, prof.accumulator().update(shifted)).feature("d")
    assert f.tier == "critical" and f.psi > 0.25


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=5, max_size=300),
    st.integers(1, 4),
)
def test_merge_equals_one_pass_property(xs: list[float], parts: int) -> None:
    ref = pd.DataFrame({"x": np.array(xs)})
    prof = build_profile(ref, bins=2, fine_bins=10, sample_size=10)
    cur = pd.DataFrame({"x": np.array(xs[::-1]) * 1.5})
    one = prof.accumulator().update(cur)
    split = [prof.accumulator().update(cur.iloc[i::parts]) for i in range(parts)]
    merged = split[0]
    for s in split[1:]:
        merged = merged.merge(s)
    assert _counts(one) == _counts(merged)
    assert compare(prof, prof.accumulator().update(ref)).feature("x").psi == 0.0


def test_drift_report_one_call() -> None:
    rng = np.random.default_rng(1)
    ref = {"x": rng.normal(size=2000)}
    cur = {"x": rng.normal(1.0, size=2000)}
    rep = drift_report(ref, cur, policy=DriftPolicy(alpha=0.01))
    assert rep.feature("x").tier == "critical" and rep.policy.alpha == 0.01


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=5, max_size=200),
    st.lists(st.sampled_from(["a", "b", "c", "new"]), min_size=5, max_size=200),
    st.randoms(use_true_random=False),
)
def test_shuffling_is_invariant_property(xs: list[float], cs: list[str], rnd) -> None:
    n = min(len(xs), len(cs))
    ref = pd.DataFrame({"x": np.array(xs[:n]), "c": [c if c != "new" else "a" for c in cs[:n]]})
    prof = build_profile(ref, bins=2, fine_bins=10, sample_size=10)
    cur = pd.DataFrame({"x": np.array(xs[:n]) + 1.0, "c": cs[:n]})
    order = list(range(n))
    rnd.shuffle(order)
    a = compare(prof, prof.accumulator().update(cur))
    b = compare(prof, prof.accumulator().update(cur.iloc[order]))
    for fa, fb in zip(a.features, b.features, strict=True):
        assert (fa.psi, fa.statistic, fa.js_distance, fa.tier) == (
            fb.psi, fb.statistic, fb.js_distance, fb.tier,
        )  # fmt: skip
