"""The SQL store: :class:`journeys.store.interface.Store` on SQLAlchemy (SQLite, PostgreSQL).

:class:`SqlTx` binds the repository functions to one connection; :class:`SqlStore` runs a
unit of work in one transaction, and again when PostgreSQL aborted it for a deadlock or a
serialization conflict with another worker (every write of a batch is idempotent or keyed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

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
from journeys.store import claims, messages
from journeys.store import repository as repo
from journeys.store import setbased as sql_set
from journeys.store.db import SQLITE_BEGIN_OPTION

log = logging.getLogger("journeys.store")

R = TypeVar("R")

RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
"""PostgreSQL deadlock_detected and serialization_failure: safe to run the batch again."""
ATTEMPTS = 5


class SqlSetOps:
    """Set-based steps on one connection (:mod:`journeys.store.setbased`)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.windowed = conn.dialect.name == "sqlite"

    def due_count(
        self, now: datetime, limit: int, *, journey: str | None = None, step: str | None = None
    ) -> int:
        """See :func:`journeys.store.setbased.due_count`; on PostgreSQL, a set worth the
        set-based path first gets fresh statistics (:func:`claims.refresh_statistics`)."""
        count = sql_set.due_count(self.conn, now, limit, journey=journey, step=step)
        if count and self.conn.dialect.name == "postgresql":
            claims.refresh_statistics(self.conn)
        return count

    def id_span(self) -> tuple[int, int]:
        """See :func:`journeys.store.setbased.id_span`."""
        return sql_set.id_span(self.conn)

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
        """See :func:`journeys.store.setbased.due_groups`."""
        return sql_set.due_groups(
            self.conn, now, limit, journey=journey, step=step, window=window, after=after
        )

    def advance_set_step(self, spec: SetStep, now: datetime, group: Any) -> int:
        """See :func:`journeys.store.setbased.advance_set_step`."""
        return sql_set.advance_set_step(self.conn, spec, now, group)

    def advance_chained(
        self, spec: SetStep, targets: Mapping[str, SetStep], now: datetime, group: Any
    ) -> dict[str, int]:
        """See :func:`journeys.store.setbased.advance_chained`."""
        return sql_set.advance_chained(self.conn, spec, targets, now, group)


