"""Label-free performance estimation: hand-computed cases, exact enumeration, sklearn, coverage."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score

from charter.datasets.synthetic import CovariateShift, credit_applications, credit_default_model
from charter.errors import InvalidArgument
from charter.stats.classification import BinnedScoreAccumulator
from charter.stats.estimation import EstimatedMetrics, EstimationAccumulator, estimate

FIVE = np.array([0.1, 0.2, 0.4, 0.6, 0.9])


def _scores(seed: int, n: int) -> NDArray[np.float64]:
    """Calibrated-looking probabilities with a credit-like bad rate (mean about 0.14)."""
    return np.random.default_rng(seed).beta(1.2, 7.0, n)


# ---------------------------------------------------------------------------------------------
# Hand-computed cases
# ---------------------------------------------------------------------------------------------


def test_expected_confusion_by_hand() -> None:
    r = estimate(FIVE, 0.5)
    # Declined: 0.6 and 0.9 -> tp = 1.5, fp = 0.5. Approved: 0.1, 0.2, 0.4 -> fn = 0.7, tn = 2.3.
    assert (r.n, r.n_declined, r.n_approved) == (5, 2, 3)
    assert r.tp == pytest.approx(1.5, abs=1e-15)
    assert r.fp == pytest.approx(0.5, abs=1e-15)
    assert r.fn == pytest.approx(0.7, abs=1e-15)
    assert r.tn == pytest.approx(2.3, abs=1e-15)
    assert r.expected_bads == pytest.approx(2.2, abs=1e-15)
    assert r.bad_rate == pytest.approx(0.44, abs=1e-15)
    assert r.precision == pytest.approx(0.75, abs=1e-15)
    assert r.recall == pytest.approx(1.5 / 2.2, abs=1e-15)
    assert r.f1 == pytest.approx(3.0 / (3.0 + 0.5 + 0.7), abs=1e-15)
    assert r.approval_rate == pytest.approx(0.6, abs=1e-15)
    # sd of the realised bad rate: sqrt(sum p(1-p)) / n; of precision: over the declines only.
    assert r.bad_rate_sd == pytest.approx(math.sqrt(0.09 + 0.16 + 0.24 + 0.24 + 0.09) / 5)
    assert r.precision_sd == pytest.approx(math.sqrt(0.24 + 0.09) / 2)


def test_a_score_equal_to_the_threshold_is_declined() -> None:
    r = estimate(FIVE, 0.4)
    assert (r.n_declined, r.n_approved) == (3, 2)
    assert r.tp == pytest.approx(1.9)
    assert r.fn == pytest.approx(0.3)
    everyone = estimate(FIVE, 0.0)
    assert (everyone.n_declined, everyone.approval_rate, everyone.fn) == (5, 0.0, 0.0)
    nobody = estimate(FIVE, 1.0)
    assert (nobody.n_declined, nobody.approval_rate, nobody.tp, nobody.precision) == (
        0,
        1.0,
        0.0,
        0.0,
    )
    assert nobody.recall == 0.0


@pytest.mark.parametrize("edges", [None, [0.0, 1.0], [0.0, 0.5, 1.0], [0.0, 0.3, 0.45, 1.0]])
def test_confusion_is_exact_whatever_the_edges(edges: list[float] | None) -> None:
    p = _scores(3, 2_000)
    t = 0.2371
    r = estimate(p, t, edges=edges)
    declined = p >= t
    assert r.n_declined == int(declined.sum())
    assert r.tp == pytest.approx(float(p[declined].sum()), rel=1e-12)
    assert r.fn == pytest.approx(float(p[~declined].sum()), rel=1e-12)
    assert r.fp == pytest.approx(float((1 - p[declined]).sum()), rel=1e-12)
    assert r.tn == pytest.approx(float((1 - p[~declined]).sum()), rel=1e-12)


def test_expected_auc_by_hand() -> None:
    # Two rows in different bins: E[N] = P(0.8 bad, 0.2 good) = 0.64 and
    # E[D] = P(exactly one bad) = 0.64 + 0.04 = 0.68.
    r = estimate([0.2, 0.8], 0.5)
    assert r.auc == pytest.approx(0.64 / 0.68, abs=1e-15)
    assert r.auc_bin_bound == 0.0
    # In one bin every bad-good pair is a tie: one half, and the whole AUC is uncertain by 1/2.
    one_bin = estimate([0.2, 0.8], 0.5, edges=[0.0, 1.0])
    assert one_bin.auc == pytest.approx(0.5, abs=1e-15)
    assert one_bin.auc_bin_bound == pytest.approx(0.5, abs=1e-15)
    assert r.gini == pytest.approx(2 * 0.64 / 0.68 - 1)


def test_certain_labels_and_an_undefined_auc() -> None:
    # Scores of exactly 0 and 1 leave nothing random: the AUC is 1 with no spread.
    sure = estimate([0.0, 0.0, 1.0, 1.0], 0.5)
    assert (sure.expected_bads, sure.precision, sure.recall, sure.bad_rate_sd) == (2, 1, 1, 0)
    assert (sure.auc, sure.auc_low, sure.auc_high, sure.auc_sd) == (1.0, 1.0, 1.0, 0.0)
    # All goods for sure (or a single row): no bad-good pair can occur, so no AUC.
    for scores in ([0.0, 0.0, 0.0], [1.0, 1.0], [0.3]):
        r = estimate(scores, 0.5)
        assert math.isnan(r.auc) and math.isnan(r.auc_low) and math.isnan(r.auc_sd)
        assert math.isnan(r.auc_bin_bound)
    d = r.to_dict()
    assert d["auc"] is None and d["auc_low"] is None and d["gini"] is None
    json.dumps(d, allow_nan=False)


# ---------------------------------------------------------------------------------------------
# The expected AUC against the exact expectation and against sklearn
# ---------------------------------------------------------------------------------------------


def _binned_auc_parts(bad: NDArray[np.bool_], ids: NDArray[np.intp], m: int) -> tuple[float, float]:
    b = np.bincount(ids[bad], minlength=m).astype(float)
    g = np.bincount(ids[~bad], minlength=m).astype(float)
    numerator = float(np.sum(b * (np.cumsum(g) - g + 0.5 * g)))
    return numerator, float(b.sum() * g.sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("edges", [None, [0.0, 0.1, 0.25, 0.5, 1.0]])
def test_expected_auc_equals_brute_force_enumeration(seed: int, edges: list[float] | None) -> None:
    """Enumerate all 2^11 labelings with their probabilities: E[N] / E[D] and the moments."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.0, 1.0, 11)
    p[:3] = rng.uniform(0.05, 0.12, 3)  # several rows sharing a bin
    e = np.arange(1001) / 1000 if edges is None else np.asarray(edges)
    ids = np.searchsorted(e[1:-1], p, side="left")
    m = e.size - 1
    t = 0.5
    e_num = e_den = e_bads = e_bads2 = e_tp = e_tp2 = 0.0
    for labels in itertools.product([False, True], repeat=p.size):
        bad = np.array(labels)
        w = float(np.prod(np.where(bad, p, 1.0 - p)))
        num, den = _binned_auc_parts(bad, ids, m)
        e_num += w * num
        e_den += w * den
        k = float(bad.sum())
        tp = float(np.sum(bad & (p >= t)))
        e_bads += w * k
        e_bads2 += w * k * k
        e_tp += w * tp
        e_tp2 += w * tp * tp
    r = estimate(p, t, edges=edges)
    assert r.auc == pytest.approx(e_num / e_den, abs=1e-12)
    assert r.expected_bads == pytest.approx(e_bads, abs=1e-12)
    assert r.tp == pytest.approx(e_tp, abs=1e-12)
    assert r.bad_rate_sd == pytest.approx(math.sqrt(e_bads2 - e_bads**2) / p.size, abs=1e-12)
    assert r.precision_sd == pytest.approx(math.sqrt(e_tp2 - e_tp**2) / r.n_declined, abs=1e-12)


