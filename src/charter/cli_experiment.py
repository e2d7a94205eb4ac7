"""``charter experiment ...``: plan, register and analyse champion/challenger experiments.

Thin, as the rest of the CLI: parse -> one library call (``charter.experiment``) -> format.
The shared plumbing (error handling and exit codes, the store, the token's identity, the console)
is ``charter.cli``'s, looked up when a command runs, so this module imports nothing of it at
import time and ``charter.cli`` can register ``experiment_app`` among its sub-commands.
"""

from __future__ import annotations

import functools
import json
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer
from rich.table import Table

from charter.errors import InvalidArgument

F = TypeVar("F", bound=Callable[..., Any])

experiment_app = typer.Typer(
    help="Champion/challenger experiments: plan, pre-register, analyse, decide.",
    no_args_is_help=True,
)

TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="CHARTER_TOKEN", help="API token (or set CHARTER_TOKEN)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def handled(fn: F) -> F:
    """``charter.cli.handled``: Charter errors become a message and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from charter import cli

        return cli.handled(fn)(*args, **kwargs)

    return cast(F, wrapper)


def _write_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, allow_nan=False, default=str) + "\n")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100.0 * x:.2f}%"


def _num(x: Any, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{float(x):.{digits}g}"


# ---------------------------------------------------------------------------------------- plan
@experiment_app.command("plan")
@handled
def plan(
    baseline_rate: Annotated[
        float | None,
        typer.Option("--baseline-rate", help="A rate metric: the champion's rate, e.g. 0.12."),
    ] = None,
    sd: Annotated[
        float | None, typer.Option("--sd", help="A mean metric: its standard deviation per row.")
    ] = None,
    mde: Annotated[
        float | None,
        typer.Option("--mde", help="Smallest absolute difference b - a to detect, e.g. 0.02."),
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level.")] = 0.05,
    power: Annotated[float, typer.Option(help="Target power.")] = 0.8,
    challenger_share: Annotated[
        float, typer.Option("--challenger-share", help="Challenger's share of applicants.")
    ] = 0.5,
    daily_volume: Annotated[
        int | None, typer.Option("--daily-volume", help="Applicants a day: gives the duration.")
    ] = None,
    days: Annotated[
        int | None,
        typer.Option("--days", help="Fixed duration (with --daily-volume): its power and MDE."),
    ] = None,
    power_for_n: Annotated[
        int | None,
        typer.Option("--power-for-n", help="Fixed number of applicants: their power and MDE."),
    ] = None,
    alternative: Annotated[
        str, typer.Option(help="two-sided, larger (b > a) or smaller (b < a).")
    ] = "two-sided",
    as_json: JsonOpt = False,
) -> None:
    """Sample size, power and duration of an experiment on a rate or a mean."""
    from charter import cli
    from charter.experiment.design import plan_experiment

    d = plan_experiment(
        baseline_rate=baseline_rate,
        sd=sd,
        mde=mde,
        alpha=alpha,
        power=power,
        challenger_share=challenger_share,
        daily_volume=daily_volume,
        days=days,
        applicants=power_for_n,
        alternative=alternative,
    )
    if as_json:
        _write_json(d.to_dict())
        return
    rate = d.metric == "rate"

    def eff(x: float | None) -> str:
        return "n/a" if x is None else (f"{100.0 * x:+.2f} pts" if rate else f"{x:+.4g}")

    t = Table("", "value", title=f"Experiment design ({d.mode.replace('_', ' ')})")
    baseline = _pct(d.baseline_rate) if rate else f"sd {d.sd:g}"
    t.add_row("metric", f"{d.metric} (baseline {baseline})")
    t.add_row("test", f"{d.alternative}, alpha {d.alpha:g}")
    t.add_row("split", f"challenger {d.challenger_share:.0%} (ratio {d.ratio:.4g})")
    t.add_row("minimum detectable effect", eff(d.mde))
    t.add_row("power at that effect", _pct(d.power))
    if d.mode != "sample_size":
        t.add_row(f"MDE at {d.target_power:.0%} power", eff(d.mde_at_target_power))
    t.add_row("rows: champion", f"{d.n_champion:,}")
    t.add_row("rows: challenger", f"{d.n_challenger:,}")
    t.add_row("applicants needed", f"{d.applicants_needed:,}")
    if d.days is not None:
        t.add_row("duration", f"{d.days} days at {d.daily_volume:,} applicants a day")
    cli.out.print(t)


# ------------------------------------------------------------------------------------ register
def _read_attributes(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InvalidArgument(
            f"cannot read {str(path)!r}: {e}",
            field="attributes",
            remedy="give a TOML file: a validation policy with [gates.fairness.attributes.*] "
            "tables, or [attributes.*] tables",
        ) from None
    table = raw.get("gates", {}).get("fairness", {}).get("attributes", raw.get("attributes"))
    if not isinstance(table, dict) or not table:
        raise InvalidArgument(
            f"{str(path)!r} has no protected attributes",
            field="attributes",
            remedy='add [attributes.sex] column = "personal_status_and_sex" split = ":"',
        )
    return table


@experiment_app.command("register")
@handled
def register(
    name: Annotated[str, typer.Argument(help="The experiment's name (unique).")],
    model: Annotated[str, typer.Option("--model", help="The model.")],
    challenger: Annotated[int, typer.Option("--challenger", help="Challenger version.")],
    metric: Annotated[
        str,
        typer.Option("--metric", help="Primary metric: approval_rate, bad_rate, mean_score, auc."),
    ],
    mde: Annotated[float, typer.Option("--mde", help="Smallest difference worth acting on.")],
    champion: Annotated[
        int | None, typer.Option("--champion", help="Champion version (default: the champion).")
    ] = None,
    kind: Annotated[str, typer.Option(help="ab (live traffic) or shadow.")] = "ab",
    direction: Annotated[
        str | None, typer.Option(help="higher or lower is better (default by metric).")
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level.")] = 0.05,
    power: Annotated[float, typer.Option(help="Target power.")] = 0.8,
    baseline_rate: Annotated[
        float | None, typer.Option("--baseline-rate", help="Champion's current rate (rates).")
    ] = None,
    sd: Annotated[float | None, typer.Option("--sd", help="Score s.d. (mean_score).")] = None,
    min_rows: Annotated[
        int | None, typer.Option("--min-rows", help="Rows per arm (required for auc).")
    ] = None,
    tau2: Annotated[
        float | None, typer.Option("--tau2", help="mSPRT mixing variance (default mde^2).")
    ] = None,
    max_days: Annotated[int, typer.Option("--max-days", help="Maximum duration.")] = 28,
    stopping_rule: Annotated[
        str, typer.Option("--stopping-rule", help="msprt or fixed_horizon.")
    ] = "msprt",
    challenger_share: Annotated[
        float | None, typer.Option("--challenger-share", help="Traffic split (ab).")
    ] = None,
    attributes: Annotated[
        Path | None,
        typer.Option("--attributes", help="TOML with protected attributes (a validation policy)."),
    ] = None,
    max_latency_ms: Annotated[float, typer.Option(help="Challenger p99 latency limit.")] = 250.0,
    max_error_rate: Annotated[float, typer.Option(help="Challenger error-rate limit.")] = 0.01,
    min_parity_ratio: Annotated[float, typer.Option(help="Four-fifths ratio floor.")] = 0.8,
    max_parity_drop: Annotated[
        float | None, typer.Option(help="Largest fall of the ratio from the champion's.")
    ] = None,
    min_group_size: Annotated[int, typer.Option(help="Smallest group judged.")] = 20,
    min_guardrail_rows: Annotated[
        int, typer.Option(help="Challenger decisions before guardrails are judged.")
    ] = 30,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Pre-register an experiment and its plan (developers, approvers). The plan never changes."""
    from charter import cli
    from charter.experiment.design import build_plan
    from charter.experiment.store import register_experiment

    p = build_plan(
        kind=kind,
        primary_metric=metric,
        mde=mde,
        direction=direction,
        alpha=alpha,
        power=power,
        baseline_rate=baseline_rate,
        sd=sd,
        min_rows=min_rows,
        tau2=tau2,
        max_days=max_days,
        stopping_rule=stopping_rule,
        challenger_share=challenger_share,
        guardrails={
            "max_latency_p99_ms": max_latency_ms,
            "max_error_rate": max_error_rate,
            "min_parity_ratio": min_parity_ratio,
            "max_parity_drop": max_parity_drop,
            "min_group_size": min_group_size,
            "min_rows": min_guardrail_rows,
        },
        protected_attributes=_read_attributes(attributes),
    )
    reg = cli._registry()
    e = register_experiment(
        reg,
        cli._actor(reg, token),
        name,
        model=model,
        challenger_version=challenger,
        champion_version=champion,
        plan=p,
    )
    if as_json:
        _write_json(e.to_dict())
        return
    cli.out.print(
        f"experiment {e.name} registered: {e.model_name} v{e.challenger_version} against "
        f"v{e.champion_version} ({e.kind}), deciding on {p.primary_metric} with "
        f"{p.n_champion:,} + {p.n_challenger:,} rows, at most {p.max_days} days; plan sha256 "
        f"{e.plan_sha256}"
    )


