"""The continuous-training pipeline on every backend: a whole run from fresh data to a promoted
champion, crashes (an exception, and a real SIGKILL of another process) in the middle of the
run that a rerun resumes with exactly one candidate, concurrent starts, and the ways a run ends
otherwise (bad data, failed gates, a worse candidate, a rejection, a rolled-back canary). Every
run's OpenLineage events are validated against the vendored OpenLineage schema."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema_rs
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from charter import datasets
from charter.clock import ManualClock, iso
from charter.entities import Stage
from charter.errors import Conflict
from charter.pipelines import PipelineSpec, get_pipeline_run, resume_pipeline, run_pipeline
from charter.pipelines.openlineage import FileTransport, read_events
from charter.registry.service import Registry
from charter.storage import jsonutil
from charter.storage.schema import decisions, outcomes, shadow_scores

from helpers import record_passing_gates

MODEL = "gc-scorecard"
SCHEMA = Path(__file__).parent.parent / "data" / "openlineage" / "OpenLineage-2-0-0.json"
POLICY = """name = "ct-test"

[data]
label = "creditability"
positive = "bad"

[gates.performance]
datasets = ["holdout"]
min_auc = 0.6
min_ks = 0.1
max_auc_drop_vs_champion = 0.15
"""
CANARY = {
    "steps": [0.5, 1.0],
    "min_decisions": 20,
    "max_error_rate": 0.01,
    "max_latency_p99_ms": 250.0,
    "max_score_psi": 0.5,
    "max_approval_rate_delta": 0.3,
    "min_judged_decisions": 20,
}
SHADOW_N = 60


class SimulatedCrash(Exception):
    """Stands for the process dying between a step's effect and its commit."""


# ---------------------------------------------------------------------------------- set-up
def _scorecard() -> Pipeline:
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), list(datasets.GERMAN_CREDIT_NUMERIC)),
            (
                "cat",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(datasets.GERMAN_CREDIT_CATEGORICAL),
            ),
        ]
    )
    return Pipeline([("prep", pre), ("lr", LogisticRegression(C=0.5, max_iter=1000))])


def _with_champion(reg: Registry, people: Any, tier: str = "high") -> None:
    reg.create_model(
        people.dev, name=MODEL, purpose="PD", business_use="approve or decline",
        decision_type="credit approval", owner="risk", team="analytics", risk_tier=tier,
    )  # fmt: skip
    X, y = datasets.german_credit_xy()
    v = reg.log_model(
        people.dev, MODEL, _scorecard(), X=X, y=y, dataset_id="gc", fit=True, threshold=0.5
    )
    record_passing_gates(reg, people.dev, MODEL, v.version, X=X, y=y)
    reg.transition(people.dev, MODEL, v.version, "validation")
    reg.record_validation(people.val, MODEL, v.version, outcome="pass", summary="ok")
    reg.transition(people.app, MODEL, v.version, "approved")
    reg.set_alias(people.app, MODEL, v.version, "champion")


def _spec_dict(tmp_path: Path, frame: pd.DataFrame | None = None, **over: Any) -> dict[str, Any]:
    data = tmp_path / "applications.csv"
    (datasets.load_german_credit() if frame is None else frame).to_csv(data, index=False)
    (tmp_path / "policy.toml").write_text(over.pop("policy", POLICY))
    spec: dict[str, Any] = {
        "model": MODEL,
        "developer": "dana",
        "seed": 7,
        "shadow_decisions": SHADOW_N,
        "data": {"path": "applications.csv", "id": "gc-applications@2026-11"},
        "training": {
            "estimator": "sklearn.linear_model.LogisticRegression",
            "params": {"C": 0.5, "max_iter": 1000},
        },
        "validation": {"policy": "policy.toml", "holdout": 0.2, "out_of_time": 0.0},
        "compare": {"min_labels": 40},
        "canary": dict(CANARY),
    }
    spec.update(over)
    return spec


def _spec(tmp_path: Path, **over: Any) -> PipelineSpec:
    return PipelineSpec.from_dict(_spec_dict(tmp_path, **over), base_dir=tmp_path)


def _lineage(tmp_path: Path) -> FileTransport:
    return FileTransport(tmp_path / "lineage")


def _scores(reg: Registry, version: int) -> np.ndarray:
    X, _ = datasets.german_credit_xy()
    return np.asarray(reg.load_model(MODEL, version).predict_proba(X))[:, 1]