def test_expected_auc_matches_the_mean_realised_auc_from_sklearn() -> None:
    p = _scores(11, 4_000)
    r = estimate(p, 0.3)
    rng = np.random.default_rng(12)
    draws = 200
    realised = np.array([roc_auc_score(rng.random(p.size) < p, p) for _ in range(draws)])
    # The mean of the realised AUC agrees to within its Monte Carlo error (plus an O(1/n) bias).
    assert abs(realised.mean() - r.auc) < 4 * realised.std(ddof=1) / math.sqrt(draws) + 1e-3
    # The bootstrap sd is the sd of the realised AUC.
    assert r.auc_sd == pytest.approx(realised.std(ddof=1), rel=0.15)
    # The binned AUC of a labelling equals the exact one to within the binning bound.
    bad = rng.random(p.size) < p
    acc = BinnedScoreAccumulator()
    acc.update(bad, p)
    assert abs(acc.result().auc - roc_auc_score(bad, p)) <= acc.result().auc_bound
    assert r.auc_bin_bound < 2e-3


def test_band_covers_the_realised_auc_about_level_of_the_time() -> None:
    rng = np.random.default_rng(2024)
    trials, covered, widths = 200, 0, []
    for i in range(trials):
        p = rng.beta(1.2, 7.0, 1_500)
        r = estimate(p, 0.3, n_simulations=200, seed=i)
        realised = roc_auc_score(rng.random(p.size) < p, p)
        covered += int(r.auc_low <= realised <= r.auc_high)
        widths.append(r.auc_high - r.auc_low)
        assert r.auc_low <= r.auc <= r.auc_high
    # 95% coverage over 200 trials: binomial sd 1.5 points.
    assert 0.90 <= covered / trials <= 0.99
    assert float(np.mean(widths)) == pytest.approx(2 * 1.96 * r.auc_sd, rel=0.25)


