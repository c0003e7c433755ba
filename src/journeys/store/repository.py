"""Repository functions: the runtime's SQL for customers, events and enrollments (the outbox,
set-based steps and claims have theirs in :mod:`.messages`, :mod:`.setbased`, :mod:`.claims`).

Like Prefect server's models, every function takes an open ``Connection`` and never commits:
the caller owns the transaction (one per batch). Every function works on a set of rows with a
constant number of statements, never one statement per customer. Rows come back as the typed
records of :mod:`journeys.state`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update

from journeys.clock import as_utc
from journeys.state import (
    COLUMNS_OF,
    Customer,
    Enrollment,
    Event,
    GoalCandidate,
    Processed,
    StageChange,
    Suppression,
    SurveyAnswer,
)
from journeys.store.bulk import chunks, dicts, executemany, fast_rows, insert_stmt
from journeys.store.tables import (
    customers,
    enrollments,
    events,
    journey_versions,
    scheduler_state,
    stage_history,
    step_runs,
    suppressions,
    survey_answers,
)

CUSTOMER_COLUMNS = COLUMNS_OF["customers"]
ENROLLMENT_COLUMNS = COLUMNS_OF["enrollments"]


def _present(conn: Connection, column: Any, ids: Iterable[str], *where: Any) -> set[str]:
    """Which of ``ids`` appear in ``column`` (rows also matching ``where``), in IN-chunks."""
    found: set[str] = set()
    for chunk in chunks(sorted(set(ids))):
        found.update(conn.scalars(select(column).where(column.in_(chunk), *where)))
    return found


def _by_fields(
    conn: Connection, name: str, table: Any, rows: Sequence[Any], key: str = "id"
) -> None:
    """Write back the ``dirty`` fields of records, one executemany per set of fields (a
    batch's rows mostly change the same fields)."""
    groups: dict[tuple[str, ...], list[Any]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row.dirty)), []).append(row)
    for fields, group in groups.items():
        if not fields:
            continue
        stmt = (
            update(table)
            .where(table.c[key] == bindparam("_key"))
            .values({f: bindparam(f) for f in fields})
        )
        params = [
            {"_key": getattr(r, key), **{f: _column_value(getattr(r, f)) for f in fields}}
            for r in sorted(group, key=lambda r: getattr(r, key))  # one lock order
        ]
        executemany(conn, f"{name}:{','.join(fields)}", stmt, params)


def _column_value(value: Any) -> Any:
    # Enum members (a Status) go to the drivers as their plain string value.
    return value.value if isinstance(value, Enum) else value


# --------------------------------------------------------------------------- customers


def load_customers(
    conn: Connection, ids: Iterable[str], *, lock: bool = False
) -> dict[str, Customer]:
    """Customers by id (missing ids are absent). ``lock`` takes row locks on PostgreSQL, in
    id order, after the enrollments' (one order everywhere rules deadlocks out)."""
    found: dict[str, Customer] = {}
    for chunk in chunks(sorted(set(ids))):
        stmt = select(customers).where(customers.c.id.in_(chunk)).order_by(customers.c.id)
        if lock and conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        for row in dicts(conn.execute(stmt)):
            found[row["id"]] = Customer.from_row(row)
    return found


