"""What Charter gives Prometheus and Grafana: the monitoring collector's exposition (alone and on
the service's /metrics), and the shipped alerting rules and dashboard, checked against the
metrics Charter really exports and by ``promtool``."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest

from charter.clock import ManualClock, iso
from charter.errors import StoreUnavailable
from charter.monitoring.alert_store import AlertStore
from charter.monitoring.alerts import DEFAULT_THRESHOLDS, AlertPolicy, Observation, alertname
from charter.monitoring.catalogue import ALERTS_OPEN_METRIC, METRICS, WINDOW_END_METRIC
from charter.monitoring.prometheus import MonitoringCollector, exported_names
from charter.serving.app import Metrics, _DecisionLogCollector
from charter.storage.db import Database
from charter.storage.schema import monitor_series, monitor_windows

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "charter-rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "charter-monitoring.json"
FEB = datetime(2026, 2, 1, tzinfo=UTC)


# ------------------------------------------------------------------------- what Charter exports
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
    "summary": ("", "_sum", "_count", "_created"),
}


def serving_names() -> set[str]:
    """The sample names of the serving app's own metric families, with the suffixes that
    prometheus_client adds (a counter ``x`` is exposed as ``x_total`` and ``x_created``)."""
    log = SimpleNamespace(batches=0, rows=0)
    families = [
        *Metrics().registry.collect(),
        *_DecisionLogCollector(log).collect(),  # type: ignore[arg-type]
    ]
    return {f.name + s for f in families for s in SUFFIXES[f.type]}


EXPORTED = frozenset(exported_names() | serving_names())

# PromQL words that are not metric names.
_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
    "offset", "inf", "nan", "atan2", "start", "end",
    # aggregation operators, which may take "by (...)" before their parentheses
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
    "topk", "quantile",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (also inside Grafana's label_values())."""
    grafana = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", expr, re.S)
    if grafana:  # Grafana's label_values(<series selector>, <label>)
        expr = grafana.group(1)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # string literals
    text = re.sub(r"'(?:\\.|[^'\\])*'", "''", text)
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables ($model, ${datasource})
    text = re.sub(r"\{[^{}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range and subquery durations
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", text
    )  # grouping label lists
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names


def test_the_promql_reader_finds_metric_names_and_only_them() -> None:
    assert metric_names(
        'sum by (model, le) (rate(charter_request_latency_seconds_bucket{model=~"$model"}'
        "[$__rate_interval])) / on (model) group_left(x) charter_requests_total > bool 0.5"
    ) == {"charter_request_latency_seconds_bucket", "charter_requests_total"}
    assert metric_names("time() - max by (model) (up) > 35 * 86400") == {"up"}
    assert metric_names('label_values(charter_monitor_feature_psi{model=~"$model"}, feature)') == {
        "charter_monitor_feature_psi"
    }
    assert metric_names('x{code=~"a|b (c)"} offset 5m unless y') == {"x", "y"}


def test_what_charter_exports_includes_the_catalogue_and_serving_families() -> None:
    assert {m.prometheus_name for m in METRICS.values()} <= EXPORTED
    assert {WINDOW_END_METRIC, ALERTS_OPEN_METRIC} <= EXPORTED
    assert {
        "charter_requests_total",
        "charter_errors_total",
        "charter_request_latency_seconds_bucket",
        "charter_score_bucket",
    } <= EXPORTED
    assert "charter_requests" not in EXPORTED  # a counter is exposed with _total only


# --------------------------------------------------------------------------------- the collector
def add_window(
    db: Database,
    model: str,
    version: int,
    end: datetime,
    values: dict[tuple[str, str], float | None],
    days: int = 30,
) -> None:
    start = end - timedelta(days=days)
    report = json.dumps({"values": [[m, f, v] for (m, f), v in values.items()]})
    with db.write() as conn:
        conn.execute(
            monitor_windows.insert().values(
                model_name=model, version=version, window_start=iso(start), window_end=iso(end),
                n_decisions=1000, labels_status="none", report=report,
                report_sha256=hashlib.sha256(report.encode()).hexdigest(),
                computed_at=iso(end),
            )
        )  # fmt: skip
        for (metric, feature), value in values.items():
            dimension = METRICS[metric].dimension if metric in METRICS else "unknown"
            conn.execute(
                monitor_series.insert().values(
                    model_name=model, version=version, window_start=iso(start),
                    window_end=iso(end), metric=metric, feature=feature, dimension=dimension,
                    value=value,
                )
            )  # fmt: skip


