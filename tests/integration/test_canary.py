"""Canary rollouts: a worse version rolls back by itself, a sound one is promoted, all audited."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from charter import datasets
from charter.clock import system_clock
from charter.errors import PermissionDenied
from charter.serving.app import create_app
from charter.serving.canary import tick

from .conftest import MODEL, Served, approve, scorecard

PLAN = {
    "steps": [0.2, 0.5, 1.0],
    "min_decisions": 30,
    "max_error_rate": 0.01,
    "max_latency_p99_ms": 250.0,
    "max_score_psi": 0.25,
    "max_approval_rate_delta": 0.10,
    "min_judged_decisions": 30,  # small samples, so that the test's traffic is judged
}


def _version(served: Served, *, shuffle_labels: bool, threshold: float) -> int:
    X, y = datasets.german_credit_xy()
    if shuffle_labels:  # a model that learned nothing, with an operating point that declines all
        y = np.random.default_rng(7).permutation(y)
    v = served.registry.log_model(
        served.people.dev, MODEL, scorecard(0.3), X=X, y=y, dataset_id="gc", fit=True,
        threshold=threshold,
    )  # fmt: skip
    approve(served.registry, served.people, v.version, y)
    return v.version


def _traffic(client: TestClient, served: Served, start: int, n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(start, start + n):
        r = client.post(
            f"/v1/models/{MODEL}/score",
            json={"entity_key": f"applicant-{i}", "features": served.rows[i % 1000]},
            headers=served.headers(),
        )
        assert r.status_code == 200, r.text
        out.append(r.json())
    return out


def test_a_worse_canary_rolls_back_by_itself(served: Served) -> None:
    reg, p = served.registry, served.people
    bad = _version(served, shuffle_labels=True, threshold=0.05)
    with pytest.raises(PermissionDenied):  # its developer cannot put it in front of customers
        reg.start_canary(p.dev, MODEL, bad, PLAN)
    reg.start_canary(p.app, MODEL, bad, PLAN)
    app = create_app(reg, refresh_seconds=3600, canary_seconds=0)
    with TestClient(app) as client:
        seen = _traffic(client, served, 0, 300)
        on_canary = [d for d in seen if d["variant"] == "canary"]
        assert 30 <= len(on_canary) <= 90 and all(d["version"] == bad for d in on_canary)
        assert all(d["decision"] == "decline" for d in on_canary)
        action, state = tick(reg, MODEL, system_clock()) or ("", {})
        assert action == "rollback" and state["status"] == "rolled_back"
        assert "score_psi" in str(state["reason"])  # the first guardrail it breached
        app.state.service.runtime.refresh()
        after = _traffic(client, served, 300, 100)
    assert {d["variant"] for d in after} == {"champion"}
    assert reg.canary(MODEL)["share"] == 0.0
    events = reg.audit_log(model_name=MODEL, action="canary.*")
    assert [e.action for e in events] == ["canary.started", "canary.rolled_back"]
    rolled = events[-1]
    assert rolled.actor == "charter-automation" and rolled.actor_type == "automation"
    assert rolled.payload["observation"]["approval_rate_canary"] == 0.0
    assert reg.get_model(MODEL).champion_version == 1
    assert reg.verify_audit().ok


def test_a_sound_canary_is_promoted_step_by_step(served: Served) -> None:
    reg, p = served.registry, served.people
    good = _version(served, shuffle_labels=False, threshold=0.5)
    reg.start_canary(p.app, MODEL, good, PLAN)
    app = create_app(reg, refresh_seconds=3600, canary_seconds=0)
    actions = []
    with TestClient(app) as client:
        start = 0
        for _ in range(3):
            app.state.service.runtime.refresh()
            _traffic(client, served, start, 250)
            start += 250
            result = tick(reg, MODEL, system_clock())
            assert result is not None
            actions.append(result[0])
    assert actions == ["advance", "advance", "promote"]
    assert reg.get_model(MODEL).champion_version == good
    events = [e.action for e in reg.audit_log(model_name=MODEL, actor="charter-automation")]
    assert events == ["canary.advanced", "canary.advanced", "alias.set", "canary.promoted"]
    assert reg.get_version(MODEL, good).stage.value == "deployed"
    assert reg.verify_audit().ok
