"""The serving benchmark's second baseline: the plain FastAPI stack of the issue's table.

FastAPI with a pydantic request model of the German Credit features and scikit-learn's
``predict_proba`` on a one-row frame, the same logistic-regression pipeline as Charter's champion;
nothing validated beyond the types, no shadow, no reason codes, nothing logged. Each worker fits
the pipeline at start (a fraction of a second).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from charter import datasets

X, Y = datasets.german_credit_xy()
MODEL = Pipeline(
    [
        (
            "prep",
            ColumnTransformer(
                [
                    ("num", StandardScaler(), list(datasets.GERMAN_CREDIT_NUMERIC)),
                    (
                        "cat",
                        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                        list(datasets.GERMAN_CREDIT_CATEGORICAL),
                    ),
                ]
            ),
        ),
        ("lr", LogisticRegression(C=0.5, max_iter=1000)),
    ]
).fit(X, Y)


class Features(BaseModel):
    status_of_existing_checking_account: str
    duration_in_month: float
    credit_history: str
    purpose: str
    credit_amount: float
    savings_account_and_bonds: str
    present_employment_since: str
    installment_rate_in_percentage_of_disposable_income: float
    personal_status_and_sex: str
    other_debtors_or_guarantors: str
    present_residence_since: float
    property: str
    age_in_years: float
    other_installment_plans: str
    housing: str
    number_of_existing_credits_at_this_bank: float
    job: str
    number_of_people_being_liable_to_provide_maintenance_for: float
    telephone: str
    foreign_worker: str


class ScoreRequest(BaseModel):
    request_id: str
    entity_key: str
    features: Features


app = FastAPI()


@app.post("/v1/models/{name}/score")
def score(name: str, request: ScoreRequest) -> dict[str, Any]:
    row = pd.DataFrame([request.features.model_dump()])
    p = float(MODEL.predict_proba(row)[0, 1])
    decision = "decline" if p >= 0.5 else "approve"
    return {"request_id": request.request_id, "score": p, "decision": decision}
