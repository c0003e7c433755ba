"""``journeys db``: the schema of the journeys database (Alembic, shipped in the package)."""

from __future__ import annotations

import typer

from journeys.cli import app
from journeys.cli.engine_cmds import DatabaseOpt, _fail, err

db_app = typer.Typer(help="The database schema: upgrade it, or show its revision.")
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade_cmd(database: DatabaseOpt = None) -> None:
    """Migrate the database to this version's schema (a no-op when it is current).

    SQLite databases are upgraded when a command opens them; on PostgreSQL, stop the workers
    and run this once."""
    from journeys.store import db as store_db

    url = store_db.database_url(database)
    try:
        engine = store_db.create_engine(url)
        before = store_db.current_revision(engine)
        store_db.migrate(engine)
        after = store_db.current_revision(engine)
        engine.dispose()
    except Exception as exc:  # a wrong URL or an unreachable server: one line, not a traceback
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise _fail(f"cannot upgrade {store_db.describe(url)}: {reason}", code=2) from None
    if before == after:
        err.print(f"{store_db.describe(url)}: already at revision {after}", highlight=False)
    else:
        err.print(
            f"{store_db.describe(url)}: upgraded from {before or 'an empty database'} to {after}",
            highlight=False,
        )


@db_app.command("current")
def current_cmd(database: DatabaseOpt = None) -> None:
    """Print the database's schema revision and this version's."""
    from journeys.store import db as store_db

    url = store_db.database_url(database)
    try:
        engine = store_db.create_engine(url)
        current = store_db.current_revision(engine)
        engine.dispose()
    except Exception as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise _fail(f"cannot read {store_db.describe(url)}: {reason}", code=2) from None
    head = store_db.head_revision()
    state = "current" if current == head else "behind: run `journeys db upgrade`"
    typer.echo(f"{current or 'none'} (this version: {head}; {state})")
