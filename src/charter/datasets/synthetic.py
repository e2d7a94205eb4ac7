"""Seeded, vectorised synthetic data for tests, demos and benchmarks of drift and monitoring.

Three generators:

* :func:`credit_applications` - loan applications whose default label comes from a known
  ("true") logistic model, :data:`CREDIT_DEFAULT_MODEL`;
* :func:`card_transactions` - card payments whose fraud label comes from
  :data:`CARD_FRAUD_MODEL`;
* :func:`drift_benchmark_frame` - 25 columns of textbook distributions with the seven drifts
  listed in :data:`PLANTED_DRIFTS`.

Conventions
-----------
* **Seeded.** The same arguments give the same frame. Every purpose (times, features, labels,
  label delays, each covariate shift) draws from its own ``numpy.random.Generator`` stream derived
  from ``seed`` with ``SeedSequence.spawn``, so adding a shift or a concept drift never changes the
  draws of anything else: the rows before an ``onset`` are identical to the rows of the same frame
  generated without the drift, and labels share their uniforms (``label = u < p``) so a drifted and
  an undrifted frame are a coupled pair.
* **Vectorised.** No Python loop over rows; a million rows take about a second.
* **Time.** ``start`` must be timezone-aware (it is converted to UTC). Time columns are
  ``datetime64[us, UTC]``, rows are sorted by time, and times lie in ``[start, start + days)``.
  A drift with an ``onset`` applies to rows whose time is at or after the onset; ``onset=None``
  (covariate shifts only) means every row.
* **Dtypes.** Numeric features are ``float64`` (count-like features hold whole numbers unless a
  covariate shift moves them; shifted values are neither re-rounded nor re-clipped, so a shift is
  exactly what was asked for). Categorical text features and identifiers use pandas' default string
  dtype (``str``: pyarrow-backed ``StringDtype`` under pandas 3, ``object`` under pandas 2); values
  read back are plain Python ``str``. :func:`drift_benchmark_frame` uses ``category`` columns built
  from codes instead, which are cheap at a million rows. Labels are ``int64`` 0/1.
* **True models.** Labels are Bernoulli draws from a :class:`LogisticModel` over the features. The
  module-level models hold the terms and coefficients with ``intercept=0.0``; the generators use the
  intercept calibrated so that the mean probability over a fixed 200,000-row undrifted reference
  sample equals the requested base rate. :func:`credit_default_model` and
  :func:`card_fraud_model` return that exact, calibrated model.
* **Covariate shift** (:class:`CovariateShift`) changes one column's distribution and nothing
  else; the true model is then applied to the shifted values, so ``P(y | x)`` is unchanged.
* **Concept drift** (:class:`ConceptDrift`) changes the true model's coefficients after its onset
  and leaves the features' distribution unchanged.
* **Label delay** (:class:`LabelDelay`): a whole number of days drawn uniformly from
  ``[min_days, max_days]`` (both inclusive) and added to the row's time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit

from charter.checks import check_int, check_number
from charter.errors import InvalidArgument

__all__ = [
    "CARD_CATEGORICAL_FEATURES",
    "CARD_CATEGORICAL_LEVELS",
    "CARD_FRAUD_MODEL",
    "CARD_NUMERIC_FEATURES",
    "CREDIT_CATEGORICAL_FEATURES",
    "CREDIT_CATEGORICAL_LEVELS",
    "CREDIT_DEFAULT_MODEL",
    "CREDIT_NUMERIC_FEATURES",
    "DEFAULT_START",
    "DRIFT_BENCHMARK_CATEGORICAL_LEVELS",
    "DRIFT_BENCHMARK_COLUMNS",
    "DRIFT_BENCHMARK_NUMERIC",
    "PLANTED_DRIFTS",
    "ConceptDrift",
    "CovariateShift",
    "LabelDelay",
    "LogisticModel",
    "PlantedDrift",
    "Term",
    "card_fraud_model",
    "card_transactions",
    "credit_applications",
    "credit_default_model",
    "drift_benchmark_frame",
]

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
"""Default first instant of the generated time range."""

_US_PER_HOUR = 3_600_000_000
_US_PER_DAY = 24 * _US_PER_HOUR
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_REFERENCE_ROWS = 200_000
_REFERENCE_SEED = 20_260_101


# ---------------------------------------------------------------------------------------------
# Argument checks (the boundary)
# ---------------------------------------------------------------------------------------------


def _check_rate(value: object, name: str) -> float:
    out = check_number(value, name)
    if not 0.0 < out < 1.0:
        raise InvalidArgument(
            f"{name} must lie strictly between 0 and 1, got {out}",
            field=name,
            remedy="pass a probability such as 0.1",
        )
    return out


def _check_aware(value: object, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidArgument(
            f"{name} must be a datetime, got {value!r}",
            field=name,
            remedy="pass a timezone-aware datetime, e.g. datetime(2026, 1, 1, tzinfo=UTC)",
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidArgument(
            f"{name} must be timezone-aware, got the naive datetime {value.isoformat()}",
            field=name,
            remedy="attach a timezone, e.g. value.replace(tzinfo=UTC)",
        )
    return value.astimezone(UTC)


def _epoch_us(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


def _frozen_float_map(value: object, name: str) -> Mapping[str, float]:
    if not isinstance(value, Mapping):
        raise InvalidArgument(
            f"{name} must be a mapping of names to numbers, got {value!r}",
            field=name,
            remedy="pass a dict such as {'name': 0.5}",
        )
    out: dict[str, float] = {}
    for key, number in value.items():
        if not isinstance(key, str) or not key:
            raise InvalidArgument(
                f"{name} keys must be non-empty strings, got {key!r}",
                field=name,
                remedy="use the feature, term or level names as keys",
            )
        out[key] = check_number(number, f"{name}[{key!r}]")
    return MappingProxyType(out)


# ---------------------------------------------------------------------------------------------
# Drift descriptions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CovariateShift:
    """A change in the distribution of one feature, leaving ``P(y | x)`` unchanged.

    Numeric features: ``x' = m + scale * (x - m) + mean_shift_sd * s``, where ``m`` and ``s`` are
    the mean and (population) standard deviation of the column as generated without any shift,
    over all rows of the frame. So ``mean_shift_sd=0.5`` moves the mean by half a reference
    standard deviation and ``scale=1.5`` widens the spread around the mean by half.

    Categorical features: ``category_weights`` replaces the level probabilities; the weights are
    renormalised to sum to one and levels left out get probability zero. Affected rows are redrawn
    from these probabilities (independently of the other features).

    The shift applies to rows at or after ``onset`` (all rows when ``onset`` is None) and changes
    only its own column: relations the generator builds between features (income and debt to
    income, say) are not propagated.
    """

    feature: str
    mean_shift_sd: float = 0.0
    scale: float = 1.0
    category_weights: Mapping[str, float] | None = field(default=None, hash=False)
    onset: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.feature, str) or not self.feature:
            raise InvalidArgument(
                f"feature must be a non-empty string, got {self.feature!r}",
                field="feature",
                remedy="name one of the generator's feature columns",
            )
        shift = check_number(self.mean_shift_sd, "mean_shift_sd")
        scale = check_number(self.scale, "scale")
        if scale <= 0.0:
            raise InvalidArgument(
                f"scale must be > 0, got {scale}",
                field="scale",
                remedy="pass a positive factor; 1.0 leaves the spread unchanged",
            )
        object.__setattr__(self, "mean_shift_sd", shift)
        object.__setattr__(self, "scale", scale)
        if self.category_weights is not None:
            weights = _frozen_float_map(self.category_weights, "category_weights")
            if not weights:
                raise InvalidArgument(
                    "category_weights must name at least one level",
                    field="category_weights",
                    remedy="pass a dict of level -> weight, or None",
                )
            if any(w < 0.0 for w in weights.values()) or sum(weights.values()) <= 0.0:
                raise InvalidArgument(
                    f"category_weights must be >= 0 with a positive sum, got {dict(weights)}",
                    field="category_weights",
                    remedy="pass non-negative weights, at least one of them positive",
                )
            if shift != 0.0 or scale != 1.0:
                raise InvalidArgument(
                    "category_weights cannot be combined with mean_shift_sd or scale",
                    field="category_weights",
                    remedy="use category_weights for categorical features and "
                    "mean_shift_sd/scale for numeric ones",
                )
            object.__setattr__(self, "category_weights", weights)
        if self.onset is not None:
            object.__setattr__(self, "onset", _check_aware(self.onset, "onset"))

    @property
    def is_categorical(self) -> bool:
        """True when this shift changes level probabilities."""
        return self.category_weights is not None


@dataclass(frozen=True)
class ConceptDrift:
    """A change in ``P(y | x)`` from ``onset`` on; the features' distribution is untouched.

    ``coefficient_changes`` maps term names of the true model (see :attr:`LogisticModel.
    term_names`) to amounts **added** to their coefficients; ``intercept_change`` is added to the
    intercept. Rows at or after ``onset`` get labels from the changed model.
    """

    onset: datetime
    coefficient_changes: Mapping[str, float] = field(hash=False)
    intercept_change: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "onset", _check_aware(self.onset, "onset"))
        object.__setattr__(
            self,
            "coefficient_changes",
            _frozen_float_map(self.coefficient_changes, "coefficient_changes"),
        )
        object.__setattr__(
            self, "intercept_change", check_number(self.intercept_change, "intercept_change")
        )


@dataclass(frozen=True)
class LabelDelay:
    """Labels arrive a whole number of days after the event, uniform in [min_days, max_days]."""

    min_days: int
    max_days: int

    def __post_init__(self) -> None:
        low = check_int(self.min_days, "min_days", minimum=0)
        high = check_int(self.max_days, "max_days", minimum=0)
        if low > high:
            raise InvalidArgument(
                f"min_days ({low}) must not exceed max_days ({high})",
                field="min_days",
                remedy="swap the two values or make them equal for a fixed delay",
            )
        object.__setattr__(self, "min_days", low)
        object.__setattr__(self, "max_days", high)


# ---------------------------------------------------------------------------------------------
# The true models
# ---------------------------------------------------------------------------------------------

TermKind = Literal["linear", "log1p", "level", "range"]


@dataclass(frozen=True)
class Term:
    """One regressor of a :class:`LogisticModel`, computed from column ``feature``.

    ``kind``:

    * ``"linear"``: ``(x - center) / scale``
    * ``"log1p"``: ``(log(1 + max(x, 0)) - center) / scale``
    * ``"level"``: 1.0 where ``x == level``, else 0.0 (a categorical level against the baseline)
    * ``"range"``: 1.0 where ``low <= x < high``, else 0.0
    """

    name: str
    feature: str
    kind: TermKind
    center: float = 0.0
    scale: float = 1.0
    level: str | None = None
    low: float = -math.inf
    high: float = math.inf

    def values(self, column: Any) -> np.ndarray:
        """The regressor's values for a column (array or Series) of ``feature``."""
        if self.kind == "level":
            return np.asarray(column == self.level, dtype=np.float64)
        x = np.asarray(column, dtype=np.float64)
        if self.kind == "linear":
            return (x - self.center) / self.scale
        if self.kind == "log1p":
            return (np.log1p(np.maximum(x, 0.0)) - self.center) / self.scale
        return ((x >= self.low) & (x < self.high)).astype(np.float64)


