"""The forecast's reads on SQLite and PostgreSQL: a read-only store refuses writes and is never
migrated, and the history streams in batches through one connection that other reads share."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from engine_helpers import SIGNUP_WELCOME, T0, WAIT_FOR_CART, open_service, write_project
from journeys.clock import iso
from journeys.forecast import Subject, run_forecast
from journeys.forecast.stored import StoredHistory
from journeys.store import db as store_db
from journeys.store.history import newest_plan
from journeys.store.kpis import reading
from journeys.store.tables import customers


def test_a_read_only_store_refuses_writes(db_url: str) -> None:
    engine = store_db.open_store(db_url, read_only=True)
    try:
        with pytest.raises(sa.exc.DBAPIError), engine.begin() as conn:
            conn.execute(
                sa.insert(customers).values(id="c-1", attributes={}, created_at=T0, updated_at=T0)
            )
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(customers)).scalar() == 0
    finally:
        engine.dispose()


def test_a_store_behind_this_schema_is_refused_not_migrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(store_db.alembic_config(url), "0007")
    with pytest.raises(store_db.StoreUnavailable, match="run `journeys db upgrade`"):
        store_db.open_store(url, read_only=True)
    engine = store_db.create_engine(url)
    try:
        assert store_db.current_revision(engine) == "0007"
    finally:
        engine.dispose()


def test_the_history_streams_in_batches_beside_other_reads(db_url: str, tmp_path: Path) -> None:
    """Two events per batch: the stream stays open while customers, stages and suppressions
    are read on the same connection (a server-side cursor on PostgreSQL)."""
    project = write_project(tmp_path, {"cart": WAIT_FOR_CART, "welcome": SIGNUP_WELCOME})
    live = open_service(project, db_url)
    try:
        live.import_customers([{"id": f"c-{i}", "email": f"c{i}@example.com"} for i in range(1, 6)])
        records = [
            {
                "id": f"e{i}",
                "type": "cart.updated",
                "customer_id": f"c-{i}",
                "occurred_at": iso(T0 + timedelta(hours=i)),
                "data": {},
            }
            for i in range(1, 6)
        ]
        assert live.ingest(records).ok
        live.run_pass()  # the live runner saves the plans it runs
    finally:
        live.close()
    engine = store_db.open_store(db_url, read_only=True)
    try:
        with reading(engine) as conn:
            plan = project.plans["cart"]
            assert newest_plan(conn, "cart") == plan.to_dict()
            result = run_forecast(
                project,
                Subject("cart", plan, plan, "database"),
                StoredHistory(conn, batch=2),
                start=T0,
                until=T0 + timedelta(days=3),
                days=3,
                spec_file="cart.yaml",
            )
    finally:
        engine.dispose()
    assert (result.replayed.events, result.replayed.customers) == (5, 5)
    assert [(m["customer_id"], m["at"]) for m in result.spec.messages] == [
        (f"c-{i}", iso(T0 + timedelta(hours=24 + i))) for i in range(1, 6)
    ]
    assert result.unchanged and result.live is None