def exposition(collector: MonitoringCollector) -> str:
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of the exposition text (labels in any order), or None."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name + "{"):
            continue
        head, _, value = line.rpartition(" ")
        got = dict(re.findall(r'(\w+)="((?:\\.|[^"\\])*)"', head[len(name) :]))
        if got == labels:
            return float(value)
    return None


def test_the_collector_exports_the_newest_window_of_each_monitored_version(
    database: Database, clock: ManualClock
) -> None:
    add_window(database, "pd-model", 1, FEB - timedelta(days=31), {("feature_psi", "income"): 0.05})
    add_window(
        database,
        "pd-model",
        1,
        FEB,
        {
            ("feature_psi", "income"): 0.31,
            ("feature_psi", "age"): 0.04,
            ("score_psi", ""): 0.12,
            ("auc", ""): None,  # not computed: not exported
            ("mystery_metric", ""): 1.0,  # not in the catalogue: not exported
        },
    )
    add_window(database, "pd-model", 2, FEB, {("score_psi", ""): 0.02})
    add_window(database, "pd-model", 0, FEB - timedelta(days=120), {("score_psi", ""): 0.9})
    AlertStore(database, clock).apply_window(
        [
            Observation(
                metric="feature_psi", value=0.31, feature="income", model="pd-model",
                version=1, window_start=FEB - timedelta(days=30), window_end=FEB,
            )
        ],
        AlertPolicy.default(),
    )  # fmt: skip
    text = exposition(MonitoringCollector(database, clock=ManualClock(FEB)))

    psi = "charter_monitor_feature_psi"
    assert sample(text, psi, model="pd-model", version="1", feature="income") == 0.31
    assert sample(text, psi, model="pd-model", version="1", feature="age") == 0.04
    assert sample(text, "charter_monitor_score_psi", model="pd-model", version="1") == 0.12
    assert sample(text, "charter_monitor_score_psi", model="pd-model", version="2") == 0.02
    assert sample(text, "charter_monitor_score_psi", model="pd-model", version="0") is None
    assert "charter_monitor_auc{" not in text and "mystery" not in text
    assert "# TYPE charter_monitor_feature_psi gauge" in text
    assert "# HELP charter_monitor_feature_psi PSI of the feature against the reference" in text
    end = sample(text, WINDOW_END_METRIC, model="pd-model", version="1")
    assert end == FEB.timestamp()
    assert sample(text, ALERTS_OPEN_METRIC, model="pd-model", severity="critical", status="open")
    assert (
        sample(text, ALERTS_OPEN_METRIC, model="pd-model", severity="warning", status="open") == 0
    )
    assert (
        sample(
            text, ALERTS_OPEN_METRIC, model="pd-model", severity="critical", status="acknowledged"
        )
        == 0
    )
    names = {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if not line.startswith("#")
    }
    assert names <= EXPORTED


def test_the_collector_caches_and_survives_a_database_outage(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    add_window(database, "fraud", 4, FEB, {("error_rate", ""): 0.001})
    clock = ManualClock(FEB)
    collector = MonitoringCollector(database, cache_seconds=60, clock=clock)
    assert sample(exposition(collector), "charter_monitor_error_rate", model="fraud", version="4")
    add_window(database, "fraud", 4, FEB + timedelta(days=30), {("error_rate", ""): 0.07})
    clock.advance(timedelta(seconds=30))
    cached = exposition(collector)
    assert sample(cached, "charter_monitor_error_rate", model="fraud", version="4") == 0.001
    clock.advance(timedelta(seconds=31))
    fresh = exposition(collector)
    assert sample(fresh, "charter_monitor_error_rate", model="fraud", version="4") == 0.07

    class Down:
        @contextmanager
        def read(self) -> Iterator[Any]:
            raise StoreUnavailable("the database cannot be used: connection refused")
            yield

    collector.db = Down()  # type: ignore[assignment]
    clock.advance(timedelta(minutes=5))
    with caplog.at_level(logging.WARNING, logger="charter.monitoring"):
        stale = exposition(collector)
    assert sample(stale, "charter_monitor_error_rate", model="fraud", version="4") == 0.07
    assert "could not be read" in caplog.text
    collector.invalidate()
    assert "charter_monitor_error_rate{" not in exposition(collector)


def test_the_service_exports_monitoring_on_metrics(client: TestClient, served: Any) -> None:
    db = served.registry.db
    add_window(db, "gc-scorecard", 1, FEB, {("feature_psi", "duration"): 0.27})
    body = client.get("/metrics").text
    assert (
        sample(body, "charter_monitor_feature_psi", model="gc-scorecard", version="1",
               feature="duration")
        == 0.27
    )  # fmt: skip
    assert sample(body, WINDOW_END_METRIC, model="gc-scorecard", version="1") == FEB.timestamp()
    assert "charter_alerts_open{" in body
    assert "charter_requests_total" in body or "# TYPE charter_requests counter" in body


# -------------------------------------------------------------------------------- the rule file
def load_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_every_rule_reads_only_metrics_charter_exports() -> None:
    rules = load_rules()
    assert len(rules) >= 20
    for rule in rules:
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= EXPORTED, f"{rule['alert']} reads {sorted(used - EXPORTED)}"
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_the_rules_cover_the_issue_and_use_the_default_thresholds() -> None:
    rules = load_rules()
    names = {r["alert"] for r in rules}
    for needed in (
        "CharterFeaturePsi", "CharterScorePsi", "CharterAucChange", "CharterAucEstimatedChange",
        "CharterServingErrors", "CharterServingLatencyP99", "CharterMonitoringStale",
        "CharterOpenCriticalAlerts",
    ):  # fmt: skip
        assert needed in names
    policy = AlertPolicy.default()
    by_name = {alertname(m): m for m in DEFAULT_THRESHOLDS}
    checked = 0
    for rule in rules:
        metric = by_name.get(rule["alert"])
        if metric is None:
            continue
        threshold = policy.rules[metric].threshold(rule["labels"]["severity"])
        numbers = {float(x) for x in re.findall(r"(?<![\w.])-?\d+(?:\.\d+)?", rule["expr"])}
        assert threshold in numbers, f"{rule['alert']} ({rule['labels']['severity']})"
        assert f"charter_monitor_{metric}" in rule["expr"]
        checked += 1
    assert checked >= 20


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not installed: run `make system-deps-test`, which installs Debian's "
            "prometheus package (or apt-get install --no-install-recommends prometheus)"
        )
    return path


def test_promtool_accepts_the_rules() -> None:
    out = subprocess.run(
        [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def _rule_expr(alert: str, severity: str) -> str:
    (rule,) = [
        r for r in load_rules() if r["alert"] == alert and r["labels"]["severity"] == severity
    ]
    return str(rule["expr"]).strip()


def test_the_rules_fire_on_synthetic_series(tmp_path: Path) -> None:
    """promtool evaluates each rule's expression on series laid out like Charter's (two serving
    replicas exporting the same monitoring numbers, live counters and a latency histogram)."""

    def fired(alert: str, severity: str, by: str) -> str:
        return f"count by ({by}) ({_rule_expr(alert, severity)})"

    def case(expr: str, at: str, labels: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "expr": expr,
            "eval_time": at,
            "exp_samples": [
                {"labels": "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(lb.items())) + "}",
                 "value": 1}
                for lb in labels
            ],
        }  # fmt: skip

    psi = "charter_monitor_feature_psi"
    series = [
        {"series": f'{psi}{{model="pd", version="3", feature="income", instance="a"}}',
         "values": "0.3x30"},
        {"series": f'{psi}{{model="pd", version="3", feature="income", instance="b"}}',
         "values": "0.3x30"},
        {"series": f'{psi}{{model="pd", version="3", feature="age"}}', "values": "0.15x30"},
        {"series": f'{psi}{{model="pd", version="3", feature="region"}}', "values": "0.02x30"},
        {"series": 'charter_monitor_auc_change{model="pd", version="3"}', "values": "-0.06x30"},
        {"series": 'charter_monitor_auc_change{model="pd", version="4"}', "values": "-0.04x30"},
        {"series": 'charter_monitor_approval_rate_change{model="pd", version="3"}',
         "values": "-0.07x30"},
        {"series": 'charter_requests_total{model="pd", version="3", variant="champion", '
                   'status="ok"}', "values": "0+90x30"},
        {"series": 'charter_errors_total{model="pd", code="scoring_failed"}', "values": "0+10x30"},
        {"series": 'charter_errors_total{model="pd", code="invalid_argument"}',
         "values": "0+5x30"},
        {"series": 'charter_request_latency_seconds_bucket{model="pd", variant="champion", '
                   'le="0.25"}', "values": "0x30"},
        {"series": 'charter_request_latency_seconds_bucket{model="pd", variant="champion", '
                   'le="0.5"}', "values": "0+100x30"},
        {"series": 'charter_request_latency_seconds_bucket{model="pd", variant="champion", '
                   'le="+Inf"}', "values": "0+100x30"},
        {"series": 'charter_alerts_open{model="pd", severity="critical", status="open", '
                   'instance="a"}', "values": "2x30"},
        {"series": 'charter_alerts_open{model="pd", severity="critical", status="open", '
                   'instance="b"}', "values": "2x30"},
    ]  # fmt: skip
    feature = "model, version, feature"
    tests = [
        case(fired("CharterFeaturePsi", "critical", feature), "5m",
             [{"model": "pd", "version": "3", "feature": "income"}]),
        case(fired("CharterFeaturePsi", "warning", feature), "5m",
             [{"model": "pd", "version": "3", "feature": "age"}]),
        case(fired("CharterAucChange", "critical", "model, version"), "5m",
             [{"model": "pd", "version": "3"}]),
        case(fired("CharterAucChange", "warning", "model, version"), "5m",
             [{"model": "pd", "version": "4"}]),
        case(fired("CharterApprovalRateChange", "warning", "model, version"), "5m",
             [{"model": "pd", "version": "3"}]),
        case(fired("CharterApprovalRateChange", "critical", "model, version"), "5m", []),
        case(fired("CharterServingErrors", "critical", "model"), "20m", [{"model": "pd"}]),
        case(fired("CharterServingErrors", "warning", "model"), "20m", []),
        case(fired("CharterServingLatencyP99", "critical", "model"), "20m", [{"model": "pd"}]),
        # two replicas export the same count: it is 2, not 4
        {"expr": _rule_expr("CharterOpenCriticalAlerts", "critical"), "eval_time": "5m",
         "exp_samples": [{"labels": '{model="pd"}', "value": 2}]},
    ]  # fmt: skip
    live = {"interval": "1m", "input_series": series, "promql_expr_test": tests}
    stale = {
        "interval": "1d",
        "input_series": [
            {"series": 'charter_monitor_window_end_timestamp_seconds{model="pd", version="3"}',
             "values": "0x40"},
            {"series": 'charter_monitor_window_end_timestamp_seconds{model="fresh", version="1"}',
             "values": "0+86400x40"},
        ],
        "promql_expr_test": [
            case(fired("CharterMonitoringStale", "warning", "model"), "36d", [{"model": "pd"}]),
            case(fired("CharterMonitoringStale", "warning", "model"), "20d", []),
        ],
    }  # fmt: skip
    # promtool evaluates every rule at each evaluation interval up to the last eval_time: the
    # 36-day staleness case gets a coarse interval of its own
    for name, interval, test in (("live", "1m", live), ("stale", "1d", stale)):
        spec = {"rule_files": [str(RULES)], "evaluation_interval": interval, "tests": [test]}
        path = tmp_path / f"charter-rules-{name}-test.yml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        out = subprocess.run(
            [promtool(), "test", "rules", str(path)], capture_output=True, text=True, check=False
        )
        assert out.returncode == 0, out.stdout + out.stderr


# ---------------------------------------------------------------------------------- the dashboard
def dashboard_exprs(dash: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    for var in dash["templating"]["list"]:
        query = var.get("query")
        if var["type"] == "query":
            out.append((f"${var['name']}", query["query"] if isinstance(query, dict) else query))
    return out


def test_the_dashboard_reads_only_metrics_charter_exports() -> None:
    dash = json.loads(DASHBOARD.read_text())
    exprs = dashboard_exprs(dash)
    assert len(exprs) >= 40
    used: set[str] = set()
    for where, expr in exprs:
        names = metric_names(expr)
        assert names, where
        assert names <= EXPORTED, f"{where} reads {sorted(names - EXPORTED)}"
        used |= names
    # every monitored number of the catalogue has a panel
    missing = {m.prometheus_name for m in METRICS.values()} - used
    assert not missing, sorted(missing)
    assert {ALERTS_OPEN_METRIC, WINDOW_END_METRIC, "charter_requests_total"} <= used


def test_the_dashboard_is_a_grafana_dashboard_with_variables_and_the_six_dimensions() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["schemaVersion"] >= 36 and dash["uid"] and dash["title"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "model" in variables and variables["model"]["multi"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    rows = [p["title"].lower() for p in dash["panels"] if p["type"] == "row"]
    for dimension in ("alert", "performance", "drift", "prediction", "quality", "operations",
                      "business"):  # fmt: skip
        assert any(dimension in r for r in rows), dimension
    for p in dash["panels"]:
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert {"h", "w", "x", "y"} <= set(p["gridPos"]) and p["gridPos"]["x"] + p["gridPos"][
            "w"
        ] <= 24
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}" and t["refId"]
    with_model = [e for _, e in dashboard_exprs(dash) if 'model=~"$model"' in e]
    assert len(with_model) >= 35  # the model variable filters (nearly) every panel