@dataclass(frozen=True)
class LogisticModel:
    """``P(y = 1 | x) = expit(intercept + sum(coefficients[t.name] * t.values(x)))``."""

    intercept: float
    terms: tuple[Term, ...]
    coefficients: Mapping[str, float] = field(hash=False)

    def __post_init__(self) -> None:
        names = [t.name for t in self.terms]
        if len(set(names)) != len(names):
            raise InvalidArgument("term names must be unique", field="terms")
        coefficients = _frozen_float_map(self.coefficients, "coefficients")
        if set(coefficients) != set(names):
            raise InvalidArgument(
                "coefficients must have exactly one entry per term",
                field="coefficients",
                remedy=f"give coefficients for {sorted(names)}",
            )
        object.__setattr__(self, "coefficients", coefficients)
        object.__setattr__(self, "intercept", check_number(self.intercept, "intercept"))

    @property
    def term_names(self) -> tuple[str, ...]:
        """Names accepted as keys of :attr:`ConceptDrift.coefficient_changes`."""
        return tuple(t.name for t in self.terms)

    def log_odds(self, frame: pd.DataFrame) -> np.ndarray:
        """Log-odds of ``y = 1`` for every row of ``frame`` (which must hold the features)."""
        eta = np.full(len(frame), self.intercept, dtype=np.float64)
        for term in self.terms:
            coefficient = self.coefficients[term.name]
            if coefficient != 0.0:
                eta += coefficient * term.values(frame[term.feature])
        return eta

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        """``P(y = 1 | x)`` for every row of ``frame``."""
        return np.asarray(expit(self.log_odds(frame)), dtype=np.float64)

    def with_intercept(self, intercept: float) -> LogisticModel:
        """The same model with another intercept."""
        return LogisticModel(intercept, self.terms, dict(self.coefficients))

    def with_concept_drift(self, drift: ConceptDrift) -> LogisticModel:
        """The model after ``drift``: coefficient and intercept changes added."""
        unknown = sorted(set(drift.coefficient_changes) - set(self.term_names))
        if unknown:
            raise InvalidArgument(
                f"unknown term(s) {unknown} in concept_drift.coefficient_changes; "
                f"valid terms: {', '.join(self.term_names)}",
                field="concept_drift.coefficient_changes",
                remedy="use term names of the true model (LogisticModel.term_names)",
            )
        coefficients = {
            name: value + drift.coefficient_changes.get(name, 0.0)
            for name, value in self.coefficients.items()
        }
        return LogisticModel(self.intercept + drift.intercept_change, self.terms, coefficients)