def _decide(
    reg: Registry,
    *,
    version: int,
    variant: str,
    rows: range,
    start: Any,
    latency_ms: float = 2.0,
    shadow: int | None = None,
    shadow_scores_of: Callable[[int], float] | None = None,
) -> None:
    """Decisions of ``version`` (and, with ``shadow``, that version's shadow scores beside them,
    and outcomes) written straight into the decision log, one second apart from ``start``."""
    X, y = datasets.german_credit_xy()
    inputs = X.to_dict("records")
    scores = _scores(reg, version)
    other = _scores(reg, shadow) if shadow is not None else None
    recs, shadows, outs = [], [], []
    for k, i in enumerate(rows):
        did = str(uuid.uuid4())
        at = iso(start + timedelta(seconds=k))
        s = float(scores[i])
        recs.append({
            "id": did, "request_id": f"req-{did}", "entity_key": f"applicant-{i}",
            "model_name": MODEL, "version": version, "variant": variant,
            "inputs": jsonutil.dumps(inputs[i]), "score": s, "threshold": 0.5,
            "decision": "decline" if s >= 0.5 else "approve", "reason_codes": "[]",
            "latency_ms": latency_ms, "created_at": at,
        })  # fmt: skip
        if other is not None:
            ss = float(other[i]) if shadow_scores_of is None else shadow_scores_of(i)
            shadows.append({
                "decision_id": did, "model_name": MODEL, "version": shadow, "score": ss,
                "decision": "decline" if ss >= 0.5 else "approve", "latency_ms": 3.0,
                "created_at": at,
            })  # fmt: skip
            outs.append({"decision_id": did, "label": int(y[i]), "observed_at": None,
                         "recorded_at": at})  # fmt: skip
    with reg.db.write(registry_lock=False) as conn:
        conn.execute(decisions.insert(), recs)
        if shadows:
            conn.execute(shadow_scores.insert(), shadows)
            conn.execute(outcomes.insert(), outs)


def _shadow_traffic(reg: Registry, clock: ManualClock, candidate: int, **kw: Any) -> None:
    _decide(reg, version=1, variant="champion", rows=range(SHADOW_N), start=clock.now,
            shadow=candidate, **kw)  # fmt: skip
    clock.advance(timedelta(minutes=5))


def _canary_traffic(
    reg: Registry, clock: ManualClock, candidate: int, start: int, **kw: Any
) -> None:
    """40 applicants to the champion and 40 like them to the canary, in the canary's window."""
    clock.advance(timedelta(seconds=5))
    _decide(reg, version=1, variant="champion", rows=range(start, start + 40), start=clock.now)
    _decide(reg, version=candidate, variant="canary", rows=range(start, start + 40),
            start=clock.now, **kw)  # fmt: skip
    clock.advance(timedelta(minutes=5))


def _approve(reg: Registry, people: Any, version: int) -> None:
    reg.record_validation(people.val, MODEL, version, recommendation="approve",
                          summary="shadow and gates reviewed")  # fmt: skip
    reg.decide(people.app, MODEL, version, "approved", comment="approved for a canary")


def _validator() -> Any:
    doc = json.loads(SCHEMA.read_text())
    registry = jsonschema_rs.Registry([(doc["$id"], doc)], retriever=lambda uri: False)
    return jsonschema_rs.validator_for(
        {"$ref": doc["$id"] + "#/$defs/RunEvent"}, registry=registry, validate_formats=True
    )


def _events(tmp_path: Path, run_id: str) -> list[dict[str, Any]]:
    events = read_events(tmp_path / "lineage" / f"{run_id}.jsonl")
    v = _validator()
    for e in events:
        errors = [str(err) for err in v.iter_errors(e)]
        assert not errors, (e["eventType"], errors)
        assert e["run"]["runId"] == run_id
        assert e["job"] == {**e["job"], "namespace": "charter",
                            "name": f"{MODEL}.continuous_training"}  # fmt: skip
    return events


def _new_versions(reg: Registry) -> list[int]:
    return [v.version for v in reg.list_versions(MODEL) if v.version != 1]


