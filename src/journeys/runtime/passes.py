"""The pass: everything due up to now, in event time. The embedded runner's tick, the
PostgreSQL workers, ``journeys simulate`` and the Prefect flows all run this one function.

A pass walks from the last sweep of the date and schedule triggers to ``now`` in segments that
end at each fire instant. In a segment, up to its end ``h``:

1. **set-based**: steps that need no Python run in SQL for whole chunks (:mod:`.setpath`),
   for customers with no pending event and nothing else due (so it may go first);
2. **customers**: every other customer with a pending event or a step due by ``h`` runs its
   timeline (:mod:`.timeline`) to ``h``, a batch of customers per transaction;

then the fires at ``h`` enroll whom they select, seeing every profile as it was at ``h``.
Each group of work is a *unit* with a label: ``set-based`` and ``customers`` for the runner,
which runs units directly. A Prefect flow (``by_step``) runs finer units, each as a task run
of that name: ``events`` (customers with pending events, until their last event has applied),
then per due step ``<journey>.<step>`` (its set-based chunks, then its other customers), and
``sweep:<journey>`` for the fires.

A pass that finished everything up to ``now`` records it as the *watermark*: an event stored
later that occurred before it is late, and applies at the watermark instead of its own time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import Literal

from journeys.runtime.batch import Batch, Runtime
from journeys.runtime.flush import flush
from journeys.runtime.setpath import StepCounts, advance_set
from journeys.runtime.sweep import Fire, Sweeper
from journeys.runtime.timeline import run_timeline
from journeys.store.interface import Store, Tx

log = logging.getLogger("journeys.pass")

WATERMARK = "pass:watermark"
"""Scheduler-state key: every customer's timeline has run up to this instant."""

UnitRunner = Callable[[str, Callable[[], int]], int]
"""Runs one unit of a pass (its label, its work returning a count); returns the count."""


def run_directly(label: str, work: Callable[[], int]) -> int:
    """The default :data:`UnitRunner`: just run it."""
    return work()


def cursor_key(journey: str) -> str:
    """Scheduler-state key of a timed trigger's cursor (its last swept instant)."""
    return f"trigger:{journey}"


@dataclass
class PassReport:
    """What one pass did."""

    events: int = 0
    late: int = 0
    enrolled_by_time: int = 0
    customers: int = 0
    steps: StepCounts = field(default_factory=StepCounts)
    complete: bool = True
    """Whether everything up to now was done (no customer held by another worker)."""

    @property
    def busy(self) -> bool:
        """Whether the pass did anything."""
        return bool(self.events or self.enrolled_by_time or self.steps.total)

    def as_dict(self) -> dict[str, int]:
        """Flat counts: ``events``, ``late_events``, ``enrolled_by_time``, ``journey.step``."""
        return {
            "events": self.events,
            "late_events": self.late,
            "enrolled_by_time": self.enrolled_by_time,
            **dict(self.steps.counts),
        }


