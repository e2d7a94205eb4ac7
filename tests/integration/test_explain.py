"""`GET /v1/decisions/{id}/explanation` and `charter explain`: the record of one decision, its
replay from the artifact store, the validation in force, and a counterfactual for a decline."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from charter.cli import app as cli_app
from charter.serving.app import create_app

from .conftest import MODEL, Served


def _decisions(client: TestClient, served: Served, n: int = 60) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        r = client.post(
            f"/v1/models/{MODEL}/score",
            json={"request_id": f"x-{i}", "entity_key": f"a-{i}", "features": served.rows[i]},
            headers=served.headers(),
        )
        assert r.status_code == 200, r.text
        out.append(r.json())
    return out


def test_a_declined_decision_is_explained_and_replayed(served: Served) -> None:
    reg = served.registry
    with TestClient(create_app(reg, refresh_seconds=3600)) as client:
        decided = _decisions(client, served)
        declined = next(d for d in decided if d["decision"] == "decline")
        r = client.get(
            f"/v1/decisions/{declined['decision_id']}/explanation", headers=served.headers()
        )
        assert r.status_code == 200, r.text
        e = r.json()
        missing = client.get("/v1/decisions/nope/explanation", headers=served.headers())
        assert missing.status_code == 404
        anonymous = client.get(f"/v1/decisions/{declined['decision_id']}/explanation")
        assert anonymous.status_code == 401
    v = reg.get_version(MODEL, e["version"])
    assert e["artifact_sha256"] == v.artifact_sha256
    assert e["score"] == declined["score"] and e["decision"] == "decline"
    assert e["reasons"] == declined["reason_codes"]
    assert e["replay"]["reproduced"] is True
    assert abs(e["replay"]["difference"]) <= 1e-9
    assert [x["feature"] for x in e["replay"]["reasons"]] == [
        x["feature"] for x in declined["reason_codes"]
    ]
    in_force = e["validation_in_force"]
    assert in_force["gate_run"]["passed"] is True
    assert in_force["validation"]["recommendation"] == "approve"
    assert in_force["approval"]["decision"] == "approved"
    cf = e["counterfactual"]
    assert cf is not None and cf["changes"]
    assert cf["score"] < e["threshold"]
    changed = {c["feature"] for c in cf["changes"]}
    assert not changed & {"age_in_years", "personal_status_and_sex", "foreign_worker"}


def test_an_approved_decision_has_no_counterfactual_and_the_cli_explains_it(
    served: Served, tmp_path: Any, database_url: str
) -> None:
    reg = served.registry
    with TestClient(create_app(reg, refresh_seconds=3600)) as client:
        decided = _decisions(client, served, 20)
    approved = next(d for d in decided if d["decision"] == "approve")
    from charter.explain.decision import explain_decision

    e = explain_decision(reg, approved["decision_id"])
    assert e.counterfactual is None and e.replay.reproduced
    home = reg.artifacts.root.parent
    env = {"CHARTER_HOME": str(home), "CHARTER_DATABASE_URL": database_url, "COLUMNS": "200"}
    out = CliRunner().invoke(cli_app, ["explain", approved["decision_id"]], env=env)
    assert out.exit_code == 0, out.stdout + out.stderr
    assert "reproduced" in out.stdout and "approve" in out.stdout
    bad = CliRunner().invoke(cli_app, ["explain", "no-such-decision"], env=env)
    assert bad.exit_code == 2 and "no decision" in bad.stdout + bad.stderr


def test_the_cli_lists_decisions_with_filters_and_pages(served: Served, database_url: str) -> None:
    import json

    reg = served.registry
    with TestClient(create_app(reg, refresh_seconds=3600)) as client:
        decided = _decisions(client, served, 7)
    env = {
        "CHARTER_HOME": str(reg.artifacts.root.parent),
        "CHARTER_DATABASE_URL": database_url,
        "COLUMNS": "250",
    }
    run = CliRunner().invoke
    out = run(cli_app, ["decisions", "--limit", "4", "--json"], env=env)
    assert out.exit_code == 0, out.stdout + out.stderr
    first = json.loads(out.stdout)
    rest = json.loads(
        run(cli_app, ["decisions", "--json", "--before", first["next_before"]], env=env).stdout
    )
    listed = [d["id"] for d in first["decisions"] + rest["decisions"]]
    assert listed == [d["decision_id"] for d in decided][::-1] and rest["next_before"] is None
    assert first["decisions"][0]["inputs"] == served.rows[6]
    one = json.loads(run(cli_app, ["decisions", "--entity", "a-3", "--json"], env=env).stdout)
    assert [d["id"] for d in one["decisions"]] == [decided[3]["decision_id"]]
    table = run(cli_app, ["decisions", "--entity", "a-3"], env=env)
    assert table.exit_code == 0 and "no logged decision matches" not in table.stdout
    none = run(cli_app, ["decisions", "--entity", "nobody"], env=env)
    assert none.exit_code == 0 and "no logged decision matches" in none.stdout
    paged = run(cli_app, ["decisions", "--limit", "2"], env=env).stdout
    assert "older decisions: --before" in paged
    for args, field in (
        (["--decision", "maybe"], "decision"),
        (["--since", "yesterday"], "since"),
        (["--limit", "0"], "limit"),
        (["--before", "x"], "before"),
    ):
        bad = run(cli_app, ["decisions", *args], env=env)
        assert bad.exit_code == 2 and field in bad.stdout + bad.stderr, args