# ---------------------------------------------------------------------------------- the whole run
def test_a_run_goes_from_fresh_data_to_a_promoted_champion(
    registry: Registry, people: Any, clock: ManualClock, tmp_path: Path
) -> None:
    reg = registry
    _with_champion(reg, people)
    spec = _spec(tmp_path)
    go = dict(trigger="retrain-1", lineage=_lineage(tmp_path))

    run = run_pipeline(reg, spec, **go)
    assert run.status == "waiting" and run.candidate_version == 2, run.reason
    assert [s.step for s in run.steps] == [
        "snapshot", "validate_data", "train", "register", "gates", "shadow",
    ]  # fmt: skip
    assert run.step("shadow").status == "waiting" and "scored 60 applicants" in str(run.reason)
    v2 = reg.get_version(MODEL, 2)
    assert v2.stage is Stage.VALIDATION and v2.aliases == ("shadow",)
    assert v2.author == "dana" and f"pipeline run {run.id}" in v2.description
    snap = run.step("snapshot").result
    assert v2.training_data.dataset_id == "gc-applications@2026-11"
    assert snap["rows"] == 1000 and len(snap["content_hash"]) == 64
    gate = reg.get_gate_run(run.step("gates").result["gate_run_id"])
    assert gate.passed and gate.run_by == "charter-automation"

    again = run_pipeline(reg, spec, **go)  # nothing new: no event, no change
    assert again.id == run.id and again.status == "waiting"
    assert len(reg.audit_log(action="pipeline.shadow")) == 1

    _shadow_traffic(reg, clock, 2)
    run = run_pipeline(reg, spec, **go)
    assert run.status == "awaiting_approval", run.reason
    compare = run.step("compare").result
    assert compare["verdict"] == "not_worse" and compare["labelled"] == SHADOW_N
    assert "auc" in compare and compare["agreement"] > 0.8
    assert "independent validator" in str(run.reason)

    _approve(reg, people, 2)
    run = run_pipeline(reg, spec, **go)
    assert run.status == "waiting" and run.step("canary").status == "done", run.reason
    assert reg.canary(MODEL)["version"] == 2 and reg.get_version(MODEL, 2).aliases == ()

    for round_ in range(3):
        _canary_traffic(reg, clock, 2, start=100 * (round_ + 1))
        run = run_pipeline(reg, spec, **go)
        if run.status != "waiting":
            break
    assert run.status == "succeeded", run.reason
    assert reg.get_model(MODEL).champion_version == 2

    events = reg.audit_log(model_name=MODEL, action="pipeline.*")
    assert {e.actor for e in events} == {"charter-automation"}
    assert [e.action for e in events if e.payload.get("status") != "waiting"] == [
        "pipeline.started", "pipeline.snapshot", "pipeline.validate_data", "pipeline.train",
        "pipeline.register", "pipeline.gates", "pipeline.shadow", "pipeline.compare",
        "pipeline.approval", "pipeline.canary", "pipeline.promote",
    ]  # fmt: skip
    register = next(e for e in events if e.action == "pipeline.register")
    assert register.payload["result"]["registered_as"] == "dana"
    assert register.payload["candidate_version"] == 2
    assert reg.verify_audit().ok

    lineage = _events(tmp_path, run.id)
    types = [e["eventType"] for e in lineage]
    assert types[0] == "START" and types[-1] == "COMPLETE" and set(types[1:-1]) == {"RUNNING"}
    last = lineage[-1]
    (data,) = last["inputs"]
    assert data["namespace"] == "file" and data["name"] == str(tmp_path / "applications.csv")
    assert data["facets"]["version"]["datasetVersion"] == snap["content_hash"]
    (out,) = last["outputs"]
    assert out["name"] == f"{MODEL}/versions/2"
    assert out["facets"]["version"]["datasetVersion"] == v2.artifact_sha256


# ---------------------------------------------------------------------------------- crashes
def test_a_crash_after_registering_resumes_with_exactly_one_candidate(
    registry: Registry, people: Any, clock: ManualClock, tmp_path: Path
) -> None:
    reg = registry
    _with_champion(reg, people)
    spec = _spec(tmp_path)

    def crash(step: str) -> None:
        if step == "register":
            raise SimulatedCrash(step)

    with pytest.raises(SimulatedCrash):
        run_pipeline(reg, spec, idempotency_key="gc:crash", lineage=_lineage(tmp_path),
                     before_commit=crash)  # fmt: skip
    dead = get_pipeline_run(reg, "gc:crash")
    assert dead.status == "running" and dead.step("register") is None
    assert _new_versions(reg) == [2]  # registered, but the step did not record it

    run = run_pipeline(reg, spec, idempotency_key="gc:crash", lineage=_lineage(tmp_path))
    assert run.id == dead.id and run.candidate_version == 2 and run.status == "waiting"
    assert run.step("register").result["adopted_after_crash"] is True
    assert _new_versions(reg) == [2]
    assert [e.subject for e in reg.audit_log(action="version.registered")] == [
        f"{MODEL}/1", f"{MODEL}/2",
    ]  # fmt: skip

    _shadow_traffic(reg, clock, 2)
    run = resume_pipeline(reg, run.id, lineage=_lineage(tmp_path))  # the stored spec
    assert run.status == "awaiting_approval", run.reason
    assert [s.status for s in run.steps][:-1] == ["done"] * 7
    assert _new_versions(reg) == [2]
    _events(tmp_path, run.id)


