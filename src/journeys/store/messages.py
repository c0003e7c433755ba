"""The outbox as the runtime writes it: queued messages and the sends frequency caps count."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from journeys.store.bulk import chunks, executemany, insert_stmt
from journeys.store.tables import outbox

COUNTED = ("pending", "sending", "sent", "logged", "unknown")
"""Outbox statuses frequency caps count (queued, going or gone; not suppressed or failed)."""


def add_outbox(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Queue rendered messages; the (enrollment, step, attempt) key makes a replay a no-op."""
    if rows:
        stmt = insert_stmt(conn, outbox).on_conflict_do_nothing()
        executemany(conn, "add_outbox", stmt, rows)


def recent_sends(
    conn: Connection, customer_ids: Iterable[str], since: datetime
) -> list[tuple[str, datetime]]:
    """(customer, due time) of marketing sends (every channel) due after ``since``: what
    frequency caps count."""
    found: list[tuple[str, datetime]] = []
    for chunk in chunks(sorted(set(customer_ids))):
        stmt = select(outbox.c.customer_id, outbox.c.due_at).where(
            outbox.c.customer_id.in_(chunk),
            outbox.c.kind == "send",
            outbox.c.message_kind == "marketing",
            outbox.c.status.in_(COUNTED),
            outbox.c.due_at > since,
        )
        found.extend(conn.execute(stmt).tuples())
    return found
