"""The store as the runtime sees it: a narrow, batch-oriented interface.

Two implementations: :class:`journeys.store.sql.SqlStore` (SQLAlchemy; SQLite and PostgreSQL)
and :class:`journeys.store.memory.MemoryStore` (plain Python, for unit tests and simulations),
as procrastinate has a real and an in-memory connector. Every :class:`Tx` method works on a
set of rows with a constant number of statements; none commits: the caller's
:meth:`Store.transaction` owns the transaction. Nothing here imports SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from journeys.conditions import Cond, SetStep
from journeys.state import (
    Customer,
    Enrollment,
    Event,
    GoalCandidate,
    Processed,
    StageChange,
    Suppression,
    SurveyAnswer,
)

R = TypeVar("R")


class SetOps(Protocol):
    """Set-based steps in the store (:mod:`journeys.runtime.setpath`); SQL stores only."""

    windowed: bool
    """Whether large due sets go window by window over the id range (SQLite)."""

    def due_count(
        self, now: datetime, limit: int, *, journey: str | None = None, step: str | None = None
    ) -> int:
        """Due enrollments the set path may take, counted up to ``limit``."""
        ...

    def id_span(self) -> tuple[int, int]:
        """The lowest and highest enrollment id."""
        ...

    def due_groups(
        self,
        now: datetime,
        limit: int,
        *,
        journey: str | None = None,
        step: str | None = None,
        window: tuple[int, int] | None = None,
        after: tuple[datetime, int] | None = None,
    ) -> list[Any]:
        """Due rows grouped by (journey, version, step), locked for this transaction; each
        group's ``last`` is the (wake_at, id) key the next chunk starts ``after``."""
        ...

    def advance_set_step(self, spec: SetStep, now: datetime, group: Any) -> int:
        """Run one set-based step for a group; how many moved on."""
        ...

    def advance_chained(
        self, spec: SetStep, targets: Mapping[str, SetStep], now: datetime, group: Any
    ) -> dict[str, int]:
        """Run a step and its chained targets for a group; runs per step."""
        ...


