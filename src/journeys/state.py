"""Typed records of the runtime's state: customers, enrollments, events and what a batch writes.

Rows are turned into these records once when a batch loads them and written back by the
fields that changed. Records change only through their methods, so every change is named
and marked: an enrollment's status changes in exactly one place, :meth:`Enrollment.finish`,
with its reason. Nothing here knows SQL; the store builds and reads these records.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from journeys.clock import iso as _slow_iso


class Status(StrEnum):
    """An enrollment's status (stored as its value)."""

    ACTIVE = "active"
    """Running, or waiting for a time or an event."""
    COMPLETED = "completed"
    """Ran off its last step or reached ``end``."""
    EXITED = "exited"
    """Left early: an ``exit_on`` event, an ``exit`` step, an error."""


class Ending(StrEnum):
    """Why an enrollment ended; :meth:`Enrollment.finish` derives status and reason text."""

    COMPLETED = "completed"
    """Ran off its last step or reached ``end`` (no exit reason)."""
    EXIT_EVENT = "exit_event"
    """An ``exit_on`` event arrived (the reason is its type, e.g. ``order.placed``)."""
    EXIT_STEP = "exit_step"
    """An ``exit`` step (the reason is the step's)."""
    ERROR = "error"
    """Something failed for this customer only (the reason starts with ``error:``)."""


def _history_label(ending: Ending, reason: str | None) -> str:
    if ending is Ending.EXIT_EVENT:
        return f"exit_on {reason}"
    if ending is Ending.EXIT_STEP:
        return f"exit {reason}"
    if ending is Ending.ERROR:
        return "error"
    return "completed"


def iso(value: datetime) -> str | None:
    """:func:`journeys.clock.iso` without strftime for UTC values (a hot path)."""
    if value.tzinfo is UTC:
        return value.replace(microsecond=0, tzinfo=None).isoformat() + "Z"
    return _slow_iso(value)


# --------------------------------------------------------------------------- customers

PROFILE_FIELDS = (
    "id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "locale",
    "timezone",
    "birthday",
    "email_opt_in",
    "stage",
    "orders_count",
    "lifetime_value",
    "first_order_at",
    "last_order_at",
)
"""Customer fields expressions see next to the free-form attributes (which they shadow)."""


def profile_view(attributes: dict[str, Any] | None, get: Any) -> dict[str, Any]:
    """A flat dict of a customer: ``attributes`` first, then each profile field read with
    ``get(name)`` (fields win; times as ISO 8601)."""
    view: dict[str, Any] = dict(attributes or {})
    for name in PROFILE_FIELDS:
        value = get(name)
        view[name] = iso(value) if isinstance(value, datetime) else value
    return view


@dataclass(slots=True, eq=False)
class Customer:
    """One customer profile (a ``customers`` row)."""

    id: str
    created_at: datetime
    updated_at: datetime
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    locale: str | None = None
    timezone: str | None = None
    birthday: str | None = None
    birthday_md: str | None = None
    email_opt_in: bool | None = None
    stage: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    orders_count: int = 0
    lifetime_value: float = 0.0
    first_order_at: datetime | None = None
    last_order_at: datetime | None = None
    dirty: set[str] = field(default_factory=set, repr=False)
    _view: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_row(cls, row: Any) -> Customer:
        """A record from a ``customers`` row (a mapping with every column)."""
        return cls(**{name: row[name] for name in COLUMNS_OF["customers"]})

    def to_row(self) -> dict[str, Any]:
        """Every column, for an insert."""
        return {name: getattr(self, name) for name in COLUMNS_OF["customers"]}

    def _changed(self, at: datetime, *names: str) -> None:
        self.dirty.update(names)
        self.dirty.add("updated_at")
        self.updated_at = at
        self._view = None

    def update_profile(self, values: dict[str, Any], at: datetime) -> bool:
        """Apply normalised profile values (attributes merged, not replaced); True if any
        value changed."""
        changed = False
        for name, value in values.items():
            if name == "attributes":
                merged = {**self.attributes, **value}
                if merged != self.attributes:
                    self.attributes = merged
                    changed = True
                    self._changed(at, "attributes")
            elif name in PROFILE_COLUMNS and getattr(self, name) != value:
                setattr(self, name, value)
                changed = True
                self._changed(at, name)
        return changed

    def set_attributes(self, values: dict[str, Any], at: datetime) -> None:
        """Set free-form attributes (an ``update`` step)."""
        self.attributes = {**self.attributes, **values}
        self._changed(at, "attributes")

    def record_order(self, total: float, placed_at: datetime, at: datetime) -> None:
        """Count an ``order.placed`` (placed at ``placed_at``, applied at ``at``): orders,
        lifetime value, first and last order time."""
        self.orders_count = int(self.orders_count or 0) + 1
        self.lifetime_value = float(self.lifetime_value or 0) + float(total)
        first, last = self.first_order_at, self.last_order_at
        self.first_order_at = placed_at if first is None or placed_at < first else first
        self.last_order_at = placed_at if last is None or placed_at > last else last
        self._changed(at, "orders_count", "lifetime_value", "first_order_at", "last_order_at")

    def move_to_stage(self, stage: str, at: datetime) -> str | None:
        """Enter lifecycle ``stage``; returns the stage left (unchanged: returns ``stage``)."""
        old = self.stage
        if old != stage:
            self.stage = stage
            self._changed(at, "stage")
        return old

    def view(self) -> dict[str, Any]:
        """What expressions see as ``customer``: attributes, then profile fields (which win).

        Cached until the next change; callers must not modify it.
        """
        view = self._view
        if view is None:
            view = self._view = profile_view(self.attributes, lambda name: getattr(self, name))
        return view


