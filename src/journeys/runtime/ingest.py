"""Intake: storing CRM events (deduplicated by id) and importing customer profiles.

Records come parsed (:mod:`journeys.sources` reads files) and are normalised and checked here
(:mod:`.records`); a bad record is reported with its position and skipped, the good ones are
kept. Profiles merge the one way events merge them (:meth:`journeys.state.Customer.update_profile`).
Matching happens later, in a pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from journeys.runtime.records import (
    CREATING_EVENTS,
    RecordError,
    normalise_customer,
    normalise_event,
)
from journeys.sources import BadLine
from journeys.state import Customer, Event
from journeys.store.interface import Store, Tx

INGEST_CHUNK = 5000


@dataclass
class RecordReport:
    """The outcome of importing or ingesting records: counts and every bad record by line."""

    accepted: int = 0
    duplicates: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    customers_changed: bool = False

    @property
    def ok(self) -> bool:
        """No bad records."""
        return not self.errors


def _chunks(records: Iterable[Any], first_line: int) -> Iterator[list[tuple[int, Any]]]:
    chunk: list[tuple[int, Any]] = []
    for offset, record in enumerate(records):
        if record is None:  # a blank line keeps the numbering
            continue
        chunk.append((first_line + offset, record))
        if len(chunk) >= INGEST_CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def import_customers(
    store: Store, records: Iterable[Any], now: datetime, initial_stage: str, first_line: int = 1
) -> RecordReport:
    """Upsert customer profiles. Importing the same file twice changes nothing."""
    report = RecordReport()
    for chunk in _chunks(records, first_line):
        good: dict[str, dict[str, Any]] = {}
        for line, raw in chunk:
            if isinstance(raw, BadLine):
                report.errors.append((line, raw.message))
            elif not isinstance(raw, Mapping):
                report.errors.append((line, "a customer must be a JSON object or CSV row"))
            else:
                try:
                    values = normalise_customer(raw)
                    good[str(values.pop("id"))] = values
                except RecordError as exc:
                    report.errors.append((line, str(exc)))

        def write(tx: Tx, good: dict[str, dict[str, Any]] = good) -> tuple[int, int]:
            existing = tx.load_customers(good)
            new, changed, unchanged = [], [], 0
            for cid, values in good.items():
                customer = existing.get(cid)
                if customer is None:
                    customer = Customer(id=cid, created_at=now, updated_at=now, stage=initial_stage)
                    customer.update_profile(values, now)
                    new.append(customer)
                elif customer.update_profile(values, now):
                    changed.append(customer)
                else:
                    unchanged += 1
            tx.insert_customers(new)
            tx.update_customers(changed)
            return len(new) + len(changed), unchanged

        accepted, unchanged = store.transaction(write)
        report.accepted += accepted
        report.unchanged += unchanged
        report.customers_changed |= accepted > 0
    return report


def ingest_events(
    store: Store, records: Iterable[Any], now: datetime, source: str = "api", first_line: int = 1
) -> RecordReport:
    """Store events, deduplicated by id. An event for a customer nobody imported is refused
    unless it creates the customer (``customer.updated`` and friends)."""
    report = RecordReport()
    created: set[str] = set()
    for chunk in _chunks(records, first_line):
        parsed: list[tuple[int, dict[str, Any]]] = []
        for line, raw in chunk:
            if isinstance(raw, BadLine):
                report.errors.append((line, raw.message))
                continue
            try:
                parsed.append((line, normalise_event(raw)))
            except RecordError as exc:
                report.errors.append((line, str(exc)))

        def write(
            tx: Tx, parsed: list[tuple[int, dict[str, Any]]] = parsed
        ) -> tuple[int, int, list[tuple[int, str]]]:
            errors: list[tuple[int, str]] = []
            duplicates = 0
            known = tx.existing_customer_ids({e["customer_id"] for _, e in parsed})
            stored = tx.existing_event_ids({e["id"] for _, e in parsed})
            rows: list[Event] = []
            seen: set[str] = set()
            for line, event in parsed:
                cid = event["customer_id"]
                if event["type"] in CREATING_EVENTS:
                    created.add(cid)
                elif cid not in known and cid not in created:
                    errors.append(
                        (
                            line,
                            f"unknown customer {cid!r}: import it first "
                            "(journeys import customers) or send customer.updated",
                        )
                    )
                    continue
                if event["id"] in stored or event["id"] in seen:
                    duplicates += 1
                    continue
                seen.add(event["id"])
                rows.append(Event(**event, received_at=now, source=source))
            tx.insert_events(rows)
            return len(rows), duplicates, errors

        accepted, duplicates, errors = store.transaction(write)
        report.accepted += accepted
        report.duplicates += duplicates
        report.errors.extend(errors)
    return report
