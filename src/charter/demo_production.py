"""The demo's second part: six months of a retail PD model in production.

The building blocks are library calls that the integration tests reuse: a champion registered,
validated, approved and deployed in simulated time (:func:`register_champion`), and the live
period replayed through the decision log day by day (:func:`replay_live`), with a callback at each
simulated day where monitoring, the scheduler or a canary can act.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd

from charter.clock import ManualClock
from charter.datasets import retail_pd
from charter.entities import Actor
from charter.registry.service import Registry

VALIDATION_OOT_DAYS = 90
SETUP_TIME = retail_pd.LIVE_START - timedelta(days=10)  # v1 is validated and deployed


@dataclass(frozen=True)
class Champion:
    version: int
    gate_run_id: int
    auc_holdout: float
    auc_out_of_time: float


def split_history(frame: pd.DataFrame, seed: int = 7) -> dict[str, pd.DataFrame]:
    """Train (70% of the first nine months), holdout (the other 30%) and out-of-time (the last
    three months before going live)."""
    cut = retail_pd.LIVE_START - timedelta(days=VALIDATION_OOT_DAYS)
    early = frame[frame["decision_time"] < cut]
    holdout = early.sample(frac=0.3, random_state=seed)
    return {
        "train": early.drop(holdout.index),
        "holdout": holdout,
        "out_of_time": frame[frame["decision_time"] >= cut],
    }


def register_champion(
    reg: Registry,
    *,
    developer: Actor,
    validator: Actor,
    approver: Actor,
    history: pd.DataFrame | None = None,
) -> Champion:
    """Create the retail PD model, train v1 on the history, run the policy's gates as the
    validator, recommend, approve and make it champion (each by the right person)."""
    from charter.validation.runner import validate

    frame = retail_pd.history() if history is None else history
    data = split_history(frame)
    reg.create_model(
        developer,
        name=retail_pd.MODEL,
        purpose="Probability that a retail loan applicant defaults (synthetic population)",
        business_use="Approve or decline personal loan applications",
        decision_type="credit approval",
        owner="Head of Retail Credit Risk",
        team="Retail Credit Analytics",
        risk_tier="high",
        upstream=["loan-origination.applications"],
        downstream=["loan-origination-system"],
    )
    train = data["train"]
    v = reg.log_model(
        developer,
        retail_pd.MODEL,
        retail_pd.estimator(),
        X=train[list(retail_pd.FEATURES)],
        y=train[retail_pd.LABEL].to_numpy(),
        dataset_id="synthetic-retail-applications/history-train",
        fit=True,
        description="Scaled logistic regression with one-hot categories",
        threshold=retail_pd.THRESHOLD,
    )
    reg.transition(developer, retail_pd.MODEL, v.version, "validation")
    run, record = validate(
        reg, validator, retail_pd.MODEL, v.version, retail_pd.policy_text(), data
    )
    perf = run.gate("performance").evidence["metrics"]
    auc_h, auc_o = perf["holdout"]["auc"], perf["out_of_time"]["auc"]
    if not run.passed:
        raise RuntimeError(f"the retail PD champion failed its gates: {run.failed_gates}")
    reg.record_validation(
        validator,
        retail_pd.MODEL,
        v.version,
        recommendation="approve",
        summary=f"All gates passed: AUC {auc_h:.3f} holdout, {auc_o:.3f} out-of-time",
        gate_run_id=record.id,
    )
    reg.decide(approver, retail_pd.MODEL, v.version, "approve", comment="first release")
    reg.set_alias(approver, retail_pd.MODEL, v.version, "champion", expected=None)
    return Champion(v.version, record.id, auc_h, auc_o)


def replay_live(
    reg: Registry,
    clock: ManualClock,
    frame: pd.DataFrame,
    *,
    on_day: Callable[[date], None] | None = None,
    canary_every: timedelta | None = timedelta(hours=12),
    **kw: Any,
) -> Any:
    """Replay live applications through the decision log; at the end of each simulated day the
    clock moves to the next midnight, then ``on_day`` runs."""
    from charter.monitoring.replay import replay_applications

    def tick(day: date) -> None:
        clock.now = datetime.combine(day + timedelta(days=1), time(0), UTC)
        if on_day is not None:
            on_day(day)

    return replay_applications(
        reg,
        retail_pd.MODEL,
        frame,
        features=list(retail_pd.FEATURES),
        on_day=tick,
        canary_every=canary_every,
        **kw,
    )


# ------------------------------------------------------------------------------------ the story
PIPELINE_SPEC = """# The continuous-training spec of retail-pd (written next to the policy).
model = "retail-pd"
developer = "dana"               # accountable for the candidates the automation trains
seed = 20260101
shadow_decisions = 600

