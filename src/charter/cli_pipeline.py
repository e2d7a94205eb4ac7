"""``charter pipeline run|status|resume``: the continuous-training pipeline (``charter.pipelines``).

Thin, as the rest of the CLI (see ``cli_experiment``). A run acts as the automation identity and
registers its candidate on behalf of the spec's developer, so only that developer, an admin or a
service token may start or resume one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from charter.cli_experiment import JsonOpt, TokenOpt, _write_json, handled
from charter.errors import PermissionDenied

pipeline_app = typer.Typer(
    help="Continuous training: snapshot, validate, train, gates, shadow, compare, canary, promote.",
    no_args_is_help=True,
)


def _may_run(actor: Any, developer: str) -> None:
    from charter.identity import Role

    if actor.username == developer or actor.has(Role.ADMIN) or actor.has(Role.SERVICE):
        return
    raise PermissionDenied(
        f"{actor.username} may not run a pipeline that registers versions on behalf of {developer}",
        remedy=f"use {developer}'s token, an admin's or a service token",
    )


def _print(run: Any, as_json: bool) -> None:
    from charter import cli

    if as_json:
        _write_json(run.to_dict())
        return
    t = Table("step", "status", "finished", "detail",
              title=f"pipeline run {run.id} of {run.model}: {run.status}")  # fmt: skip
    for s in run.steps:
        detail = s.result.get("reason") or ", ".join(
            f"{k}={v}" for k, v in list(s.result.items())[:3] if not isinstance(v, dict | list)
        )
        t.add_row(s.step, s.status, "" if s.finished_at is None else str(s.finished_at), detail)
    cli.out.print(t)
    if run.candidate_version is not None:
        cli.out.print(f"candidate: {run.model} v{run.candidate_version}")
    if run.reason:
        cli.out.print(f"[yellow]{run.reason}[/]")


def _transport(lineage_dir: Path | None) -> Any:
    from charter.pipelines.openlineage import FileTransport

    return None if lineage_dir is None else FileTransport(lineage_dir)


@pipeline_app.command("run")
@handled
def pipeline_run(
    spec_path: Annotated[Path, typer.Argument(help="The pipeline spec (TOML).")],
    trigger: Annotated[str | None, typer.Option(help="The retraining trigger it answers.")] = None,
    key: Annotated[
        str | None, typer.Option(help="Idempotency key: the same key resumes the same run.")
    ] = None,
    lineage_dir: Annotated[
        Path | None, typer.Option(help="Where OpenLineage events go (default $CHARTER_HOME).")
    ] = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start (or, with the same key, resume) a continuous-training run; it goes as far as it
    can now and says what it waits for."""
    from charter import cli
    from charter.pipelines.ct import PipelineSpec, run_pipeline

    reg = cli._registry()
    spec = PipelineSpec.from_toml(spec_path)
    _may_run(cli._actor(reg, token), spec.developer)
    run = run_pipeline(
        reg, spec, trigger=trigger, idempotency_key=key, lineage=_transport(lineage_dir)
    )
    _print(run, as_json)
    if run.status == "failed":
        raise typer.Exit(1)


@pipeline_app.command("resume")
@handled
def pipeline_resume(
    run_id: Annotated[str, typer.Argument(help="The run's id or idempotency key.")],
    spec_path: Annotated[
        Path | None, typer.Option("--spec", help="The spec, if it uses Python callables.")
    ] = None,
    lineage_dir: Annotated[Path | None, typer.Option(help="Where OpenLineage events go.")] = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Continue a run from its first step not done."""
    from charter import cli
    from charter.pipelines.ct import PipelineSpec, get_pipeline_run, resume_pipeline

    reg = cli._registry()
    spec = None if spec_path is None else PipelineSpec.from_toml(spec_path)
    actor = cli._actor(reg, token)
    current = get_pipeline_run(reg, run_id)
    developer = spec.developer if spec is not None else current.created_by
    stored = current.to_dict()
    developer = str(stored.get("developer") or developer)
    _may_run(actor, developer)
    run = resume_pipeline(reg, run_id, spec=spec, lineage=_transport(lineage_dir))
    _print(run, as_json)
    if run.status == "failed":
        raise typer.Exit(1)


@pipeline_app.command("status")
@handled
def pipeline_status(
    run_id: Annotated[str | None, typer.Argument(help="A run's id or key; omit to list.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model's runs.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """One run with its steps, or the list of runs."""
    from charter import cli
    from charter.pipelines.ct import get_pipeline_run, list_pipeline_runs

    reg = cli._registry()
    if run_id is not None:
        _print(get_pipeline_run(reg, run_id), as_json)
        return
    runs = list_pipeline_runs(reg, model)
    if as_json:
        _write_json([r.to_dict() for r in runs])
        return
    t = Table("run", "model", "status", "candidate", "step", "trigger", "updated",
              title="Continuous-training runs")  # fmt: skip
    for r in runs:
        candidate = "-" if r.candidate_version is None else str(r.candidate_version)
        t.add_row(
            r.id, r.model, r.status, candidate, r.current_step or "-", r.trigger or "-",
            str(r.updated_at),
        )  # fmt: skip
    cli.out.print(t)
