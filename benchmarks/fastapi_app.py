"""The serving benchmark's second baseline: the plain FastAPI stack of the issue's table.

FastAPI with a pydantic request model of the German Credit features and scikit-learn's
``predict_proba`` on one row of 20 numbers (categories as their codes), from a logistic
regression: the issue's "FastAPI + pydantic + sklearn predict_proba, 2 workers, nothing logged".
Nothing is checked beyond the types; no shadow, no reason codes, no log. The endpoint is
``async`` (no thread-pool hop), the faster of FastAPI's two styles. Each worker fits the model at
start (a fraction of a second).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel
from sklearn.linear_model import LogisticRegression

from charter import datasets

X, Y = datasets.german_credit_xy()
NAMES = list(datasets.GERMAN_CREDIT_FEATURES)
CODES = {
    name: {c: float(i) for i, c in enumerate(sorted(X[name].unique()))}
    for name in datasets.GERMAN_CREDIT_CATEGORICAL
}
MATRIX = np.column_stack(
    [X[n].map(CODES[n]).to_numpy(float) if n in CODES else X[n].to_numpy(float) for n in NAMES]
)
MODEL = LogisticRegression(max_iter=5000).fit(MATRIX, Y)


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
async def score(name: str, request: ScoreRequest) -> dict[str, Any]:
    f = request.features.model_dump()
    row = np.array([[CODES[n].get(f[n], -1.0) if n in CODES else f[n] for n in NAMES]])
    p = float(MODEL.predict_proba(row)[0, 1])
    decision = "decline" if p >= 0.5 else "approve"
    return {"request_id": request.request_id, "score": p, "decision": decision}
