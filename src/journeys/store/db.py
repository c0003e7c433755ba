"""Database URLs, engines and migrations.

SQLite is the default (one file, one process): every connection runs in WAL mode with a busy
timeout, and every transaction starts with ``BEGIN IMMEDIATE`` so a writer takes the write lock
up front instead of failing half-way with ``database is locked``. PostgreSQL (psycopg 3) is used
when the URL says so, for many workers.

The schema is owned by Alembic; migrations ship inside the package and run programmatically
(:func:`migrate`), so no ``alembic.ini`` is needed. For authoring migrations::

    python -m journeys.store.db revision --autogenerate --rev-id 0002 -m "add x"

runs the Alembic command line against ``JOURNEYS_DATABASE_URL`` (or ``--url``).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import re
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from alembic import command
from alembic.config import CommandLine, Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

__all__ = [
    "DEFAULT_URL",
    "ENV_VAR",
    "MIGRATIONS_DIR",
    "SQLITE_BEGIN_OPTION",
    "alembic_config",
    "create_engine",
    "current_revision",
    "database_url",
    "describe",
    "head_revision",
    "migrate",
    "migration_context_options",
    "migration_transaction",
    "open_store",
]

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///journeys.db"
"""Used when neither an explicit URL nor ``JOURNEYS_DATABASE_URL`` is given."""

ENV_VAR = "JOURNEYS_DATABASE_URL"
"""Environment variable holding the database URL."""

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
"""Alembic script location (``env.py`` and ``versions/``), inside the installed package."""

WAL_CHECKPOINT_PAGES = 100_000
"""``PRAGMA wal_autocheckpoint`` for file databases (SQLite's default is 1,000 pages): about
400 MB of WAL between checkpoints. Each checkpoint copies every page the WAL holds back to
the database and syncs; big batches dirty the same pages again and again, so checkpointing
rarely writes each of them once (1M due waits: 2.2 GB reached the disk, 6.4 GB with 10,000
pages)."""

SQLITE_BEGIN_OPTION = "journeys_sqlite_begin"
"""Connection execution option choosing how SQLite transactions begin.

``IMMEDIATE`` (the default) takes the write lock at ``BEGIN``; a read-only reader that must not
hold up writers may use ``conn.execution_options(journeys_sqlite_begin="DEFERRED")`` before its
first statement. Ignored on other databases.
"""

_SQLITE_BEGIN_MODES = frozenset({"DEFERRED", "IMMEDIATE", "EXCLUSIVE"})

# Key of the PostgreSQL advisory lock that serialises concurrent `migrate` calls (any constant
# 64-bit integer works; this one spells "journeys" in ASCII).
_PG_MIGRATE_LOCK_KEY = 0x6A6F75726E657973


# --------------------------------------------------------------------------------------- URLs


def database_url(explicit: str | None = None) -> str:
    """The database URL to use: ``explicit``, else ``$JOURNEYS_DATABASE_URL``, else SQLite.

    ``postgresql://`` and ``postgres://`` URLs are normalised to ``postgresql+psycopg://``
    (psycopg 3, the installed driver); a URL naming another driver is kept as given.
    """
    url = (explicit or "").strip() or os.environ.get(ENV_VAR, "").strip() or DEFAULT_URL
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def describe(url: str | URL) -> str:
    """``url`` safe for logs: the password is replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        # Not parseable as a URL: still never leak ``user:password@``.
        return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", str(url))


def _is_sqlite_memory(url: URL) -> bool:
    database = url.database or ""
    return (
        database in ("", ":memory:")
        or database.startswith("file::memory:")
        or url.query.get("mode") == "memory"
    )


# ------------------------------------------------------------------------------------ engines


def create_engine(
    url: str | None = None,
    *,
    sqlite_busy_timeout: float = 30.0,
    read_only: bool = False,
    **kw: Any,
) -> Engine:
    """A SQLAlchemy engine for ``database_url(url)``, tuned for journeys.

    SQLite: WAL journal (files only), ``busy_timeout`` of ``sqlite_busy_timeout`` seconds,
    ``synchronous=NORMAL``, foreign keys on, and transactions that begin with
    ``BEGIN IMMEDIATE`` (pysqlite's own transaction handling is switched off; see
    :data:`SQLITE_BEGIN_OPTION`). In-memory URLs (``sqlite://``, ``sqlite:///:memory:``) share
    one connection through :class:`~sqlalchemy.pool.StaticPool`; a file's parent directory is
    created if missing.

    PostgreSQL: ``pool_pre_ping``, a pool of 5 (+10 overflow) and ``application_name=journeys``.

    ``read_only``: the engine cannot write. SQLite opens the file read-only (``mode=ro``),
    leaves its journal mode alone and begins transactions ``DEFERRED``; PostgreSQL sessions
    are ``default_transaction_read_only``.

    Keyword arguments are passed to :func:`sqlalchemy.create_engine` and win over these
    defaults.
    """
    sa_url = make_url(database_url(url))
    backend = sa_url.get_backend_name()
    if backend == "sqlite":
        return _create_sqlite_engine(
            sa_url, busy_timeout=sqlite_busy_timeout, read_only=read_only, **kw
        )
    if backend == "postgresql":
        if "poolclass" not in kw:
            kw.setdefault("pool_size", 5)
            kw.setdefault("max_overflow", 10)
        kw.setdefault("pool_pre_ping", True)
        connect_args = dict(kw.pop("connect_args", {}))
        if "application_name" not in sa_url.query:
            connect_args.setdefault("application_name", "journeys")
        if read_only:
            connect_args.setdefault("options", "-c default_transaction_read_only=on")
        kw["connect_args"] = connect_args
        return sa.create_engine(sa_url, **kw)
    return sa.create_engine(sa_url, **kw)


def _create_sqlite_engine(
    url: URL, *, busy_timeout: float, read_only: bool = False, **kw: Any
) -> Engine:
    memory = _is_sqlite_memory(url)
    if read_only:
        options = dict(kw.pop("execution_options", {}))
        options.setdefault(SQLITE_BEGIN_OPTION, "DEFERRED")
        kw["execution_options"] = options
    if memory:
        # One shared connection, or every checkout would see a different empty database.
        kw.setdefault("poolclass", StaticPool)
        connect_args = dict(kw.pop("connect_args", {}))
        connect_args.setdefault("check_same_thread", False)
        kw["connect_args"] = connect_args
    elif read_only:
        url = _read_only_url(url)
    elif url.database and "uri" not in url.query:
        Path(url.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)

    autocommit_engine = kw.get("isolation_level") == "AUTOCOMMIT"
    engine = sa.create_engine(url, **kw)
    timeout_ms = max(0, int(busy_timeout * 1000))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (Python < 3.12 has no
        # ``autocommit`` attribute; this is SQLAlchemy's recipe for every version): it would
        # otherwise BEGIN (deferred) only before DML. Our "begin" hook below emits BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first: it also bounds how long _enable_wal retries.
            cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            if not memory and not read_only:
                _enable_wal(cursor, url, busy_timeout)
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not memory:
                # Checkpoint rarely (WAL_CHECKPOINT_PAGES); the WAL file is cut back to 64 MB
                # after each checkpoint.
                cursor.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
                cursor.execute(f"PRAGMA journal_size_limit = {64 * 1024 * 1024}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if autocommit_engine or options.get("isolation_level") == "AUTOCOMMIT":
            return
        mode = str(options.get(SQLITE_BEGIN_OPTION, "IMMEDIATE")).upper()
        if mode not in _SQLITE_BEGIN_MODES:
            raise ValueError(
                f"{SQLITE_BEGIN_OPTION}={mode!r}: expected one of {sorted(_SQLITE_BEGIN_MODES)}"
            )
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _read_only_url(url: URL) -> URL:
    """``url`` as a SQLite URI that opens the file read-only (``mode=ro``)."""
    if "uri" in url.query:
        return url.update_query_dict({"mode": "ro"})
    path = Path(url.database or "").expanduser().resolve()
    return url.set(database="file:" + quote(str(path))).update_query_dict(
        {"mode": "ro", "uri": "true"}
    )


def _enable_wal(cursor: Any, url: URL, timeout: float) -> None:
    """``PRAGMA journal_mode = WAL``, retried while another connection is switching it too.

    Switching a new database to WAL needs an exclusive lock, and SQLite reports
    ``database is locked`` at once instead of calling the busy handler.
    """
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
            continue
        if str(mode).lower() != "wal":
            log.warning("SQLite %s stays in %s journal mode (no WAL support)", describe(url), mode)
        return


# --------------------------------------------------------------------------------- migrations


def alembic_config(url: str | None = None) -> Config:
    """An Alembic :class:`~alembic.config.Config` for the packaged migrations, built in code.

    ``url`` (normalised by :func:`database_url`) is only used when no connection is passed in
    ``config.attributes["connection"]``, as :func:`migrate` does.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.set_main_option("sqlalchemy.url", database_url(url).replace("%", "%%"))
    return config


def _include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Autogenerate looks only at our own tables (APScheduler and friends may share the DB)."""
    if type_ == "table":
        from journeys.store.tables import metadata

        return name in metadata.tables
    return True


def _normalise_default(sql: str) -> str:
    text = sql.strip()
    text = re.sub(r"::[a-z ]+(\(\d+\))?$", "", text)  # PostgreSQL cast: 'api'::character varying
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        text = text[1:-1].replace("''", "'")
    return text


def _compare_server_default(
    context: Any,
    inspected_column: Any,
    metadata_column: Any,
    inspected_default: str | None,
    metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    """Equal after removing quoting, parentheses and casts? Else let Alembic decide.

    SQLite reflects ``DEFAULT ''`` as ``('')``, which Alembic would report as a change.
    """
    if inspected_default is None or rendered_metadata_default is None:
        return None
    if _normalise_default(inspected_default) == _normalise_default(rendered_metadata_default):
        return False
    return None


def migration_context_options(connection: Connection) -> dict[str, Any]:
    """Options for Alembic's ``context.configure`` / ``MigrationContext.configure``.

    Shared by ``env.py`` and the migrations test so both compare the schema the same way.
    """
    from journeys.store.tables import metadata

    return {
        "target_metadata": metadata,
        "render_as_batch": connection.dialect.name == "sqlite",
        "compare_type": True,
        "compare_server_default": _compare_server_default,
        "include_name": _include_name,
    }


def migrate(bind: Engine | Connection) -> None:
    """Upgrade the database to the newest schema (Alembic ``upgrade head``); idempotent.

    With an :class:`~sqlalchemy.Engine`, or a :class:`~sqlalchemy.Connection` outside a
    transaction, the upgrade runs in its own transaction and commits. With a connection inside
    a transaction it joins it and the caller commits. See :func:`migration_transaction`.
    """
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            migrate(conn)
        return
    with migration_transaction(bind):
        config = alembic_config()
        config.attributes["connection"] = bind
        command.upgrade(config, "head")


@contextmanager
def migration_transaction(conn: Connection) -> Iterator[None]:
    """The transaction migrations run in (used by :func:`migrate` and ``env.py``).

    Concurrent migrators are serialised: SQLite by ``BEGIN IMMEDIATE``, PostgreSQL by a
    transaction-level advisory lock. On SQLite, when ``conn`` is not already in a transaction,
    foreign key enforcement is paused for the migration (table rebuilds by batch operations
    need it, as SQLite's documented ALTER TABLE procedure says) and ``PRAGMA
    foreign_key_check`` must come back clean before the commit. If ``conn`` is already in a
    transaction, the block joins it and the caller commits.
    """
    if conn.in_transaction():
        _lock_for_migration(conn)
        yield
        return
    sqlite = conn.dialect.name == "sqlite"
    if sqlite:
        # PRAGMA foreign_keys is a no-op inside a transaction: set it on the DBAPI connection
        # before SQLAlchemy begins one.
        conn.connection.dbapi_connection.execute("PRAGMA foreign_keys = OFF")  # type: ignore[union-attr]
    try:
        with conn.begin():
            _lock_for_migration(conn)
            yield
            if sqlite:
                problems = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if problems:
                    raise RuntimeError(f"migration left broken foreign keys: {problems[:10]}")
    finally:
        if sqlite and not conn.invalidated and not conn.closed:
            conn.connection.dbapi_connection.execute("PRAGMA foreign_keys = ON")  # type: ignore[union-attr]


def _lock_for_migration(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATE_LOCK_KEY})


@functools.lru_cache(maxsize=1)
def head_revision() -> str | None:
    """The newest migration's revision id (read once per process)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(bind: Engine | Connection) -> str | None:
    """The revision the database is at (None for a database never migrated)."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    return MigrationContext.configure(bind).get_current_revision()


class StoreUnavailable(RuntimeError):
    """The database URL is not one, the server cannot be reached, or (``existing=True``) the
    database has no journeys tables. The message names the URL (password hidden) and the fix."""


def open_store(
    url: str | None = None, *, existing: bool = False, read_only: bool = False, **engine_kw: Any
) -> Engine:
    """:func:`create_engine` for ``url``, migrated when it needs it: a store ready to use.

    Migrations run on first open (a database without journeys tables) and, on SQLite (one
    process owns the file), when the schema is behind. A PostgreSQL database that is behind
    is refused with the command that upgrades it (``journeys db upgrade``): many workers
    share it, and one of them should not change the schema under the others. A database at
    the head costs one query.

    ``existing``: the store must already hold journeys tables (a report on a mistyped URL must
    not create an empty database and report nothing). ``read_only`` (implies ``existing``):
    never migrate; a store behind this version's schema is refused with the command that
    upgrades it. ``engine_kw`` go to :func:`create_engine`. Raises :class:`StoreUnavailable`.
    """
    shown = describe(database_url(url))
    missing = StoreUnavailable(f"{shown} has no journeys tables: check --database / {ENV_VAR}")
    existing = existing or read_only
    try:
        if existing and _missing_sqlite_file(database_url(url)):
            raise missing  # before create_engine, which would create its folder
        engine = create_engine(url, read_only=read_only, **engine_kw)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise StoreUnavailable(
            f"{shown!r} is not a database URL ({exc}); use e.g. sqlite:///journeys.db or "
            "postgresql+psycopg://user@host/dbname"
        ) from None
    try:
        if existing and not sa.inspect(engine).has_table("enrollments"):
            raise missing
        _upgrade_if_needed(engine, shown, read_only=read_only)
    except sa.exc.OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise StoreUnavailable(f"cannot open {shown}: {reason}") from None
    except BaseException:
        engine.dispose()
        raise
    return engine


def _upgrade_if_needed(engine: Engine, shown: str, *, read_only: bool = False) -> None:
    current = current_revision(engine)
    if current == head_revision():
        return
    if read_only or (current is not None and engine.dialect.name == "postgresql"):
        raise StoreUnavailable(
            f"{shown} has the journeys schema of revision {current}; this version needs "
            f"{head_revision()}: run `journeys db upgrade` (with the workers stopped)"
        )
    migrate(engine)


def _missing_sqlite_file(url: str) -> bool:
    sa_url = make_url(url)
    if sa_url.get_backend_name() != "sqlite" or _is_sqlite_memory(sa_url):
        return False
    return not Path(sa_url.database or "").expanduser().exists()


# ------------------------------------------------------------------------------ command line


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m journeys.store.db [--url URL] <alembic command> …``: Alembic without an ini."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--url", default=None, help=f"database URL (default: ${ENV_VAR} or SQLite)")
    known, rest = pre.parse_known_args(argv)
    cli = CommandLine(prog="python -m journeys.store.db [--url URL]")
    options = cli.parser.parse_args(rest)
    if not hasattr(options, "cmd"):
        cli.parser.error("too few arguments")
    cli.run_cmd(alembic_config(known.url), options)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
