"""The batch engine: ingest → match → advance → render → outbox, on sets of customers.

Each public operation works in batches, one transaction per batch, with a constant number of
SQL statements per batch (see :mod:`journeys.store.repository`). Decisions come from the pure
:mod:`journeys.runtime.decide`; time comes from the injected clock. A batch that raises leaves
the database as it was before that batch.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from croniter import croniter
from sqlalchemy import Connection
from sqlalchemy import Engine as SqlEngine
from sqlalchemy.exc import DBAPIError

from journeys.clock import Clock, as_utc, iso
from journeys.expressions import ExpressionError, truthy
from journeys.plan import (
    END,
    DateTrigger,
    EventTrigger,
    Lifecycle,
    Plan,
    ScheduleTrigger,
    StageTrigger,
    SurveyStep,
    WaitForStep,
    survey_category,
)
from journeys.runtime import decide
from journeys.runtime.context import customer_view, event_view, expression_context
from journeys.runtime.records import CREATING_EVENTS, RecordError, normalise_customer
from journeys.runtime.render import Renderer
from journeys.runtime.setbased import SetStep, chained, necessary_conditions, set_steps
from journeys.runtime.timecalc import fire_instants, month_days_on, next_fire_instant, zone
from journeys.settings import Settings
from journeys.store import repository as repo
from journeys.store import setbased as setrepo
from journeys.store.db import SQLITE_BEGIN_OPTION
from journeys.templates import TemplateStore

log = logging.getLogger("journeys.engine")

# PostgreSQL deadlock_detected and serialization_failure: the batch rolled back and is safe to
# run again (every write in it is idempotent or keyed).
RETRYABLE_SQLSTATES = {"40P01", "40001"}
READ_ONLY = {SQLITE_BEGIN_OPTION: "DEFERRED"}
"""Execution options of a transaction that only reads (SQLite: no write lock)."""
_P = ParamSpec("_P")
_R = TypeVar("_R")


def retry_conflicts(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run a one-transaction batch again (up to 5 times) when PostgreSQL aborted it for a
    deadlock or a serialization conflict with another worker."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        for attempt in range(5):
            try:
                return fn(*args, **kwargs)
            except DBAPIError as exc:
                state = getattr(exc.orig, "sqlstate", None)
                if state not in RETRYABLE_SQLSTATES or attempt == 4:
                    raise
                log.warning("batch conflicted with another worker (%s); retrying", state)
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    return wrapper


STAGE_ENTERED = "stage.entered"

# Feedback events that stop email to the customer, and the suppression reason they record.
SUPPRESSING_EVENTS = {
    "email.unsubscribed": "unsubscribed",
    "email.bounced": "bounced",
    "email.complained": "complaint",
}


@dataclass
class StepReport:
    """What one call of :meth:`Engine.advance` did, per ``journey.step``."""

    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, journey: str, step: str, n: int) -> None:
        """Count ``n`` enrollments handled at ``journey.step``."""
        if n:
            self.counts[f"{journey}.{step}"] += n

    @property
    def total(self) -> int:
        """Enrollments handled in all."""
        return sum(self.counts.values())


@dataclass
class _Batch:
    """Rows to write at the end of one batch (all writes happen in a few statements)."""

    customers_new: dict[str, dict[str, Any]] = field(default_factory=dict)
    customers_dirty: dict[str, dict[str, Any]] = field(default_factory=dict)
    enrollments_new: list[dict[str, Any]] = field(default_factory=list)
    enrollments_dirty: dict[int, dict[str, Any]] = field(default_factory=dict)
    conversions: list[tuple[int, datetime]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    new_history: list[tuple[int, str, str, datetime, str]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    stages: list[dict[str, Any]] = field(default_factory=list)
    suppressions: list[dict[str, Any]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    timezones_changed: bool = False
    # Read state shared by the decisions of one batch.
    past: dict[tuple[str, str], tuple[int, datetime | None]] = field(default_factory=dict)
    unconverted: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    # Expression views of customers, built once per customer per batch; every change to a
    # customer (profile, order stats, attributes, stage) drops its entry.
    views: dict[str, dict[str, Any]] = field(default_factory=dict)

    def view(self, person: dict[str, Any]) -> dict[str, Any]:
        """The customer's expression view (:func:`customer_view`), cached for this batch."""
        view = self.views.get(person["id"])
        if view is None:
            view = self.views[person["id"]] = customer_view(person)
        return view