def _model(
    numeric: Sequence[tuple[str, TermKind, float, float, float]],
    levels: Mapping[str, tuple[str, ...]],
    level_effects: Mapping[str, float],
    extra: Sequence[tuple[Term, float]] = (),
) -> LogisticModel:
    """Build a model: numeric (feature, kind, center, scale, coefficient) rows, then one level term
    per non-baseline level (the first level is the baseline) with coefficient
    ``level_effects.get("feature=level", 0.0)``, then ``extra`` terms."""
    terms: list[Term] = []
    coefficients: dict[str, float] = {}
    for feature, kind, center, scale, coefficient in numeric:
        terms.append(Term(feature, feature, kind, center, scale))
        coefficients[feature] = coefficient
    for feature, names in levels.items():
        for level in names[1:]:
            name = f"{feature}={level}"
            terms.append(Term(name, feature, "level", level=level))
            coefficients[name] = level_effects.get(name, 0.0)
    for term, coefficient in extra:
        terms.append(term)
        coefficients[term.name] = coefficient
    return LogisticModel(0.0, tuple(terms), coefficients)


# ---------------------------------------------------------------------------------------------
# Credit applications: schema and feature generation
# ---------------------------------------------------------------------------------------------

CREDIT_NUMERIC_FEATURES: tuple[str, ...] = (
    "age",
    "income",
    "employment_years",
    "loan_amount",
    "loan_term_months",
    "debt_to_income",
    "credit_history_months",
    "num_open_accounts",
    "num_delinquencies",
    "num_credit_inquiries_6m",
    "utilisation",
)
"""Numeric features of :func:`credit_applications`, in column order (all float64)."""

CREDIT_CATEGORICAL_LEVELS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "home_ownership": ("rent", "mortgage", "own", "other"),
        "loan_purpose": (
            "debt_consolidation",
            "home_improvement",
            "car",
            "education",
            "medical",
            "business",
            "major_purchase",
            "other",
        ),
        "employment_type": ("salaried", "self_employed", "contract", "retired", "unemployed"),
        "region": ("north", "south", "east", "west", "central", "capital"),
    }
)
"""Levels of each categorical feature of :func:`credit_applications`; the first is the baseline
of the true model."""

CREDIT_CATEGORICAL_FEATURES: tuple[str, ...] = tuple(CREDIT_CATEGORICAL_LEVELS)

CREDIT_DEFAULT_MODEL: LogisticModel = _model(
    (
        ("age", "linear", 40.0, 10.0, -0.15),  # per decade
        ("income", "log1p", math.log(35_000.0), 1.0, -0.6),  # per unit of log income
        ("employment_years", "linear", 5.0, 5.0, -0.1),
        ("loan_amount", "log1p", math.log(8_000.0), 1.0, 0.2),
        ("loan_term_months", "linear", 36.0, 12.0, 0.12),  # per year of term
        ("debt_to_income", "linear", 0.35, 0.1, 0.25),  # per 10 points of DTI
        ("credit_history_months", "linear", 120.0, 60.0, -0.15),  # per 5 years
        ("num_open_accounts", "linear", 4.0, 1.0, 0.03),
        ("num_delinquencies", "linear", 0.0, 1.0, 0.55),
        ("num_credit_inquiries_6m", "linear", 1.0, 1.0, 0.15),
        ("utilisation", "linear", 0.4, 0.1, 0.18),  # per 10 points of utilisation
    ),
    CREDIT_CATEGORICAL_LEVELS,
    {
        "home_ownership=mortgage": -0.25,
        "home_ownership=own": -0.35,
        "home_ownership=other": 0.1,
        "loan_purpose=home_improvement": -0.2,
        "loan_purpose=car": -0.15,
        "loan_purpose=education": 0.1,
        "loan_purpose=medical": 0.25,
        "loan_purpose=business": 0.35,
        "loan_purpose=major_purchase": -0.1,
        "loan_purpose=other": 0.1,
        "employment_type=self_employed": 0.25,
        "employment_type=contract": 0.3,
        "employment_type=unemployed": 0.7,
        # region has no effect (all its coefficients are 0): a nuisance feature that concept
        # drift can give an effect to.
    },
)
"""The true default model of :func:`credit_applications`, with ``intercept=0.0``.

Term names are the numeric feature names and ``"feature=level"`` for every non-baseline level
(the baseline levels are rent, debt_consolidation, salaried and north). The generator adds the
intercept calibrated for ``base_default_rate``; :func:`credit_default_model` returns the full model.
"""


@dataclass
class _Features:
    numeric: dict[str, np.ndarray]
    codes: dict[str, np.ndarray]
    card_index: np.ndarray | None = None


def _draw_codes(rng: np.random.Generator, probabilities: np.ndarray, n: int) -> np.ndarray:
    """Inverse-CDF draw of level codes; ``probabilities`` is (k,) or (n, k), rows summing to 1."""
    cdf = np.cumsum(probabilities, axis=-1)
    u = rng.random(n)
    if probabilities.ndim == 1:
        codes = np.searchsorted(cdf / cdf[-1], u, side="right")
    else:
        codes = (u[:, None] >= cdf / cdf[:, -1:]).sum(axis=1)
    return np.minimum(codes, probabilities.shape[-1] - 1).astype(np.int64)


def _lookup(values: Sequence[float], codes: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)[codes]


