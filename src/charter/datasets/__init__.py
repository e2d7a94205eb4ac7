"""Data sets: the German Credit data (shipped with Charter) and seeded synthetic generators.

German Credit
-------------
The Statlog (German Credit Data) set, 1,000 applicants, 20 attributes (7 numeric, 13
categorical) and the outcome ``creditability`` (700 ``"good"``, 300 ``"bad"``), with the
categorical codes spelled out as text. Source, licence (CC BY 4.0) and attribution are in
``ATTRIBUTION.md`` next to the CSV file.

Conventions:

* :func:`load_german_credit` returns the raw frame as in the file: numeric columns ``int64``,
  text columns in pandas' default string dtype (``str``: pyarrow-backed ``StringDtype`` under
  pandas 3, ``object`` under pandas 2). Either way the values are plain Python ``str``.
* :func:`german_credit_xy` returns ``y = 1`` for ``"bad"`` (the applicant defaulted, the event a
  credit model predicts) and ``0`` for ``"good"``.
* Protected attributes for fairness checks are :data:`GERMAN_CREDIT_PROTECTED`; sex is not a
  column but is derived from ``personal_status_and_sex`` by :func:`derive_sex`.

Synthetic data
--------------
:func:`credit_applications`, :func:`card_transactions` and :func:`drift_benchmark_frame` (see
:mod:`charter.datasets.synthetic` for their conventions) are re-exported here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from charter.datasets.synthetic import (
    CARD_CATEGORICAL_FEATURES,
    CARD_CATEGORICAL_LEVELS,
    CARD_FRAUD_MODEL,
    CARD_NUMERIC_FEATURES,
    CREDIT_CATEGORICAL_FEATURES,
    CREDIT_CATEGORICAL_LEVELS,
    CREDIT_DEFAULT_MODEL,
    CREDIT_NUMERIC_FEATURES,
    DEFAULT_START,
    DRIFT_BENCHMARK_CATEGORICAL_LEVELS,
    DRIFT_BENCHMARK_COLUMNS,
    DRIFT_BENCHMARK_NUMERIC,
    PLANTED_DRIFTS,
    ConceptDrift,
    CovariateShift,
    LabelDelay,
    LogisticModel,
    PlantedDrift,
    Term,
    card_fraud_model,
    card_transactions,
    credit_applications,
    credit_default_model,
    drift_benchmark_frame,
)
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
    "GERMAN_CREDIT_CATEGORICAL",
    "GERMAN_CREDIT_CATEGORICAL_FEATURES",
    "GERMAN_CREDIT_FEATURES",
    "GERMAN_CREDIT_NUMERIC",
    "GERMAN_CREDIT_NUMERIC_FEATURES",
    "GERMAN_CREDIT_PROTECTED",
    "GERMAN_CREDIT_TARGET",
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
    "derive_sex",
    "drift_benchmark_frame",
    "german_credit_path",
    "german_credit_xy",
    "load_german_credit",
]

GERMAN_CREDIT_TARGET = "creditability"
"""Outcome column: ``"good"`` or ``"bad"`` (``"bad"`` is the positive class, y = 1)."""

GERMAN_CREDIT_PROTECTED: tuple[str, ...] = (
    "personal_status_and_sex",
    "age_in_years",
    "foreign_worker",
)
"""Protected attributes for fairness checks (sex via :func:`derive_sex`)."""

GERMAN_CREDIT_NUMERIC: tuple[str, ...] = (
    "duration_in_month",
    "credit_amount",
    "installment_rate_in_percentage_of_disposable_income",
    "present_residence_since",
    "age_in_years",
    "number_of_existing_credits_at_this_bank",
    "number_of_people_being_liable_to_provide_maintenance_for",
)
"""The 7 numeric (``int64``) attributes, in file order."""

GERMAN_CREDIT_CATEGORICAL: tuple[str, ...] = (
    "status_of_existing_checking_account",
    "credit_history",
    "purpose",
    "savings_account_and_bonds",
    "present_employment_since",
    "personal_status_and_sex",
    "other_debtors_or_guarantors",
    "property",
    "other_installment_plans",
    "housing",
    "job",
    "telephone",
    "foreign_worker",
)
"""The 13 categorical (text) attributes, in file order."""

GERMAN_CREDIT_NUMERIC_FEATURES = GERMAN_CREDIT_NUMERIC
"""Alias of :data:`GERMAN_CREDIT_NUMERIC` (named like the synthetic ``*_NUMERIC_FEATURES``)."""

GERMAN_CREDIT_CATEGORICAL_FEATURES = GERMAN_CREDIT_CATEGORICAL
"""Alias of :data:`GERMAN_CREDIT_CATEGORICAL`."""

GERMAN_CREDIT_FEATURES: tuple[str, ...] = (
    "status_of_existing_checking_account",
    "duration_in_month",
    "credit_history",
    "purpose",
    "credit_amount",
    "savings_account_and_bonds",
    "present_employment_since",
    "installment_rate_in_percentage_of_disposable_income",
    "personal_status_and_sex",
    "other_debtors_or_guarantors",
    "present_residence_since",
    "property",
    "age_in_years",
    "other_installment_plans",
    "housing",
    "number_of_existing_credits_at_this_bank",
    "job",
    "number_of_people_being_liable_to_provide_maintenance_for",
    "telephone",
    "foreign_worker",
)
"""All 20 attributes in file order (the target is the 21st and last column)."""

_GERMAN_CREDIT_FILE = "german_credit.csv"
_SEXES = ("male", "female")


def german_credit_path() -> Path:
    """Path of the shipped ``german_credit.csv`` (inside the installed package)."""
    return Path(__file__).resolve().parent / _GERMAN_CREDIT_FILE


def load_german_credit() -> pd.DataFrame:
    """The raw German Credit frame: 1,000 rows, 20 attributes and ``creditability``.

    Numeric columns are ``int64``; text columns (including the target, ``"good"``/``"bad"``) use
    pandas' default string dtype. A fresh frame is returned on every call.
    """
    dtypes: dict[str, object] = {name: "int64" for name in GERMAN_CREDIT_NUMERIC}
    dtypes.update({name: str for name in (*GERMAN_CREDIT_CATEGORICAL, GERMAN_CREDIT_TARGET)})
    return pd.read_csv(german_credit_path(), dtype=dtypes)


def german_credit_xy() -> tuple[pd.DataFrame, np.ndarray]:
    """Features (the 20 attributes, as in :func:`load_german_credit`) and the int64 target.

    ``y[i] == 1`` means applicant ``i`` is ``"bad"`` (a default), ``0`` means ``"good"``.
    """
    frame = load_german_credit()
    target = frame[GERMAN_CREDIT_TARGET]
    unexpected = sorted(set(target.unique()) - {"good", "bad"})
    if unexpected:  # pragma: no cover - guards against a modified data file
        raise InvalidArgument(
            f"unexpected {GERMAN_CREDIT_TARGET} values {unexpected} in {german_credit_path()}",
            field=GERMAN_CREDIT_TARGET,
            remedy="restore the shipped german_credit.csv",
        )
    y = (target == "bad").to_numpy(dtype=np.int64)
    return frame.loc[:, list(GERMAN_CREDIT_FEATURES)], y


def derive_sex(personal_status_and_sex: pd.Series) -> pd.Series:
    """``"male"`` or ``"female"`` from German Credit's ``personal_status_and_sex`` text.

    The values look like ``"male : single"`` or ``"female : divorced/separated/married"``: the sex
    is the part before the colon. Missing values stay missing; any other text raises
    :class:`~charter.errors.InvalidArgument`. The result has the input's index, the name
    ``"sex"`` and pandas' default string dtype.
    """
    if not isinstance(personal_status_and_sex, pd.Series):
        raise InvalidArgument(
            f"expected a pandas Series, got {type(personal_status_and_sex).__name__}",
            field="personal_status_and_sex",
            remedy="pass frame['personal_status_and_sex']",
        )
    text = personal_status_and_sex.astype(str).where(personal_status_and_sex.notna())
    sex = text.str.split(":", n=1).str[0].str.strip().str.lower()
    bad = sex.notna() & ~sex.isin(_SEXES)
    if bad.any():
        examples = sorted(set(personal_status_and_sex[bad].astype(str)))[:5]
        raise InvalidArgument(
            f"cannot derive sex from {examples}; expected values like 'male : single'",
            field="personal_status_and_sex",
            remedy="pass the personal_status_and_sex column of the German Credit data",
        )
    return sex.astype(str).where(sex.notna()).rename("sex")
