"""The journey language: load YAML with positions, validate, compile to plans.

Stages (like dbt): *parse* (:mod:`~journeys.spec.yamlpos`), *validate* structure
(:mod:`~journeys.spec.structure`, pydantic :mod:`~journeys.spec.models`) and semantics (one rule
per check in :mod:`~journeys.spec.rules`), *compile* (:mod:`~journeys.spec.compiler`) into
:class:`journeys.plan.Plan`. Entry point::

    from journeys.spec import load_project
    project = load_project(["journey_specs"])
    project.ok, project.plans, project.diagnostics
"""

from journeys.spec.compiler import compile_journey, compile_lifecycle
from journeys.spec.diagnostics import CODES, Diagnostic, render_json, render_text
from journeys.spec.project import (
    Project,
    SpecError,
    check_journey_text,
    load_journey_text,
    load_project,
)
from journeys.spec.schema import journey_schema, lifecycle_schema, settings_schema

__all__ = [
    "CODES",
    "Diagnostic",
    "Project",
    "SpecError",
    "check_journey_text",
    "compile_journey",
    "compile_lifecycle",
    "journey_schema",
    "lifecycle_schema",
    "load_journey_text",
    "load_project",
    "render_json",
    "render_text",
    "settings_schema",
]
