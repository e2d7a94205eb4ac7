"""What each dashboard page shows, gathered from Charter's services (the registry, the alert
store, the monitoring store, the experiment store, the pipelines, the explainer) and nothing
else: no SQL here, no statistic computed here. Each function validates its arguments (bad input
raises ``InvalidArgument``, an unknown name ``NotFound``) and returns plain data for a template.

Where a part of the record does not exist yet (no monitoring window, no experiment, no gate
run), the page says so; nothing is filled in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from charter.entities import AuditEvent, Finding, Model, ModelVersion, Stage
from charter.errors import InvalidArgument, NotFound
from charter.monitoring import store as monitor_store
from charter.monitoring.alert_store import AlertStore
from charter.monitoring.alerts import ACKNOWLEDGED, OPEN, RESOLVED, SEVERITIES, Alert
from charter.registry import inventory
from charter.registry.service import Registry, validate_model_name
from charter.web import charts

PER_PAGE = 100
AUDIT_LIMIT = 200
ALERT_LIMIT = 200
# The audit page verifies the whole chain on every view up to this many events; beyond it,
# verification (linear in the chain) runs when asked for.
VERIFY_INLINE_EVENTS = 20_000
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES, start=1)}  # info 1, warning 2, critical 3
TIERS = ("high", "medium", "low")
STATUSES = ("production", "development", "retired")
MONITORING_STATES = ("critical", "warning", "info", "quiet")
RANGES: dict[str, int | None] = {"90d": 90, "180d": 180, "1y": 366, "all": None}
DEFAULT_RANGE = "1y"


# --------------------------------------------------------------------------- argument parsing
def text_arg(value: str | None, fld: str, *, limit: int = 200, multiline: bool = False) -> str:
    v = (value or "").strip()
    allowed = "\n\r\t" if multiline else ""
    if len(v) > limit or any(ord(ch) < 0x20 and ch not in allowed for ch in v):
        raise InvalidArgument(
            f"{fld} must be text of at most {limit} characters",
            field=fld,
            remedy="shorten it",
        )
    return v


def choice_arg(value: str | None, fld: str, choices: Sequence[str]) -> str:
    v = (value or "").strip()
    if v and v not in choices:
        raise InvalidArgument(
            f"unknown {fld} {v!r}", field=fld, remedy=f"use one of: {', '.join(choices)}"
        )
    return v


def int_arg(
    value: str | int | None,
    fld: str,
    *,
    default: int | None = None,
    minimum: int = 1,
    maximum: int = 10**9,
) -> int | None:
    if value is None or value == "":
        return default
    try:
        n = int(str(value).strip())
    except ValueError:
        raise InvalidArgument(
            f"{fld} must be a whole number, not {str(value)[:40]!r}", field=fld, remedy="e.g. 1"
        ) from None
    if not minimum <= n <= maximum:
        raise InvalidArgument(
            f"{fld} must be between {minimum} and {maximum}", field=fld, remedy=f"e.g. {minimum}"
        )
    return n


def time_arg(value: str | None, fld: str) -> datetime | None:
    """An ISO 8601 date or time (UTC when no zone is given), or None when empty."""
    v = (value or "").strip()
    if not v:
        return None
    try:
        t = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(
            f"{fld} is not an ISO 8601 date or time: {v[:40]!r}",
            field=fld,
            remedy="e.g. 2026-05-01 or 2026-05-01T12:00:00Z",
        ) from None
    t = t if t.tzinfo else t.replace(tzinfo=UTC)
    if not 1000 <= t.astimezone(UTC).year <= 9999:
        raise InvalidArgument(f"{fld} is out of range", field=fld, remedy="use a year 1000-9999")
    return t.astimezone(UTC)


def model_arg(name: str) -> str:
    try:
        return validate_model_name(name)
    except InvalidArgument:
        raise NotFound(
            f"no model {name[:100]!r}", field="name", remedy="see the inventory"
        ) from None


# ---------------------------------------------------------------------------------- inventory
@dataclass(frozen=True)
class InventoryRow:
    model: Model
    alerts: dict[str, int]  # open + acknowledged, by severity
    findings: inventory.FindingCounts

    @property
    def monitoring(self) -> str:
        """The worst severity among the open alerts, or ``quiet``."""
        present = [s for s, n in self.alerts.items() if n]
        return max(present, key=lambda s: SEVERITY_RANK.get(s, 0)) if present else "quiet"


@dataclass(frozen=True)
class InventoryPage:
    summary: dict[str, Any]
    rows: list[InventoryRow]
    total: int  # rows matching the filters
    page: int
    pages: int
    filters: dict[str, str]
    generated_at: str
    audit_head_seq: int | None


def inventory_page(
    reg: Registry,
    alerts: AlertStore,
    *,
    q: str | None = None,
    tier: str | None = None,
    status: str | None = None,
    monitoring: str | None = None,
    overdue: str | None = None,
    page: str | None = None,
) -> InventoryPage:
    filters = {
        "q": text_arg(q, "q", limit=100),
        "tier": choice_arg(tier, "tier", TIERS),
        "status": choice_arg(status, "status", STATUSES),
        "monitoring": choice_arg(monitoring, "monitoring", MONITORING_STATES),
        "overdue": choice_arg(overdue, "overdue", ("1",)),
    }
    number = int_arg(page, "page", default=1) or 1
    inv = inventory.build(reg)
    counts = alerts.open_counts()
    rows = [
        InventoryRow(m, counts.get(m.name, dict.fromkeys(SEVERITIES, 0)), inv.findings_of(m.name))
        for m in inv.models
    ]
    needle = filters["q"].lower()
    out = []
    for r in rows:
        m = r.model
        if needle and not any(
            needle in x.lower() for x in (m.name, m.owner, m.team, m.purpose, m.business_use)
        ):
            continue
        if filters["tier"] and m.risk_tier.value != filters["tier"]:
            continue
        if filters["status"] and m.status != filters["status"]:
            continue
        if filters["monitoring"] and r.monitoring != filters["monitoring"]:
            continue
        if filters["overdue"] and not m.review_overdue:
            continue
        out.append(r)
    pages = max(1, -(-len(out) // PER_PAGE))
    number = min(number, pages)
    return InventoryPage(
        summary=inv.summary(),
        rows=out[(number - 1) * PER_PAGE : number * PER_PAGE],
        total=len(out),
        page=number,
        pages=pages,
        filters=filters,
        generated_at=inv.generated_at,
        audit_head_seq=inv.audit_head_seq,
    )


# ----------------------------------------------------------------------------------- a model
@dataclass(frozen=True)
class ModelPage:
    model: Model
    versions: list[ModelVersion]
    timeline: list[AuditEvent]  # stage, alias and canary events, newest first
    findings: list[Finding]
    narrative: dict[str, str]
    narrative_revision: int
    pipeline_runs: list[Any]
    experiments: list[Any]
    reports: list[AuditEvent]
    alerts: dict[str, int]
    monitored_until: datetime | None


def model_page(reg: Registry, alerts: AlertStore, name: str) -> ModelPage:
    from charter.experiment.store import list_experiments
    from charter.pipelines.ct import list_pipeline_runs

    name = model_arg(name)
    model = reg.get_model(name)
    timeline: list[AuditEvent] = []
    for prefix in ("version.*", "alias.*", "canary.*"):
        timeline += reg.audit_log(model_name=name, action=prefix, limit=100, newest_first=True)
    timeline.sort(key=lambda e: e.seq, reverse=True)
    narrative = reg.get_model_narrative(name)
    return ModelPage(
        model=model,
        versions=list(reversed(reg.list_versions(name))),
        timeline=timeline[:100],
        findings=list(reversed(reg.list_findings(name))),
        narrative=dict(narrative.sections),
        narrative_revision=narrative.revision,
        pipeline_runs=list_pipeline_runs(reg, name)[:10],
        experiments=list_experiments(reg, name),
        reports=reg.audit_log(
            model_name=name, action="report.generated", limit=20, newest_first=True
        ),
        alerts=alerts.open_counts().get(name, dict.fromkeys(SEVERITIES, 0)),
        monitored_until=monitor_store.last_window_end(reg.db, name),
    )


@dataclass(frozen=True)
class VersionPage:
    model: Model
    version: ModelVersion
    gate_runs: list[Any]
    validations: list[Any]
    approvals: list[Any]
    findings: list[Finding]
    in_validation: bool


def version_page(reg: Registry, name: str, version: str) -> VersionPage:
    name = model_arg(name)
    number = int_arg(version, "version", maximum=10**6)
    if number is None:
        raise NotFound("no version given", field="version")
    model = reg.get_model(name)
    v = reg.get_version(name, number)
    return VersionPage(
        model=model,
        version=v,
        gate_runs=list(reversed(reg.list_gate_runs(name, number))),
        validations=list(reversed(reg.list_validations(name, number))),
        approvals=list(reversed(reg.list_approvals(name, number))),
        findings=list(reversed(reg.list_findings(name, version=number))),
        in_validation=v.stage is Stage.VALIDATION,
    )


# -------------------------------------------------------------------------------- monitoring
Series = list[tuple[int, datetime, datetime, float | None]]


@dataclass(frozen=True)
class MonitoringPage:
    model: Model
    range: str
    windows: int
    first_start: datetime | None
    last_end: datetime | None
    latest: list[monitor_store.StoredWindow]
    features: list[str]
    charts: dict[str, str]
    active_alerts: list[Alert]
    resolved_alerts: list[Alert]
    triggers: list[Any] = field(default_factory=list)


def _lines(families: Sequence[tuple[str, Series]], versions: Sequence[int]) -> list[charts.Line]:
    """One line per metric and version. With one metric, versions differ by colour; with
    several, the colour is the metric's and earlier versions are dashed."""
    single = len(families) == 1
    latest = versions[-1] if versions else None
    out = []
    for m, (label, points) in enumerate(families):
        for k, v in enumerate(versions):
            pts = [(end, value) for ver, _, end, value in points if ver == v]
            if pts:
                out.append(
                    charts.Line(
                        f"{label} v{v}" if len(versions) > 1 else label,
                        pts,
                        colour=k if single else m,
                        dashed=not single and v != latest,
                    )
                )
    return out


