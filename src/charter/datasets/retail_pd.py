"""The synthetic retail probability-of-default model of the demo's production story.

Applications come from :func:`charter.datasets.synthetic.credit_applications`. The story:

* a year of history before ``LIVE_START`` trains and validates version 1 (a scaled logistic
  regression with one-hot categories);
* six months of live applications follow, stable for three months; from the start of month four
  the applicant mix moves (lower incomes, more indebted, more utilised: three covariate shifts
  of 0.4 standard deviations) and the relation between debt and default strengthens (a concept
  drift), so the champion's inputs drift (PSI about 0.2 on income, debt to income and
  utilisation), its defaults double and a model retrained on the new mix ranks them better;
* the label is a first-payment default, known 10 to 20 days after the decision (so that the
  story fits in six months; a full default takes 6 to 24 months to observe).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib.resources import files

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from charter.datasets.synthetic import (
    CREDIT_CATEGORICAL_FEATURES,
    CREDIT_NUMERIC_FEATURES,
    ConceptDrift,
    CovariateShift,
    LabelDelay,
    credit_applications,
)

MODEL = "retail-pd"
NUMERIC = tuple(CREDIT_NUMERIC_FEATURES)
CATEGORICAL = tuple(CREDIT_CATEGORICAL_FEATURES)
FEATURES = NUMERIC + CATEGORICAL
LABEL = "default"
LIVE_START = datetime(2026, 1, 1, tzinfo=UTC)
HISTORY_DAYS = 360
LIVE_DAYS = 180
DRIFT_ONSET = LIVE_START + timedelta(days=90)
LABEL_DELAY = LabelDelay(min_days=10, max_days=20)
THRESHOLD = 0.25  # scores at or above it are declined


def estimator(c: float = 1.0) -> Pipeline:
    """Scaled logistic regression with one-hot categories."""
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), list(NUMERIC)),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(CATEGORICAL)),
        ]
    )
    return Pipeline([("pre", pre), ("lr", LogisticRegression(C=c, max_iter=2000))])


def history(n: int = 20_000, seed: int = 11) -> pd.DataFrame:
    """A year of applications before the live period, with their outcomes."""
    return credit_applications(
        n,
        seed=seed,
        start=LIVE_START - timedelta(days=HISTORY_DAYS),
        days=HISTORY_DAYS,
        label_delay=LABEL_DELAY,
    )


def live(n: int = 18_000, seed: int = 12, drift: bool = True) -> pd.DataFrame:
    """Six months of live applications; from ``DRIFT_ONSET`` the mix moves and debt weighs more."""
    shifts = (
        (
            CovariateShift("debt_to_income", mean_shift_sd=0.4, onset=DRIFT_ONSET),
            CovariateShift("utilisation", mean_shift_sd=0.4, onset=DRIFT_ONSET),
            CovariateShift("income", mean_shift_sd=-0.4, onset=DRIFT_ONSET),
        )
        if drift
        else ()
    )
    concept = (
        ConceptDrift(
            onset=DRIFT_ONSET,
            coefficient_changes={"debt_to_income": 0.5, "num_delinquencies": 0.3},
        )
        if drift
        else None
    )
    return credit_applications(
        n,
        seed=seed,
        start=LIVE_START,
        days=LIVE_DAYS,
        shifts=shifts,
        concept_drift=concept,
        label_delay=LABEL_DELAY,
    )


def policy_text() -> str:
    """The model policy: validation gates, monitoring, alerts and retraining."""
    return files("charter.datasets").joinpath("retail_pd_policy.toml").read_text("utf-8")
