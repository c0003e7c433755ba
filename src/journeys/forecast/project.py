"""What a forecast runs: the journey of the SPEC file, its live version, and the journeys
that run beside it.

The project of a forecast is the live project (specs, templates, settings, lifecycle) with
the SPEC's journey added or in place of the one with the same id. Of the other journeys only
those that can change what the forecast journey does run with it: journeys with ``update``
or ``emit`` steps (stages, attributes and events the journey may react to) and, when the
settings cap marketing messages and the journey sends some, journeys with marketing sends
(they count against the same cap). The lifecycle rules always run. Journeys that can do
neither only enroll customers in themselves, which changes nothing for this one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from journeys.delivery.consent import MARKETING
from journeys.plan import EmitStep, Plan, SendStep, UpdateStep
from journeys.settings import Settings
from journeys.spec import Project


@dataclass(frozen=True)
class Subject:
    """The journey a forecast is about: the SPEC's plan and the live one, if any."""

    journey: str
    spec: Plan
    live: Plan | None = None
    live_from: str | None = None
    """Where the live plan was found: ``database`` (the version saved last) or ``specs``."""

    @property
    def changed(self) -> bool:
        """Whether a live version exists and differs from the SPEC (a comparison to run)."""
        return self.live is not None and self.live.version != self.spec.version


def spec_plan(project: Project, spec: Path) -> Plan | None:
    """The plan compiled from the file ``spec`` (None if it defines no journey)."""
    wanted = spec.resolve()
    for plan in project.plans.values():
        if plan.source and Path(plan.source).resolve() == wanted:
            return plan
    return None


def live_plan(
    spec: Plan, stored: dict[str, Any] | None, in_specs: Plan | None
) -> tuple[Plan | None, str | None]:
    """The live version of ``spec``'s journey: the plan the database saved last (what the
    runner runs), else the specs' own journey of that id (which may be the SPEC itself)."""
    if stored is not None:
        try:
            return Plan.from_dict(stored), "database"
        except (KeyError, TypeError, ValueError):
            pass  # saved by another version of journeys: fall back to the specs
    if in_specs is not None:
        return in_specs, "specs"
    return None, None


def _sends_marketing(plan: Plan) -> bool:
    return any(isinstance(s, SendStep) and s.message_kind == MARKETING for s in plan.steps)


def _affects(plan: Plan, capped: bool) -> bool:
    """Whether ``plan`` can change what another journey does (see the module docstring)."""
    if any(isinstance(s, UpdateStep | EmitStep) for s in plan.steps):
        return True
    return capped and _sends_marketing(plan)


def alongside(project: Project, subject: Subject) -> list[str]:
    """The other journeys that run with the forecast journey, sorted."""
    settings: Settings = project.settings
    capped = bool(settings.frequency_cap_messages and settings.frequency_cap_seconds)
    capped = capped and any(
        _sends_marketing(p) for p in (subject.spec, subject.live) if p is not None
    )
    return sorted(
        j for j, p in project.plans.items() if j != subject.journey and _affects(p, capped)
    )


def run_project(project: Project, others: list[str], plan: Plan) -> Project:
    """``project`` with only ``others`` and ``plan`` (the version to replay)."""
    plans = {j: project.plans[j] for j in others}
    plans[plan.journey] = plan
    return replace(project, plans=plans)
