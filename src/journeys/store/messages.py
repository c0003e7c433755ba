"""The outbox as the runtime writes it: queued messages and the sends frequency caps count."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from journeys.store.bulk import chunks, dicts, executemany, insert_stmt
from journeys.store.tables import outbox

COUNTED = ("pending", "sent")
"""Outbox statuses frequency caps count (queued or gone, not suppressed or failed)."""


def add_outbox(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Queue rendered messages; the (enrollment, step, attempt) key makes a replay a no-op."""
    if rows:
        stmt = insert_stmt(conn, outbox).on_conflict_do_nothing()
        executemany(conn, "add_outbox", stmt, rows)


def recent_sends(
    conn: Connection, customer_ids: Iterable[str], since: datetime
) -> list[tuple[str, datetime]]:
    """(customer, due time) of marketing email sends due after ``since`` (frequency caps)."""
    found: list[tuple[str, datetime]] = []
    for chunk in chunks(sorted(set(customer_ids))):
        stmt = select(outbox.c.customer_id, outbox.c.due_at).where(
            outbox.c.customer_id.in_(chunk),
            outbox.c.kind == "send",
            outbox.c.channel == "email",
            outbox.c.status.in_(COUNTED),
            outbox.c.due_at > since,
        )
        found.extend(conn.execute(stmt).tuples())
    return found


_CLAIM_OUTBOX = (
    select(outbox)
    .where(outbox.c.status == "pending", outbox.c.due_at <= bindparam("now"))
    .order_by(outbox.c.due_at, outbox.c.id)
    .limit(bindparam("limit"))
)
_CLAIM_OUTBOX_PG = _CLAIM_OUTBOX.with_for_update(skip_locked=True)


def claim_outbox(conn: Connection, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Pending messages that are due, locked for this dispatch batch."""
    stmt = _CLAIM_OUTBOX_PG if conn.dialect.name == "postgresql" else _CLAIM_OUTBOX
    return dicts(conn.execute(stmt, {"now": now, "limit": limit}))


def finish_outbox(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record the result of sending: status, sent_at, provider id, error."""
    if rows:
        stmt = (
            update(outbox)
            .where(outbox.c.id == bindparam("_id"), outbox.c.status == "pending")
            .values(
                status=bindparam("status"),
                sent_at=bindparam("sent_at"),
                provider_id=bindparam("provider_id"),
                error=bindparam("error"),
            )
        )
        conn.execute(stmt, [dict(r) for r in rows])
