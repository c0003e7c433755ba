"""Which customers a pass works on next, and whether anything is left.

A customer is the unit of work: a batch takes every pending event and due step of the
customers it holds. SQLite has one writer, so holding is implicit. On PostgreSQL a batch holds
a customer by locking its ``customers`` row (``FOR UPDATE SKIP LOCKED``; a customer an event
is about to create has no row yet and is held by a transaction-level advisory lock on its id
instead). Other workers' claims and set-based chunks skip held customers until the batch
commits or its connection dies, so two workers never run one customer's timeline at once.
Row locks cost no shared memory, so a batch may hold thousands of customers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Connection, String, bindparam, func, literal_column, select, text

from journeys.clock import as_utc
from journeys.store.tables import IS_ACTIVE, customers, enrollments, events

E = enrollments.c

SCAN = 4
"""A claim reads this many rows per customer wanted, to find unheld customers past the held."""

_HOLD_NEW = text(
    "SELECT cid FROM unnest(:new) AS held(cid) "
    "WHERE pg_try_advisory_xact_lock(hashtextextended(cid, 0))"
).bindparams(bindparam("new", type_=ARRAY(String)))

_EVENT_CANDIDATES = (
    select(events.c.customer_id.label("cid"))
    .where(events.c.processed_at.is_(None), events.c.occurred_at <= bindparam("horizon"))
    .order_by(events.c.occurred_at, events.c.seq)
    .limit(bindparam("scan"))
)
_DUE_CANDIDATES = (
    select(E.customer_id.label("cid"))
    .where(IS_ACTIVE, E.wake_at <= bindparam("horizon"))
    .order_by(E.wake_at, E.id)
    .limit(bindparam("scan"))
)
_DUE_AT_CANDIDATES = _DUE_CANDIDATES.where(
    E.journey == bindparam("journey"), E.step == bindparam("step")
)


def _claim(conn: Connection, candidates: Any, limit: int, **params: Any) -> list[str]:
    params["scan"] = limit * SCAN
    if conn.dialect.name != "postgresql":
        seen: dict[str, None] = {}
        for (cid,) in conn.execute(candidates, params):
            seen.setdefault(cid, None)
            if len(seen) >= limit:
                break
        return list(seen)
    wanted = list(dict.fromkeys(conn.scalars(candidates, params)))
    return hold_customers(conn, wanted, limit)


def hold_customers(conn: Connection, ids: list[str], limit: int) -> list[str]:
    """PostgreSQL: up to ``limit`` of ``ids`` that no other transaction holds, now held by
    this one (their rows locked; advisory locks for ids without a row yet)."""
    if not ids:
        return []
    existing = set(conn.scalars(select(customers.c.id).where(customers.c.id.in_(ids))))
    held = list(
        conn.scalars(
            select(customers.c.id)
            .where(customers.c.id.in_(sorted(existing)))
            .order_by(customers.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    new = [cid for cid in ids if cid not in existing][: max(0, limit - len(held))]
    if new:
        held += list(conn.scalars(_HOLD_NEW, {"new": new}))
    return held


def claim_customers_with_events(conn: Connection, horizon: datetime, limit: int) -> list[str]:
    """Up to ``limit`` customers with events pending by ``horizon``, oldest first."""
    return _claim(conn, _EVENT_CANDIDATES, limit, horizon=horizon)


def claim_customers_due(
    conn: Connection, horizon: datetime, limit: int, at_step: tuple[str, str] | None = None
) -> list[str]:
    """Up to ``limit`` customers with an enrollment due by ``horizon`` (at ``at_step``)."""
    if at_step is None:
        return _claim(conn, _DUE_CANDIDATES, limit, horizon=horizon)
    journey, step = at_step
    return _claim(conn, _DUE_AT_CANDIDATES, limit, horizon=horizon, journey=journey, step=step)


def due_steps(
    conn: Connection, horizon: datetime, journey: str | None = None
) -> list[tuple[str, str]]:
    """(journey, step) pairs that have enrollments due by ``horizon``."""
    columns: tuple[Any, ...] = (E.journey, E.step)
    if conn.dialect.name == "sqlite":
        # ``+col``: without statistics SQLite would walk an index that starts with ``journey``
        # over every active row (for the DISTINCT or the journey filter), not the due index.
        columns = tuple(literal_column(f"+enrollments.{c.name}", c.type) for c in columns)
    stmt = select(*columns).where(IS_ACTIVE, E.wake_at <= horizon)
    if journey:
        stmt = stmt.where(columns[0] == journey)
    return sorted({(j, s) for j, s in conn.execute(stmt.distinct())})


_ANYTHING_DUE = select(
    select(events.c.seq)
    .where(events.c.processed_at.is_(None), events.c.occurred_at <= bindparam("horizon"))
    .limit(1)
    .exists()
    .label("e"),
    select(E.id).where(IS_ACTIVE, E.wake_at <= bindparam("horizon")).limit(1).exists().label("w"),
)


def anything_due(conn: Connection, horizon: datetime) -> bool:
    """Whether any event is pending or any enrollment due by ``horizon``."""
    row = conn.execute(_ANYTHING_DUE, {"horizon": horizon}).one()
    return bool(row.e or row.w)


_NEXT_TIMES = select(
    select(func.min(events.c.occurred_at))
    .where(events.c.processed_at.is_(None), events.c.occurred_at > bindparam("after"))
    .scalar_subquery()
    .label("e"),
    select(func.min(E.wake_at))
    .where(IS_ACTIVE, E.wake_at > bindparam("after"))
    .scalar_subquery()
    .label("w"),
)


def next_times(conn: Connection, after: datetime) -> tuple[datetime | None, datetime | None]:
    """(next pending event time, next wake time) after ``after``, in one round trip."""
    row = conn.execute(_NEXT_TIMES, {"after": after}).one()
    return (as_utc(row.e) if row.e else None, as_utc(row.w) if row.w else None)


STALE_SHARE = 0.2
"""PostgreSQL: a table whose rows changed by more than this share (and 1,000 rows) since its
statistics were taken is analyzed before set-based work plans queries on it."""

_STALE = text(
    "SELECT relname FROM pg_stat_user_tables "
    "WHERE relname IN ('enrollments', 'events', 'customers') "
    "AND n_mod_since_analyze > GREATEST(1000, :share * n_live_tup)"
)


def refresh_statistics(conn: Connection) -> list[str]:
    """PostgreSQL: ANALYZE the runtime's tables whose statistics are stale; returns their
    names. Right after a bulk load autovacuum has not caught up yet, and without statistics
    the planner takes a table of a million rows for one row and picks plans that visit it
    once per row (set-based steps then take minutes instead of seconds)."""
    if conn.dialect.name != "postgresql":
        return []
    stale = list(conn.scalars(_STALE, {"share": STALE_SHARE}))
    for name in stale:
        conn.exec_driver_sql(f"ANALYZE {name}")
    return stale
