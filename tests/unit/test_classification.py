"""Classification metrics: pinned against scikit-learn and scipy, and by hand-computed cases."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from scipy import stats as sps
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from charter.errors import InvalidArgument
from charter.stats.classification import (
    PSI_EPSILON,
    BinnedScoreAccumulator,
    Confusion,
    brier_score,
    classification_report,
    confusion_at,
    expected_calibration_error,
    gini,
    ks_statistic,
    precision_recall_f1,
    reliability_table,
    roc_auc,
    score_band_psi,
)

SEEDS = [0, 1, 2, 3, 4]


def make_data(seed: int, n: int = 600, ties: bool = False) -> tuple[NDArray[Any], NDArray[Any]]:
    """Scores in [0, 1] with some signal; ``ties`` rounds them to two decimals."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int64)
    s = np.clip(rng.beta(2, 5, n) + 0.25 * y, 0.0, 1.0)
    if ties:
        s = np.round(s, 2)
    return y, s


# ---------------------------------------------------------------------------------------------
# AUC and Gini
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
def test_auc_equals_sklearn(seed: int, ties: bool) -> None:
    y, s = make_data(seed, ties=ties)
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert gini(y, s) == pytest.approx(2 * roc_auc_score(y, s) - 1, abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
def test_weighted_auc_equals_sklearn(seed: int, ties: bool) -> None:
    y, s = make_data(seed, ties=ties)
    rng = np.random.default_rng(100 + seed)
    w = rng.uniform(0.0, 3.0, y.size)
    w[rng.random(y.size) < 0.1] = 0.0
    expected = roc_auc_score(y, s, sample_weight=w)
    assert roc_auc(y, s, sample_weight=w) == pytest.approx(expected, abs=1e-12)
    ones = np.ones(y.size)
    assert roc_auc(y, s, sample_weight=ones) == pytest.approx(roc_auc(y, s), abs=1e-12)


def test_auc_hand_cases() -> None:
    # Pairs (bad, good): 0.35>0.1 yes, 0.35>0.4 no, 0.8>0.1 yes, 0.8>0.4 yes -> 3/4.
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert gini([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.5
    # A tie counts one half: bad 0.2 vs good 0.2 -> 0.5, vs 0.5 -> 0; bad 0.9 wins twice.
    assert roc_auc([0, 1, 0, 1], [0.2, 0.2, 0.5, 0.9]) == 2.5 / 4
    # Weighted, w = [1, 2, 3, 1]: 0.5*2*1 + 0 + 1*1 + 1*3 = 5 over W_bad*W_good = 3*4.
    assert roc_auc([0, 1, 0, 1], [0.2, 0.2, 0.5, 0.9], [1, 2, 3, 1]) == pytest.approx(5 / 12)
    # Booleans work as labels; a perfectly inverted model has AUC 0.
    assert roc_auc(np.array([True, True, False]), [0.1, 0.2, 0.3]) == 0.0
    # All scores equal: every pair is a tie.
    assert roc_auc([0, 1, 1, 0], [0.4] * 4) == 0.5


@st.composite
def labelled(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    n = draw(st.integers(2, 30))
    y = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(lambda v: 0 < sum(v) < n))
    s = draw(st.lists(st.integers(-4, 4), min_size=n, max_size=n))
    return y, s


@settings(max_examples=150, deadline=None)
@given(labelled())
def test_auc_property_matches_sklearn_and_reverses(data: tuple[list[int], list[int]]) -> None:
    y, s = data
    score = np.asarray(s, dtype=float) / 4.0
    auc = roc_auc(y, score)
    assert auc == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    assert roc_auc(y, -score) == pytest.approx(1.0 - auc, abs=1e-12)
    assert 0.0 <= auc <= 1.0


@settings(max_examples=100, deadline=None)
@given(labelled())
def test_ks_property_matches_scipy(data: tuple[list[int], list[int]]) -> None:
    y_list, s = data
    y = np.asarray(y_list)
    score = np.asarray(s, dtype=float)
    res = ks_statistic(y, score)
    with np.errstate(divide="ignore", invalid="ignore"):  # scipy's p-value for n = 1; unused
        expected = sps.ks_2samp(score[y == 1], score[y == 0], method="asymp").statistic
    assert res.statistic == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# KS
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
def test_ks_equals_scipy_and_threshold_is_consistent(seed: int, ties: bool) -> None:
    y, s = make_data(seed, ties=ties)
    res = ks_statistic(y, s)
    expected = sps.ks_2samp(s[y == 1], s[y == 0], method="asymp").statistic
    assert res.statistic == pytest.approx(expected, abs=1e-12)
    c = confusion_at(y, s, res.threshold)
    tpr, fpr = c.tp / (c.tp + c.fn), c.fp / (c.fp + c.tn)
    assert (tpr, fpr) == (res.tpr, res.fpr)
    assert abs(tpr - fpr) == pytest.approx(res.statistic, abs=1e-12)
    assert res.threshold in set(s.tolist())


def test_ks_hand_case() -> None:
    # Sorted: g g b g b b. (F_bad, F_good) after each value: (0,1/3) (0,2/3) (1/3,2/3) (1/3,1)
    # (2/3,1): separation 1/3, 2/3, 1/3, 2/3, 1/3. First maximum after 0.2 -> threshold 0.3,
    # where every bad and one good in three score >= 0.3.
    res = ks_statistic([0, 0, 1, 0, 1, 1], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    assert res.statistic == pytest.approx(2 / 3)
    assert res.threshold == 0.3
    assert (res.tpr, res.fpr) == (1.0, pytest.approx(1 / 3))


def test_ks_all_scores_equal_and_perfect_separation() -> None:
    res = ks_statistic([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])
    assert (res.statistic, res.threshold, res.tpr, res.fpr) == (0.0, 0.5, 1.0, 1.0)
    perfect = ks_statistic([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9])
    assert (perfect.statistic, perfect.threshold) == (1.0, 0.7)


# ---------------------------------------------------------------------------------------------
# Confusion, precision, recall, F1
# ---------------------------------------------------------------------------------------------


def test_confusion_hand_case_threshold_is_inclusive() -> None:
    y = [1, 0, 1, 0, 1]
    s = [0.9, 0.8, 0.5, 0.5, 0.2]
    assert confusion_at(y, s, 0.5) == Confusion(tp=2, fp=2, tn=0, fn=1)
    assert confusion_at(y, s, 0.50001) == Confusion(tp=1, fp=1, tn=1, fn=2)
    prf = precision_recall_f1(y, s, 0.5)
    assert prf.precision == 0.5
    assert prf.recall == pytest.approx(2 / 3)
    assert prf.f1 == pytest.approx(4 / 7)  # 2tp / (2tp + fp + fn) = 4 / (4 + 2 + 1)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("threshold", [0.0, 0.2, 0.35, 0.5, 0.8, 1.5])
def test_prf_and_confusion_equal_sklearn(seed: int, threshold: float) -> None:
    y, s = make_data(seed, n=300, ties=True)
    pred = (s >= threshold).astype(np.int64)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    assert confusion_at(y, s, threshold) == Confusion(tp=tp, fp=fp, tn=tn, fn=fn)
    prf = precision_recall_f1(y, s, threshold)
    assert prf.precision == pytest.approx(precision_score(y, pred, zero_division=0), abs=1e-12)
    assert prf.recall == pytest.approx(recall_score(y, pred, zero_division=0), abs=1e-12)
    assert prf.f1 == pytest.approx(f1_score(y, pred, zero_division=0), abs=1e-12)


@pytest.mark.parametrize(
    ("y", "s", "threshold"),
    [
        ([1, 0, 1], [0.2, 0.3, 0.4], 0.9),  # nothing predicted bad: precision 0/0
        ([0, 0, 0], [0.2, 0.3, 0.4], 0.3),  # no bads: recall 0/0
        ([0, 0, 0], [0.2, 0.3, 0.4], 0.9),  # neither: F1 0/0
    ],
)
def test_zero_division_gives_zero_like_sklearn(
    y: list[int], s: list[float], threshold: float
) -> None:
    prf = precision_recall_f1(y, s, threshold)
    pred = (np.asarray(s) >= threshold).astype(np.int64)
    assert prf.precision == precision_score(y, pred, zero_division=0, labels=[0, 1]) == 0.0
    assert prf.recall == recall_score(y, pred, zero_division=0, labels=[0, 1]) == 0.0
    assert prf.f1 == f1_score(y, pred, zero_division=0, labels=[0, 1]) == 0.0


# ---------------------------------------------------------------------------------------------
# Brier, reliability, ECE
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_brier_equals_sklearn(seed: int) -> None:
    y, s = make_data(seed, ties=seed % 2 == 0)
    assert brier_score(y, s) == pytest.approx(brier_score_loss(y, s), abs=1e-12)


def test_brier_hand_case() -> None:
    assert brier_score([0, 1], [0.2, 0.6]) == pytest.approx((0.2**2 + 0.4**2) / 2)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("n_bins", [1, 5, 10, 20])
def test_reliability_equals_calibration_curve(
    seed: int, ties: bool, strategy: str, n_bins: int
) -> None:
    y, s = make_data(seed, n=400, ties=ties)
    table = reliability_table(y, s, n_bins=n_bins, strategy=strategy)
    prob_true, prob_pred = calibration_curve(y, s, n_bins=n_bins, strategy=strategy)
    count = np.asarray(table.count)
    nonempty = count > 0
    assert len(table.edges) == n_bins + 1 and count.size == n_bins
    assert count.sum() == y.size and sum(table.n_bad) == y.sum()
    np.testing.assert_allclose(np.asarray(table.observed_rate)[nonempty], prob_true, atol=1e-12)
    np.testing.assert_allclose(np.asarray(table.mean_predicted)[nonempty], prob_pred, atol=1e-12)
    assert np.all(np.isnan(np.asarray(table.mean_predicted)[~nonempty]))


def test_reliability_hand_case_with_empty_bins() -> None:
    y = [0, 0, 1, 1, 1]
    s = [0.1, 0.3, 0.5, 0.8, 1.0]
    # Two uniform bins [0, 0.5] and (0.5, 1]: 0.5 sits on the edge and belongs to the lower bin.
    t = reliability_table(y, s, n_bins=2)
    assert t.edges == (0.0, 0.5, 1.0)
    assert t.count == (3, 2) and t.n_bad == (1, 2)
    assert t.mean_predicted == pytest.approx((0.9 / 3, 0.9))
    assert t.observed_rate == pytest.approx((1 / 3, 1.0))
    # Four bins: (0.25, 0.5] holds 0.3 and 0.5; (0.5, 0.75] is empty.
    t4 = reliability_table(y, s, n_bins=4)
    assert t4.count == (1, 2, 0, 2)
    assert math.isnan(t4.mean_predicted[2]) and math.isnan(t4.observed_rate[2])
    d = t4.to_dict()
    assert d["mean_predicted"][2] is None and d["count"] == [1, 2, 0, 2]
    json.dumps(d, allow_nan=False)


def test_ece_hand_case() -> None:
    y = [0, 0, 1, 1, 1]
    s = [0.1, 0.3, 0.3, 0.8, 1.0]
    # Bins [0, 0.5]: 3 rows, mean predicted 0.7/3, observed 1/3 -> gap 0.1;
    #      (0.5, 1]: 2 rows, mean predicted 0.9, observed 1 -> gap 0.1.
    # ECE = 3/5 * 0.1 + 2/5 * 0.1 = 0.1.
    assert expected_calibration_error(y, s, n_bins=2) == pytest.approx(0.1, abs=1e-15)
    # One bin: |3/5 - 2.5/5| = 0.1 as well; a perfectly calibrated constant has ECE 0.
    assert expected_calibration_error(y, s, n_bins=1) == pytest.approx(0.1, abs=1e-15)
    assert expected_calibration_error([0, 1, 0, 1], [0.5] * 4) == 0.0


@pytest.mark.parametrize("seed", SEEDS)
def test_ece_equals_weighted_gaps_of_calibration_curve(seed: int) -> None:
    y, s = make_data(seed, ties=True)
    prob_true, prob_pred = calibration_curve(y, s, n_bins=10)
    counts = np.asarray(reliability_table(y, s).count)
    manual = np.sum(counts[counts > 0] / y.size * np.abs(prob_true - prob_pred))
    assert expected_calibration_error(y, s) == pytest.approx(manual, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# Score-band PSI
# ---------------------------------------------------------------------------------------------


def test_score_band_psi_hand_case() -> None:
    expected = np.arange(1.0, 9.0)  # quartile edges 2.75, 4.5, 6.25: 2 rows in each band
    actual = [1, 1, 1, 3, 5, 7, 8, 9, 9, 9]  # bands: 3, 1, 1, 5 of 10
    # e = .25 each, a = .3 .1 .1 .5:
    # .05 ln 1.2 + 2 * (-.15) ln .4 + .25 ln 2 = 0.457290
    assert score_band_psi(expected, actual, n_bands=4) == pytest.approx(0.457290, abs=1e-6)
    # A value on an edge belongs to the lower band: 4.5 is in (2.75, 4.5].
    assert score_band_psi(expected, [1, 2, 3, 4.5, 5, 6, 7, 8], n_bands=4) == 0.0


def test_score_band_psi_zero_cell_rule() -> None:
    expected = np.arange(1.0, 9.0)
    actual = [1, 1, 3, 3, 7, 7, 8, 8]  # bands: .25 .25 0 .5; the empty one becomes 1e-4
    # (1e-4 - .25) ln(1e-4 / .25) + .25 ln 2 = 1.955229 + 0.173287 = 2.128516
    assert PSI_EPSILON == 1e-4
    assert score_band_psi(expected, actual, n_bands=4) == pytest.approx(2.128516, abs=1e-6)
    # With a larger epsilon: (.01 - .25) ln(.01 / .25) + .25 ln 2 = 0.772530 + 0.173287
    assert score_band_psi(expected, actual, n_bands=4, epsilon=0.01) == pytest.approx(
        0.945817, abs=1e-6
    )


def test_score_band_psi_edges_are_fixed_on_expected_and_open_ended() -> None:
    rng = np.random.default_rng(7)
    ref = rng.normal(size=5000)
    assert score_band_psi(ref, ref) == 0.0
    # Values far beyond the reference range fall into the first and last bands.
    shifted = np.concatenate([ref[:2500], ref[2500:] + 100.0])
    psi = score_band_psi(ref, shifted)
    assert psi > 0.25 and math.isfinite(psi)
    # Heavy ties collapse duplicate edges into fewer bands; identical samples still give 0.
    tied = np.repeat([0.1, 0.5, 0.9], [800, 100, 100])
    assert score_band_psi(tied, tied[::-1]) == 0.0
    # Symmetric swap of a small shift is positive and finite.
    assert 0.0 < score_band_psi(ref, ref + 0.1) < 0.1


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_classification_report_agrees_with_the_parts(seed: int) -> None:
    y, s = make_data(seed, ties=True)
    r = classification_report(y, s, threshold=0.4, n_bins=10)
    assert (r.n, r.n_bad) == (y.size, int(y.sum()))
    assert r.bad_rate == pytest.approx(y.mean())
    assert r.auc == roc_auc(y, s) and r.gini == pytest.approx(2 * r.auc - 1)
    ks = ks_statistic(y, s)
    assert (r.ks, r.ks_threshold) == (ks.statistic, ks.threshold)
    prf = precision_recall_f1(y, s, 0.4)
    assert (r.precision, r.recall, r.f1) == (prf.precision, prf.recall, prf.f1)
    assert r.brier == pytest.approx(brier_score_loss(y, s), abs=1e-12)
    assert r.ece == expected_calibration_error(y, s, n_bins=10)
    assert r.reliability == reliability_table(y, s, n_bins=10)
    d = r.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert all(type(d[k]) is float for k in ("auc", "gini", "ks", "brier", "ece"))
    assert type(d["n"]) is int and isinstance(d["reliability"], dict)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def _raises(field: str, fn: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(InvalidArgument) as info:
        fn(*args, **kwargs)
    assert info.value.field == field
    assert info.value.remedy
    assert isinstance(info.value, ValueError)


Y = [0, 1, 0, 1]
S = [0.1, 0.6, 0.3, 0.8]


@pytest.mark.parametrize(
    ("field", "fn", "args", "kwargs"),
    [
        ("y_true", roc_auc, ([[0, 1], [1, 0]], S), {}),
        ("y_true", roc_auc, ([0, 2, 0, 1], S), {}),
        ("y_true", roc_auc, ([0, float("nan"), 0, 1], S), {}),
        ("y_true", roc_auc, (["a", "b", "a", "b"], S), {}),
        ("y_true", roc_auc, ([0, 0, 0, 0], S), {}),
        ("y_true", ks_statistic, ([1, 1, 1, 1], S), {}),
        ("y_true", brier_score, ([], []), {}),
        ("y_true", classification_report, ([0, 0, 0, 0], S, 0.5), {}),
        ("score", roc_auc, (Y, [0.1, 0.2, 0.3]), {}),
        ("score", roc_auc, (Y, [0.1, float("nan"), 0.3, 0.4]), {}),
        ("score", ks_statistic, (Y, [0.1, float("inf"), 0.3, 0.4]), {}),
        ("score", roc_auc, (Y, np.array(S)[:, None]), {}),
        ("score", brier_score, (Y, [0.1, 1.2, 0.3, 0.4]), {}),
        ("score", reliability_table, (Y, [-0.1, 0.2, 0.3, 0.4]), {}),
        ("score", classification_report, (Y, [0.1, 2.0, 0.3, 0.4], 0.5), {}),
        ("sample_weight", roc_auc, (Y, S), {"sample_weight": [1, -1, 1, 1]}),
        ("sample_weight", roc_auc, (Y, S), {"sample_weight": [1, 0, 1, 0]}),
        ("sample_weight", roc_auc, (Y, S), {"sample_weight": [1, 1]}),
        ("threshold", confusion_at, (Y, S, float("nan")), {}),
        ("threshold", precision_recall_f1, (Y, S, float("inf")), {}),
        ("threshold", precision_recall_f1, (Y, S, "high"), {}),
        ("n_bins", reliability_table, (Y, S), {"n_bins": 0}),
        ("n_bins", expected_calibration_error, (Y, S), {"n_bins": 2.5}),
        ("n_bins", classification_report, (Y, S, 0.5), {"n_bins": True}),
        ("strategy", reliability_table, (Y, S), {"strategy": "kmeans"}),
        ("expected_scores", score_band_psi, ([], S), {}),
        ("actual_scores", score_band_psi, (S, [0.1, float("nan")]), {}),
        ("n_bands", score_band_psi, (S, S), {"n_bands": 0}),
        ("epsilon", score_band_psi, (S, S), {"epsilon": 0.0}),
    ],
)
def test_bad_input_names_the_field(
    field: str, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    _raises(field, fn, *args, **kwargs)


def test_accumulator_bad_input() -> None:
    _raises("edges", BinnedScoreAccumulator, [0.0, 0.5, 0.5, 1.0])
    _raises("edges", BinnedScoreAccumulator, [0.0])
    acc = BinnedScoreAccumulator()
    _raises("score", acc.update, Y, [0.1, 1.1, 0.3, 0.4])
    _raises("other", acc.merge, BinnedScoreAccumulator(np.linspace(0, 1, 11)))
    _raises("y_true", acc.result)
    acc.update([0, 0], [0.1, 0.2])
    _raises("y_true", acc.result)
    _raises("n_bins", acc.reliability_table, 0)


# ---------------------------------------------------------------------------------------------
# Streaming accumulator
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
def test_accumulator_merge_equals_one_pass(seed: int, ties: bool) -> None:
    y, s = make_data(seed, n=2000, ties=ties)
    one = BinnedScoreAccumulator()
    one.update(y, s)
    a, b = BinnedScoreAccumulator(), BinnedScoreAccumulator()
    cut = 700 + seed
    a.update(y[:cut], s[:cut])
    b.update(y[cut:], s[cut:])
    merged = a.merge(b)
    np.testing.assert_array_equal(merged.bad_counts, one.bad_counts)
    np.testing.assert_array_equal(merged.good_counts, one.good_counts)
    np.testing.assert_allclose(merged.score_sums, one.score_sums, rtol=1e-12, atol=1e-12)
    assert merged.sum_squared_error == pytest.approx(one.sum_squared_error, rel=1e-12)
    assert merged.n == one.n == y.size
    # merge does not touch its inputs, and the order does not matter for the counts
    assert a.n == cut and b.n == y.size - cut
    np.testing.assert_array_equal(b.merge(a).bad_counts, one.bad_counts)
    r1, r2 = one.result(), merged.result()
    assert r1.auc == pytest.approx(r2.auc, abs=1e-12)
    assert (r1.ks, r1.ks_edge, r1.n_bad) == (r2.ks, r2.ks_edge, r2.n_bad)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("edges", [None, np.linspace(0, 1, 21), np.linspace(0, 1, 4)])
def test_accumulator_is_within_its_bounds(
    seed: int, ties: bool, edges: NDArray[Any] | None
) -> None:
    y, s = make_data(seed, n=1500, ties=ties)
    acc = BinnedScoreAccumulator(edges)
    acc.update(y, s)
    r = acc.result()
    exact_auc = roc_auc(y, s)
    b, g = acc.bad_counts.astype(float), acc.good_counts.astype(float)
    crude = float(np.sum(b * g)) / (y.sum() * (y.size - y.sum()))
    assert r.auc_bound == pytest.approx(crude / 2)
    assert abs(r.auc - exact_auc) <= r.auc_bound + 1e-12
    exact_ks = ks_statistic(y, s).statistic
    assert r.ks <= exact_ks + 1e-12
    assert exact_ks <= r.ks + r.ks_bound + 1e-12
    assert r.brier == pytest.approx(brier_score(y, s), rel=1e-12)
    assert r.gini == pytest.approx(2 * r.auc - 1)


def test_accumulator_auc_exact_when_bins_separate_the_values() -> None:
    # Scores on a grid of 0.01, one bin centred on each grid value: within-bin
    # "ties" are true ties and the binned AUC is exact, although the bound is not zero.
    y, s = make_data(11, n=1000, ties=True)
    acc = BinnedScoreAccumulator((np.arange(102) - 0.5) / 100)
    acc.update(y, s)
    r = acc.result()
    assert r.auc == pytest.approx(roc_auc(y, s), abs=1e-12)
    assert r.ks == pytest.approx(ks_statistic(y, s).statistic, abs=1e-12)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("n_bins", [1, 4, 10, 20, 100])
def test_accumulator_reliability_is_exact_when_aligned(ties: bool, n_bins: int) -> None:
    y, s = make_data(3, n=1500, ties=ties)
    acc = BinnedScoreAccumulator()
    for lo in range(0, y.size, 400):  # several chunks
        acc.update(y[lo : lo + 400], s[lo : lo + 400])
    got = acc.result(n_bins=n_bins)
    want = reliability_table(y, s, n_bins=n_bins)
    assert got.reliability is not None and got.ece is not None
    assert got.reliability.edges == want.edges
    assert (got.reliability.count, got.reliability.n_bad) == (want.count, want.n_bad)
    np.testing.assert_allclose(got.reliability.mean_predicted, want.mean_predicted, rtol=1e-12)
    np.testing.assert_allclose(got.reliability.observed_rate, want.observed_rate, rtol=1e-12)
    assert got.ece == pytest.approx(expected_calibration_error(y, s, n_bins=n_bins), abs=1e-12)


def test_accumulator_reliability_absent_when_not_aligned() -> None:
    y, s = make_data(4, n=500)
    acc = BinnedScoreAccumulator()
    acc.update(y, s)
    assert acc.result(n_bins=7).reliability is None and acc.result(n_bins=7).ece is None
    # Scorecard points: any edges work for AUC and KS; calibration is not defined.
    points = 300 + 550 * s
    acc_pts = BinnedScoreAccumulator(np.linspace(300, 850, 111))
    acc_pts.update(y, points)
    r = acc_pts.result()
    assert r.reliability is None
    assert abs(r.auc - roc_auc(y, points)) <= r.auc_bound + 1e-12
    d = r.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d


@settings(max_examples=60, deadline=None)
@given(labelled(), st.integers(0, 30))
def test_accumulator_merge_property(data: tuple[list[int], list[int]], cut: int) -> None:
    y_list, s = data
    y = np.asarray(y_list)
    score = (np.asarray(s, dtype=float) + 4.0) / 8.0
    cut = min(cut, y.size)
    edges = np.arange(11) / 10
    one, a, b = (BinnedScoreAccumulator(edges) for _ in range(3))
    one.update(y, score)
    a.update(y[:cut], score[:cut])
    b.update(y[cut:], score[cut:])
    m = a.merge(b)
    np.testing.assert_array_equal(m.bad_counts, one.bad_counts)
    np.testing.assert_array_equal(m.good_counts, one.good_counts)
    r = m.result()
    assert abs(r.auc - roc_auc(y, score)) <= r.auc_bound + 1e-12


def test_auc_standard_error_hanley_mcneil_hand_computed() -> None:
    from charter.stats.classification import auc_standard_error

    # A = 0.75, 100 bads, 400 goods: Q1 = 0.6, Q2 = 0.642857; variance 35.9625 / 40000
    assert auc_standard_error(0.75, 100, 400) == pytest.approx(0.0299844, abs=1e-6)
    # the SE shrinks like 1/sqrt(n)
    assert auc_standard_error(0.75, 400, 1600) == pytest.approx(0.0299844 / 2, rel=0.01)
    with pytest.raises(InvalidArgument):
        auc_standard_error(1.5, 10, 10)
