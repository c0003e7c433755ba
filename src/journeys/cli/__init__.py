"""The ``journeys`` command line: a thin shell over the core.

Each group of commands lives in its own module and registers itself on :data:`app`.
"""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    name="journeys",
    help="Marketing customer journeys as code.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Imported for their side effect of adding commands to `app`.
    from journeys.cli import engine_cmds, prefect_cmds, spec_cmds  # noqa: F401


def main() -> None:
    """Entry point of the ``journeys`` console script."""
    _register()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
