"""Fuzzing against the published contract (DESIGN.md section 5): schemathesis reads
``/openapi.json`` from the app in-process (ASGI), generates requests for every documented
operation, both valid ones and ones that break the documented constraints, sends them with a
``service`` user's token so the scoring routes are exercised past authentication, and checks that
nothing answers 5xx and that every response conforms to the document: a documented status code,
a documented content type, and a body that matches the documented schema.

The app is built as the ``client`` fixture builds it (the ``served`` German Credit champion).
Schemathesis's ASGI client starts the app's lifespan (decision-log writer, model load) when it
fetches the document; the ``contract`` fixture stops it before the ``served`` fixture's database
goes away.

Generated path parameters almost never name the served model or a logged decision, and the
document cannot say which features a model takes, so besides the freely generated requests each
operation also gets requests with the real model name, version or decision id in the path; valid
scoring requests get a real feature row (their request_id and entity_key stay generated, so they
go through scoring into the decision log), and the outcomes route gets one valid outcome. The
success paths are exercised and checked too, not only the refusals. A few inputs that random
generation reaches only by luck run first, every time, as explicit examples: a NUL in each path
parameter and in the text fields of valid bodies (PostgreSQL cannot store it), and observation
times that leave the calendar once converted to UTC.

One subtest per operation, so a run names every operation that fails, each with schemathesis's
report (the failing check, the response, and a curl reproduction).

Deterministic and bounded: Hypothesis is derandomized (a fixed seed derived from the test), has no
example database, generates at most ``MAX_EXAMPLES`` cases per operation, and has no deadline.
(``schemathesis.pytest.from_fixture`` would run the same loop, but it rewrites
``request.node._nodeid``, which pytest 9 no longer has.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python import asgi

from charter.serving.app import create_app

from .conftest import MODEL, Served

MAX_EXAMPLES = 100
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
FUZZ_SETTINGS = settings(
    derandomize=True,
    database=None,
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
JSON = "application/json"  # the media type of the bodies given here, documented or not
SCORE = "POST /v1/models/{name}/score"
OUTCOMES = "POST /v1/outcomes"
NUL = "a\x00b"  # valid JSON text that PostgreSQL cannot store (SQLite can)
# Valid ISO 8601 times that are before year 1 or after year 9999 once in UTC.
OFF_CALENDAR = ("0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59")


@dataclass(frozen=True)
class Known:
    """Real values for generated requests: path parameters, feature rows of the served model, a
    valid body by operation, and edge-case bodies by operation."""

    path: dict[str, str]
    rows: list[dict[str, Any]]
    bodies: dict[str, Any]
    edges: dict[str, list[Any]]


@pytest.fixture
def contract(served: Served) -> Iterator[schemathesis.BaseSchema]:
    app = create_app(served.registry, refresh_seconds=3600)
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
    finally:
        asgi.shutdown_lifespans()


def known_values(contract: schemathesis.BaseSchema, served: Served) -> Known:
    score = contract.find_operation_by_label(SCORE)
    assert score is not None, "the scoring route is not in /openapi.json"
    first = score.Case(path_parameters={"name": MODEL}, body={"features": served.rows[0]})
    response = first.call(headers=served.headers())
    assert response.status_code == 200, response.text
    decision = response.json()
    decision_id = decision["decision_id"]
    row = served.rows[1]
    return Known(
        path={"name": MODEL, "version": str(decision["version"]), "decision_id": decision_id},
        rows=served.rows[:100],
        bodies={OUTCOMES: {"outcomes": [{"decision_id": decision_id, "label": 1}]}},
        edges={
            SCORE: [
                {"request_id": NUL, "features": row},
                {"entity_key": NUL, "features": row},
                {"instances": [{"features": row}, {"request_id": NUL, "features": row}]},
            ],
            OUTCOMES: [
                {"outcomes": [{"decision_id": NUL, "label": 0}]},
                *(
                    {"outcomes": [{"decision_id": decision_id, "label": 1, "observed_at": t}]}
                    for t in OFF_CALENDAR
                ),
            ],
        },
    )


def edge_cases(operation: schemathesis.APIOperation, known: Known) -> list[schemathesis.Case]:
    """Requests that random generation reaches only by luck, run first every time: a NUL in each
    path parameter, and the operation's edge-case bodies."""
    pinned = {k: v for k, v in known.path.items() if f"{{{k}}}" in operation.path}
    out = [operation.Case(path_parameters={**pinned, k: NUL}) for k in pinned]
    out += [
        operation.Case(path_parameters=pinned, body=body, media_type=JSON)
        for body in known.edges.get(operation.label, [])
    ]
    return out


def with_features(case: schemathesis.Case, row: dict[str, Any]) -> schemathesis.Case:
    """``case`` with its generated feature values replaced by a real row."""
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("features"), dict):
        case.body = {**body, "features": row}
    elif isinstance(body, dict) and isinstance(body.get("instances"), list):
        case.body = {
            **body,
            "instances": [
                {**item, "features": row} if isinstance(item, dict) else item
                for item in body["instances"]
            ],
        }
    return case


def cases(operation: schemathesis.APIOperation, known: Known) -> st.SearchStrategy[Any]:
    """Valid and invalid requests drawn together, as schemathesis's own runner does (an operation
    with nothing to break, no parameters and no body, has no invalid request to draw)."""
    positive, negative = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
    strategies = [operation.as_strategy(generation_mode=m) for m in (positive, negative)]
    pinned = {k: v for k, v in known.path.items() if f"{{{k}}}" in operation.path}
    if pinned:
        valid = operation.as_strategy(generation_mode=positive, path_parameters=pinned)
        if operation.label == SCORE:

            def real_row(drawn: tuple[schemathesis.Case, int]) -> schemathesis.Case:
                case, i = drawn
                return with_features(case, known.rows[i])

            # Row indices, not rows: Hypothesis warns about a strategy with a repr that large.
            valid = st.tuples(valid, st.integers(0, len(known.rows) - 1)).map(real_row)
        invalid = operation.as_strategy(generation_mode=negative, path_parameters=pinned)
        strategies += [valid, invalid]
    if operation.label in known.bodies:
        body = known.bodies[operation.label]
        strategies.append(operation.as_strategy(body=body, media_type=JSON))
    return st.one_of(strategies)


def check_operation(
    operation: schemathesis.APIOperation, known: Known, headers: dict[str, str]
) -> None:
    @FUZZ_SETTINGS
    @given(case=cases(operation, known))
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    for case in edge_cases(operation, known):
        fuzz = example(case=case)(fuzz)
    fuzz()


def test_openapi_contract(
    contract: schemathesis.BaseSchema, served: Served, subtests: pytest.Subtests
) -> None:
    known = known_values(contract, served)
    operations = [result.ok() for result in contract.get_all_operations()]
    for operation in operations:
        with subtests.test(msg=operation.label):
            check_operation(operation, known, served.headers())
