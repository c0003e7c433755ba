"""One customer's timeline: pending events and due steps, merged in event time.

This is what makes the outcome independent of processing: whatever batches, files or passes
the events came in, a customer's events and timers run in the order of their times, and every
step runs at its own time, seeing exactly the events that happened before it.

Order at one instant: events first (by id; events the engine emits at that instant after the
ones that caused them), then the steps due at it (by journey id). A late event (one that
occurred at or before the point the engine had already processed up to) applies at that
point instead of its own time; :mod:`.batch` marks it.
"""

from __future__ import annotations

import heapq
import logging
from datetime import datetime

from journeys.expressions import ExpressionError
from journeys.runtime.advance import advance
from journeys.runtime.batch import Batch, CustomerState
from journeys.runtime.match import match
from journeys.runtime.records import RecordError
from journeys.runtime.setpath import StepCounts
from journeys.state import Enrollment, Event, Processed

log = logging.getLogger("journeys.timeline")


def run_timeline(
    batch: Batch,
    state: CustomerState,
    horizon: datetime,
    counts: StepCounts,
    *,
    until_events_done: bool = False,
) -> int:
    """Run everything of ``state``'s customer that happens up to ``horizon``, in time order,
    counting steps per ``journey.step`` in ``counts``; returns how many steps ran.

    ``until_events_done`` stops once the last event has applied: steps due at its instant or
    later are left due (the pass runs them next, grouped by step), which changes nothing in
    their order."""
    queue: list[tuple[datetime, int, int, Event]] = []
    for order, event in enumerate(state.events):
        heapq.heappush(queue, (event.applied_at or event.occurred_at, 0, order, event))
    emitted_order = len(state.events)
    steps = 0
    while True:
        due = _next_due(state, horizon)
        if queue and (due is None or queue[0][0] <= due.wake_at):  # type: ignore[operator]
            at, _, _, event = heapq.heappop(queue)
            for new in _apply(batch, state, event, at):
                emitted_order += 1
                heapq.heappush(queue, (new.occurred_at, 1, emitted_order, new))
            continue
        if due is None or (until_events_done and not queue):
            return steps
        if steps >= batch.rt.max_steps:
            log.warning(
                "customer %s ran %d steps in one pass; the rest runs in the next one",
                state.id,
                steps,
            )
            return steps
        steps += 1
        counts.add(due.journey, due.step, 1)
        for new in advance(batch, state, due):
            emitted_order += 1
            heapq.heappush(queue, (new.occurred_at, 1, emitted_order, new))


def _next_due(state: CustomerState, horizon: datetime) -> Enrollment | None:
    """The active enrollment due first (by wake time, then journey id) up to ``horizon``."""
    best = None
    for enrollment in state.active:
        wake = enrollment.wake_at
        if wake is None or wake > horizon:
            continue
        if best is None or (wake, enrollment.journey) < (best.wake_at, best.journey):
            best = enrollment
    return best


def _apply(batch: Batch, state: CustomerState, event: Event, at: datetime) -> list[Event]:
    """Match one event; a stored event is marked processed (with its error, if any)."""
    error: str | None = None
    emitted: list[Event] = []
    try:
        emitted = match(batch, state, event, at)
    except (RecordError, ExpressionError) as exc:
        error = str(exc)[:500]
    if event.seq is not None:
        batch.changes.processed.append(Processed(event.seq, error, event.applied_at))
    return emitted