def existing_customer_ids(conn: Connection, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` exist."""
    return _present(conn, customers.c.id, ids)


def insert_customers(conn: Connection, rows: Sequence[Customer]) -> None:
    """Insert new customers."""
    if rows:
        conn.execute(customers.insert(), [c.to_row() for c in rows])


def update_customers(conn: Connection, rows: Sequence[Customer]) -> None:
    """Write back the changed fields of customers."""
    _by_fields(conn, "update_customers", customers, rows)


def customer_timezones(conn: Connection) -> list[str | None]:
    """The distinct time zones customers have (None for customers without one)."""
    return list(conn.scalars(select(customers.c.timezone).distinct()))


def customers_with_birthday(
    conn: Connection, timezone: str | None, month_days: Sequence[str]
) -> list[Customer]:
    """Customers in ``timezone`` (None: those without one) whose birthday is on one of
    ``month_days`` (``MM-DD``)."""
    tz_clause = customers.c.timezone == timezone if timezone else customers.c.timezone.is_(None)
    stmt = select(customers).where(customers.c.birthday_md.in_(list(month_days)), tz_clause)
    return [Customer.from_row(r) for r in dicts(conn.execute(stmt))]


def iter_customers(
    conn: Connection, chunk: int = 5000, where: Any = None
) -> Iterable[list[Customer]]:
    """Every customer (that meets the SQL condition ``where``), in chunks, by keyset
    pagination on id (constant memory)."""
    last = ""
    while True:
        stmt = select(customers).where(customers.c.id > last)
        if where is not None:
            stmt = stmt.where(where)
        batch = dicts(conn.execute(stmt.order_by(customers.c.id).limit(chunk)))
        if not batch:
            return
        yield [Customer.from_row(r) for r in batch]
        last = batch[-1]["id"]


def suppressions_of(conn: Connection, ids: Iterable[str]) -> list[tuple[str, str, str]]:
    """(customer, channel, reason) of these customers' suppressions."""
    found: list[tuple[str, str, str]] = []
    cols = (suppressions.c.customer_id, suppressions.c.channel, suppressions.c.reason)
    for chunk in chunks(sorted(set(ids))):
        found.extend(conn.execute(select(*cols).where(cols[0].in_(chunk))).tuples())
    return found


def add_suppressions(conn: Connection, rows: Sequence[Suppression]) -> None:
    """Record unsubscribes/bounces; an existing (customer, channel) suppression is kept."""
    if rows:
        stmt = insert_stmt(conn, suppressions).on_conflict_do_nothing()
        conn.execute(
            stmt,
            [
                {
                    "customer_id": r.customer_id,
                    "channel": r.channel,
                    "reason": r.reason,
                    "created_at": r.created_at,
                }
                for r in rows
            ],
        )


def add_stage_history(conn: Connection, rows: Sequence[StageChange]) -> None:
    """Record lifecycle stage changes."""
    if rows:
        params = [
            {
                "customer_id": r.customer_id,
                "from_stage": r.from_stage,
                "to_stage": r.to_stage,
                "at": r.at,
                "reason": r.reason,
            }
            for r in rows
        ]
        executemany(conn, "add_stage_history", stage_history.insert(), params)


def add_survey_answers(conn: Connection, rows: Sequence[SurveyAnswer]) -> None:
    """Store survey answers (an answer event is stored once)."""
    if rows:
        stmt = insert_stmt(conn, survey_answers).on_conflict_do_nothing()
        conn.execute(
            stmt,
            [
                {
                    "event_id": a.event_id,
                    "enrollment_id": a.enrollment.id if a.enrollment else None,
                    "customer_id": a.customer_id,
                    "journey": a.journey,
                    "step": a.step,
                    "kind": a.kind,
                    "score": a.score,
                    "category": a.category,
                    "comment": a.comment,
                    "answered_at": a.answered_at,
                    "sentiment": a.sentiment,
                    "sentiment_score": a.sentiment_score,
                    "keywords": list(a.keywords) if a.sentiment is not None else None,
                }
                for a in rows
            ],
        )


# --------------------------------------------------------------------------- events


def existing_event_ids(conn: Connection, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` are already stored (the idempotency check)."""
    return _present(conn, events.c.id, ids)


def insert_events(
    conn: Connection, rows: Sequence[Event], *, processed_at: datetime | None = None
) -> None:
    """Store events; an id already stored is skipped (ON CONFLICT DO NOTHING)."""
    if rows:
        stmt = insert_stmt(conn, events).on_conflict_do_nothing(index_elements=["id"])
        params = [{**e.to_row(), "processed_at": processed_at} for e in rows]
        executemany(conn, "insert_events", stmt, params)


_PENDING_OF = (
    select(events)
    .where(
        events.c.customer_id.in_(bindparam("ids", expanding=True)),
        events.c.processed_at.is_(None),
        events.c.occurred_at <= bindparam("horizon"),
    )
    .order_by(events.c.seq)
)


def pending_events(conn: Connection, ids: Iterable[str], horizon: datetime) -> list[Event]:
    """Unprocessed events of these customers that occurred by ``horizon``."""
    found: list[Event] = []
    for chunk in chunks(sorted(set(ids))):
        rows = dicts(conn.execute(_PENDING_OF, {"ids": list(chunk), "horizon": horizon}))
        found.extend(Event.from_row(r) for r in rows)
    return found


def mark_events_processed(conn: Connection, rows: Sequence[Processed], now: datetime) -> None:
    """Mark a batch processed; events that could not be used keep their error, late ones
    their application time."""
    if not rows:
        return
    stmt = (
        update(events)
        .where(events.c.seq == bindparam("_seq"))
        .values(processed_at=bindparam("p"), error=bindparam("e"), applied_at=bindparam("a"))
    )
    params = [{"_seq": r.seq, "p": now, "e": r.error, "a": r.applied_at} for r in rows]
    executemany(conn, "mark_events_processed", stmt, params)


# --------------------------------------------------------------------------- versions, state


def save_versions(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Store compiled plans by (journey, version); known versions are left alone."""
    if rows:
        stmt = insert_stmt(conn, journey_versions).on_conflict_do_nothing()
        conn.execute(stmt, [dict(r) for r in rows])


def load_version(conn: Connection, journey: str, version: str) -> dict[str, Any] | None:
    """The stored plan dict of one journey version."""
    return conn.scalar(
        select(journey_versions.c.plan).where(
            journey_versions.c.journey == journey, journey_versions.c.version == version
        )
    )


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
    stmt = insert_stmt(conn, scheduler_state).values(key=key, at=at)
    stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={"at": at})
    conn.execute(stmt)


