"""Virtual-time simulation: run journeys from ``start`` to ``until`` in an in-memory store.

The runtime is the real one on :class:`~journeys.store.memory.MemoryStore`; only the clock is
virtual and jumps from one scheduled instant to the next (an event's time, a wake-up, a date
or cron fire), so a month runs in seconds and every time is exact. Nothing is sent and no
database file is left behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from journeys.channels.base import ChannelError, OutboundMessage, SendResult
from journeys.clock import VirtualClock, iso
from journeys.service import JourneyService, RecordReport, default_channels
from journeys.spec import Project
from journeys.store.memory import MemoryStore

SENDABLE = ("pending", "sent")
RENDERED = ("subject", "text")
"""Message keys that ``simulate --render`` adds to the contract."""


class NullChannel:
    """Accepts every message and sends nothing (simulations)."""

    name = "null"

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult | ChannelError]:
        """One success per message."""
        return [SendResult(provider_id=None) for _ in messages]


@dataclass
class SimulationResult:
    """The simulation object of docs/simulate.md, plus the record errors met on the way."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    enrollments: list[dict[str, Any]] = field(default_factory=list)
    customers: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    customer_report: RecordReport = field(default_factory=RecordReport)
    event_report: RecordReport = field(default_factory=RecordReport)

    def to_dict(self, render: bool = False) -> dict[str, Any]:
        """The public JSON contract: messages, enrollments, customers (docs/simulate.md);
        ``render`` keeps each message's rendered ``subject`` and ``text``."""
        messages = self.messages
        if not render:
            messages = [{k: v for k, v in m.items() if k not in RENDERED} for m in messages]
        return {
            "messages": messages,
            "enrollments": self.enrollments,
            "customers": self.customers,
        }


def restrict(project: Project, journeys: Sequence[str] | None) -> Project:
    """The project with only ``journeys`` (all when None); unknown names raise KeyError."""
    if not journeys:
        return project
    missing = [j for j in journeys if j not in project.plans]
    if missing:
        raise KeyError(
            f"unknown journey(s) {', '.join(missing)}; known: {', '.join(sorted(project.plans))}"
        )
    return replace(project, plans={j: project.plans[j] for j in journeys})


class VirtualRun:
    """A fresh in-memory service on a virtual clock at ``start``, sending nothing: what
    ``journeys simulate`` and ``journeys forecast`` run the real runtime on."""

    def __init__(self, project: Project, start: datetime) -> None:
        self.clock = VirtualClock(start)
        self.service = JourneyService.in_memory(
            project, clock=self.clock, channels=default_channels(NullChannel())
        )
        self.service.start_cursors(start)
        store = self.service.store
        assert isinstance(store, MemoryStore)
        self.store: MemoryStore = store

    def step_through(self, until: datetime, max_steps: int = 1_000_000) -> int:
        """Tick at every instant something is scheduled, up to and at ``until``
        (:meth:`JourneyService.run_until`); returns the number of ticks."""
        return self.service.run_until(until, max_steps=max_steps)

    def advance(self, to: datetime) -> None:
        """One pass up to ``to``: everything stored that happens by then, in event time.
        The runtime runs every customer's timeline in the order of its times whatever the
        passes (:mod:`journeys.runtime.timeline`), so one pass over a backlog gives what
        ticking at each of its instants gives, without a pass per instant. Nothing happens
        before the clock (the run's start)."""
        if to < self.clock.now():
            return
        self.clock.set(to)
        self.service.run_pass()


def simulate(
    project: Project,
    customer_records: Iterable[Any],
    event_records: Iterable[Any],
    *,
    start: datetime,
    until: datetime,
    max_steps: int = 1_000_000,
) -> SimulationResult:
    """Run ``project`` in virtual time over the given customers and events, in memory."""
    run = VirtualRun(project, start)
    result = SimulationResult()
    result.customer_report = run.service.import_customers(customer_records)
    result.event_report = run.service.ingest(event_records, source="simulation")
    run.step_through(until, max_steps=max_steps)
    collect(run.store, result)
    return result


def collect(store: MemoryStore, result: SimulationResult) -> None:
    """Fill ``result`` from what a simulation's store holds."""
    for row in store.all_outbox():
        item = {
            "customer_id": row["customer_id"],
            "journey": row["journey"],
            "step": row["step"],
            "template": row["template"],
            "channel": row["channel"],
            "at": iso(row["due_at"]),
        }
        if row["status"] in SENDABLE:
            result.messages.append({**item, "subject": row["subject"], "text": row["text"]})
        else:
            result.skipped.append({**item, "status": row["status"], "reason": row["error"]})
    for enrollment in sorted(store.all_enrollments(), key=lambda e: (e.entered_at, e.id or 0)):
        result.enrollments.append(
            {
                "customer_id": enrollment.customer_id,
                "journey": enrollment.journey,
                "status": str(enrollment.status),
                "exit_reason": enrollment.exit_reason,
                "entered_at": iso(enrollment.entered_at),
                "ended_at": iso(enrollment.ended_at),
            }
        )
    for customer in store.all_customers():
        attributes = dict(customer.attributes or {})
        attributes["orders_count"] = customer.orders_count
        attributes["lifetime_value"] = customer.lifetime_value
        for name in ("first_order_at", "last_order_at"):
            value = getattr(customer, name)
            if value is not None:
                attributes[name] = iso(value)
        result.customers.append(
            {"id": customer.id, "stage": customer.stage, "attributes": attributes}
        )


def timeline(result: SimulationResult) -> str:
    """A human-readable timeline of what happened, in time order."""
    lines: list[tuple[str, str]] = []
    for e in result.enrollments:
        lines.append((e["entered_at"], f"{e['customer_id']:<10} enters  {e['journey']}"))
        if e["ended_at"]:
            how = e["status"] + (f" ({e['exit_reason']})" if e["exit_reason"] else "")
            lines.append((e["ended_at"], f"{e['customer_id']:<10} leaves  {e['journey']}: {how}"))
    for m in result.messages:
        lines.append(
            (
                m["at"],
                f"{m['customer_id']:<10} {m['channel']:<7} {m['journey']}.{m['step']} "
                f"→ {m['template']}",
            )
        )
    for m in result.skipped:
        lines.append(
            (m["at"], f"{m['customer_id']:<10} skipped {m['journey']}.{m['step']}: {m['reason']}")
        )
    lines.sort(key=lambda x: x[0])
    out = [f"{at}  {text}" for at, text in lines]
    active = sum(1 for e in result.enrollments if e["status"] == "active")
    out.append(
        f"\n{len(result.messages)} messages, {len(result.enrollments)} enrollments "
        f"({active} still active), {len(result.customers)} customers"
    )
    return "\n".join(out)
