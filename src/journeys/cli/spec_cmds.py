"""``journeys validate | schema | compile | graph``: the spec commands (a thin shell over spec)."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from journeys.cli import app
from journeys.spec import load_project
from journeys.spec.diagnostics import render_json, render_text
from journeys.spec.project import Project


class OutputFormat(StrEnum):
    """How diagnostics are printed."""

    text = "text"
    json = "json"


class SchemaKind(StrEnum):
    """Which file's schema ``journeys schema`` prints."""

    journey = "journey"
    lifecycle = "lifecycle"
    settings = "settings"


PathsArg = Annotated[
    list[Path] | None,
    typer.Argument(help="Spec files or directories (default: journey_specs/).", show_default=False),
]
TemplatesOpt = Annotated[
    Path | None,
    typer.Option("--templates", help="Templates directory (default: <specs dir>/../templates)."),
]


def _load(
    paths: list[Path] | None, templates: Path | None, stored_events: list[str] | None = None
) -> Project:
    return load_project(
        paths or [Path("journey_specs")], templates_dir=templates, stored_events=stored_events or ()
    )


def _validate_against_store(
    paths: list[Path] | None, templates: Path | None, database: str
) -> Project:
    """Load the project knowing the event types stored at ``database``, and add in-flight
    warnings (read only: the store is never migrated or written)."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import SQLAlchemyError

    from journeys.inflight import in_flight_diagnostics
    from journeys.spec.diagnostics import sort_diagnostics
    from journeys.store.db import create_engine, describe
    from journeys.store.reads import stored_event_types

    engine = create_engine(database)
    try:
        if not inspect(engine).has_table("enrollments"):
            typer.echo(f"note: {describe(database)} has no journeys tables yet", err=True)
            return _load(paths, templates)
        project = _load(paths, templates, stored_event_types(engine))
        known = set(project.drafts) | set(project.plans)
        found = in_flight_diagnostics(engine, project.plans, known)
    except SQLAlchemyError as exc:
        typer.echo(f"error: cannot read {describe(database)}: {exc.__class__.__name__}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    project.diagnostics[:] = sort_diagnostics([*project.diagnostics, *found])
    return project


def _report(project: Project, fmt: OutputFormat) -> None:
    if fmt is OutputFormat.json:
        sys.stdout.write(render_json(project.diagnostics) + "\n")
    else:
        sys.stdout.write(render_text(project.diagnostics))


def _summary(project: Project) -> str:
    n = len(project.plans)
    if project.ok:
        return f"{n} journey{'s' if n != 1 else ''} OK"
    errors = len(project.errors)
    files = len({d.path for d in project.errors})
    return (
        f"{errors} problem{'s' if errors != 1 else ''} in {files} file{'s' if files != 1 else ''}"
    )


@app.command()
def validate(
    paths: PathsArg = None,
    templates: TemplatesOpt = None,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", help="text (path:line:col: message [code]) or json.")
    ] = OutputFormat.text,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            "--db",
            help="Also accept the event types stored there, and report customers in flight at "
            "steps or journeys this change removes.",
        ),
    ] = None,
) -> None:
    """Check journeys, lifecycle.yaml, journeys.yaml and templates; report every problem."""
    if database:
        project = _validate_against_store(paths, templates, database)
    else:
        project = _load(paths, templates)
    _report(project, fmt)
    typer.echo(_summary(project), err=True)
    raise typer.Exit(0 if project.ok else 1)


@app.command()
def schema(
    kind: Annotated[
        SchemaKind, typer.Option("--kind", help="journey, lifecycle or settings (journeys.yaml).")
    ] = SchemaKind.journey,
) -> None:
    """Print the JSON Schema (draft 2020-12) of journey files, for editors."""
    from journeys.spec.schema import dumps, journey_schema, lifecycle_schema, settings_schema

    build = {"journey": journey_schema, "lifecycle": lifecycle_schema, "settings": settings_schema}
    sys.stdout.write(dumps(build[kind.value]()))


@app.command("compile")
def compile_cmd(
    paths: PathsArg = None,
    out: Annotated[Path, typer.Option("--out", help="Directory for the plan files.")] = Path(
        "build/plans"
    ),
    templates: TemplatesOpt = None,
) -> None:
    """Write <journey>.plan.json per journey and lifecycle.json (nothing if any spec is invalid)."""
    project = _load(paths, templates)
    if not project.ok:
        _report(project, OutputFormat.text)
        typer.echo(_summary(project) + "; nothing written", err=True)
        raise typer.Exit(1)
    import json

    out.mkdir(parents=True, exist_ok=True)
    for journey, plan in sorted(project.plans.items()):
        (out / f"{journey}.plan.json").write_text(plan.to_json() + "\n", encoding="utf-8")
    lifecycle = json.dumps(project.lifecycle.to_dict(), indent=2, sort_keys=True)
    (out / "lifecycle.json").write_text(lifecycle + "\n", encoding="utf-8")
    typer.echo(f"{len(project.plans)} plans written to {out}", err=True)


class GraphFormat(StrEnum):
    """What ``journeys graph`` writes."""

    mermaid = "mermaid"
    svg = "svg"
    png = "png"


@app.command()
def graph(
    spec: Annotated[Path, typer.Argument(help="One journey spec file.")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Write to this file (.mmd/.md, .svg or .png) instead of stdout."
        ),
    ] = None,
    fmt: Annotated[
        GraphFormat | None,
        typer.Option(
            "--format",
            help="mermaid (text GitHub renders), svg or png; default: from --out, else mermaid.",
        ),
    ] = None,
    templates: TemplatesOpt = None,
) -> None:
    """Draw a journey: a Mermaid flowchart, or an SVG/PNG picture."""
    from journeys.spec.graph import render_png, render_svg, to_mermaid

    kind = fmt or _graph_format(out)
    if kind is GraphFormat.png and out is None:
        typer.echo("--format png needs --out FILE.png (a picture is not text)", err=True)
        raise typer.Exit(2)
    project = load_project([spec], templates_dir=templates)
    plan = next(iter(project.drafts.values()), None)
    if plan is None:
        _report(project, OutputFormat.text)
        typer.echo("the journey's structure has errors; no graph drawn", err=True)
        raise typer.Exit(1)
    if not project.ok:  # draw anyway, but say what is wrong
        sys.stderr.write(render_text(project.diagnostics))
    if kind is GraphFormat.png:
        assert out is not None
        out.write_bytes(render_png(plan))
    else:
        text = render_svg(plan) if kind is GraphFormat.svg else to_mermaid(plan)
        if kind is GraphFormat.mermaid and out is not None and out.suffix.lower() == ".md":
            text = f"```mermaid\n{text}```\n"  # renders in a README or pull request
        if out is None:
            sys.stdout.write(text)
            return
        out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}", err=True)


def _graph_format(out: Path | None) -> GraphFormat:
    suffix = out.suffix.lower() if out is not None else ""
    if suffix in (".svg", ".png"):
        return GraphFormat(suffix[1:])
    if out is None or suffix in (".mmd", ".mermaid", ".md"):
        return GraphFormat.mermaid
    typer.echo(
        f"--out must end in .svg, .png, .mmd or .md (or give --format), not {suffix!r}", err=True
    )
    raise typer.Exit(2)
