"""`charter validate` as a CI deployment gate: exit 0 on a pass, 1 on a failed gate, 2 on bad
input; and `charter report` writing the three documents from the record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.model_selection import train_test_split

from charter import datasets
from charter.config import Settings
from charter.demo import _scorecard
from charter.registry.service import Registry

from .test_cli import Cli

FEATURES = list(datasets.GERMAN_CREDIT_FEATURES)
POLICY = datasets.german_credit_path().with_name("german_credit_policy.toml")


@pytest.fixture
def store(tmp_path: Path, database_url: str) -> tuple[Cli, dict[str, str], dict[str, Path]]:
    cli = Cli(tmp_path / "home", database_url)
    admin = cli("init", "--admin", "ada").strip().splitlines()[-1].strip()
    tokens = {}
    for user, role in [("dana", "developer"), ("victor", "validator"), ("petra", "approver")]:
        cli("users", "add", user, "--role", role, token=admin)
        tokens[user] = cli("users", "token", user, token=admin).strip().splitlines()[-1].strip()
    frame = datasets.load_german_credit()
    _, y = datasets.german_credit_xy()
    train, rest = train_test_split(frame, test_size=0.3, random_state=1, stratify=y)
    holdout, oot = train_test_split(rest, test_size=0.5, random_state=2)
    files = {}
    for name, part in (("train", train), ("holdout", holdout), ("out_of_time", oot)):
        files[name] = tmp_path / f"{name}.csv"
        part.to_csv(files[name], index=False)
    reg = Registry.open(Settings.for_home(tmp_path / "home", database_url))
    dana = reg.identity.actor("dana")
    reg.create_model(
        dana, name="gc", purpose="PD", business_use="credit", decision_type="credit approval",
        owner="Head of Credit Risk", team="Credit Analytics", risk_tier="high",
    )  # fmt: skip
    target = (train["creditability"] == "bad").to_numpy(dtype=int)
    model = _scorecard().fit(train[FEATURES], target)
    reg.log_model(dana, "gc", model, X=train[FEATURES], y=target, dataset_id="gc", threshold=0.3)
    reg.db.dispose()
    return cli, tokens, files


def _args(files: dict[str, Path], policy: Path) -> list[str]:
    return [
        "--policy", str(policy), "--holdout", str(files["holdout"]),
        "--out-of-time", str(files["out_of_time"]), "--train", str(files["train"]),
    ]  # fmt: skip


def test_validate_exits_0_on_pass_and_1_on_a_failed_gate(
    store: tuple[Cli, dict[str, str], dict[str, Path]], tmp_path: Path
) -> None:
    cli, tokens, files = store
    report = tmp_path / "run.json"
    out = cli(
        "validate", "gc", "1", *_args(files, POLICY), "--report", str(report),
        token=tokens["victor"],
    )  # fmt: skip
    assert "PASSED" in out and "four-fifths" in out
    assert json.loads(report.read_text())["passed"] is True
    strict = tmp_path / "strict.toml"
    strict.write_text(POLICY.read_text().replace("min_auc = 0.72", "min_auc = 0.99"))
    out = cli("validate", "gc", "1", *_args(files, strict), token=tokens["dana"], code=1)
    assert "FAILED" in out and "performance" in out
    data = json.loads(
        cli("validate", "gc", "1", *_args(files, strict), "--json", token=tokens["dana"], code=1)
    )
    assert data["failed_gates"] == ["performance"] and data["gate_run_id"] == 3


def test_validate_refuses_bad_input_with_exit_2(
    store: tuple[Cli, dict[str, str], dict[str, Path]], tmp_path: Path
) -> None:
    cli, tokens, files = store
    out = cli(
        "validate", "gc", "1", "--policy", str(POLICY), "--holdout", str(files["holdout"]),
        token=tokens["victor"], code=2,
    )  # fmt: skip
    assert "out_of_time" in out or "out-of-time" in out
    typo = tmp_path / "typo.toml"
    typo.write_text(POLICY.read_text().replace("min_auc = 0.72", "min_aucc = 0.72"))
    out = cli("validate", "gc", "1", *_args(files, typo), token=tokens["victor"], code=2)
    assert "min_aucc" in out and "min_auc" in out
    out = cli(
        "validate", "gc", "1", *_args(files, POLICY)[:2], "--holdout", "/nope.csv",
        token=tokens["victor"], code=2,
    )  # fmt: skip
    assert "holdout" in out


def test_report_writes_the_documents_and_records_each(
    store: tuple[Cli, dict[str, str], dict[str, Path]], tmp_path: Path, database_url: str
) -> None:
    cli, tokens, files = store
    out_dir = tmp_path / "docs"
    # No gate run yet: a validation report has nothing to report on, and says what to run.
    out = cli(
        "report", "validation", "gc", "--version", "1", "--out", str(out_dir),
        token=tokens["victor"], code=2,
    )  # fmt: skip
    assert "charter validate gc 1" in out
    cli("validate", "gc", "1", *_args(files, POLICY), token=tokens["victor"])
    for kind in ("model-card", "validation"):
        out = cli(
            "report", kind, "gc", "--version", "1", "--out", str(out_dir),
            "--format", "json,html", token=tokens["victor"],
        )  # fmt: skip
        assert "built from audit head #" in out
    cli("report", "mrm", "--out", str(out_dir), "--format", "json", token=tokens["petra"])
    names = sorted(p.name for p in out_dir.iterdir())
    assert "model-card_gc_v1.html" in names and "validation_gc_v1.json" in names
    assert not any(n.endswith(".pdf") for n in names)
    mrm = json.loads(next(out_dir.glob("mrm_*.json")).read_text())
    assert mrm["inventory"]["models"] == 1
    log = json.loads(cli("audit", "log", "--action", "report.generated", "--json"))
    assert [e["payload"]["kind"] for e in log] == ["model-card", "validation", "mrm"]
    out = cli("report", "summary", "gc", "--out", str(out_dir), token=tokens["victor"], code=2)
    assert "model-card, validation, mrm" in out
    out = cli("report", "mrm", "--format", "docx", token=tokens["victor"], code=2)
    assert "docx" in out
