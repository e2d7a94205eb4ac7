"""Power and false alarms: detectors catch planted drift and keep false alarms near alpha."""

from __future__ import annotations

import numpy as np
import pandas as pd

from charter.datasets import CovariateShift, credit_applications
from charter.stats.compare import compare
from charter.stats.policy import DriftPolicy
from charter.stats.sketches import build_profile

FEATURES = [
    "age", "income", "employment_years", "loan_amount", "debt_to_income",
    "credit_history_months", "utilisation", "home_ownership", "loan_purpose", "region",
]  # fmt: skip


def _frame(n: int, seed: int, shifts: tuple[CovariateShift, ...] = ()) -> pd.DataFrame:
    return credit_applications(n, seed=seed, shifts=shifts)[FEATURES]


def test_a_tenth_of_a_standard_deviation_is_found_at_100k_rows() -> None:
    ref = _frame(100_000, seed=1)
    profile = build_profile(ref)
    for feature in ("income", "debt_to_income", "age"):
        cur = _frame(100_000, seed=2, shifts=(CovariateShift(feature, mean_shift_sd=0.1),))
        rep = compare(profile, profile.accumulator().update(cur))
        assert [f.feature for f in rep.flagged] == [feature], feature
        f = rep.feature(feature)
        assert f.tier == "warning" and f.p_adjusted < 1e-6


def test_a_category_frequency_change_is_found() -> None:
    ref = _frame(100_000, seed=1)
    profile = build_profile(ref)
    shares = ref["region"].value_counts(normalize=True)
    weights = {str(k): float(v) for k, v in shares.items()}
    top = str(shares.index[0])
    weights[top] *= 1.25
    cur = _frame(100_000, seed=3, shifts=(CovariateShift("region", category_weights=weights),))
    rep = compare(profile, profile.accumulator().update(cur))
    assert [f.feature for f in rep.flagged] == ["region"]


def test_false_alarms_stay_at_or_below_alpha() -> None:
    """200 reference/current pairs with no drift: the per-feature tests are calibrated (about
    alpha of them reject uncorrected), and the family-wise rate of flagging anything under
    the default policy stays at or below alpha."""
    alpha = 0.05
    raw_rejections = []
    any_flagged = []
    default_flagged = []
    pure_significance = DriftPolicy(
        alpha=alpha, psi_warning=0.0, psi_critical=0.0,
        wasserstein_warning=0.0, wasserstein_critical=0.0, js_warning=0.0, js_critical=0.0,
    )  # fmt: skip
    base = credit_applications(2_000 * 400, seed=99)[FEATURES]
    for i in range(200):
        ref = base.iloc[(2 * i) * 2000 : (2 * i + 1) * 2000]
        cur = base.iloc[(2 * i + 1) * 2000 : (2 * i + 2) * 2000]
        profile = build_profile(ref, bins=10, fine_bins=1000, sample_size=2000)
        acc = profile.accumulator().update(cur)
        raw = compare(profile, acc, DriftPolicy(alpha=alpha, correction="none"))
        raw_rejections += [f.p_value < alpha for f in raw.features]
        any_flagged.append(bool(compare(profile, acc, pure_significance).flagged))
        default_flagged.append(bool(compare(profile, acc).flagged))
    per_test = np.mean(raw_rejections)
    family = np.mean(any_flagged)
    # Binned KS is conservative and chi-square is close to exact: about alpha, not above it.
    assert 0.02 <= per_test <= alpha + 0.01, per_test
    tolerance = 2 * np.sqrt(alpha * (1 - alpha) / 200)
    assert family <= alpha + tolerance, family
    assert np.mean(default_flagged) <= family  # effect-size bands only remove alarms
