"""Delivery commands: the outbox (list, retry), customers' data (export, erase), send-test."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from journeys.cli import app, load_valid_project
from journeys.cli.engine_cmds import DatabaseOpt, SpecsOpt, TemplatesOpt

err = Console(stderr=True, soft_wrap=True)

outbox_app = typer.Typer(
    help="The outbox: every message with its status, reason and provider id.",
    no_args_is_help=False,
    invoke_without_command=True,
)
customers_app = typer.Typer(help="What the store holds about a customer: export, erase.")
app.add_typer(outbox_app, name="outbox")
app.add_typer(customers_app, name="customers")

STATUS_HELP = "pending, sending, sent, logged, failed, unknown, suppressed (repeat for several)"


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    return typer.Exit(code)


def _store(database: str | None) -> Any:
    from journeys.store.db import StoreUnavailable, open_store

    try:
        return open_store(database, existing=True)
    except StoreUnavailable as exc:
        raise _fail(str(exc), code=2) from None


def _check_statuses(statuses: list[str], allowed: tuple[str, ...]) -> None:
    wrong = [s for s in statuses if s not in allowed]
    if wrong:
        raise _fail(f"unknown status {wrong[0]!r}; use one of: {', '.join(allowed)}")


@outbox_app.callback()
def outbox_cmd(
    ctx: typer.Context,
    status: Annotated[list[str] | None, typer.Option("--status", help=STATUS_HELP)] = None,
    journey: Annotated[str | None, typer.Option("--journey", help="Only this journey.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines, one message each.")] = False,
    database: DatabaseOpt = None,
) -> None:
    """List messages with their status, reason and provider id (newest first)."""
    if ctx.invoked_subcommand is not None:
        return
    from journeys.clock import iso
    from journeys.store import outbox as store

    statuses = status or []
    _check_statuses(statuses, store.STATUSES)
    db = _store(database)
    try:
        with db.connect() as conn:
            rows = store.messages(conn, statuses=statuses, journey=journey, limit=limit)
            counts = store.status_counts(conn, journey)
    finally:
        db.dispose()
    if as_json:
        for row in rows:
            plain = {k: iso(v) if hasattr(v, "tzinfo") else v for k, v in row.items()}
            sys.stdout.write(json.dumps(plain, ensure_ascii=False) + "\n")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name in ("id", "status", "journey/step", "customer", "channel", "due", "tries"):
        table.add_column(name, no_wrap=True)
    table.add_column("provider id / reason", overflow="fold")
    for row in rows:
        detail = row["error"] or row["provider_id"] or ""
        if row["status"] == "sent" and row["provider_id"]:
            detail = row["provider_id"]
        table.add_row(
            str(row["id"]),
            row["status"],
            f"{row['journey']}/{row['step']}",
            row["customer_id"],
            row["channel"],
            iso(row["due_at"]) or "",
            str(row["attempts"]),
            detail,
        )
    out = Console(soft_wrap=False, width=max(120, Console().width))
    if rows:
        out.print(table)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "the outbox is empty"
    err.print(f"{len(rows)} shown; all messages: {summary}", highlight=False)
    if counts.get(store.UNKNOWN):
        err.print(
            f"{counts[store.UNKNOWN]} unknown: a dispatcher stopped or got no answer while the "
            "provider had them; check the provider's activity log, then `journeys outbox retry "
            "--status unknown` sends them again",
            highlight=False,
        )


@outbox_app.command("retry")
def outbox_retry_cmd(
    status: Annotated[
        list[str] | None, typer.Option("--status", help="failed and/or unknown (default both).")
    ] = None,
    ids: Annotated[list[int] | None, typer.Option("--id", help="Only these messages.")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Queue failed or unknown messages again; the next dispatch (journeys run) sends them."""
    from journeys.store import outbox as store

    statuses = status or list(store.RETRYABLE_BY_HAND)
    _check_statuses(statuses, store.RETRYABLE_BY_HAND)
    db = _store(database)
    try:
        with db.begin() as conn:
            count = store.requeue(conn, statuses=statuses, ids=ids or [])
    finally:
        db.dispose()
    err.print(f"{count} messages queued again ({', '.join(statuses)})", highlight=False)


