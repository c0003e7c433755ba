"""``journeys forecast SPEC``: a new or changed journey replayed on the stored history of the
last days (a thin shell over :mod:`journeys.forecast`; the database is only read)."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from journeys.cli import app
from journeys.cli.engine_cmds import (
    DatabaseOpt,
    SpecsOpt,
    TemplatesOpt,
    _check_file,
    _fail,
    _parse_time,
)

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from journeys.forecast import Forecast, Subject
    from journeys.spec import Project


class Format(StrEnum):
    """Output formats of ``journeys forecast``."""

    text = "text"
    json = "json"


@app.command("forecast")
def forecast_cmd(
    spec: Annotated[
        Path, typer.Argument(help="The journey file to forecast (new, or a changed version).")
    ],
    days: Annotated[
        int, typer.Option("--days", min=1, max=3660, help="Days of history to replay.")
    ] = 30,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="End of the history replayed (ISO 8601; default now): the same --until "
            "gives the same forecast.",
        ),
    ] = None,
    database: DatabaseOpt = None,
    specs: SpecsOpt = Path("journey_specs"),
    templates: TemplatesOpt = None,
    fmt: Annotated[
        Format, typer.Option("--format", help="text, or json (docs/cli.md).")
    ] = Format.text,
    messages: Annotated[
        bool, typer.Option("--messages", help="List every message, with its time.")
    ] = False,
) -> None:
    """Replay the stored events of the last --days against SPEC in virtual time: who would
    enter, which messages would go out when, what the frequency cap and quiet hours would
    hold back, and how it differs from the live version. Reads the database, writes nothing,
    sends nothing."""
    from journeys.clock import SystemClock
    from journeys.store import db as store_db
    from journeys.store.kpis import reading

    _check_file(spec)
    end = _parse_time(until, "--until") if until else SystemClock().now()
    start = end - timedelta(days=days)
    try:
        engine = store_db.open_store(database, read_only=True)
    except store_db.StoreUnavailable as exc:
        raise _fail(str(exc), code=2) from None
    shown = store_db.describe(store_db.database_url(database))
    try:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with reading(engine) as conn:
                result = _forecast(conn, spec, specs, templates, start, end, days)
        except SQLAlchemyError as exc:
            raise _fail(f"cannot read {shown}: {exc.__class__.__name__}", code=2) from None
    finally:
        engine.dispose()
    _check_history(result, shown)
    if fmt is Format.json:
        data = result.to_dict(with_messages=messages)
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        from journeys.forecast.text import render_text

        sys.stdout.write(render_text(result, with_messages=messages) + "\n")


def _forecast(
    conn: Connection,
    spec: Path,
    specs: Path,
    templates: Path | None,
    start: datetime,
    end: datetime,
    days: int,
) -> Forecast:
    from journeys.forecast import run_forecast
    from journeys.forecast.stored import StoredHistory
    from journeys.spec.project import load_project_with
    from journeys.store.reads import stored_event_types

    project = load_project_with(specs, spec, templates, stored_event_types(conn))
    if not project.ok:
        for diagnostic in project.diagnostics:
            typer.echo(str(diagnostic), err=True)
        raise _fail("the journey specs have errors; nothing forecast")
    subject = _subject(conn, project, spec, specs, templates)
    return run_forecast(
        project,
        subject,
        StoredHistory(conn),
        start=start,
        until=end,
        days=days,
        spec_file=str(spec),
    )


def _subject(
    conn: Connection, project: Project, spec: Path, specs: Path, templates: Path | None
) -> Subject:
    """The SPEC's journey and its live version (saved last in the database, else the one
    in --specs)."""
    from journeys.forecast.project import Subject, live_plan, spec_plan
    from journeys.spec import load_project
    from journeys.store.history import newest_plan

    plan = spec_plan(project, spec)
    if plan is None:
        raise _fail(f"{spec}: not a journey file (it has no `journey:` id); nothing forecast")
    stored = newest_plan(conn, plan.journey)
    in_specs = None
    if stored is None:
        in_specs = load_project([specs], templates_dir=templates).plans.get(plan.journey)
    live, found_in = live_plan(plan, stored, in_specs)
    return Subject(plan.journey, plan, live, found_in)


def _check_history(result: Forecast, shown: str) -> None:
    """No stored event in the period: an error, unless a date or schedule trigger can still
    enroll customers without one (then a note)."""
    from journeys.clock import iso
    from journeys.plan import DateTrigger, ScheduleTrigger

    if result.replayed.events:
        return
    what = f"no stored events from {iso(result.start)} to {iso(result.until)} in {shown}"
    if isinstance(result.subject.spec.trigger, DateTrigger | ScheduleTrigger):
        typer.echo(f"note: {what}; only the journey's own trigger enrolled customers", err=True)
        return
    raise _fail(f"{what}: nothing to replay (check --database, --days and --until)")
