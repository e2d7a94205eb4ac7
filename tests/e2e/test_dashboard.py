"""The dashboard in a real browser over the demo's data: sign in, the inventory, a model, its
monitoring charts drawn, an alert acknowledged by a validator, a developer refused approving her
own version, a decision found by its id, and the other pages; each page is screenshotted, and
no page asks for anything outside the local server or raises a script error."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from browser import drawn_charts
from charter.entities import Stage
from charter.monitoring.alert_store import AlertStore
from charter.storage.schema import decisions

from .conftest import DemoStore, Tab

pytestmark = pytest.mark.xdist_group("demo")  # shares the session's demo run with test_demo

INVENTORY = ("german-credit-scorecard", "retail-pd")


def clean(tab: Tab, *, console: bool = True) -> None:
    assert tab.blocked == [], f"requests outside the local server: {tab.blocked}"
    assert all(u.startswith(tab.base_url) or u.startswith("data:") for u in tab.requests)
    assert tab.page_errors == []
    if console:  # a CSP violation, for one, is a console error
        assert tab.console_errors == []


def test_sign_in_and_the_inventory(demo_store: DemoStore, open_tab: Callable[[], Tab]) -> None:
    tab = open_tab()
    tab.goto("/ui/")
    assert "/ui/login?next=" in tab.page.url
    tab.shot("01-sign-in")
    tab.page.fill("#token", demo_store.tokens["victor"])
    tab.page.click("form[action='/ui/login'] button[type=submit]")
    tab.page.wait_for_load_state("load")
    assert tab.page.url == tab.base_url + "/ui/"
    rows = tab.page.locator("#inventory tbody tr[data-model]")
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.model)")) == list(INVENTORY)
    headline = tab.page.locator("[data-testid=headline]").inner_text()
    assert "2 models in production: 2 high, 0 medium, 0 low risk." in headline
    retail = tab.page.locator("tr[data-model='retail-pd']")
    assert retail.locator(".sev").inner_text() == "critical"  # the worst open alert
    assert tab.page.locator(".who .user").inner_text() == "victor"
    tab.shot("02-inventory")
    tab.page.fill("input[name=q]", "german")
    tab.page.click("form.filters button[type=submit]")
    tab.page.wait_for_load_state("load")
    assert tab.page.locator("#inventory tbody tr[data-model]").count() == 1
    clean(tab)


def test_a_model_page_with_versions_lineage_and_history(
    demo_store: DemoStore, open_tab: Callable[[], Tab]
) -> None:
    tab = open_tab()
    tab.sign_in(demo_store.tokens["petra"])
    tab.page.click("#inventory a[href='/ui/models/retail-pd']")
    tab.page.wait_for_load_state("load")
    assert tab.page.url.endswith("/ui/models/retail-pd")
    versions = tab.page.locator("#versions tbody tr[data-version]")
    assert versions.evaluate_all("rs => rs.map(r => r.dataset.version)") == ["2", "1"]
    assert "champion" in tab.page.locator("#versions tr[data-version='2']").inner_text()
    timeline = tab.page.locator("#timeline").inner_text()
    assert "canary.promoted" in timeline and "alias.set" in timeline
    tab.shot("03-model")
    tab.page.click("#versions a[href='/ui/models/retail-pd/versions/2']")
    tab.page.wait_for_load_state("load")
    v2 = demo_store.registry.get_version("retail-pd", 2)
    lineage = tab.page.locator("#lineage").inner_text()
    assert v2.artifact_sha256 in lineage and v2.training_data is not None
    assert v2.training_data.content_hash in lineage
    assert str(v2.code_commit) in lineage
    tab.shot("04-version")
    clean(tab)


def test_the_monitoring_page_draws_its_charts(
    demo_store: DemoStore, open_tab: Callable[[], Tab]
) -> None:
    tab = open_tab()
    tab.sign_in(demo_store.tokens["victor"], "/ui/models/retail-pd/monitoring")
    assert tab.page.url.endswith("/ui/models/retail-pd/monitoring")
    charts = drawn_charts(tab.page)
    heat = [c for c in charts if "heatmap" in c.classes]
    assert len(heat) == 1 and heat[0].drawn, heat
    assert heat[0].width > 400 and heat[0].shapes >= 15  # a row of cells per feature at least
    lines = [c for c in charts if "timeseries" in c.classes]
    assert len(lines) == 6
    empty = [c for c in lines if not c.drawn]
    assert not empty, empty
    tab.shot("05-monitoring")
    clean(tab)


def test_a_validator_acknowledges_an_alert(
    demo_store: DemoStore, open_tab: Callable[[], Tab]
) -> None:
    tab = open_tab()
    tab.sign_in(demo_store.tokens["victor"], "/ui/models/retail-pd/monitoring")
    row = tab.page.locator("table.alerts tr[data-status='open']").first
    alert_id = int(row.get_attribute("data-alert") or 0)
    form = row.locator("form[action$='/acknowledge']")
    form.locator("input[name=note]").fill("looking into the income drift (e2e)")
    form.locator("button[type=submit]").click()
    tab.page.wait_for_load_state("load")
    assert f"Alert #{alert_id} acknowledged" in tab.page.locator(".notice").inner_text()
    after = tab.page.locator(f"table.alerts tr[data-alert='{alert_id}']").first
    assert after.get_attribute("data-status") == "acknowledged"
    alert = AlertStore(demo_store.registry.db).get(alert_id)
    assert alert.status == "acknowledged" and alert.acknowledged_by == "victor"
    event = demo_store.registry.audit_log(action="alert.acknowledged")[-1]
    assert event.actor == "victor" and event.subject == str(alert_id)
    tab.shot("06-alert-acknowledged")
    clean(tab)


def test_a_developer_is_refused_approving_her_own_version(
    demo_store: DemoStore, open_tab: Callable[[], Tab]
) -> None:
    reg = demo_store.registry
    v = reg.get_version("german-credit-scorecard", 2)
    assert v.author == "dana" and v.stage is Stage.VALIDATION
    tab = open_tab()
    tab.sign_in(demo_store.tokens["dana"], "/ui/models/german-credit-scorecard/versions/2")
    decide = tab.page.locator("#decide")
    decide.locator("select[name=decision]").select_option("approved")
    with tab.page.expect_response(lambda r: r.url.endswith("/decide")) as response:
        decide.locator("button[type=submit]").click()
    assert response.value.status == 403
    tab.page.wait_for_load_state("load")
    text = tab.page.locator(".refusal").inner_text()
    assert "Not permitted" in text
    assert "dana developed this version and so may not approve it (segregation of duties)" in text
    tab.shot("07-approval-refused")
    assert reg.get_version("german-credit-scorecard", 2).stage is Stage.VALIDATION
    denied = reg.audit_log(action="denied", actor="dana")[-1]
    assert denied.payload["attempted"] == "version.decide.approved"
    clean(tab, console=False)  # the browser logs the 403 itself


def test_a_decision_is_found_by_its_id(demo_store: DemoStore, open_tab: Callable[[], Tab]) -> None:
    with demo_store.registry.db.read() as conn:
        decision_id = conn.execute(
            select(decisions.c.id)
            .where(
                decisions.c.model_name == "german-credit-scorecard",
                decisions.c.decision == "decline",
            )
            .order_by(decisions.c.created_at)
            .limit(1)
        ).scalar_one()
    tab = open_tab()
    tab.sign_in(demo_store.tokens["victor"], "/ui/decisions")
    tab.page.fill("input[name=id]", decision_id)
    tab.page.click("form.filters button[type=submit]")
    tab.page.wait_for_load_state("load")
    section = tab.page.locator("#decision")
    assert section.get_attribute("data-decision") == decision_id
    assert section.locator("h2").inner_text().startswith("Decline")
    assert tab.page.locator("#replay").inner_text().startswith("Reproduced")
    assert tab.page.locator("#inputs tr").count() > 5
    assert tab.page.locator("#reasons li").count() >= 1
    tab.shot("08-decision")
    clean(tab)


def test_the_other_pages_open_with_nothing_from_outside(
    demo_store: DemoStore, open_tab: Callable[[], Tab]
) -> None:
    tab = open_tab()
    tab.sign_in(demo_store.tokens["ada"], "/ui/alerts")
    assert tab.page.locator("table.alerts tr[data-alert]").count() >= 5
    tab.shot("09-alerts")
    tab.goto("/ui/models/german-credit-scorecard/experiments")
    assert "v2-shadow" in tab.page.locator("article.experiment").first.inner_text()
    tab.shot("10-champion-challenger")
    tab.page.locator("article.experiment a.live-analysis").first.click()
    tab.page.wait_for_load_state("load")
    assert "not recorded" in tab.page.locator("p.notice").inner_text()
    assert "Disagreement at the thresholds" in tab.page.content()
    charts = drawn_charts(tab.page)
    assert charts and all(c.drawn for c in charts), charts
    tab.shot("10b-experiment-analysed-now")
    tab.goto("/ui/decisions")
    assert tab.page.locator("#decision-list tr[data-listed]").count() == 50
    tab.page.locator("#decision-list tr[data-listed] a").first.click()
    tab.page.wait_for_load_state("load")
    assert tab.page.locator("#replay").inner_text().startswith("Reproduced")
    tab.goto("/ui/decisions")
    tab.shot("10c-decision-log")
    tab.goto("/ui/audit?at_model=german-credit-scorecard&at_alias=champion&at_time=2099-01-01")
    assert tab.page.locator("#chain-status").inner_text().startswith("Chain verified")
    assert tab.page.locator("#holder").inner_text().startswith("v3 held champion")
    events = len(demo_store.registry.audit_log())
    assert tab.page.locator("#events tbody tr").count() == min(200, events)
    tab.shot("11-audit")
    tab.goto("/ui/models/german-credit-scorecard/versions/3/documents/model-card")
    charts = drawn_charts(tab.page)
    assert charts and all(c.drawn for c in charts), charts
    tab.shot("12-model-card")
    tab.goto("/ui/models/german-credit-scorecard")
    tab.shot("13-model-german-credit")
    clean(tab)
