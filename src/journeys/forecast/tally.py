"""What one replay of a journey did, counted: who entered, which messages would go out when,
what the frequency cap held back and quiet hours delayed, exits and goals.

The runtime marks each of these where it decides them: a message held back by the cap is an
outbox row ``suppressed`` with the error ``frequency cap: …`` (:mod:`journeys.runtime.messages`);
a send that falls in the journey's quiet hours waits at its step, which records the step run
``deferred: quiet hours`` (:mod:`journeys.runtime.decide`) and sends when they end.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from journeys.clock import iso
from journeys.state import Enrollment, Status

QUIET_HOURS = "deferred: quiet hours"
"""The step-run outcome of a message step waiting for the end of quiet hours."""

CAP_ERROR = "frequency cap:"
"""How the error of a message held back by the frequency cap begins."""

OUTCOMES = ("messages", "frequency_cap", "suppressed", "failed", "quiet_hours")
"""The counts of a step, in report order: would go out, held back by the cap, not allowed
(consent, no address, unsubscribed), failed to render; and sends delayed by quiet hours."""


def outcome_of(status: str, error: str | None) -> str:
    """Which count an outbox row of a replay goes to."""
    if status == "suppressed":
        return "frequency_cap" if (error or "").startswith(CAP_ERROR) else "suppressed"
    return "failed" if status == "failed" else "messages"


@dataclass
class StepTally:
    """The messages of one step of the journey."""

    step: str
    template: str = ""
    channel: str = ""
    kind: str = ""
    counts: Counter[str] = field(default_factory=Counter)
    first: datetime | None = None
    last: datetime | None = None
    per_day: Counter[str] = field(default_factory=Counter)
    """Messages going out per UTC day (``YYYY-MM-DD``)."""

    def add(self, row: Mapping[str, Any]) -> str:
        """Count one outbox row; returns its outcome."""
        self.template, self.channel, self.kind = row["template"], row["channel"], row["kind"]
        outcome = outcome_of(row["status"], row.get("error"))
        self.counts[outcome] += 1
        if outcome == "messages":
            at: datetime = row["due_at"]
            self.first = at if self.first is None else min(self.first, at)
            self.last = at if self.last is None else max(self.last, at)
            self.per_day[at.date().isoformat()] += 1
        return outcome

    def to_dict(self) -> dict[str, Any]:
        """The step object of the JSON report (docs/cli.md)."""
        return {
            "step": self.step,
            "template": self.template,
            "channel": self.channel,
            "kind": self.kind,
            **{name: self.counts[name] for name in OUTCOMES},
            "first": iso(self.first),
            "last": iso(self.last),
            "per_day": dict(sorted(self.per_day.items())),
        }


@dataclass
class RunTally:
    """One replay of one version of the journey."""

    version: str
    entered: int = 0
    customers: int = 0
    completed: int = 0
    active: int = 0
    converted: int = 0
    exits: Counter[str] = field(default_factory=Counter)
    steps: dict[str, StepTally] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    """Every message of the journey, in time order (the report's ``list``)."""

    def total(self, name: str) -> int:
        """A count of :data:`OUTCOMES` over every step."""
        return sum(s.counts[name] for s in self.steps.values())

    def step(self, step: str) -> StepTally:
        """The tally of ``step`` (created empty)."""
        return self.steps.setdefault(step, StepTally(step))

    def to_dict(self, with_messages: bool = False) -> dict[str, Any]:
        """The run object of the JSON report (docs/cli.md)."""
        data: dict[str, Any] = {
            "version": self.version,
            "entered": self.entered,
            "customers": self.customers,
            "completed": self.completed,
            "active": self.active,
            "exited": dict(sorted(self.exits.items())),
            "converted": self.converted,
            "totals": {name: self.total(name) for name in OUTCOMES},
            "steps": [s.to_dict() for s in self.steps.values()],
        }
        if with_messages:
            data["list"] = self.messages
        return data


def tally(
    version: str,
    enrollments: Iterable[Enrollment],
    outbox: Iterable[Mapping[str, Any]],
    deferrals: Iterable[tuple[int, str, datetime]],
) -> RunTally:
    """Count a replay of the journey: its ``enrollments``, its ``outbox`` rows in time order
    and its quiet-hours ``deferrals`` (enrollment id, step, when it waited)."""
    run = RunTally(version)
    customers: set[str] = set()
    for e in enrollments:
        run.entered += 1
        customers.add(e.customer_id)
        run.active += e.status is Status.ACTIVE
        run.completed += e.status is Status.COMPLETED
        run.converted += e.converted_at is not None
        if e.status is Status.EXITED:
            run.exits[e.exit_reason or ""] += 1
    run.customers = len(customers)
    waited: dict[tuple[int, str], list[datetime]] = defaultdict(list)
    for eid, step, at in deferrals:
        run.step(step).counts["quiet_hours"] += 1
        bisect.insort(waited[(eid, step)], at)
    for row in outbox:
        outcome = run.step(row["step"]).add(row)
        run.messages.append(_listed(row, outcome, waited.get((row["enrollment_id"], row["step"]))))
    return run


def _listed(row: Mapping[str, Any], outcome: str, waited: list[datetime] | None) -> dict[str, Any]:
    """One message of the report's ``list``; ``deferred_from`` is when quiet hours made it
    wait (the last wait of its step before it went)."""
    due: datetime = row["due_at"]
    before = waited[: bisect.bisect_right(waited, due)] if waited else []
    return {
        "customer_id": row["customer_id"],
        "step": row["step"],
        "template": row["template"],
        "channel": row["channel"],
        "at": iso(due),
        "outcome": outcome,
        "reason": row.get("error") if outcome != "messages" else None,
        "deferred_from": iso(before[-1]) if before else None,
    }


def difference(spec: RunTally, live: RunTally) -> dict[str, Any]:
    """The SPEC's counts minus the live version's: totals and per step (every step of
    either version)."""
    totals = {
        name: getattr(spec, name) - getattr(live, name)
        for name in ("entered", "customers", "completed", "active", "converted")
    }
    totals.update({name: spec.total(name) - live.total(name) for name in OUTCOMES})
    names = list(dict.fromkeys([*spec.steps, *live.steps]))
    steps = {
        name: {
            outcome: _count(spec, name, outcome) - _count(live, name, outcome)
            for outcome in OUTCOMES
        }
        for name in names
    }
    return {**totals, "steps": steps}


def _count(run: RunTally, step: str, outcome: str) -> int:
    found = run.steps.get(step)
    return found.counts[outcome] if found is not None else 0
