"""Repository functions: the runtime's SQL (set-based steps have theirs in :mod:`.setbased`).

Like Prefect server's models, every function takes an open ``Connection`` and never commits:
the caller owns the transaction (one per batch). Every function works on a set of rows with a
constant number of statements, never one statement per customer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from journeys.clock import as_utc
from journeys.store.tables import (
    IS_ACTIVE,
    customers,
    enrollments,
    events,
    journey_versions,
    outbox,
    scheduler_state,
    stage_history,
    step_runs,
    suppressions,
    survey_answers,
)

# SQLite allows 32766 bound parameters per statement; stay well below with IN lists.
IN_CHUNK = 5000

CUSTOMER_COLUMNS = [c.name for c in customers.columns]


def _chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _insert(conn: Connection, table: Any) -> Any:
    """An INSERT that can take ON CONFLICT DO NOTHING on both dialects."""
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


def _dicts(result: Any) -> list[dict[str, Any]]:
    """Result rows as plain dicts. Every datetime column is a ``UtcDateTime``, which already
    hands back aware UTC values, so rows need no per-value conversion (the hot path)."""
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result]


# SQLite executemany without SQLAlchemy's per-row parameter building: (name, keys) → the
# compiled SQL and, per positional parameter, its key and the type's bind processor.
_FAST: dict[tuple[str, tuple[str, ...]], tuple[str, list[tuple[str, Any]]] | None] = {}


def _fast_plan(
    conn: Connection, name: str, stmt: Any, keys: tuple[str, ...]
) -> tuple[str, list[tuple[str, Any]]] | None:
    """The compiled SQL of ``stmt`` for parameter dicts with ``keys`` and, per positional
    parameter, its key and bind processor; None when the statement needs SQLAlchemy's own
    parameter handling (Python-side defaults, expanding or escaped parameters)."""
    key = (name, keys)
    if key in _FAST:
        return _FAST[key]
    compiled = stmt.compile(dialect=conn.dialect, column_keys=list(keys))
    names = compiled.positiontup
    plan: tuple[str, list[tuple[str, Any]]] | None = None
    if (
        names is not None
        and not compiled.insert_prefetch
        and not compiled.update_prefetch
        and not compiled.literal_execute_params
        and not compiled.post_compile_params
        and not compiled.escaped_bind_names
        and set(names) <= set(keys)
    ):
        processors = compiled._bind_processors
        plan = (compiled.string, [(n, processors.get(n)) for n in names])
    _FAST[key] = plan
    return plan


def _fast_params(binds: list[tuple[str, Any]], rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Positional parameter tuples, each value through its type's bind processor (exactly
    what SQLAlchemy's executemany does, without its per-row overhead)."""
    return [tuple([row[n] if proc is None else proc(row[n]) for n, proc in binds]) for row in rows]


def _fast_rows(
    conn: Connection, name: str, stmt: Any, rows: Sequence[Mapping[str, Any]]
) -> tuple[str, list[Any]] | None:
    """On SQLite, the compiled SQL of ``stmt`` and one positional parameter tuple per row, for
    the driver directly; None when SQLAlchemy's own path must run (another database, rows with
    different keys, a statement that needs its parameter handling, a bad value: SQLAlchemy
    then raises exactly what it always raised). ``name`` identifies the statement's shape."""
    if conn.dialect.name != "sqlite" or not rows:
        return None
    first = rows[0].keys()
    if not all(row.keys() == first for row in rows):
        return None
    plan = _fast_plan(conn, name, stmt, tuple(first))
    if plan is None:
        return None
    try:
        return plan[0], _fast_params(plan[1], rows)
    except Exception:
        return None