# --------------------------------------------------------------------------- enrollments


@dataclass(slots=True, eq=False)
class Enrollment:
    """One customer's way through one journey (an ``enrollments`` row).

    ``step`` is the step to run when ``wake_at`` comes; while a ``wait_for`` or ``survey``
    waits for ``waiting_for``, ``waiting_step`` is that step (and ``step`` its timeout
    target). ``id`` is None until the store inserts it.
    """

    journey: str
    version: str
    customer_id: str
    entered_at: datetime
    step: str
    wake_at: datetime | None
    status: Status = Status.ACTIVE
    waiting_for: str | None = None
    waiting_step: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    trigger_key: str | None = None
    ended_at: datetime | None = None
    exit_reason: str | None = None
    converted_at: datetime | None = None
    id: int | None = None
    dirty: set[str] = field(default_factory=set, repr=False)
    history: list[tuple[str, datetime, str]] = field(default_factory=list, repr=False)
    """Step runs (step, at, outcome) not written yet."""

    @classmethod
    def from_row(cls, row: Any) -> Enrollment:
        """A record from an ``enrollments`` row."""
        values = {name: row[name] for name in COLUMNS_OF["enrollments"]}
        values["status"] = Status(values["status"])
        values["vars"] = dict(values["vars"] or {})
        return cls(**values)

    def to_row(self) -> dict[str, Any]:
        """Every column but ``id``, for an insert."""
        row = {name: getattr(self, name) for name in COLUMNS_OF["enrollments"] if name != "id"}
        row["status"] = str(self.status)
        return row

    @property
    def active(self) -> bool:
        """Whether the enrollment still runs or waits."""
        return self.status is Status.ACTIVE

    def log(self, step: str, at: datetime, outcome: str) -> None:
        """Append a step run to the history."""
        self.history.append((step, at, outcome[:200]))

    def move(
        self,
        step: str,
        wake_at: datetime | None,
        *,
        waiting_for: str | None = None,
        waiting_step: str | None = None,
        vars_: dict[str, Any] | None = None,
    ) -> None:
        """Go to ``step``, due at ``wake_at`` (waiting for an event when ``waiting_for``)."""
        self.step, self.wake_at = step, wake_at
        self.waiting_for, self.waiting_step = waiting_for, waiting_step
        self.dirty.update(("step", "wake_at", "waiting_for", "waiting_step"))
        if vars_ is not None:
            self.vars = vars_
            self.dirty.add("vars")

    def finish(
        self, ending: Ending, at: datetime, reason: str | None = None, *, log: bool = True
    ) -> None:
        """End the enrollment: the one place its status changes. ``log`` records the end in
        the step history (a step that ended it has recorded its own outcome already)."""
        self.status = Status.COMPLETED if ending is Ending.COMPLETED else Status.EXITED
        self.exit_reason = None if ending is Ending.COMPLETED else (reason or "")[:200]
        self.ended_at = at
        self.wake_at = None
        self.waiting_for = None
        self.waiting_step = None
        self.dirty.update(
            ("status", "exit_reason", "ended_at", "wake_at", "waiting_for", "waiting_step")
        )
        if log:
            self.log(self.step, at, _history_label(ending, reason))

    def convert(self, at: datetime) -> bool:
        """Record the journey's goal reached at ``at`` (once); True if this is new."""
        if self.converted_at is not None:
            return False
        self.converted_at = at
        self.dirty.add("converted_at")
        return True


@dataclass(frozen=True, slots=True)
class GoalCandidate:
    """An enrollment whose journey goal has not been reached yet (any status)."""

    journey: str
    version: str
    entered_at: datetime
    enrollment: Enrollment | None = None
    """The record when the batch holds it (new or active), else None."""
    id: int | None = None


# --------------------------------------------------------------------------- events


