"""Read-only history for ``journeys forecast``: stored events of a period, customers, their
stage at a past instant, suppressions and the newest stored plan of a journey.

Every function takes a ``Connection`` opened with :func:`journeys.store.kpis.reading` (on
SQLite a deferred ``BEGIN``: no write lock) and only reads. Events stream in time order in
batches through one cursor, so a month of a shop's events is never all in memory at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, not_, select

from journeys.state import Customer, Event, Suppression
from journeys.store.tables import customers, events, journey_versions, stage_history, suppressions

ENGINE_SOURCES = ("engine",)
"""Sources of the events the engine emits itself (``stage.entered``); with ``journey:<id>``
(``emit`` steps) a replay produces them again, so they are not read."""

ID_CHUNK = 500
"""Ids per ``IN (…)`` list (well under SQLite's limit of bound parameters)."""


def _chunks(ids: Iterable[str], size: int = ID_CHUNK) -> Iterator[list[str]]:
    chunk: list[str] = []
    for cid in ids:
        chunk.append(cid)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def event_batches(
    conn: Connection, start: datetime, end: datetime, size: int = 5000
) -> Iterator[list[Event]]:
    """The events that occurred in ``[start, end)``, by time then arrival, ``size`` at a
    time; events the engine emitted are left out (:data:`ENGINE_SOURCES`)."""
    stmt = (
        select(
            events.c.seq,
            events.c.id,
            events.c.type,
            events.c.customer_id,
            events.c.occurred_at,
            events.c.received_at,
            events.c.data,
            events.c.source,
        )
        .where(
            and_(events.c.occurred_at >= start, events.c.occurred_at < end),
            events.c.source.not_in(ENGINE_SOURCES),
            not_(events.c.source.startswith("journey:")),
        )
        .order_by(events.c.occurred_at, events.c.seq)
    )
    result = conn.execution_options(yield_per=size).execute(stmt)
    for part in result.mappings().partitions():
        yield [Event.from_row(row) for row in part]


def customer_batches(conn: Connection, size: int = 5000) -> Iterator[list[Customer]]:
    """Every customer, by id, ``size`` at a time."""
    last: str | None = None
    while True:
        stmt = select(customers).order_by(customers.c.id).limit(size)
        if last is not None:
            stmt = stmt.where(customers.c.id > last)
        rows = conn.execute(stmt).mappings().all()
        if not rows:
            return
        yield [Customer.from_row(row) for row in rows]
        last = rows[-1]["id"]


def customers_by_id(conn: Connection, ids: Iterable[str]) -> list[Customer]:
    """The stored customers among ``ids`` (missing ones left out)."""
    found: list[Customer] = []
    for chunk in _chunks(ids):
        rows = conn.execute(select(customers).where(customers.c.id.in_(chunk))).mappings()
        found += [Customer.from_row(row) for row in rows]
    return found


def stages_before(conn: Connection, ids: Sequence[str], at: datetime) -> dict[str, str | None]:
    """For the customers among ``ids`` whose stage changed at or after ``at``: the stage they
    had before the first of those changes (their stage at ``at``)."""
    found: dict[str, str | None] = {}
    for chunk in _chunks(ids):
        stmt = (
            select(stage_history.c.customer_id, stage_history.c.from_stage)
            .where(stage_history.c.customer_id.in_(chunk), stage_history.c.at >= at)
            .order_by(stage_history.c.customer_id, stage_history.c.at, stage_history.c.id)
        )
        for cid, stage in conn.execute(stmt):
            found.setdefault(cid, stage)
    return found


def suppressions_of(conn: Connection, ids: Sequence[str]) -> list[Suppression]:
    """The stored suppressions (unsubscribes, bounces, complaints) of these customers."""
    found: list[Suppression] = []
    for chunk in _chunks(ids):
        stmt = select(
            suppressions.c.customer_id,
            suppressions.c.channel,
            suppressions.c.reason,
            suppressions.c.created_at,
        ).where(suppressions.c.customer_id.in_(chunk))
        found += [Suppression(*row) for row in conn.execute(stmt)]
    return found


def newest_plan(conn: Connection, journey: str) -> dict[str, Any] | None:
    """The plan (``Plan.to_dict()``) of the version of ``journey`` the store saved last: the
    one the runner runs. None if it never ran."""
    stmt = (
        select(journey_versions.c.plan)
        .where(journey_versions.c.journey == journey)
        .order_by(journey_versions.c.created_at.desc(), journey_versions.c.version)
        .limit(1)
    )
    plan = conn.execute(stmt).scalar()
    return dict(plan) if plan is not None else None