# every series the monitoring page draws (feature_psi once per feature)
PAGE_METRICS = (
    "volume",
    "feature_psi",
    "score_p50",
    "score_mean",
    "score_p90",
    "score_psi",
    "approval_rate",
    "auc_estimated_low",
    "auc_estimated_high",
    "auc",
    "auc_estimated",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
)


def monitoring_page(
    reg: Registry, alerts: AlertStore, name: str, *, range_: str | None = None
) -> MonitoringPage:
    name = model_arg(name)
    model = reg.get_model(name)
    chosen = choice_arg(range_, "range", tuple(RANGES)) or DEFAULT_RANGE
    active = alerts.list_alerts(model=name, limit=ALERT_LIMIT)
    resolved = alerts.list_alerts(model=name, status=RESOLVED, limit=20)
    triggers = list(reversed(monitor_store.list_triggers(reg.db, name)))[:10]
    last = monitor_store.last_window_end(reg.db, name)
    if last is None:
        return MonitoringPage(model, chosen, 0, None, None, [], [], {}, active, resolved, triggers)
    days = RANGES[chosen]
    cutoff = None if days is None else last - timedelta(days=days)
    latest = monitor_store.list_windows(reg.db, name, start=last - timedelta(microseconds=1))

    stored = monitor_store.series_many(reg.db, name, PAGE_METRICS, after=cutoff)

    def series(metric: str, feature: str = "") -> Series:
        if metric not in PAGE_METRICS:  # read above, or it would show as empty
            raise KeyError(f"{metric} is not in PAGE_METRICS")
        return stored.get((metric, feature), [])

    volume = series("volume")
    versions = sorted({v for v, _, _, _ in volume})
    columns = sorted({(end, ver, start) for ver, start, end, _ in volume})
    cols = [charts.Column(start=s, end=e, version=v) for e, v, s in columns]
    index = {(c.start, c.end, c.version): i for i, c in enumerate(cols)}
    features: list[str] = []
    for w in latest:
        for row in w.report.get("dimensions", {}).get("data_drift", {}).get("features", []):
            if row.get("feature") not in features:
                features.append(str(row.get("feature")))
    psi: dict[tuple[str, int], float | None] = {}
    for f in features:
        for ver, start, end, value in series("feature_psi", f):
            i = index.get((start, end, ver))
            if i is not None:
                psi[(f, i)] = value
    # the features that drifted most first, so the rows that matter are on top
    peak = {f: 0.0 for f in features}
    for (f, _), value in psi.items():
        if value is not None and value > peak[f]:
            peak[f] = value
    features.sort(key=lambda f: -peak[f])

    made: dict[str, str] = {"heatmap": charts.psi_heatmap(features, cols, psi)}
    made["score"] = charts.time_series(
        _lines(
            [
                ("median", series("score_p50")),
                ("mean", series("score_mean")),
                ("90th pct", series("score_p90")),
            ],
            versions,
        ),
        title="Score distribution (median, mean, 90th percentile)",
    )
    made["score_psi"] = charts.time_series(
        _lines([("score PSI", series("score_psi"))], versions),
        title="Score PSI against the validation baseline",
        reference=charts.PSI_CRITICAL,
        reference_label="0.25",
        zero_based=True,
    )
    made["approval"] = charts.time_series(
        _lines([("approval rate", series("approval_rate"))], versions),
        title="Approval rate",
        percent=True,
    )
    est_low, est_high = series("auc_estimated_low"), series("auc_estimated_high")
    bands = []
    for v in versions:
        lows = {(s, e): x for ver, s, e, x in est_low if ver == v}
        pts = [(e, lows.get((s, e)), x) for ver, s, e, x in est_high if ver == v]
        if pts:
            bands.append(charts.Band(f"estimated AUC 95% band v{v}", pts, colour=1))
    made["performance"] = charts.time_series(
        _lines([("realised", series("auc")), ("estimated", series("auc_estimated"))], versions),
        title="AUC: realised (matured labels) and estimated, with its band",
        bands=bands,
    )
    made["volume"] = charts.time_series(
        _lines([("decisions", volume)], versions),
        title="Volume (decisions per window)",
        zero_based=True,
    )
    made["latency"] = charts.time_series(
        _lines(
            [
                ("p50", series("latency_p50_ms")),
                ("p95", series("latency_p95_ms")),
                ("p99", series("latency_p99_ms")),
            ],
            versions,
        ),
        title="Scoring latency (ms)",
        zero_based=True,
    )
    return MonitoringPage(
        model=model,
        range=chosen,
        windows=len(cols),
        first_start=min((c.start for c in cols), default=None),
        last_end=last,
        latest=latest,
        features=features,
        charts=made,
        active_alerts=active,
        resolved_alerts=resolved,
        triggers=triggers,
    )


