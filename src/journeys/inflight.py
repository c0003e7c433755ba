"""What a spec change means for customers already in a journey (``validate --database``).

Enrollments stay on the plan version they started with, so a change never breaks them; but a
marketer who removes a step or a journey should know how many customers are still on it and
will finish on the old version.
"""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from journeys.plan import END, Plan
from journeys.spec.diagnostics import Diagnostic
from journeys.store.tables import enrollments


def in_flight_diagnostics(
    db: Engine, plans: dict[str, Plan], known_journeys: set[str]
) -> list[Diagnostic]:
    """Warnings for active enrollments at steps (or in journeys) the new specs no longer have.

    ``known_journeys`` are the journey ids found in the spec files (valid or not), so a journey
    with errors is not mistaken for a deleted one.
    """
    with db.connect() as conn:
        rows = conn.execute(
            select(enrollments.c.journey, enrollments.c.version, enrollments.c.step, func.count())
            .where(enrollments.c.status == "active")
            .group_by(enrollments.c.journey, enrollments.c.version, enrollments.c.step)
        ).all()
    removed_steps: dict[tuple[str, str], int] = {}
    removed_journeys: dict[str, int] = {}
    for journey, version, step, count in rows:
        plan = plans.get(journey)
        if plan is None:
            if journey not in known_journeys:
                removed_journeys[journey] = removed_journeys.get(journey, 0) + count
            continue
        if version != plan.version and step != END and not plan.has_step(step):
            removed_steps[(journey, step)] = removed_steps.get((journey, step), 0) + count
    found: list[Diagnostic] = []
    for (journey, step), count in sorted(removed_steps.items()):
        plan = plans[journey]
        found.append(
            Diagnostic(
                plan.source or journey,
                1,
                1,
                f"{count} customer{'s are' if count != 1 else ' is'} in flight at step "
                f"{step!r}, which this version of {journey!r} removes; they finish on the version "
                "they started with (keep the step or let them drain before removing its templates)",
                "in-flight-step-removed",
                severity="warning",
            )
        )
    for journey, count in sorted(removed_journeys.items()):
        found.append(
            Diagnostic(
                journey,
                1,
                1,
                f"{count} customer{'s are' if count != 1 else ' is'} still in journey {journey!r}, "
                "which no spec defines any more; they finish on their stored version",
                "in-flight-journey-removed",
                severity="warning",
            )
        )
    return found