def _credit_features(
    rng: np.random.Generator, n: int, offsets_us: np.ndarray, start_us: int
) -> _Features:
    del offsets_us, start_us  # credit features do not depend on time
    age = np.clip(np.round(18.0 + rng.gamma(4.0, 5.5, n)), 18.0, 85.0)

    # Employment type: retirement becomes likely from 55 and dominant from 65; the others keep
    # fixed shares among those not retired.
    p_retired = np.where(age >= 65.0, 0.8, np.where(age >= 55.0, 0.15, 0.0))
    employment = _draw_codes(rng, np.array([0.66, 0.14, 0.12, 0.0, 0.08]), n)
    employment[rng.random(n) < p_retired] = 3

    region = _draw_codes(rng, np.array([0.17, 0.20, 0.15, 0.16, 0.14, 0.18]), n)

    working_life = age - 18.0
    employment_years = np.round(working_life * rng.beta(1.6, 2.4, n), 1)
    employment_years[employment == 4] = 0.0

    log_income = (
        10.25
        + 0.015 * (np.minimum(age, 55.0) - 40.0)
        + 0.08 * np.log1p(employment_years)
        + _lookup([0.0, 0.05, -0.15, -0.25, -0.9], employment)
        + _lookup([0.05, -0.10, -0.12, 0.03, 0.0, 0.15], region)
        + rng.normal(0.0, 0.4, n)
    )
    income = np.maximum(np.round(np.exp(log_income) / 100.0) * 100.0, 1_000.0)

    # Home ownership: multinomial logit in age and income (rent is the baseline).
    age_y = np.minimum(age, 60.0) - 18.0
    rel_income = log_income - 10.4
    logits = np.column_stack(
        [
            np.zeros(n),
            -1.2 + 0.05 * age_y + 0.6 * rel_income,
            -2.8 + 0.08 * (age - 18.0) + 0.3 * rel_income,
            -2.0 - 0.02 * (age - 18.0),
        ]
    )
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    home = _draw_codes(rng, weights / weights.sum(axis=1, keepdims=True), n)

    purpose = _draw_codes(rng, np.array([0.30, 0.13, 0.17, 0.06, 0.05, 0.07, 0.12, 0.10]), n)
    log_amount = (
        np.log(income)
        - 1.5
        + _lookup([0.0, 0.3, 0.2, -0.1, -0.5, 0.6, -0.3, -0.4], purpose)
        + rng.normal(0.0, 0.5, n)
    )
    loan_amount = np.clip(np.round(np.exp(log_amount) / 50.0) * 50.0, 500.0, 150_000.0)

    terms = np.array([12.0, 24.0, 36.0, 48.0, 60.0, 72.0, 84.0])
    term_index = np.clip(
        np.round(1.4 * np.log(loan_amount / 1_000.0) + rng.normal(0.0, 0.8, n)), 0, 6
    ).astype(np.int64)
    loan_term = terms[term_index]

    monthly_rate = 0.08 / 12.0
    payment = loan_amount * monthly_rate / (1.0 - (1.0 + monthly_rate) ** (-loan_term))
    existing_dti = rng.beta(2.0, 7.0, n) * 0.9
    debt_to_income = np.round(np.clip(existing_dti + 12.0 * payment / income, 0.0, 2.0), 3)

    history = np.round(12.0 * working_life * rng.beta(3.0, 1.8, n))
    open_accounts = np.minimum(rng.poisson(0.5 + history / 48.0), 40).astype(np.float64)
    utilisation = np.round(rng.beta(1.3 + 2.0 * np.minimum(debt_to_income, 1.0), 2.6), 3)
    delinquency_rate = 0.08 * np.exp(2.0 * utilisation) * np.where(employment == 4, 1.5, 1.0)
    delinquencies = rng.poisson(delinquency_rate).astype(np.float64)
    inquiries = rng.poisson(0.7 + 1.5 * np.minimum(debt_to_income, 1.0)).astype(np.float64)

    numeric = {
        "age": age,
        "income": income,
        "employment_years": employment_years,
        "loan_amount": loan_amount,
        "loan_term_months": loan_term,
        "debt_to_income": debt_to_income,
        "credit_history_months": history,
        "num_open_accounts": open_accounts,
        "num_delinquencies": delinquencies,
        "num_credit_inquiries_6m": inquiries,
        "utilisation": utilisation,
    }
    codes = {
        "home_ownership": home,
        "loan_purpose": purpose,
        "employment_type": employment,
        "region": region,
    }
    return _Features(numeric, codes)


def _uniform_times(rng: np.random.Generator, n: int, start_us: int, days: int) -> np.ndarray:
    """Sorted microsecond offsets from start, uniform over ``[0, days)``."""
    del start_us
    return np.sort(rng.integers(0, days * _US_PER_DAY, size=n, dtype=np.int64))


# ---------------------------------------------------------------------------------------------
# Card transactions: schema and feature generation
# ---------------------------------------------------------------------------------------------

CARD_NUMERIC_FEATURES: tuple[str, ...] = (
    "amount",
    "hour_of_day",
    "country_mismatch",
    "is_new_merchant",
    "velocity_1h",
    "velocity_24h",
    "distance_from_home_km",
    "card_age_days",
)
"""Numeric features of :func:`card_transactions` (all float64; the two flags are 0.0/1.0)."""

CARD_CATEGORICAL_LEVELS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "merchant_category": (
            "grocery",
            "restaurant",
            "fuel",
            "online_retail",
            "electronics",
            "travel",
            "entertainment",
            "health",
            "cash_withdrawal",
            "other",
        ),
        "channel": ("chip", "contactless", "online", "magstripe"),
    }
)
"""Levels of each categorical feature of :func:`card_transactions`; the first is the baseline."""

CARD_CATEGORICAL_FEATURES: tuple[str, ...] = tuple(CARD_CATEGORICAL_LEVELS)

CARD_FRAUD_MODEL: LogisticModel = _model(
    (
        ("amount", "log1p", math.log(40.0), 1.0, 0.35),
        ("country_mismatch", "linear", 0.0, 1.0, 1.4),
        ("is_new_merchant", "linear", 0.0, 1.0, 0.8),
        ("velocity_1h", "linear", 0.0, 1.0, 0.5),
        ("velocity_24h", "linear", 3.0, 1.0, 0.04),
        ("distance_from_home_km", "log1p", math.log(6.0), 1.0, 0.25),
        ("card_age_days", "log1p", math.log(365.0), 1.0, -0.35),
    ),
    CARD_CATEGORICAL_LEVELS,
    {
        "merchant_category=restaurant": 0.1,
        "merchant_category=fuel": 0.3,
        "merchant_category=online_retail": 0.6,
        "merchant_category=electronics": 1.0,
        "merchant_category=travel": 0.5,
        "merchant_category=entertainment": 0.3,
        "merchant_category=health": -0.2,
        "merchant_category=cash_withdrawal": 0.7,
        "merchant_category=other": 0.2,
        "channel=contactless": -0.2,
        "channel=online": 0.7,
        "channel=magstripe": 1.1,
    },
    extra=((Term("hour_of_day:night", "hour_of_day", "range", low=0.0, high=6.0), 1.0),),
)
"""The true fraud model of :func:`card_transactions`, with ``intercept=0.0``.

Term names are the numeric feature names (``hour_of_day`` has coefficient 0), ``"feature=level"``
for every non-baseline level (baselines: grocery, chip), and ``"hour_of_day:night"`` (1 for
hours 0-5 UTC). The generator adds the intercept calibrated for ``fraud_rate``;
:func:`card_fraud_model` returns the full model.
"""

# Share of transactions by UTC hour of day: quiet at night, peaks at lunch and early evening.
_HOUR_PROFILE = np.array(
    [
        *(1.2, 0.8, 0.6, 0.5, 0.5, 0.8, 1.5, 2.8, 4.0, 4.8, 5.3, 5.9),  # 00:00 to 11:00
        *(6.8, 6.5, 5.8, 5.5, 5.6, 6.2, 6.6, 6.0, 5.0, 3.9, 2.8, 1.9),  # 12:00 to 23:00
    ]
)
_HOUR_PROFILE = _HOUR_PROFILE / _HOUR_PROFILE.sum()