# ---------------------------------------------------------------------------------- alerts
def alerts_page(
    alerts: AlertStore,
    *,
    model: str | None = None,
    status: str | None = None,
    severity: str | None = None,
) -> dict[str, Any]:
    filters = {
        "model": text_arg(model, "model", limit=100),
        "status": choice_arg(status, "status", ("active", OPEN, ACKNOWLEDGED, RESOLVED, "all")),
        "severity": choice_arg(severity, "severity", SEVERITIES),
    }
    rows = alerts.list_alerts(
        model=filters["model"] or None,
        status=filters["status"] or None,
        severity=filters["severity"] or None,
        limit=ALERT_LIMIT,
    )
    return {"filters": filters, "alerts": rows, "limit": ALERT_LIMIT}


def alert_page(reg: Registry, alerts: AlertStore, alert_id: str) -> dict[str, Any]:
    n = int_arg(alert_id, "alert_id", maximum=2**62)
    if n is None:
        raise NotFound("no alert given", field="alert_id")
    a = alerts.get(n)
    history = [
        e
        for e in reg.audit_log(model_name=a.model, action="alert.*", limit=5000, newest_first=True)
        if e.subject_type == "alert" and e.subject == str(n)
    ]
    return {"alert": a, "history": history}


# ------------------------------------------------------------------------ champion/challenger
def experiments_page(
    reg: Registry, name: str, served_policy: dict[str, Any] | None
) -> dict[str, Any]:
    from charter.experiment.store import list_experiment_decisions, list_experiments

    name = model_arg(name)
    model = reg.get_model(name)
    versions = reg.list_versions(name)
    holders = {a: v.version for v in versions for a in v.aliases}
    experiments = []
    for e in reversed(list_experiments(reg, name)):
        decisions = list_experiment_decisions(reg, e.id)
        experiments.append(
            {
                "experiment": e,
                "decisions": list(reversed(decisions)),
                "latest": decisions[-1] if decisions else None,
            }
        )
    return {
        "model": model,
        "holders": holders,
        "policy": served_policy,
        "canary": reg.canary(name),
        "experiments": experiments,
    }


