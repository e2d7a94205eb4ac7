"""The dashboard server-side, through FastAPI's TestClient (no browser): sign-in and its cookie,
every page for every role (200 for the right role, 303 or 401 without a sign-in, 403 for the wrong
role), CSRF and origin checks on actions, actions going through the audited services (acknowledge
an alert, a refused approval by the version's own developer), no 500 on bad input, security
headers, and the page times over 1,000 models and a year of daily windows."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from charter import datasets
from charter.clock import ManualClock
from charter.entities import Stage
from charter.monitoring import store as monitor_store
from charter.monitoring.alert_store import AlertStore
from charter.monitoring.alerts import AlertPolicy, Observation
from charter.monitoring.window import WindowResult
from charter.registry.service import Registry
from charter.serving.app import create_app
from charter.storage.artifacts import ArtifactStore
from charter.storage.db import Database
from charter.storage.schema import decisions
from charter.web import auth, charts

from .conftest import MODEL, Served, scorecard
from helpers import record_passing_gates

PEOPLE = {  # username -> roles, as the `people` fixture makes them
    "ada": "admin",
    "dana": "developer",
    "victor": "validator",
    "petra": "approver",
    "otto": "auditor",
}
FEATURES = ("credit_amount", "duration_in_month", "age_in_years")


def synthetic_window(
    model: str,
    version: int,
    day: int,
    *,
    days: int = 1,
    features: tuple[str, ...] = FEATURES,
    start: datetime | None = None,
) -> WindowResult:
    """A stored-shape window result with chosen numbers (the charts draw what is stored)."""
    s = (start or datetime(2026, 1, 1, tzinfo=UTC)) + timedelta(days=day * days)
    e = s + timedelta(days=days)
    dims: dict[str, dict[str, Any]] = {
        "performance": {"judged": True, "labelled": 100, "auc": 0.75 - 0.0001 * day},
        "estimated": {"auc": 0.74, "auc_low": 0.72, "auc_high": 0.76},
        "data_drift": {
            "features": [
                {"feature": f, "psi": 0.02 + (0.3 if j == 0 and day > 2 else 0.0), "p_value": 0.5}
                for j, f in enumerate(features)
            ],
            "features_drifted": 1 if day > 2 else 0,
        },
        "prediction": {
            "score_mean": 0.3,
            "score_p50": 0.25,
            "score_p90": 0.6,
            "approval_rate": 0.7,
            "score_psi": 0.01 * day,
        },
        "data_quality": {"features": []},
        "operations": {
            "volume": 100 + day,
            "latency_p50_ms": 1.0,
            "latency_p95_ms": 2.0,
            "latency_p99_ms": 3.0,
        },
        "business": {},
    }
    return WindowResult(model, version, s, e, e, 100 + day, "matured", {}, dims)


@dataclass
class Dash:
    client: TestClient
    served: Served
    tokens: dict[str, str]
    alert_id: int
    decision_id: str
    in_validation: int

    @property
    def registry(self) -> Registry:
        return self.served.registry

    def sign_in(self, username: str) -> None:
        self.client.cookies.clear()
        self.client.cookies.set(auth.SESSION_COOKIE, self.tokens[username])

    def csrf(self, username: str) -> str:
        return auth.csrf_token(self.tokens[username])


@pytest.fixture
def dash(served: Served, client: TestClient) -> Iterator[Dash]:
    reg, people = served.registry, served.people
    tokens = {u: reg.identity.issue_token(people.admin, u) for u in PEOPLE}
    tokens["los"] = served.token  # the scoring system's service token
    r = client.post(
        f"/v1/models/{MODEL}/score", json={"features": served.rows[0]}, headers=served.headers()
    )
    assert r.status_code == 200, r.text
    bot = reg.identity.actor("charter-automation")
    for day in range(5):
        monitor_store.save_window(reg.db, bot, synthetic_window(MODEL, 1, day), clock=reg.clock)
    s, e = datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 6, tzinfo=UTC)
    AlertStore(reg.db, reg.clock).apply_window(
        [
            Observation(
                metric="feature_psi",
                value=0.32,
                feature="credit_amount",
                model=MODEL,
                version=1,
                window_start=s,
                window_end=e,
            )
        ],
        AlertPolicy.default(),
    )
    alert = AlertStore(reg.db, reg.clock).list_alerts(model=MODEL)[0]
    X, y = datasets.german_credit_xy()
    v = reg.log_model(
        people.dev, MODEL, scorecard(0.3), X=X, y=y, dataset_id="gc", fit=True, threshold=0.5
    )
    record_passing_gates(reg, people.dev, MODEL, v.version, X=X, y=y)
    reg.transition(people.dev, MODEL, v.version, "validation")
    client.cookies.clear()
    yield Dash(client, served, tokens, alert.id, r.json()["decision_id"], v.version)


def pages(d: Dash) -> list[str]:
    m = quote(MODEL)
    return [
        "/ui/",
        f"/ui/models/{m}",
        f"/ui/models/{m}/versions/1",
        f"/ui/models/{m}/versions/{d.in_validation}",
        f"/ui/models/{m}/monitoring",
        f"/ui/models/{m}/experiments",
        f"/ui/models/{m}/versions/1/documents/model-card",
        f"/ui/models/{m}/versions/1/documents/validation",
        "/ui/documents/mrm",
        "/ui/alerts",
        f"/ui/alerts/{d.alert_id}",
        "/ui/audit",
        f"/ui/audit?model={m}&action=alias.*&at_model={m}&at_time=2030-01-01",
        f"/ui/decisions?id={d.decision_id}",
        f"/ui/decisions?model={m}&decision=approve",
    ]


# ------------------------------------------------------------------------------------ sign-in
def test_every_page_redirects_to_sign_in_without_a_session(dash: Dash) -> None:
    for path in pages(dash):
        r = dash.client.get(path, follow_redirects=False)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/ui/login?next=%2Fui%2F"), path
    dash.client.cookies.set(auth.SESSION_COOKIE, "chr_bogus")
    r = dash.client.get("/ui/", follow_redirects=False)
    assert r.status_code == 303 and "charter_session=" in r.headers["set-cookie"]  # cleared
    dash.client.cookies.clear()
    for path in (
        f"/ui/alerts/{dash.alert_id}/acknowledge",
        "/ui/logout",
        f"/ui/models/{MODEL}/versions/{dash.in_validation}/decide",
    ):
        r = dash.client.post(path, data={"csrf": "x"}, follow_redirects=False)
        assert r.status_code == 401, path
        assert "Sign-in needed" in r.text


def test_sign_in_sets_a_strict_http_only_cookie_and_goes_where_it_was_asked(dash: Dash) -> None:
    c = dash.client
    r = c.get("/ui/login?next=/ui/alerts")
    assert r.status_code == 200 and 'name="token"' in r.text
    csrf = c.cookies.get(auth.LOGIN_CSRF_COOKIE)
    assert csrf and f'value="{csrf}"' in r.text
    form = {"token": dash.tokens["victor"], "csrf": csrf, "next": "/ui/alerts"}
    r = c.post("/ui/login", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/alerts"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("charter_session="))
    low = cookie.lower()
    assert "httponly" in low and "samesite=strict" in low and "path=/ui" in low
    assert "secure" not in low  # plain http on the test server; set over https
    r = c.get("/ui/alerts")
    assert r.status_code == 200 and 'data-user="victor"' in r.text
    # signing out needs the session's CSRF token, then the cookie is gone
    assert c.post("/ui/logout", data={"csrf": "nope"}).status_code == 403
    r = c.post("/ui/logout", data={"csrf": dash.csrf("victor")}, follow_redirects=False)
    assert r.status_code == 303
    c.cookies.clear()
    assert c.get("/ui/", follow_redirects=False).status_code == 303


def test_sign_in_refuses_a_bad_token_a_service_token_a_forged_form_and_an_open_redirect(
    dash: Dash,
) -> None:
    c = dash.client
    c.get("/ui/login")
    csrf = c.cookies.get(auth.LOGIN_CSRF_COOKIE)
    r = c.post("/ui/login", data={"token": "chr_wrong", "csrf": csrf})
    assert r.status_code == 401 and "not valid" in r.text
    c.get("/ui/login")
    csrf = c.cookies.get(auth.LOGIN_CSRF_COOKIE)
    r = c.post("/ui/login", data={"token": dash.tokens["los"], "csrf": csrf})
    assert r.status_code == 403 and "service token" in r.text
    r = c.post("/ui/login", data={"token": dash.tokens["ada"], "csrf": "forged"})
    assert r.status_code == 403 and auth.SESSION_COOKIE not in r.headers.get("set-cookie", "")
    c.get("/ui/login")
    csrf = c.cookies.get(auth.LOGIN_CSRF_COOKIE)
    form = {"token": dash.tokens["ada"], "csrf": csrf, "next": "//evil.example/ui"}
    r = c.post("/ui/login", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/"
    assert auth.safe_next("https://evil.example/") == "/ui/"
    assert auth.safe_next("/ui/models/x?y=1") == "/ui/models/x?y=1"


# -------------------------------------------------------------------------------------- roles
@pytest.mark.parametrize("username", sorted(PEOPLE))
def test_every_page_opens_for_each_person_with_a_role(dash: Dash, username: str) -> None:
    dash.sign_in(username)
    for path in pages(dash):
        r = dash.client.get(path)
        if path.startswith("/ui/decisions") and username == "dana":
            assert r.status_code == 403, path  # a developer does not read applicants' data
            assert "applicant data" in r.text
            continue
        assert r.status_code == 200, (path, r.text[:2000])
        assert r.headers["content-type"].startswith("text/html")


def test_a_service_token_may_not_use_the_dashboard(dash: Dash) -> None:
    dash.sign_in("los")
    for path in pages(dash):
        r = dash.client.get(path)
        assert r.status_code == 403, path
        assert "Not permitted" in r.text


def test_pages_show_the_record(dash: Dash) -> None:
    dash.sign_in("victor")
    c = dash.client
    inv = c.get("/ui/").text
    assert "1 model in production: 1 high, 0 medium, 0 low risk." in inv
    assert f'data-model="{MODEL}"' in inv and "sev-critical" in inv  # the open PSI alert
    assert "gc-scorecard" in c.get("/ui/?q=analytics").text  # search by team
    assert "No model matches" in c.get("/ui/?tier=low").text
    model = c.get(f"/ui/models/{MODEL}").text
    assert 'data-version="1"' in model and "champion" in model and "version.submit" in model
    version = c.get(f"/ui/models/{MODEL}/versions/1").text
    v1 = dash.registry.get_version(MODEL, 1)
    assert v1.artifact_sha256 in version and v1.training_data is not None
    assert v1.training_data.content_hash in version and "Gate run #" in version
    mon = c.get(f"/ui/models/{MODEL}/monitoring").text
    assert mon.count('class="chart heatmap"') == 1
    assert charts.BAND_COLOURS["critical"] in mon and charts.BAND_COLOURS["stable"] in mon
    assert (
        mon.count('class="chart timeseries"') == 6 and "no data" not in mon.split("Open alerts")[0]
    )
    exp = c.get(f"/ui/models/{MODEL}/experiments").text
    assert "No champion/challenger experiment" in exp and "v1 answers 100.0%" in exp
    decision = c.get(f"/ui/decisions?id={dash.decision_id}").text
    assert f'data-decision="{dash.decision_id}"' in decision and "Reproduced" in decision
    audit_page = c.get(f"/ui/audit?at_model={MODEL}&at_time=2099-01-01T00:00:00Z").text
    assert "Chain verified" in audit_page and "<strong>v1</strong> held champion" in audit_page


def test_a_model_without_windows_says_so_rather_than_drawing(dash: Dash) -> None:
    dash.registry.create_model(
        dash.served.people.dev,
        name="empty-model",
        purpose="PD",
        business_use="x",
        decision_type="credit",
        owner="o",
        team="t",
        risk_tier="low",
    )
    dash.sign_in("otto")
    r = dash.client.get("/ui/models/empty-model/monitoring")
    assert r.status_code == 200 and "No monitoring window has been computed" in r.text
    assert "<svg" not in r.text
    r = dash.client.get("/ui/models/empty-model")
    assert "No version registered yet" in r.text and "not in production" in r.text


# ------------------------------------------------------------------------------------ actions
def test_acknowledge_goes_through_the_alert_store_with_csrf_and_roles(dash: Dash) -> None:
    c, aid = dash.client, dash.alert_id
    url = f"/ui/alerts/{aid}/acknowledge"
    dash.sign_in("victor")
    assert c.post(url, data={"note": "x"}).status_code == 403  # no CSRF token
    r = c.post(url, data={"csrf": dash.csrf("victor")}, headers={"origin": "https://evil.example"})
    assert r.status_code == 403 and "another site" in r.text
    dash.sign_in("otto")  # an auditor reads, never acts (the alert store refuses)
    r = c.post(url, data={"csrf": dash.csrf("otto"), "note": "x"})
    assert r.status_code == 403 and "otto may not acknowledge alerts" in r.text
    dash.sign_in("victor")
    form = {"csrf": dash.csrf("victor"), "note": "looking at it", "next": "/ui/alerts"}
    r = c.post(url, data=form, headers={"origin": "http://testserver"}, follow_redirects=False)
    assert (
        r.status_code == 303
        and r.headers["location"] == f"/ui/alerts?done=acknowledged&alert={aid}"
    )
    assert f"Alert #{aid} acknowledged" in c.get(r.headers["location"]).text
    a = AlertStore(dash.registry.db).get(aid)
    assert a.status == "acknowledged" and a.acknowledged_by == "victor"
    ev = dash.registry.audit_log(action="alert.acknowledged")[-1]
    assert ev.actor == "victor" and ev.payload["note"] == "looking at it"
    r = c.post(url, data={"csrf": dash.csrf("victor")})
    assert r.status_code == 409 and "acknowledged already by victor" in r.text
    r = c.post(f"/ui/alerts/{aid}/resolve", data={"csrf": dash.csrf("victor"), "note": ""})
    assert r.status_code == 422 and "needs a note" in r.text
    r = c.post(
        f"/ui/alerts/{aid}/resolve",
        data={"csrf": dash.csrf("victor"), "note": "retrained; ticket 42"},
    )
    assert r.status_code == 200 and AlertStore(dash.registry.db).get(aid).status == "resolved"


def test_the_developer_is_refused_approving_her_own_version_and_it_is_audited(
    dash: Dash,
) -> None:
    v = dash.in_validation
    url = f"/ui/models/{MODEL}/versions/{v}/decide"
    dash.sign_in("dana")
    page = dash.client.get(f"/ui/models/{MODEL}/versions/{v}").text
    assert 'id="decide"' in page  # offered, and refused by the registry, not hidden
    r = dash.client.post(url, data={"csrf": dash.csrf("dana"), "decision": "approved"})
    assert r.status_code == 403
    assert "dana developed this version and so may not approve it" in r.text
    assert "segregation of duties" in r.text
    denied = dash.registry.audit_log(action="denied")[-1]
    assert denied.actor == "dana" and denied.payload["attempted"] == "version.decide.approved"
    assert dash.registry.get_version(MODEL, v).stage is Stage.VALIDATION
    dash.sign_in("otto")
    assert 'id="decide"' not in dash.client.get(f"/ui/models/{MODEL}/versions/{v}").text


def test_an_approver_decides_through_the_registry(dash: Dash) -> None:
    v = dash.in_validation
    dash.registry.record_validation(
        dash.served.people.val, MODEL, v, outcome="pass", summary="independent validation"
    )
    dash.sign_in("petra")
    url = f"/ui/models/{MODEL}/versions/{v}/decide"
    r = dash.client.post(
        url, data={"csrf": dash.csrf("petra"), "decision": "approved_with_conditions"}
    )
    assert r.status_code == 422 and "needs at least one condition" in r.text
    form = {
        "csrf": dash.csrf("petra"),
        "decision": "approved_with_conditions",
        "conditions": "Monitor PSI monthly\r\nRecalibrate by Q3",
        "comment": "ok\nwith care",
    }
    r = dash.client.post(url, data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("?done=decided")
    assert dash.registry.get_version(MODEL, v).stage is Stage.APPROVED
    approval = dash.registry.list_approvals(MODEL, v)[-1]
    assert approval.approver == "petra"
    assert approval.conditions == ("Monitor PSI monthly", "Recalibrate by Q3")


# ---------------------------------------------------------------------------------- bad input
def test_bad_input_is_a_page_with_a_4xx_never_a_500(dash: Dash) -> None:
    dash.sign_in("ada")
    c = dash.client
    cases = {
        "/ui/models/NOPE": 404,
        "/ui/models/no-such-model": 404,
        "/ui/models/%00": 404,
        f"/ui/models/{MODEL}/versions/0": 422,
        f"/ui/models/{MODEL}/versions/abc": 422,
        f"/ui/models/{MODEL}/versions/99": 404,
        f"/ui/models/{MODEL}/versions/99999999999999999999": 422,
        f"/ui/models/{MODEL}/versions/1/documents/pdf": 422,
        f"/ui/models/{MODEL}/monitoring?range=forever": 422,
        "/ui/alerts/0": 422,
        "/ui/alerts/999999": 404,
        "/ui/alerts/-1": 422,
        "/ui/alerts?status=burning": 422,
        "/ui/alerts?severity=%00": 422,
        "/ui/?tier=extreme": 422,
        "/ui/?page=-3": 422,
        "/ui/?page=x": 422,
        "/ui/?q=" + "x" * 500: 422,
        "/ui/decisions?id=" + "x" * 80: 422,
        "/ui/decisions?id=not-a-decision": 404,
        "/ui/decisions?version=x": 422,
        "/ui/decisions?decision=maybe": 422,
        "/ui/decisions?variant=%00": 422,
        "/ui/decisions?since=yesterday": 422,
        "/ui/decisions?before=nonsense": 422,
        "/ui/decisions?model=%00": 422,
        f"/ui/models/{MODEL}/experiments/nope/analysis": 404,
        "/ui/audit?since=yesterday": 422,
        "/ui/audit?until=99999-01-01": 422,
        "/ui/audit?at_model=nope&at_time=2026-01-01": 404,
        "/ui/audit?at_model=" + MODEL + "&at_time=never": 422,
        "/ui/audit?verify=2": 422,
        "/ui/audit?before=x": 422,
        "/ui/audit?before=0": 422,
    }
    for path, status in cases.items():
        r = c.get(path)
        assert r.status_code == status, (path, r.status_code, r.text[:500])
        assert r.headers["content-type"].startswith("text/html"), path
    posts = {
        "/ui/alerts/abc/acknowledge": 422,
        f"/ui/alerts/{dash.alert_id}/frobnicate": 404,
        f"/ui/models/{MODEL}/versions/1/decide": 409,  # v1 is not in validation
    }
    for path, status in posts.items():
        r = c.post(path, data={"csrf": dash.csrf("ada"), "decision": "approved"})
        assert r.status_code == status, (path, r.status_code, r.text[:500])
    r = c.post(
        f"/ui/models/{MODEL}/versions/{dash.in_validation}/decide",
        data={"csrf": dash.csrf("ada"), "decision": "maybe"},
    )
    assert r.status_code == 422
    r = c.post(
        f"/ui/alerts/{dash.alert_id}/acknowledge",
        content=b'{"csrf": 1}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422 and "form posts only" in r.text
    r = c.post(
        f"/ui/alerts/{dash.alert_id}/acknowledge",
        content=b"x" * 70_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 422


def test_the_decision_log_lists_newest_first_with_filters_and_pages(dash: Dash) -> None:
    c = dash.client
    served = dash.served
    ids = [dash.decision_id]
    for i in range(1, 56):
        r = c.post(
            f"/v1/models/{MODEL}/score",
            json={"entity_key": f"applicant-{i}", "features": served.rows[i]},
            headers=served.headers(),
        )
        assert r.status_code == 200, r.text
        ids.append(r.json()["decision_id"])
    dash.sign_in("victor")
    page = c.get("/ui/decisions").text
    listed = re.findall(r'data-listed="([^"]+)"', page)
    assert listed == ids[::-1][:50]  # newest first, 50 a page
    older = re.search(r'rel="next" href="/ui/decisions\?([^"]+)"', page)
    assert older is not None
    rest = re.findall(r'data-listed="([^"]+)"', c.get("/ui/decisions?" + unescape(older[1])).text)
    assert rest == ids[::-1][50:]
    declines = c.get(f"/ui/decisions?model={MODEL}&decision=decline").text
    shown = set(re.findall(r'data-listed="([^"]+)"', declines))
    with dash.registry.db.read() as conn:
        want = {
            r.id
            for r in conn.execute(select(decisions.c.id).where(decisions.c.decision == "decline"))
        }
    assert shown == want and 0 < len(want) < 56
    one = c.get("/ui/decisions?entity=applicant-7").text
    assert re.findall(r'data-listed="([^"]+)"', one) == [ids[7]]
    assert f'href="/ui/decisions?id={ids[7]}"' in one
    assert "No logged decision matches" in c.get("/ui/decisions?since=2099-01-01").text
    dash.sign_in("dana")  # a developer may not see applicants' data
    assert c.get("/ui/decisions").status_code == 403


# ---------------------------------------------------------------------------------- hardening
def test_pages_carry_security_headers_and_ask_for_nothing_outside(dash: Dash) -> None:
    dash.sign_in("ada")
    for path in pages(dash):
        r = dash.client.get(path)
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp, path
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["x-content-type-options"] == "nosniff"
        body = r.text
        assert "<script" not in body, path
        urls = re.findall(r'(?:src|href|action)="([^"]*)"', body)
        assert all(not u.startswith(("http:", "https:", "//")) for u in urls), (path, urls)
    css = dash.client.get("/ui/static/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "url(" not in css.text and "@import" not in css.text


def test_the_dashboard_is_not_part_of_the_openapi_contract(dash: Dash) -> None:
    paths = dash.client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/ui")]


def test_series_many_reads_what_series_reads(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 's.db'}")
    db.upgrade()
    clock = ManualClock(datetime(2027, 1, 3, tzinfo=UTC), step=timedelta(milliseconds=1))
    reg = Registry(db, ArtifactStore(tmp_path / "artifacts"), clock=clock)
    reg.identity.bootstrap_admin("ada")
    bot = reg.identity.actor("charter-automation")
    for day in range(12):
        for version in (1, 2):
            window = synthetic_window("m", version, day)
            monitor_store.save_window(db, bot, window, clock=clock)
    monitor_store.save_window(db, bot, synthetic_window("other", 1, 0), clock=clock)
    after = datetime(2026, 1, 5, 12, tzinfo=UTC)
    for cut in (None, after):
        many = monitor_store.series_many(db, "m", ("volume", "feature_psi", "auc"), after=cut)
        keys = {("volume", ""), ("auc", "")} | {("feature_psi", f) for f in FEATURES}
        assert set(many) == keys
        for metric, feature in keys:
            one = monitor_store.series(db, "m", metric, feature=feature)
            want = [p for p in one if cut is None or p[2] > cut]
            assert sorted(many[(metric, feature)]) == sorted(want) and want
    db.dispose()


def test_the_heat_map_merges_runs_of_one_band() -> None:
    day = datetime(2026, 1, 1, tzinfo=UTC)
    cols = [
        charts.Column(day + timedelta(days=i), day + timedelta(days=i + 1), 1) for i in range(365)
    ]
    values = {("a", i): 0.01 for i in range(365)} | {
        ("b", i): 0.3 if i > 100 else 0.12 for i in range(365)
    }
    svg = charts.psi_heatmap(["a", "b"], cols, values)
    cells = re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="14"', svg)
    assert len(cells) == 3  # a: one stable run; b: a warning run, then a critical one
    assert "b: 2026-01-01 to 2026-04-12: max PSI 0.120" in svg
    assert charts.psi_band(0.1) == "warning" and charts.psi_band(0.25) == "critical"
    assert charts.psi_band(float("nan")) == "none" and charts.psi_band(0.0999) == "stable"
    assert "no monitoring windows yet" in charts.psi_heatmap([], [], {})


# ---------------------------------------------------------------------------------- at scale
@pytest.mark.slow
def test_pages_stay_fast_with_1000_models_and_a_year_of_daily_windows(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'scale.db'}")
    db.upgrade()
    clock = ManualClock(datetime(2027, 1, 3, tzinfo=UTC), step=timedelta(milliseconds=1))
    reg = Registry(db, ArtifactStore(tmp_path / "artifacts"), clock=clock)
    _, token = reg.identity.bootstrap_admin("ada")
    ada = reg.identity.actor("ada")
    for i in range(1000):
        reg.create_model(
            ada,
            name=f"model-{i:04d}",
            purpose="PD",
            business_use="approve or decline",
            decision_type="credit",
            owner=f"owner {i % 7}",
            team="risk",
            risk_tier=("high", "medium", "low")[i % 3],
        )
    bot = reg.identity.actor("charter-automation")
    feats = tuple(f"feature_{j:02d}" for j in range(15))
    for day in range(365):
        monitor_store.save_window(
            db, bot, synthetic_window("model-0000", 1, day, features=feats), clock=clock
        )
    app = create_app(reg, refresh_seconds=3600, canary_seconds=0)
    limits = {  # seconds, generous for a loaded CI machine; measured ~0.1 s, ~0.5 s, ~0.2 s
        "/ui/": 2.0,
        "/ui/?q=owner+3&tier=high": 2.0,
        "/ui/?page=10": 2.0,
        "/ui/models/model-0000": 2.0,
        "/ui/models/model-0000/monitoring?range=all": 4.0,
        "/ui/audit": 3.0,
        "/ui/alerts": 2.0,
    }
    try:
        with TestClient(app) as c:
            c.cookies.set(auth.SESSION_COOKIE, token)
            for path, limit in limits.items():
                c.get(path)  # warm
                t = time.perf_counter()
                r = c.get(path)
                elapsed = time.perf_counter() - t
                assert r.status_code == 200, path
                assert elapsed < limit, f"{path} took {elapsed:.2f} s (limit {limit} s)"
            inv = c.get("/ui/").text
            assert "1000 models in the inventory" in inv and "page 1 of 10" in inv
            assert inv.count("<tr data-model=") == 100
            mon = c.get("/ui/models/model-0000/monitoring?range=all").text
            assert "365 windows" in mon and len(mon) < 400_000
            # the audit explorer pages through every event, newest first, none twice
            seqs: list[int] = []
            path = "/ui/audit?action=model.*"
            while True:
                page = c.get(path).text
                seqs += [int(v) for v in re.findall(r'<tr data-seq="(\d+)"', page)]
                older = re.search(r'rel="next" href="([^"]+)"', page)
                if older is None:
                    break
                path = unescape(older[1])
            want = [e.seq for e in reg.audit_log(action="model.*", newest_first=True)]
            assert seqs == want and len(want) >= 1000
    finally:
        db.dispose()
