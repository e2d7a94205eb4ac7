"""`charter drift` on German Credit split by an attribute, and on bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from charter.cli import app
from charter.datasets import drift_benchmark_frame, load_german_credit


@pytest.fixture
def split(tmp_path: Path) -> tuple[Path, Path]:
    gc = load_german_credit()
    a, b = tmp_path / "domestic.csv", tmp_path / "foreign.parquet"
    gc[gc["foreign_worker"] == "yes"].to_csv(a, index=False)
    gc[gc["foreign_worker"] == "no"].to_parquet(b, index=False)
    return a, b


def run(*args: str, code: int = 0) -> str:
    r = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert r.exit_code == code, (r.stdout, r.stderr)
    return r.stdout + r.stderr


def test_drift_table_json_and_report(split: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = split
    out = run("drift", str(a), str(b), "--exclude", "foreign_worker")
    assert "duration_in_month" in out and "20 features" in out
    snap = json.loads(run("drift", str(a), str(b), "--exclude", "foreign_worker", "--json"))
    assert snap["summary"]["n_reference"] == 963 and snap["summary"]["n_current"] == 37
    flagged = set(snap["summary"]["flagged"])
    assert "duration_in_month" in flagged  # foreign workers borrow for longer in this data
    report = tmp_path / "drift.html"
    run("drift", str(a), str(b), "--report", str(report), "--column", "age_in_years",
        "--column", "purpose")  # fmt: skip
    html = report.read_text()
    text = re.sub(r"<[^>]+>", "", html)
    assert "<svg" in html and "age_in_years" in text and "purpose" in text
    assert 'src="http' not in html and 'href="http' not in html and "@import" not in html
    run("drift", str(a), str(b), "--fail-on", "critical", code=1)
    run("drift", str(a), str(a), "--fail-on", "warning")


def test_drift_policy_file(split: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = split
    pol = tmp_path / "policy.toml"
    pol.write_text("[drift]\nalpha = 1e-12\ncorrection = 'bh'\n")
    snap = json.loads(
        run("drift", str(a), str(b), "--policy", str(pol), "--json", "--exclude", "foreign_worker")
    )
    assert snap["policy"]["alpha"] == 1e-12 and snap["summary"]["flagged"] == []
    pol.write_text("[drift]\nalfa = 0.1\n")
    out = run("drift", str(a), str(b), "--policy", str(pol), code=2)
    assert "field: alfa" in out


def test_drift_bad_input_exits_2(split: tuple[Path, Path], tmp_path: Path) -> None:
    a, _ = split
    out = run("drift", str(a), str(tmp_path / "nope.csv"), code=2)
    assert "field: current" in out
    bad = tmp_path / "x.xlsx"
    bad.write_text("x")
    assert "field: current" in run("drift", str(a), str(bad), code=2)
    assert "field: column" in run("drift", str(a), str(a), "--column", "nope", code=2)
    assert "field: fail_on" in run("drift", str(a), str(a), "--fail-on", "bad", code=2)


def test_drift_on_the_benchmark_frame_finds_exactly_the_planted(tmp_path: Path) -> None:
    from charter.datasets import PLANTED_DRIFTS

    ref, cur = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    drift_benchmark_frame(20_000, seed=1, drifted=False).to_parquet(ref)
    drift_benchmark_frame(20_000, seed=2, drifted=True).to_parquet(cur)
    snap = json.loads(run("drift", str(ref), str(cur), "--json"))
    assert set(snap["summary"]["flagged"]) == {d.column for d in PLANTED_DRIFTS}
