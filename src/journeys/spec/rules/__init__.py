"""Semantic rules, one function per check (importing this package registers them all)."""

from journeys.spec.rules import channels, events, expressions, project, steps, templates
from journeys.spec.rules.registry import (
    JOURNEY_RULES,
    PROJECT_RULES,
    journey_rule,
    project_rule,
    run_journey_rules,
    run_project_rules,
)

__all__ = [
    "JOURNEY_RULES",
    "PROJECT_RULES",
    "channels",
    "events",
    "expressions",
    "journey_rule",
    "project",
    "project_rule",
    "run_journey_rules",
    "run_project_rules",
    "steps",
    "templates",
]