def test_the_band_is_seeded_and_follows_level() -> None:
    p = _scores(5, 3_000)
    a = estimate(p, 0.3, seed=7)
    b = estimate(p, 0.3, seed=7)
    c = estimate(p, 0.3, seed=8)
    assert (a.auc_low, a.auc_high, a.auc_sd) == (b.auc_low, b.auc_high, b.auc_sd)
    assert (a.auc_low, a.auc_high) != (c.auc_low, c.auc_high)
    assert a.auc == c.auc
    narrow = estimate(p, 0.3, seed=7, level=0.5)
    assert a.auc_low < narrow.auc_low < narrow.auc_high < a.auc_high
    assert (narrow.level, narrow.n_simulations, narrow.seed) == (0.5, 200, 7)


# ---------------------------------------------------------------------------------------------
# Streaming: merge and state
# ---------------------------------------------------------------------------------------------


def _assert_same_state(a: EstimationAccumulator, b: EstimationAccumulator) -> None:
    sa, sb = a.to_state(), b.to_state()
    assert sa["count"] == sb["count"]
    for side in ("above", "below"):
        assert sa[side]["count"] == sb[side]["count"]
        assert sa[side]["sum_p"] == pytest.approx(sb[side]["sum_p"], rel=1e-12, abs=1e-12)
        assert sa[side]["sum_p2"] == pytest.approx(sb[side]["sum_p2"], rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(a.sum_p, b.sum_p, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.sum_p2, b.sum_p2, rtol=1e-12, atol=1e-12)


def _assert_same_result(a: EstimatedMetrics, b: EstimatedMetrics) -> None:
    da, db = a.to_dict(), b.to_dict()
    assert da.keys() == db.keys()
    for key, value in da.items():
        if value is None or isinstance(value, int):
            assert value == db[key], key
        else:
            assert value == pytest.approx(db[key], rel=1e-9, abs=1e-12), key


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), max_size=60),
    st.integers(0, 60),
    st.sampled_from([0.0, 0.25, 0.5, 0.999, 1.0]),
)
def test_merge_equals_one_pass(values: list[float], cut: int, threshold: float) -> None:
    p = np.asarray(values, dtype=np.float64)
    whole = EstimationAccumulator(threshold).update(p)
    left = EstimationAccumulator(threshold).update(p[:cut])
    right = EstimationAccumulator(threshold).update(p[cut:])
    merged = left.merge(right)
    _assert_same_state(merged, whole)
    assert merged.n == whole.n == p.size
    # merge returns a new accumulator and leaves both inputs alone
    assert left.n == min(cut, p.size)
    if p.size:
        _assert_same_result(merged.result(n_simulations=20), whole.result(n_simulations=20))