def experiment_analysis(reg: Registry, name: str, experiment: str) -> tuple[dict[str, Any], str]:
    """The comparison report's data for ``experiment`` of model ``name``, analysed now over its
    whole traffic (nothing recorded), and a file name for a download."""
    from charter.experiment.analysis import analyze_experiment
    from charter.experiment.report import report_data
    from charter.experiment.store import get_experiment

    model = model_arg(name)
    exp_name = text_arg(experiment, "experiment", limit=100)
    exp = get_experiment(reg, exp_name)
    if exp.model_name != model:
        raise NotFound(
            f"experiment {exp_name!r} is not an experiment of model {model!r}",
            remedy=f"open /ui/models/{exp.model_name}/experiments",
        )
    data = report_data(analyze_experiment(reg, exp.name))
    stamp = reg.clock().strftime("%Y%m%dT%H%M%SZ")
    return data, f"{_file_part(exp.name)}-analysis-{stamp}.html"


def _file_part(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80] or "experiment"


# ---------------------------------------------------------------------------------- decisions
def decision_page(reg: Registry, decision_id: str | None) -> dict[str, Any]:
    from charter.explain.decision import explain_decision

    did = text_arg(decision_id, "id", limit=36)
    if not did:
        return {"id": "", "explanation": None}
    return {"id": did, "explanation": explain_decision(reg, did)}