class SqlTx:
    """The :class:`~journeys.store.interface.Tx` of one SQLAlchemy connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # customers
    def load_customers(self, ids: Iterable[str], *, lock: bool = False) -> dict[str, Customer]:
        return repo.load_customers(self.conn, ids, lock=lock)

    def existing_customer_ids(self, ids: Iterable[str]) -> set[str]:
        return repo.existing_customer_ids(self.conn, ids)

    def insert_customers(self, rows: Sequence[Customer]) -> None:
        repo.insert_customers(self.conn, rows)

    def update_customers(self, rows: Sequence[Customer]) -> None:
        repo.update_customers(self.conn, rows)

    def customer_timezones(self) -> list[str | None]:
        return repo.customer_timezones(self.conn)

    def customers_with_birthday(
        self, timezone: str | None, month_days: Sequence[str]
    ) -> list[Customer]:
        return repo.customers_with_birthday(self.conn, timezone, month_days)

    def segment_customers(
        self, conds: Sequence[Cond], chunk: int = 5000
    ) -> Iterable[list[Customer]]:
        return sql_set.segment_customers(self.conn, conds, chunk)

    def suppressions(self, ids: Iterable[str]) -> list[tuple[str, str, str]]:
        return repo.suppressions_of(self.conn, ids)

    def add_suppressions(self, rows: Sequence[Suppression]) -> None:
        repo.add_suppressions(self.conn, rows)

    def add_stage_history(self, rows: Sequence[StageChange]) -> None:
        repo.add_stage_history(self.conn, rows)

    def add_survey_answers(self, rows: Sequence[SurveyAnswer]) -> None:
        repo.add_survey_answers(self.conn, rows)

    # events
    def existing_event_ids(self, ids: Iterable[str]) -> set[str]:
        return repo.existing_event_ids(self.conn, ids)

    def insert_events(self, rows: Sequence[Event], *, processed_at: datetime | None = None) -> None:
        repo.insert_events(self.conn, rows, processed_at=processed_at)

    def pending_events(self, ids: Iterable[str], horizon: datetime) -> list[Event]:
        return repo.pending_events(self.conn, ids, horizon)

    def mark_events_processed(self, rows: Sequence[Processed], now: datetime) -> None:
        repo.mark_events_processed(self.conn, rows, now)

    def claim_customers_with_events(self, horizon: datetime, limit: int) -> list[str]:
        return claims.claim_customers_with_events(self.conn, horizon, limit)

    # enrollments
    def active_enrollments(self, ids: Iterable[str], *, lock: bool = False) -> list[Enrollment]:
        return repo.active_enrollments(self.conn, ids, lock=lock)

    def enrollment_history(
        self, ids: Iterable[str], journeys: Iterable[str]
    ) -> dict[tuple[str, str], tuple[int, datetime | None]]:
        return repo.enrollment_history(self.conn, ids, journeys)

    def unconverted_enrollments(
        self, ids: Iterable[str], journeys: Iterable[str]
    ) -> list[tuple[str, GoalCandidate]]:
        return repo.unconverted_enrollments(self.conn, ids, journeys)

    def insert_enrollments(self, rows: Sequence[Enrollment]) -> None:
        repo.insert_enrollments(self.conn, rows)

    def update_enrollments(self, rows: Sequence[Enrollment]) -> None:
        repo.update_enrollments(self.conn, rows)

    def set_converted(self, rows: Sequence[tuple[int, datetime]]) -> None:
        repo.set_converted(self.conn, rows)

    def add_step_runs(self, rows: Sequence[Mapping[str, Any]]) -> None:
        repo.add_step_runs(self.conn, rows)

    def due_steps(self, horizon: datetime, journey: str | None = None) -> list[tuple[str, str]]:
        return claims.due_steps(self.conn, horizon, journey)

    def claim_customers_due(
        self, horizon: datetime, limit: int, at_step: tuple[str, str] | None = None
    ) -> list[str]:
        return claims.claim_customers_due(self.conn, horizon, limit, at_step)

    def anything_due(self, horizon: datetime) -> bool:
        return claims.anything_due(self.conn, horizon)

    def next_times(self, after: datetime) -> tuple[datetime | None, datetime | None]:
        return claims.next_times(self.conn, after)

    @property
    def set_ops(self) -> SqlSetOps:
        return SqlSetOps(self.conn)

    # outbox
    def add_outbox(self, rows: Sequence[Mapping[str, Any]]) -> None:
        messages.add_outbox(self.conn, rows)

    def recent_sends(self, ids: Iterable[str], since: datetime) -> list[tuple[str, datetime]]:
        return messages.recent_sends(self.conn, ids, since)

    # versions, state
    def save_versions(self, rows: Sequence[Mapping[str, Any]]) -> None:
        repo.save_versions(self.conn, rows)

    def load_version(self, journey: str, version: str) -> dict[str, Any] | None:
        return repo.load_version(self.conn, journey, version)

    def get_state(self, key: str, *, lock: bool = False) -> datetime | None:
        return repo.get_state(self.conn, key, lock=lock)

    def set_state(self, key: str, at: datetime) -> None:
        repo.set_state(self.conn, key, at)


class SqlStore:
    """A :class:`~journeys.store.interface.Store` on a SQLAlchemy engine."""

    set_based = True

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.kind = engine.dialect.name

    def transaction(self, work: Callable[[SqlTx], R], *, read_only: bool = False) -> R:
        """Run ``work`` in one transaction (SQLite: ``BEGIN DEFERRED`` when ``read_only``, so
        a reader never takes the write lock); again on a PostgreSQL conflict."""
        for attempt in range(ATTEMPTS):
            try:
                with self.engine.connect() as conn:
                    if read_only:
                        conn = conn.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})
                    with conn.begin():
                        return work(SqlTx(conn))
            except DBAPIError as exc:
                state = getattr(exc.orig, "sqlstate", None)
                if state not in RETRYABLE_SQLSTATES or attempt == ATTEMPTS - 1:
                    raise
                log.warning("batch conflicted with another worker (%s); retrying", state)
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        """Release the engine's connections."""
        self.engine.dispose()
