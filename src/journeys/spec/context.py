"""What a rule sees: one parsed journey with its project (templates, settings), or all of them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from journeys.plan import Plan
from journeys.settings import Settings
from journeys.spec.diagnostics import Diagnostic
from journeys.spec.events import EventCatalogue
from journeys.spec.structure import ParsedJourney
from journeys.spec.yamlpos import Path_, YamlDoc
from journeys.templates import TemplateStore

TEMPLATE_KEYS = ("send", "survey", "notify")
"""Step types whose body names a ``template``."""


@dataclass
class JourneyContext:
    """One journey file under validation.

    ``plan`` is a draft plan, compiled when the structure is complete (used by graph rules);
    ``failed`` is set when any diagnostic concerns this journey.
    """

    parsed: ParsedJourney
    settings: Settings
    templates: TemplateStore | None = None
    events: EventCatalogue | None = None
    """The known event types (None: event types are not checked)."""
    plan: Plan | None = None
    failed: bool = False
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def doc(self) -> YamlDoc:
        """The positioned YAML document."""
        return self.parsed.doc

    @property
    def path(self) -> str:
        """The spec file's display path."""
        return self.parsed.doc.path

    def at(self, loc: Path_, message: str, code: str, *, key: bool = False) -> Diagnostic:
        """A diagnostic at ``loc`` of this journey's file."""
        return self.doc.at(loc, message, code, key=key)

    def steps_raw(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(index, mapping)`` for every step that is a mapping (valid or not)."""
        steps = self.doc.get(("steps",))
        if isinstance(steps, list):
            for i, raw in enumerate(steps):
                if isinstance(raw, dict):
                    yield i, raw

    def step_kinds(self) -> dict[str, str]:
        """Step id → detected type (``send``, ``survey`` …) for steps whose type is known."""
        return {s.id: s.kind for s in self.parsed.steps if s.id and s.kind}

    def template_sites(self) -> Iterator[tuple[Path_, str, str]]:
        """``(loc, template name, step type)`` for every template named by a step.

        A step whose type is misspelled (``sned: {template: welcome}``) still names its
        template, so that the template's own problems are reported with the typo.
        """
        known = {s.index for s in self.parsed.steps if s.kind is not None}
        for i, raw in self.steps_raw():
            for kind in TEMPLATE_KEYS if i in known else tuple(raw):
                body = raw.get(kind)
                if isinstance(body, dict) and isinstance(body.get("template"), str):
                    yield ("steps", i, kind, "template"), body["template"], kind

    def expression_sites(self) -> Iterator[tuple[Path_, str]]:
        """``(loc, source)`` of every expression (conditions and segments)."""
        trigger = self.doc.get(("trigger",))
        if isinstance(trigger, dict):
            for key in ("when", "segment"):
                if isinstance(trigger.get(key), str):
                    yield ("trigger", key), trigger[key]
        goal = self.doc.get(("goal",))
        if isinstance(goal, dict) and isinstance(goal.get("when"), str):
            yield ("goal", "when"), goal["when"]
        for i, raw in self.steps_raw():
            body = raw.get("wait_for")
            if isinstance(body, dict) and isinstance(body.get("when"), str):
                yield ("steps", i, "wait_for", "when"), body["when"]
            cases = raw.get("branch")
            if isinstance(cases, list):
                for j, case in enumerate(cases):
                    if isinstance(case, dict) and isinstance(case.get("when"), str):
                        yield ("steps", i, "branch", j, "when"), case["when"]

    def inline_template_sites(self) -> Iterator[tuple[Path_, str]]:
        """``(loc, text)`` of inline templates: send subjects, update/emit values with ``{{``."""
        for i, raw in self.steps_raw():
            send = raw.get("send")
            if isinstance(send, dict) and isinstance(send.get("subject"), str):
                yield ("steps", i, "send", "subject"), send["subject"]
            for kind, key in (("update", "set"), ("emit", "data")):
                body = raw.get(kind)
                if isinstance(body, dict) and isinstance(body.get(key), dict):
                    yield from _strings(body[key], ("steps", i, kind, key))


def _strings(value: Any, loc: Path_) -> Iterator[tuple[Path_, str]]:
    if isinstance(value, str):
        if "{{" in value or "{%" in value:
            yield loc, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, (*loc, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*loc, i))


@dataclass
class ProjectContext:
    """Every journey of a project, for rules that look across files."""

    journeys: list[JourneyContext]
    settings: Settings
    templates: TemplateStore | None = None