def _executemany(conn: Connection, name: str, stmt: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """``conn.execute(stmt, rows)`` for rows that all have the same keys, through
    :func:`_fast_rows` where it can."""
    fast = _fast_rows(conn, name, stmt, rows) if len(rows) > 1 else None
    if fast is None:
        conn.execute(stmt, [dict(r) for r in rows])
    else:
        conn.exec_driver_sql(*fast)


# --------------------------------------------------------------------------- customers


def load_customers(
    conn: Connection, ids: Iterable[str], *, lock: bool = False
) -> dict[str, dict[str, Any]]:
    """Customers by id (missing ids are absent from the result).

    ``lock`` takes row locks on PostgreSQL, in id order, so that concurrent workers read the
    latest committed profile and never deadlock on each other's customers. Callers lock
    enrollments before customers, everywhere: that single order is what rules deadlocks out.
    """
    wanted = sorted(set(ids))
    found: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(wanted):
        stmt = select(customers).where(customers.c.id.in_(chunk)).order_by(customers.c.id)
        if lock and conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        for row in _dicts(conn.execute(stmt)):
            found[row["id"]] = row
    return found


def _present(conn: Connection, column: Any, ids: Iterable[str], *where: Any) -> set[str]:
    """Which of ``ids`` appear in ``column`` (rows also matching ``where``), in IN-chunks."""
    found: set[str] = set()
    for chunk in _chunks(sorted(set(ids))):
        found.update(conn.scalars(select(column).where(column.in_(chunk), *where)))
    return found


def existing_customer_ids(conn: Connection, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` exist."""
    return _present(conn, customers.c.id, ids)


def insert_customers(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert new customers (full rows)."""
    if rows:
        conn.execute(customers.insert(), [dict(r) for r in rows])


def update_customers(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write back whole customer rows (by id) in one executemany."""
    if not rows:
        return
    cols = [c for c in CUSTOMER_COLUMNS if c not in ("id", "created_at")]
    rows = sorted(rows, key=lambda r: r["id"])  # one lock order for every writer
    stmt = (
        update(customers)
        .where(customers.c.id == bindparam("_id"))
        .values({c: bindparam(c) for c in cols})
    )
    params = [{"_id": r["id"], **{c: r.get(c) for c in cols}} for r in rows]
    _executemany(conn, "update_customers", stmt, params)


def customer_timezones(conn: Connection) -> list[str | None]:
    """The distinct time zones customers have (None for customers without one)."""
    return list(conn.scalars(select(customers.c.timezone).distinct()))


def customers_with_birthday(
    conn: Connection, timezone: str | None, month_days: Sequence[str]
) -> list[dict[str, Any]]:
    """Customers in ``timezone`` (None: those without one) whose birthday is on one of
    ``month_days`` (``MM-DD``)."""
    tz_clause = customers.c.timezone == timezone if timezone else customers.c.timezone.is_(None)
    stmt = select(customers).where(customers.c.birthday_md.in_(list(month_days)), tz_clause)
    return _dicts(conn.execute(stmt))


def iter_customers(
    conn: Connection, chunk: int = 5000, where: Any = None
) -> Iterable[list[dict[str, Any]]]:
    """Every customer (that meets the SQL condition ``where``), in chunks, by keyset
    pagination on id (constant memory)."""
    last = ""
    while True:
        stmt = select(customers).where(customers.c.id > last)
        if where is not None:
            stmt = stmt.where(where)
        rows = conn.execute(stmt.order_by(customers.c.id).limit(chunk))
        batch = _dicts(rows)
        if not batch:
            return
        yield batch
        last = batch[-1]["id"]


def suppressed_customers(conn: Connection, ids: Iterable[str], channel: str) -> set[str]:
    """Customers in ``ids`` suppressed (unsubscribed, bounced) on ``channel``."""
    return _present(conn, suppressions.c.customer_id, ids, suppressions.c.channel == channel)


def add_suppressions(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record unsubscribes/bounces; an existing (customer, channel) suppression is kept."""
    if rows:
        stmt = _insert(conn, suppressions).on_conflict_do_nothing()
        conn.execute(stmt, [dict(r) for r in rows])


def add_stage_history(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record lifecycle stage changes."""
    if rows:
        _executemany(conn, "add_stage_history", stage_history.insert(), rows)


# --------------------------------------------------------------------------- events


def existing_event_ids(conn: Connection, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` are already stored (the idempotency check)."""
    return _present(conn, events.c.id, ids)


def insert_events(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Store events; an id already stored is skipped (ON CONFLICT DO NOTHING)."""
    if rows:
        stmt = _insert(conn, events).on_conflict_do_nothing(index_elements=["id"])
        _executemany(conn, "insert_events", stmt, rows)


# Statements run on every tick are built once: building a select() costs more than running it.
_CLAIM_EVENTS = (
    select(events)
    .where(events.c.processed_at.is_(None), events.c.occurred_at <= bindparam("now"))
    .order_by(events.c.occurred_at, events.c.seq)
    .limit(bindparam("limit"))
)
_CLAIM_EVENTS_PG = _CLAIM_EVENTS.with_for_update(skip_locked=True)


def _claim(conn: Connection, plain: Any, locking: Any, **params: Any) -> list[dict[str, Any]]:
    stmt = locking if conn.dialect.name == "postgresql" else plain
    return _dicts(conn.execute(stmt, params))


def claim_pending_events(conn: Connection, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Unprocessed events that have occurred by ``now``, oldest first, locked for this batch."""
    return _claim(conn, _CLAIM_EVENTS, _CLAIM_EVENTS_PG, now=now, limit=limit)


def pending_event_keys(
    conn: Connection, customer_ids: Iterable[str], now: datetime
) -> dict[str, list[tuple[datetime, int]]]:
    """(occurred_at, seq) of every unprocessed, due event of these customers, by customer,
    whoever holds them (no locks taken): lets a batch see a customer's earlier events that
    another worker has claimed."""
    wanted = sorted(set(customer_ids))
    found: dict[str, list[tuple[datetime, int]]] = {}
    for chunk in _chunks(wanted):
        stmt = select(events.c.customer_id, events.c.occurred_at, events.c.seq).where(
            events.c.customer_id.in_(chunk),
            events.c.processed_at.is_(None),
            events.c.occurred_at <= now,
        )
        for cid, occurred_at, seq in conn.execute(stmt):
            found.setdefault(cid, []).append((as_utc(occurred_at), seq))
    return found


def mark_events_processed(
    conn: Connection, seqs: Sequence[int], now: datetime, errors: Mapping[int, str]
) -> None:
    """Mark a batch processed; events that could not be used keep their error."""
    if not seqs:
        return
    stmt = (
        update(events)
        .where(events.c.seq == bindparam("_seq"))
        .values(processed_at=bindparam("p"), error=bindparam("e"))
    )
    params = [{"_seq": s, "p": now, "e": errors.get(s)} for s in seqs]
    _executemany(conn, "mark_events_processed", stmt, params)


# --------------------------------------------------------------------------- versions


def save_versions(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Store compiled plans by (journey, version); known versions are left alone."""
    if rows:
        stmt = _insert(conn, journey_versions).on_conflict_do_nothing()
        conn.execute(stmt, [dict(r) for r in rows])


def load_version(conn: Connection, journey: str, version: str) -> dict[str, Any] | None:
    """The stored plan dict of one journey version."""
    return conn.scalar(
        select(journey_versions.c.plan).where(
            journey_versions.c.journey == journey, journey_versions.c.version == version
        )
    )


# --------------------------------------------------------------------------- enrollments


def active_enrollments(conn: Connection, customer_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Active enrollments of these customers, locked on PostgreSQL for this batch."""
    wanted = sorted(set(customer_ids))
    found: list[dict[str, Any]] = []
    for chunk in _chunks(wanted):
        stmt = (
            select(enrollments)
            # A bound 'active', not IS_ACTIVE: the partial due index would read every active
            # enrollment; this way the planners take the customer index.
            .where(enrollments.c.status == "active", enrollments.c.customer_id.in_(chunk))
            .order_by(enrollments.c.id)
        )
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        found.extend(_dicts(conn.execute(stmt)))
    return found


def enrollment_history(
    conn: Connection, customer_ids: Iterable[str], journeys: Iterable[str]
) -> dict[tuple[str, str], tuple[int, datetime | None]]:
    """(journey, customer) → (how many enrollments ever, when the last one ended)."""
    wanted = sorted(set(customer_ids))
    names = sorted(set(journeys))
    found: dict[tuple[str, str], tuple[int, datetime | None]] = {}
    if not wanted or not names:
        return found
    for chunk in _chunks(wanted):
        stmt = (
            select(
                enrollments.c.journey,
                enrollments.c.customer_id,
                func.count(),
                func.max(enrollments.c.ended_at),
            )
            .where(enrollments.c.customer_id.in_(chunk), enrollments.c.journey.in_(names))
            .group_by(enrollments.c.journey, enrollments.c.customer_id)
        )
        for journey, customer_id, count, ended in conn.execute(stmt):
            found[(journey, customer_id)] = (count, as_utc(ended) if ended else None)
    return found


def unconverted_enrollments(
    conn: Connection, customer_ids: Iterable[str], journeys: Iterable[str]
) -> list[dict[str, Any]]:
    """Enrollments (any status) in goal journeys that have not converted yet."""
    wanted = sorted(set(customer_ids))
    names = sorted(set(journeys))
    found: list[dict[str, Any]] = []
    if not names:
        return found
    for chunk in _chunks(wanted):
        stmt = select(
            enrollments.c.id,
            enrollments.c.journey,
            enrollments.c.version,
            enrollments.c.customer_id,
            enrollments.c.entered_at,
        ).where(
            enrollments.c.customer_id.in_(chunk),
            enrollments.c.journey.in_(names),
            enrollments.c.converted_at.is_(None),
        )
        found.extend(_dicts(conn.execute(stmt)))
    return found


def insert_enrollments(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int | None]:
    """Insert new enrollments; returns their ids in order (None where a unique key said no:
    already active, or this trigger key already used)."""
    if not rows:
        return []
    stmt = (
        _insert(conn, enrollments)
        .on_conflict_do_nothing()
        .returning(enrollments.c.id, enrollments.c.customer_id, enrollments.c.journey)
    )
    got: dict[tuple[str, str], int] = {}
    fast = _fast_rows(conn, "insert_enrollments", stmt, rows)
    width = len(fast[1][0]) if fast else 0
    values = "(" + ", ".join("?" * width) + ")"
    if fast and fast[0].count(values) == 1:
        # Many rows per INSERT … RETURNING (SQLite takes up to 32,766 parameters).
        sql, params = fast
        per = max(1, min(1000, 30000 // width))
        for start in range(0, len(params), per):
            chunk = params[start : start + per]
            multi = sql.replace(values, ", ".join([values] * len(chunk)))
            flat = tuple(value for row in chunk for value in row)
            for new_id, customer_id, journey in conn.exec_driver_sql(multi, flat):
                got[(journey, customer_id)] = new_id
    else:
        result = conn.execute(stmt, [dict(r) for r in rows])
        got = {(r.journey, r.customer_id): r.id for r in result}
    return [got.get((r["journey"], r["customer_id"])) for r in rows]


def update_enrollments(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write the new state of enrollments in one executemany."""
    if not rows:
        return
    cols = [
        "status",
        "step",
        "wake_at",
        "waiting_for",
        "vars",
        "ended_at",
        "exit_reason",
        "converted_at",
    ]
    stmt = (
        update(enrollments)
        .where(enrollments.c.id == bindparam("_id"))
        .values({c: bindparam(c) for c in cols})
    )
    params = [{"_id": r["id"], **{c: r.get(c) for c in cols}} for r in rows]
    _executemany(conn, "update_enrollments", stmt, params)


def set_converted(conn: Connection, rows: Sequence[tuple[int, datetime]]) -> None:
    """Record goal conversions (enrollment id, when)."""
    if rows:
        stmt = (
            update(enrollments)
            .where(enrollments.c.id == bindparam("_id"), enrollments.c.converted_at.is_(None))
            .values(converted_at=bindparam("c"))
        )
        _executemany(conn, "set_converted", stmt, [{"_id": i, "c": at} for i, at in rows])


def claim_due(
    conn: Connection, journey: str, step: str, now: datetime, limit: int
) -> list[dict[str, Any]]:
    """Due enrollments at one step, oldest first; PostgreSQL workers skip each other's rows."""
    return _claim(conn, _DUE_AT, _DUE_AT_PG, now=now, limit=limit, journey=journey, step=step)


def claim_due_any(
    conn: Connection, journey: str | None, now: datetime, limit: int
) -> list[dict[str, Any]]:
    """Due enrollments at any step (of one journey, or all), oldest first; PostgreSQL workers
    skip each other's rows."""
    if journey:
        return _claim(conn, _DUE_IN, _DUE_IN_PG, now=now, limit=limit, journey=journey)
    return _claim(conn, _DUE_ANY, _DUE_ANY_PG, now=now, limit=limit)


_DUE_ANY = (
    select(enrollments)
    .where(IS_ACTIVE, enrollments.c.wake_at <= bindparam("now"))
    .order_by(enrollments.c.wake_at, enrollments.c.id)
    .limit(bindparam("limit"))
)
_DUE_ANY_PG = _DUE_ANY.with_for_update(skip_locked=True)
_DUE_IN = _DUE_ANY.where(enrollments.c.journey == bindparam("journey"))
_DUE_IN_PG = _DUE_IN.with_for_update(skip_locked=True)
_DUE_AT = _DUE_IN.where(enrollments.c.step == bindparam("step"))
_DUE_AT_PG = _DUE_AT.with_for_update(skip_locked=True)


def due_steps(conn: Connection, now: datetime, journey: str | None = None) -> list[tuple[str, str]]:
    """(journey, step) pairs that have due enrollments."""
    columns: tuple[Any, ...] = (enrollments.c.journey, enrollments.c.step)
    if conn.dialect.name == "sqlite":
        # ``+col``: without statistics SQLite would walk an index that starts with ``journey``
        # over every active row (for the DISTINCT or the journey filter), not the due index.
        columns = tuple(literal_column(f"+enrollments.{c.name}", c.type) for c in columns)
    stmt = select(*columns).where(IS_ACTIVE, enrollments.c.wake_at <= now)
    if journey:
        stmt = stmt.where(columns[0] == journey)
    return sorted({(j, s) for j, s in conn.execute(stmt.distinct())})


_NEXT_TIMES = select(
    select(func.min(events.c.occurred_at))
    .where(events.c.processed_at.is_(None), events.c.occurred_at > bindparam("after"))
    .scalar_subquery()
    .label("e"),
    select(func.min(enrollments.c.wake_at))
    .where(IS_ACTIVE, enrollments.c.wake_at > bindparam("after"))
    .scalar_subquery()
    .label("w"),
)


def next_times(conn: Connection, after: datetime) -> tuple[datetime | None, datetime | None]:
    """(next pending event time, next wake time) after ``after``, in one round trip."""
    row = conn.execute(_NEXT_TIMES, {"after": after}).one()
    return (as_utc(row.e) if row.e else None, as_utc(row.w) if row.w else None)


def add_step_runs(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append to the step history."""
    if rows:
        _executemany(conn, "add_step_runs", step_runs.insert(), rows)


# --------------------------------------------------------------------------- outbox


def add_outbox(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Queue rendered messages; the (enrollment, step, attempt) key makes a replay a no-op."""
    if rows:
        stmt = _insert(conn, outbox).on_conflict_do_nothing()
        _executemany(conn, "add_outbox", stmt, rows)


def claim_outbox(conn: Connection, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Pending messages that are due, locked for this dispatch batch."""
    return _claim(conn, _CLAIM_OUTBOX, _CLAIM_OUTBOX_PG, now=now, limit=limit)


_CLAIM_OUTBOX = (
    select(outbox)
    .where(outbox.c.status == "pending", outbox.c.due_at <= bindparam("now"))
    .order_by(outbox.c.due_at, outbox.c.id)
    .limit(bindparam("limit"))
)
_CLAIM_OUTBOX_PG = _CLAIM_OUTBOX.with_for_update(skip_locked=True)


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


def recent_message_counts(
    conn: Connection, customer_ids: Iterable[str], since: datetime
) -> dict[str, int]:
    """Marketing messages queued or sent per customer since ``since`` (frequency caps)."""
    wanted = sorted(set(customer_ids))
    found: dict[str, int] = {}
    for chunk in _chunks(wanted):
        stmt = (
            select(outbox.c.customer_id, func.count())
            .where(
                outbox.c.customer_id.in_(chunk),
                outbox.c.kind == "send",
                outbox.c.status.in_(["pending", "sent"]),
                outbox.c.due_at > since,
            )
            .group_by(outbox.c.customer_id)
        )
        found.update({c: n for c, n in conn.execute(stmt)})
    return found


# --------------------------------------------------------------------------- surveys, state


def add_survey_answers(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Store survey answers (an answer event is stored once)."""
    if rows:
        stmt = _insert(conn, survey_answers).on_conflict_do_nothing()
        conn.execute(stmt, [dict(r) for r in rows])


def get_state(conn: Connection, key: str, *, lock: bool = False) -> datetime | None:
    """A scheduler cursor (e.g. the last time a date trigger was swept); ``lock`` makes
    concurrent sweeps of the same trigger take turns on PostgreSQL."""
    stmt = select(scheduler_state.c.at).where(scheduler_state.c.key == key)
    if lock and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    value = conn.scalar(stmt)
    return as_utc(value) if value else None


def set_state(conn: Connection, key: str, at: datetime) -> None:
    """Move a scheduler cursor."""
    stmt = _insert(conn, scheduler_state).values(key=key, at=at)
    stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={"at": at})
    conn.execute(stmt)
