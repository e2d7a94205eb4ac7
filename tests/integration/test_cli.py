"""The CLI end to end on a real store (SQLite, or PostgreSQL when the suite runs against it)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from charter.cli import app
from charter.config import Settings
from charter.registry import formats
from charter.registry.service import Registry

from helpers import record_passing_gates, training_frame


class Cli:
    def __init__(self, home: Path, url: str) -> None:
        self.env = {"CHARTER_HOME": str(home), "CHARTER_DATABASE_URL": url, "COLUMNS": "200"}
        self.runner = CliRunner()

    def __call__(self, *args: str, token: str | None = None, code: int = 0) -> str:
        env = dict(self.env, CHARTER_TOKEN=token or "")
        r = self.runner.invoke(app, list(args), env=env)
        assert r.exit_code == code, (args, r.exit_code, r.stdout, r.stderr)
        return r.stdout + r.stderr


@pytest.fixture
def cli(tmp_path: Path, database_url: str) -> Cli:
    return Cli(tmp_path / "home", database_url)


def _last_line(text_out: str) -> str:
    return text_out.strip().splitlines()[-1].strip()


def _record_gates(cli: Cli, name: str, version: int, user: str) -> None:
    """A passing gate run recorded through the library (deployment needs one)."""
    reg = Registry.open(Settings.from_env(cli.env))
    try:
        record_passing_gates(reg, reg.identity.actor(user), name, version)
    finally:
        reg.db.dispose()


def test_the_whole_governed_path(cli: Cli, tmp_path: Path) -> None:
    out = cli("init", "--admin", "ada")
    assert "store created" in out
    admin = _last_line(out)
    assert admin.startswith("chr_")
    assert "up to date" in cli("init")
    tokens = {}
    for user, role in [("dana", "developer"), ("victor", "validator"), ("petra", "approver")]:
        cli("users", "add", user, "--role", role, token=admin)
        tokens[user] = _last_line(cli("users", "token", user, token=admin))
    cli(
        "models", "create", "pd-model",
        "--purpose", "Probability of default",
        "--business-use", "Approve or decline",
        "--decision-type", "credit approval",
        "--owner", "Head of Credit Risk",
        "--team", "Credit Analytics",
        "--tier", "high",
        "--upstream", "bureau", "--upstream", "core",
        "--tag", "portfolio=cards",
        token=tokens["dana"],
    )  # fmt: skip
    X, y = training_frame()
    f = tmp_path / "model.skops"
    f.write_bytes(formats.serialize_model(LogisticRegression().fit(X[["income", "age"]], y)).data)
    out = cli("register", "pd-model", "--file", str(f), "--format", "skops", token=tokens["dana"])
    assert "version 1 registered" in out
    shown = json.loads(cli("versions", "show", "pd-model", "1", "--json"))
    assert shown["stage"] == "development" and shown["author"] == "dana"
    assert [s["name"] for s in shown["feature_schema"]] == ["income", "age"]
    _record_gates(cli, "pd-model", 1, "dana")
    cli("transition", "pd-model", "1", "--to", "validation", token=tokens["dana"])
    cli(
        "recommend", "pd-model", "1", "--recommendation", "approve",
        "--summary", "independent review",
        token=tokens["victor"],
    )  # fmt: skip
    cli("transition", "pd-model", "1", "--to", "approved", token=tokens["petra"])
    out = cli("promote", "pd-model", "1", token=tokens["dana"], code=3)
    assert "permission_denied" in out
    cli("promote", "pd-model", "1", "--expect", "none", token=tokens["petra"])
    out = cli("promote", "pd-model", "1", "--alias", "shadow", "--expect", "7", code=4,
              token=tokens["petra"])  # fmt: skip
    assert "conflict" in out
    assert "production" in cli("models", "list")
    listed = json.loads(cli("models", "list", "--json"))
    assert listed[0]["champion_version"] == 1 and listed[0]["upstream"] == ["bureau", "core"]
    assert "champion" in cli("versions", "list", "pd-model")

    events = json.loads(cli("audit", "log", "--model", "pd-model", "--json"))
    assert [e["action"] for e in events][-2:] == ["denied", "alias.set"]
    assert "alias.set" in cli("audit", "log", "--action", "alias.*")
    assert "version 1" in cli("audit", "holder", "pd-model", "--at", "2999-01-01T00:00Z")
    assert "nobody" in cli("audit", "holder", "pd-model", "--at", "2000-01-01T00:00Z")
    assert _last_line(cli("audit", "verify")).startswith("audit chain verified")
    cp = tmp_path / "checkpoint.json"
    cli("audit", "checkpoint", "--out", str(cp))
    assert "contains checkpoint" in cli("audit", "verify", "--checkpoint", str(cp))

    rows = list(csv.DictReader(io.StringIO(cli("inventory", "export", "--format", "csv"))))
    assert rows[0]["name"] == "pd-model" and rows[0]["status"] == "production"
    inv = json.loads(cli("inventory", "export", "--format", "json"))
    assert inv["summary"]["in_production_by_tier"] == {"high": 1, "medium": 0, "low": 0}
    assert "1 models in production:** 1 high" in cli("inventory", "export", "--format", "md")

    # A canary of a second version.
    cli("register", "pd-model", "--file", str(f), "--format", "skops", token=tokens["dana"])
    _record_gates(cli, "pd-model", 2, "dana")
    cli("transition", "pd-model", "2", "--to", "validation", token=tokens["dana"])
    cli("recommend", "pd-model", "2", "--recommendation", "approve", "--summary", "ok",
        token=tokens["victor"])  # fmt: skip
    cli("transition", "pd-model", "2", "--to", "approved", token=tokens["petra"])
    out = cli("canary", "start", "pd-model", "2", "--steps", "0.5,1.0", "--min-decisions", "10",
              token=tokens["petra"])  # fmt: skip
    assert "started at 50%" in out
    assert "running at 50%" in cli("canary", "status", "pd-model")
    assert "permission_denied" in cli("canary", "step", "pd-model", token=tokens["dana"], code=3)
    assert "hold: holding at step 1 of 2" in cli("canary", "step", "pd-model", token=admin)
    assert "field: steps" in cli("canary", "start", "pd-model", "2", "--steps", "a,b",
                                 token=tokens["petra"], code=2)  # fmt: skip


def test_bad_input_exits_2_names_the_field_and_writes_nothing(cli: Cli) -> None:
    admin = _last_line(cli("init", "--admin", "ada"))
    cli("users", "add", "dana", "--role", "developer", token=admin)
    dana = _last_line(cli("users", "token", "dana", token=admin))
    before = json.loads(cli("audit", "log", "--json"))
    out = cli(
        "models", "create", "pd-model", "--purpose", "p", "--business-use", "b",
        "--decision-type", "d", "--owner", "o", "--team", "t", "--tier", "extreme",
        token=dana, code=2,
    )  # fmt: skip
    assert "field: risk_tier" in out and "fix:" in out and "Traceback" not in out
    out = cli("users", "add", "eve", "--role", "wizard", token=admin, code=2)
    assert "field: roles" in out
    out = cli("versions", "show", "no-such-model", "1", code=2)
    assert "charter models list" in out
    out = cli("inventory", "export", "--format", "xlsx", code=2)
    assert "field: format" in out
    out = cli("audit", "holder", "x", "--at", "yesterday", code=2)
    assert "field: at" in out
    out = cli("register", "pd-model", code=2)
    assert "--file" in out
    assert json.loads(cli("audit", "log", "--json")) == before
    assert json.loads(cli("models", "list", "--json")) == []
    out = cli("users", "add", "eve", "--role", "developer", token="chr_wrong", code=3)
    assert "authentication_failed" in out


def test_uninitialised_store_says_run_init(cli: Cli) -> None:
    out = cli("models", "list", code=2)
    assert "charter init" in out


def test_audit_verify_exits_1_on_tampering(cli: Cli, database_url: str) -> None:
    cli("init", "--admin", "ada")
    engine = create_engine(database_url)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER audit_events_no_update"))
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    engine.dispose()
    out = cli("audit", "verify", code=1)
    assert "BROKEN at event 2" in out


def test_revoked_tokens_stop_working(cli: Cli) -> None:
    admin = _last_line(cli("init", "--admin", "ada"))
    cli("users", "add", "dana", "--role", "developer", token=admin)
    dana = _last_line(cli("users", "token", "dana", token=admin))
    cli("users", "add", "victor", "--role", "validator", token=admin)
    # only an admin revokes another user's tokens
    assert "admin" in cli("users", "revoke", "victor", token=dana, code=3)
    assert "revoked 1 token(s) of dana" in cli("users", "revoke", "dana", token=admin)
    assert "the API token was revoked" in cli("users", "revoke", "dana", token=dana, code=3)
    events = json.loads(cli("audit", "log", "--json"))
    assert any(e["action"] == "token.revoked" for e in events)
