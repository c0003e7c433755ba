"""Engines: URLs, SQLite pragmas and locking, transactions, the active-enrollment index."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from journeys.store.db import (
    DEFAULT_URL,
    ENV_VAR,
    SQLITE_BEGIN_OPTION,
    create_engine,
    current_revision,
    database_url,
    describe,
    head_revision,
    open_store,
)
from journeys.store.tables import customers, enrollments, step_runs

NOW = datetime(2026, 3, 1, 10, 15, tzinfo=UTC)


# ------------------------------------------------------------------------------------- URLs


def test_database_url_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert database_url() == DEFAULT_URL == "sqlite:///journeys.db"
    monkeypatch.setenv(ENV_VAR, "sqlite:///from-env.db")
    assert database_url() == "sqlite:///from-env.db"
    assert database_url("sqlite:///explicit.db") == "sqlite:///explicit.db"
    monkeypatch.setenv(ENV_VAR, "  ")
    assert database_url() == DEFAULT_URL


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5432/j", "postgresql+psycopg://u:p@db:5432/j"),
        ("postgres://u@db/j", "postgresql+psycopg://u@db/j"),
        ("postgresql+psycopg://u@db/j", "postgresql+psycopg://u@db/j"),
        ("sqlite:////var/lib/j.db", "sqlite:////var/lib/j.db"),
    ],
)
def test_database_url_normalises_postgres_to_psycopg3(given: str, expected: str) -> None:
    assert database_url(given) == expected


def test_describe_hides_password() -> None:
    text = describe("postgresql+psycopg://journeys:s3cret@db:5432/j")
    assert "s3cret" not in text
    assert text == "postgresql+psycopg://journeys:***@db:5432/j"
    assert describe("sqlite:///journeys.db") == "sqlite:///journeys.db"
    assert "s3cret" not in describe("not a url://u:s3cret@host")


# ----------------------------------------------------------------------------------- SQLite


def _pragma(engine: Engine, name: str) -> Any:
    with engine.connect() as conn:
        return conn.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_sqlite_pragmas_in_effect(sqlite_engine: Engine) -> None:
    assert _pragma(sqlite_engine, "journal_mode") == "wal"
    assert _pragma(sqlite_engine, "busy_timeout") == 30_000
    assert _pragma(sqlite_engine, "synchronous") == 1  # NORMAL
    assert _pragma(sqlite_engine, "foreign_keys") == 1


def test_sqlite_busy_timeout_configurable(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url, sqlite_busy_timeout=0.25)
    try:
        assert _pragma(engine, "busy_timeout") == 250
    finally:
        engine.dispose()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_sqlite_memory_database_is_shared(url: str) -> None:
    engine = open_store(url)
    try:
        with engine.begin() as conn:
            conn.execute(customers.insert().values(id="c-1", created_at=NOW, updated_at=NOW))
        with engine.connect() as conn:  # another checkout sees the same database
            assert conn.scalar(sa.select(customers.c.id)) == "c-1"
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "memory"
    finally:
        engine.dispose()


def test_sqlite_file_parent_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "journeys.db"
    engine = open_store(f"sqlite:///{path}")
    engine.dispose()
    assert path.is_file()


def test_sqlite_transactions_begin_immediate(sqlite_engine: Engine, sqlite_url: str) -> None:
    """A transaction holds the write lock from BEGIN, even before it writes anything."""
    other = create_engine(sqlite_url, sqlite_busy_timeout=0.1)
    try:
        with sqlite_engine.begin() as conn:
            conn.execute(sa.select(customers.c.id)).all()  # only a read so far
            started = time.monotonic()
            with pytest.raises(OperationalError, match="database is locked"), other.begin() as c2:
                c2.execute(customers.insert().values(id="c-2", created_at=NOW, updated_at=NOW))
            assert time.monotonic() - started >= 0.09  # it waited for busy_timeout
            conn.execute(customers.insert().values(id="c-1", created_at=NOW, updated_at=NOW))
        # Once the first commits, the other gets the lock.
        with other.begin() as c2:
            c2.execute(customers.insert().values(id="c-2", created_at=NOW, updated_at=NOW))
        with other.connect() as c2:
            assert c2.scalar(sa.select(sa.func.count()).select_from(customers)) == 2
    finally:
        other.dispose()


def test_sqlite_deferred_readers_do_not_block_writers(
    sqlite_engine: Engine, sqlite_url: str
) -> None:
    other = create_engine(sqlite_url, sqlite_busy_timeout=0.1)
    try:
        with sqlite_engine.connect() as reader:
            reader = reader.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})
            with reader.begin():
                assert reader.scalar(sa.select(sa.func.count()).select_from(customers)) == 0
                with other.begin() as writer:
                    writer.execute(
                        customers.insert().values(id="c-1", created_at=NOW, updated_at=NOW)
                    )
                # Snapshot isolation: the open read transaction still sees its snapshot.
                assert reader.scalar(sa.select(sa.func.count()).select_from(customers)) == 0
    finally:
        other.dispose()


def test_sqlite_begin_mode_is_validated(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as conn:
        conn = conn.execution_options(**{SQLITE_BEGIN_OPTION: "SOMETIMES"})
        with pytest.raises(ValueError, match="journeys_sqlite_begin"):
            conn.begin()


# ------------------------------------------------------------------------------ both databases


def test_open_store_uses_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_VAR, f"sqlite:///{tmp_path / 'env.db'}")
    engine = open_store()
    try:
        assert engine.url.database == str(tmp_path / "env.db")
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_failed_transaction_rolls_back(db_engine: Engine) -> None:
    with pytest.raises(RuntimeError, match="boom"), db_engine.begin() as conn:
        conn.execute(customers.insert().values(id="c-1", created_at=NOW, updated_at=NOW))
        raise RuntimeError("boom")
    with db_engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(customers)) == 0


def test_server_defaults(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        conn.execute(customers.insert().values(id="c-1", created_at=NOW, updated_at=NOW))
        row = conn.execute(sa.select(customers).where(customers.c.id == "c-1")).one()
    assert row.email_opt_in is None  # never said: consent.missing decides (docs/delivery.md)
    assert row.orders_count == 0
    assert row.lifetime_value == 0
    assert row.attributes == {}


def _enrollment(customer: str, status: str, trigger_key: str | None = None) -> dict[str, Any]:
    return {
        "journey": "abandoned-cart",
        "version": "v1",
        "customer_id": customer,
        "status": status,
        "step": "remind",
        "entered_at": NOW,
        "trigger_key": trigger_key,
    }


def test_one_active_enrollment_per_customer_and_journey(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        first = conn.execute(
            enrollments.insert().values(_enrollment("c-1", "active"))
        ).inserted_primary_key[0]
        conn.execute(enrollments.insert().values(_enrollment("c-2", "active")))  # other customer

    with pytest.raises(IntegrityError), db_engine.begin() as conn:
        conn.execute(enrollments.insert().values(_enrollment("c-1", "active")))

    with db_engine.begin() as conn:  # ended enrollments do not count
        conn.execute(enrollments.insert().values(_enrollment("c-1", "completed")))
        conn.execute(enrollments.insert().values(_enrollment("c-1", "exited")))
        conn.execute(enrollments.insert().values(_enrollment("c-1", "completed")))

    with db_engine.begin() as conn:  # once the active one ends, a new one may start
        conn.execute(
            enrollments.update().where(enrollments.c.id == first).values(status="completed")
        )
        conn.execute(enrollments.insert().values(_enrollment("c-1", "active")))

    with db_engine.connect() as conn:
        statuses = conn.scalars(
            sa.select(enrollments.c.status)
            .where(enrollments.c.customer_id == "c-1")
            .order_by(enrollments.c.id)
        ).all()
    assert statuses == ["completed", "completed", "exited", "completed", "active"]


def test_trigger_key_is_unique_per_customer_and_journey(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        conn.execute(enrollments.insert().values(_enrollment("c-1", "completed", "2026")))
    with pytest.raises(IntegrityError), db_engine.begin() as conn:
        conn.execute(enrollments.insert().values(_enrollment("c-1", "active", "2026")))


def test_foreign_keys_enforced(db_engine: Engine) -> None:
    with pytest.raises(IntegrityError), db_engine.begin() as conn:
        conn.execute(
            step_runs.insert().values(
                enrollment_id=12345, journey="j", step="s", at=NOW, outcome="sent"
            )
        )


@pytest.mark.postgres
def test_postgres_engine_settings(pg_engine: Engine) -> None:
    assert pg_engine.dialect.driver == "psycopg"
    assert pg_engine.pool._pre_ping  # type: ignore[attr-defined]
    with pg_engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW application_name").scalar() == "journeys"
