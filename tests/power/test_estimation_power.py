"""Label-free estimation over many seeded data sets: band coverage near ``level`` when the scores
are calibrated (and not when they are not), and the AUC estimate tracking covariate shift."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from charter.datasets.synthetic import CovariateShift, credit_applications, credit_default_model
from charter.stats.estimation import estimate


def _coverage(n: int, level: float, trials: int, seed: int, power: float = 1.0) -> float:
    """Share of trials whose band holds the realised AUC; labels drawn from ``score ** power``."""
    rng = np.random.default_rng(seed)
    covered = 0
    for i in range(trials):
        p = rng.beta(1.2, 7.0, n)
        r = estimate(p, 0.3, seed=i, level=level)
        realised = roc_auc_score(rng.random(n) < p**power, p)
        covered += int(r.auc_low <= realised <= r.auc_high)
    return covered / trials


@pytest.mark.slow
@pytest.mark.parametrize("n", [500, 5_000])
@pytest.mark.parametrize("level", [0.8, 0.95])
def test_band_coverage_is_near_level_for_calibrated_scores(n: int, level: float) -> None:
    trials = 600
    sd = (level * (1 - level) / trials) ** 0.5
    coverage = _coverage(n, level, trials, seed=n + int(100 * level))
    # Binomial within-bin draws make the band slightly conservative, never narrow.
    assert level - 3 * sd <= coverage <= level + 3 * sd + 0.01


@pytest.mark.slow
def test_the_band_does_not_cover_miscalibration() -> None:
    """Labels from ``p ** 1.5`` (the score overstates risk, less so at the top): the realised AUC
    moves outside the band far more often than 5% of the time, as documented."""
    assert _coverage(5_000, 0.95, 200, seed=7, power=1.5) < 0.6


@pytest.mark.slow
def test_auc_estimate_tracks_covariate_shift_over_seeds() -> None:
    model = credit_default_model()
    shifts = (
        CovariateShift("debt_to_income", scale=2.0),
        CovariateShift("num_delinquencies", scale=2.0),
    )
    errors, covered = [], 0
    for seed in range(1, 11):
        window = credit_applications(20_000, seed=seed, days=30, shifts=shifts)
        scores = model.probability(window)
        realised = roc_auc_score(window["default"], scores)
        est = estimate(scores, 0.2, seed=seed)
        errors.append(est.auc - realised)
        covered += int(est.auc_low <= realised <= est.auc_high)
    assert max(abs(e) for e in errors) < 0.02
    assert abs(float(np.mean(errors))) < 0.005
    assert covered >= 8
