"""The ``journeys`` command line: a thin shell over the core.

Each group of commands lives in its own module and registers itself on :data:`app`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from journeys.spec import Project

app = typer.Typer(
    name="journeys",
    help="Marketing customer journeys as code.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def load_valid_project(specs: Path, templates: Path | None, *, doing: str = "") -> Project:
    """The project at ``specs``; if it has errors, print every diagnostic to stderr (and
    ``doing``, what was not done) and exit 1. Commands that need runnable journeys use it."""
    from journeys.spec import load_project

    project = load_project([specs], templates_dir=templates)
    if not project.ok:
        for diagnostic in project.diagnostics:
            typer.echo(str(diagnostic), err=True)
        typer.echo(f"error: the journey specs have errors{doing}", err=True)
        raise typer.Exit(1)
    return project


def _register() -> None:
    # Imported for their side effect of adding commands to `app`.
    from journeys.cli import (  # noqa: F401
        db_cmds,
        delivery_cmds,
        engine_cmds,
        forecast_cmds,
        insight_cmds,
        message_cmds,
        prefect_cmds,
        spec_cmds,
        web_cmds,
    )


def main() -> None:
    """Entry point of the ``journeys`` console script."""
    _register()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
