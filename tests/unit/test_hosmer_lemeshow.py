"""Hosmer-Lemeshow test: a hand-computed table, ties, and power on simulated models."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from charter.errors import InvalidArgument
from charter.stats.classification import HosmerLemeshowResult, hosmer_lemeshow

# Sixteen rows, four groups of four (n_groups=4). The quantile edges are at sorted positions
# 15 * k / 4 = 3.75, 7.5, 11.25: 0.20 + 0.75 * 0.05 = 0.2375, 0.35 + 0.5 * 0.15 = 0.425 and
# 0.60 + 0.25 * 0.20 = 0.65, so the groups are exactly the four rows of this layout.
HAND_PROB = [
    [0.05, 0.05, 0.10, 0.20],
    [0.25, 0.30, 0.30, 0.35],
    [0.50, 0.55, 0.60, 0.60],
    [0.80, 0.85, 0.90, 0.95],
]
HAND_Y = [
    [0, 0, 0, 1],
    [0, 1, 0, 0],
    [1, 0, 1, 1],
    [1, 1, 1, 1],
]
# group  O1  E1    O0  E0    (O1-E1)^2/E1 + (O0-E0)^2/E0
#   1     1  0.40   3  3.60  0.36/0.40 + 0.36/3.60    = 0.9    + 0.1     = 1
#   2     1  1.20   3  2.80  0.04/1.20 + 0.04/2.80    = 1/30   + 1/70    = 1/21
#   3     3  2.25   1  1.75  0.5625/2.25 + 0.5625/1.75 = 0.25  + 9/28    = 4/7
#   4     4  3.50   0  0.50  0.25/3.50 + 0.25/0.50    = 1/14   + 0.5     = 4/7
# statistic = 1 + 1/21 + 4/7 + 4/7 = 46/21 = 2.190476...; df = 4 - 2 = 2, and the chi-square
# survival function with 2 df is exp(-x / 2), so p = exp(-23/21) = 0.334460...
HAND_STATISTIC = 46.0 / 21.0
HAND_P = math.exp(-23.0 / 21.0)


def hand_data(seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    p = np.array(HAND_PROB, dtype=float).ravel()
    y = np.array(HAND_Y).ravel()
    if seed is not None:
        order = np.random.default_rng(seed).permutation(p.size)
        p, y = p[order], y[order]
    return y, p


def test_hand_computed_table() -> None:
    y, p = hand_data()
    r = hosmer_lemeshow(y, p, n_groups=4)
    assert isinstance(r, HosmerLemeshowResult)
    assert r.statistic == pytest.approx(HAND_STATISTIC, abs=1e-12)
    assert r.statistic == pytest.approx(2.190476, abs=1e-6)
    assert r.df == 2
    assert r.p_value == pytest.approx(HAND_P, abs=1e-12)
    assert r.p_value == pytest.approx(0.334460, abs=1e-6)
    assert r.p_value == pytest.approx(sps.chi2.sf(HAND_STATISTIC, 2), abs=1e-14)
    assert r.n_groups == 4
    assert [g.count for g in r.table] == [4, 4, 4, 4]
    assert [g.observed for g in r.table] == [1, 1, 3, 4]
    assert [g.expected for g in r.table] == pytest.approx([0.40, 1.20, 2.25, 3.50], abs=1e-12)
    assert [(g.lower, g.upper) for g in r.table] == [
        (0.05, 0.20),
        (0.25, 0.35),
        (0.50, 0.60),
        (0.80, 0.95),
    ]
    assert r.table[2].mean_predicted == pytest.approx(0.5625)
    assert r.table[2].observed_rate == pytest.approx(0.75)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_row_order_does_not_matter(seed: int) -> None:
    y, p = hand_data(seed)
    r = hosmer_lemeshow(y, p, n_groups=4)
    assert r.statistic == pytest.approx(HAND_STATISTIC, abs=1e-12)
    assert [g.observed for g in r.table] == [1, 1, 3, 4]


def test_three_groups_by_hand() -> None:
    # Twelve rows in three groups (edges 0.3333 and 0.5667): statistic
    # 0.16/0.6 + 0.16/3.4 + 0.64/1.8 + 0.64/2.2 + 0.64/3.2 + 0.64/0.8, df 1.
    p = np.array([0.1, 0.1, 0.2, 0.2, 0.4, 0.4, 0.5, 0.5, 0.7, 0.8, 0.8, 0.9])
    y = np.array([0, 0, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1])
    expected = 0.16 / 0.6 + 0.16 / 3.4 + 0.64 / 1.8 + 0.64 / 2.2 + 0.64 / 3.2 + 0.64 / 0.8
    r = hosmer_lemeshow(y, p, n_groups=3)
    assert r.statistic == pytest.approx(expected, abs=1e-12)
    assert r.statistic == pytest.approx(1.960190, abs=1e-6)
    assert r.df == 1
    assert r.p_value == pytest.approx(sps.chi2.sf(expected, 1), abs=1e-14)


def test_ties_stay_together_and_empty_groups_are_dropped() -> None:
    p = np.array([0.1] * 50 + [0.3] * 30 + [0.6] * 20)
    y = np.array([1] * 5 + [0] * 45 + [1] * 9 + [0] * 21 + [1] * 12 + [0] * 8)
    r = hosmer_lemeshow(y, p, n_groups=10)
    assert r.n_groups == 3
    assert r.df == 1
    assert [g.count for g in r.table] == [50, 30, 20]
    assert all(g.lower == g.upper for g in r.table)
    assert [g.observed for g in r.table] == [5, 9, 12]
    # Perfectly calibrated group rates: statistic 0, p-value 1.
    assert r.statistic == pytest.approx(0.0, abs=1e-20)
    assert r.p_value == pytest.approx(1.0)


def test_zero_expected_cells() -> None:
    # Probability exactly 0 with no event and exactly 1 with all events add nothing ...
    # (edges 0.1667 and 0.8333: groups {0, 0, 0}, {0.5, 0.5}, {1, 1, 1})
    p = np.array([0.0, 0.0, 0.0, 0.5, 0.5, 1.0, 1.0, 1.0])
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    r = hosmer_lemeshow(y, p, n_groups=3)
    assert [g.count for g in r.table] == [3, 2, 3]
    assert r.statistic == pytest.approx(0.0, abs=1e-20)
    assert r.p_value == pytest.approx(1.0)
    # ... but an event at probability 0 is infinitely surprising.
    y2 = y.copy()
    y2[0] = 1
    r2 = hosmer_lemeshow(y2, p, n_groups=3)
    assert math.isinf(r2.statistic)
    assert r2.p_value == 0.0
    assert r2.to_dict()["statistic"] is None


def simulated(seed: int, n: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 5, n)
    y = (rng.random(n) < p).astype(np.int64)
    return y, p


def test_rejects_a_miscalibrated_model() -> None:
    y, p = simulated(0)
    r = hosmer_lemeshow(y, p**2)
    assert r.df == 8
    assert r.p_value < 1e-10


def test_accepts_a_calibrated_model() -> None:
    y, p = simulated(0)
    assert hosmer_lemeshow(y, p).p_value > 0.05
    # Over many calibrated models, the false-alarm rate at 0.05 is near 0.05.
    rejections = sum(hosmer_lemeshow(*simulated(seed, 1000)).p_value < 0.05 for seed in range(200))
    assert 0.01 <= rejections / 200 <= 0.10


def test_to_dict_is_json() -> None:
    y, p = hand_data()
    d = hosmer_lemeshow(y, p, n_groups=4).to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["df"] == 2
    assert len(d["table"]) == 4


@pytest.mark.parametrize(
    ("y", "p", "n_groups", "field"),
    [
        ([0, 1, 0, 1], [0.1, 0.2, 1.2, 0.4], 3, "prob"),
        ([0, 1, 0, 1], [0.1, 0.2, -0.1, 0.4], 3, "prob"),
        ([0, 1, 0, 1], [0.1, 0.2, 0.3], 3, "prob"),
        ([0, 1, 0, 1], [0.1, 0.2, np.nan, 0.4], 3, "prob"),
        ([0, 1, 0, 2], [0.1, 0.2, 0.3, 0.4], 3, "y_true"),
        ([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], 2, "n_groups"),
        ([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], 0, "n_groups"),
        ([0, 1, 0, 1, 1], [0.2, 0.2, 0.7, 0.7, 0.7], 10, "prob"),
    ],
)
def test_invalid_arguments(y: list[int], p: list[float], n_groups: int, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        hosmer_lemeshow(y, p, n_groups=n_groups)
    assert info.value.field == field
    assert info.value.remedy