class Tx(Protocol):
    """One transaction's view of the store."""

    # ---------------------------------------------------------------- customers
    def load_customers(self, ids: Iterable[str], *, lock: bool = False) -> dict[str, Customer]:
        """Customers by id (missing ones absent); ``lock`` for the transaction."""
        ...

    def existing_customer_ids(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` exist."""
        ...

    def insert_customers(self, rows: Sequence[Customer]) -> None:
        """Insert new customers."""
        ...

    def update_customers(self, rows: Sequence[Customer]) -> None:
        """Write back the changed (``dirty``) fields of customers."""
        ...

    def customer_timezones(self) -> list[str | None]:
        """Distinct customer time zones (None: customers without one)."""
        ...

    def customers_with_birthday(
        self, timezone: str | None, month_days: Sequence[str]
    ) -> list[Customer]:
        """Customers in ``timezone`` whose birthday is on one of ``month_days`` (MM-DD)."""
        ...

    def segment_customers(
        self, conds: Sequence[Cond], chunk: int = 5000
    ) -> Iterable[list[Customer]]:
        """Every customer the ``conds`` do not rule out (all when empty), in chunks."""
        ...

    # ---------------------------------------------------------------- suppressions, stages, answers
    def suppressions(self, ids: Iterable[str]) -> list[tuple[str, str, str]]:
        """(customer, channel, reason) of these customers' suppressions."""
        ...

    def add_suppressions(self, rows: Sequence[Suppression]) -> None:
        """Record suppressions (an existing one per customer and channel is kept)."""
        ...

    def add_stage_history(self, rows: Sequence[StageChange]) -> None:
        """Record stage changes."""
        ...

    def add_survey_answers(self, rows: Sequence[SurveyAnswer]) -> None:
        """Store survey answers (one per answer event)."""
        ...

    # ---------------------------------------------------------------- events
    def existing_event_ids(self, ids: Iterable[str]) -> set[str]:
        """Which event ids are stored (the idempotency check)."""
        ...

    def insert_events(self, rows: Sequence[Event], *, processed_at: datetime | None = None) -> None:
        """Store events (known ids skipped); ``processed_at`` marks them handled."""
        ...

    def pending_events(self, ids: Iterable[str], horizon: datetime) -> list[Event]:
        """Unprocessed events of these customers that occurred by ``horizon``."""
        ...

    def mark_events_processed(self, rows: Sequence[Processed], now: datetime) -> None:
        """Mark events processed, with their error and late application time."""
        ...

    def claim_customers_with_events(self, horizon: datetime, limit: int) -> list[str]:
        """Up to ``limit`` customers with events pending by ``horizon``, oldest first, that
        this transaction now holds (other workers' customers are skipped)."""
        ...

    # ---------------------------------------------------------------- enrollments
    def active_enrollments(self, ids: Iterable[str], *, lock: bool = False) -> list[Enrollment]:
        """Active enrollments of these customers."""
        ...

    def enrollment_history(
        self, ids: Iterable[str], journeys: Iterable[str]
    ) -> dict[tuple[str, str], tuple[int, datetime | None]]:
        """(journey, customer) → (enrollments ever, when the last one ended)."""
        ...

    def unconverted_enrollments(
        self, ids: Iterable[str], journeys: Iterable[str]
    ) -> list[tuple[str, GoalCandidate]]:
        """(customer, candidate) for enrollments in goal journeys not converted yet."""
        ...

    def insert_enrollments(self, rows: Sequence[Enrollment]) -> None:
        """Insert new enrollments and set their ``id`` (left None where a unique key
        refused one)."""
        ...

    def update_enrollments(self, rows: Sequence[Enrollment]) -> None:
        """Write back the changed fields of enrollments."""
        ...

    def set_converted(self, rows: Sequence[tuple[int, datetime]]) -> None:
        """Record goal conversions of enrollments by id."""
        ...

    def add_step_runs(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append step history rows."""
        ...

    def due_steps(self, horizon: datetime, journey: str | None = None) -> list[tuple[str, str]]:
        """(journey, step) pairs with enrollments due by ``horizon``."""
        ...

    def claim_customers_due(
        self, horizon: datetime, limit: int, at_step: tuple[str, str] | None = None
    ) -> list[str]:
        """Up to ``limit`` customers with an enrollment due by ``horizon`` (at ``at_step``),
        oldest first, that this transaction now holds."""
        ...

    def anything_due(self, horizon: datetime) -> bool:
        """Whether any event is pending or any enrollment due by ``horizon`` (whoever holds
        it)."""
        ...

    def next_times(self, after: datetime) -> tuple[datetime | None, datetime | None]:
        """(next pending event time, next wake time) after ``after``."""
        ...

    @property
    def set_ops(self) -> SetOps:
        """Set-based steps (only where :attr:`Store.set_based`)."""
        ...

    # ---------------------------------------------------------------- outbox
    def add_outbox(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Queue rendered messages; (enrollment, step, attempt) makes a replay a no-op."""
        ...

    def recent_sends(self, ids: Iterable[str], since: datetime) -> list[tuple[str, datetime]]:
        """(customer, due time) of marketing email sends due after ``since``."""
        ...

    # ---------------------------------------------------------------- versions, state
    def save_versions(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Store compiled plans by (journey, version); known versions are kept."""
        ...

    def load_version(self, journey: str, version: str) -> dict[str, Any] | None:
        """A stored plan (``Plan.to_dict()``)."""
        ...

    def get_state(self, key: str, *, lock: bool = False) -> datetime | None:
        """A scheduler cursor."""
        ...

    def set_state(self, key: str, at: datetime) -> None:
        """Move a scheduler cursor."""
        ...


class Store(Protocol):
    """Where the state lives; the runtime reaches it only through :meth:`transaction`."""

    kind: str
    """``sqlite``, ``postgresql`` or ``memory``."""
    set_based: bool
    """Whether :attr:`Tx.set_ops` works here."""

    def transaction(self, work: Callable[[Tx], R], *, read_only: bool = False) -> R:
        """Run ``work`` in one transaction and commit (roll back if it raises). A store may
        run it again when the database aborted it for a conflict with another worker."""
        ...

    def dispose(self) -> None:
        """Release connections."""
        ...
