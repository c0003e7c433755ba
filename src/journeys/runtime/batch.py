"""What one batch works with: the project's runtime settings, the customers it holds, and the
changes it will write.

A :class:`Batch` lives for one transaction. It loads the state of a set of customers once
(:meth:`Batch.load`), the pure-ish step functions (:mod:`.match`, :mod:`.advance`,
:mod:`.timeline`) change the records and append to :attr:`Batch.changes`, and
:mod:`.flush` writes everything back in a few statements.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from journeys.plan import Plan
from journeys.runtime.plans import PlanSet
from journeys.settings import Settings
from journeys.state import Changes, Customer, Enrollment, Event, GoalCandidate, iso

if TYPE_CHECKING:
    from journeys.runtime.render import Renderer
    from journeys.store.interface import Tx


class CommentAnalysis(Protocol):
    """What a comment analyser returns (:class:`journeys.insight.voc.Analysis`)."""

    @property
    def sentiment(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def keywords(self) -> tuple[str, ...]: ...


class CommentAnalyser(Protocol):
    """``(comment, locale) → analysis``; pure and deterministic, so a replay reads the same."""

    def __call__(self, comment: str, locale: str | None, /) -> CommentAnalysis: ...


@dataclass
class Runtime:
    """Everything about a project the runtime needs, built once per process."""

    plans: PlanSet
    settings: Settings
    renderer: Renderer
    batch_size: int = 2000
    set_based: bool = True
    """Advance steps that need no Python (:mod:`journeys.runtime.setbased`) in SQL."""
    set_chunk: int | None = None
    """Rows (SQLite: ids per window) per set-based transaction (default: twenty batches, at
    least 10,000): fewer, larger windows write less to disk."""
    set_min_rows: int | None = None
    """Fewest due rows worth the set-based path (default: one batch): its statements cost
    about a millisecond each whatever their size, more than Python for a handful of rows."""
    max_steps: int = 1000
    """Steps one customer may run in one pass (specs reject loops without a wait; this only
    guards, and the rest runs in the next pass)."""
    analyse: CommentAnalyser | None = None
    """Reads a survey comment (``comment, locale → sentiment, score, keywords``) as its answer
    is stored; None leaves comments unanalysed (``journeys report`` analyses them later)."""


@dataclass
class CustomerState:
    """One customer as a batch holds it: profile, pending events, enrollments, history."""

    id: str
    customer: Customer | None
    events: list[Event] = field(default_factory=list)
    """Pending events up to the horizon, in the order they apply (see :mod:`.timeline`)."""
    active: list[Enrollment] = field(default_factory=list)
    past: dict[str, tuple[int, datetime | None]] = field(default_factory=dict)
    """journey → (enrollments ever, when the last one ended): re-entry and cooldown."""
    goals: list[GoalCandidate] = field(default_factory=list)
    sends: list[datetime] = field(default_factory=list)
    """When recent marketing emails were due (frequency caps)."""
    suppressed: dict[str, str] = field(default_factory=dict)
    """channel → reason: no marketing there."""


def engine_event_id(kind: str, *parts: str) -> str:
    """A deterministic id for an event the engine emits: the same cause always gives the same
    id, so a replayed batch's events are deduplicated on insert."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]
    return f"{kind}:{digest}"


class Batch:
    """The state and the changes of one transaction."""

    def __init__(self, runtime: Runtime, tx: Tx, now: datetime) -> None:
        self.rt = runtime
        self.tx = tx
        self.now = now
        self.changes = Changes()
        self.states: dict[str, CustomerState] = {}

    @property
    def plans(self) -> PlanSet:
        """The runtime's plans."""
        return self.rt.plans

    def plan_for(self, enrollment: Enrollment) -> Plan | None:
        """The plan version ``enrollment`` runs on."""
        return self.rt.plans.version(enrollment.journey, enrollment.version, self.tx.load_version)

    def new_customer(self, cid: str, at: datetime) -> Customer:
        """A blank profile created by an event at ``at`` (initial stage, no orders)."""
        customer = Customer(
            id=cid, created_at=at, updated_at=at, stage=self.plans.lifecycle.initial
        )
        self.changes.new_customers[cid] = customer
        return customer

    def load(
        self, ids: Iterable[str], horizon: datetime, *, watermark: datetime | None = None
    ) -> list[CustomerState]:
        """Read and lock everything a timeline needs for these customers, in a constant number
        of statements: profiles, pending events up to ``horizon`` (those at or before
        ``watermark`` are late and apply at it), active enrollments, re-entry history,
        unreached goals, recent sends and suppressions."""
        tx, ids = self.tx, sorted(set(ids))
        enrollments = tx.active_enrollments(ids, lock=True)  # enrollments, then customers
        customers = tx.load_customers(ids, lock=True)
        states = {cid: CustomerState(cid, customers.get(cid)) for cid in ids}
        self.changes.customers.update(customers)
        for enrollment in enrollments:
            states[enrollment.customer_id].active.append(enrollment)
        self.changes.enrollments.extend(enrollments)
        for event in tx.pending_events(ids, horizon):
            if watermark is not None and event.occurred_at <= watermark:
                event.applied_at = watermark
            states[event.customer_id].events.append(event)
        for state in states.values():
            state.events.sort(key=lambda e: (e.applied_at or e.occurred_at, e.id))
        journeys = self.plans.entry_journeys
        for (journey, cid), past in tx.enrollment_history(ids, journeys).items():
            states[cid].past[journey] = past
        if self.plans.goal_journeys:
            for cid, candidate in tx.unconverted_enrollments(ids, self.plans.goal_journeys):
                held = next((e for e in states[cid].active if e.id == candidate.id), None)
                if held is not None:
                    candidate = GoalCandidate(
                        candidate.journey, candidate.version, candidate.entered_at, held
                    )
                states[cid].goals.append(candidate)
        self._load_consent(ids, states)
        self.states.update(states)
        return [states[cid] for cid in ids]

    def _load_consent(self, ids: list[str], states: dict[str, CustomerState]) -> None:
        settings = self.rt.settings
        for cid, channel, reason in self.tx.suppressions(ids):
            states[cid].suppressed[channel] = reason
        if settings.frequency_cap_messages and settings.frequency_cap_seconds:
            earliest = min(
                [e.applied_at or e.occurred_at for s in states.values() for e in s.events]
                + [e.wake_at for s in states.values() for e in s.active if e.wake_at]
                + [self.now]
            )
            since = earliest - timedelta(seconds=settings.frequency_cap_seconds)
            sends: dict[str, list[datetime]] = defaultdict(list)
            for cid, due_at in self.tx.recent_sends(ids, since):
                sends[cid].append(due_at)
            for cid, times in sends.items():
                states[cid].sends = sorted(times)

    def stage_event_id(self, cid: str, cause: str, stage: str, at: datetime) -> str:
        """The id of a ``stage.entered`` event."""
        return engine_event_id("stage", cid, cause, stage, iso(at) or "")