class Engine:
    """Runs compiled plans against a store. Thin shells (CLI, APScheduler, Prefect) call it."""

    def __init__(
        self,
        db: SqlEngine,
        plans: Mapping[str, Plan],
        *,
        lifecycle: Lifecycle,
        settings: Settings,
        templates: TemplateStore,
        clock: Clock,
        batch_size: int = 2000,
        set_based: bool = True,
    ) -> None:
        self.db = db
        self.plans = dict(plans)
        self.lifecycle = lifecycle
        self.settings = settings
        self.templates = templates
        self.renderer = Renderer(settings, templates, clock)
        self.clock = clock
        self.batch_size = batch_size
        self.set_based = set_based
        """Advance steps that need no Python (:mod:`journeys.runtime.setbased`) in SQL."""
        self.set_chunk: int | None = None
        """Rows (SQLite: ids per window) per set-based transaction (default: twenty batches,
        at least 10,000). Each window rewrites every page of the due index it touches, and
        a due backlog is scattered over that whole index, so fewer, larger windows write
        less (1M due waits: 1.65 GB written in windows of 100,000, 2.45 GB in 50,000)."""
        self.set_min_rows: int | None = None
        """Fewest due rows worth the set-based path (default: one batch). Its statements
        cost about a millisecond each whatever their size, more than Python's ~0.1 ms per
        step for a handful of rows; from a few thousand rows on they win by far."""
        self._set_steps: dict[tuple[str, str], dict[str, SetStep]] = {}
        self._versions: dict[tuple[str, str], Plan] = {
            (p.journey, p.version): p for p in plans.values()
        }
        self._by_event: dict[str, list[Plan]] = defaultdict(list)
        self._by_stage: dict[str, list[Plan]] = defaultdict(list)
        for plan in self.plans.values():
            if isinstance(plan.trigger, EventTrigger):
                self._by_event[plan.trigger.event].append(plan)
            elif isinstance(plan.trigger, StageTrigger):
                self._by_stage[plan.trigger.stage].append(plan)
        self._goal_journeys: dict[str, list[str]] = defaultdict(list)
        for plan in self.plans.values():
            if plan.goal:
                self._goal_journeys[plan.goal.event].append(plan.journey)
        self._rules_by_event: dict[str, list[Any]] = defaultdict(list)
        for rule in lifecycle.rules:
            self._rules_by_event[rule.event].append(rule)
        self.emitted = 0
        """Events this engine has emitted (stage changes, ``emit`` steps): quiesce watches it."""
        self.queued = 0
        """Outbox rows this engine has queued: virtual-time drivers dispatch only after some."""
        self._tz_cache: list[str | None] | None = None
        self._next_fire: dict[str, datetime] = {}
        self._save_versions()

    # ------------------------------------------------------------------ versions

    def _save_versions(self) -> None:
        now = self.clock.now()
        rows = [
            {"journey": p.journey, "version": p.version, "plan": p.to_dict(), "created_at": now}
            for p in self.plans.values()
        ]
        with self.db.begin() as conn:
            repo.save_versions(conn, rows)

    def plan_for(self, conn: Connection, journey: str, version: str) -> Plan | None:
        """The plan an enrollment runs on: the version it started with."""
        key = (journey, version)
        plan = self._versions.get(key)
        if plan is None:
            stored = repo.load_version(conn, journey, version)
            if stored is None:
                return None
            plan = Plan.from_dict(stored)
            self._versions[key] = plan
        return plan

    # ------------------------------------------------------------------ match

    def process_events(self, limit: int | None = None) -> int:
        """Match every pending event that has occurred by now, in batches; returns how many."""
        done = 0
        while limit is None or done < limit:
            size = self.batch_size if limit is None else min(self.batch_size, limit - done)
            n = self._process_batch(size)
            done += n
            if n < size:
                # A short batch took everything due; what it emitted waits for the next round.
                break
        return done

    @retry_conflicts
    def _process_batch(self, size: int) -> int:
        now = self.clock.now()
        with self.db.begin() as conn:
            rows = repo.claim_pending_events(conn, now, size)
            if rows and conn.dialect.name == "postgresql":
                rows = self._in_customer_order(conn, rows, now)
            if not rows:
                return 0
            errors = self._match(conn, rows, now)
            repo.mark_events_processed(conn, [r["seq"] for r in rows], now, errors)
        return len(rows)

    @staticmethod
    def _in_customer_order(
        conn: Connection, rows: list[dict[str, Any]], now: datetime
    ) -> list[dict[str, Any]]:
        """Leave out the events of a customer who has an earlier due event outside this batch.

        With several workers, that earlier event is in another worker's open batch (SKIP
        LOCKED skipped it) or arrived late. Matching this batch's later events first would
        reorder the customer's history — an order matched before the cart event it should end.
        The left-out events stay pending; a later batch takes them, after the earlier one.
        """
        mine = {r["seq"] for r in rows}
        first_elsewhere: dict[str, tuple[datetime, int]] = {}
        pending = repo.pending_event_keys(conn, {r["customer_id"] for r in rows}, now)
        for cid, keys in pending.items():
            others = [k for k in keys if k[1] not in mine]
            if others:
                first_elsewhere[cid] = min(others)
        if not first_elsewhere:
            return rows
        return [
            r
            for r in rows
            if r["customer_id"] not in first_elsewhere
            or (r["occurred_at"], r["seq"]) < first_elsewhere[r["customer_id"]]
        ]

    def _match(self, conn: Connection, rows: list[dict[str, Any]], now: datetime) -> dict[int, str]:
        batch = _Batch()
        errors: dict[int, str] = {}
        ids = {r["customer_id"] for r in rows}
        active: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for enr in repo.active_enrollments(conn, ids):  # locks enrollments, then customers
            active[enr["customer_id"]].append(enr)
        people = repo.load_customers(conn, ids, lock=True)
        types = {r["type"] for r in rows}
        trigger_journeys = {p.journey for t in types for p in self._by_event.get(t, [])}
        if STAGE_ENTERED in types:  # stage changes made here are matched in a later batch
            trigger_journeys |= {p.journey for ps in self._by_stage.values() for p in ps}
        batch.past = repo.enrollment_history(conn, ids, trigger_journeys)
        goal_types = types & set(self._goal_journeys)
        if goal_types:
            names = {j for t in goal_types for j in self._goal_journeys[t]}
            for enr in repo.unconverted_enrollments(conn, ids, names):
                batch.unconverted[enr["customer_id"]].append(enr)

        for event in rows:
            try:
                self._match_one(conn, event, people, active, batch)
            except (RecordError, ExpressionError) as exc:
                errors[event["seq"]] = str(exc)[:500]
        self._write(conn, batch, now)
        return errors

    def _match_one(
        self,
        conn: Connection,
        event: dict[str, Any],
        people: dict[str, dict[str, Any]],
        active: dict[str, list[dict[str, Any]]],
        batch: _Batch,
    ) -> None:
        cid, etype, at = event["customer_id"], event["type"], event["occurred_at"]
        data = event.get("data") or {}
        person = people.get(cid)
        if person is None:
            if etype not in CREATING_EVENTS:
                raise RecordError(f"unknown customer {cid!r}: import it or send customer.updated")
            person = self.new_customer(cid, at)
            people[cid] = person
            batch.customers_new[cid] = person
        if self._apply_profile(person, event, batch):
            batch.views.pop(cid, None)
            if cid not in batch.customers_new:
                batch.customers_dirty[cid] = person
        view = batch.view(person)
        ev = event_view(event)
        ctx = expression_context(view, event=ev, answers={}, now=at, journey={})

        self._apply_rules(person, etype, ctx, at, batch, reason=f"rule on {etype}")

        for enr in list(active[cid]):
            plan = self.plan_for(conn, enr["journey"], enr["version"])
            if plan is None or at < enr["entered_at"]:
                # A late event that happened before this enrollment began is not about it.
                continue
            if etype in plan.exit_on:
                self._end(enr, decide.EXITED, etype, at, batch)
                active[cid].remove(enr)
                continue
            if enr.get("waiting_for") == etype:
                self._maybe_resume(plan, enr, event, view, at, batch)
                if enr["status"] != decide.ACTIVE:
                    # It ran off its end (on_event: end): later events of this batch must
                    # not end it a second time.
                    active[cid].remove(enr)

        if etype == "survey.answered":
            self._record_answer(event, active[cid], batch)

        for enr in batch.unconverted.get(cid, []):
            plan = self.plan_for(conn, enr["journey"], enr["version"])
            goal = plan.goal if plan else None
            if not goal or goal.event != etype or enr.get("_converted"):
                continue
            entered = enr["entered_at"]
            if at < entered or (
                goal.within_seconds and at > entered + timedelta(seconds=goal.within_seconds)
            ):
                continue
            if goal.when and not truthy(goal.when, ctx):
                continue
            enr["_converted"] = True
            if "id" in enr:
                batch.conversions.append((enr["id"], at))
            else:
                enr["converted_at"] = at

        candidates = list(self._by_event.get(etype, []))
        if etype == STAGE_ENTERED:
            candidates += self._by_stage.get(str(data.get("stage")), [])
        for plan in candidates:
            trigger = plan.trigger
            if isinstance(trigger, EventTrigger) and trigger.when:
                tctx = dict(ctx, journey={"id": plan.journey, "name": plan.name})
                if not truthy(trigger.when, tctx):
                    continue
            self._enroll(plan, cid, at, ev, active, batch, trigger_key=None)

    def new_customer(self, cid: str, at: datetime) -> dict[str, Any]:
        """A blank customer row (initial lifecycle stage, no orders)."""
        return {
            "id": cid,
            "email": None,
            "phone": None,
            "first_name": None,
            "last_name": None,
            "locale": None,
            "timezone": None,
            "birthday": None,
            "birthday_md": None,
            "email_opt_in": True,
            "stage": self.lifecycle.initial,
            "attributes": {},
            "orders_count": 0,
            "lifetime_value": 0.0,
            "first_order_at": None,
            "last_order_at": None,
            "created_at": at,
            "updated_at": at,
        }

    def _apply_profile(self, person: dict[str, Any], event: dict[str, Any], batch: _Batch) -> bool:
        """Apply what an event says about the customer; True if the profile changed."""
        etype, at, data = event["type"], event["occurred_at"], event.get("data") or {}
        if etype in CREATING_EVENTS:
            traits = normalise_customer(data, partial=True)
            if "timezone" in traits and traits["timezone"] != person.get("timezone"):
                batch.timezones_changed = True
            attrs = dict(person.get("attributes") or {})
            attrs.update(traits.pop("attributes", {}))
            person.update(traits)
            person["attributes"] = attrs
            person["updated_at"] = at
            return True
        if etype == "order.placed":
            person["orders_count"] = int(person.get("orders_count") or 0) + 1
            person["lifetime_value"] = float(person.get("lifetime_value") or 0) + float(
                data["total"]
            )
            first, last = person.get("first_order_at"), person.get("last_order_at")
            # Late events arrive out of order: keep the true first and last.
            person["first_order_at"] = at if first is None or at < first else first
            person["last_order_at"] = at if last is None or at > last else last
            person["updated_at"] = at
            return True
        if etype in SUPPRESSING_EVENTS:
            batch.suppressions.append(
                {
                    "customer_id": person["id"],
                    "channel": "email",
                    "reason": SUPPRESSING_EVENTS[etype],
                    "created_at": at,
                }
            )
        return False

    def _apply_rules(
        self,
        person: dict[str, Any],
        etype: str,
        ctx: dict[str, Any],
        at: datetime,
        batch: _Batch,
        reason: str,
    ) -> None:
        best: str | None = None
        for rule in self._rules_by_event.get(etype, []):
            if rule.when and not truthy(rule.when, ctx):
                continue
            if self.lifecycle.rank(rule.stage) > self.lifecycle.rank(best or person.get("stage")):
                best = rule.stage
        if best:
            self._change_stage(person, best, at, batch, reason)

    def _change_stage(
        self, person: dict[str, Any], stage: str, at: datetime, batch: _Batch, reason: str
    ) -> None:
        old = person.get("stage")
        if old == stage:
            return
        person["stage"] = stage
        person["updated_at"] = at
        batch.views.pop(person["id"], None)
        if person["id"] not in batch.customers_new:
            batch.customers_dirty[person["id"]] = person
        batch.stages.append(
            {
                "customer_id": person["id"],
                "from_stage": old,
                "to_stage": stage,
                "at": at,
                "reason": reason,
            }
        )
        batch.events.append(
            {
                "id": f"stage:{person['id']}:{stage}:{iso(at)}:{len(batch.events)}",
                "type": STAGE_ENTERED,
                "customer_id": person["id"],
                "occurred_at": at,
                "received_at": self.clock.now(),
                "data": {"stage": stage, "from": old},
                "source": "engine",
            }
        )

    def _maybe_resume(
        self,
        plan: Plan,
        enr: dict[str, Any],
        event: dict[str, Any],
        view: dict[str, Any],
        at: datetime,
        batch: _Batch,
    ) -> None:
        waiting_step = (enr.get("vars") or {}).get("waiting_step")
        if not waiting_step or not plan.has_step(waiting_step):
            return
        step = plan.step(waiting_step)
        data = event.get("data") or {}
        if isinstance(step, SurveyStep):
            if data.get("journey") != plan.journey or data.get("step") != step.id:
                return
            answers = dict((enr.get("vars") or {}).get("answers", {}))
            score = int(data["score"])
            category = survey_category(step.survey, score)
            answers[step.id] = {
                "score": score,
                "category": category,
                "comment": data.get("comment"),
            }
            enr["vars"] = dict(enr.get("vars") or {}, answers=answers)
        elif isinstance(step, WaitForStep):
            if step.when:
                ctx = expression_context(
                    view,
                    event=event_view(event),
                    answers=(enr.get("vars") or {}).get("answers", {}),
                    now=at,
                    journey={"id": plan.journey, "name": plan.name},
                )
                if not truthy(step.when, ctx):
                    return
        else:
            return
        outcome = decide.resume(step, enr.get("vars") or {}, at)
        self._apply_outcome(enr, outcome, at, batch)

    def _record_answer(
        self, event: dict[str, Any], active: list[dict[str, Any]], batch: _Batch
    ) -> None:
        data = event.get("data") or {}
        journey, step_id = str(data.get("journey")), str(data.get("step"))
        plan = self.plans.get(journey)
        kind = "nps"
        if plan and plan.has_step(step_id) and isinstance(plan.step(step_id), SurveyStep):
            kind = plan.step(step_id).survey  # type: ignore[attr-defined]
        score = int(data["score"])
        enrollment_id = next(
            (e["id"] for e in active if e["journey"] == journey and e.get("id")), None
        )
        batch.answers.append(
            {
                "event_id": event["id"],
                "enrollment_id": enrollment_id,
                "customer_id": event["customer_id"],
                "journey": journey,
                "step": step_id,
                "kind": kind,
                "score": score,
                "category": survey_category(kind, score),
                "comment": data.get("comment"),
                "answered_at": event["occurred_at"],
            }
        )

    def _enroll(
        self,
        plan: Plan,
        cid: str,
        at: datetime,
        event: dict[str, Any],
        active: dict[str, list[dict[str, Any]]],
        batch: _Batch,
        trigger_key: str | None,
    ) -> bool:
        if any(e["journey"] == plan.journey for e in active.get(cid, [])):
            return False
        count, last_end = batch.past.get((plan.journey, cid), (0, None))
        if count and plan.re_entry == "never":
            return False
        if (
            count
            and plan.re_entry == "after_exit"
            and plan.cooldown_seconds
            and last_end is not None
            and at < last_end + timedelta(seconds=plan.cooldown_seconds)
        ):
            return False
        enr = {
            "journey": plan.journey,
            "version": plan.version,
            "customer_id": cid,
            "status": decide.ACTIVE,
            "step": plan.start,
            "wake_at": at,
            "waiting_for": None,
            "vars": {"event": event} if event else {},
            "trigger_key": trigger_key,
            "entered_at": at,
            "ended_at": None,
            "exit_reason": None,
            "converted_at": None,
        }
        active[cid].append(enr)
        batch.past[(plan.journey, cid)] = (count + 1, last_end)
        batch.enrollments_new.append(enr)
        if plan.goal:
            batch.unconverted[cid].append(enr)
        return True

    def _end(
        self, enr: dict[str, Any], status: str, reason: str | None, at: datetime, batch: _Batch
    ) -> None:
        enr.update(status=status, exit_reason=reason, ended_at=at, wake_at=None, waiting_for=None)
        key = (enr["journey"], enr["customer_id"])
        count, _ = batch.past.get(key, (1, None))
        batch.past[key] = (count, at)
        self._touch(enr, batch)
        self._history(
            enr,
            enr["step"],
            f"exit_on {reason}" if status == decide.EXITED else "completed",
            at,
            batch,
        )

    def _touch(self, enr: dict[str, Any], batch: _Batch) -> None:
        if "id" in enr:
            batch.enrollments_dirty[enr["id"]] = enr

    def _history(
        self, enr: dict[str, Any], step: str, outcome: str, at: datetime, batch: _Batch
    ) -> None:
        if "id" in enr:
            batch.history.append(
                {
                    "enrollment_id": enr["id"],
                    "journey": enr["journey"],
                    "step": step,
                    "at": at,
                    "outcome": outcome[:200],
                }
            )
        else:
            batch.new_history.append((id(enr), enr["journey"], step, at, outcome[:200]))

    def _apply_outcome(
        self, enr: dict[str, Any], out: decide.Outcome, at: datetime, batch: _Batch
    ) -> None:
        enr["step"] = out.step
        enr["wake_at"] = out.wake_at
        enr["waiting_for"] = out.waiting_for
        enr["vars"] = out.vars
        if out.ended:
            enr.update(
                status=out.status,
                exit_reason=out.exit_reason,
                ended_at=at,
                wake_at=None,
                waiting_for=None,
            )
        self._touch(enr, batch)
        for step_id, label in out.history:
            self._history(enr, step_id, label, at, batch)

    # ------------------------------------------------------------------ triggers by time

    def sweep_triggers(self, journey: str | None = None) -> int:
        """Run date and schedule triggers due between their last sweep and now.

        A trigger whose next possible fire time is still ahead is skipped without touching
        the database, so ticking often costs nothing between fires.
        """
        enrolled = 0
        now = self.clock.now()
        for plan in self.plans.values():
            if journey and plan.journey != journey:
                continue
            if not isinstance(plan.trigger, DateTrigger | ScheduleTrigger):
                continue
            upcoming = self._next_fire.get(plan.journey)
            if upcoming is not None and now < upcoming:
                continue
            if isinstance(plan.trigger, DateTrigger):
                enrolled += self._sweep_date(plan)
            else:
                enrolled += self._sweep_schedule(plan)
            self._next_fire[plan.journey] = self._next_fire_after(plan, now)
        return enrolled

    def _timezones(self, conn: Connection) -> list[str | None]:
        """Distinct customer time zones, cached until customers are added or changed."""
        if self._tz_cache is None:
            self._tz_cache = repo.customer_timezones(conn)
        return self._tz_cache

    def customers_changed(self) -> None:
        """Forget what was cached about customers (their time zones, next fire times)."""
        self._tz_cache = None
        self._next_fire.clear()

    def _next_fire_after(self, plan: Plan, after: datetime) -> datetime:
        """The first instant after ``after`` at which ``plan``'s time trigger could enroll."""
        trigger = plan.trigger
        if isinstance(trigger, ScheduleTrigger):
            tz = zone(plan.timezone, self.settings.timezone)
            return as_utc(croniter(trigger.cron, after.astimezone(tz)).get_next(datetime))
        assert isinstance(trigger, DateTrigger)
        with self.db.connect() as conn:
            tzs = self._timezones(conn)
        default = plan.timezone or self.settings.timezone
        at, offset = trigger.at_minutes, trigger.offset_seconds
        return min(next_fire_instant(zone(n, default), at, offset, after) for n in tzs or [None])

    def start_cursors(self, at: datetime) -> None:
        """Sweep date and schedule triggers from ``at`` on (no backfill before it)."""
        with self.db.begin() as conn:
            for plan in self.plans.values():
                key = f"trigger:{plan.journey}"
                timed = isinstance(plan.trigger, DateTrigger | ScheduleTrigger)
                if timed and repo.get_state(conn, key) is None:
                    repo.set_state(conn, key, at)

    def _cursor(self, conn: Connection, plan: Plan, now: datetime) -> datetime:
        last = repo.get_state(conn, f"trigger:{plan.journey}", lock=True)
        return last if last is not None else now

    @retry_conflicts
    def _sweep_date(self, plan: Plan) -> int:
        trigger = plan.trigger
        assert isinstance(trigger, DateTrigger)
        now = self.clock.now()
        with self.db.begin() as conn:
            since = self._cursor(conn, plan, now)
            if since >= now:
                repo.set_state(conn, f"trigger:{plan.journey}", now)
                return 0
            batch = _Batch()
            candidates: list[tuple[dict[str, Any], datetime, Any]] = []
            default_tz = plan.timezone or self.settings.timezone
            # (zone, MM-DD) → the day and instant it fires, for every fire in the window.
            fires: dict[tuple[str | None, str], tuple[Any, datetime]] = {}
            for tz_name in self._timezones(conn):
                tz = zone(tz_name, default_tz)
                for day, instant in fire_instants(
                    tz, trigger.at_minutes, trigger.offset_seconds, since, now
                ):
                    keys = month_days_on(day, self.settings.feb29)
                    if trigger.field == "birthday":  # indexed: one query per zone and day
                        rows = repo.customers_with_birthday(conn, tz_name, keys)
                        candidates.extend((row, instant, day) for row in rows)
                    else:
                        fires.update({(tz_name, key): (day, instant) for key in keys})
            if fires:
                candidates += self._customers_with_date_attr(conn, trigger.field, fires)
            enrolled = self._enroll_many(conn, plan, candidates, batch, kind="date")
            self._write(conn, batch, now)
            repo.set_state(conn, f"trigger:{plan.journey}", now)
        return enrolled

    @staticmethod
    def _customers_with_date_attr(
        conn: Connection,
        field_name: str,
        fires: dict[tuple[str | None, str], tuple[Any, datetime]],
    ) -> list[tuple[dict[str, Any], datetime, Any]]:
        """Customers whose date ``field_name`` (an attribute, not indexed) falls on a fire of
        ``fires``, keyed by (zone, MM-DD): one pass over the customers per sweep."""
        found = []
        for chunk in repo.iter_customers(conn):
            for row in chunk:
                value = str(
                    (row.get("attributes") or {}).get(field_name) or row.get(field_name) or ""
                )
                fire = fires.get((row.get("timezone"), value[5:10]))
                if fire is not None:
                    found.append((row, fire[1], fire[0]))
        return found

    @retry_conflicts
    def _sweep_schedule(self, plan: Plan) -> int:
        trigger = plan.trigger
        assert isinstance(trigger, ScheduleTrigger)
        now = self.clock.now()
        tz = zone(plan.timezone, self.settings.timezone)
        enrolled = 0
        with self.db.begin() as conn:
            since = self._cursor(conn, plan, now)
            fires = []
            it = croniter(trigger.cron, since.astimezone(tz))
            while True:
                fire = as_utc(it.get_next(datetime))
                if fire > now:
                    break
                fires.append(fire)
            # The database leaves out customers an `and` operand of the segment rules out;
            # Python decides the rest exactly.
            necessary = necessary_conditions(trigger.segment) if trigger.segment else ()
            journey = {"id": plan.journey, "name": plan.name}
            for fire in fires:
                batch = _Batch()
                failed: list[str] = []
                for chunk in setrepo.segment_customers(conn, necessary):
                    matched = []
                    for row in chunk:
                        if trigger.segment is None:  # everyone: no context to build
                            matched.append((row, fire, None))
                            continue
                        ctx = expression_context(
                            customer_view(row), event={}, answers={}, now=fire, journey=journey
                        )
                        try:
                            if truthy(trigger.segment, ctx):
                                matched.append((row, fire, None))
                        except ExpressionError as exc:
                            # One customer's data must not stop the sweep for everyone.
                            failed.append(f"{row['id']}: {exc}")
                    enrolled += self._enroll_many(conn, plan, matched, batch, kind="schedule")
                self._write(conn, batch, now)
                if failed:
                    log.warning(
                        "%s: the segment failed for %d customer(s), not enrolled (first: %s)",
                        plan.journey,
                        len(failed),
                        failed[0],
                    )
            repo.set_state(conn, f"trigger:{plan.journey}", now)
        return enrolled

    def _enroll_many(
        self,
        conn: Connection,
        plan: Plan,
        candidates: list[tuple[dict[str, Any], datetime, Any]],
        batch: _Batch,
        kind: str,
    ) -> int:
        if not candidates:
            return 0
        ids = [row["id"] for row, _, _ in candidates]
        active: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for enr in repo.active_enrollments(conn, ids):
            active[enr["customer_id"]].append(enr)
        batch.past.update(repo.enrollment_history(conn, ids, [plan.journey]))
        enrolled = 0
        for row, instant, day in candidates:
            if kind == "date":
                key = str(day.year)
                event = {
                    "type": "date",
                    "occurred_at": iso(instant),
                    "data": {"date": day.isoformat()},
                }
            else:
                key = instant.strftime("%Y%m%dT%H%M")
                event = {"type": "schedule", "occurred_at": iso(instant), "data": {}}
            enrolled += self._enroll(
                plan, row["id"], instant, event, active, batch, trigger_key=key
            )
        return enrolled

    # ------------------------------------------------------------------ advance

    def due_steps(self, journey: str | None = None) -> list[tuple[str, str]]:
        """(journey, step) pairs with enrollments due now."""
        with self.db.connect() as conn:
            return repo.due_steps(conn, self.clock.now(), journey)

    def advance(self, journey: str | None = None, max_rounds: int = 10_000) -> StepReport:
        """Advance every due enrollment step by step until each waits or ends.

        Steps that need no Python (fixed waits, gotos, branches on customer fields, literal
        updates, exits, the end) move whole chunks of enrollments in a few statements
        (:meth:`_advance_set`). The rest run in batches that claim due enrollments at any step
        (one query) and take each of them through the steps that fall due while it runs (each
        step at the enrollment's own wake time, exactly as step-by-step rounds would), so a
        chain of immediate steps costs one batch, not one batch per step. ``max_rounds``
        bounds the batches.
        """
        report = StepReport()
        # Once a set-based pass finds nothing to do, the Python batches take the rest: they
        # carry each enrollment through any set-based steps that follow on their own.
        set_done = not self.set_based
        for _ in range(max_rounds):
            if not set_done:
                if self._advance_set(report, journey=journey):
                    continue
                set_done = True
            if self._advance_batch(journey, report) < self.batch_size:
                break  # a short batch claimed everything that was due
        return report

    def _set_step(self, conn: Connection, journey: str, version: str, step: str) -> SetStep | None:
        key = (journey, version)
        found = self._set_steps.get(key)
        if found is None:
            plan = self.plan_for(conn, journey, version)
            found = self._set_steps[key] = set_steps(plan) if plan else {}
        return found.get(step)

    def _advance_set(
        self,
        report: StepReport,
        *,
        journey: str | None = None,
        step: str | None = None,
        limit: int | None = None,
    ) -> int:
        """Run the set-based steps of due enrollments in SQL; returns how many enrollment-steps
        ran (0: nothing set-based was due, or every row at such a step needs Python, e.g. a
        condition on a missing attribute).

        A small due set goes as one chunk of ids. A large one on SQLite goes window by window
        over the table's id range (``size`` ids per window, one transaction each): rows close
        in the table are close on disk, so a million due rows cost a sequential pass instead
        of a million random page visits.
        """
        now = self.clock.now()
        size = limit or self.set_chunk or max(20 * self.batch_size, 10_000)
        least = self.batch_size if self.set_min_rows is None else self.set_min_rows
        if limit is not None:
            least = 1  # one step's batch (advance_step): the caller chose the size
        # A read: every round of every tick asks, and the chunks re-check everything.
        with self.db.connect() as conn, conn.execution_options(**READ_ONLY).begin():
            count = setrepo.due_count(conn, now, size + 1, journey=journey, step=step)
            if count == 0 or count < least:
                return 0
            span = setrepo.id_span(conn) if conn.dialect.name == "sqlite" else None
        if span is not None and count > size:
            return sum(
                self._set_chunk(report, now, journey, step, size, (a, a + size - 1))
                for a in range(span[0], span[1] + 1, size)
            )
        return self._set_chunk(report, now, journey, step, size, None)

    @retry_conflicts
    def _set_chunk(
        self,
        report: StepReport,
        now: datetime,
        journey: str | None,
        step: str | None,
        size: int,
        window: tuple[int, int] | None,
    ) -> int:
        """One transaction: the set-based steps of one chunk (or id window) of due rows, and
        the set-based steps those rows move on to (a branch, an update, the end)."""
        moved = 0
        with self.db.begin() as conn:
            groups = setrepo.due_groups(conn, now, size, journey=journey, step=step, window=window)
            queue = [((g.journey, g.version, g.step), g) for g in groups]
            # Bounded like MAX_STEPS_PER_BATCH: a cycle of zero-length waits stops here and
            # goes on in the next chunk.
            for _ in range(self.MAX_STEPS_PER_BATCH):
                if not queue:
                    break
                (j, v, s), group = queue.pop(0)
                spec = self._set_step(conn, j, v, s)
                if spec is None:
                    continue
                # Only a whole advance (no single ``step`` asked for) runs on past the step.
                then = chained(spec, self._set_steps[(j, v)]) if step is None else {}
                if then:
                    counts = setrepo.advance_chained(conn, spec, then, now, group)
                else:
                    counts = {s: setrepo.advance_set_step(conn, spec, now, group)}
                for ran, n in counts.items():
                    report.add(j, ran, n)
                    moved += n
                if counts[s] and step is None:
                    # The statements re-check step and due time, so handing the same rows on
                    # is exact: only those that moved to that step and are due take it.
                    queue.extend(((j, v, t), group) for t in _next_steps(spec, then))
        return moved

    # Immediate steps one enrollment may run in one batch (specs reject loops without a wait;
    # this is only a guard, the rest runs in the next batch).
    MAX_STEPS_PER_BATCH = 1000

    @retry_conflicts
    def _advance_batch(self, journey: str | None, report: StepReport) -> int:
        """One batch of due enrollments at any step, each run on while it stays due."""
        now = self.clock.now()
        with self.db.begin() as conn:
            rows = repo.claim_due_any(conn, journey, now, self.batch_size)
            self._run_claimed(conn, rows, now, report, chain=True)
        return len(rows)

    def advance_step(self, journey: str, step: str, limit: int | None = None) -> int:
        """Run ``step`` of ``journey`` for one batch of due enrollments; returns how many."""
        if self.set_based:
            moved = self._advance_set(StepReport(), journey=journey, step=step, limit=limit)
            if moved:
                return moved
        return self._advance_step_batch(journey, step, limit or self.batch_size)

    @retry_conflicts
    def _advance_step_batch(self, journey: str, step: str, limit: int) -> int:
        now = self.clock.now()
        with self.db.begin() as conn:
            rows = repo.claim_due(conn, journey, step, now, limit)
            self._run_claimed(conn, rows, now, StepReport(), chain=False)
        return len(rows)

    def _run_claimed(
        self,
        conn: Connection,
        rows: list[dict[str, Any]],
        now: datetime,
        report: StepReport,
        *,
        chain: bool,
    ) -> None:
        """Run claimed enrollments in the caller's transaction: one step each, or (``chain``)
        every step that falls due while they run, each at its own wake time."""
        if not rows:
            return
        counts: dict[tuple[str, str], int] = defaultdict(int)
        batch = _Batch()
        people = repo.load_customers(conn, {r["customer_id"] for r in rows}, lock=True)
        for enr in rows:
            for _ in range(self.MAX_STEPS_PER_BATCH if chain else 1):
                counts[(enr["journey"], enr["step"])] += 1
                self._advance_one(conn, enr, people, batch)
                wake = enr.get("wake_at")
                if enr.get("status") != decide.ACTIVE or wake is None or wake > now:
                    break
        self._write(conn, batch, now)
        for (j, s), n in counts.items():
            report.add(j, s, n)

    def _advance_one(
        self,
        conn: Connection,
        enr: dict[str, Any],
        people: dict[str, dict[str, Any]],
        batch: _Batch,
    ) -> None:
        at = enr["wake_at"]
        step_id = enr["step"]
        plan = self.plan_for(conn, enr["journey"], enr["version"])
        person = people.get(enr["customer_id"])
        if plan is None or person is None:
            self._end(enr, decide.EXITED, "error: plan version or customer missing", at, batch)
            return
        vars_ = enr.get("vars") or {}
        if enr.get("waiting_for"):
            # A wait_for/survey deadline passed: record the timeout on the waiting step.
            self._history(enr, vars_.get("waiting_step", step_id), "timed out", at, batch)
            enr["waiting_for"] = None
        if step_id == END:
            enr.update(status=decide.COMPLETED, ended_at=at, wake_at=None, waiting_for=None)
            enr["vars"] = {k: v for k, v in vars_.items() if k != "waiting_step"}
            self._touch(enr, batch)
            self._history(enr, END, "completed", at, batch)
            return
        if not plan.has_step(step_id):
            self._end(enr, decide.EXITED, f"error: step {step_id!r} not in version", at, batch)
            return
        step = plan.step(step_id)
        view = batch.view(person)
        ctx = expression_context(
            view,
            event=vars_.get("event"),
            answers=vars_.get("answers", {}),
            now=at,
            journey={"id": plan.journey, "name": plan.name},
        )
        out = decide.run_step(
            plan,
            step,
            customer_id=person["id"],
            vars_=vars_,
            context=ctx,
            at=at,
            customer_tz=person.get("timezone") or None,
        )
        if out.messages:
            sent = dict(out.vars.get("sent", {}))
            for intent in out.messages:
                sent[intent.step] = sent.get(intent.step, 0) + 1
            out.vars["sent"] = sent
        self._apply_outcome(enr, out, at, batch)
        for intent in out.messages:
            batch.outbox.append(self.renderer.outbox_row(enr, intent, person, ctx, at, plan))
        if out.set_attributes:
            attrs = dict(person.get("attributes") or {})
            attrs.update(out.set_attributes)
            person["attributes"] = attrs
            person["updated_at"] = at
            batch.views.pop(person["id"], None)
            batch.customers_dirty[person["id"]] = person
        if out.stage:
            self._change_stage(person, out.stage, at, batch, reason=f"{plan.journey}.{step_id}")
        for event_type, data in out.emits:
            batch.events.append(
                {
                    # Deterministic: a replayed batch emits the same id, deduplicated on insert.
                    "id": f"emit:{enr['id']}:{step_id}:{iso(at)}",
                    "type": event_type,
                    "customer_id": person["id"],
                    "occurred_at": at,
                    "received_at": self.clock.now(),
                    "data": data,
                    "source": f"journey:{plan.journey}",
                }
            )

    # ------------------------------------------------------------------ write

    def _write(self, conn: Connection, batch: _Batch, now: datetime) -> None:
        """Apply a batch in a handful of statements (the caller's transaction)."""
        if batch.customers_new or batch.timezones_changed:
            self.customers_changed()
        repo.insert_customers(conn, list(batch.customers_new.values()))
        repo.update_customers(
            conn, [p for p in batch.customers_dirty.values() if p["id"] not in batch.customers_new]
        )
        repo.add_suppressions(conn, batch.suppressions)
        repo.add_stage_history(conn, batch.stages)
        if batch.enrollments_new:
            ids = repo.insert_enrollments(conn, batch.enrollments_new)
            for enr, new_id in zip(batch.enrollments_new, ids, strict=True):
                enr["id"] = new_id
            by_obj = {id(e): e for e in batch.enrollments_new}
            for obj, journey, step, at, outcome in batch.new_history:
                enr = by_obj.get(obj)
                if enr is not None and enr.get("id") is not None:
                    batch.history.append(
                        {
                            "enrollment_id": enr["id"],
                            "journey": journey,
                            "step": step,
                            "at": at,
                            "outcome": outcome,
                        }
                    )
        repo.update_enrollments(
            conn, [e for e in batch.enrollments_dirty.values() if e.get("id") is not None]
        )
        repo.set_converted(conn, batch.conversions)
        repo.add_step_runs(conn, batch.history)
        repo.add_survey_answers(conn, batch.answers)
        if batch.outbox:
            self._apply_consent(conn, batch.outbox)
            repo.add_outbox(conn, batch.outbox)
        repo.insert_events(conn, batch.events)
        self.emitted += len(batch.events)
        self.queued += len(batch.outbox)

    def _apply_consent(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Suppressions and frequency caps, checked once per batch."""
        email_rows = [
            r
            for r in rows
            if r["channel"] == "email" and r["kind"] != "notify" and r["status"] == "pending"
        ]
        if not email_rows:
            return
        blocked = repo.suppressed_customers(conn, [r["customer_id"] for r in email_rows], "email")
        cap, per = self.settings.frequency_cap_messages, self.settings.frequency_cap_seconds
        counts: dict[str, int] = {}
        if cap and per:
            since = min(r["due_at"] for r in email_rows) - timedelta(seconds=per)
            counts = repo.recent_message_counts(conn, [r["customer_id"] for r in email_rows], since)
        for row in email_rows:
            if row["customer_id"] in blocked:
                row.update(
                    status="suppressed", error="unsubscribed or bounced", html=None, text=None
                )
            elif cap and per and row["kind"] == "send":
                counts[row["customer_id"]] = counts.get(row["customer_id"], 0) + 1
                if counts[row["customer_id"]] > cap:
                    row.update(status="suppressed", error=f"frequency cap: {cap} per {per}s")

    # ------------------------------------------------------------------ time

    def next_event_time(self) -> datetime | None:
        """The next instant anything is scheduled to happen after now (for virtual time)."""
        now = self.clock.now()
        candidates: list[datetime] = []
        with self.db.connect() as conn:
            candidates.extend(t for t in repo.next_times(conn, now) if t is not None)
        for plan in self.plans.values():
            if isinstance(plan.trigger, DateTrigger | ScheduleTrigger):
                upcoming = self._next_fire.get(plan.journey)
                if upcoming is None or upcoming <= now:
                    upcoming = self._next_fire_after(plan, now)
                candidates.append(upcoming)
        return min(candidates) if candidates else None


def _next_steps(spec: SetStep, then: Mapping[str, SetStep]) -> list[str]:
    """Steps the rows of ``spec`` (and its chained targets ``then``) may be due at next."""
    if spec.wait:
        return []
    found: dict[str, None] = {}
    for arm in spec.arms:
        target = then.get(arm.target)
        if target is None:
            found[arm.target] = None
        elif not target.wait and target.exit_reason is None:
            found[target.arms[0].target] = None
    return [step for step in found if step != END]


def quiesce(engine: Engine, max_rounds: int = 1000) -> dict[str, int]:
    """Process events, sweep triggers and advance until nothing is due at this instant.

    Advance runs after matching in every round, so what matching enrolls or wakes is advanced
    in the same round; another round is needed only when the round emitted events (a stage
    change, an ``emit`` step), which must be matched in turn.
    """
    totals: dict[str, int] = defaultdict(int)
    for _ in range(max_rounds):
        emitted = engine.emitted
        events = engine.process_events()
        swept = engine.sweep_triggers()
        report = engine.advance()
        totals["events"] += events
        totals["enrolled_by_time"] += swept
        for key, n in report.counts.items():
            totals[key] += n
        if engine.emitted == emitted:
            break
    return dict(totals)


def iter_chunks(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    """Lists of up to ``size`` items."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