def test_crashes_after_each_registry_effect_do_not_repeat_it(
    registry: Registry, people: Any, tmp_path: Path
) -> None:
    """A crash after the gate run was recorded, then one after the shadow alias was set: each
    rerun finds the effect and does not repeat it."""
    reg = registry
    _with_champion(reg, people)
    spec = _spec(tmp_path)
    for step in ("gates", "shadow"):

        def crash(at: str, step: str = step) -> None:
            if at == step:
                raise SimulatedCrash(at)

        with pytest.raises(SimulatedCrash):
            run_pipeline(reg, spec, trigger="t", lineage=_lineage(tmp_path), before_commit=crash)
        assert get_pipeline_run(reg, f"{MODEL}:t").step(step) is None
    run = run_pipeline(reg, spec, trigger="t", lineage=_lineage(tmp_path))
    assert run.status == "waiting" and run.step("shadow").status == "waiting", run.reason
    assert len(reg.list_gate_runs(MODEL, 2)) == 1
    assert [e.subject for e in reg.audit_log(action="alias.set")].count(f"{MODEL}/2") == 1
    assert len(reg.audit_log(action="version.submit")) == 2  # v1 by hand, v2 by the pipeline
    assert _new_versions(reg) == [2]


def test_a_killed_process_is_resumed_with_exactly_one_candidate(
    registry: Registry, people: Any, tmp_path: Path, database_url: str
) -> None:
    """The pipeline's process is killed (SIGKILL: no cleanup, no finally) right after the
    registry committed the candidate; a rerun in another process resumes the same run."""
    reg = registry
    _with_champion(reg, people)
    spec_path = tmp_path / "ct.toml"
    d = _spec_dict(tmp_path)
    spec_path.write_text(_toml(d))
    script = textwrap.dedent(
        f"""
        import os, signal
        from datetime import datetime
        from charter.clock import ManualClock
        from charter.pipelines import PipelineSpec, run_pipeline
        from charter.pipelines.openlineage import FileTransport
        from charter.registry.service import Registry
        from charter.storage.artifacts import ArtifactStore
        from charter.storage.db import Database

        reg = Registry(Database({database_url!r}), ArtifactStore({str(reg.artifacts.root)!r}),
                       clock=ManualClock(datetime.fromisoformat("2026-11-22T10:00:00+00:00")))

        def die(step):
            if step == "register":
                os.kill(os.getpid(), signal.SIGKILL)

        run_pipeline(reg, PipelineSpec.from_toml({str(spec_path)!r}), trigger="nightly",
                     lineage=FileTransport({str(tmp_path / "lineage")!r}), before_commit=die)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert _new_versions(reg) == [2]

    spec = PipelineSpec.from_toml(spec_path)
    run = run_pipeline(reg, spec, trigger="nightly", lineage=_lineage(tmp_path))
    assert run.idempotency_key == f"{MODEL}:nightly" and run.candidate_version == 2
    assert run.status == "waiting" and run.step("register").result["adopted_after_crash"]
    assert _new_versions(reg) == [2]
    assert len(get_pipeline_run(reg, run.id).steps) == 6
    types = [e["eventType"] for e in _events(tmp_path, run.id)]
    assert types[0] == "START" and "COMPLETE" not in types


def _toml(d: dict[str, Any]) -> str:
    """A small TOML writer for the spec dict (tables one level deep, inline tables below)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return repr(v)

    lines = [f"{k} = {value(v)}" for k, v in d.items() if not isinstance(v, dict)]
    for k, v in d.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]", *(f"{kk} = {value(vv)}" for kk, vv in v.items())]
    return "\n".join(lines) + "\n"


