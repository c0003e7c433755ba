"""Alembic environment for journeys (no ``alembic.ini``: see :func:`journeys.store.db.migrate`).

Online with ``config.attributes["connection"]`` (what :func:`~journeys.store.db.migrate` passes):
runs on that connection, inside its transaction. Online without it (``python -m
journeys.store.db upgrade head``): opens the URL from the config and runs in
:func:`~journeys.store.db.migration_transaction`. Offline (``--sql``): renders SQL for the URL's
dialect.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.pool import NullPool

from journeys.store.db import (
    create_engine,
    migration_context_options,
    migration_transaction,
)
from journeys.store.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(connection=connection, **migration_context_options(connection))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit the migration SQL instead of running it."""
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=bool(url and url.startswith("sqlite")),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against a live database."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=NullPool)
    try:
        with engine.connect() as conn, migration_transaction(conn):
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
