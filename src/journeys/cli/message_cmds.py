"""``journeys preview``: see a message as a customer would get it (a thin shell over
:mod:`journeys.preview`)."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from journeys.cli import app

if TYPE_CHECKING:
    from journeys.clock import Clock
    from journeys.preview import Preview
    from journeys.spec import Project


def _echo(text: str = "") -> None:
    typer.echo(text)


@app.command("preview")
def preview_cmd(
    template: Annotated[str, typer.Argument(help="Template name (templates/<name>.html).")],
    customer: Annotated[
        str | None, typer.Option("--customer", help="Render for this stored customer id.")
    ] = None,
    sample: Annotated[
        bool, typer.Option("--sample", help="Render for a sample customer (the default).")
    ] = False,
    locale: Annotated[
        str | None,
        typer.Option("--locale", help="Render in this locale (ko, en-US …) instead of theirs."),
    ] = None,
    journey: Annotated[
        str | None,
        typer.Option("--journey", help="The journey whose step sends it (when several do)."),
    ] = None,
    open_: Annotated[
        bool, typer.Option("--open", help="Write the HTML to a file and open it in a browser.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Where --open writes the HTML (default preview/<name>.html)."),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            envvar="JOURNEYS_DATABASE_URL",
            help="Where --customer is read from (default sqlite:///journeys.db).",
        ),
    ] = None,
    specs: Annotated[Path, typer.Option("--specs", help="Journey specs.")] = Path("journey_specs"),
    templates: Annotated[
        Path | None, typer.Option("--templates", help="Templates (default: beside the specs).")
    ] = None,
) -> None:
    """Render a template's subject, HTML and text as a customer would get them."""
    from journeys.clock import SystemClock
    from journeys.preview import PreviewError, render_preview
    from journeys.spec import load_project

    if customer is not None and sample:
        typer.echo("error: give --customer ID or --sample, not both", err=True)
        raise typer.Exit(2)
    project = load_project([specs], templates_dir=templates)
    clock = SystemClock()
    event_type = _entry_event_type(project, template, journey)
    person, event, source = _recipient(project, clock, customer, locale, database, event_type)
    try:
        shown = render_preview(
            project, template, person, clock, event=event, event_source=source, journey=journey
        )
    except PreviewError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    _print(shown)
    if open_:
        _open_in_browser(shown, template, out)


def _entry_event_type(project: Project, template: str, journey: str | None) -> str | None:
    """The type of the event the journey sending ``template`` is entered with, if any."""
    from journeys.preview import template_uses, trigger_event_type

    uses = [u for u in template_uses(project, template) if journey in (None, u[0].journey)]
    return trigger_event_type(uses[0][0]) if uses else None


def _open_in_browser(shown: Preview, template: str, out: Path | None) -> None:
    """Write the HTML to ``out`` (default ``preview/<name>[.<locale>].html``) and open it."""
    name = f"{template}.{shown.locale}.html" if shown.locale else f"{template}.html"
    path = out or Path("preview") / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(shown.html, encoding="utf-8")
    typer.echo(f"wrote {path}", err=True)
    webbrowser.open(path.resolve().as_uri())


def _recipient(
    project: Project,
    clock: Clock,
    customer: str | None,
    locale: str | None,
    database: str | None,
    event_type: str | None,
) -> tuple[dict[str, Any], dict[str, Any] | None, str]:
    """Who the preview is for and the event they entered with: (customer row, event, where
    the event comes from). The stored customer and their latest event of ``event_type``, or a
    sample customer; a sample event when there is no stored one; ``locale`` overrides theirs."""
    from journeys.preview import sample_customer, sample_event

    event, source = None, "none"
    if customer is not None:
        person, event = _stored(database, customer, event_type)
        source = "stored" if event is not None else source
    else:
        person = sample_customer(locale, project.lifecycle.initial, project.settings.default_locale)
    if locale:
        person = {**person, "locale": locale}
    if event is None and event_type is not None:
        declared = project.events.data_fields(event_type)
        event, source = sample_event(event_type, str(person["id"]), clock.now(), declared), "sample"
    return person, event, source


def _stored(
    database: str | None, customer: str, event_type: str | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The stored customer and their latest event of ``event_type`` (exit 1/2 if missing)."""
    from journeys.store import db as store_db
    from journeys.store.reads import customer_row, latest_event

    try:
        engine = store_db.open_store(database, existing=True)
    except store_db.StoreUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        person = customer_row(engine, customer)
        if person is None:
            where = store_db.describe(store_db.database_url(database))
            typer.echo(f"error: no customer {customer!r} in {where}", err=True)
            raise typer.Exit(1)
        event = latest_event(engine, customer, event_type) if event_type else None
    finally:
        engine.dispose()
    return person, event


def _print(shown: object) -> None:
    from journeys.preview import Preview

    assert isinstance(shown, Preview)
    who = f"customer {shown.customer_id}"
    where = f"{shown.journey}.{shown.step}" if shown.journey else "no journey sends it yet"
    locale = shown.locale or "default"
    _echo(f"template {shown.template} ({locale} file) for {who}, as sent by {where}")
    if shown.event is not None:
        _echo(f"event: {shown.event.get('type')} ({shown.event_source}: {shown.event.get('id')})")
    for note in shown.notes:
        _echo(f"note: {note}")
    if shown.status == "pending":
        _echo("status: would be sent")
    else:
        _echo(f"status: {shown.status}: {shown.reason}")
    _echo()
    _echo(f"Subject: {shown.subject}")
    _echo()
    _echo("--- text ---")
    _echo(shown.text.rstrip("\n"))
    _echo("--- html ---")
    _echo(shown.html.rstrip("\n"))