@customers_app.command("export")
def customers_export_cmd(
    customer_id: Annotated[str, typer.Argument(metavar="ID", help="The customer id.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write here (default stdout).")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Everything held about one customer, as JSON."""
    from journeys.store.privacy import export_customer

    db = _store(database)
    try:
        with db.connect() as conn:
            data = export_customer(conn, customer_id)
    finally:
        db.dispose()
    if data is None:
        raise _fail(f"no customer {customer_id!r} in the store")
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        err.print(f"{out}: {sum(len(v) for v in data.values() if isinstance(v, list))} records")


@customers_app.command("erase")
def customers_erase_cmd(
    customer_id: Annotated[str, typer.Argument(metavar="ID", help="The customer id.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    database: DatabaseOpt = None,
) -> None:
    """Erase a customer; only hashed entries remain, so the address is never contacted again."""
    from journeys.clock import SystemClock
    from journeys.store.privacy import erase_customer

    if not yes and not typer.confirm(
        f"Erase everything about {customer_id}? This cannot be undone"
    ):
        raise typer.Exit(1)
    db = _store(database)
    try:
        with db.begin() as conn:
            counts = erase_customer(conn, customer_id, SystemClock().now())
    finally:
        db.dispose()
    if counts is None:
        raise _fail(f"no customer {customer_id!r} in the store")
    done = ", ".join(f"{k.replace('_', ' ')}: {n}" for k, n in counts.items() if n)
    err.print(f"erased {customer_id}: {done}; its addresses stay suppressed (hashed)")


@app.command("send-test")
def send_test_cmd(
    template: Annotated[str, typer.Argument(help="A template name (templates/<name>.html).")],
    to: Annotated[str, typer.Option("--to", help="An email address, or a phone for SMS.")],
    locale: Annotated[str | None, typer.Option("--locale", help="e.g. ko, en-US.")] = None,
    channel: Annotated[
        str | None, typer.Option("--channel", help="email or sms (default: by the address).")
    ] = None,
    specs: SpecsOpt = Path("journey_specs"),
    templates: TemplatesOpt = None,
) -> None:
    """Send one real message from TEMPLATE to one address, marked as a test."""
    from journeys.channels.base import ChannelError
    from journeys.clock import SystemClock
    from journeys.delivery.factory import ChannelSetupError, build_channels
    from journeys.delivery.testsend import NoAddress, TemplateError, send_test

    project = load_valid_project(specs, templates, doing="; nothing was sent")
    channel = channel or ("email" if "@" in to else "sms")
    clock = SystemClock()
    try:
        channels = build_channels(project.settings, clock=clock)
        result = send_test(
            project.settings,
            project.templates,
            channels,
            clock,
            template=template,
            to=to,
            channel=channel,
            locale=locale,
        )
    except ChannelSetupError as exc:
        raise _fail(str(exc)) from None
    except (TemplateError, NoAddress, KeyError) as exc:
        raise _fail(str(exc).strip("'\"")) from None
    outcome = result.outcome
    if isinstance(outcome, ChannelError):
        raise _fail(f"{result.provider}: {outcome}")
    if outcome.status == "logged":
        err.print(
            f"logged by the {result.provider} channel, not sent: journeys.yaml configures no"
            f" provider for {channel} (see docs/delivery.md)",
            highlight=False,
        )
        return
    err.print(
        f"sent {template} to {to} through {result.provider}"
        f" (provider id {outcome.provider_id or '-'}, {outcome.detail or 'accepted'}):"
        f" {result.message.subject}",
        highlight=False,
    )