DECISIONS_PER_PAGE = 50


def _older_link(filters: dict[str, str], before: object) -> str | None:
    """The query of the next (older) page: the filters in force and the cursor, or None."""
    if before is None:
        return None
    return urlencode({**{k: v for k, v in filters.items() if v}, "before": before})


def decision_list(
    reg: Registry,
    *,
    model: str | None,
    version: str | None,
    decision: str | None,
    variant: str | None,
    entity: str | None,
    since: str | None,
    until: str | None,
    before: str | None,
) -> dict[str, Any]:
    """The decision log, newest first, 50 a page (keyset paging: ``before`` is the cursor the
    previous page's "older" link carries)."""
    from charter.serving.decision_log import list_decisions
    from charter.serving.routing import VARIANTS
    from charter.serving.runtime import DECISION_LABELS

    name = text_arg(model, "model", limit=100)
    if name:
        name = validate_model_name(name)
    number = int_arg(version, "version", maximum=10**6)
    filters = {
        "model": name,
        "version": "" if number is None else str(number),
        "decision": choice_arg(decision, "decision", DECISION_LABELS),
        "variant": choice_arg(variant, "variant", VARIANTS),
        "entity": text_arg(entity, "entity", limit=256),
        "since": text_arg(since, "since", limit=40),
        "until": text_arg(until, "until", limit=40),
    }
    lo, hi = time_arg(filters["since"], "since"), time_arg(filters["until"], "until")
    page = list_decisions(
        reg.db,
        model=name or None,
        version=number,
        decision=filters["decision"] or None,
        variant=filters["variant"] or None,
        entity_key=filters["entity"] or None,
        since=lo,
        until=hi,
        before=text_arg(before, "before", limit=100) or None,
        limit=DECISIONS_PER_PAGE,
    )
    return {
        "filters": filters,
        "records": page.records,
        "older": _older_link(filters, page.next_before),
        "paged": bool(before),
        "variants": VARIANTS,
        "labels": DECISION_LABELS,
    }


# -------------------------------------------------------------------------------------- audit
def audit_page(
    reg: Registry,
    *,
    model: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: str | None = None,
    until: str | None = None,
    verify: str | None = None,
    at_model: str | None = None,
    at_time: str | None = None,
    at_alias: str | None = None,
    before: str | None = None,
) -> dict[str, Any]:
    filters = {
        "model": text_arg(model, "model", limit=100),
        "actor": text_arg(actor, "actor", limit=64),
        "action": text_arg(action, "action", limit=100),
        "since": text_arg(since, "since", limit=40),
        "until": text_arg(until, "until", limit=40),
    }
    t0, t1 = time_arg(filters["since"], "since"), time_arg(filters["until"], "until")
    before_seq = int_arg(before, "before", maximum=2**62)
    events = reg.audit_log(
        model_name=filters["model"] or None,
        actor=filters["actor"] or None,
        action=filters["action"] or None,
        since=t0,
        until=t1,
        limit=AUDIT_LIMIT + 1,
        newest_first=True,
        before_seq=before_seq,
    )
    older = None
    if len(events) > AUDIT_LIMIT:  # a next page: the same filters, before the last one shown
        events = events[:AUDIT_LIMIT]
        older = _older_link(filters, events[-1].seq)
    head = reg.audit_checkpoint()
    wanted = choice_arg(verify, "verify", ("1",)) == "1"
    verified = None
    if head is None or head.seq <= VERIFY_INLINE_EVENTS or wanted:
        verified = reg.verify_audit()
    query = {
        "model": text_arg(at_model, "at_model", limit=100),
        "time": text_arg(at_time, "at_time", limit=40),
        "alias": choice_arg(at_alias, "at_alias", ("champion", "challenger", "shadow")),
    }
    holder: dict[str, Any] | None = None
    if query["model"] and query["time"]:
        at = time_arg(query["time"], "at_time")
        alias = query["alias"] or "champion"
        if at is not None:
            holder = {
                "model": query["model"],
                "alias": alias,
                "at": at,
                "version": reg.alias_holder_at(model_arg(query["model"]), alias, at),
            }
    return {
        "filters": filters,
        "events": events,
        "limit": AUDIT_LIMIT,
        "older": older,
        "paged": before_seq is not None,
        "head": head,
        "verified": verified,
        "query": query,
        "holder": holder,
        "model_names": [m.name for m in reg.list_models()],
    }