[data]
path = "warehouse/applications.csv"   # the warehouse's labelled applications, refreshed monthly
id = "warehouse.retail_applications"

[training]
estimator = "sklearn.linear_model.LogisticRegression"
params = { C = 1.0, max_iter = 2000 }
preprocess = "auto"

[validation]
policy = "retail_pd_policy.toml"
split = "fraction"
holdout = 0.2
out_of_time = 0.2

[compare]
require_labels = true            # compare on outcomes, not only on agreement
min_labels = 200
max_auc_drop = 0.01

[canary]
steps = [0.2, 0.5, 1.0]
min_decisions = 60
max_error_rate = 0.01
max_latency_p99_ms = 250.0
max_score_psi = 0.50            # a retrain answers a drift: its scores are meant to move
max_approval_rate_delta = 0.15
"""

SCHEDULER_CONFIG = """[scheduler]
interval = "1d"
webhook = "{webhook}"

[[models]]
name = "retail-pd"
policy = "retail_pd_policy.toml"
pipeline = "retail_pd_pipeline.toml"
start = "2026-01-01"
"""

WAREHOUSE_DAYS = 60


class _Receiver:
    """A local webhook receiver standing in for the bank's Alertmanager."""

    def __init__(self) -> None:
        import http.server
        import threading

        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                import json

                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alertmanager"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _warehouse(frame: pd.DataFrame, now: datetime, path: Any) -> int:
    """The bank's warehouse table: applications of the last 60 days whose outcome is known."""
    t = frame["decision_time"]
    rows = frame[(t >= now - timedelta(days=WAREHOUSE_DAYS)) & (frame["label_available_at"] <= now)]
    path.parent.mkdir(parents=True, exist_ok=True)
    out = rows[["application_id", "decision_time", *retail_pd.FEATURES, retail_pd.LABEL]]
    out.to_csv(path, index=False)
    return len(out)


