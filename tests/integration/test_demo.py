"""`charter demo` end to end (once per module), and the documents it writes: every PDF renders
pages, every HTML page opens offline in headless Chromium with its charts drawn, and each
document's stated audit head is a real link of the verified chain."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from browser import assert_not_blank, drawn_charts, open_page, pdf_page_count, pdf_page_image
from charter.config import Settings
from charter.registry.service import Registry
from charter.reports import documents

from helpers import DemoRun

pytestmark = pytest.mark.xdist_group("demo")  # shares the session's demo run with tests/e2e


@pytest.fixture(scope="module")
def demo(demo_run: DemoRun) -> tuple[str, Path]:
    return demo_run.stdout, demo_run.home


def test_the_story_runs_and_ends_with_a_verified_chain(demo: tuple[str, Path]) -> None:
    out, _ = demo
    lines = out.strip().splitlines()
    assert lines[-2].startswith("audit chain verified")
    assert "http://127.0.0.1:8000/ui/" in lines[-1] and "demo-tokens.txt" in lines[-1]
    assert "may not validate" in out and "2 model(s) in production: 2 high" in out
    assert re.search(
        r"german-credit-retail \(sha256 \w+\) on v1: passed; gate run \d+ recorded", out
    )
    assert "on v2: FAILED (fairness)" in out  # the gradient-boosting challenger
    assert "canary of v2 refused, and audited" in out and "failed (fairness)" in out
    assert "300 decisions logged before their responses; shadow agreement" in out
    assert "petra started a canary of v3" in out
    assert "champion of german-credit-scorecard is now" in out
    assert "experiment v2-shadow (pre-registered plan sha256" in out  # the challenger's fate
    assert "charter explain " in out and ", reproduced; in force then: gate run" in out


def test_part_one_monitors_alerts_retrains_and_promotes(demo: tuple[str, Path]) -> None:
    out, home = demo
    assert re.search(r"2026-05-01 alert #\d+ WARNING open: feature_psi", out)
    assert not re.search(r"2026-0[1-4]-\d\d alert #\d+ CRITICAL", out)  # stable months
    assert "2026-05-01 retraining trigger #1 fired: 3 features with PSI over 0.15" in out
    assert re.search(r"pipeline \w+: succeeded", out)
    assert "champion of retail-pd at the end of June: v2" in out
    assert re.search(r"[1-9]\d* Alertmanager webhook payloads delivered \(version 4\)", out)
    lineage = list((home / "lineage").glob("*.jsonl"))
    assert lineage
    events = [json.loads(line) for line in lineage[0].read_text().splitlines()]
    assert events[0]["eventType"] == "START" and events[-1]["eventType"] == "COMPLETE"
    reg = Registry.open(Settings.for_home(home))
    try:
        actions = [e.action for e in reg.audit_log(model_name="retail-pd")]
        for action in ("monitor.window", "alert.opened", "retrain.triggered",
                       "pipeline.register", "pipeline.promote", "canary.promoted"):  # fmt: skip
            assert action in actions, action
        registered = [e for e in reg.audit_log(model_name="retail-pd", action="version.registered")]
        # the automation registered the candidate, on behalf of the accountable developer
        assert registered[-1].actor == "charter-automation"
        assert registered[-1].payload["on_behalf_of"] == "dana"
    finally:
        reg.db.dispose()


def test_the_three_documents_exist_for_champion_and_challenger(demo: tuple[str, Path]) -> None:
    _, home = demo
    names = sorted(p.name for p in (home / "reports").iterdir())
    for stem in (
        "model-card_german-credit-scorecard_v1",
        "validation_german-credit-scorecard_v1",
        "model-card_german-credit-scorecard_v2",
        "validation_german-credit-scorecard_v2",
        "model-card_german-credit-scorecard_v3",
        "validation_german-credit-scorecard_v3",
    ):
        assert {f"{stem}.json", f"{stem}.html", f"{stem}.pdf"} <= set(names), names
    assert sum(n.startswith("mrm_") for n in names) == 3


def test_every_pdf_renders_pages(demo: tuple[str, Path]) -> None:
    _, home = demo
    pdfs = sorted((home / "reports").glob("*.pdf"))
    assert len(pdfs) == 7
    for pdf in pdfs:
        data = pdf.read_bytes()
        assert pdf_page_count(data) >= 1
        assert_not_blank(pdf_page_image(data, 0))


@pytest.mark.parametrize("stem", ["model-card", "validation", "mrm"])
def test_the_html_opens_offline_with_its_charts_drawn(demo: tuple[str, Path], stem: str) -> None:
    _, home = demo
    path = sorted((home / "reports").glob(f"{stem}_*.html"))[0]
    with open_page(path) as bp:
        charts = drawn_charts(bp.page)
        assert bp.external_requests == []
        assert bp.page_errors == []
    assert charts, f"no chart in {path.name}"
    empty = [c for c in charts if not c.drawn]
    assert not empty, empty


def test_each_document_states_a_head_of_the_verified_chain(demo: tuple[str, Path]) -> None:
    _, home = demo
    reg = Registry.open(Settings.for_home(home))
    try:
        assert reg.verify_audit().ok
        chain = {e.seq: e.hash for e in reg.audit_log()}
        generated = {e.payload["document_sha256"] for e in reg.audit_log(action="report.generated")}
        for path in sorted((home / "reports").glob("*.json")):
            doc = json.loads(path.read_text())
            head = doc["provenance"]
            assert chain[head["audit_head_seq"]] == head["audit_head_hash"], path.name
            assert documents.document_sha256(doc) == doc["document_sha256"]
            assert doc["document_sha256"] in generated  # each generation is an audit event
    finally:
        reg.db.dispose()