def test_merge_of_random_partitions_in_any_order() -> None:
    p = _scores(21, 20_000)
    rng = np.random.default_rng(22)
    parts = np.split(rng.permutation(p), np.sort(rng.choice(np.arange(1, p.size), 5)))
    accs = [EstimationAccumulator(0.25).update(part) for part in parts]
    forward = accs[0]
    for acc in accs[1:]:
        forward = forward.merge(acc)
    backward = accs[-1]
    for acc in reversed(accs[:-1]):
        backward = acc.merge(backward)
    whole = EstimationAccumulator(0.25).update(p)
    _assert_same_state(forward, whole)
    _assert_same_state(backward, whole)
    assert forward.counts.tolist() == whole.counts.tolist()
    _assert_same_result(forward.result(), whole.result())


def test_merge_refuses_different_thresholds_or_edges() -> None:
    a = EstimationAccumulator(0.3).update(FIVE)
    for other in (
        EstimationAccumulator(0.31),
        EstimationAccumulator(0.3, edges=[0.0, 0.5, 1.0]),
    ):
        with pytest.raises(InvalidArgument) as info:
            a.merge(other)
        assert info.value.field == "other"
    with pytest.raises(InvalidArgument) as info:
        a.merge(BinnedScoreAccumulator())  # type: ignore[arg-type]
    assert info.value.field == "other"


@pytest.mark.parametrize("edges", [None, [0.0, 0.05, 0.2, 1.0]])
def test_state_round_trips_through_json(edges: list[float] | None) -> None:
    acc = EstimationAccumulator(0.2, edges=edges).update(_scores(31, 5_000))
    state = json.loads(json.dumps(acc.to_state(), allow_nan=False))
    back = EstimationAccumulator.from_state(state)
    assert back.to_state() == acc.to_state()
    assert back.threshold == 0.2
    assert back.edges.tolist() == acc.edges.tolist()
    assert back.result().to_dict() == acc.result().to_dict()
    # a restored partition merges like the original
    more = _scores(32, 1_000)
    _assert_same_state(
        back.merge(EstimationAccumulator(0.2, edges=edges).update(more)),
        EstimationAccumulator(0.2, edges=edges).update(_scores(31, 5_000)).update(more),
    )