def story(
    reg: Registry,
    clock: ManualClock,
    console: Any,
    home: Any,
    *,
    first_step: int,
    step: Callable[[Any, int, str], None],
) -> dict[str, Any]:
    """Six simulated months of retail-pd in production, told step by step; returns the facts a
    test checks (alerts, triggers, the pipeline run, the champion)."""
    from pathlib import Path

    from rich.table import Table

    from charter.monitoring import store
    from charter.monitoring.alert_store import AlertStore
    from charter.pipelines.ct import list_pipeline_runs
    from charter.scheduler import Scheduler, SchedulerConfig

    ident = reg.identity
    dana, victor, petra = (ident.actor(u) for u in ("dana", "victor", "petra"))
    work = Path(home) / "production"
    work.mkdir(parents=True, exist_ok=True)
    (work / "retail_pd_policy.toml").write_text(retail_pd.policy_text(), encoding="utf-8")
    (work / "retail_pd_pipeline.toml").write_text(PIPELINE_SPEC, encoding="utf-8")

    step(console, first_step, "retail-pd v1: trained, validated and deployed (simulated Dec 2025)")
    champion = register_champion(reg, developer=dana, validator=victor, approver=petra)
    console.print(
        f"victor's gates passed (AUC {champion.auc_holdout:.3f} holdout, "
        f"{champion.auc_out_of_time:.3f} out-of-time, gate run #{champion.gate_run_id}); "
        f"petra approved v{champion.version} and made it champion"
    )

    step(console, first_step + 1, "Six months of applications, replayed day by day (Jan-Jun 2026)")
    receiver = _Receiver()
    (work / "scheduler.toml").write_text(
        SCHEDULER_CONFIG.format(webhook=receiver.url), encoding="utf-8"
    )
    scheduler = Scheduler(reg, SchedulerConfig.load(work / "scheduler.toml"))
    live = retail_pd.live()
    clock.now = retail_pd.LIVE_START
    console.print(
        f"{len(live):,} synthetic applications; from 2026-04-01 incomes fall and debt and "
        "utilisation rise (0.4 sd each) and debt weighs more on default; first-payment defaults "
        "are known 10-20 days after each decision; `charter scheduler` ticks every simulated day"
    )
    seen_runs: dict[str, str] = {}
    approved: set[int] = set()
    alerts = AlertStore(reg.db, clock=reg.clock)

    def on_day(day: date) -> None:
        now = clock.now
        if (now - retail_pd.LIVE_START).days % 30 == 0:
            _warehouse(live, now, work / "warehouse" / "applications.csv")
        report = scheduler.tick(now)
        for name, n in report.windows.items():
            if n:
                last = store.list_windows(reg.db, name)[-1]
                console.print(
                    f"[dim]{now.date()}[/] monitored window {last.window_start.date()} .. "
                    f"{last.window_end.date()}: {last.n_decisions:,} decisions"
                )
        for a in alerts.list_alerts(model=retail_pd.MODEL, status="all"):
            key = f"alert-{a.id}-{a.severity}-{a.status}"
            if key not in seen_runs:
                seen_runs[key] = key
                what = a.feature or a.metric
                console.print(
                    f"[dim]{now.date()}[/] alert #{a.id} {a.severity.upper()} {a.status}: "
                    f"{a.metric} {what} = {a.value:.3f}"
                    if a.value is not None
                    else f"[dim]{now.date()}[/] alert #{a.id} {a.severity} {a.status}"
                )
        for t in report.triggers:
            trig = next(x for x in store.list_triggers(reg.db, retail_pd.MODEL) if x.id == t)
            console.print(
                f"[dim]{now.date()}[/] retraining trigger #{t} fired: "
                + "; ".join(r["detail"] for r in trig.detail["reasons"])
            )
        for run in list_pipeline_runs(reg, retail_pd.MODEL):
            state = f"{run.status}:{run.current_step}"
            if seen_runs.get(run.id) != state:
                seen_runs[run.id] = state
                why = f" ({run.reason})" if run.reason else ""
                console.print(
                    f"[dim]{now.date()}[/] pipeline {run.id[:8]}: {run.status}, next step "
                    f"{run.current_step or '-'}{why}"
                )
            if run.status == "awaiting_approval" and run.candidate_version not in approved:
                v = int(run.candidate_version or 0)
                approved.add(v)
                _approve_candidate(reg, console, victor, petra, v, run.id, now)

    try:
        summary = replay_live(reg, clock, live, on_day=on_day, canary_every=None)
    finally:
        receiver.close()
    console.print(
        f"replayed {summary.decisions:,} decisions, {sum(summary.shadow_scores.values()):,} "
        f"shadow scores, {summary.outcomes:,} outcomes in {summary.seconds:.1f} s"
    )

    step(console, first_step + 2, "What monitoring saw: six dimensions per monthly window")
    t = Table("from", "v", "n", "approved", "score PSI", "drifted", "AUC est.", "AUC",
              "bad rate", "labels", title="30-day windows")  # fmt: skip
    for w in store.list_windows(reg.db, retail_pd.MODEL):
        d = w.report["dimensions"]
        est = d.get("estimated", {})
        perf = d.get("performance", {})
        auc = perf.get("auc") if perf.get("judged") else None
        half = (est["auc_high"] - est["auc_low"]) / 2 if est.get("auc_high") else None
        t.add_row(
            f"{w.window_start:%b %d}",
            str(w.version),
            f"{w.n_decisions:,}",
            _f(d["prediction"].get("approval_rate")),
            _f(d["prediction"].get("score_psi")),
            str(d["data_drift"].get("features_drifted")),
            f"{_f(est.get('auc'))}±{_f(half)[1:]}" if half is not None else "-",
            _f(auc),
            _f(d["business"].get("default_rate")),
            w.labels_status[:7],
        )
    console.print(t)
    console.print(
        "The label-free estimate (±: its 95% band if the scores are calibrated) matches the "
        "realised AUC while the population is stable; after the drift, defaults outrun the "
        "scores (calibration broke), which is why it is read beside the realised value once "
        "labels mature."
    )

    step(console, first_step + 3, "Alerts, their webhook notifications, and the trigger")
    all_alerts = alerts.list_alerts(model=retail_pd.MODEL, status="all")
    t = Table("id", "severity", "status", "metric", "value", "since", "windows")
    for a in all_alerts:
        what = f"{a.metric} {a.feature}" if a.feature else a.metric
        t.add_row(str(a.id), a.severity, a.status, what, _f(a.value),
                  f"{a.first_window_end:%m-%d}", str(a.windows_breached))  # fmt: skip
    console.print(t)
    console.print(
        f"{len(receiver.received)} Alertmanager webhook payloads delivered (version "
        f"{receiver.received[0]['version'] if receiver.received else '-'}); "
        "`charter alerts list` shows them, `charter alerts ack` takes one on"
    )
    triggers = store.list_triggers(reg.db, retail_pd.MODEL)
    for trig in triggers:
        console.print(
            f"trigger #{trig.id} at {trig.window_end.date()} ({', '.join(trig.kinds)}) -> "
            f"pipeline run {trig.pipeline_run_id or 'none (one candidate at a time)'}"
        )

    step(console, first_step + 4, "The governed retrain: from trigger to promotion")
    runs = sorted(list_pipeline_runs(reg, retail_pd.MODEL), key=lambda r: r.created_at)
    final_run = runs[0] if runs else None  # the first retrain, from the drift's trigger
    if final_run is not None:
        t = Table("step", "status", "done on", "detail")
        for s in final_run.steps:
            detail = s.result.get("reason") or _step_detail(s.step, s.result)
            t.add_row(s.step, s.status, f"{s.finished_at:%m-%d}" if s.finished_at else "-", detail)
        console.print(t)
        lineage = Path(home) / "lineage" / f"{final_run.id}.jsonl"
        console.print(
            f"pipeline run {final_run.id}: {final_run.status}; OpenLineage events in {lineage}"
        )
    for later in runs[1:]:
        console.print(
            f"pipeline run {later.id[:8]} (trigger {later.trigger}): {later.status}, next step "
            f"{later.current_step or '-'} (the drift goes on, so the schedule and events retrain "
            "again: one candidate at a time)"
        )
    m = reg.get_model(retail_pd.MODEL)
    console.print(f"champion of retail-pd at the end of June: v{m.champion_version}")
    return {
        "alerts": all_alerts,
        "triggers": triggers,
        "run": final_run,
        "champion": m.champion_version,
        "payloads": receiver.received,
    }


