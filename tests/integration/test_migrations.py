"""Migrations create exactly ``tables.metadata``, are idempotent and safe to run concurrently."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event

from journeys.store.db import (
    alembic_config,
    create_engine,
    current_revision,
    head_revision,
    main,
    migrate,
    migration_context_options,
)
from journeys.store.tables import metadata

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest) -> str:
    """An empty database on each backend."""
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


def _diff(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts=migration_context_options(conn))
        return list(compare_metadata(context, metadata))


def _user_tables(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_heads() == [head_revision()]
    assert [rev.revision for rev in script.walk_revisions()][-1] == "0001"


def test_migrations_equal_metadata(empty_url: str) -> None:
    engine = create_engine(empty_url)
    try:
        assert current_revision(engine) is None
        migrate(engine)
        assert current_revision(engine) == head_revision()
        assert _user_tables(engine) == set(metadata.tables)
        assert _diff(engine) == []
    finally:
        engine.dispose()


def test_migrate_twice_is_a_no_op(empty_url: str) -> None:
    engine = create_engine(empty_url)
    try:
        migrate(engine)
        statements: list[str] = []

        @event.listens_for(engine, "before_cursor_execute")
        def _record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        migrate(engine)
        ddl = [s for s in statements if s.lstrip().upper().startswith(("CREATE", "ALTER", "DROP"))]
        assert ddl == []
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_migrate_joins_the_callers_transaction(empty_url: str) -> None:
    """In the caller's transaction, a rollback undoes the migration (DDL is transactional)."""
    engine = create_engine(empty_url)
    try:
        with engine.connect() as conn:
            trans = conn.begin()
            migrate(conn)
            assert current_revision(conn) == head_revision()
            trans.rollback()
        assert current_revision(engine) is None
        assert _user_tables(engine) == set()
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(empty_url: str) -> None:
    engine = create_engine(empty_url)
    try:
        migrate(engine)
        with engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        assert _user_tables(engine) == set()
        migrate(engine)
        assert _diff(engine) == []
    finally:
        engine.dispose()


def test_concurrent_migrations_serialise(empty_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        engine = create_engine(empty_url)
        try:
            barrier.wait()
            migrate(engine)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a concurrent migrate hung"
    assert errors == []
    engine = create_engine(empty_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_sqlite_foreign_keys_back_on_after_migrate() -> None:
    engine = create_engine("sqlite://")  # StaticPool: the very connection that migrated
    try:
        migrate(engine)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_command_line_renders_offline_sql(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--url", "postgresql://nobody@unreachable.invalid/db", "upgrade", "head", "--sql"])
    sql = capsys.readouterr().out
    assert "CREATE TABLE customers" in sql
    assert "JSONB" in sql
    assert "CREATE UNIQUE INDEX uq_enrollments_active" in sql
    assert "WHERE status = 'active'" in sql
