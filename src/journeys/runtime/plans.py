"""The plans a runtime runs: the current version of every journey, older versions that
in-flight enrollments still use, and the indexes matching needs (by event type, by stage)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from journeys.conditions import SetStep
from journeys.plan import (
    DateTrigger,
    EventTrigger,
    Lifecycle,
    Plan,
    ScheduleTrigger,
    StageRule,
    StageTrigger,
)
from journeys.runtime.setbased import set_steps

VersionLoader = Callable[[str, str], "dict[str, Any] | None"]
"""Reads a stored plan (``Plan.to_dict()``) by journey and version; None if unknown."""


class PlanSet:
    """Current plans by journey, every version by (journey, version), and lookups."""

    def __init__(self, plans: Mapping[str, Plan], lifecycle: Lifecycle) -> None:
        self.current: dict[str, Plan] = dict(plans)
        self.lifecycle = lifecycle
        self._versions: dict[tuple[str, str], Plan | None] = {
            (p.journey, p.version): p for p in plans.values()
        }
        self._set_steps: dict[tuple[str, str], dict[str, SetStep]] = {}
        self.by_event: dict[str, list[Plan]] = defaultdict(list)
        self.by_stage: dict[str, list[Plan]] = defaultdict(list)
        self.goal_journeys: frozenset[str] = frozenset(p.journey for p in plans.values() if p.goal)
        for plan in plans.values():
            if isinstance(plan.trigger, EventTrigger):
                self.by_event[plan.trigger.event].append(plan)
            elif isinstance(plan.trigger, StageTrigger):
                self.by_stage[plan.trigger.stage].append(plan)
        self.entry_journeys: frozenset[str] = frozenset(
            p.journey for p in plans.values() if isinstance(p.trigger, EventTrigger | StageTrigger)
        )
        """Journeys an event can enroll in (their re-entry history is loaded per batch)."""
        self.rules_by_event: dict[str, list[StageRule]] = defaultdict(list)
        for rule in lifecycle.rules:
            self.rules_by_event[rule.event].append(rule)

    def timed(self) -> list[Plan]:
        """Current plans with a date or schedule trigger."""
        return [
            p for p in self.current.values() if isinstance(p.trigger, DateTrigger | ScheduleTrigger)
        ]

    def version(self, journey: str, version: str, load: VersionLoader | None = None) -> Plan | None:
        """The plan an enrollment runs on: the version it started with (read once through
        ``load`` when it is not a current one)."""
        key = (journey, version)
        if key in self._versions:
            return self._versions[key]
        stored = load(journey, version) if load is not None else None
        plan = Plan.from_dict(stored) if stored is not None else None
        self._versions[key] = plan
        return plan

    def set_steps(self, plan: Plan) -> dict[str, SetStep]:
        """The steps of ``plan`` the store can run for a whole set of enrollments."""
        key = (plan.journey, plan.version)
        found = self._set_steps.get(key)
        if found is None:
            found = self._set_steps[key] = set_steps(plan)
        return found

    def version_rows(self, now: Any) -> list[dict[str, Any]]:
        """``journey_versions`` rows of the current plans."""
        return [
            {"journey": p.journey, "version": p.version, "plan": p.to_dict(), "created_at": now}
            for p in self.current.values()
        ]

    def only(self, journeys: Iterable[str]) -> PlanSet:
        """The same lifecycle with only ``journeys``' current plans."""
        wanted = set(journeys)
        return PlanSet({j: p for j, p in self.current.items() if j in wanted}, self.lifecycle)
