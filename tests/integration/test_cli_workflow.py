"""The validation workflow from the CLI: findings, the validator's recommendation, the approver's
decision, the model card's narrative, and the deployment guard they feed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression
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

    def gates(self, name: str, version: int, user: str) -> None:
        """A passing gate run, recorded through the library."""
        reg = Registry.open(Settings.from_env(self.env))
        try:
            record_passing_gates(reg, reg.identity.actor(user), name, version)
        finally:
            reg.db.dispose()


def _last_line(text_out: str) -> str:
    return text_out.strip().splitlines()[-1].strip()


@pytest.fixture
def cli(tmp_path: Path, database_url: str) -> Cli:
    return Cli(tmp_path / "home", database_url)


@pytest.fixture
def store(cli: Cli, tmp_path: Path) -> dict[str, str]:
    """An initialised store with four people, a model and one version in validation."""
    admin = _last_line(cli("init", "--admin", "ada"))
    tokens = {"ada": admin}
    for user, role in [("dana", "developer"), ("victor", "validator"), ("petra", "approver")]:
        cli("users", "add", user, "--role", role, token=admin)
        tokens[user] = _last_line(cli("users", "token", user, token=admin))
    cli(
        "models", "create", "pd-model", "--purpose", "PD", "--business-use", "Approve or decline",
        "--decision-type", "credit approval", "--owner", "Head of Credit Risk",
        "--team", "Credit Analytics", "--tier", "high", token=tokens["dana"],
    )  # fmt: skip
    X, y = training_frame()
    f = tmp_path / "model.skops"
    f.write_bytes(formats.serialize_model(LogisticRegression().fit(X[["income", "age"]], y)).data)
    tokens["_file"] = str(f)
    cli("register", "pd-model", "--file", str(f), "--format", "skops", token=tokens["dana"])
    cli.gates("pd-model", 1, "dana")
    cli("transition", "pd-model", "1", "--to", "validation", token=tokens["dana"])
    return tokens


def test_findings_recommendation_approval_and_the_deployment_guard(
    cli: Cli, store: dict[str, str], tmp_path: Path
) -> None:
    t = store
    add = ("findings", "add", "pd-model", "--version", "1", "--title", "Unstable coefficients",
           "--description", "Signs flip", "--owner", "dana", "--due", "2099-12-31")  # fmt: skip
    out = cli(*add, "--severity", "high", token=t["dana"], code=3)
    assert "permission_denied" in out and "needs the role validator" in out
    out = cli(*add, "--severity", "critical", token=t["victor"], code=2)
    assert "field: severity" in out and "high, medium, low" in out
    out = cli(*add, "--severity", "high", token=t["victor"])
    assert "finding #1 raised on pd-model v1 (high)" in out
    listed = json.loads(cli("findings", "list", "pd-model", "--json"))
    assert [(f["id"], f["status"], f["severity"], f["version"]) for f in listed] == [
        (1, "open", "high", 1)
    ]
    assert "Unstable" in cli("findings", "list")

    out = cli("recommend", "pd-model", "1", "--recommendation", "approve-with-conditions",
              "--summary", "Sound", token=t["victor"], code=2)  # fmt: skip
    assert "field: conditions" in out
    sections = tmp_path / "validation.toml"
    sections.write_text('scope = "PD for cards"\nconclusion = "Fit for use, with conditions"\n')
    out = cli("recommend", "pd-model", "1", "--recommendation", "approve-with-conditions",
              "--summary", "Sound", "--condition", "Monthly PSI report",
              "--sections", str(sections), token=t["victor"])  # fmt: skip
    assert "victor recommends approve with conditions with 1 condition(s)" in out
    out = cli("approve", "pd-model", "1", "--comment", "ok", token=t["victor"], code=3)
    assert "permission_denied" in out
    out = cli("approve", "pd-model", "1", "--with-condition", "Monthly PSI report to MRM",
              "--comment", "Accepted with the validator's condition", token=t["petra"])  # fmt: skip
    assert "pd-model version 1 approved with 1 condition(s) by petra" in out

    out = cli("promote", "pd-model", "1", token=t["petra"], code=2)
    assert "transition_not_allowed" in out and "close finding #1" in out
    assert "charter findings close 1" in out
    out = cli("findings", "close", "1", "--note", "fine", token=t["victor"], code=2)
    assert "charter findings remediate 1" in out
    out = cli("findings", "remediate", "1", "--note", "Refit on 2019-2025", token=t["dana"])
    assert "is remediated" in out
    assert "permission_denied" in cli("findings", "close", "1", "--note", "ok", token=t["dana"],
                                      code=3)  # fmt: skip
    cli("findings", "close", "1", "--note", "Re-tested: stable", token=t["victor"])
    assert json.loads(cli("findings", "list", "--status", "closed", "--json"))[0]["id"] == 1
    assert "is now champion" in cli("promote", "pd-model", "1", token=t["petra"])

    events = json.loads(cli("audit", "log", "--model", "pd-model", "--json"))
    actions = [e["action"] for e in events]
    assert actions.count("denied") == 5
    for action in ("validation.gates_run", "finding.raised", "finding.remediated",
                   "finding.closed", "version.validated", "version.approval_decided"):  # fmt: skip
        assert action in actions
    decided = next(e for e in events if e["action"] == "version.approval_decided")
    assert decided["payload"]["conditions"] == ["Monthly PSI report to MRM"]
    inv = json.loads(cli("inventory", "export", "--format", "json"))
    assert inv["summary"]["open_findings"] == 0 and inv["models"][0]["open_findings"] == 0
    assert _last_line(cli("audit", "verify")).startswith("audit chain verified")


def test_reject_sends_back_and_bad_input_exits_2(cli: Cli, store: dict[str, str]) -> None:
    t = store
    cli("recommend", "pd-model", "1", "--recommendation", "reject",
        "--summary", "Fails stability", token=t["victor"])  # fmt: skip
    out = cli("approve", "pd-model", "1", "--reject", "--with-condition", "x", "--comment", "no",
              token=t["petra"], code=2)  # fmt: skip
    assert "field: with_condition" in out
    out = cli("approve", "pd-model", "1", "--comment", "ok", token=t["petra"], code=2)
    assert "no passing validation" in out
    out = cli("approve", "pd-model", "1", "--reject", "--comment", "Rework the segmentation",
              token=t["petra"])  # fmt: skip
    assert "rejected by petra: back in development" in out
    shown = json.loads(cli("versions", "show", "pd-model", "1", "--json"))
    assert shown["stage"] == "development"
    out = cli("findings", "remediate", "99", "--note", "x", token=t["dana"], code=2)
    assert "no finding #99" in out
    out = cli("recommend", "pd-model", "1", "--recommendation", "perhaps", "--summary", "s",
              token=t["victor"], code=2)  # fmt: skip
    assert "field: recommendation" in out


def test_the_model_card_narrative(cli: Cli, store: dict[str, str], tmp_path: Path) -> None:
    t = store
    f = tmp_path / "narrative.toml"
    f.write_text('[narrative]\nintended_use = "Retail cards"\nfactors = "Age and income"\n')
    out = cli("narrative", "set", "pd-model", "--file", str(f), token=t["dana"])
    assert "revision 1: factors, intended_use" in out
    bad = tmp_path / "bad.toml"
    bad.write_text('purpose = "x"\n')
    out = cli("narrative", "set", "pd-model", "--file", str(bad), token=t["dana"], code=2)
    assert "field: sections" in out and "ethical_considerations" in out
    broken = tmp_path / "broken.toml"
    broken.write_text("intended_use = \n")
    assert "field: file" in cli("narrative", "set", "pd-model", "--file", str(broken),
                                token=t["dana"], code=2)  # fmt: skip
    out = cli("narrative", "set", "pd-model", "--file", str(f), token=t["victor"], code=3)
    assert "permission_denied" in out
    shown = json.loads(cli("narrative", "show", "pd-model", "--json"))
    assert shown["revision"] == 1 and shown["sections"] == {
        "intended_use": "Retail cards",
        "factors": "Age and income",
    }
    assert "Retail cards" in cli("narrative", "show", "pd-model")
