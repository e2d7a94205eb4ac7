"""The serving benchmark's plain stacks: the issue's "FastAPI + pydantic + sklearn predict_proba,
2 workers, nothing logged", in two forms.

The model is the issue's: a logistic regression on the 20 German Credit features (categories as
their codes). ``app`` calls ``predict_proba`` on the request as a one-row DataFrame: that call is
what the issue timed at "about 440 us" in-process (this machine: 430-470 µs in a fast phase,
about 930 µs in a slow one), so this is the stack of the issue's table. ``lean_app`` calls it on
one numpy row instead (about a fifth of the cost), a leaner stand-in printed as a stricter
reference.

Both: a pydantic request model of the features; nothing checked beyond the types; no shadow, no
reason codes, no log; ``async`` endpoints (no thread-pool hop), the faster of FastAPI's two
styles. Each worker fits its model at start (a fraction of a second).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
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


# The issue's model: the same logistic regression, fitted on a DataFrame with the features' names
FRAME_MODEL = LogisticRegression(max_iter=5000).fit(pd.DataFrame(MATRIX, columns=NAMES), Y)


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


def coded(features: dict[str, Any]) -> list[float]:
    return [CODES[n].get(features[n], -1.0) if n in CODES else features[n] for n in NAMES]


def frame_score(features: dict[str, Any]) -> float:
    """The issue's stack: ``predict_proba`` on the request as a one-row DataFrame."""
    return float(FRAME_MODEL.predict_proba(pd.DataFrame([coded(features)], columns=NAMES))[0, 1])


def lean_score(features: dict[str, Any]) -> float:
    """The lean stand-in: ``predict_proba`` on one numpy row."""
    return float(MODEL.predict_proba(np.array([coded(features)]))[0, 1])


app = FastAPI()
lean_app = FastAPI()


def answer(request: ScoreRequest, p: float) -> dict[str, Any]:
    decision = "decline" if p >= 0.5 else "approve"
    return {"request_id": request.request_id, "score": p, "decision": decision}


@app.post("/v1/models/{name}/score")
async def score(name: str, request: ScoreRequest) -> dict[str, Any]:
    return answer(request, frame_score(request.features.model_dump()))


@lean_app.post("/v1/models/{name}/score")
async def lean_score_route(name: str, request: ScoreRequest) -> dict[str, Any]:
    return answer(request, lean_score(request.features.model_dump()))
