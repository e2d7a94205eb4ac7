"""The ``charter`` command line: parse -> one library call -> format. Nothing else lives here.

Writes need an identity: ``--token`` or ``CHARTER_TOKEN`` (``charter init --admin NAME`` prints the
first one). Reads go straight to the store: whoever can open the database file can read it, so a
token would protect nothing there; the HTTP service requires tokens for everything.

Exit codes: 0 success, 1 integrity failure (broken audit chain, tampered artifact), 2 bad input,
3 not authenticated or not permitted, 4 conflict with a concurrent change.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer
from rich.console import Console
from rich.table import Table

from charter.cli_experiment import experiment_app
from charter.cli_monitor import alerts_app, monitor_app, scheduler_app
from charter.cli_pipeline import pipeline_app
from charter.config import Settings
from charter.entities import Actor, Checkpoint, FeatureSpec, Model, ModelVersion
from charter.errors import CharterError, InvalidArgument
from charter.registry import inventory
from charter.registry.service import Registry
from charter.storage.artifacts import ArtifactStore
from charter.storage.db import Database

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    help="Charter: govern, serve and monitor models in regulated finance.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(help="The model inventory.", no_args_is_help=True)
versions_app = typer.Typer(help="Model versions and their lineage.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
users_app = typer.Typer(help="Users, roles and API tokens.", no_args_is_help=True)
inventory_app = typer.Typer(help="Inventory exports for the model risk team.", no_args_is_help=True)
canary_app = typer.Typer(help="Canary rollouts with automatic rollback.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(versions_app, name="versions")
app.add_typer(audit_app, name="audit")
app.add_typer(users_app, name="users")
app.add_typer(inventory_app, name="inventory")
app.add_typer(canary_app, name="canary")
findings_app = typer.Typer(help="Validation findings and their remediation.", no_args_is_help=True)
narrative_app = typer.Typer(help="The model card's narrative sections.", no_args_is_help=True)
app.add_typer(findings_app, name="findings")
app.add_typer(narrative_app, name="narrative")
app.add_typer(experiment_app, name="experiment")
app.add_typer(monitor_app, name="monitor")
app.add_typer(alerts_app, name="alerts")
app.add_typer(scheduler_app, name="scheduler")
app.add_typer(pipeline_app, name="pipeline")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

TokenOpt = Annotated[
    str | None,
    typer.Option("--token", envvar="CHARTER_TOKEN", help="API token (or set CHARTER_TOKEN)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def handled(fn: F) -> F:
    """Turn Charter errors into a message naming the field and the fix, and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CharterError as e:
            err.print(f"[bold red]error[/] [dim]({e.code})[/]: {e.message}", markup=True)
            if e.field:
                err.print(f"  field: {e.field}")
            if e.remedy:
                err.print(f"  fix:   {e.remedy}")
            raise typer.Exit(e.exit_code) from None
        finally:
            while _OPEN:
                _OPEN.pop().dispose()

    return cast(F, wrapper)


# Databases opened by the running command; closed when it ends, whatever happened.
_OPEN: list[Database] = []


def _database(settings: Settings) -> Database:
    db = Database(settings.database_url)
    _OPEN.append(db)
    return db


def _registry() -> Registry:
    s = Settings.from_env()
    db = _database(s)
    db.check_schema()
    return Registry(db, ArtifactStore(s.artifact_root))


def _actor(reg: Registry, token: str | None) -> Actor:
    return reg.identity.authenticate(token)


def _print_json(obj: Any) -> None:
    out.print_json(json.dumps(obj, default=str))


def _model_dict(m: Model) -> dict[str, Any]:
    return {
        "name": m.name,
        "purpose": m.purpose,
        "business_use": m.business_use,
        "decision_type": m.decision_type,
        "owner": m.owner,
        "team": m.team,
        "risk_tier": m.risk_tier.value,
        "status": m.status,
        "champion_version": m.champion_version,
        "upstream": list(m.upstream),
        "downstream": list(m.downstream),
        "review_cadence_months": m.review_cadence_months,
        "last_review": m.last_review,
        "next_review": m.next_review,
        "review_overdue": m.review_overdue,
        "tags": m.tags,
        "created_at": m.created_at,
        "created_by": m.created_by,
        "retired_at": m.retired_at,
    }


def _version_dict(v: ModelVersion) -> dict[str, Any]:
    return {
        "model": v.model_name,
        "version": v.version,
        "stage": v.stage.value,
        "aliases": list(v.aliases),
        "artifact": {
            "sha256": v.artifact_sha256,
            "format": v.artifact_format,
            "size": v.artifact_size,
        },
        "feature_schema": [f.to_dict() for f in v.feature_schema],
        "training_data": v.training_data.to_dict() if v.training_data else None,
        "hyperparameters": v.hyperparameters,
        "seeds": v.seeds,
        "metrics": v.metrics,
        "code_commit": v.code_commit,
        "environment": v.environment,
        "author": v.author,
        "training_seconds": v.training_seconds,
        "description": v.description,
        "source": v.source,
        "created_at": v.created_at,
    }


