"""Database fixtures shared by every test.

SQLite: ``sqlite_url`` (an empty temp-file database), ``sqlite_engine`` (migrated).

PostgreSQL (server at ``$JOURNEYS_TEST_POSTGRES_URL``, default
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``): ``pg_url`` (a fresh, empty database
dropped after the test) and ``pg_engine`` (a fresh migrated one). As in procrastinate, the schema
is migrated once per session into a template database and each test gets a
``CREATE DATABASE … TEMPLATE`` copy. An unreachable server skips these tests, or fails them when
``JOURNEYS_REQUIRE_POSTGRES=1`` (CI). Tests using them carry the ``postgres`` marker, so
``pytest -m "not postgres"`` runs without a server.

Both: ``db_url`` / ``db_engine`` are parametrized over ``sqlite`` and ``postgres`` and give a
migrated database, so integration tests run on both.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from journeys.store.db import create_engine, database_url, describe, migrate

pytest_plugins = ["web_helpers"]  # the web app's fixtures (web_env)

PG_URL_ENV = "JOURNEYS_TEST_POSTGRES_URL"
REQUIRE_PG_ENV = "JOURNEYS_REQUIRE_POSTGRES"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
_PG_FIXTURES = frozenset({"pg_url", "pg_engine", "pg_database_factory", "pg_server_url"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a PostgreSQL fixture directly with ``postgres``."""
    for item in items:
        if _PG_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


# ------------------------------------------------------------------------------------ SQLite


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of an empty SQLite file database under ``tmp_path``."""
    return f"sqlite:///{tmp_path / 'journeys.db'}"


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    """A migrated SQLite file database."""
    engine = create_engine(sqlite_url)
    migrate(engine)
    yield engine
    engine.dispose()


# -------------------------------------------------------------------------------- PostgreSQL


def _admin_engine(url: str) -> Engine:
    return sa.create_engine(
        url, isolation_level="AUTOCOMMIT", poolclass=NullPool, connect_args={"connect_timeout": 3}
    )


def _drop_database(admin: Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """URL of the PostgreSQL server's maintenance database; skips (or fails) if unreachable."""
    url = database_url(os.environ.get(PG_URL_ENV) or DEFAULT_PG_URL)
    try:
        with _admin_engine(url).connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # any driver/network error means "no server"
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        message = f"PostgreSQL not reachable at {describe(url)}: {reason}"
        if os.environ.get(REQUIRE_PG_ENV) == "1":
            pytest.fail(f"{message} ({REQUIRE_PG_ENV}=1)", pytrace=False)
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def _pg_template(pg_server_url: str) -> Iterator[str]:
    """Name of a database migrated once per session, cloned by each test."""
    admin = _admin_engine(pg_server_url)
    name = f"journeys_test_tpl_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        engine = create_engine(
            make_url(pg_server_url).set(database=name).render_as_string(hide_password=False),
            poolclass=NullPool,
        )
        migrate(engine)
        engine.dispose()  # a template must have no connections when cloned
        yield name
    finally:
        _drop_database(admin, name)
        admin.dispose()


@pytest.fixture
def pg_database_factory(
    pg_server_url: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., str]]:
    """``new(migrated=False) -> url``: a fresh uniquely named database, dropped after the test.

    ``migrated=True`` clones the session's migrated template (fast).
    """
    admin = _admin_engine(pg_server_url)
    created: list[str] = []

    def new(migrated: bool = False) -> str:
        name = f"journeys_test_{uuid.uuid4().hex[:12]}"
        template = request.getfixturevalue("_pg_template") if migrated else "template0"
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        created.append(name)
        return make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)

    yield new
    for name in created:
        _drop_database(admin, name)
    admin.dispose()


@pytest.fixture
def pg_url(pg_database_factory: Callable[..., str]) -> str:
    """URL of a fresh, empty PostgreSQL database (dropped after the test)."""
    return pg_database_factory()


@pytest.fixture
def pg_engine(pg_database_factory: Callable[..., str]) -> Iterator[Engine]:
    """A fresh migrated PostgreSQL database."""
    engine = create_engine(pg_database_factory(migrated=True))
    yield engine
    engine.dispose()


# ---------------------------------------------------------------------------------------- both


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a fresh migrated database: once on SQLite, once on PostgreSQL."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_database_factory")(migrated=True)
    url = f"sqlite:///{tmp_path / 'journeys.db'}"
    engine = create_engine(url)
    migrate(engine)
    engine.dispose()
    return url


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    """An engine on ``db_url`` (SQLite and PostgreSQL), disposed after the test."""
    engine = create_engine(db_url)
    yield engine
    engine.dispose()
