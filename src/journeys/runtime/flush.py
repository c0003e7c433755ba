"""Writing a batch: every change in a handful of statements, in the order ids need.

New enrollments go in first (their ids are what step runs, answers and outbox rows point to);
messages are rendered then, and the rest follows. Everything runs in the caller's transaction.
"""

from __future__ import annotations

import logging
from typing import Any

from journeys.runtime.batch import Batch
from journeys.state import Changes, Enrollment

log = logging.getLogger("journeys.flush")


def flush(batch: Batch) -> Changes:
    """Write ``batch.changes`` through its transaction; returns them."""
    tx, changes = batch.tx, batch.changes
    changes.note_profiles()
    tx.insert_customers(list(changes.new_customers.values()))
    tx.update_customers([c for c in changes.customers.values() if c.dirty])
    saved = _insert_enrollments(batch)
    tx.update_enrollments([e for e in changes.enrollments if e.dirty])
    tx.set_converted(changes.conversions)
    tx.add_step_runs(
        [
            {"enrollment_id": e.id, "journey": e.journey, "step": s, "at": at, "outcome": o}
            for e in (*changes.enrollments, *saved)
            for s, at, o in e.history
        ]
    )
    tx.add_suppressions(changes.suppressions)
    tx.add_stage_history(changes.stages)
    tx.add_survey_answers(
        [a for a in changes.answers if a.enrollment is None or a.enrollment.id is not None]
    )
    renderer = batch.rt.renderer
    rows: list[dict[str, Any]] = [
        renderer.outbox_row(d) for d in changes.drafts if d.enrollment.id is not None
    ]
    tx.add_outbox(rows)
    tx.insert_events(changes.emitted, processed_at=batch.now)
    tx.mark_events_processed(changes.processed, batch.now)
    for enrollment in (*changes.enrollments, *saved):
        enrollment.history.clear()
        enrollment.dirty.clear()
    for customer in (*changes.customers.values(), *changes.new_customers.values()):
        customer.dirty.clear()
    return changes


def _insert_enrollments(batch: Batch) -> list[Enrollment]:
    """Insert the batch's new enrollments; returns those stored (with their ids). A unique key
    may refuse one (the trigger key of a date or schedule fire already used): it is dropped
    with its effects."""
    new = batch.changes.new_enrollments
    if not new:
        return []
    batch.tx.insert_enrollments(new)
    refused = [e for e in new if e.id is None]
    if refused:
        log.info("%d enrollment(s) already existed (trigger key used); skipped", len(refused))
    return [e for e in new if e.id is not None]
