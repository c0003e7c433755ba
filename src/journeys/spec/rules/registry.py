"""The rule registry: one function per check, all run, every problem reported.

A journey rule takes a :class:`~journeys.spec.context.JourneyContext` and yields diagnostics;
a project rule takes a :class:`~journeys.spec.context.ProjectContext`. A rule that raises
becomes one ``internal-error`` diagnostic naming the file, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from journeys.spec.context import JourneyContext, ProjectContext
from journeys.spec.diagnostics import Diagnostic

JourneyRule = Callable[[JourneyContext], Iterable[Diagnostic]]
ProjectRule = Callable[[ProjectContext], Iterable[Diagnostic]]

JOURNEY_RULES: dict[str, JourneyRule] = {}
"""Rule name → journey rule, in registration order."""

PROJECT_RULES: dict[str, ProjectRule] = {}
"""Rule name → project rule, in registration order."""


def journey_rule(fn: JourneyRule) -> JourneyRule:
    """Register ``fn`` as a journey rule (by its function name)."""
    JOURNEY_RULES[fn.__name__] = fn
    return fn


def project_rule(fn: ProjectRule) -> ProjectRule:
    """Register ``fn`` as a project rule (by its function name)."""
    PROJECT_RULES[fn.__name__] = fn
    return fn


def internal_error(path: str, rule: str, exc: BaseException) -> Diagnostic:
    """The diagnostic that replaces a crash in ``rule`` while checking ``path``."""
    message = f"internal error in check {rule}: {type(exc).__name__}: {exc}; please report this"
    return Diagnostic(path, 1, 1, message, "internal-error")


def run_journey_rules(ctx: JourneyContext) -> list[Diagnostic]:
    """Run every journey rule on ``ctx``; collect all diagnostics."""
    found: list[Diagnostic] = []
    for name, rule in JOURNEY_RULES.items():
        try:
            found.extend(rule(ctx))
        except Exception as exc:  # a rule bug must not hide the other problems
            found.append(internal_error(ctx.path, name, exc))
    return found


def run_project_rules(ctx: ProjectContext, path: str) -> list[Diagnostic]:
    """Run every project rule; ``path`` names the project in internal errors."""
    found: list[Diagnostic] = []
    for name, rule in PROJECT_RULES.items():
        try:
            found.extend(rule(ctx))
        except Exception as exc:
            found.append(internal_error(path, name, exc))
    return found
