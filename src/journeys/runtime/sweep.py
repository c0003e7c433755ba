"""Date and schedule triggers: when they fire, and who enters at a fire.

A date trigger fires once a year per customer, at a local time in the customer's own zone
(``birthday`` at 09:00); a schedule fires at cron times in the journey's zone for everyone in
its segment. :meth:`Sweeper.fires` lists the fires of a window; the pass runs each at its
instant, after every customer's earlier events and steps (:mod:`.passes`), so a fire sees the
profiles as they were at that instant.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from croniter import croniter

from journeys.clock import as_utc
from journeys.expressions import ExpressionError, truthy
from journeys.plan import DateTrigger, Plan, ScheduleTrigger
from journeys.runtime.batch import Batch, CustomerState
from journeys.runtime.context import expression_context
from journeys.runtime.enroll import enroll
from journeys.runtime.setbased import necessary_conditions
from journeys.runtime.timecalc import fire_instants, month_days_on, next_fire_instant, zone
from journeys.state import Customer, iso

log = logging.getLogger("journeys.sweep")


@dataclass(frozen=True)
class Fire:
    """One instant at which a timed trigger enrolls: a date trigger in one customer zone
    (``zone`` None: customers without one) on anniversary ``day``, or a schedule's cron time."""

    at: datetime
    journey: str
    zone: str | None = None
    day: date | None = None


