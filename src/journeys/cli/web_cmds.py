"""Web commands: ``journeys web`` and ``journeys keys create|list|revoke``; and
:func:`start_web`, with which ``journeys run`` serves the app beside its passes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from journeys.cli import app
from journeys.cli.engine_cmds import DatabaseOpt, SpecsOpt, TemplatesOpt, _fail, _open_service, err

if TYPE_CHECKING:
    from journeys.service import JourneyService
    from journeys.web import WebServer

HostOpt = Annotated[
    str,
    typer.Option(
        "--host", help="Address of the web app (non-loopback needs a strong link secret)."
    ),
]
PortOpt = Annotated[int, typer.Option("--port", min=0, max=65535, help="Port of the web app.")]

keys_app = typer.Typer(
    help="API keys of the web app: events keys for /v1 (Bearer or Segment write key), staff "
    "keys for staff pages. Stored hashed; a key is printed once.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")


def _app_for(service: JourneyService, host: str) -> Any:
    """The web app over its own service (same store and project as ``service``)."""
    from journeys.secrets import SecretError
    from journeys.service import JourneyService
    from journeys.web import UnsafeBind, WebConfigError, create_app
    from journeys.web.config import WebConfig
    from journeys.web.server import check_bind

    try:
        config = WebConfig.from_settings(service.project.settings)
        check_bind(host, config.keys)
        # Its own service: the runner's is not thread-safe and the app runs in other threads.
        own = JourneyService(service.db, service.project, clock=service.clock)
        return create_app(own, config=config)
    except (UnsafeBind, WebConfigError, SecretError) as exc:
        raise _fail(str(exc)) from None


def start_web(service: JourneyService, host: str, port: int) -> WebServer:
    """Serve the web app in a background thread of this process (``journeys run``)."""
    from journeys.web import serve_in_background

    web_app = _app_for(service, host)
    try:
        server = serve_in_background(web_app, host, port)
    except (OSError, RuntimeError) as exc:
        raise _fail(f"{exc} (use --port, or --no-web)", code=2) from None
    err.print(f"journeys: web app on {server.url}", highlight=False)
    return server


@app.command("web")
def web_cmd(
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    database: DatabaseOpt = None,
    specs: SpecsOpt = Path("journey_specs"),
    templates: TemplatesOpt = None,
) -> None:
    """Serve the web app alone (beside workers or `journeys run --no-web`): survey pages,
    unsubscribe, SendGrid/Twilio webhooks, the event intake API (docs/web.md)."""
    from journeys.web import serve

    service = _open_service(database, specs, templates)
    try:
        web_app = _app_for(service, host)
        count = len(service.project.plans)

        def ready(url: str) -> None:
            err.print(
                f"journeys: web app on {url} ({count} journeys; Ctrl-C to stop)", highlight=False
            )

        try:
            serve(web_app, host, port, ready=ready)
        except OSError as exc:
            raise _fail(f"{exc.strerror or exc} (use --port)", code=2) from None
    finally:
        service.close()


def _open_db(database: str | None) -> Any:
    from journeys.store.db import StoreUnavailable, open_store

    try:
        return open_store(database)
    except StoreUnavailable as exc:
        raise _fail(str(exc), code=2) from None


def _now() -> Any:
    from journeys.clock import SystemClock

    return SystemClock().now()


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="A name to recognise the key by (unique).")],
    scope: Annotated[
        str, typer.Option("--scope", help="events (the /v1 intake API) or staff (staff pages).")
    ] = "events",
    database: DatabaseOpt = None,
) -> None:
    """Create a key and print it once (it is stored hashed and cannot be shown again)."""
    from journeys.web.keys import ApiKeyError, create_key

    db = _open_db(database)
    try:
        key = create_key(db, name, scope, _now())
    except ApiKeyError as exc:
        raise _fail(str(exc)) from None
    finally:
        db.dispose()
    sys.stdout.write(key + "\n")
    err.print(
        f"key {name!r} ({scope}) created; it is shown only now: store it in your secret manager",
        highlight=False,
    )


@keys_app.command("list")
def keys_list(
    database: DatabaseOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """Every key: name, prefix, scope, created, last used, revoked (never the key itself)."""
    from journeys.clock import iso
    from journeys.web.keys import list_keys

    db = _open_db(database)
    try:
        rows = list_keys(db)
    finally:
        db.dispose()
    shown = [
        {
            "name": r["name"],
            "prefix": f"jk_{r['prefix']}_…",
            "scope": r["scope"],
            "created_at": iso(r["created_at"]),
            "last_used_at": iso(r["last_used_at"]),
            "revoked_at": iso(r["revoked_at"]),
        }
        for r in rows
    ]
    if as_json:
        sys.stdout.write(json.dumps(shown, indent=2) + "\n")
        return
    if not shown:
        err.print("no keys; create one with `journeys keys create NAME`")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "prefix", "scope", "created", "last used", "revoked")
    for row in shown:
        table.add_row(*(str(row[k] or "-") for k in row))
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Argument(help="The key's name (journeys keys list).")],
    database: DatabaseOpt = None,
) -> None:
    """Revoke a key at once: requests with it get 401 from now on."""
    from journeys.web.keys import ApiKeyError, revoke_key

    db = _open_db(database)
    try:
        revoke_key(db, name, _now())
    except ApiKeyError as exc:
        raise _fail(str(exc)) from None
    finally:
        db.dispose()
    err.print(f"key {name!r} revoked", highlight=False)