def test_two_concurrent_starts_make_one_run_and_one_candidate(
    registry: Registry, people: Any, tmp_path: Path
) -> None:
    reg = registry
    _with_champion(reg, people)
    spec = _spec(tmp_path)
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def start() -> None:
        barrier.wait()
        try:
            results.append(run_pipeline(reg, spec, trigger="alert-9", lineage=_lineage(tmp_path)))
        except Conflict as e:
            results.append(e)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runs = [r for r in results if not isinstance(r, Exception)]
    assert runs and len({r.id for r in runs}) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception))
    assert len(reg.audit_log(action="pipeline.started")) == 1
    assert _new_versions(reg) == [2]
    assert run_pipeline(reg, spec, trigger="alert-9", lineage=_lineage(tmp_path)).id == runs[0].id


# ---------------------------------------------------------------------------------- other endings
def test_data_that_fails_validation_fails_the_run(
    registry: Registry, people: Any, tmp_path: Path
) -> None:
    reg = registry
    _with_champion(reg, people)
    frame = datasets.load_german_credit()
    frame.loc[frame.index[:80], "purpose"] = "spaceship"
    frame.loc[frame.index[:30], "duration_in_month"] = np.nan
    run = run_pipeline(reg, _spec(tmp_path, frame=frame), lineage=_lineage(tmp_path))
    assert run.status == "failed" and run.step("validate_data").status == "failed"
    assert "purpose: unseen_category_rate 0.08" in str(run.reason)
    assert "duration_in_month: missing_rate 0.03" in str(run.reason)
    assert _new_versions(reg) == []
    events = _events(tmp_path, run.id)
    assert [e["eventType"] for e in events][-1] == "FAIL"
    assert "unseen_category_rate" in events[-1]["run"]["facets"]["errorMessage"]["message"]


def test_failed_gates_stop_the_run_and_an_ended_run_stays_ended(
    registry: Registry, people: Any, tmp_path: Path
) -> None:
    from charter.pipelines.ct import _exclusive

    reg = registry
    _with_champion(reg, people)
    spec = _spec(tmp_path, policy=POLICY.replace("min_auc = 0.6", "min_auc = 0.99"))

    def crash(step: str) -> None:
        raise SimulatedCrash(step)

    with pytest.raises(SimulatedCrash):  # the run exists, no step is recorded
        run_pipeline(reg, spec, trigger="t", lineage=_lineage(tmp_path), before_commit=crash)
    run = get_pipeline_run(reg, f"{MODEL}:t")
    with _exclusive(reg.db, run.id), pytest.raises(Conflict) as held:
        run_pipeline(reg, spec, trigger="t", lineage=_lineage(tmp_path))
    assert "another process" in held.value.message and get_pipeline_run(reg, run.id).steps == ()

    run = run_pipeline(reg, spec, trigger="t", lineage=_lineage(tmp_path))
    assert run.status == "stopped" and "failed the gates" in str(run.reason)
    assert reg.get_version(MODEL, 2).stage is Stage.DEVELOPMENT
    assert [e["eventType"] for e in _events(tmp_path, run.id)][-1] == "ABORT"
    # An ended run is returned as it is; its key cannot start a run of another spec.
    assert run_pipeline(reg, spec, trigger="t", lineage=_lineage(tmp_path)) == run
    with pytest.raises(Conflict) as other:
        run_pipeline(reg, replace(spec, seed=8), trigger="t", lineage=_lineage(tmp_path))
    assert other.value.field == "idempotency_key"


def test_a_worse_candidate_is_stopped_and_loses_its_shadow(
    registry: Registry, people: Any, clock: ManualClock, tmp_path: Path
) -> None:
    reg = registry
    _with_champion(reg, people)
    spec = _spec(tmp_path)
    run = run_pipeline(reg, spec, trigger="t", lineage=_lineage(tmp_path))
    noise = np.random.default_rng(3).random(1000)
    _shadow_traffic(reg, clock, 2, shadow_scores_of=lambda i: float(noise[i]))
    run = run_pipeline(reg, spec, trigger="t", lineage=_lineage(tmp_path))
    assert run.status == "stopped" and run.step("compare").status == "failed"
    assert "worse than the champion" in str(run.reason)
    assert reg.get_version(MODEL, 2).aliases == ()
    assert run.step("compare").result["verdict"] == "worse"