# ------------------------------------------------------------------------------------- analyze
@experiment_app.command("analyze")
@handled
def analyze(
    name: Annotated[str, typer.Argument(help="The experiment.")],
    since: Annotated[
        str | None, typer.Option(help="From this time (default: its registration).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Up to this time (default: now).")] = None,
    shadow: Annotated[
        bool, typer.Option("--shadow", help="Analyse shadow scores (a shadow experiment).")
    ] = False,
    record: Annotated[
        bool, typer.Option("--record", help="Record the decision with the token's identity.")
    ] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write the HTML comparison report here.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Analyse an experiment's traffic and decide: promote, keep, stop or continue."""
    from charter import cli
    from charter.experiment.analysis import analyze_experiment
    from charter.experiment.report import render_report_html, report_data
    from charter.experiment.store import record_experiment_decision

    reg = cli._registry()
    actor = cli._actor(reg, token) if record else None
    result = analyze_experiment(
        reg,
        name,
        since=cli._parse_time(since, "since"),
        until=cli._parse_time(until, "until"),
        shadow=True if shadow else None,
        seed=seed,
    )
    dec = result.decision
    recorded = None
    if actor is not None:
        from charter.experiment.store import get_experiment

        exp = get_experiment(reg, name)
        recorded = record_experiment_decision(reg, actor, exp.id, dec)
    if report is not None:
        report.write_text(render_report_html(report_data(result)), encoding="utf-8")
    if as_json:
        out = result.to_dict()
        if recorded is not None:
            out["recorded"] = {"id": recorded.id, "evidence_sha256": recorded.evidence_sha256}
        _write_json(out)
        return
    t = Table("metric", "champion", "challenger", "difference", "p-value", "verdict")
    for m in dec.metrics:
        rate = m.metric in ("approval_rate", "bad_rate")
        fa = _pct if rate else _num
        diff = (
            "n/a"
            if m.difference is None
            else (f"{100 * m.difference:+.2f} pts" if rate else f"{m.difference:+.4f}")
        )
        star = "*" if m.metric == dec.primary_metric else ""
        t.add_row(
            m.metric + star,
            fa(m.estimate_a),
            fa(m.estimate_b),
            diff,
            _num(m.p_value, 3),
            m.verdict,
        )
    cli.out.print(t)
    g = Table("guardrail", "challenger", "champion", "limit", "state")
    for c in dec.guardrails:
        state = "[bold red]breached[/]" if c.breached else ("held" if c.judged else "not judged")
        g.add_row(c.name, _num(c.value), _num(c.champion_value), f"{c.op} {c.limit:g}", state)
    cli.out.print(g)
    s = dec.sequential
    cli.out.print(
        f"always-valid p-value on {dec.primary_metric}: {s.p_value:.3g} ({s.looks} daily looks)"
    )
    until_text = f" until {dec.continue_until.isoformat()}" if dec.continue_until else ""
    cli.out.print(f"[bold]{dec.decision}{until_text}[/]: " + "; ".join(dec.reasons), markup=True)
    if recorded is not None:
        cli.out.print(f"decision recorded (evidence sha256 {recorded.evidence_sha256})")
    if report is not None:
        cli.out.print(f"report written to {report}")


# ---------------------------------------------------------------------------------- list, show
@experiment_app.command("list")
@handled
def list_(
    model: Annotated[str | None, typer.Option("--model", help="Only this model's.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Registered experiments."""
    from charter import cli
    from charter.experiment.store import list_experiments

    items = list_experiments(cli._registry(), model)
    if as_json:
        _write_json([e.to_dict() for e in items])
        return
    t = Table("name", "model", "kind", "champion", "challenger", "metric", "status", "created")
    for e in items:
        t.add_row(
            e.name, e.model_name, e.kind, str(e.champion_version), str(e.challenger_version),
            e.plan.primary_metric, e.status, e.created_at.isoformat(timespec="seconds"),
        )  # fmt: skip
    cli.out.print(t)


@experiment_app.command("show")
@handled
def show(name: str, as_json: JsonOpt = False) -> None:
    """An experiment: its plan and its recorded decisions."""
    from charter import cli
    from charter.experiment.store import get_experiment, list_experiment_decisions

    reg = cli._registry()
    e = get_experiment(reg, name)
    recorded = list_experiment_decisions(reg, e.id)
    if as_json:
        _write_json({**e.to_dict(), "decisions": [r.to_dict() for r in recorded]})
        return
    p = e.plan
    cli.out.print(
        f"{e.name}: {e.model_name} v{e.challenger_version} against v{e.champion_version} "
        f"({e.kind}), {e.status}; {p.primary_metric} ({p.direction} is better), alpha "
        f"{p.alpha:g}, mde {p.mde:g}, {p.stopping_rule}, at most {p.max_days} days"
    )
    for r in recorded:
        until = f" until {r.decided_until.isoformat()}" if r.decided_until else ""
        cli.out.print(
            f"  {r.created_at.isoformat(timespec='seconds')} {r.decision}{until} by "
            f"{r.decided_by} (evidence {r.evidence_sha256[:12]})"
        )
