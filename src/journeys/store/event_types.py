"""The event types a store has seen (``journeys validate --database``: they count as known)."""

from __future__ import annotations

from sqlalchemy import Engine, select

from journeys.store.tables import events


def stored_event_types(db: Engine) -> list[str]:
    """Every distinct event type stored in ``db``, sorted (read only)."""
    with db.connect() as conn:
        return sorted(conn.execute(select(events.c.type).distinct()).scalars())