def test_a_rejection_stops_the_run(
    registry: Registry, people: Any, clock: ManualClock, tmp_path: Path
) -> None:
    reg = registry
    _with_champion(reg, people, tier="medium")
    spec = _spec(tmp_path)
    run_pipeline(reg, spec, trigger="t", lineage=_lineage(tmp_path))
    _shadow_traffic(reg, clock, 2)
    run = run_pipeline(reg, spec, trigger="t", lineage=_lineage(tmp_path))
    assert run.status == "awaiting_approval"
    reg.record_validation(people.val, MODEL, 2, recommendation="approve", summary="ok")
    run = run_pipeline(reg, spec, trigger="t", lineage=_lineage(tmp_path))
    assert run.status == "awaiting_approval" and "approver's decision" in str(run.reason)
    reg.decide(people.app, MODEL, 2, "rejected", comment="not before the Q4 review")
    run = run_pipeline(reg, spec, trigger="t", lineage=_lineage(tmp_path))
    assert run.status == "stopped" and "rejected v2: not before the Q4 review" in str(run.reason)
    assert reg.get_version(MODEL, 2).aliases == ()


def test_a_low_tier_waiver_still_needs_an_approved_version(
    registry: Registry, people: Any, clock: ManualClock, tmp_path: Path
) -> None:
    reg = registry
    _with_champion(reg, people, tier="low")
    spec = _spec(tmp_path)
    run_pipeline(reg, spec, trigger="t", lineage=_lineage(tmp_path))
    _shadow_traffic(reg, clock, 2)
    run = run_pipeline(reg, spec, trigger="t", lineage=_lineage(tmp_path))
    approval = run.step("approval")
    assert run.status == "awaiting_approval" and approval.result["required"] is False
    assert "only approved versions" in approval.result["note"]


def test_a_canary_that_breaches_a_guardrail_rolls_the_run_back(
    registry: Registry, people: Any, clock: ManualClock, tmp_path: Path
) -> None:
    reg = registry
    _with_champion(reg, people)
    spec = _spec(tmp_path)
    run_pipeline(reg, spec, trigger="t", lineage=_lineage(tmp_path))
    _shadow_traffic(reg, clock, 2)
    run_pipeline(reg, spec, trigger="t", lineage=_lineage(tmp_path))
    _approve(reg, people, 2)
    run = run_pipeline(reg, spec, trigger="t", lineage=_lineage(tmp_path))
    assert run.step("canary").status == "done"
    _canary_traffic(reg, clock, 2, start=100, latency_ms=900.0)
    run = run_pipeline(reg, spec, trigger="t", lineage=_lineage(tmp_path))
    assert run.status == "rolled_back" and "latency_p99_ms" in str(run.reason)
    assert reg.get_model(MODEL).champion_version == 1
    assert [e["eventType"] for e in _events(tmp_path, run.id)][-1] == "ABORT"


def test_the_schedulers_runner_starts_one_run_per_trigger_and_links_it(
    registry: Registry,
    people: Any,
    clock: ManualClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from charter.monitoring import store
    from charter.pipelines.ct import scheduled_runner
    from charter.storage.schema import retrain_triggers

    reg = registry
    _with_champion(reg, people)
    spec_path = tmp_path / "ct.toml"
    spec_path.write_text(_toml(_spec_dict(tmp_path)))
    with reg.db.write() as conn:
        for day in (1, 2):
            conn.execute(
                retrain_triggers.insert().values(
                    model_name=MODEL, kinds='["auc_drop"]', detail="{}", pipeline_run_id=None,
                    window_end=f"2026-11-0{day}T00:00:00.000000Z", fired_at=iso(clock()),
                )
            )  # fmt: skip
    monkeypatch.setenv("CHARTER_HOME", str(tmp_path / "home"))  # lineage goes there
    model = SimpleNamespace(name=MODEL, pipeline=spec_path)
    first, second = store.list_triggers(reg.db, MODEL)
    assert scheduled_runner(reg, SimpleNamespace(name=MODEL, pipeline=None), first) is None

    run = scheduled_runner(reg, model, first)
    assert run is not None and run.idempotency_key == f"{MODEL}:trigger-{first.id}"
    assert run.status == "waiting" and run.candidate_version == 2
    assert scheduled_runner(reg, model, second) is None  # one candidate at a time
    first, second = store.list_triggers(reg.db, MODEL)
    assert first.pipeline_run_id == run.id and second.pipeline_run_id is None
    again = scheduled_runner(reg, model, first)  # resumed from the stored spec
    assert again is not None and again.id == run.id and again.status == "waiting"
    assert _new_versions(reg) == [2]
    events = read_events(tmp_path / "home" / "lineage" / f"{run.id}.jsonl")
    assert events[0]["eventType"] == "START"
