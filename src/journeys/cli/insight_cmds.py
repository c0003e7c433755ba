"""``journeys report``: the KPI report as text, JSON or one self-contained HTML file."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from journeys.cli import app, load_valid_project
from journeys.cli.engine_cmds import DatabaseOpt, SpecsOpt, TemplatesOpt, _fail

if TYPE_CHECKING:
    from journeys.plan import Plan


class Format(StrEnum):
    """Output formats of ``journeys report``."""

    text = "text"
    json = "json"
    html = "html"


@app.command("report")
def report_cmd(
    database: DatabaseOpt = None,
    specs: SpecsOpt = Path("journey_specs"),
    templates: TemplatesOpt = None,
    fmt: Annotated[
        Format, typer.Option("--format", help="text tables, JSON (docs/metrics.md) or HTML.")
    ] = Format.text,
    start: Annotated[
        str | None,
        typer.Option("--from", help="First day (2026-03-01) or time; default: the first activity."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="Last day, included (2026-03-31), or an end time (excluded)."),
    ] = None,
    journey: Annotated[str | None, typer.Option("--journey", help="One journey only.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file (HTML: default report.html).")
    ] = None,
    analyse: Annotated[
        bool,
        typer.Option(help="Analyse survey comments stored without sentiment and keywords first."),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", hidden=True)] = False,
) -> None:
    """KPIs (NPS, CSAT, CLV, retention, email rates), funnels, A/B tests, stages, comments."""
    fmt = Format.json if as_json else fmt
    t0, t1 = _period(start, end)
    project = load_valid_project(specs, templates, doing="; nothing reported")
    data, plans = _report_data(database, project.plans, journey, t0, t1, analyse=analyse)
    if fmt is Format.html:
        from journeys.insight.html import render_html

        target = out or Path("report.html")
        target.write_text(render_html(data, plans), encoding="utf-8")
        typer.echo(f"wrote {target}", err=True)
        return
    if fmt is Format.json:
        text = json.dumps(data, indent=2, ensure_ascii=False)
    else:
        from journeys.insight.text import render_text

        text = render_text(data)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")


def _period(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    """The --from and --to bounds (None: open); exit 1 naming the bad one."""
    from journeys.insight.period import PeriodError, parse_bound

    try:
        t0 = parse_bound(start, "--from") if start else None
        t1 = parse_bound(end, "--to", end=True) if end else None
    except PeriodError as exc:
        raise _fail(str(exc)) from None
    return t0, t1


def _report_data(
    database: str | None,
    project_plans: dict[str, Plan],
    journey: str | None,
    t0: datetime | None,
    t1: datetime | None,
    *,
    analyse: bool,
) -> tuple[dict[str, Any], dict[str, Plan]]:
    """The report's figures and the plans they are about (those the store has run, the
    project's taking precedence); comments stored without analysis are analysed first when
    ``analyse``. Exit 2 when the database cannot be opened, 1 for an unknown journey."""
    from journeys.clock import SystemClock
    from journeys.insight.period import PeriodError
    from journeys.insight.report import build_report, stored_plans
    from journeys.store import db as store_db

    try:
        engine = store_db.open_store(database, existing=True)
    except store_db.StoreUnavailable as exc:
        raise _fail(str(exc), code=2) from None
    try:
        if analyse:
            from journeys.insight.voc import analyse_stored

            analyse_stored(engine)
        plans = {**stored_plans(engine), **project_plans}
        if journey and journey not in plans:
            known = ", ".join(sorted(plans)) or "none"
            raise _fail(f"--journey {journey!r} is not a journey of this project (known: {known})")
        try:
            data = build_report(
                engine, plans, start=t0, end=t1, journey=journey, now=SystemClock().now()
            )
        except PeriodError as exc:
            raise _fail(str(exc)) from None
    finally:
        engine.dispose()
    return data, plans
