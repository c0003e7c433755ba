"""The in-memory store: the same interface as the SQL store, in plain Python.

Like procrastinate's ``InMemoryConnector``, it lets the runtime's decisions, matching and
advancing be tested in milliseconds with hand-built plans, and runs ``journeys simulate``
without a database. It keeps the same unique keys as the SQL schema (one active enrollment
per journey and customer, one per trigger key, one outbox row per enrollment, step and
attempt). A transaction that raises is undone; records handed out are copies, so a batch's
changes reach the store only through its writes. It has no set-based path: the Python path
gives the same results (that equivalence is tested).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from journeys.conditions import Cond
from journeys.state import (
    Customer,
    Enrollment,
    Event,
    GoalCandidate,
    Processed,
    StageChange,
    Status,
    Suppression,
    SurveyAnswer,
)

R = TypeVar("R")


def _copy_customer(customer: Customer) -> Customer:
    clone = copy.copy(customer)
    clone.attributes = copy.deepcopy(customer.attributes)
    clone.dirty = set()
    clone._view = None
    return clone


def _copy_enrollment(enrollment: Enrollment) -> Enrollment:
    clone = copy.copy(enrollment)
    clone.vars = copy.deepcopy(enrollment.vars)
    clone.dirty = set()
    clone.history = []
    return clone


class MemoryTx:
    """One transaction on a :class:`MemoryStore`: writes apply at once and are recorded so
    that a failing transaction can be undone."""

    set_ops: Any = None

    def __init__(self, store: MemoryStore) -> None:
        self.s = store
        self._undo: list[Callable[[], None]] = []

    def rollback(self) -> None:
        """Undo every write of this transaction, newest first."""
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    def _set(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        missing = key not in table
        old = table.get(key)
        table[key] = value
        self._undo.append(lambda: table.pop(key) if missing else table.__setitem__(key, old))

    def _append(self, table: list[Any], value: Any) -> None:
        table.append(value)
        self._undo.append(table.pop)

    def _add(self, index: dict[Any, set[Any]], key: Any, value: Any) -> None:
        found = index.setdefault(key, set())
        if value not in found:
            found.add(value)
            self._undo.append(lambda: found.discard(value))

    def _discard(self, index: dict[Any, set[Any]], key: Any, value: Any) -> None:
        found = index.get(key)
        if found is not None and value in found:
            found.discard(value)
            self._undo.append(lambda: found.add(value))

    def _index_active(self, row: Enrollment) -> None:
        """Keep the active-enrollment indexes in step with the stored ``row``."""
        eid = row.id
        old = self.s.active_at.get(eid)  # type: ignore[arg-type]
        new = (row.journey, row.step) if row.status is Status.ACTIVE else None
        if old == new:
            return
        if old is not None:
            self._discard(self.s.at_step, old, eid)
            if new is None:
                self._discard(self.s.active, row.customer_id, eid)
        if new is not None:
            self._add(self.s.at_step, new, eid)
            if old is None:
                self._add(self.s.active, row.customer_id, eid)
        self._set(self.s.active_at, eid, new)

    # ---------------------------------------------------------------- customers
    def load_customers(self, ids: Iterable[str], *, lock: bool = False) -> dict[str, Customer]:
        found = (self.s.customers.get(cid) for cid in set(ids))
        return {c.id: _copy_customer(c) for c in found if c is not None}

    def existing_customer_ids(self, ids: Iterable[str]) -> set[str]:
        return {cid for cid in ids if cid in self.s.customers}

    def insert_customers(self, rows: Sequence[Customer]) -> None:
        for row in rows:
            if row.id not in self.s.customers:
                self._set(self.s.customers, row.id, _copy_customer(row))

    def update_customers(self, rows: Sequence[Customer]) -> None:
        for row in rows:
            stored = self.s.customers.get(row.id)
            if stored is None:
                continue
            clone = _copy_customer(stored)
            for name in row.dirty:
                setattr(clone, name, copy.deepcopy(getattr(row, name)))
            self._set(self.s.customers, row.id, clone)

    def customer_timezones(self) -> list[str | None]:
        return sorted({c.timezone for c in self.s.customers.values()}, key=lambda z: z or "")

    def customers_with_birthday(
        self, timezone: str | None, month_days: Sequence[str]
    ) -> list[Customer]:
        return [
            _copy_customer(c)
            for c in self.s.customers.values()
            if c.timezone == timezone and c.birthday_md in month_days
        ]

    def segment_customers(
        self, conds: Sequence[Cond], chunk: int = 5000
    ) -> Iterable[list[Customer]]:
        # No pruning: the conditions only let a database skip customers cheaply.
        ordered = sorted(self.s.customers)
        for start in range(0, len(ordered), chunk):
            yield [_copy_customer(self.s.customers[c]) for c in ordered[start : start + chunk]]

    def suppressions(self, ids: Iterable[str]) -> list[tuple[str, str, str]]:
        wanted = set(ids)
        return [
            (cid, channel, reason)
            for (cid, channel), reason in self.s.suppressions.items()
            if cid in wanted
        ]

    def add_suppressions(self, rows: Sequence[Suppression]) -> None:
        for row in rows:
            key = (row.customer_id, row.channel)
            if key not in self.s.suppressions:
                self._set(self.s.suppressions, key, row.reason)

    def add_stage_history(self, rows: Sequence[StageChange]) -> None:
        for row in rows:
            self._append(self.s.stage_history, row)

    def add_survey_answers(self, rows: Sequence[SurveyAnswer]) -> None:
        for row in rows:
            if row.event_id not in self.s.answers:
                self._set(self.s.answers, row.event_id, copy.copy(row))

    # ---------------------------------------------------------------- events
    def existing_event_ids(self, ids: Iterable[str]) -> set[str]:
        return {i for i in ids if i in self.s.event_ids}

    def insert_events(self, rows: Sequence[Event], *, processed_at: datetime | None = None) -> None:
        for row in rows:
            if row.id in self.s.event_ids:
                continue
            self.s.seq += 1
            event = copy.copy(row)
            event.seq = self.s.seq
            event.data = copy.deepcopy(row.data)
            self._set(self.s.event_ids, event.id, event.seq)
            self._set(self.s.events, event.seq, {"event": event, "processed_at": processed_at})
            if processed_at is None:
                self._set(self.s.pending, event.seq, event.customer_id)
                self._add(self.s.pending_of, event.customer_id, event.seq)

    def pending_events(self, ids: Iterable[str], horizon: datetime) -> list[Event]:
        found = []
        for seq in sorted(seq for cid in set(ids) for seq in self.s.pending_of.get(cid, ())):
            event = self.s.events[seq]["event"]
            if event.occurred_at <= horizon:
                clone = copy.copy(event)
                clone.data = copy.deepcopy(event.data)
                found.append(clone)
        return found

    def mark_events_processed(self, rows: Sequence[Processed], now: datetime) -> None:
        for row in rows:
            stored = self.s.events.get(row.seq)
            if stored is None:
                continue
            self._set(
                self.s.events,
                row.seq,
                {**stored, "processed_at": now, "error": row.error, "applied_at": row.applied_at},
            )
            if row.seq in self.s.pending:
                cid = self.s.pending.pop(row.seq)
                self._undo.append(lambda seq=row.seq, cid=cid: self.s.pending.__setitem__(seq, cid))
                self._discard(self.s.pending_of, cid, row.seq)

    def claim_customers_with_events(self, horizon: datetime, limit: int) -> list[str]:
        due = [
            (self.s.events[seq]["event"].occurred_at, seq, cid)
            for seq, cid in self.s.pending.items()
            if self.s.events[seq]["event"].occurred_at <= horizon
        ]
        return _first_customers(sorted(due), limit)

    # ---------------------------------------------------------------- enrollments
    def _active(self) -> Iterable[Enrollment]:
        return (self.s.enrollments[i] for ids in self.s.active.values() for i in ids)

    def _of(self, ids: Iterable[str], journeys: Iterable[str]) -> list[Enrollment]:
        """Every enrollment of these customers in these journeys, by id."""
        names = set(journeys)
        found = [
            eid
            for cid in set(ids)
            for journey in names
            for eid in self.s.by_key.get((journey, cid), ())
        ]
        return [self.s.enrollments[eid] for eid in sorted(found)]

    def active_enrollments(self, ids: Iterable[str], *, lock: bool = False) -> list[Enrollment]:
        found = sorted(eid for cid in set(ids) for eid in self.s.active.get(cid, ()))
        return [_copy_enrollment(self.s.enrollments[eid]) for eid in found]

    def enrollment_history(
        self, ids: Iterable[str], journeys: Iterable[str]
    ) -> dict[tuple[str, str], tuple[int, datetime | None]]:
        found: dict[tuple[str, str], tuple[int, datetime | None]] = {}
        for e in self._of(ids, journeys):
            count, last = found.get((e.journey, e.customer_id), (0, None))
            ended = e.ended_at if last is None or (e.ended_at and e.ended_at > last) else last
            found[(e.journey, e.customer_id)] = (count + 1, ended)
        return found

    def unconverted_enrollments(
        self, ids: Iterable[str], journeys: Iterable[str]
    ) -> list[tuple[str, GoalCandidate]]:
        return [
            (e.customer_id, GoalCandidate(e.journey, e.version, e.entered_at, id=e.id))
            for e in self._of(ids, journeys)
            if e.converted_at is None
        ]

    def insert_enrollments(self, rows: Sequence[Enrollment]) -> None:
        for row in rows:
            if self._conflicts(row):
                row.id = None
                continue
            self.s.enrollment_seq += 1
            row.id = self.s.enrollment_seq
            self._set(self.s.enrollments, row.id, _copy_enrollment(row))
            self._append(self.s.by_key[(row.journey, row.customer_id)], row.id)
            self._index_active(row)

    def _conflicts(self, row: Enrollment) -> bool:
        for eid in self.s.by_key.get((row.journey, row.customer_id), ()):
            e = self.s.enrollments[eid]
            if row.status is Status.ACTIVE and e.status is Status.ACTIVE:
                return True
            if row.trigger_key is not None and e.trigger_key == row.trigger_key:
                return True
        return False

    def update_enrollments(self, rows: Sequence[Enrollment]) -> None:
        for row in rows:
            stored = self.s.enrollments.get(row.id)  # type: ignore[arg-type]
            if stored is None:
                continue
            clone = _copy_enrollment(stored)
            for name in row.dirty:
                setattr(clone, name, copy.deepcopy(getattr(row, name)))
            self._set(self.s.enrollments, row.id, clone)
            self._index_active(clone)

    def set_converted(self, rows: Sequence[tuple[int, datetime]]) -> None:
        for eid, at in rows:
            stored = self.s.enrollments.get(eid)
            if stored is not None and stored.converted_at is None:
                clone = _copy_enrollment(stored)
                clone.converted_at = at
                self._set(self.s.enrollments, eid, clone)

    def add_step_runs(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            self._append(self.s.step_runs, dict(row))

    def _due(self, ids: Iterable[int], horizon: datetime) -> Iterator[Enrollment]:
        for eid in ids:
            e = self.s.enrollments[eid]
            if e.wake_at is not None and e.wake_at <= horizon:
                yield e

    def due_steps(self, horizon: datetime, journey: str | None = None) -> list[tuple[str, str]]:
        return sorted(
            key
            for key, ids in self.s.at_step.items()
            if (journey is None or key[0] == journey) and any(self._due(ids, horizon))
        )

    def claim_customers_due(
        self, horizon: datetime, limit: int, at_step: tuple[str, str] | None = None
    ) -> list[str]:
        if at_step is not None:
            ids: Iterable[int] = self.s.at_step.get(at_step, ())
        else:
            ids = (eid for found in self.s.at_step.values() for eid in found)
        due = [(e.wake_at, e.id, e.customer_id) for e in self._due(ids, horizon)]
        return _first_customers(sorted(due), limit)  # type: ignore[arg-type]

    def anything_due(self, horizon: datetime) -> bool:
        return bool(
            self.claim_customers_with_events(horizon, 1) or self.claim_customers_due(horizon, 1)
        )

    def next_times(self, after: datetime) -> tuple[datetime | None, datetime | None]:
        events = [
            self.s.events[seq]["event"].occurred_at
            for seq in self.s.pending
            if self.s.events[seq]["event"].occurred_at > after
        ]
        wakes = [e.wake_at for e in self._active() if e.wake_at is not None and e.wake_at > after]
        return (min(events, default=None), min(wakes, default=None))

    # ---------------------------------------------------------------- outbox
    def add_outbox(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            key = (row["enrollment_id"], row["step"], row["attempt"])
            if key in self.s.outbox:
                continue
            self.s.outbox_seq += 1
            self._set(self.s.outbox, key, {"id": self.s.outbox_seq, **row})
            self._append(self.s.outbox_of[row["customer_id"]], key)

    def recent_sends(self, ids: Iterable[str], since: datetime) -> list[tuple[str, datetime]]:
        rows = (self.s.outbox[key] for cid in set(ids) for key in self.s.outbox_of.get(cid, ()))
        return [
            (row["customer_id"], row["due_at"])
            for row in rows
            if row["kind"] == "send"
            and row.get("message_kind", "marketing") == "marketing"
            and row["status"] in ("pending", "sending", "sent", "logged", "unknown")
            and row["due_at"] > since
        ]

    # ---------------------------------------------------------------- versions, state
    def save_versions(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            key = (row["journey"], row["version"])
            if key not in self.s.versions:
                self._set(self.s.versions, key, copy.deepcopy(row["plan"]))

    def load_version(self, journey: str, version: str) -> dict[str, Any] | None:
        return self.s.versions.get((journey, version))

    def get_state(self, key: str, *, lock: bool = False) -> datetime | None:
        return self.s.state.get(key)

    def set_state(self, key: str, at: datetime) -> None:
        self._set(self.s.state, key, at)


def _first_customers(ordered: Sequence[tuple[Any, Any, str]], limit: int) -> list[str]:
    seen: dict[str, None] = {}
    for _, _, cid in ordered:
        seen.setdefault(cid, None)
        if len(seen) >= limit:
            break
    return list(seen)


class MemoryStore:
    """A :class:`~journeys.store.interface.Store` in plain Python dicts."""

    kind = "memory"
    set_based = False

    def __init__(self) -> None:
        self.customers: dict[str, Customer] = {}
        self.events: dict[int, dict[str, Any]] = {}
        self.event_ids: dict[str, int] = {}
        self.pending: dict[int, str] = {}
        self.seq = 0
        self.enrollments: dict[int, Enrollment] = {}
        self.enrollment_seq = 0
        self.step_runs: list[dict[str, Any]] = []
        self.outbox: dict[tuple[int, str, int], dict[str, Any]] = {}
        self.outbox_seq = 0
        self.stage_history: list[StageChange] = []
        self.suppressions: dict[tuple[str, str], str] = {}
        self.answers: dict[str, SurveyAnswer] = {}
        self.versions: dict[tuple[str, str], dict[str, Any]] = {}
        self.state: dict[str, datetime] = {}
        self.by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
        """(journey, customer) → enrollment ids: the unique keys' index."""
        self.active: dict[str, set[int]] = {}
        """customer → ids of their active enrollments (what a batch loads)."""
        self.at_step: dict[tuple[str, str], set[int]] = {}
        """(journey, step) → ids of the active enrollments there (what is due, by step)."""
        self.active_at: dict[int, tuple[str, str] | None] = {}
        """enrollment id → the (journey, step) it is indexed at (None once it ended)."""
        self.pending_of: dict[str, set[int]] = {}
        """customer → seqs of their pending events."""
        self.outbox_of: dict[str, list[tuple[int, str, int]]] = defaultdict(list)
        """customer → keys of their outbox rows (frequency caps)."""

    def transaction(self, work: Callable[[MemoryTx], R], *, read_only: bool = False) -> R:
        """Run ``work``; undo its writes if it raises."""
        tx = MemoryTx(self)
        try:
            return work(tx)
        except BaseException:
            tx.rollback()
            raise

    def dispose(self) -> None:
        """Nothing to release."""

    # ---------------------------------------------------------------- reading it all back
    def all_enrollments(self) -> list[Enrollment]:
        """Every enrollment, by id."""
        return [self.enrollments[i] for i in sorted(self.enrollments)]

    def all_outbox(self) -> list[dict[str, Any]]:
        """Every outbox row, by due time and id."""
        return sorted(self.outbox.values(), key=lambda r: (r["due_at"], r["id"]))

    def all_customers(self) -> list[Customer]:
        """Every customer, by id."""
        return [self.customers[c] for c in sorted(self.customers)]

    # ---------------------------------------------------------------- long replays
    def forget_processed_events(self) -> int:
        """Drop the events already processed, and their ids; returns how many. Nothing reads
        them again (a long replay, ``journeys forecast``, keeps only what is pending), but
        an event with a forgotten id is no longer recognised as a duplicate."""
        done = [seq for seq in self.events if seq not in self.pending]
        for seq in done:
            event = self.events.pop(seq)["event"]
            self.event_ids.pop(event.id, None)
        return len(done)

    def take_step_runs(self) -> list[dict[str, Any]]:
        """The step runs recorded so far, forgotten here (nothing reads them back): a long
        replay folds them chunk by chunk."""
        taken, self.step_runs = self.step_runs, []
        return taken