def _state() -> dict[str, Any]:
    return EstimationAccumulator(0.5, edges=[0.0, 0.5, 1.0]).update(FIVE).to_state()


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda s: s.update(kind="something else"),
        lambda s: s.update(version=99),
        lambda s: s.pop("count"),
        lambda s: s.update(count=[1, 2, 3]),
        lambda s: s.update(count=[2.5, 2.5]),
        lambda s: s.update(count=[-1, 6]),
        lambda s: s.update(sum_p=[float("nan"), 1.0]),
        lambda s: s.update(sum_p2=[-1.0, 1.0]),
        lambda s: s["above"].update(count=99),
        lambda s: s["below"].pop("sum_p"),
        lambda s: s.update(edges=[0.0, 0.7, 0.5, 1.0]),
        lambda s: s.update(threshold=2.0),
        lambda s: s.update(above="nope"),
    ],
)
def test_a_malformed_state_is_refused(corrupt: Any) -> None:
    state = _state()
    corrupt(state)
    with pytest.raises(InvalidArgument) as info:
        EstimationAccumulator.from_state(state)
    assert info.value.field == "state"
    with pytest.raises(InvalidArgument):
        EstimationAccumulator.from_state([1, 2])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scores",
    [
        [0.1, float("nan")],
        [0.1, float("inf")],
        [-0.01, 0.5],
        [0.5, 1.01],
        [[0.1, 0.2]],
        ["a", "b"],
    ],
)
def test_bad_scores_name_the_score_field(scores: Any) -> None:
    acc = EstimationAccumulator(0.5)
    with pytest.raises(InvalidArgument) as info:
        acc.update(scores)
    assert info.value.field == "score"
    assert info.value.remedy
    assert acc.n == 0  # nothing was added


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"threshold": float("nan")}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": -0.1}, "threshold"),
        ({"threshold": "high"}, "threshold"),
        ({"edges": [0.0, 0.5, 0.5, 1.0]}, "edges"),
        ({"edges": [0.0, 0.5]}, "edges"),
        ({"edges": [0.1, 1.0]}, "edges"),
        ({"edges": [0.0]}, "edges"),
        ({"n_simulations": 1}, "n_simulations"),
        ({"n_simulations": 2.5}, "n_simulations"),
        ({"n_simulations": True}, "n_simulations"),
        ({"seed": -1}, "seed"),
        ({"seed": "x"}, "seed"),
        ({"level": 0.0}, "level"),
        ({"level": 1.0}, "level"),
        ({"level": "high"}, "level"),
    ],
)
def test_bad_arguments_name_their_field(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"threshold": 0.5, **kwargs}
    threshold = args.pop("threshold")
    with pytest.raises(InvalidArgument) as info:
        estimate(FIVE, threshold, **args)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_empty_chunks_are_allowed_but_an_empty_result_is_refused() -> None:
    acc = EstimationAccumulator(0.5).update([]).update(np.array([], dtype=np.float64))
    assert acc.n == 0
    with pytest.raises(InvalidArgument) as info:
        acc.result()
    assert info.value.field == "score"
    with pytest.raises(InvalidArgument):
        estimate([], 0.5)


def test_result_to_dict_is_plain_json() -> None:
    r = estimate(_scores(41, 1_000), 0.3)
    d = r.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert d["gini"] == pytest.approx(2 * r.auc - 1)
    assert d["n_declined"] + d["n_approved"] == d["n"] == 1_000


# ---------------------------------------------------------------------------------------------
# Acceptance: the synthetic credit stream under covariate shift
# ---------------------------------------------------------------------------------------------


def test_label_free_auc_tracks_the_realised_auc_under_covariate_shift() -> None:
    """The label-free AUC estimate on the synthetic credit stream with covariate shift and
    calibrated scores stays within 0.02 of the realised AUC."""
    model = credit_default_model()  # the true model: its probabilities are calibrated
    shifts = (
        CovariateShift("debt_to_income", scale=2.0),
        CovariateShift("num_delinquencies", scale=2.0),
    )
    reference = credit_applications(20_000, seed=5, days=30)
    window = credit_applications(20_000, seed=5, days=30, shifts=shifts)
    ref_scores = model.probability(reference)
    scores = model.probability(window)
    np.testing.assert_array_equal(scores, window["default_probability"].to_numpy())

    ref_realised = roc_auc_score(reference["default"], ref_scores)
    realised = roc_auc_score(window["default"], scores)
    # The shift really moves the AUC, by far more than the tolerance...
    assert realised - ref_realised > 0.04
    # ...and the estimate from the window's scores alone follows it.
    est = estimate(scores, threshold=0.2)
    assert abs(est.auc - realised) < 0.02
    assert est.auc_low <= realised <= est.auc_high
    assert abs(est.auc - ref_realised) > 0.04
    assert abs(estimate(ref_scores, threshold=0.2).auc - ref_realised) < 0.02
    # The expected confusion at the threshold agrees with what the labels later reveal.
    declined = scores >= 0.2
    tp = int(window["default"].to_numpy()[declined].sum())
    assert abs(est.tp - tp) < 4 * est.precision_sd * est.n_declined
    assert abs(est.bad_rate - window["default"].mean()) < 4 * est.bad_rate_sd
