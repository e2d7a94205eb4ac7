"""The scoring service over HTTP: decisions, the durable log, validation, auth, reloads."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from charter.serving.app import create_app
from charter.storage.schema import decisions, outcomes, shadow_scores

from .conftest import MODEL, Served, add_version


def count(served: Served, table: Any = decisions) -> int:
    with served.registry.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar())


def score(client: TestClient, served: Served, body: Any, **kw: Any) -> Any:
    return client.post(f"/v1/models/{MODEL}/score", json=body, headers=served.headers(), **kw)


def test_score_logs_before_answering(client: TestClient, served: Served) -> None:
    r = score(client, served, {"request_id": "r1", "entity_key": "a1", "features": served.rows[0]})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["model"] == MODEL and d["version"] == 1 and d["variant"] == "champion"
    assert 0 < d["score"] < 1 and d["decision"] in ("approve", "decline")
    assert d["duplicate"] is False and count(served) == 1
    assert 1 <= len(d["reason_codes"]) <= 4
    assert all(rc["contribution"] > 0 for rc in d["reason_codes"])
    got = client.get(f"/v1/decisions/{d['decision_id']}", headers=served.headers()).json()
    assert (
        got["score"] == d["score"]
        and got["inputs"]["age_in_years"] == served.rows[0]["age_in_years"]
        and got["outcome"] is None
    )


def test_decisions_are_listed_newest_first_with_filters_and_pages(
    client: TestClient, served: Served
) -> None:
    ids = []
    for i in range(12):
        body = {"entity_key": f"a{i % 3}", "features": served.rows[i]}
        ids.append(score(client, served, body).json()["decision_id"])
    h = served.headers()
    got, before = [], None
    while True:
        params: dict[str, Any] = {"limit": 5, **({"before": before} if before else {})}
        r = client.get("/v1/decisions", params=params, headers=h)
        assert r.status_code == 200, r.text
        page = r.json()
        got += [d["decision_id"] for d in page["decisions"]]
        before = page["next_before"]
        if before is None:
            break
    assert got == ids[::-1]
    first = client.get("/v1/decisions", params={"limit": 1}, headers=h).json()["decisions"][0]
    assert first["decision_id"] == ids[-1] and first["inputs"] == served.rows[11]
    mine = client.get("/v1/decisions", params={"entity_key": "a1"}, headers=h).json()
    assert [d["decision_id"] for d in mine["decisions"]] == ids[1::3][::-1]
    declined = client.get(
        "/v1/decisions", params={"model": MODEL, "decision": "decline"}, headers=h
    ).json()["decisions"]
    assert all(d["decision"] == "decline" for d in declined)
    later = client.get("/v1/decisions", params={"since": "2999-01-01T00:00:00"}, headers=h)
    assert later.json() == {"decisions": [], "next_before": None}
    for bad, field in (
        ({"limit": 0}, "limit"),
        ({"decision": "maybe"}, "decision"),
        ({"since": "yesterday"}, "since"),
        ({"until": "0001-01-01T00:00:00+01:00"}, "until"),  # out of range once in UTC
        ({"before": "nonsense"}, "before"),
        ({"model": "a\x00b"}, "model"),
    ):
        r = client.get("/v1/decisions", params=bad, headers=h)
        assert r.status_code == 422, (bad, r.text)
        assert field in r.text
    assert client.get("/v1/decisions").status_code == 401


def test_score_equals_the_model(client: TestClient, served: Served) -> None:
    import pandas as pd

    model = served.registry.load_model(MODEL, 1)
    for i in range(0, 1000, 97):
        d = score(client, served, {"features": served.rows[i]}).json()
        expected = model.predict_proba(pd.DataFrame([served.rows[i]]))[0, 1]
        assert abs(d["score"] - expected) < 1e-12


def test_repeated_request_id_returns_the_original(client: TestClient, served: Served) -> None:
    body = {"request_id": "same", "entity_key": "a", "features": served.rows[1]}
    first = score(client, served, body).json()
    again = score(client, served, {**body, "features": served.rows[2]}).json()
    assert again["decision_id"] == first["decision_id"] and again["duplicate"] is True
    assert again["score"] == first["score"] and count(served) == 1


def test_batch(client: TestClient, served: Served) -> None:
    body = {"instances": [{"request_id": f"b{i}", "features": served.rows[i]} for i in range(25)]}
    r = score(client, served, body)
    assert r.status_code == 200 and len(r.json()["results"]) == 25 and count(served) == 25


BAD: list[tuple[str, bytes, int, str]] = [
    ("malformed", b'{"features": {', 400, "body"),
    ("not an object", b"[1, 2]", 422, "body"),
    ("NaN token", b'{"features": {"age_in_years": NaN}}', 400, "body"),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, 400, "body"),
    ("not utf-8", b'{"features": "\xff"}', 400, "body"),
]


@pytest.mark.parametrize(("name", "raw", "status", "field"), BAD, ids=[b[0] for b in BAD])
def test_unparseable_bodies(
    client: TestClient, served: Served, name: str, raw: bytes, status: int, field: str
) -> None:
    r = client.post(
        f"/v1/models/{MODEL}/score",
        content=raw,
        headers={**served.headers(), "content-type": "application/json"},
    )
    assert r.status_code == status, (name, r.text)
    assert r.json()["error"]["field"] == field and count(served) == 0


def _with(row: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = dict(row)
    for k, v in changes.items():
        if v is _DROP:
            out.pop(k)
        else:
            out[k] = v
    return out


_DROP = object()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"age_in_years": "forty"}, "features.age_in_years"),
        ({"age_in_years": True}, "features.age_in_years"),
        ({"age_in_years": 35.5}, "features.age_in_years"),
        ({"credit_amount": 1e12}, "features.credit_amount"),
        ({"age_in_years": _DROP}, "features.age_in_years"),
        ({"age_in_years": None}, "features.age_in_years"),
        ({"purpose": "yacht"}, "features.purpose"),
        ({"purpose": 3}, "features.purpose"),
        ({"shoe_size": 44}, "features.shoe_size"),
        ({"purpose": "x" * 5000}, "features.purpose"),
    ],
)
def test_invalid_features_name_the_field(
    client: TestClient, served: Served, change: dict[str, Any], field: str
) -> None:
    r = score(client, served, {"features": _with(served.rows[0], **change)})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == field and err["remedy"] and count(served) == 0
    assert err["details"]["errors"][0]["field"] == field


def test_overflowing_number_lone_surrogate_and_huge_body(
    client: TestClient, served: Served
) -> None:
    base = json.dumps({"features": served.rows[0]})
    overflow = base.replace(
        f'"age_in_years": {served.rows[0]["age_in_years"]}', '"age_in_years": 1e400'
    )
    assert overflow != base
    h = {**served.headers(), "content-type": "application/json"}
    r = client.post(f"/v1/models/{MODEL}/score", content=overflow.encode(), headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "features.age_in_years"
    huge = overflow.replace("1e400", "1" + "0" * 400)  # an integer no float can hold
    r = client.post(f"/v1/models/{MODEL}/score", content=huge.encode(), headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "features.age_in_years"
    surrogate = base.replace('"purpose": "', '"purpose": "\\ud800', 1)
    r = client.post(f"/v1/models/{MODEL}/score", content=surrogate.encode(), headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "features.purpose"
    r = client.post(f"/v1/models/{MODEL}/score", content=b" " * 10_000_001, headers=h)
    assert r.status_code == 413
    r = score(client, served, {"features": served.rows[0], "extra": 1})
    assert r.status_code == 422 and r.json()["error"]["field"] == "extra"
    r = score(client, served, {"request_id": "", "features": served.rows[0]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "request_id"
    assert count(served) == 0


def test_auth(client: TestClient, served: Served) -> None:
    r = client.post(f"/v1/models/{MODEL}/score", json={"features": served.rows[0]})
    assert r.status_code == 401 and r.json()["error"]["field"] == "Authorization"
    r = client.post(
        f"/v1/models/{MODEL}/score",
        json={"features": served.rows[0]},
        headers={"Authorization": "Bearer chr_nope"},
    )
    assert r.status_code == 401
    dev_token = served.registry.identity.issue_token(served.people.admin, "dana")
    r = client.post(
        f"/v1/models/{MODEL}/score",
        json={"features": served.rows[0]},
        headers={"Authorization": f"Bearer {dev_token}"},
    )
    assert r.status_code == 403 and count(served) == 0
    assert client.get("/v1/models/nope", headers=served.headers()).status_code == 404


def test_outcomes_are_idempotent(client: TestClient, served: Served) -> None:
    ids = [
        score(client, served, {"features": served.rows[i]}).json()["decision_id"] for i in range(3)
    ]
    body = {"outcomes": [{"decision_id": d, "label": i % 2} for i, d in enumerate(ids)]}
    h = served.headers()
    assert client.post("/v1/outcomes", json=body, headers=h).json() == {
        "recorded": 3,
        "unchanged": 0,
    }
    assert client.post("/v1/outcomes", json=body, headers=h).json() == {
        "recorded": 0,
        "unchanged": 3,
    }
    flip = {"outcomes": [{"decision_id": ids[0], "label": 1}]}
    r = client.post("/v1/outcomes", json=flip, headers=h)
    assert r.status_code == 409 and r.json()["error"]["field"] == "outcomes[0].label"
    r = client.post(
        "/v1/outcomes", json={"outcomes": [{"decision_id": "nope", "label": 1}]}, headers=h
    )
    assert r.status_code == 404
    r = client.post(
        "/v1/outcomes", json={"outcomes": [{"decision_id": ids[0], "label": 2}]}, headers=h
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "outcomes[0].label"
    assert count(served, outcomes) == 3
    got = client.get(f"/v1/decisions/{ids[1]}", headers=h).json()
    assert got["outcome"]["label"] == 1


def test_challenger_split_is_sticky_and_shadow_is_logged(served: Served) -> None:
    reg, p = served.registry, served.people
    v2 = add_version(reg, p, c=0.05)
    v3 = add_version(reg, p, c=5.0)
    reg.set_alias(p.app, MODEL, v2, "challenger")
    reg.set_traffic(p.app, MODEL, challenger_share=0.3)
    reg.set_alias(p.dev, MODEL, v3, "shadow")
    with TestClient(create_app(reg, refresh_seconds=3600)) as c:
        seen: dict[str, set[int]] = {}
        for i in range(200):
            key = f"applicant-{i % 50}"
            d = score(c, served, {"entity_key": key, "features": served.rows[i]}).json()
            seen.setdefault(key, set()).add(d["version"])
        assert all(len(v) == 1 for v in seen.values())  # sticky
        share = sum(v == {v2} for v in seen.values()) / len(seen)
        assert 0.1 < share < 0.5
        metrics = c.get("/metrics").text
    assert count(served, shadow_scores) == 200
    with reg.db.read() as conn:
        versions = {r.version for r in conn.execute(select(shadow_scores.c.version))}
        differ = conn.execute(
            select(func.count())
            .select_from(
                shadow_scores.join(decisions, decisions.c.id == shadow_scores.c.decision_id)
            )
            .where(shadow_scores.c.decision != decisions.c.decision)
        ).scalar()
    assert versions == {v3}
    # the counters of the shadow's own series agree with its rows
    from prometheus_client.parser import text_string_to_metric_families

    counts = {
        (s.name, s.labels.get("shadow_version")): s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
        if s.name in ("charter_shadow_scored_total", "charter_shadow_disagreements_total")
    }
    assert counts == {
        ("charter_shadow_scored_total", str(v3)): 200,
        ("charter_shadow_disagreements_total", str(v3)): differ,
    }


def test_versions_with_different_features_serve_the_same_requests(served: Served) -> None:
    """A challenger without one input and a shadow with all of them take the same request: each
    version reads its own features; a name no served version knows is still refused."""
    from charter import datasets

    from helpers import record_passing_gates

    reg, p = served.registry, served.people
    X, y = datasets.german_credit_xy()
    without_age = [c for c in X.columns if c != "age_in_years"]
    pipe = scorecard_without("age_in_years")
    v2 = reg.log_model(p.dev, MODEL, pipe, X=X[without_age], y=y, dataset_id="gc", fit=True)
    record_passing_gates(reg, p.dev, MODEL, v2.version, X=X[without_age], y=y)
    reg.transition(p.dev, MODEL, v2.version, "validation")
    reg.record_validation(p.val, MODEL, v2.version, outcome="pass", summary="ok")
    reg.transition(p.app, MODEL, v2.version, "approved")
    v3 = add_version(reg, p, c=5.0)
    reg.set_alias(p.app, MODEL, v2.version, "challenger")
    reg.set_traffic(p.app, MODEL, challenger_share=0.5)
    reg.set_alias(p.dev, MODEL, v3, "shadow")
    with TestClient(create_app(reg, refresh_seconds=3600)) as c:
        versions = set()
        for i in range(60):
            r = score(c, served, {"entity_key": f"a-{i}", "features": served.rows[i]})
            assert r.status_code == 200, r.text
            versions.add(r.json()["version"])
        assert versions == {1, v2.version}
        bad = score(c, served, {"features": {**served.rows[0], "shoe_size": 42}})
        assert bad.status_code == 422
        assert bad.json()["error"]["field"] == "features.shoe_size"
    assert count(served, shadow_scores) == 60  # the shadow scored every request, age included
    with reg.db.read() as conn:
        logged = [json.loads(r.inputs) for r in conn.execute(select(decisions.c.inputs))]
    assert sum("age_in_years" not in row for row in logged) > 0  # v2 logs only its inputs


def scorecard_without(feature: str) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from charter import datasets

    pre = ColumnTransformer(
        [
            ("num", StandardScaler(),
             [f for f in datasets.GERMAN_CREDIT_NUMERIC if f != feature]),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
             [f for f in datasets.GERMAN_CREDIT_CATEGORICAL if f != feature]),
        ]
    )  # fmt: skip
    return Pipeline([("prep", pre), ("lr", LogisticRegression(max_iter=1000))])


def test_promotion_is_picked_up_and_a_tampered_artifact_is_refused(served: Served) -> None:
    reg, p = served.registry, served.people
    app = create_app(reg, refresh_seconds=3600)
    with TestClient(app) as c:
        runtime = app.state.service.runtime
        v2 = add_version(reg, p, c=0.05)
        reg.set_alias(p.app, MODEL, v2, "champion")
        assert runtime.refresh() == [MODEL]
        assert score(c, served, {"features": served.rows[0]}).json()["version"] == v2
        v3 = add_version(reg, p, c=5.0)
        path = reg.artifacts.path_for(reg.get_version(MODEL, v3).artifact_sha256)
        path.chmod(0o644)
        path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
        reg.set_alias(p.app, MODEL, v3, "champion")
        assert runtime.refresh() == []
        assert score(c, served, {"features": served.rows[0]}).json()["version"] == v2
        ready = c.get("/readyz").json()
        assert MODEL in ready["load_failures"] and "sha256" in ready["load_failures"][MODEL]


def test_unwritable_log_gives_503_and_recovers(
    client: TestClient, served: Served, tmp_path
) -> None:
    from charter.storage.db import Database

    log = client.app.state.service.decision_log
    good = log.db
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the database's folder should be")
    log.db = Database(f"sqlite:///{blocked}/charter.db")
    r = score(client, served, {"request_id": "x", "features": served.rows[0]})
    assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
    log.db.dispose()
    log.db = good
    r = score(client, served, {"request_id": "x", "features": served.rows[0]})
    assert r.status_code == 200 and count(served) == 1


def test_operations_endpoints(client: TestClient, served: Served) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["models"] == [MODEL]
    score(client, served, {"features": served.rows[0]})
    m = client.get("/metrics").text
    labels = 'model="gc-scorecard",status="ok",variant="champion",version="1"'
    assert f"charter_requests_total{{{labels}}} 1.0" in m
    assert "charter_decision_log_rows_total 1.0" in m
    spec = client.get("/openapi.json").json()
    assert (
        "/v1/models/{name}/score" in spec["paths"]
        and "ScoreRequest" in spec["components"]["schemas"]
    )
    listed = client.get("/v1/models", headers=served.headers()).json()
    assert listed["models"][0]["name"] == MODEL


def test_a_model_that_fails_gives_a_json_500_and_logs_nothing(
    client: TestClient, served: Served
) -> None:
    rt = client.app.state.service.runtime.get(MODEL)
    scorer = rt.champion.scorer

    class Broken:
        kind = "broken"

        def score_one(self, row: dict[str, Any]) -> float:
            raise ValueError("matrix is singular")

        def contributions(self, row: dict[str, Any]) -> None:
            return None

        def score_and_reasons(self, row: dict[str, Any]) -> tuple[float, list[Any]]:
            return self.score_one(row), []

    object.__setattr__(rt.champion, "scorer", Broken())
    try:
        r = score(client, served, {"features": served.rows[0]})
    finally:
        object.__setattr__(rt.champion, "scorer", scorer)
    assert r.status_code == 500 and r.json()["error"]["code"] == "scoring_failed"
    assert "singular" in r.json()["error"]["message"] and count(served) == 0


def test_nul_characters_float_labels_and_far_dates_are_refused(
    client: TestClient, served: Served
) -> None:
    r = score(client, served, {"request_id": "a\x00b", "features": served.rows[0]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "request_id"
    d = score(client, served, {"features": served.rows[0]}).json()["decision_id"]
    h = served.headers()
    for bad, field in (
        ({"decision_id": d, "label": 1.0}, "outcomes[0].label"),
        ({"decision_id": d, "label": 1, "observed_at": "0999-01-01"}, "outcomes[0].observed_at"),
        ({"decision_id": d, "label": 1, "observed_at": "9999-12-31T23:59:59-23:59"},
         "outcomes[0].observed_at"),
        ({"decision_id": "a\x00b", "label": 1}, "outcomes[0].decision_id"),
    ):  # fmt: skip
        r = client.post("/v1/outcomes", json={"outcomes": [bad]}, headers=h)
        assert r.status_code == 422 and r.json()["error"]["field"] == field, bad
    assert count(served, outcomes) == 0 and count(served) == 1


def test_the_writer_survives_a_failing_batch(client: TestClient, served: Served) -> None:
    log = client.app.state.service.decision_log
    original = log._insert

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the writer")

    log._insert = broken
    try:
        r = score(client, served, {"request_id": "w1", "features": served.rows[0]})
    finally:
        log._insert = original
    assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
    r = score(client, served, {"request_id": "w1", "features": served.rows[0]})
    assert r.status_code == 200 and count(served) == 1


def test_a_slow_generic_model_is_scored_off_the_event_loop(
    client: TestClient, served: Served
) -> None:
    rt = client.app.state.service.runtime.get(MODEL)
    scorer = rt.champion.scorer

    class Slow:
        """A generic model that takes 0.6 s a request (a big ensemble explained by sampling)."""

        kind = "generic"

        def __getattr__(self, name: str) -> Any:
            return getattr(scorer, name)

        def score_and_reasons(self, row: dict[str, Any]) -> tuple[float, list[Any]]:
            time.sleep(0.6)
            return scorer.score_and_reasons(row)

    object.__setattr__(rt.champion, "scorer", Slow())
    object.__setattr__(rt, "slow", True)  # as loading a generic scorer sets it
    try:
        assert client.app.state.service.runtime.get(MODEL).slow
        slow: list[Any] = []
        t = threading.Thread(
            target=lambda: slow.append(score(client, served, {"features": served.rows[0]}))
        )
        t.start()
        time.sleep(0.15)  # the slow request is being scored now
        started = time.perf_counter()
        assert client.get("/healthz").status_code == 200
        waited = time.perf_counter() - started
        t.join(timeout=30)
    finally:
        object.__setattr__(rt.champion, "scorer", scorer)
        object.__setattr__(rt, "slow", False)
    assert slow[0].status_code == 200 and count(served) == 1
    assert waited < 0.3, f"the event loop was blocked for {waited:.2f} s"
