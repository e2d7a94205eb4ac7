"""``charter monitor ...``, ``charter alerts ...`` and ``charter scheduler run``.

Thin, as the rest of the CLI: parse -> one library call (``charter.monitoring``) -> format. The
shared plumbing (errors and exit codes, the store, the token's identity, the console) is
``charter.cli``'s, looked up when a command runs (see ``cli_experiment``).
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from charter.cli_experiment import JsonOpt, TokenOpt, _write_json, handled
from charter.errors import InvalidArgument

monitor_app = typer.Typer(
    help="Production monitoring: the six dimensions per window, as a time series.",
    no_args_is_help=True,
)
alerts_app = typer.Typer(help="Monitoring alerts: list, acknowledge, resolve, deliver.",
                         no_args_is_help=True)  # fmt: skip
scheduler_app = typer.Typer(
    help="Run monitoring, alerts, triggers and retraining on a schedule.", no_args_is_help=True
)

PolicyOpt = Annotated[
    Path | None,
    typer.Option(
        help="Model policy TOML ([monitoring], [alerts], [retraining]); default: built-in."
    ),
]


def _time(value: str | None, field: str) -> datetime | None:
    from charter import cli

    return cli._parse_time(value, field)


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{float(x):.{digits}g}"


# ------------------------------------------------------------------------------------- monitor
@monitor_app.command("run")
@handled
def monitor_run(
    name: Annotated[str, typer.Argument(help="The model.")],
    start: Annotated[
        str | None, typer.Option(help="First window's start (ISO 8601); default: first decision.")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Monitor windows ending by then; default now.")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Outcomes recorded after this are not labels yet.")
    ] = None,
    window: Annotated[
        str | None, typer.Option(help='Window length, e.g. "30d" (overrides the policy).')
    ] = None,
    step: Annotated[
        str | None, typer.Option(help="Distance between windows (sliding if < window).")
    ] = None,
    policy: PolicyOpt = None,
    version: Annotated[
        list[int] | None, typer.Option("--version", help="Only these versions (repeat).")
    ] = None,
    engine: Annotated[str, typer.Option(help="local (the decision log) or spark.")] = "local",
    parquet: Annotated[
        Path | None, typer.Option(help="With --engine spark: the Parquet export to read.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Monitor a model's decisions window by window; store the series, judge alerts and
    retraining triggers."""
    from dataclasses import replace

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from charter import cli
    from charter.monitoring.policy import load_policy, parse_duration
    from charter.monitoring.runner import monitor
    from charter.scheduler import first_decision_day

    reg = cli._registry()
    pol = load_policy(policy)
    settings = pol.monitoring
    if window is not None:
        w = parse_duration(window, "window")
        settings = replace(settings, window=w, step=w if step is None else settings.step)
    if step is not None:
        settings = replace(settings, step=parse_duration(step, "step"))
    if settings.step > settings.window:
        raise InvalidArgument(
            "the step is longer than the window", field="step", remedy="use --step <= --window"
        )
    pol = replace(pol, monitoring=settings)
    t_start = _time(start, "start") or first_decision_day(reg, name)
    if t_start is None:
        reg.get_model(name)
        raise InvalidArgument(
            f"model {name!r} has no logged decisions to monitor",
            field="name",
            remedy="serve the model (charter serve) or pass --start",
        )
    t_end = _time(end, "end") or reg.clock()
    t_as_of = _time(as_of, "as_of")
    engine_ctx: Any = contextlib.nullcontext(None)
    if engine == "spark":
        if parquet is None:
            raise InvalidArgument(
                "--engine spark reads a Parquet export of the decision log",
                field="parquet",
                remedy=f"export it first: charter monitor export {name} --out DIR",
            )
        from charter.monitoring.export import read_export_summary
        from charter.monitoring.spark import spark_engine

        if t_as_of is None:  # the export knows the outcomes recorded until it was made
            t_as_of = read_export_summary(parquet).label_as_of
        engine_ctx = spark_engine(parquet)
    elif engine != "local":
        raise InvalidArgument(f"unknown engine {engine!r}", field="engine", remedy="local or spark")
    with (
        engine_ctx as accumulate,
        Progress(
            TextColumn("[bold]monitor[/] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=cli.err,
            transient=True,
            disable=as_json,
        ) as bar,
    ):
        task = bar.add_task(name, total=None)

        def progress(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=what)

        run = monitor(
            reg,
            name,
            start=t_start,
            end=t_end,
            policy=pol,
            as_of=t_as_of,
            versions=version,
            progress=progress,
            accumulate=accumulate,
        )
    if as_json:
        _write_json(run.to_dict())
        return
    _print_run(run)


def _print_run(run: Any) -> None:
    from charter import cli

    t = Table(
        "window", "v", "decisions", "approval", "score PSI", "drifted", "AUC", "AUC est. [band]",
        "p99 ms", "labels", title=f"Monitoring {run.model_name}",
    )  # fmt: skip
    for r in run.results:
        d = r.dimensions
        est = d["estimated"]
        band = "-"
        if est:
            lo, hi = _fmt(est.get("auc_low"), 3), _fmt(est.get("auc_high"), 3)
            band = f"{_fmt(est.get('auc'), 3)} [{lo}, {hi}]"
        t.add_row(
            f"{r.window_start.date()} .. {r.window_end.date()}",
            str(r.version),
            f"{r.n:,}",
            _fmt(d["prediction"].get("approval_rate"), 3),
            _fmt(d["prediction"].get("score_psi"), 3),
            _fmt(d["data_drift"].get("features_drifted")),
            _fmt(r.value("auc"), 3),
            band,
            _fmt(d["operations"].get("latency_p99_ms"), 3),
            r.labels_status,
        )
    cli.out.print(t)
    for a in run.alerts:
        cli.out.print(f"alert {getattr(a, 'action', '')}: {getattr(a, 'summary', a)}")
    for trig in run.triggers:
        for reason in trig.reasons:
            state = "fired" if trig.fire else f"suppressed ({trig.suppressed})"
            cli.out.print(f"retraining trigger {reason.kind} {state}: {reason.detail}")
    for n in run.notes:
        cli.out.print(f"[dim]{n}[/]")


@monitor_app.command("show")
@handled
def monitor_show(
    name: Annotated[str, typer.Argument(help="The model.")],
    metric: Annotated[str, typer.Option(help="A monitored metric, e.g. score_psi.")] = "score_psi",
    feature: Annotated[str, typer.Option(help="The feature, for per-feature metrics.")] = "",
    version: Annotated[int | None, typer.Option(help="Only this version.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The time series of one monitored metric."""
    from charter import cli
    from charter.monitoring import store
    from charter.monitoring.catalogue import METRICS

    m = METRICS.get(metric)
    if m is None:
        raise InvalidArgument(
            f"unknown metric {metric!r}", field="metric", remedy=f"use one of: {', '.join(METRICS)}"
        )
    if m.per_feature and not feature:
        raise InvalidArgument(
            f"{metric} is per feature", field="feature", remedy="pass --feature NAME"
        )
    reg = cli._registry()
    reg.get_model(name)
    points = store.series(reg.db, name, metric, feature=feature, version=version)
    if as_json:
        _write_json(
            [
                {"version": v, "window_start": s, "window_end": e, "value": x}
                for v, s, e, x in points
            ]
        )
        return
    t = Table("window", "version", metric + (f" [{feature}]" if feature else ""),
              title=f"{name}: {m.help}")  # fmt: skip
    for v, s, e, x in points:
        t.add_row(f"{s.date()} .. {e.date()}", str(v), _fmt(x))
    cli.out.print(t)


@monitor_app.command("export")
@handled
def monitor_export(
    name: Annotated[str, typer.Argument(help="The model.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the Parquet data set.")],
    start: Annotated[
        str | None, typer.Option(help="From (ISO 8601); default: first decision.")
    ] = None,
    end: Annotated[str | None, typer.Option(help="Until (exclusive); default: now.")] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Outcomes recorded after this are not labels.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Export the decision log (with outcomes and flattened inputs) to Parquet, for Spark."""
    from charter import cli
    from charter.monitoring.export import export_parquet
    from charter.monitoring.source import feature_kinds
    from charter.scheduler import first_decision_day

    reg = cli._registry()
    reg.get_model(name)
    t_start = _time(start, "start") or first_decision_day(reg, name)
    if t_start is None:
        raise InvalidArgument(
            f"model {name!r} has no logged decisions", field="name", remedy="nothing to export"
        )
    kinds: dict[str, str] = {}
    for v in reg.list_versions(name):
        if v.reference_profile_sha256 is not None:
            kinds.update(feature_kinds(reg.reference_profile(name, v.version)))
    summary = export_parquet(
        reg.db,
        name,
        t_start,
        _time(end, "end") or reg.clock(),
        out_dir,
        features=kinds,
        label_as_of=_time(as_of, "as_of"),
        clock=reg.clock,
    )
    if as_json:
        _write_json(summary.to_dict() if hasattr(summary, "to_dict") else summary.__dict__)
        return
    cli.out.print(f"exported {summary.rows:,} decisions of {name} to {out_dir}")


# -------------------------------------------------------------------------------------- alerts
@alerts_app.command("list")
@handled
def alerts_list(
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    status: Annotated[
        str | None, typer.Option(help="open, acknowledged or resolved; default: not resolved.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Alerts, most severe first."""
    from charter import cli
    from charter.monitoring.alert_store import AlertStore

    reg = cli._registry()
    rows = AlertStore(reg.db, clock=reg.clock).list_alerts(model=model, status=status)
    if as_json:
        _write_json([a.to_dict() for a in rows])
        return
    t = Table("id", "severity", "status", "model", "metric", "feature", "value", "since",
              "windows", "summary", title="Alerts")  # fmt: skip
    for a in rows:
        t.add_row(
            str(a.id), a.severity, a.status, a.model, a.metric, a.feature or "-",
            _fmt(a.value, 3), str(a.started_at.date()), str(a.windows_breached), a.summary,
        )  # fmt: skip
    cli.out.print(t)


@alerts_app.command("ack")
@handled
def alerts_ack(
    alert_id: Annotated[int, typer.Argument(help="The alert's id.")],
    note: Annotated[str, typer.Option(help="What is being done about it.")],
    token: TokenOpt = None,
) -> None:
    """Acknowledge an alert: someone owns it now."""
    _alert_action("acknowledged", alert_id, note, token)


def _alert_action(done: str, alert_id: int, note: str, token: str | None) -> None:
    """One person's audited action on an alert (``acknowledged`` or ``resolved``)."""
    from charter import cli
    from charter.monitoring.alert_store import AlertStore

    reg = cli._registry()
    actor = cli._actor(reg, token)
    store = AlertStore(reg.db, clock=reg.clock)
    act = store.acknowledge if done == "acknowledged" else store.resolve
    a = act(actor, alert_id, note)
    cli.out.print(f"alert {a.id} {done} by {actor.username}")


@alerts_app.command("resolve")
@handled
def alerts_resolve(
    alert_id: Annotated[int, typer.Argument(help="The alert's id.")],
    note: Annotated[str, typer.Option(help="Why it is resolved.")],
    token: TokenOpt = None,
) -> None:
    """Resolve an alert by hand (monitoring also resolves alerts whose metric recovered)."""
    _alert_action("resolved", alert_id, note, token)


@alerts_app.command("deliver")
@handled
def alerts_deliver(
    url: Annotated[str, typer.Option(help="Webhook receiving Alertmanager-format payloads.")],
    as_json: JsonOpt = False,
) -> None:
    """Post the notifications waiting in the outbox to a webhook."""
    from charter import cli
    from charter.monitoring.notify import deliver_pending

    reg = cli._registry()
    result = deliver_pending(reg.db, url, clock=reg.clock)
    if as_json:
        _write_json(result.to_dict())
        return
    cli.out.print(str(result))


# ----------------------------------------------------------------------------------- scheduler
@scheduler_app.command("run")
@handled
def scheduler_run(
    config: Annotated[Path, typer.Option(help="Scheduler configuration (TOML).")],
    once: Annotated[bool, typer.Option("--once", help="One tick, then stop.")] = False,
    ticks: Annotated[int | None, typer.Option(help="Stop after this many ticks.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Monitor, deliver alerts, fire triggers and run continuous training, every interval."""
    from charter import cli
    from charter.scheduler import Scheduler, SchedulerConfig

    reg = cli._registry()
    sched = Scheduler(reg, SchedulerConfig.load(config))

    def show(report: Any) -> None:
        if as_json:
            _write_json(report.to_dict())
        else:
            cli.out.print(report.to_dict())

    sched.run(ticks=1 if once else ticks, on_tick=show)