class Pass:
    """One pass over a store at ``now`` (see the module docstring)."""

    def __init__(
        self,
        rt: Runtime,
        store: Store,
        sweeper: Sweeper,
        now: datetime,
        *,
        run_unit: UnitRunner = run_directly,
        by_step: bool = False,
    ) -> None:
        self.rt, self.store, self.sweeper, self.now = rt, store, sweeper, now
        self.run_unit = run_unit
        self.by_step = by_step
        """Run set-based steps one (journey, step) unit at a time (Prefect task runs)."""
        self.report = PassReport()
        self.watermark: datetime | None = None

    def run(self) -> PassReport:
        """Everything due up to ``now``."""
        self.watermark = self.store.transaction(lambda tx: tx.get_state(WATERMARK), read_only=True)
        while True:
            fires = self._pending_fires()
            horizon = fires[0].at if fires else self.now
            self._segment(horizon)
            if not fires:
                break
            if not self._segment_done(horizon):
                self.report.complete = False  # other workers are still before the fire
                break
            at_horizon = [f for f in fires if f.at == horizon]
            for journey, group in groupby(at_horizon, key=lambda f: f.journey):
                self._sweep(journey, horizon, list(group))
        if self.report.complete and self._segment_done(self.now):
            self._finish()
        else:
            self.report.complete = False
        return self.report

    # ------------------------------------------------------------------ segments

    def _segment(self, horizon: datetime) -> None:
        if self.by_step:
            self.run_unit("events", lambda: self._customers(horizon, "events"))
            for journey, step in self._due_steps(horizon):
                self.run_unit(
                    f"{journey}.{step}",
                    lambda j=journey, s=step: advance_set(  # type: ignore[misc]
                        self.rt,
                        self.store,
                        horizon,
                        self.report.steps,
                        journey=j,
                        step=s,
                        limit=self.rt.batch_size,
                    ),
                )
            for journey, step in self._due_steps(horizon):
                self.run_unit(
                    f"{journey}.{step}",
                    lambda j=journey, s=step: self._customers(horizon, "due", (j, s)),  # type: ignore[misc]
                )
        else:
            # The set-based path only takes customers with no pending event and nothing else
            # due, so it may go first; then every other customer with an event or a step due
            # runs its timeline, in one batch per transaction instead of one per kind of work.
            self.run_unit("set-based", lambda: self._set_based(horizon))
            self.run_unit("customers", lambda: self._customers(horizon, "any"))

    def _set_based(self, horizon: datetime) -> int:
        """Set-based rounds until one moves nothing (each round's rows may move on to further
        set-based steps, or wait)."""
        total = 0
        for _ in range(self.rt.max_steps):
            moved = advance_set(self.rt, self.store, horizon, self.report.steps)
            if not moved:
                break
            total += moved
        if total:
            self.sweeper.profiles_changed()  # an `update` may have set a date attribute
        return total

    def _due_steps(self, horizon: datetime) -> list[tuple[str, str]]:
        return self.store.transaction(lambda tx: tx.due_steps(horizon), read_only=True)

    def _segment_done(self, horizon: datetime) -> bool:
        """Whether nobody has anything left up to ``horizon`` (other workers included)."""
        return self.store.transaction(lambda tx: not tx.anything_due(horizon), read_only=True)

    def _customers(
        self,
        horizon: datetime,
        kind: Literal["events", "due", "any"],
        at_step: tuple[str, str] | None = None,
    ) -> int:
        """Run the timelines of customers with pending events (``events``: until their last
        event applied, with ``by_step``), with a step due (``due``) or either (``any``) up to
        ``horizon``, batch after batch; returns how many customers."""
        total = 0
        while True:
            done = self.store.transaction(
                lambda tx: self._customer_batch(tx, horizon, kind, at_step)
            )
            if not done:
                return total
            total += done

    def _customer_batch(
        self,
        tx: Tx,
        horizon: datetime,
        kind: Literal["events", "due", "any"],
        at_step: tuple[str, str] | None,
    ) -> int:
        size = self.rt.batch_size
        ids = tx.claim_customers_with_events(horizon, size) if kind != "due" else []
        if kind != "events" and len(ids) < size:
            claimed = set(ids)
            due = tx.claim_customers_due(horizon, size - len(ids), at_step)
            ids += [cid for cid in due if cid not in claimed]
        if not ids:
            return 0
        batch = Batch(self.rt, tx, self.now)
        steps = StepCounts()
        for state in batch.load(ids, horizon, watermark=self.watermark):
            if kind == "events" and state.events and self.by_step:
                # Steps due after the last event are left for their step's unit (named
                # task runs); their order does not change.
                last = state.events[-1]
                end = last.applied_at or last.occurred_at
                run_timeline(batch, state, end, steps, until_events_done=True)
            else:
                run_timeline(batch, state, horizon, steps)
        changes = flush(batch)
        if changes.profiles_changed:
            self.sweeper.profiles_changed()
        self.report.customers += len(ids)
        self.report.events += len(changes.processed)
        self.report.late += sum(1 for p in changes.processed if p.applied_at is not None)
        for key, n in steps.counts.items():
            self.report.steps.counts[key] += n
        return len(ids)

    # ------------------------------------------------------------------ fires

    def _cursors(self, tx: Tx) -> dict[str, datetime | None]:
        return {j: tx.get_state(cursor_key(j)) for j in self.sweeper.plans}

    def _pending_fires(self) -> list[Fire]:
        if not self.sweeper.plans:
            return []

        def read(tx: Tx) -> list[Fire]:
            batch = Batch(self.rt, tx, self.now)
            return self.sweeper.fires(batch, self._cursors(tx), self.now)

        return self.store.transaction(read, read_only=True)

    def _sweep(self, journey: str, at: datetime, fires: list[Fire]) -> None:
        def work(tx: Tx) -> int:
            last = tx.get_state(cursor_key(journey), lock=True)
            if last is not None and last >= at:
                return 0  # another worker swept this fire
            batch = Batch(self.rt, tx, self.now)
            enrolled = self.sweeper.sweep(batch, fires)
            flush(batch)
            tx.set_state(cursor_key(journey), at)
            return enrolled

        self.report.enrolled_by_time += self.run_unit(
            f"sweep:{journey}", lambda: self.store.transaction(work)
        )

    def _finish(self) -> None:
        def work(tx: Tx) -> None:
            for journey in self.sweeper.plans:
                last = tx.get_state(cursor_key(journey), lock=True)
                if last is None or last < self.now:
                    tx.set_state(cursor_key(journey), self.now)
            last = tx.get_state(WATERMARK, lock=True)
            if last is None or last < self.now:
                tx.set_state(WATERMARK, self.now)

        self.store.transaction(work)