def _parse_time(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(
            f"{value!r} is not a time", field=field, remedy="use ISO 8601, e.g. 2026-11-22T10:00Z"
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------- init
@app.command()
@handled
def init(
    admin: Annotated[
        str | None, typer.Option(help="Create this first admin user and print its token once.")
    ] = None,
) -> None:
    """Create the store (or migrate it to this version of Charter)."""
    s = Settings.from_env()
    db = _database(s)
    before, after = db.upgrade()
    s.artifact_root.mkdir(parents=True, exist_ok=True)
    state = "created" if before is None else ("migrated" if before != after else "up to date")
    out.print(f"store {state} at {db.safe_url} (schema {after}); artifacts in {s.artifact_root}")
    if admin:
        reg = Registry(db, ArtifactStore(s.artifact_root))
        _, token = reg.identity.bootstrap_admin(admin)
        out.print(f"admin [bold]{admin}[/] created. Its API token, shown only now:")
        out.print(token, markup=False)


# ---------------------------------------------------------------------------------------- users
@users_app.command("add")
@handled
def users_add(
    username: str,
    role: Annotated[list[str], typer.Option("--role", help="Repeat for several roles.")],
    display_name: Annotated[str, typer.Option(help="Full name.")] = "",
    automation: Annotated[bool, typer.Option(help="An automated job, not a person.")] = False,
    token: TokenOpt = None,
) -> None:
    """Create a user with roles (admins only)."""
    reg = _registry()
    u = reg.identity.create_user(
        _actor(reg, token), username, role, display_name=display_name, is_automation=automation
    )
    out.print(f"user {u.username} created with roles {', '.join(sorted(r.value for r in u.roles))}")


@users_app.command("list")
@handled
def users_list(as_json: JsonOpt = False) -> None:
    """List users and their roles."""
    users = _registry().identity.list_users()
    if as_json:
        _print_json(
            [
                {
                    "username": u.username,
                    "roles": sorted(r.value for r in u.roles),
                    "automation": u.is_automation,
                    "active": u.active,
                }
                for u in users
            ]
        )
        return
    t = Table("user", "roles", "kind", "active")
    for u in users:
        t.add_row(
            u.username,
            ", ".join(sorted(r.value for r in u.roles)),
            "automation" if u.is_automation else "person",
            "yes" if u.active else "no",
        )
    out.print(t)


@users_app.command("token")
@handled
def users_token(
    username: str,
    label: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    expires_days: Annotated[int | None, typer.Option(help="Expire after this many days.")] = None,
    token: TokenOpt = None,
) -> None:
    """Issue an API token (an admin for anyone, a user for themself). Shown once."""
    reg = _registry()
    if expires_days is not None and expires_days <= 0:
        raise InvalidArgument("expiry must be positive", field="expires_days", remedy="e.g. 90")
    t = reg.identity.issue_token(
        _actor(reg, token),
        username,
        label=label,
        expires_in=timedelta(days=expires_days) if expires_days else None,
    )
    out.print(t, markup=False)


@users_app.command("revoke")
@handled
def users_revoke(username: str, token: TokenOpt = None) -> None:
    """Revoke every token of a user (an admin for anyone, a user for themself), audited; the
    dashboard's sessions, which hold a token, end on their next page."""
    reg = _registry()
    n = reg.identity.revoke_tokens(_actor(reg, token), username)
    out.print(f"revoked {n} token(s) of {username}")


# ---------------------------------------------------------------------------------------- models
@models_app.command("create")
@handled
def models_create(
    name: str,
    purpose: Annotated[str, typer.Option(help="What the model estimates.")],
    business_use: Annotated[str, typer.Option(help="The business decision it supports.")],
    decision_type: Annotated[str, typer.Option(help="e.g. credit approval, fraud alert.")],
    owner: Annotated[str, typer.Option(help="The accountable model owner.")],
    team: Annotated[str, typer.Option(help="The team that develops it.")],
    tier: Annotated[str, typer.Option(help="Risk tier: high, medium or low.")],
    upstream: Annotated[list[str] | None, typer.Option(help="Upstream data (repeat).")] = None,
    downstream: Annotated[list[str] | None, typer.Option(help="Consumers (repeat).")] = None,
    cadence_months: Annotated[int | None, typer.Option(help="Review cadence override.")] = None,
    last_review: Annotated[str | None, typer.Option(help="YYYY-MM-DD.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="key=value (repeat).")] = None,
    token: TokenOpt = None,
) -> None:
    """Add a model to the inventory."""
    tags = {}
    for t in tag or []:
        if "=" not in t:
            raise InvalidArgument(f"tag {t!r} is not key=value", field="tag", remedy="--tag k=v")
        k, v = t.split("=", 1)
        tags[k] = v
    reg = _registry()
    m = reg.create_model(
        _actor(reg, token),
        name=name,
        purpose=purpose,
        business_use=business_use,
        decision_type=decision_type,
        owner=owner,
        team=team,
        risk_tier=tier,
        upstream=upstream,
        downstream=downstream,
        review_cadence_months=cadence_months,
        last_review=last_review,
        tags=tags,
    )
    out.print(f"model {m.name} added ({m.risk_tier.value} risk); next review {m.next_review}")


@models_app.command("list")
@handled
def models_list(as_json: JsonOpt = False) -> None:
    """List every model with tier, status, champion and next review."""
    ms = _registry().list_models()
    if as_json:
        _print_json([_model_dict(m) for m in ms])
        return
    t = Table("model", "tier", "status", "champion", "owner", "next review")
    for m in ms:
        nxt = f"[red]{m.next_review} overdue[/]" if m.review_overdue else str(m.next_review)
        champ = "-" if m.champion_version is None else f"v{m.champion_version}"
        t.add_row(m.name, m.risk_tier.value, m.status, champ, m.owner, nxt)
    out.print(t)


@models_app.command("show")
@handled
def models_show(name: str, as_json: JsonOpt = False) -> None:
    """Show one model's inventory record."""
    m = _registry().get_model(name)
    d = _model_dict(m)
    if as_json:
        _print_json(d)
        return
    t = Table("field", "value", show_header=False)
    for k, v in d.items():
        t.add_row(k, ", ".join(v) if isinstance(v, list) else str(v))
    out.print(t)


@models_app.command("review")
@handled
def models_review(
    name: str,
    date: Annotated[str, typer.Option(help="Review date, YYYY-MM-DD.")],
    token: TokenOpt = None,
) -> None:
    """Record a periodic review (validators and approvers)."""
    reg = _registry()
    m = reg.record_review(_actor(reg, token), name, date)
    out.print(f"review of {m.name} recorded on {m.last_review}; next due {m.next_review}")


# ---------------------------------------------------------------------------------------- versions
@versions_app.command("list")
@handled
def versions_list(name: str, as_json: JsonOpt = False) -> None:
    """List a model's versions with stage, aliases and artifact hash."""
    vs = _registry().list_versions(name)
    if as_json:
        _print_json([_version_dict(v) for v in vs])
        return
    t = Table("version", "stage", "aliases", "author", "format", "sha256", "created")
    for v in vs:
        t.add_row(
            str(v.version),
            v.stage.value,
            ", ".join(v.aliases) or "-",
            v.author,
            v.artifact_format,
            v.artifact_sha256[:12],
            v.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    out.print(t)


@versions_app.command("show")
@handled
def versions_show(name: str, version: str, as_json: JsonOpt = False) -> None:
    """Show one version with its full lineage (VERSION: a number, an alias or 'latest')."""
    v = _registry().resolve(name, version)
    d = _version_dict(v)
    if as_json:
        _print_json(d)
        return
    t = Table("field", "value", show_header=False)
    for k, val in d.items():
        if k == "feature_schema":
            val = f"{len(val)} features: " + ", ".join(f["name"] for f in val)
        t.add_row(k, json.dumps(val, default=str) if isinstance(val, (dict, list)) else str(val))
    out.print(t)


def _read_schema(path: Path | None) -> list[FeatureSpec] | None:
    if path is None:
        return None
    try:
        raw = json.loads(Path(path).read_text())
        return [FeatureSpec.from_dict(x) for x in raw]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InvalidArgument(
            f"cannot read the feature schema from {str(path)!r}: {e}",
            field="schema",
            remedy='give a JSON list like [{"name": "age", "type": "integer"}]',
        ) from None


@app.command()
@handled
def register(
    name: str,
    file: Annotated[Path | None, typer.Option(help="A serialised model file.")] = None,
    format: Annotated[str, typer.Option(help="skops, xgboost-json, lightgbm-txt, ...")] = "skops",
    mlflow: Annotated[Path | None, typer.Option(help="An MLflow model directory.")] = None,
    schema: Annotated[Path | None, typer.Option(help="Feature schema JSON file.")] = None,
    description: Annotated[str, typer.Option(help="What changed in this version.")] = "",
    allow_pickle: Annotated[
        bool, typer.Option(help="Vouch for a pickle artifact (it can run code when loaded).")
    ] = False,
    token: TokenOpt = None,
) -> None:
    """Register a new version from a model file or an MLflow model directory."""
    if (file is None) == (mlflow is None):
        raise InvalidArgument(
            "give exactly one of --file and --mlflow", field="file", remedy="--file model.skops"
        )
    reg = _registry()
    actor = _actor(reg, token)
    specs = _read_schema(schema)
    if file is not None:
        v = reg.register_file(
            actor,
            name,
            file,
            format=format,
            feature_schema=specs,
            description=description,
            allow_pickle=allow_pickle,
        )
    else:
        assert mlflow is not None
        v = reg.register_mlflow(
            actor,
            name,
            mlflow,
            description=description,
            allow_pickle=allow_pickle,
            feature_schema=specs,
        )
    out.print(f"{name} version {v.version} registered (sha256 {v.artifact_sha256})")


@app.command()
@handled
def transition(
    name: str,
    version: int,
    to: Annotated[str, typer.Option("--to", help="Target stage.")],
    comment: Annotated[str, typer.Option(help="Why.")] = "",
    justification: Annotated[
        str | None, typer.Option(help="Admins only: break-glass override of a refusal.")
    ] = None,
    token: TokenOpt = None,
) -> None:
    """Move a version through its lifecycle (development, validation, approved, retired)."""
    reg = _registry()
    v = reg.transition(
        _actor(reg, token), name, version, to, comment=comment, justification=justification
    )
    out.print(f"{name} version {v.version} is now {v.stage.value}")


@app.command()
@handled
def validate(
    name: str,
    version: int,
    policy: Annotated[Path, typer.Option(help="The validation policy (TOML).")],
    holdout: Annotated[Path, typer.Option(help="Labelled holdout data (CSV or Parquet).")],
    out_of_time: Annotated[
        Path | None, typer.Option(help="Labelled out-of-time data (CSV or Parquet).")
    ] = None,
    train: Annotated[
        Path | None, typer.Option(help="The training data (for the benchmark gate).")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Also write the run's full evidence as JSON here.")
    ] = None,
    as_json: JsonOpt = False,
    token: TokenOpt = None,
) -> None:
    """Run the policy's gates on a version and record the run; exit 1 if a gate fails.

    The run is stored bound to the version's artifact hash, its training-data hash, the policy's
    hash and the data sets' hashes, so it can serve as a deployment gate in CI.
    """
    from charter.validation.runner import validate as run_validation

    reg = _registry()
    actor = _actor(reg, token)
    try:
        text = policy.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidArgument(
            f"cannot read the policy {str(policy)!r}: {e}",
            field="policy",
            remedy="pass the path of a TOML validation policy",
        ) from None
    data = {"holdout": _read_table(holdout, "holdout")}
    if out_of_time is not None:
        data["out_of_time"] = _read_table(out_of_time, "out_of_time")
    if train is not None:
        data["train"] = _read_table(train, "train")
    run, record = run_validation(reg, actor, name, version, text, data)
    if report is not None:
        report.write_text(json.dumps(run.to_dict(), indent=2, sort_keys=True) + "\n")
    if as_json:
        _print_json({"gate_run_id": record.id, **run.to_dict()})
    else:
        _print_gate_run(run, record.id)
    if not run.passed:
        raise typer.Exit(1)


def _print_gate_run(run: Any, run_id: int) -> None:
    table = Table(
        title=f"{run.model} v{run.version} against policy {run.policy['name']} "
        f"(tier {run.tier}, threshold {run.threshold:g})"
    )
    for col in ("gate", "criterion", "data", "value", "limit", "result"):
        table.add_column(col, justify="right" if col in ("value", "limit") else "left")
    for gate in run.gates:
        for i, c in enumerate(gate.criteria):
            value = "n/a" if c.value is None else f"{c.value:.4f}"
            table.add_row(
                gate.gate if i == 0 else "",
                c.name,
                c.dataset or "",
                value,
                f"{c.op} {c.limit:g}",
                "[green]pass[/]" if c.passed else "[red]FAIL[/]",
            )
        for w in gate.warnings:
            table.add_row("", f"[yellow]warning:[/] {w}", "", "", "", "")
        table.add_section()
    out.print(table)
    verdict = "[green]PASSED[/]" if run.passed else "[red]FAILED[/]"
    failed = f" (failed: {', '.join(run.failed_gates)})" if run.failed_gates else ""
    out.print(f"gate run {run_id}: {verdict}{failed}; recorded against artifact "
              f"{run.artifact_sha256[:12]} and policy {run.policy['sha256'][:12]}")  # fmt: skip


@app.command()
@handled
def promote(
    name: str,
    version: int,
    alias: Annotated[str, typer.Option(help="champion, challenger or shadow.")] = "champion",
    expect: Annotated[
        str | None,
        typer.Option(help="Only if this version (or 'none') holds the alias now."),
    ] = None,
    comment: Annotated[str, typer.Option(help="Why.")] = "",
    justification: Annotated[
        str | None, typer.Option(help="Admins only: break-glass override of a refusal.")
    ] = None,
    token: TokenOpt = None,
) -> None:
    """Give an alias to a version (champion by default)."""
    from charter.registry.service import ANY

    expected: Any = ANY
    if expect is not None:
        if expect.lower() == "none":
            expected = None
        elif expect.isdigit():
            expected = int(expect)
        else:
            raise InvalidArgument(
                f"--expect {expect!r} is not a version", field="expect", remedy="a number or none"
            )
    reg = _registry()
    a = reg.set_alias(
        _actor(reg, token),
        name,
        version,
        alias,
        expected=expected,
        comment=comment,
        justification=justification,
    )
    out.print(f"{name} version {a.version} is now {a.alias.value} (revision {a.revision})")


# ---------------------------------------------------------------------------------------- audit
@audit_app.command("log")
@handled
def audit_log(
    model: Annotated[str | None, typer.Option(help="Only events about this model.")] = None,
    actor: Annotated[str | None, typer.Option(help="Only events by this user.")] = None,
    action: Annotated[str | None, typer.Option(help="An action, or a prefix like alias.*")] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601 time.")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 time.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many (newest first).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show audit events, filtered by model, actor, action and time."""
    events = _registry().audit_log(
        model_name=model,
        actor=actor,
        action=action,
        since=_parse_time(since, "since"),
        until=_parse_time(until, "until"),
        limit=limit,
        newest_first=limit is not None,
    )
    if limit is not None:
        events.reverse()
    if as_json:
        _print_json([e.__dict__ for e in events])
        return
    t = Table("seq", "time", "actor", "role", "action", "subject", "detail")
    for e in events:
        detail = ", ".join(
            f"{k}={v}" for k, v in e.payload.items() if k in ("version", "alias", "to", "reason")
        )
        t.add_row(str(e.seq), e.ts[:19], e.actor, e.role, e.action, e.subject, detail)
    out.print(t)


def _load_checkpoint(path: Path) -> Checkpoint:
    try:
        d = json.loads(Path(path).read_text())
        return Checkpoint(seq=int(d["seq"]), hash=str(d["hash"]), ts=str(d.get("ts", "")))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InvalidArgument(
            f"cannot read the checkpoint {str(path)!r}: {e}",
            field="checkpoint",
            remedy="pass a file written by `charter audit checkpoint --out FILE`",
        ) from None


@audit_app.command("verify")
@handled
def audit_verify(
    checkpoint: Annotated[
        Path | None, typer.Option(help="A saved checkpoint the chain must still contain.")
    ] = None,
) -> None:
    """Recompute the hash chain; name the first broken event. Exit 1 if broken."""
    cp = _load_checkpoint(checkpoint) if checkpoint else None
    r = _registry().verify_audit(cp)
    if not r.ok:
        err.print(f"[bold red]audit chain BROKEN[/] at event {r.first_broken_seq}: {r.reason}")
        raise typer.Exit(1)
    head = r.head
    extra = f" and contains checkpoint {cp.seq}" if cp else ""
    out.print(
        f"audit chain verified: {r.events_checked} events, head {head.seq if head else 0} "
        f"{head.hash if head else ''}{extra}"
    )


@audit_app.command("checkpoint")
@handled
def audit_checkpoint(
    out_file: Annotated[Path | None, typer.Option("--out", help="Write it to this file.")] = None,
) -> None:
    """Export the chain head (seq, hash); keep it elsewhere to catch truncation or rewrites."""
    cp = _registry().audit_checkpoint()
    if cp is None:
        raise InvalidArgument("the audit trail is empty", remedy="nothing to checkpoint yet")
    text = json.dumps(cp.to_dict())
    if out_file:
        out_file.write_text(text + "\n")
        out.print(f"checkpoint seq {cp.seq} written to {out_file}")
    else:
        out.print(text, markup=False)


@audit_app.command("holder")
@handled
def audit_holder(
    name: str,
    at: Annotated[str, typer.Option(help="ISO 8601 time.")],
    alias: Annotated[str, typer.Option(help="champion, challenger or shadow.")] = "champion",
) -> None:
    """Who held an alias of a model at a given time (from the audit trail)."""
    t = _parse_time(at, "at")
    assert t is not None
    v = _registry().alias_holder_at(name, alias, t)
    out.print(f"{alias} of {name} at {t.isoformat()}: {'nobody' if v is None else f'version {v}'}")


# ---------------------------------------------------------------------------------------- inventory
@inventory_app.command("export")
@handled
def inventory_export(
    format: Annotated[str, typer.Option(help="csv, json or md.")] = "md",
    out_file: Annotated[Path | None, typer.Option("--out", help="Write to this file.")] = None,
) -> None:
    """Export the inventory: every model, production counts by tier, overdue reviews."""
    if format not in inventory.FORMATS:
        raise InvalidArgument(
            f"unknown format {format!r}", field="format", remedy="use csv, json or md"
        )
    text = inventory.render(inventory.build(_registry()), format)
    if out_file:
        out_file.write_text(text)
        out.print(f"inventory written to {out_file}")
    else:
        sys.stdout.write(text)


# ---------------------------------------------------------------------------------------- drift
def _read_table(path: Path, field: str) -> Any:
    import pandas as pd

    if not path.is_file():
        raise InvalidArgument(f"no file at {str(path)!r}", field=field, remedy="check the path")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt", ".gz"):
            return pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError) as e:
        raise InvalidArgument(
            f"cannot read {str(path)!r}: {str(e).splitlines()[0]}",
            field=field,
            remedy="give a CSV file with a header row, or a Parquet file",
        ) from None
    raise InvalidArgument(
        f"unknown file type {suffix!r} for {str(path)!r}",
        field=field,
        remedy="use .csv or .parquet",
    )


def _read_policy(path: Path | None) -> Any:
    from charter.stats.policy import DriftPolicy

    if path is None:
        return DriftPolicy()
    try:
        text = path.read_text()
        if path.suffix.lower() == ".toml":
            import tomllib

            raw = tomllib.loads(text)
            raw = raw.get("drift", raw)
        else:
            raw = json.loads(text)
    except (OSError, ValueError) as e:
        raise InvalidArgument(
            f"cannot read the policy {str(path)!r}: {e}",
            field="policy",
            remedy="give a TOML file with a [drift] table, or a JSON object",
        ) from None
    return DriftPolicy.from_dict(raw)


@app.command()
@handled
def drift(
    reference: Annotated[Path, typer.Argument(help="Reference data (CSV or Parquet).")],
    current: Annotated[Path, typer.Argument(help="Current data (CSV or Parquet).")],
    report: Annotated[Path | None, typer.Option(help="Write a self-contained HTML report.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON snapshot.")] = False,
    policy: Annotated[Path | None, typer.Option(help="Drift policy (TOML or JSON).")] = None,
    columns: Annotated[
        list[str] | None, typer.Option("--column", help="Only these columns (repeat).")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Leave these columns out (repeat).")
    ] = None,
    bins: Annotated[int, typer.Option(help="PSI bins (reference quantiles).")] = 10,
    fail_on: Annotated[
        str | None, typer.Option(help="Exit 1 if any feature reaches: warning or critical.")
    ] = None,
) -> None:
    """Compare two data sets feature by feature: PSI, KS, chi-square, Wasserstein, JS."""
    from charter.stats.compare import compare
    from charter.stats.policy import TIERS
    from charter.stats.sketches import build_profile, is_numeric_column

    if fail_on is not None and fail_on not in ("warning", "critical"):
        raise InvalidArgument(
            f"--fail-on {fail_on!r}", field="fail_on", remedy="use warning or critical"
        )
    pol = _read_policy(policy)
    ref = _read_table(reference, "reference")
    cur = _read_table(current, "current")
    names = [str(c) for c in ref.columns]
    for c in [*(columns or []), *(exclude or [])]:
        if c not in names:
            raise InvalidArgument(
                f"column {c!r} is not in the reference data",
                field="column",
                remedy=f"use one of: {', '.join(names)}",
            )
    chosen = [c for c in (columns or names) if c not in set(exclude or [])]
    numeric = [c for c in chosen if is_numeric_column(ref[c])]
    categorical = [c for c in chosen if c not in numeric]
    fine = bins * max(1, 1000 // bins)
    profile = build_profile(
        ref, numeric=numeric, categorical=categorical, bins=bins, fine_bins=fine
    )
    result = compare(profile, profile.accumulator().update(cur), pol)
    snapshot = result.to_dict()
    if report is not None:
        from charter.reports.drift_html import render_drift_html

        report.write_text(
            render_drift_html(
                snapshot,
                reference_name=reference.name,
                current_name=current.name,
            ),
            encoding="utf-8",
        )
    if as_json:
        sys.stdout.write(json.dumps(snapshot, indent=2, allow_nan=False) + "\n")
    else:
        colour = {"stable": "green", "warning": "yellow", "critical": "bold red"}
        from rich.table import Column

        t = Table(
            Column("feature", no_wrap=True),
            "kind",
            "test",
            "value",
            "adj. p",
            "PSI",
            "effect",
            Column("tier", no_wrap=True),
        )
        order = sorted(result.features, key=lambda f: -TIERS.index(f.tier))
        for f in order:
            t.add_row(
                f.feature,
                f.kind,
                "KS" if f.test == "ks" else "chi2",
                f"{f.statistic:.4g}",
                f"{f.p_adjusted:.2g}",
                f"{f.psi:.4f}",
                f"{f.effect:.4f}",
                f"[{colour[f.tier]}]{f.tier}[/]",
            )
        out.print(t)
        by = result.by_tier()
        out.print(
            f"{len(result.features)} features: {by['critical']} critical, {by['warning']} "
            f"warning, {by['stable']} stable ({result.n_reference} reference rows, "
            f"{result.n_current} current rows)"
        )
        if report is not None:
            out.print(f"report written to {report}")
    if fail_on is not None and TIERS.index(result.worst_tier) >= TIERS.index(fail_on):
        raise typer.Exit(1)


# ---------------------------------------------------------------------------------------- canary
@canary_app.command("start")
@handled
def canary_start(
    name: str,
    version: int,
    steps: Annotated[str, typer.Option(help="Shares of applicants, e.g. 0.05,0.2,1.0.")] = (
        "0.05,0.2,1.0"
    ),
    min_decisions: Annotated[int, typer.Option(help="Decisions each step must hold for.")] = 500,
    max_error_rate: Annotated[float, typer.Option(help="Roll back above this.")] = 0.01,
    max_latency_ms: Annotated[float, typer.Option(help="Roll back above this p99.")] = 50.0,
    max_score_psi: Annotated[float, typer.Option(help="Score PSI against the champion.")] = 0.10,
    max_approval_delta: Annotated[float, typer.Option(help="Approval-rate gap.")] = 0.05,
    token: TokenOpt = None,
) -> None:
    """Start a canary of an approved version (approvers; never the version's developer)."""
    try:
        shares = [float(x) for x in steps.split(",") if x.strip()]
    except ValueError:
        raise InvalidArgument(
            f"--steps {steps!r} is not a list of shares", field="steps", remedy="e.g. 0.05,0.2,1.0"
        ) from None
    plan = {
        "steps": shares,
        "min_decisions": min_decisions,
        "max_error_rate": max_error_rate,
        "max_latency_p99_ms": max_latency_ms,
        "max_score_psi": max_score_psi,
        "max_approval_rate_delta": max_approval_delta,
    }
    reg = _registry()
    reg.start_canary(_actor(reg, token), name, version, plan)
    out.print(f"canary of {name} v{version} started at {shares[0]:.0%} of applicants")


@canary_app.command("status")
@handled
def canary_status(name: str, as_json: JsonOpt = False) -> None:
    """The model's canary: version, share, plan and state."""
    c = _registry().canary(name)
    if as_json:
        _print_json(c)
        return
    if c is None:
        out.print(f"{name} has no canary")
        return
    st = c["state"]
    out.print(
        f"{name} v{c['version']}: {st['status']} at {c['share']:.0%} of applicants "
        f"(step {st['step'] + 1} of {len(c['plan']['steps'])}); {st['reason'] or 'just started'}"
    )


@canary_app.command("step")
@handled
def canary_step(name: str, token: TokenOpt = None) -> None:
    """Judge the running canary now on the decisions since its last step (service, admin)."""
    from charter.clock import system_clock
    from charter.entities import Role
    from charter.identity import require_role
    from charter.serving.canary import tick

    reg = _registry()
    require_role(_actor(reg, token), Role.SERVICE, Role.ADMIN, action="step a canary")
    result = tick(reg, name, system_clock())
    if result is None:
        out.print(f"{name} has no running canary")
        return
    action, state = result
    out.print(f"{action}: {state['reason']}")


# ---------------------------------------------------------------------------------------- workflow
def _finding_dict(f: Any) -> dict[str, Any]:
    return {
        "id": f.id,
        "model": f.model_name,
        "version": f.version,
        "severity": f.severity.value,
        "status": f.status.value,
        "title": f.title,
        "description": f.description,
        "remediation_owner": f.remediation_owner,
        "due_date": f.due_date.isoformat(),
        "overdue": f.overdue,
        "raised_by": f.raised_by,
        "raised_at": f.raised_at,
        "updated_by": f.updated_by,
        "updated_at": f.updated_at,
        "resolution": f.resolution,
        "remediated_by": f.remediated_by,
        "closure_note": f.closure_note,
    }


def _where(f: Any) -> str:
    return f.model_name if f.version is None else f"{f.model_name} v{f.version}"


@findings_app.command("add")
@handled
def findings_add(
    name: str,
    severity: Annotated[str, typer.Option(help="high, medium or low.")],
    title: Annotated[str, typer.Option(help="One line naming the issue.")],
    description: Annotated[str, typer.Option(help="What was found and why it matters.")],
    owner: Annotated[str, typer.Option(help="Who remediates it (a username or a role).")],
    due: Annotated[str, typer.Option(help="Remediation due date, YYYY-MM-DD.")],
    version: Annotated[
        int | None, typer.Option(help="The version; leave out for a finding on the whole model.")
    ] = None,
    token: TokenOpt = None,
) -> None:
    """Raise a validation finding (validators; never on a version of one's own)."""
    reg = _registry()
    f = reg.raise_finding(
        _actor(reg, token),
        name,
        version,
        severity=severity,
        title=title,
        description=description,
        remediation_owner=owner,
        due_date=due,
    )
    out.print(
        f"finding #{f.id} raised on {_where(f)} ({f.severity.value}): {f.title}; "
        f"{f.remediation_owner} remediates it by {f.due_date}"
    )


@findings_app.command("list")
@handled
def findings_list(
    name: Annotated[str | None, typer.Argument(help="Only this model's findings.")] = None,
    status: Annotated[str | None, typer.Option(help="open, remediated, closed or overdue.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List findings, oldest first (overdue ones in red)."""
    fs = _registry().list_findings(name, status)
    if as_json:
        _print_json([_finding_dict(f) for f in fs])
        return
    t = Table("id", "model", "version", "severity", "status", "due", "owner", "title")
    for f in fs:
        due = f"[red]{f.due_date} overdue[/]" if f.overdue else str(f.due_date)
        t.add_row(
            str(f.id),
            f.model_name,
            "-" if f.version is None else str(f.version),
            f.severity.value,
            f.status.value,
            due,
            f.remediation_owner,
            f.title,
        )
    out.print(t)


@findings_app.command("remediate")
@handled
def findings_remediate(
    finding_id: Annotated[int, typer.Argument(metavar="ID", help="The finding's number.")],
    note: Annotated[str, typer.Option(help="What was done to remediate it.")],
    token: TokenOpt = None,
) -> None:
    """Mark a finding remediated (a developer, or the finding's remediation owner)."""
    reg = _registry()
    f = reg.remediate_finding(_actor(reg, token), finding_id, note)
    out.print(
        f"finding #{f.id} on {_where(f)} is remediated; an independent validator closes it "
        f"(charter findings close {f.id} --note TEXT)"
    )


@findings_app.command("close")
@handled
def findings_close(
    finding_id: Annotated[int, typer.Argument(metavar="ID", help="The finding's number.")],
    note: Annotated[str, typer.Option(help="How the remediation was verified.")],
    token: TokenOpt = None,
) -> None:
    """Close a remediated finding (a validator who did not remediate it)."""
    reg = _registry()
    f = reg.close_finding(_actor(reg, token), finding_id, note)
    out.print(f"finding #{f.id} on {_where(f)} is closed")


@findings_app.command("reopen")
@handled
def findings_reopen(
    finding_id: Annotated[int, typer.Argument(metavar="ID", help="The finding's number.")],
    note: Annotated[str, typer.Option(help="Why it is open again.")],
    token: TokenOpt = None,
) -> None:
    """Reopen a remediated or closed finding (validators)."""
    reg = _registry()
    f = reg.reopen_finding(_actor(reg, token), finding_id, note)
    out.print(f"finding #{f.id} on {_where(f)} is open again")


def _read_toml(path: Path, field: str, table: str, remedy: str) -> dict[str, Any]:
    import tomllib

    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InvalidArgument(
            f"cannot read {str(path)!r}: {e}", field=field, remedy=remedy
        ) from None
    inner = raw.get(table, raw)
    if not isinstance(inner, dict):
        raise InvalidArgument(f"[{table}] in {str(path)!r} is not a table", field=field,
                              remedy=remedy)  # fmt: skip
    return inner


@app.command()
@handled
def recommend(
    name: str,
    version: int,
    recommendation: Annotated[
        str, typer.Option(help="approve, approve-with-conditions or reject.")
    ],
    summary: Annotated[str, typer.Option(help="The validator's conclusion in a few lines.")],
    condition: Annotated[
        list[str] | None, typer.Option("--condition", help="A condition of approval (repeat).")
    ] = None,
    sections: Annotated[
        Path | None,
        typer.Option(
            help="TOML with the narrative: scope, conceptual_soundness, limitations, conclusion."
        ),
    ] = None,
    gate_run: Annotated[
        int | None, typer.Option(help="The gate run the conclusion rests on (its id).")
    ] = None,
    justification: Annotated[
        str | None, typer.Option(help="Admins only: break-glass override of a refusal.")
    ] = None,
    token: TokenOpt = None,
) -> None:
    """Record the independent validator's recommendation on a version in validation."""
    narrative = None
    if sections is not None:
        narrative = _read_toml(
            sections,
            "sections",
            "validation",
            "give a TOML file with scope = '...', conclusion = '...' (optionally in [validation])",
        )
    reg = _registry()
    r = reg.record_validation(
        _actor(reg, token),
        name,
        version,
        recommendation=recommendation,
        summary=summary,
        conditions=condition or [],
        sections=narrative,
        gate_run_id=gate_run,
        justification=justification,
    )
    conds = f" with {len(r.conditions)} condition(s)" if r.conditions else ""
    out.print(
        f"validation {r.id} of {name} v{version}: {r.validator} recommends "
        f"{r.recommendation.replace('_', ' ')}{conds}"
    )


@app.command()
@handled
def approve(
    name: str,
    version: int,
    comment: Annotated[str, typer.Option(help="The approver's reasoning.")],
    with_condition: Annotated[
        list[str] | None,
        typer.Option("--with-condition", help="Approve with this condition (repeat)."),
    ] = None,
    reject: Annotated[
        bool, typer.Option("--reject", help="Reject: send the version back to development.")
    ] = False,
    justification: Annotated[
        str | None, typer.Option(help="Admins only: break-glass override of a refusal.")
    ] = None,
    token: TokenOpt = None,
) -> None:
    """The approver's decision on a version in validation: approve (with conditions) or reject."""
    conditions = with_condition or []
    if reject and conditions:
        raise InvalidArgument(
            "a rejection carries no conditions",
            field="with_condition",
            remedy="give --reject or --with-condition, not both",
        )
    decision = "rejected" if reject else ("approved_with_conditions" if conditions else "approved")
    reg = _registry()
    a = reg.decide(
        _actor(reg, token),
        name,
        version,
        decision,
        comment=comment,
        conditions=conditions,
        justification=justification,
    )
    if reject:
        out.print(f"{name} version {version} rejected by {a.approver}: back in development")
    else:
        conds = f" with {len(a.conditions)} condition(s)" if a.conditions else ""
        out.print(f"{name} version {version} approved{conds} by {a.approver}")


@narrative_app.command("set")
@handled
def narrative_set(
    name: str,
    file: Annotated[
        Path,
        typer.Option(
            help="TOML: intended_use, out_of_scope_uses, factors, ethical_considerations, "
            "caveats_and_recommendations (optionally in a [narrative] table)."
        ),
    ],
    token: TokenOpt = None,
) -> None:
    """Set the model card's narrative sections (developers, approvers); others stay as they are."""
    sections = _read_toml(
        file,
        "file",
        "narrative",
        "give a TOML file with intended_use = '...' and the other sections",
    )
    reg = _registry()
    n = reg.set_model_narrative(_actor(reg, token), name, sections)
    out.print(
        f"narrative of {name} is at revision {n.revision}: "
        + (", ".join(sorted(n.sections)) or "no sections")
    )


@narrative_app.command("show")
@handled
def narrative_show(name: str, as_json: JsonOpt = False) -> None:
    """Show the model card's narrative sections."""
    n = _registry().get_model_narrative(name)
    if as_json:
        _print_json(
            {
                "model": n.model_name,
                "revision": n.revision,
                "updated_by": n.updated_by,
                "updated_at": n.updated_at,
                "sections": n.sections,
            }
        )
        return
    if not n.sections:
        out.print(f"{name} has no narrative yet (charter narrative set {name} --file FILE)")
        return
    t = Table("section", "text", show_header=False)
    for k, v in n.sections.items():
        t.add_row(k, v)
    out.print(t)
    out.print(f"revision {n.revision} by {n.updated_by} at {n.updated_at}")


# ---------------------------------------------------------------------------------------- serve
@app.command()
@handled
def report(
    kind: Annotated[str, typer.Argument(help="model-card, validation or mrm.")],
    name: Annotated[str | None, typer.Argument(help="The model (not for mrm).")] = None,
    version: Annotated[
        str | None, typer.Option(help="Version number or alias (default: the champion).")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write into.")] = Path("reports"),
    formats: Annotated[
        str, typer.Option("--format", help="Comma-separated: json, html, pdf.")
    ] = "json,html,pdf",
    as_of: Annotated[
        str | None, typer.Option(help="The date that decides what is overdue (YYYY-MM-DD).")
    ] = None,
    token: TokenOpt = None,
) -> None:
    """Write a model card, a validation report or the MRM committee report, built only from the
    audited record, as JSON, self-contained HTML and PDF; the generation is an audit event."""
    from datetime import date

    from charter.reports import documents, render

    wanted = tuple(f.strip().lower() for f in formats.split(",") if f.strip())
    bad = [f for f in wanted if f not in render.FORMATS]
    if not wanted or bad:
        raise InvalidArgument(
            f"unknown format {', '.join(bad) or formats!r}",
            field="format",
            remedy=f"use a comma-separated list of {', '.join(render.FORMATS)}",
        )
    day = None
    if as_of is not None:
        try:
            day = date.fromisoformat(as_of)
        except ValueError:
            raise InvalidArgument(
                f"--as-of {as_of!r} is not a date", field="as_of", remedy="use YYYY-MM-DD"
            ) from None
    reg = _registry()
    actor = _actor(reg, token)
    ref: int | str | None = int(version) if version and version.isdigit() else version
    doc = documents.build_document(reg, kind, name, ref, as_of=day)
    paths = documents.publish(reg, actor, doc, out_dir, wanted)
    head = doc["provenance"]
    out.print(
        f"{kind} built from audit head #{head['audit_head_seq']} "
        f"(document sha256 {doc['document_sha256'][:16]}):"
    )
    for fmt, path in paths.items():
        out.print(f"  {fmt}: {path}")


@app.command()
@handled
def decisions(
    model: Annotated[str | None, typer.Option(help="Only this model's decisions.")] = None,
    version: Annotated[int | None, typer.Option(help="Only this version's.")] = None,
    decision: Annotated[str | None, typer.Option(help="approve or decline.")] = None,
    variant: Annotated[str | None, typer.Option(help="champion, challenger or canary.")] = None,
    entity: Annotated[str | None, typer.Option(help="One applicant's entity key.")] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601 time, UTC if no zone.")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 time (exclusive).")] = None,
    limit: Annotated[int, typer.Option(help="Decisions per page (1-500).")] = 50,
    before: Annotated[
        str | None, typer.Option(help="The cursor a previous page printed, for the next page.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The decision log, newest first: which decisions were made, by which version, for whom.
    Filters combine; each page prints the cursor of the next one."""
    from dataclasses import asdict

    from charter.serving.decision_log import list_decisions

    t0, t1 = _parse_time(since, "since"), _parse_time(until, "until")
    reg = _registry()
    page = list_decisions(
        reg.db,
        model=model,
        version=version,
        decision=decision,
        variant=variant,
        entity_key=entity,
        since=t0,
        until=t1,
        before=before,
        limit=limit,
    )
    if as_json:
        _print_json(
            {"decisions": [asdict(r) for r in page.records], "next_before": page.next_before}
        )
        return
    t = Table("decided", "decision id", "model", "variant", "entity", "score", "decision", "reason")
    for r in page.records:
        first = r.reason_codes[0].get("feature", "") if r.reason_codes else ""
        t.add_row(r.created_at, r.id, f"{r.model_name} v{r.version}", r.variant, r.entity_key,
                  f"{r.score:.4f}", r.decision, str(first))  # fmt: skip
    out.print(t if page.records else "no logged decision matches")
    if page.next_before is not None:
        out.print(f"older decisions: --before '{page.next_before}'")


@app.command()
@handled
def explain(
    decision_id: Annotated[str, typer.Argument(help="The decision id the service returned.")],
    counterfactual: Annotated[
        bool, typer.Option(help="Search the smallest change that flips a decline.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Why was this applicant declined? The version and its hash, the inputs, score and
    threshold, the reasons, a counterfactual, the validation in force, and a replay."""
    from charter.explain.decision import explain_decision

    reg = _registry()
    e = explain_decision(reg, decision_id, with_counterfactual=counterfactual)
    if as_json:
        _print_json(e.to_dict())
        return
    out.print(
        f"decision {e.decision_id} ({e.created_at}): [bold]{e.decision}[/] by {e.model} "
        f"v{e.version} ({e.variant}), artifact sha256 {e.artifact_sha256}"
    )
    out.print(f"score {e.score:.6f} against threshold {e.threshold:g} (declined at or above it)")
    t = Table("reason", "feature", "log-odds contribution", "text")
    for i, r in enumerate(e.reasons, 1):
        t.add_row(str(i), str(r.get("feature")), f"{float(r.get('contribution', 0)):+.4f}",
                  str(r.get("text", "")))  # fmt: skip
    out.print(t if e.reasons else "no reasons were logged (the model gives none)")
    if e.counterfactual is not None:
        cf = e.counterfactual
        changes = "; ".join(
            f"{c['feature']}: {c['from']} -> {c['to']}" for c in cf.get("changes", [])
        )
        out.print(f"would have been approved with: {changes} (score {cf.get('score', 0):.4f})")
    rep = e.replay
    verdict = "[green]reproduced[/]" if rep.reproduced else "[red]NOT reproduced[/]"
    out.print(
        f"replay with v{e.version} from the artifact store: score {rep.score:.6f} "
        f"(difference {rep.difference:.1e}), same reasons: {rep.same_reasons}: {verdict}"
    )
    vf = e.validation_in_force
    gate = vf.get("gate_run")
    val = vf.get("validation")
    app_ = vf.get("approval")
    out.print(
        "in force at the time: "
        + (f"gate run {gate['id']} ({'passed' if gate['passed'] else 'FAILED'})" if gate
           else "no gate run")
        + (f"; {val['recommendation']} by {val['validator']}" if val else "; no validation")
        + (f"; {app_['decision']} by {app_['approver']}" if app_ else "; no approval")
    )  # fmt: skip
    if e.outcome is not None:
        out.print(f"outcome: label {e.outcome['label']} (observed {e.outcome['observed_at']})")
    for note in e.notes:
        out.print(f"[yellow]note:[/] {note}")


@app.command()
@handled
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    refresh_seconds: Annotated[float, typer.Option(help="How often to pick up changes.")] = 1.0,
) -> None:
    """Serve every model with a champion over HTTP (scoring, decisions, outcomes, metrics)."""
    import os

    if workers < 1:
        raise InvalidArgument("workers must be at least 1", field="workers", remedy="--workers 2")
    Registry.open(Settings.from_env()).db.dispose()  # fail early, with a clear message
    # One thread per worker for OpenMP and BLAS: on 2 cores, default threading in two workers
    # cut a gradient-boosting model from 1,759 to 65 requests per second.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    os.environ["CHARTER_REFRESH_SECONDS"] = str(refresh_seconds)
    out.print(f"serving on http://{host}:{port} with {workers} worker(s)")
    out.print(f"dashboard at http://{host}:{port}/ui/ (sign in with a Charter token)")
    from charter.serving import server

    server.run(host, port, workers)


# ---------------------------------------------------------------------------------------- demo
@app.command()
@handled
def demo() -> None:
    """Run the German Credit story end to end on a fresh store."""
    from charter.demo import run

    run(Settings.from_env(), out)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
