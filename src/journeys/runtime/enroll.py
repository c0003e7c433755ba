"""Entering a journey: the re-entry rules and the new enrollment."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from journeys.plan import Plan
from journeys.runtime.batch import Batch, CustomerState
from journeys.state import Enrollment, GoalCandidate


def may_enter(state: CustomerState, plan: Plan, at: datetime) -> bool:
    """Whether the customer may enter ``plan`` at ``at``: not while an enrollment in it is
    active, never again under ``re_entry: never``, not within the cooldown after the last
    one ended."""
    if any(e.journey == plan.journey for e in state.active):
        return False
    count, last_end = state.past.get(plan.journey, (0, None))
    if not count:
        return True
    if plan.re_entry == "never":
        return False
    return not (
        plan.re_entry == "after_exit"
        and plan.cooldown_seconds
        and last_end is not None
        and at < last_end + timedelta(seconds=plan.cooldown_seconds)
    )


def enroll(
    batch: Batch,
    state: CustomerState,
    plan: Plan,
    at: datetime,
    trigger: dict[str, Any] | None,
    trigger_key: str | None = None,
) -> Enrollment | None:
    """Enroll the customer in ``plan`` at ``at`` (its first step due then) if the re-entry
    rules allow; ``trigger`` is the event view the journey's expressions see as ``event``."""
    if not may_enter(state, plan, at):
        return None
    enrollment = Enrollment(
        journey=plan.journey,
        version=plan.version,
        customer_id=state.id,
        entered_at=at,
        step=plan.start,
        wake_at=at,
        vars={"event": trigger} if trigger else {},
        trigger_key=trigger_key,
    )
    state.active.append(enrollment)
    count, last_end = state.past.get(plan.journey, (0, None))
    state.past[plan.journey] = (count + 1, last_end)
    batch.changes.new_enrollments.append(enrollment)
    if plan.goal:
        state.goals.append(GoalCandidate(plan.journey, plan.version, at, enrollment))
    return enrollment


def ended(state: CustomerState, enrollment: Enrollment) -> None:
    """Forget an enrollment that just ended (it no longer blocks re-entry but starts the
    cooldown)."""
    if enrollment in state.active:
        state.active.remove(enrollment)
    count, _ = state.past.get(enrollment.journey, (1, None))
    state.past[enrollment.journey] = (count, enrollment.ended_at)
