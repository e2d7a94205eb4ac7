"""Drift statistics pinned against hand computations and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from charter.errors import InvalidArgument
from charter.stats import drift
from charter.stats.policy import DriftPolicy, adjust_p_values, tier_for
from charter.stats.sketches import Binner


def test_psi_hand_computed_case() -> None:
    expected = [0.08, 0.15, 0.30, 0.25, 0.15, 0.07]
    actual = [0.05, 0.10, 0.22, 0.28, 0.22, 0.13]
    assert round(drift.psi_from_proportions(expected, actual), 4) == 0.1265
    # the same from counts, at any scale
    assert drift.psi(np.array(expected) * 1000, np.array(actual) * 3000) == pytest.approx(
        0.12653, abs=5e-5
    )


def test_psi_empty_bin_rule() -> None:
    # An empty bin's proportion becomes 1e-4: (0.2 - 1e-4) * ln(0.2 / 1e-4) for the third bin.
    e, a = [0.5, 0.5, 0.0], [0.4, 0.4, 0.2]
    hand = 2 * (0.4 - 0.5) * np.log(0.4 / 0.5) + (0.2 - 1e-4) * np.log(0.2 / 1e-4)
    assert drift.psi_from_proportions(e, a) == pytest.approx(hand, rel=1e-12)
    assert np.isfinite(drift.psi([10, 10, 0], [0, 0, 5]))


def test_psi_rows_are_features() -> None:
    e = np.array([[10, 20, 30], [5, 5, 5]])
    a = np.array([[10, 20, 30], [1, 5, 9]])
    out = drift.psi(e, a)
    assert out.shape == (2,) and out[0] == 0.0 and out[1] > 0


@pytest.mark.parametrize("seed", range(5))
def test_ks_equals_scipy_on_raw_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    r = rng.normal(size=rng.integers(50, 400))
    c = rng.normal(0.2, 1.1, size=rng.integers(50, 400))
    if seed % 2:  # ties
        r, c = np.round(r, 1), np.round(c, 1)
    ours = drift.ks_2samp(r, c)
    ref = sps.ks_2samp(r, c, method="asymp")
    assert abs(ours.statistic - ref.statistic) < 1e-12
    assert abs(ours.p_value - ref.pvalue) < 1e-12


def test_ks_large_n_uses_the_limit_distribution() -> None:
    d, n = 0.0021, 500_000
    assert drift.ks_p_value(d, n * 2, n * 2) == pytest.approx(
        sps.kstwo.sf(d, n), rel=2e-3
    )  # the finite-n value, slow to compute, agrees with the limit used


def test_ks_from_counts_is_a_lower_bound_within_its_bound() -> None:
    rng = np.random.default_rng(3)
    r, c = rng.normal(size=5000), rng.normal(0.05, 1, size=4000)
    cuts = np.quantile(r, np.linspace(0.01, 0.99, 99))
    rc = np.bincount(np.searchsorted(cuts, r, "right"), minlength=100)
    cc = np.bincount(np.searchsorted(cuts, c, "right"), minlength=100)
    d, bound = drift.ks_from_counts(rc, cc)
    exact = sps.ks_2samp(r, c).statistic
    assert d[0] <= exact + 1e-15 <= d[0] + bound[0] + 1e-12


def test_chi2_equals_scipy_contingency() -> None:
    ref = np.array([120, 340, 95, 60, 33])
    cur = np.array([100, 310, 140, 50, 41])
    ours = drift.chi2_homogeneity(ref, cur, pool=False)
    stat, p, dof, _ = sps.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert ours.statistic == pytest.approx(stat, rel=1e-12) and ours.dof == dof
    assert ours.p_value == pytest.approx(p, rel=1e-10)


def test_chi2_pools_rare_levels_and_reports_them() -> None:
    ref = np.array([500, 400, 3, 2, 0])
    cur = np.array([480, 420, 1, 1, 4])
    ours = drift.chi2_homogeneity(ref, cur, ("a", "b", "c", "d", "new"))
    assert ours.pooled == ("c", "d", "new") and ours.levels == ("a", "b", "__other__")
    pooled = np.array([[500, 400, 5], [480, 420, 6]])
    stat, _, dof, _ = sps.chi2_contingency(pooled, correction=False)
    assert ours.statistic == pytest.approx(stat, rel=1e-12) and ours.dof == dof == 2


def test_goodness_of_fit_would_double_the_statistic() -> None:
    """Why two samples are compared: a GOF test treats reference counts as exact."""
    ref = np.array([2500, 2500, 2500, 2500])
    cur = np.array([2450, 2560, 2520, 2470])
    homog = drift.chi2_homogeneity(ref, cur).statistic
    gof = sps.chisquare(cur, ref / ref.sum() * cur.sum()).statistic
    assert gof == pytest.approx(2 * homog, rel=0.01)


@pytest.mark.parametrize("seed", range(4))
def test_wasserstein_equals_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    r, c = rng.lognormal(size=300), rng.lognormal(0.1, size=200)
    assert drift.wasserstein(r, c) == pytest.approx(sps.wasserstein_distance(r, c), abs=1e-12)


def test_wasserstein_from_counts_within_bound() -> None:
    rng = np.random.default_rng(9)
    r, c = rng.gamma(2.0, size=20_000), rng.gamma(2.0, 1.1, size=15_000)
    cuts = np.unique(np.quantile(r, np.arange(1, 200) / 200, method="inverted_cdf"))
    rc = np.bincount(np.searchsorted(cuts, r, "right"), minlength=cuts.size + 1)
    cc = np.bincount(np.searchsorted(cuts, c, "right"), minlength=cuts.size + 1)
    w, bound = drift.wasserstein_from_counts(cuts, rc, cc, (r.min(), r.max()), (c.min(), c.max()))
    exact = sps.wasserstein_distance(r, c)
    assert abs(w - exact) <= bound
    assert abs(w - exact) / exact < 0.02  # and in practice far inside it


def test_js_and_kl_equal_scipy() -> None:
    p, q = np.array([10.0, 20, 30, 40]), np.array([15.0, 25, 25, 35])
    assert drift.js_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-12)
    assert drift.kl_divergence(p, q) == pytest.approx(sps.entropy(q, p), abs=1e-12)
    assert drift.js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert drift.js_distance([3, 3], [3, 3]) == 0.0


def test_bad_counts_are_refused() -> None:
    with pytest.raises(InvalidArgument):
        drift.psi([1, -1], [1, 1])
    with pytest.raises(InvalidArgument):
        drift.psi([1, 2, 3], [1, 2])
    with pytest.raises(InvalidArgument):
        drift.ks_2samp(np.array([np.nan]), np.array([1.0]))


def test_multiple_testing_corrections() -> None:
    p = np.array([0.001, 0.02, 0.04, np.nan, 0.3, 0.011])
    bonf = adjust_p_values(p, "bonferroni")
    np.testing.assert_allclose(bonf[~np.isnan(p)], np.minimum(p[~np.isnan(p)] * 5, 1))
    bh = adjust_p_values(p, "bh")
    ok = ~np.isnan(p)
    np.testing.assert_allclose(bh[ok], sps.false_discovery_control(p[ok], method="bh"))
    assert np.isnan(bh[3])


def test_policy_is_data() -> None:
    pol = DriftPolicy.from_dict({"alpha": 0.01, "correction": "bh", "psi_warning": "0.2"})
    assert pol.alpha == 0.01 and pol.correction == "bh" and pol.psi_warning == 0.2
    with pytest.raises(InvalidArgument) as e:
        DriftPolicy.from_dict({"alpah": 0.01})
    assert e.value.field == "alpah"
    with pytest.raises(InvalidArgument) as e:
        DriftPolicy(psi_warning=0.3, psi_critical=0.2)
    assert e.value.field == "psi_warning"
    with pytest.raises(InvalidArgument):
        DriftPolicy.from_dict({"require_significance": "yes"})


def test_tiers_need_significance_and_effect() -> None:
    pol = DriftPolicy()
    kw = {"kind": "numeric", "n_current": 10_000}
    assert tier_for(pol, psi=0.3, effect=0.0, p_adjusted=1e-9, **kw)[0] == "critical"
    assert tier_for(pol, psi=0.3, effect=0.0, p_adjusted=0.2, **kw)[0] == "stable"
    assert tier_for(pol, psi=0.001, effect=0.06, p_adjusted=1e-9, **kw)[0] == "warning"
    assert tier_for(pol, psi=0.001, effect=0.01, p_adjusted=1e-30, **kw)[0] == "stable"
    tier, reasons = tier_for(pol, psi=0.3, effect=0.3, p_adjusted=0.0, kind="numeric", n_current=5)
    assert tier == "stable" and "30" in reasons[0]


@settings(max_examples=60, deadline=None)
@given(
    cuts=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=0, max_size=40),
    xs=st.lists(st.floats(-1e7, 1e7, allow_nan=False), min_size=1, max_size=200),
)
def test_binner_equals_searchsorted(cuts: list[float], xs: list[float]) -> None:
    c = np.unique(np.array(cuts, dtype=np.float64))
    x = np.array(xs + cuts, dtype=np.float64)  # values on the cuts themselves too
    np.testing.assert_array_equal(Binner(c)(x), np.searchsorted(c, x, side="right"))


def test_binner_fast_path_on_skewed_data() -> None:
    rng = np.random.default_rng(0)
    ref = rng.lognormal(0, 2, 100_000)
    cuts = np.unique(np.quantile(ref, np.arange(1, 1000) / 1000))
    cuts = np.concatenate([[-5.0], cuts, [1e9]])
    b = Binner(cuts, (float(cuts[1]), float(cuts[-2])))
    x = np.concatenate([rng.lognormal(0, 2.5, 200_000), [-10.0, 1e10, cuts[5], cuts[-1]]])
    np.testing.assert_array_equal(b(x), np.searchsorted(cuts, x, side="right"))


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(0, 1000), min_size=2, max_size=12).flatmap(
        lambda e: st.tuples(
            st.just(e), st.lists(st.integers(0, 1000), min_size=len(e), max_size=len(e))
        )
    )
)
def test_psi_is_non_negative_and_zero_on_itself(pair: tuple[list[int], list[int]]) -> None:
    e, a = (np.array(x) for x in pair)
    if e.sum() == 0 or a.sum() == 0:
        return
    assert drift.psi(e, a) >= 0
    assert drift.psi(e, e) == 0.0
    assert drift.js_distance(e, a) >= 0
