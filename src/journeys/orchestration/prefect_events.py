"""CRM events as Prefect events, and back into the journeys event store.

A CRM event (docs/events.md) travels through Prefect as::

    event    = "crm.<type>"                                    e.g. crm.cart.updated
    resource = {"prefect.resource.id": "journeys.customer.<customer id>"}
    payload  = {"id": <CRM event id>, "occurred_at": <ISO 8601>, "data": {...}}
    occurred = the time it was emitted (the business time is payload.occurred_at)
    id       = uuid5(<CRM event id>), so emitting the same CRM event twice is one Prefect event

Deployments are *triggered* by these events, but the event itself is not handed to the run as a
parameter: the payload may carry personal data, and one run must handle many events. Instead a
run *pulls* every ``crm.*`` event since a cursor from the Prefect events API
(:func:`pull_crm_events`) and ingests them into the deduplicated event store (the CRM id is the
idempotency key there), then processes everything pending. The cursor is a Prefect variable; each
pull re-reads a short overlap before it, because the server persists events in batches (every
few seconds), so an event can become readable a little after a later one. Re-reading is harmless:
the store ignores ids it already has.

Emit the Prefect event with ``occurred`` = now (the default of :func:`prefect.events.emit_event`):
the pull selects on ``occurred``, so an event emitted with an ``occurred`` older than the cursor
minus the overlap would not be pulled. Put the CRM's own time in ``payload.occurred_at``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from journeys.clock import iso, parse_instant

CRM_EVENT_PREFIX = "crm."
"""Prefect event names of CRM events start with this."""

CUSTOMER_RESOURCE_PREFIX = "journeys.customer."
"""``prefect.resource.id`` of a customer: this prefix and the customer id."""

CURSOR_VARIABLE = "journeys_crm_events_cursor"
"""Prefect variable holding the time up to which ``crm.*`` events have been pulled."""

DEFAULT_OVERLAP = timedelta(seconds=30)
"""How far before the cursor each pull starts again (the server persists events in batches)."""

DEFAULT_LOOKBACK = timedelta(hours=1)
"""Where the first pull starts when there is no cursor yet."""

_ID_NAMESPACE = uuid.UUID("6b1f3f0e-4c1e-4f5e-9d7a-6a6f75726e65")
"""Namespace of the Prefect event ids derived from CRM event ids."""

PAGE_SIZE = 50
"""The Prefect server returns at most 50 events per page of ``/events/filter``."""


class IngestReportLike(Protocol):
    """What :meth:`journeys.service.JourneyService.ingest` returns."""

    accepted: int
    duplicates: int
    errors: Sequence[Any]


class Ingestor(Protocol):
    """Anything with the service's ``ingest`` method."""

    def ingest(
        self, events: Iterable[Mapping[str, Any]], source: str = "api"
    ) -> IngestReportLike: ...


# --------------------------------------------------------------------------- conversion


def prefect_event_name(event_type: str) -> str:
    """``cart.updated`` → ``crm.cart.updated``."""
    return f"{CRM_EVENT_PREFIX}{event_type}"


def customer_resource_id(customer_id: str) -> str:
    """``c-1001`` → ``journeys.customer.c-1001``."""
    return f"{CUSTOMER_RESOURCE_PREFIX}{customer_id}"


def prefect_event_id(crm_event_id: str) -> uuid.UUID:
    """The Prefect event id of a CRM event: stable, so a re-emitted event keeps its id."""
    return uuid.uuid5(_ID_NAMESPACE, crm_event_id)


def to_prefect_event(crm_event: Mapping[str, Any], emitted_at: datetime | None = None) -> Any:
    """A :class:`prefect.events.Event` for a CRM event (``id``, ``type``, ``customer_id`` …).

    ``occurred`` is ``emitted_at`` (default now); the CRM time goes in ``payload.occurred_at``.
    """
    from prefect.events import Event

    event_id = str(crm_event["id"])
    payload: dict[str, Any] = {"id": event_id, "data": dict(crm_event.get("data") or {})}
    occurred_at = crm_event.get("occurred_at")
    if occurred_at is not None:
        payload["occurred_at"] = occurred_at if isinstance(occurred_at, str) else iso(occurred_at)
    return Event(
        event=prefect_event_name(str(crm_event["type"])),
        resource={"prefect.resource.id": customer_resource_id(str(crm_event["customer_id"]))},
        occurred=emitted_at or datetime.now(UTC),
        payload=payload,
        id=prefect_event_id(event_id),
    )


