"""Read-only look-ups for tools (``validate --database``, ``preview --customer``,
``forecast``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, select

from journeys.store.tables import customers, events


def stored_event_types(db: Engine | Connection) -> list[str]:
    """Every distinct event type stored in ``db``, sorted."""
    if isinstance(db, Engine):
        with db.connect() as conn:
            return stored_event_types(conn)
    return sorted(db.execute(select(events.c.type).distinct()).scalars())


def customer_row(db: Engine, customer_id: str) -> dict[str, Any] | None:
    """The stored customer ``customer_id`` (every column), or None."""
    with db.connect() as conn:
        row = conn.execute(select(customers).where(customers.c.id == customer_id)).mappings()
        found = row.first()
        return dict(found) if found is not None else None


def latest_event(db: Engine, customer_id: str, event_type: str) -> dict[str, Any] | None:
    """The customer's most recent stored event of ``event_type`` (id, type, customer_id,
    occurred_at, data), or None."""
    columns = (
        events.c.id,
        events.c.type,
        events.c.customer_id,
        events.c.occurred_at,
        events.c.data,
    )
    stmt = (
        select(*columns)
        .where(events.c.customer_id == customer_id, events.c.type == event_type)
        .order_by(events.c.occurred_at.desc(), events.c.seq.desc())
        .limit(1)
    )
    with db.connect() as conn:
        found = conn.execute(stmt).mappings().first()
        return dict(found) if found is not None else None