# --------------------------------------------------------------------------- enrollments


def active_enrollments(
    conn: Connection, customer_ids: Iterable[str], *, lock: bool = False
) -> list[Enrollment]:
    """Active enrollments of these customers (locked on PostgreSQL with ``lock``)."""
    found: list[Enrollment] = []
    for chunk in chunks(sorted(set(customer_ids))):
        stmt = (
            select(enrollments)
            # A bound 'active', not IS_ACTIVE: the partial due index would read every active
            # enrollment; this way the planners take the customer index.
            .where(enrollments.c.status == "active", enrollments.c.customer_id.in_(chunk))
            .order_by(enrollments.c.id)
        )
        if lock and conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        found.extend(Enrollment.from_row(r) for r in dicts(conn.execute(stmt)))
    return found


def enrollment_history(
    conn: Connection, customer_ids: Iterable[str], journeys: Iterable[str]
) -> dict[tuple[str, str], tuple[int, datetime | None]]:
    """(journey, customer) → (how many enrollments ever, when the last one ended)."""
    wanted, names = sorted(set(customer_ids)), sorted(set(journeys))
    found: dict[tuple[str, str], tuple[int, datetime | None]] = {}
    if not wanted or not names:
        return found
    e = enrollments.c
    for chunk in chunks(wanted):
        stmt = (
            select(e.journey, e.customer_id, func.count(), func.max(e.ended_at))
            .where(e.customer_id.in_(chunk), e.journey.in_(names))
            .group_by(e.journey, e.customer_id)
        )
        for journey, customer_id, count, ended in conn.execute(stmt):
            found[(journey, customer_id)] = (count, as_utc(ended) if ended else None)
    return found


def unconverted_enrollments(
    conn: Connection, customer_ids: Iterable[str], journeys: Iterable[str]
) -> list[tuple[str, GoalCandidate]]:
    """(customer, candidate) of enrollments (any status) in goal journeys not converted."""
    names = sorted(set(journeys))
    found: list[tuple[str, GoalCandidate]] = []
    if not names:
        return found
    e = enrollments.c
    for chunk in chunks(sorted(set(customer_ids))):
        stmt = select(e.id, e.journey, e.version, e.customer_id, e.entered_at).where(
            e.customer_id.in_(chunk), e.journey.in_(names), e.converted_at.is_(None)
        )
        for eid, journey, version, cid, entered in conn.execute(stmt):
            found.append((cid, GoalCandidate(journey, version, as_utc(entered), id=eid)))
    return found


def insert_enrollments(conn: Connection, rows: Sequence[Enrollment]) -> None:
    """Insert new enrollments and set their ids (None where a unique key said no: already
    active, or this trigger key already used)."""
    if not rows:
        return
    stmt = (
        insert_stmt(conn, enrollments)
        .on_conflict_do_nothing()
        .returning(enrollments.c.id, enrollments.c.customer_id, enrollments.c.journey)
    )
    params = [r.to_row() for r in rows]
    got: dict[tuple[str, str], int] = {}
    fast = fast_rows(conn, "insert_enrollments", stmt, params)
    width = len(fast[1][0]) if fast else 0
    values = "(" + ", ".join("?" * width) + ")"
    if fast and fast[0].count(values) == 1:
        # Many rows per INSERT … RETURNING (SQLite takes up to 32,766 parameters).
        sql, flat_rows = fast
        per = max(1, min(1000, 30000 // width))
        for start in range(0, len(flat_rows), per):
            chunk = flat_rows[start : start + per]
            multi = sql.replace(values, ", ".join([values] * len(chunk)))
            flat = tuple(value for row in chunk for value in row)
            for new_id, customer_id, journey in conn.exec_driver_sql(multi, flat):
                got[(journey, customer_id)] = new_id
    else:
        result = conn.execute(stmt, params)
        got = {(r.journey, r.customer_id): r.id for r in result}
    for row in rows:
        row.id = got.get((row.journey, row.customer_id))


def update_enrollments(conn: Connection, rows: Sequence[Enrollment]) -> None:
    """Write the changed fields of enrollments."""
    _by_fields(conn, "update_enrollments", enrollments, rows)


def set_converted(conn: Connection, rows: Sequence[tuple[int, datetime]]) -> None:
    """Record goal conversions (enrollment id, when)."""
    if rows:
        stmt = (
            update(enrollments)
            .where(enrollments.c.id == bindparam("_id"), enrollments.c.converted_at.is_(None))
            .values(converted_at=bindparam("c"))
        )
        executemany(conn, "set_converted", stmt, [{"_id": i, "c": at} for i, at in rows])


def add_step_runs(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append to the step history."""
    if rows:
        executemany(conn, "add_step_runs", step_runs.insert(), rows)
