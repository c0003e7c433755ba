"""Per journey: entered, active, completed, exited and converted; every step reached and who
is at it now; the A/B splits (:mod:`.splits`). The plans name and order the steps."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from journeys.insight.report.splits import split_figures
from journeys.insight.stats import ratio
from journeys.plan import Plan, WaitStep
from journeys.store import kpis as q


def _new_journey(name: str, plan: Plan | None) -> dict[str, Any]:
    return {
        "name": plan.name if plan else name,
        "goal": plan.goal.event if plan and plan.goal else None,
        "entered": 0,
        "active": 0,
        "completed": 0,
        "exited": {},
        "converted": 0,
        "conversion_rate": None,
        "steps": {s.id: _new_step() for s in plan.steps} if plan else {},
        "variants": {},
        "nps": None,
        "csat": None,
        "answers": {},
        "nps_trend": [],
        "messages": {},
        "open_rate": None,
        "click_rate": None,
        "unsubscribe_rate": None,
    }


def _new_step() -> dict[str, Any]:
    return {"reached": 0, "now": 0, "waiting": 0, "exited": 0}


def journey_figures(
    conn: Connection,
    scope: q.Scope,
    plans: dict[str, Plan],
    now: datetime,
    facts: Iterable[Any],
) -> dict[str, dict[str, Any]]:
    """Per journey (every planned one, and any other with activity): the counts, the
    steps reached and held now, the conversion rate and the splits."""
    wanted = {scope.journey: plans.get(scope.journey)} if scope.journey else plans
    out: dict[str, dict[str, Any]] = {n: _new_journey(n, p) for n, p in wanted.items()}
    tallies: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])

    def journey(name: str) -> dict[str, Any]:
        return out.setdefault(name, _new_journey(name, plans.get(name)))

    def step(j: dict[str, Any], step_id: str) -> dict[str, Any]:
        return j["steps"].setdefault(step_id, _new_step())

    for row in facts:
        j = journey(row.journey)
        j["entered"] += row.entered
        j["converted"] += row.converted
        if row.status == "exited":
            reason = row.exit_reason or "unknown"
            j["exited"][reason] = j["exited"].get(reason, 0) + row.entered
            if row.step and (row.step in j["steps"] or not plans.get(row.journey)):
                step(j, row.step)["exited"] += row.entered
        elif row.status in ("active", "completed"):
            j[row.status] += row.entered
        if isinstance(row.variants, dict):
            for split, variant in row.variants.items():
                tally = tallies[(row.journey, str(split), str(variant))]
                tally[0] += row.entered
                tally[1] += row.converted
    for row in q.steps_reached(conn, scope):
        step(journey(row.journey), row.step)["reached"] = row.reached
    for row in q.active_positions(conn, now, scope.journey):
        where, waiting = position(plans.get(row.journey), row.step, row.waiting_step, row.sleeping)
        s = step(journey(row.journey), where)
        s["now"] += row.count
        if waiting:
            s["waiting"] += row.count
    for name, j in out.items():
        j["conversion_rate"] = ratio(j["converted"], j["entered"]) if j["goal"] else None
        plan = plans.get(name)
        if plan:
            j["variants"] = split_figures(plan, tallies)
    return dict(sorted(out.items()))


def position(
    plan: Plan | None, step: str, waiting_step: str | None, sleeping: int
) -> tuple[str, bool]:
    """Where an active enrollment is, for the diagram: (step, waiting for an event or a time).

    The store keeps the step that runs *next*: a ``wait_for``/``survey`` names itself in
    ``vars.waiting_step``; a sleeping enrollment whose next step follows a ``wait`` is in that
    wait; otherwise it is due (or deferred by quiet hours) at ``step`` itself.
    """
    if waiting_step:
        return waiting_step, True
    if sleeping and plan is not None:
        for candidate in plan.steps:
            if isinstance(candidate, WaitStep) and candidate.next == step:
                return candidate.id, True
    return step, bool(sleeping)
