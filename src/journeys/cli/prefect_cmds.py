"""``journeys deploy``: the journeys as Prefect deployments (one per journey, named after it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from journeys.cli import app, load_valid_project
from journeys.orchestration.prefect_deploy import DEFAULT_SETTLE_SECONDS, DEFAULT_WINDOW_SECONDS

if TYPE_CHECKING:
    from journeys.orchestration.prefect_deploy import DeploymentSpec
    from journeys.plan import Plan

DEFAULT_WORK_POOL = "journeys"


DEPLOY_HELP = (
    "Turn every journey into a Prefect deployment named after it, with its triggers and "
    "schedules.\n\n"
    "Event triggers become Prefect event triggers on crm.<type>; date triggers a 15-minute "
    "sweep; schedule triggers a cron in the journey's time zone. Without --serve the "
    "deployments are registered for a work pool (start workers with `prefect worker start "
    "--pool journeys`); the workers read the database URL from JOURNEYS_DATABASE_URL."
)


@app.command("deploy", help=DEPLOY_HELP)
def deploy(
    paths: list[Path] | None = typer.Argument(  # noqa: B008
        None,
        help="Spec directory or file (default: journey_specs).",
        show_default=False,
    ),
    serve: bool = typer.Option(
        False, "--serve", help="Serve every deployment from this process until Ctrl-C."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print what would be created; contact no server."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
    work_pool: str = typer.Option(
        DEFAULT_WORK_POOL,
        "--work-pool",
        help="Work pool to register for (a process pool is created if missing).",
    ),
    templates: Path | None = typer.Option(  # noqa: B008
        None, "--templates", help="Templates directory (default: next to the specs)."
    ),
    source: str | None = typer.Option(
        None,
        "--source",
        help="Directory or git URL holding flows/journey_flows.py (default: this checkout).",
    ),
    window: int = typer.Option(
        DEFAULT_WINDOW_SECONDS,
        "--window",
        min=1,
        help="Coalescing window (seconds): at most one event-triggered run per journey per window.",
    ),
    settle: int = typer.Option(
        DEFAULT_SETTLE_SECONDS,
        "--settle",
        min=0,
        help="Extra seconds before a triggered run starts, so the server has stored the events.",
    ),
    tick: bool = typer.Option(
        True, "--tick/--no-tick", help="Also create the every-minute 'tick' deployment."
    ),
) -> None:
    """``journeys deploy``: see :data:`DEPLOY_HELP` and docs/operations.md."""
    from journeys.orchestration import prefect_deploy as pd

    specs_path = _one_spec_path(paths)
    plans = _load_plans(specs_path, templates)
    options = pd.DeployOptions(window_seconds=window, settle_seconds=settle, tick=tick)
    deployments = pd.plan_deployments(plans, options)
    if dry_run:
        if as_json:
            typer.echo(pd.format_json(deployments))
        else:
            typer.echo(pd.format_text(deployments), nl=False)
    elif serve:
        _serve(deployments, specs_path, templates, source)
    else:
        _register(deployments, specs_path, templates, source, work_pool, as_json)


def _one_spec_path(paths: list[Path] | None) -> Path:
    """The one spec directory or file given (default ``journey_specs``); exit 2 if several."""
    spec_paths = list(paths) if paths else [Path("journey_specs")]
    if len(spec_paths) != 1:
        typer.echo(
            "error: pass one spec directory or file (the flows load the project from one path)",
            err=True,
        )
        raise typer.Exit(2)
    return spec_paths[0]


def _serve(
    deployments: list[DeploymentSpec], specs_path: Path, templates: Path | None, source: str | None
) -> None:
    """Serve every deployment from this process until Ctrl-C."""
    from journeys.orchestration import prefect_deploy as pd
    from journeys.orchestration.flow_support import ENV_SPECS, ENV_TEMPLATES

    environment = {ENV_SPECS: str(specs_path.resolve())}
    if templates is not None:
        environment[ENV_TEMPLATES] = str(templates.resolve())
    typer.echo(
        f"serving {len(deployments)} deployments "
        f"({', '.join(d.name for d in deployments)}); Ctrl-C stops",
        err=True,
    )
    pd.serve_deployments(deployments, source=source, environment=environment)


def _register(
    deployments: list[DeploymentSpec],
    specs_path: Path,
    templates: Path | None,
    source: str | None,
    work_pool: str,
    as_json: bool,
) -> None:
    """Register the deployments for ``work_pool`` (workers run them) and say how to start
    workers."""
    from journeys.orchestration import prefect_deploy as pd

    try:
        env = pd.job_environment(specs_path, templates, source or pd.find_project_root())
    except FileNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    ids = pd.register_deployments(
        deployments, work_pool=work_pool, source=source, job_variables={"env": env}
    )
    if as_json:
        typer.echo(json.dumps({"work_pool": work_pool, "deployments": ids}, indent=2))
        return
    for name, deployment_id in ids.items():
        typer.echo(f"registered {name}  ({deployment_id})")
    typer.echo(
        f"\n{len(ids)} deployments registered for work pool {work_pool!r}. Start workers with:\n"
        f"  JOURNEYS_DATABASE_URL=... prefect worker start --pool {work_pool}"
    )


def _load_plans(specs_path: Path, templates: Path | None) -> dict[str, Plan]:
    """Compiled plans of the project at ``specs_path``; exit 1 with every error if invalid."""
    project = load_valid_project(specs_path, templates, doing="; nothing was deployed")
    if not project.plans:
        typer.echo(f"error: no journeys found in {specs_path}", err=True)
        raise typer.Exit(1)
    return dict(project.plans)