class Sweeper:
    """Fires of the timed triggers of a plan set, with the customer time zones they need
    cached until profiles change."""

    def __init__(self, plans: dict[str, Plan], default_tz: str, feb29: str) -> None:
        self.plans = {
            j: p for j, p in plans.items() if isinstance(p.trigger, DateTrigger | ScheduleTrigger)
        }
        self.default_tz = default_tz
        self.feb29 = feb29
        self._zones: list[str | None] | None = None
        self._attr_candidates: dict[str, dict[tuple[str | None, str], list[Customer]]] = {}

    def profiles_changed(self) -> None:
        """Forget what was derived from customer profiles (their zones, date attributes)."""
        self._zones = None
        self._attr_candidates.clear()

    def zones(self, batch: Batch) -> list[str | None]:
        """The distinct customer time zones (None: customers without one)."""
        if self._zones is None:
            self._zones = batch.tx.customer_timezones()
        return self._zones

    def fires(self, batch: Batch, since: dict[str, datetime | None], until: datetime) -> list[Fire]:
        """Every fire in ``(since[journey], until]``, in time order. A journey whose cursor is
        None (its first run) catches up on today: fires earlier today in each zone count."""
        found: list[Fire] = []
        for journey, plan in self.plans.items():
            start = since.get(journey)
            trigger = plan.trigger
            if isinstance(trigger, ScheduleTrigger):
                tz = zone(plan.timezone, self.default_tz)
                after = start if start is not None else until
                it = croniter(trigger.cron, after.astimezone(tz))
                while (fire := as_utc(it.get_next(datetime))) <= until:
                    found.append(Fire(fire, journey))
                continue
            assert isinstance(trigger, DateTrigger)
            default = plan.timezone or self.default_tz
            for name in self.zones(batch):
                tz = zone(name, default)
                after = start if start is not None else _local_midnight(until, tz)
                for day, instant in fire_instants(
                    tz, trigger.at_minutes, trigger.offset_seconds, after, until
                ):
                    found.append(Fire(instant, journey, name, day))
        found.sort(key=lambda f: (f.at, f.journey, f.zone or ""))
        return found

    def next_fire(self, batch: Batch, journey: str, after: datetime) -> datetime:
        """The first instant after ``after`` at which ``journey``'s trigger could enroll."""
        plan = self.plans[journey]
        trigger = plan.trigger
        if isinstance(trigger, ScheduleTrigger):
            tz = zone(plan.timezone, self.default_tz)
            return as_utc(croniter(trigger.cron, after.astimezone(tz)).get_next(datetime))
        assert isinstance(trigger, DateTrigger)
        default = plan.timezone or self.default_tz
        at, offset = trigger.at_minutes, trigger.offset_seconds
        return min(
            next_fire_instant(zone(n, default), at, offset, after)
            for n in self.zones(batch) or [None]
        )

    def sweep(self, batch: Batch, fires: Iterable[Fire]) -> int:
        """Enroll everyone the ``fires`` (all at one instant) select; returns how many."""
        enrolled = 0
        for fire in fires:
            plan = self.plans[fire.journey]
            if isinstance(plan.trigger, ScheduleTrigger):
                enrolled += self._schedule(batch, plan, fire)
            else:
                enrolled += self._date(batch, plan, fire)
        return enrolled

    def _date(self, batch: Batch, plan: Plan, fire: Fire) -> int:
        trigger = plan.trigger
        assert isinstance(trigger, DateTrigger) and fire.day is not None
        keys = month_days_on(fire.day, self.feb29)
        if trigger.field == "birthday":  # indexed: one query per zone and day
            found = batch.tx.customers_with_birthday(fire.zone, keys)
        else:
            found = self._with_date_attribute(batch, trigger.field, fire.zone, keys)
        event = {
            "type": "date",
            "occurred_at": iso(fire.at),
            "data": {"date": fire.day.isoformat()},
        }
        return _enroll_all(batch, plan, found, fire.at, event, str(fire.day.year))

    def _with_date_attribute(
        self, batch: Batch, field_name: str, tz_name: str | None, keys: list[str]
    ) -> list[Customer]:
        """Customers in zone ``tz_name`` whose date attribute ``field_name`` falls on one of
        ``keys`` (``MM-DD``): one pass over the customers until profiles change."""
        by_key = self._attr_candidates.get(field_name)
        if by_key is None:
            by_key = self._attr_candidates[field_name] = {}
            for chunk in batch.tx.segment_customers(()):
                for customer in chunk:
                    value = str(customer.attributes.get(field_name) or "")
                    by_key.setdefault((customer.timezone, value[5:10]), []).append(customer)
        return [c for key in keys for c in by_key.get((tz_name, key), [])]

    def _schedule(self, batch: Batch, plan: Plan, fire: Fire) -> int:
        trigger = plan.trigger
        assert isinstance(trigger, ScheduleTrigger)
        # The store leaves out customers an `and` operand of the segment rules out; Python
        # decides the rest exactly.
        necessary = necessary_conditions(trigger.segment) if trigger.segment else ()
        journey = {"id": plan.journey, "name": plan.name}
        event = {"type": "schedule", "occurred_at": iso(fire.at), "data": {}}
        key = fire.at.strftime("%Y%m%dT%H%M")
        enrolled, failed = 0, []
        for chunk in batch.tx.segment_customers(necessary):
            matched = []
            for customer in chunk:
                if trigger.segment is None:  # everyone: no context to build
                    matched.append(customer)
                    continue
                ctx = expression_context(
                    customer.view(), event={}, answers={}, now=fire.at, journey=journey
                )
                try:
                    if truthy(trigger.segment, ctx):
                        matched.append(customer)
                except ExpressionError as exc:
                    # One customer's data must not stop the sweep for everyone.
                    failed.append(f"{customer.id}: {exc}")
            enrolled += _enroll_all(batch, plan, matched, fire.at, event, key)
        if failed:
            log.warning(
                "%s: the segment failed for %d customer(s), not enrolled (first: %s)",
                plan.journey,
                len(failed),
                failed[0],
            )
        return enrolled


def _local_midnight(at: datetime, tz: Any) -> datetime:
    """Just before the start of ``at``'s local day in ``tz`` (as UTC)."""
    local = at.astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return as_utc(midnight) - timedelta(microseconds=1)


def _enroll_all(
    batch: Batch,
    plan: Plan,
    customers: list[Customer],
    at: datetime,
    event: dict[str, Any],
    key: str,
) -> int:
    """Enroll ``customers`` in ``plan`` at ``at`` where the re-entry rules allow."""
    if not customers:
        return 0
    ids = [c.id for c in customers]
    states = {c.id: CustomerState(c.id, c) for c in customers}
    for enrollment in batch.tx.active_enrollments(ids, lock=True):
        states[enrollment.customer_id].active.append(enrollment)
    for (journey, cid), past in batch.tx.enrollment_history(ids, [plan.journey]).items():
        states[cid].past[journey] = past
    return sum(
        enroll(batch, state, plan, at, event, trigger_key=key) is not None
        for state in states.values()
    )
