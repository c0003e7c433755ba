"""Lifecycle stages: the rules that move customers forward on events, and every stage change
(recorded with its time and reason, and emitted as a ``stage.entered`` event)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from journeys.expressions import truthy
from journeys.runtime.batch import Batch, CustomerState
from journeys.state import Customer, Event, StageChange

STAGE_ENTERED = "stage.entered"


def apply_rules(
    batch: Batch, state: CustomerState, event: Event, ctx: dict[str, Any], at: datetime
) -> Event | None:
    """Move the customer to the furthest stage the rules for ``event`` allow (rules only move
    forward); returns the ``stage.entered`` event of a change, else None."""
    lifecycle = batch.plans.lifecycle
    customer = state.customer
    assert customer is not None
    best: str | None = None
    for rule in batch.plans.rules_by_event.get(event.type, ()):
        if rule.when and not truthy(rule.when, ctx):
            continue
        if lifecycle.rank(rule.stage) > lifecycle.rank(best or customer.stage):
            best = rule.stage
    if best is None:
        return None
    return change_stage(batch, customer, best, at, f"rule on {event.type}", cause=event.id)


def change_stage(
    batch: Batch, customer: Customer, stage: str, at: datetime, reason: str, *, cause: str
) -> Event | None:
    """Put ``customer`` in ``stage``: record it and return the ``stage.entered`` event the
    engine emits (None when they already were there). ``cause`` makes the event's id
    deterministic."""
    old = customer.move_to_stage(stage, at)
    if old == stage:
        return None
    batch.changes.stages.append(StageChange(customer.id, old, stage, at, reason[:200]))
    event = Event(
        id=batch.stage_event_id(customer.id, cause, stage, at),
        type=STAGE_ENTERED,
        customer_id=customer.id,
        occurred_at=at,
        data={"stage": stage, "from": old},
        received_at=batch.now,
        source="engine",
    )
    batch.changes.emitted.append(event)
    return event