@dataclass(slots=True, eq=False)
class Event:
    """A CRM or engine event (an ``events`` row); ``seq`` is None until stored."""

    id: str
    type: str
    customer_id: str
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    received_at: datetime | None = None
    source: str = "api"
    seq: int | None = None
    applied_at: datetime | None = None
    """When the engine applied it, if that was later than ``occurred_at`` (a late event)."""

    @classmethod
    def from_row(cls, row: Any) -> Event:
        """A record from an ``events`` row."""
        return cls(
            id=row["id"],
            type=row["type"],
            customer_id=row["customer_id"],
            occurred_at=row["occurred_at"],
            data=dict(row["data"] or {}),
            received_at=row["received_at"],
            source=row["source"],
            seq=row["seq"],
        )

    def to_row(self) -> dict[str, Any]:
        """The columns of a new row (not yet processed)."""
        return {
            "id": self.id,
            "type": self.type,
            "customer_id": self.customer_id,
            "occurred_at": self.occurred_at,
            "received_at": self.received_at,
            "data": self.data,
            "source": self.source,
        }

    def view(self) -> dict[str, Any]:
        """What expressions see as ``event``."""
        return {
            "id": self.id,
            "type": self.type,
            "occurred_at": iso(self.occurred_at),
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class Processed:
    """An event a batch has handled: its error (if it could not be used) and, for a late
    event, when it was applied instead of when it occurred."""

    seq: int
    error: str | None = None
    applied_at: datetime | None = None


# --------------------------------------------------------------------------- what a batch writes


@dataclass(frozen=True, slots=True)
class StageChange:
    """A lifecycle stage change (a ``stage_history`` row)."""

    customer_id: str
    from_stage: str | None
    to_stage: str
    at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Suppression:
    """No more marketing on ``channel`` for the customer (unsubscribe, bounce, complaint)."""

    customer_id: str
    channel: str
    reason: str
    created_at: datetime


@dataclass(slots=True)
class SurveyAnswer:
    """A survey answer (a ``survey_answers`` row); the enrollment may be new in the batch."""

    event_id: str
    customer_id: str
    journey: str
    step: str
    kind: str
    score: int
    category: str
    comment: str | None
    answered_at: datetime
    enrollment: Enrollment | None = None
    sentiment: str | None = None
    """``negative``, ``neutral`` or ``positive`` for an analysed comment; None without one."""
    sentiment_score: float | None = None
    keywords: tuple[str, ...] = ()


@dataclass(slots=True)
class MessageDraft:
    """A message a step decided to send; rendered into the outbox once its enrollment has an
    id. ``status`` is ``pending`` or ``suppressed`` (with ``error``), decided at ``at``."""

    enrollment: Enrollment
    step: str
    kind: str  # send | survey | notify
    template: str
    channel: str
    subject: str | None
    team: str | None
    attempt: int
    at: datetime
    customer: dict[str, Any]
    """The customer's expression view at ``at``."""
    context: dict[str, Any]
    """The expression context at ``at``."""
    recipient: str | None
    locale: str | None
    message_kind: str = "marketing"
    """``marketing`` or ``transactional`` (consent, caps, unsubscribe headers)."""
    sender: dict[str, str] | None = None
    """The journey's own sender, over the project's."""
    status: str = "pending"
    error: str | None = None


@dataclass
class Changes:
    """Everything one batch writes, applied in a few statements at its end."""

    new_customers: dict[str, Customer] = field(default_factory=dict)
    customers: dict[str, Customer] = field(default_factory=dict)
    """Loaded customers; those with ``dirty`` fields are written back."""
    new_enrollments: list[Enrollment] = field(default_factory=list)
    enrollments: list[Enrollment] = field(default_factory=list)
    """Loaded enrollments; those with ``dirty`` fields or history are written back."""
    drafts: list[MessageDraft] = field(default_factory=list)
    emitted: list[Event] = field(default_factory=list)
    """Events the engine emitted (stage changes, ``emit`` steps), stored as processed."""
    processed: list[Processed] = field(default_factory=list)
    stages: list[StageChange] = field(default_factory=list)
    suppressions: list[Suppression] = field(default_factory=list)
    answers: list[SurveyAnswer] = field(default_factory=list)
    conversions: list[tuple[int, datetime]] = field(default_factory=list)
    """Goals of stored enrollments the batch does not hold otherwise (id, when)."""

    profiles_changed: bool = False
    """Set when written: a customer was added or changed a field date triggers read."""

    def note_profiles(self) -> None:
        """Set :attr:`profiles_changed` from the records' changed fields (before writing)."""
        self.profiles_changed = bool(self.new_customers) or any(
            c.dirty & {"timezone", "birthday", "birthday_md", "attributes"}
            for c in self.customers.values()
        )


COLUMNS_OF: dict[str, tuple[str, ...]] = {
    "customers": tuple(f.name for f in fields(Customer) if f.name not in ("dirty", "_view")),
    "enrollments": tuple(f.name for f in fields(Enrollment) if f.name not in ("dirty", "history")),
}
"""The table columns each record carries (the store checks them against its tables)."""

PROFILE_COLUMNS = frozenset(COLUMNS_OF["customers"]) - {"id", "created_at", "updated_at"}
"""Customer columns a profile update may set."""