def _approve_candidate(
    reg: Registry, console: Any, victor: Actor, petra: Actor, version: int, run_id: str, now: Any
) -> None:
    """The humans' part: an independent recommendation, then the approver's decision."""
    runs = reg.list_gate_runs(retail_pd.MODEL, version)
    gate_run = runs[-1] if runs else None
    perf = gate_run.report["gates"] if gate_run else []
    auc = next(
        (g["evidence"]["metrics"]["holdout"]["auc"] for g in perf if g["gate"] == "performance"),
        None,
    )
    reg.record_validation(
        victor,
        retail_pd.MODEL,
        version,
        recommendation="approve",
        summary=f"Retrained on the new applicant mix; gates passed (holdout AUC {_f(auc)}); "
        "better than the champion on shadow traffic",
        gate_run_id=None if gate_run is None else gate_run.id,
    )
    reg.decide(petra, retail_pd.MODEL, version, "approve", comment=f"pipeline run {run_id[:8]}")
    console.print(
        f"[dim]{now.date()}[/] victor recommended v{version}, petra approved it (a person's "
        "approval is required for a high-tier model)"
    )


def _step_detail(step: str, result: Mapping[str, Any]) -> str:
    keys = {
        "snapshot": ("rows", "content_hash"),
        "validate_data": ("rows",),
        "train": ("training", "auc_holdout"),
        "register": ("version", "registered_as"),
        "gates": ("gate_run_id", "passed"),
        "shadow": ("decisions",),
        "compare": ("verdict", "auc_champion", "auc_candidate"),
        "approval": ("tier",),
        "canary": ("started",),
        "promote": ("champion",),
    }.get(step, ())
    parts = []
    for k in keys:
        v = result.get(k)
        if v is None:
            continue
        parts.append(f"{k} {str(v)[:12] if isinstance(v, str) else _f(v)}")
    return ", ".join(parts)


def _f(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return f"{x:,}"
    return f"{float(x):.3f}"