def _profile_times(rng: np.random.Generator, n: int, start_us: int, days: int) -> np.ndarray:
    """Sorted offsets in ``[0, days)`` whose UTC hour of day follows :data:`_HOUR_PROFILE`.

    Draw a day, an absolute UTC hour and a point within the hour; times that fall before
    ``start`` (when it is not at midnight) wrap round to the last day, which keeps their hour.
    """
    into_day = start_us % _US_PER_DAY
    day = rng.integers(0, days, size=n, dtype=np.int64)
    hour = _draw_codes(rng, _HOUR_PROFILE, n)
    within = rng.integers(0, _US_PER_HOUR, size=n, dtype=np.int64)
    offsets = day * _US_PER_DAY + hour * _US_PER_HOUR + within - into_day
    offsets = np.where(offsets < 0, offsets + days * _US_PER_DAY, offsets)
    return np.sort(offsets)


def _card_features(
    rng: np.random.Generator, n: int, offsets_us: np.ndarray, start_us: int
) -> _Features:
    n_cards = max(1, n // 20)
    card_age_at_start = np.round(rng.gamma(1.5, 500.0, n_cards))
    card = rng.integers(0, n_cards, size=n, dtype=np.int64)
    card_age = np.floor(card_age_at_start[card] + offsets_us / _US_PER_DAY)
    hour = ((start_us + offsets_us) // _US_PER_HOUR % 24).astype(np.float64)

    merchant = _draw_codes(
        rng, np.array([0.24, 0.16, 0.10, 0.17, 0.05, 0.04, 0.07, 0.05, 0.06, 0.06]), n
    )
    channel_by_merchant = np.array(
        [
            [0.35, 0.55, 0.05, 0.05],  # grocery
            [0.35, 0.55, 0.05, 0.05],  # restaurant
            [0.45, 0.40, 0.05, 0.10],  # fuel
            [0.02, 0.02, 0.95, 0.01],  # online_retail
            [0.35, 0.25, 0.35, 0.05],  # electronics
            [0.30, 0.20, 0.45, 0.05],  # travel
            [0.30, 0.35, 0.30, 0.05],  # entertainment
            [0.40, 0.50, 0.05, 0.05],  # health
            [0.90, 0.05, 0.00, 0.05],  # cash_withdrawal
            [0.35, 0.35, 0.25, 0.05],  # other
        ]
    )
    channel = _draw_codes(rng, channel_by_merchant[merchant], n)

    log_typical = np.log([35.0, 30.0, 50.0, 45.0, 250.0, 300.0, 40.0, 60.0, 100.0, 40.0])
    amount = np.maximum(np.round(np.exp(log_typical[merchant] + rng.normal(0.0, 0.8, n)), 2), 0.5)
    mismatch_rate = _lookup([0.01, 0.02, 0.01, 0.06, 0.04, 0.30, 0.03, 0.01, 0.03, 0.03], merchant)
    country_mismatch = (rng.random(n) < mismatch_rate).astype(np.float64)
    is_new_merchant = (rng.random(n) < 0.15).astype(np.float64)
    velocity_1h = rng.poisson(0.25, n).astype(np.float64)
    velocity_24h = velocity_1h + rng.poisson(2.5, n)
    distance = np.exp(rng.normal(math.log(5.0), 1.0, n)) + country_mismatch * np.exp(
        rng.normal(math.log(800.0), 0.8, n)
    )
    numeric = {
        "amount": amount,
        "hour_of_day": hour,
        "country_mismatch": country_mismatch,
        "is_new_merchant": is_new_merchant,
        "velocity_1h": velocity_1h,
        "velocity_24h": velocity_24h,
        "distance_from_home_km": np.round(distance, 1),
        "card_age_days": card_age,
    }
    codes = {"merchant_category": merchant, "channel": channel}
    return _Features(numeric, codes, card_index=card)


# ---------------------------------------------------------------------------------------------
# The shared driver
# ---------------------------------------------------------------------------------------------

FeatureFn = Callable[[np.random.Generator, int, np.ndarray, int], _Features]
TimeFn = Callable[[np.random.Generator, int, int, int], np.ndarray]


@dataclass(frozen=True)
class _Spec:
    name: str
    numeric: tuple[str, ...]
    levels: Mapping[str, tuple[str, ...]]
    model: LogisticModel
    features: FeatureFn
    times: TimeFn
    reference_days: int
    id_column: str
    id_prefix: str
    time_column: str
    probability_column: str
    label_column: str
    rate_field: str


_CREDIT = _Spec(
    name="credit",
    numeric=CREDIT_NUMERIC_FEATURES,
    levels=CREDIT_CATEGORICAL_LEVELS,
    model=CREDIT_DEFAULT_MODEL,
    features=_credit_features,
    times=_uniform_times,
    reference_days=180,
    id_column="application_id",
    id_prefix="app",
    time_column="decision_time",
    probability_column="default_probability",
    label_column="default",
    rate_field="base_default_rate",
)
_CARD = _Spec(
    name="card",
    numeric=CARD_NUMERIC_FEATURES,
    levels=CARD_CATEGORICAL_LEVELS,
    model=CARD_FRAUD_MODEL,
    features=_card_features,
    times=_profile_times,
    reference_days=90,
    id_column="transaction_id",
    id_prefix="txn",
    time_column="event_time",
    probability_column="fraud_probability",
    label_column="is_fraud",
    rate_field="fraud_rate",
)
_SPECS = {spec.name: spec for spec in (_CREDIT, _CARD)}


def _log_odds(
    model: LogisticModel, features: _Features, levels: Mapping[str, tuple[str, ...]]
) -> np.ndarray:
    """``model.log_odds`` on generator internals (categoricals as codes, one lookup each)."""
    n = len(next(iter(features.numeric.values())))
    eta = np.full(n, model.intercept, dtype=np.float64)
    level_effects = {f: np.zeros(len(names)) for f, names in levels.items()}
    for term in model.terms:
        coefficient = model.coefficients[term.name]
        if coefficient == 0.0:
            continue
        if term.kind == "level":
            level_effects[term.feature][levels[term.feature].index(str(term.level))] += coefficient
        else:
            eta += coefficient * term.values(features.numeric[term.feature])
    for feature, effects in level_effects.items():
        if np.any(effects):
            eta += effects[features.codes[feature]]
    return eta


@cache
def _reference_log_odds(kind: str) -> np.ndarray:
    """Log-odds without intercept over the fixed undrifted reference sample."""
    spec = _SPECS[kind]
    streams = np.random.SeedSequence(_REFERENCE_SEED).spawn(2)
    start_us = _epoch_us(DEFAULT_START)
    offsets = spec.times(
        np.random.default_rng(streams[0]), _REFERENCE_ROWS, start_us, spec.reference_days
    )
    features = spec.features(np.random.default_rng(streams[1]), _REFERENCE_ROWS, offsets, start_us)
    eta = _log_odds(spec.model, features, spec.levels)
    eta.setflags(write=False)
    return eta


@lru_cache(maxsize=256)
def _calibrated_intercept(kind: str, rate: float) -> float:
    eta = _reference_log_odds(kind)

    def excess(intercept: float) -> float:
        return float(np.mean(expit(eta + intercept))) - rate

    return float(brentq(excess, -60.0, 60.0, xtol=1e-12))


def credit_default_model(base_default_rate: float = 0.1) -> LogisticModel:
    """The exact true model :func:`credit_applications` uses for ``base_default_rate``.

    That is :data:`CREDIT_DEFAULT_MODEL` with its intercept calibrated so that the mean default
    probability over a fixed 200,000-row undrifted reference sample equals the rate.
    """
    rate = _check_rate(base_default_rate, "base_default_rate")
    return CREDIT_DEFAULT_MODEL.with_intercept(_calibrated_intercept("credit", rate))


def card_fraud_model(fraud_rate: float = 0.01) -> LogisticModel:
    """The exact true model :func:`card_transactions` uses for ``fraud_rate`` (see
    :func:`credit_default_model` for the calibration)."""
    rate = _check_rate(fraud_rate, "fraud_rate")
    return CARD_FRAUD_MODEL.with_intercept(_calibrated_intercept("card", rate))


def _check_shifts(shifts: object, spec: _Spec) -> tuple[CovariateShift, ...]:
    if isinstance(shifts, CovariateShift) or not isinstance(shifts, Sequence):
        raise InvalidArgument(
            f"shifts must be a sequence of CovariateShift, got {shifts!r}",
            field="shifts",
            remedy="wrap a single shift in a list: shifts=[CovariateShift(...)]",
        )
    valid = (*spec.numeric, *spec.levels)
    out: list[CovariateShift] = []
    for i, shift in enumerate(shifts):
        where = f"shifts[{i}]"
        if not isinstance(shift, CovariateShift):
            raise InvalidArgument(
                f"{where} must be a CovariateShift, got {shift!r}",
                field=where,
                remedy="build shifts with CovariateShift(feature, ...)",
            )
        if shift.feature in spec.numeric:
            if shift.is_categorical:
                raise InvalidArgument(
                    f"{where}: {shift.feature!r} is numeric, so category_weights do not apply",
                    field=f"{where}.category_weights",
                    remedy="use mean_shift_sd and/or scale for numeric features",
                )
        elif shift.feature in spec.levels:
            levels = spec.levels[shift.feature]
            weights = shift.category_weights
            if weights is None:
                raise InvalidArgument(
                    f"{where}: {shift.feature!r} is categorical and needs category_weights",
                    field=f"{where}.category_weights",
                    remedy=f"give weights for some of its levels: {', '.join(levels)}",
                )
            unknown = sorted(set(weights) - set(levels))
            if unknown:
                raise InvalidArgument(
                    f"{where}: unknown level(s) {unknown} of {shift.feature!r}; "
                    f"valid levels: {', '.join(levels)}",
                    field=f"{where}.category_weights",
                    remedy="use level names exactly as the generator spells them",
                )
        else:
            raise InvalidArgument(
                f"{where}: unknown feature {shift.feature!r}; valid features: {', '.join(valid)}",
                field=f"{where}.feature",
                remedy="name one of the generator's feature columns",
            )
        out.append(shift)
    return tuple(out)


def _apply_shifts(
    features: _Features,
    shifts: tuple[CovariateShift, ...],
    streams: list[np.random.SeedSequence],
    levels: Mapping[str, tuple[str, ...]],
    offsets_us: np.ndarray,
    start_us: int,
) -> None:
    n = len(offsets_us)
    # Reference mean and sd of every shifted numeric column, taken before any shift.
    reference: dict[str, tuple[float, float]] = {}
    for shift in shifts:
        if not shift.is_categorical and shift.feature not in reference:
            x = features.numeric[shift.feature]
            reference[shift.feature] = (float(np.mean(x)), float(np.std(x)))
    for shift, stream in zip(shifts, streams, strict=True):
        if shift.onset is None:
            after: np.ndarray | slice = slice(None)
        else:
            after = offsets_us >= _epoch_us(shift.onset) - start_us
        if shift.category_weights is None:
            x = features.numeric[shift.feature]
            mean, sd = reference[shift.feature]
            moved = mean + shift.scale * (x - mean) + shift.mean_shift_sd * sd
            x[after] = moved[after]
        else:
            names = levels[shift.feature]
            weights = np.array([shift.category_weights.get(level, 0.0) for level in names])
            redrawn = _draw_codes(np.random.default_rng(stream), weights / weights.sum(), n)
            features.codes[shift.feature][after] = redrawn[after]


_STRING_DTYPE = pd.Series([""], dtype=str).dtype


def _text(levels: tuple[str, ...], codes: np.ndarray) -> pd.Series:
    """``levels[codes]`` as a column of pandas' default string dtype (``str`` under pandas 3).

    When that dtype is pyarrow-backed the column is decoded from a dictionary array, about four
    times faster than converting a million Python strings.
    """
    if getattr(_STRING_DTYPE, "storage", None) == "pyarrow":
        import pyarrow as pa

        dictionary = pa.DictionaryArray.from_arrays(
            pa.array(codes.astype(np.int32)), pa.array(levels, pa.string())
        )
        return pd.Series(pd.array(dictionary.cast(pa.large_string()), dtype=_STRING_DTYPE))
    return pd.Series(np.asarray(levels, dtype=object)[codes], dtype=str)


def _numbered(prefix: str, numbers: np.ndarray, width: int) -> pd.Series:
    return prefix + pd.Series(numbers).astype(str).str.zfill(width)


def _utc(epoch_us: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(epoch_us.view("datetime64[us]")).tz_localize("UTC")


def _generate(
    spec: _Spec,
    n: object,
    seed: object,
    start: object,
    days: object,
    shifts: object,
    concept_drift: object,
    label_delay: object,
    rate: object,
) -> pd.DataFrame:
    rows = check_int(n, "n", minimum=1)
    seed_ = check_int(seed, "seed", minimum=0)
    start_utc = _check_aware(start, "start")
    days_ = check_int(days, "days", minimum=1)
    shifts_ = _check_shifts(shifts, spec)
    drift: ConceptDrift | None = None
    if isinstance(concept_drift, ConceptDrift):
        drift = concept_drift
    elif concept_drift is not None:
        raise InvalidArgument(
            f"concept_drift must be a ConceptDrift or None, got {concept_drift!r}",
            field="concept_drift",
            remedy="build it with ConceptDrift(onset, coefficient_changes)",
        )
    if not isinstance(label_delay, LabelDelay):
        raise InvalidArgument(
            f"label_delay must be a LabelDelay, got {label_delay!r}",
            field="label_delay",
            remedy="build it with LabelDelay(min_days, max_days)",
        )
    rate_ = _check_rate(rate, spec.rate_field)
    model = spec.model.with_intercept(_calibrated_intercept(spec.name, rate_))
    drifted_model = None if drift is None else model.with_concept_drift(drift)

    start_us = _epoch_us(start_utc)
    time_ss, feature_ss, label_ss, delay_ss, shift_ss = np.random.SeedSequence(seed_).spawn(5)
    offsets = spec.times(np.random.default_rng(time_ss), rows, start_us, days_)
    features = spec.features(np.random.default_rng(feature_ss), rows, offsets, start_us)
    _apply_shifts(features, shifts_, shift_ss.spawn(len(shifts_)), spec.levels, offsets, start_us)

    eta = _log_odds(model, features, spec.levels)
    if drift is not None and drifted_model is not None:
        after = offsets >= _epoch_us(drift.onset) - start_us
        eta = np.where(after, _log_odds(drifted_model, features, spec.levels), eta)
    probability = np.asarray(expit(eta), dtype=np.float64)
    label = (np.random.default_rng(label_ss).random(rows) < probability).astype(np.int64)
    delay_days = np.random.default_rng(delay_ss).integers(
        label_delay.min_days, label_delay.max_days + 1, size=rows, dtype=np.int64
    )

    width = max(8, len(str(rows - 1)))
    columns: dict[str, Any] = {
        spec.id_column: _numbered(f"{spec.id_prefix}-{seed_}-", np.arange(rows), width),
        spec.time_column: _utc(start_us + offsets),
    }
    if features.card_index is not None:
        columns["card_id"] = _numbered(f"card-{seed_}-", features.card_index, 7)
    columns.update(features.numeric)
    for feature, names in spec.levels.items():
        columns[feature] = _text(names, features.codes[feature])
    columns[spec.probability_column] = probability
    columns[spec.label_column] = label
    columns["label_available_at"] = _utc(start_us + offsets + delay_days * _US_PER_DAY)
    return pd.DataFrame(columns)


DEFAULT_CREDIT_LABEL_DELAY = LabelDelay(180, 720)
DEFAULT_CARD_LABEL_DELAY = LabelDelay(30, 90)


def credit_applications(
    n: int,
    *,
    seed: int,
    start: datetime = DEFAULT_START,
    days: int = 180,
    shifts: Sequence[CovariateShift] = (),
    concept_drift: ConceptDrift | None = None,
    label_delay: LabelDelay = DEFAULT_CREDIT_LABEL_DELAY,
    base_default_rate: float = 0.1,
) -> pd.DataFrame:
    """``n`` synthetic loan applications with a known default model.

    Columns, in order: ``application_id`` (``"app-{seed}-{row:08d}"``, unique, in time order),
    ``decision_time`` (uniform over ``[start, start + days)``, sorted), the numeric features
    :data:`CREDIT_NUMERIC_FEATURES` (float64), the categorical features
    :data:`CREDIT_CATEGORICAL_FEATURES` (string dtype), ``default_probability`` (the true
    ``P(default | x)``), ``default`` (int64, 1 = defaulted, drawn from that probability) and
    ``label_available_at`` (``decision_time`` plus the label delay).

    How the features relate: age drives retirement, employment years, credit history and home
    ownership; income depends on age, tenure, employment type and region; the loan amount on
    income and purpose; the term on the amount; debt to income on existing debt plus the new
    loan's annuity at 8% a year; utilisation on debt to income; delinquencies on utilisation and
    unemployment. Region has no effect on default.

    The true model is :func:`credit_default_model` ``(base_default_rate)``; with ``shifts`` it
    is applied to the shifted features, with ``concept_drift`` rows from the onset use
    ``model.with_concept_drift(concept_drift)``.
    """
    return _generate(
        _CREDIT, n, seed, start, days, shifts, concept_drift, label_delay, base_default_rate
    )


def card_transactions(
    n: int,
    *,
    seed: int,
    start: datetime = DEFAULT_START,
    days: int = 90,
    shifts: Sequence[CovariateShift] = (),
    concept_drift: ConceptDrift | None = None,
    label_delay: LabelDelay = DEFAULT_CARD_LABEL_DELAY,
    fraud_rate: float = 0.01,
) -> pd.DataFrame:
    """``n`` synthetic card transactions with a known fraud model.

    Columns, in order: ``transaction_id`` (``"txn-{seed}-{row:08d}"``), ``event_time`` (days
    uniform over ``[start, start + days)``, UTC hour of day following a daily profile, sorted),
    ``card_id`` (about 20 transactions per card), the numeric features
    :data:`CARD_NUMERIC_FEATURES` (float64), the categorical features
    :data:`CARD_CATEGORICAL_FEATURES` (string dtype), ``fraud_probability``, ``is_fraud``
    (int64 0/1) and ``label_available_at``.

    Feature notes: ``hour_of_day`` is the UTC hour of ``event_time``; ``card_age_days`` is the
    card's age at ``start`` plus the days elapsed since; the amount is log-normal around a typical
    amount per merchant category; the channel depends on the merchant category; travel and online
    merchants see more country mismatches, which add a long distance from home. The velocities are
    drawn (Poisson), not counted from the frame.

    The true model is :func:`card_fraud_model` ``(fraud_rate)``; shifts and concept drift work as
    in :func:`credit_applications`.
    """
    return _generate(_CARD, n, seed, start, days, shifts, concept_drift, label_delay, fraud_rate)


# ---------------------------------------------------------------------------------------------
# Drift benchmark
# ---------------------------------------------------------------------------------------------

DRIFT_BENCHMARK_NUMERIC: Mapping[str, tuple[str, tuple[float, float]]] = MappingProxyType(
    {
        # normal(loc, scale)
        "num_00": ("normal", (0.0, 1.0)),
        "num_01": ("normal", (10.0, 2.0)),
        "num_02": ("normal", (-5.0, 0.5)),
        "num_03": ("normal", (100.0, 15.0)),
        # lognormal(mu, sigma) of the log
        "num_04": ("lognormal", (0.0, 0.25)),
        "num_05": ("lognormal", (1.0, 0.5)),
        "num_06": ("lognormal", (2.0, 0.75)),
        "num_07": ("lognormal", (3.0, 1.0)),
        # exponential(scale, unused)
        "num_08": ("exponential", (1.0, 0.0)),
        "num_09": ("exponential", (2.0, 0.0)),
        "num_10": ("exponential", (5.0, 0.0)),
        "num_11": ("exponential", (10.0, 0.0)),
        # uniform(low, high)
        "num_12": ("uniform", (0.0, 1.0)),
        "num_13": ("uniform", (-1.0, 1.0)),
        "num_14": ("uniform", (10.0, 20.0)),
        "num_15": ("uniform", (0.0, 100.0)),
        # gamma(shape, scale)
        "num_16": ("gamma", (0.5, 2.0)),
        "num_17": ("gamma", (2.0, 1.0)),
        "num_18": ("gamma", (5.0, 0.5)),
        "num_19": ("gamma", (9.0, 1.0)),
    }
)
"""The 20 numeric benchmark columns: family and its two parameters, undrifted."""


def _zipf(k: int, exponent: float) -> np.ndarray:
    weights = np.arange(1, k + 1, dtype=np.float64) ** -exponent
    return weights / weights.sum()


_BENCHMARK_CATEGORICAL: dict[str, tuple[int, float]] = {
    "cat_0": (10, 1.0),
    "cat_1": (15, 0.8),
    "cat_2": (20, 1.2),
    "cat_3": (25, 0.6),
    "cat_4": (30, 1.5),
}

DRIFT_BENCHMARK_CATEGORICAL_LEVELS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        name: tuple(f"L{j:02d}" for j in range(k))
        for name, (k, _exponent) in _BENCHMARK_CATEGORICAL.items()
    }
)
"""Levels of the five benchmark categoricals (10, 15, 20, 25 and 30 levels, ``"L00"`` first).

Undrifted level probabilities are Zipf-like, ``p_j ~ (j + 1) ** -s`` with ``s`` = 1.0, 0.8,
1.2, 0.6 and 1.5, so ``L00`` is the most frequent level and the last level the rarest."""

DRIFT_BENCHMARK_COLUMNS: tuple[str, ...] = (
    *DRIFT_BENCHMARK_NUMERIC,
    *DRIFT_BENCHMARK_CATEGORICAL_LEVELS,
)
"""The 25 columns of :func:`drift_benchmark_frame`, in order."""


@dataclass(frozen=True)
class PlantedDrift:
    """One drift :func:`drift_benchmark_frame` plants when ``drifted=True``."""

    column: str
    kind: Literal["mean_shift", "variance_change", "frequency_change"]
    description: str


PLANTED_DRIFTS: tuple[PlantedDrift, ...] = (
    PlantedDrift("num_00", "mean_shift", "normal: mean + 0.1 sd"),
    PlantedDrift("num_01", "mean_shift", "normal: mean + 0.5 sd"),
    PlantedDrift("num_04", "mean_shift", "log-normal: mean of the log + 0.1 sd of the log"),
    PlantedDrift("num_05", "mean_shift", "log-normal: mean of the log + 0.5 sd of the log"),
    PlantedDrift(
        "num_13", "variance_change", "uniform(-1, 1) becomes uniform(-1.25, 1.25): sd x 1.25"
    ),
    PlantedDrift(
        "cat_1",
        "frequency_change",
        "most frequent level L00 gains 0.05 probability; the others shrink proportionally",
    ),
    PlantedDrift(
        "cat_3",
        "frequency_change",
        "the three rarest levels (L22-L24) triple in weight, then renormalised",
    ),
)
"""The seven drifts planted by ``drift_benchmark_frame(..., drifted=True)``; every other column
has the same distribution with and without drift."""


def _benchmark_probabilities(name: str, drifted: bool) -> np.ndarray:
    k, exponent = _BENCHMARK_CATEGORICAL[name]
    p = _zipf(k, exponent)
    if drifted and name == "cat_1":
        p = np.concatenate([[p[0] + 0.05], p[1:] * (1.0 - p[0] - 0.05) / (1.0 - p[0])])
    elif drifted and name == "cat_3":
        p = p.copy()
        p[-3:] *= 3.0
        p /= p.sum()
    return p


def _benchmark_numeric(rng: np.random.Generator, name: str, n: int, drifted: bool) -> np.ndarray:
    family, (a, b) = DRIFT_BENCHMARK_NUMERIC[name]
    if drifted and name in ("num_00", "num_04"):
        a += 0.1 * b
    elif drifted and name in ("num_01", "num_05"):
        a += 0.5 * b
    elif drifted and name == "num_13":
        centre, half = (a + b) / 2.0, (b - a) / 2.0
        a, b = centre - 1.25 * half, centre + 1.25 * half
    if family == "normal":
        return rng.normal(a, b, n)
    if family == "lognormal":
        return rng.lognormal(a, b, n)
    if family == "exponential":
        return rng.exponential(a, n)
    if family == "uniform":
        return rng.uniform(a, b, n)
    return rng.gamma(a, b, n)


def drift_benchmark_frame(n: int, *, seed: int, drifted: bool) -> pd.DataFrame:
    """A 25-column frame for benchmarking drift detectors.

    Columns :data:`DRIFT_BENCHMARK_COLUMNS`: ``num_00`` to ``num_19`` (float64; four columns each
    of the normal, log-normal, exponential, uniform and gamma families, parameters in
    :data:`DRIFT_BENCHMARK_NUMERIC`) and ``cat_0`` to ``cat_4`` (pandas ``category`` with string
    categories, see :data:`DRIFT_BENCHMARK_CATEGORICAL_LEVELS`). With ``drifted=True`` exactly the
    seven :data:`PLANTED_DRIFTS` are applied; the other 18 columns keep their distribution.

    ``drifted=False`` and ``drifted=True`` draw from independent streams (``SeedSequence([seed,
    drifted])``, one child per column), so a reference and a current frame made with the same seed
    are two independent samples, as in production, not one sample copied. Columns are independent
    of each other.
    """
    rows = check_int(n, "n", minimum=1)
    seed_ = check_int(seed, "seed", minimum=0)
    if not isinstance(drifted, bool | np.bool_):
        raise InvalidArgument(
            f"drifted must be True or False, got {drifted!r}",
            field="drifted",
            remedy="pass drifted=True for the current frame, False for the reference",
        )
    flag = bool(drifted)
    streams = np.random.SeedSequence([seed_, int(flag)]).spawn(len(DRIFT_BENCHMARK_COLUMNS))
    columns: dict[str, Any] = {}
    for name, stream in zip(DRIFT_BENCHMARK_COLUMNS, streams, strict=True):
        rng = np.random.default_rng(stream)
        if name in DRIFT_BENCHMARK_NUMERIC:
            columns[name] = _benchmark_numeric(rng, name, rows, flag)
        else:
            levels = DRIFT_BENCHMARK_CATEGORICAL_LEVELS[name]
            codes = _draw_codes(rng, _benchmark_probabilities(name, flag), rows)
            columns[name] = pd.Categorical.from_codes(
                codes.astype(np.int8), categories=pd.Index(levels)
            )
    return pd.DataFrame(columns)
