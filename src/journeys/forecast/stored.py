"""The history of a database, read only (:class:`~journeys.forecast.replay.History` over
:mod:`journeys.store.history`)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime

from sqlalchemy import Connection

from journeys.state import Customer, Event, Suppression
from journeys.store import history as q

BATCH = 5000
"""Events or customers read at a time."""


class StoredHistory:
    """Events, customers and suppressions of one open read-only connection."""

    def __init__(self, conn: Connection, batch: int = BATCH) -> None:
        self.conn = conn
        self.batch = batch

    def event_batches(self, start: datetime, end: datetime) -> Iterator[list[Event]]:
        """Events of ``[start, end)`` in time order, ``batch`` at a time, without those the
        engine emitted (a replay emits them again)."""
        return q.event_batches(self.conn, start, end, self.batch)

    def customers(self, ids: Collection[str] | None, at: datetime) -> Iterator[list[Customer]]:
        """Profiles as they are now, but in the lifecycle stage they had at ``at`` (from the
        stage history), so that the replay moves them through their stages again."""
        if ids is None:
            batches: Iterator[list[Customer]] = q.customer_batches(self.conn, self.batch)
        else:
            batches = iter([q.customers_by_id(self.conn, sorted(ids))])
        for batch in batches:
            before = q.stages_before(self.conn, [c.id for c in batch], at)
            for customer in batch:
                if customer.id in before:
                    customer.stage = before[customer.id]
            yield batch

    def suppressions(self, ids: Sequence[str]) -> list[Suppression]:
        """These customers' stored suppressions."""
        return q.suppressions_of(self.conn, ids)