def from_prefect_event(event: Any) -> dict[str, Any] | None:
    """The CRM event carried by a Prefect event, or None if it is not a ``crm.*`` event.

    Events sent by other tools without our payload shape still work: the id defaults to
    ``prefect-<event id>``, the time to the event's ``occurred`` and the data to ``{}``.
    """
    name: str = event.event
    resource_id: str = event.resource.id
    if not name.startswith(CRM_EVENT_PREFIX) or not resource_id.startswith(
        CUSTOMER_RESOURCE_PREFIX
    ):
        return None
    payload: Mapping[str, Any] = event.payload or {}
    data = payload.get("data")
    return {
        "id": str(payload.get("id") or f"prefect-{event.id}"),
        "type": name[len(CRM_EVENT_PREFIX) :],
        "customer_id": resource_id[len(CUSTOMER_RESOURCE_PREFIX) :],
        "occurred_at": str(payload.get("occurred_at") or iso(event.occurred)),
        "data": dict(data) if isinstance(data, Mapping) else {},
    }


# --------------------------------------------------------------------------- emitting


async def aemit_crm_events(events: Iterable[Mapping[str, Any]]) -> int:
    """Send CRM events to the Prefect API (``PREFECT_API_URL``) over one connection."""
    from prefect.events import get_events_client

    count = 0
    async with get_events_client() as client:
        for crm_event in events:
            await client.emit(to_prefect_event(crm_event))
            count += 1
    return count


def emit_crm_events(events: Iterable[Mapping[str, Any]]) -> int:
    """Synchronous :func:`aemit_crm_events` (not for use inside a running event loop)."""
    return asyncio.run(aemit_crm_events(events))


# --------------------------------------------------------------------------- pulling


def read_crm_events(since: datetime, until: datetime) -> Iterator[dict[str, Any]]:
    """Every ``crm.*`` event that occurred in ``[since, until]``, oldest first, as CRM events."""
    from prefect import get_client
    from prefect.events.filters import (
        EventFilter,
        EventNameFilter,
        EventOccurredFilter,
        EventOrder,
    )

    event_filter = EventFilter(
        occurred=EventOccurredFilter(since=since, until=until),
        event=EventNameFilter(prefix=[CRM_EVENT_PREFIX]),
        order=EventOrder.ASC,
    )
    with get_client(sync_client=True) as client:
        page = client.read_events(filter=event_filter, limit=PAGE_SIZE)
        while True:
            for received in page.events:
                crm_event = from_prefect_event(received)
                if crm_event is not None:
                    yield crm_event
            if not page.next_page:
                return
            page = client.read_events_page(str(page.next_page))


def read_cursor() -> datetime | None:
    """The time up to which ``crm.*`` events were pulled, or None before the first pull."""
    from prefect.variables import Variable

    value = Variable.get(CURSOR_VARIABLE, default=None)
    return parse_instant(value) if isinstance(value, str) and value else None


def write_cursor(until: datetime) -> None:
    """Move the cursor forward to ``until`` (never backwards)."""
    from prefect.variables import Variable

    current = read_cursor()
    if current is not None and current >= until:
        return
    Variable.set(CURSOR_VARIABLE, iso(until) or "", overwrite=True)


@dataclass(frozen=True)
class PullReport:
    """What one pull did; counts and times only (no event content)."""

    since: datetime
    until: datetime
    read: int
    accepted: int
    duplicates: int
    errors: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for flow results and logs."""
        return {
            "since": iso(self.since),
            "until": iso(self.until),
            "read": self.read,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "errors": self.errors,
        }


def pull_crm_events(
    ingestor: Ingestor,
    *,
    now: datetime | None = None,
    overlap: timedelta = DEFAULT_OVERLAP,
    lookback: timedelta = DEFAULT_LOOKBACK,
    batch_size: int = 1000,
) -> PullReport:
    """Ingest every ``crm.*`` Prefect event since the cursor (minus ``overlap``) into the store.

    The cursor only moves after everything up to ``now`` has been ingested, so a run that fails
    half-way leaves it where it was and the next pull reads those events again (the store
    deduplicates them by id). Concurrent pulls are safe for the same reason.
    """
    until = now or datetime.now(UTC)
    cursor = read_cursor()
    since = (cursor - overlap) if cursor is not None else until - lookback
    read = accepted = duplicates = errors = 0
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal accepted, duplicates, errors
        if batch:
            report = ingestor.ingest(batch, source="prefect")
            accepted += report.accepted
            duplicates += report.duplicates
            errors += len(report.errors)
            batch.clear()

    for crm_event in read_crm_events(since, until):
        read += 1
        batch.append(crm_event)
        if len(batch) >= batch_size:
            flush()
    flush()
    write_cursor(until)
    return PullReport(since, until, read, accepted, duplicates, errors)
