"""Replaying stored history against versions of a journey, in virtual time, in memory.

Each version runs on its own :class:`~journeys.simulate.VirtualRun` (the real runtime on a
fresh :class:`~journeys.store.memory.MemoryStore`, nothing sent). The history is read once,
a batch of events at a time, and fed to every run: before a batch goes in, each run passes
up to just before its first event, so no event ever arrives late and the memory holds one
batch of pending events, not the month. Customers are loaded as their first event comes (all
of them first when a date or schedule trigger may enroll anyone).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from journeys.forecast.tally import QUIET_HOURS, RunTally, tally
from journeys.runtime.render import Renderer
from journeys.simulate import VirtualRun
from journeys.spec import Project
from journeys.state import Customer, Event, MessageDraft, Suppression
from journeys.store.memory import MemoryTx

TICK = timedelta(microseconds=1)
"""The resolution of stored times: a pass up to ``t - TICK`` leaves the events at ``t``."""


class History(Protocol):
    """Where a forecast reads the past (:class:`journeys.forecast.stored.StoredHistory`)."""

    def event_batches(self, start: datetime, end: datetime) -> Iterator[list[Event]]:
        """Events of ``[start, end)`` in time order, in batches."""
        ...

    def customers(self, ids: Collection[str] | None, at: datetime) -> Iterator[list[Customer]]:
        """The customers among ``ids`` (every one when None), in batches, in their lifecycle
        stage as of ``at``."""
        ...

    def suppressions(self, ids: Sequence[str]) -> list[Suppression]:
        """These customers' suppressions."""
        ...


KEPT = (
    "enrollment_id",
    "step",
    "attempt",
    "journey",
    "customer_id",
    "kind",
    "message_kind",
    "template",
    "channel",
    "status",
    "due_at",
    "error",
)
"""What a replay keeps of an outbox row: its key, what frequency caps count, what a forecast
reports (no recipient, no content)."""


class JourneyRenderer(Renderer):
    """Renders only one journey's messages (to catch templates that fail on real profiles)
    and keeps no content; the other journeys' messages only count for caps, unrendered."""

    def __init__(self, base: Renderer, journey: str) -> None:
        super().__init__(base.settings, base.templates, base.clock)
        self.journey = journey

    def outbox_row(self, message: MessageDraft) -> dict[str, Any]:
        """The row of ``message``, only its :data:`KEPT` keys."""
        if message.enrollment.journey == self.journey:
            row = super().outbox_row(message)
        else:
            # Any status but pending skips rendering; the row keeps the real one.
            row = super().outbox_row(replace(message, status="unrendered"))
            row["status"] = message.status
        return {key: row[key] for key in KEPT}


class ForecastRun:
    """One version of the journey replayed: its virtual run and what it folded so far."""

    def __init__(self, project: Project, journey: str, start: datetime) -> None:
        self.run = VirtualRun(project, start)
        self.journey = journey
        self.version = project.plans[journey].version
        runtime = self.run.service.runtime
        runtime.renderer = JourneyRenderer(runtime.renderer, journey)
        self.deferrals: list[tuple[int, str, datetime]] = []

    @property
    def timed(self) -> bool:
        """Whether a date or schedule trigger may enroll customers without an event."""
        return bool(self.run.service.sweeper.plans)

    def add_customers(self, customers: list[Customer], suppressed: list[Suppression]) -> None:
        """Put customers (and their suppressions) in the run's store."""

        def work(tx: MemoryTx) -> None:
            tx.insert_customers(customers)
            tx.add_suppressions(suppressed)

        self.run.store.transaction(work)
        self.run.service.sweeper.profiles_changed()

    def add_events(self, events: list[Event]) -> None:
        """Store events as pending; the next pass applies them."""
        self.run.store.transaction(lambda tx: tx.insert_events(events))

    def advance(self, to: datetime) -> None:
        """Pass up to ``to``, then fold and forget what no later pass reads: step runs (the
        journey's quiet-hours waits are kept) and processed events."""
        self.run.advance(to)
        for row in self.run.store.take_step_runs():
            if row["journey"] == self.journey and row["outcome"] == QUIET_HOURS:
                self.deferrals.append((row["enrollment_id"], row["step"], row["at"]))
        self.run.store.forget_processed_events()

    def tally(self) -> RunTally:
        """What this version did."""
        store = self.run.store
        return tally(
            self.version,
            (e for e in store.all_enrollments() if e.journey == self.journey),
            (r for r in store.all_outbox() if r["journey"] == self.journey),
            self.deferrals,
        )


@dataclass
class Replayed:
    """How much history a forecast replayed."""

    events: int = 0
    customers: int = 0


def replay(
    runs: Sequence[ForecastRun], history: History, start: datetime, until: datetime
) -> Replayed:
    """Feed the history of ``[start, until)`` to every run and run them up to ``until``."""
    done = Replayed()
    loaded: set[str] = set()
    if any(run.timed for run in runs):
        _load(runs, history, None, start, loaded)
    for batch in history.event_batches(start, until):
        before = batch[0].occurred_at - TICK
        for run in runs:
            run.advance(before)
        _load(runs, history, {e.customer_id for e in batch} - loaded, start, loaded)
        for run in runs:
            run.add_events(batch)
        done.events += len(batch)
    for run in runs:
        run.advance(until)
    done.customers = len(loaded)
    return done


def _load(
    runs: Sequence[ForecastRun],
    history: History,
    ids: Collection[str] | None,
    at: datetime,
    loaded: set[str],
) -> None:
    if ids is not None and not ids:
        return
    for batch in history.customers(ids, at):
        suppressed = history.suppressions([c.id for c in batch])
        for run in runs:
            run.add_customers(batch, suppressed)
        loaded.update(c.id for c in batch)
