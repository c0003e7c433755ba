"""``journey_specs/lifecycle.yaml``: declarative stage rules, validated like journeys."""

from __future__ import annotations

from journeys.plan import STAGES, Lifecycle
from journeys.spec.compiler import compile_lifecycle
from journeys.spec.diagnostics import Diagnostic
from journeys.spec.events import EventCatalogue
from journeys.spec.models import LifecycleFile
from journeys.spec.rules.events import unknown_event, unknown_fields
from journeys.spec.rules.expressions import expression_problems
from journeys.spec.structure import describe, validate_part
from journeys.spec.yamlpos import YamlDoc

LIFECYCLE_NAMES = ("lifecycle.yaml", "lifecycle.yml")


def parse_lifecycle(
    doc: YamlDoc, events: EventCatalogue | None = None
) -> tuple[Lifecycle | None, list[Diagnostic]]:
    """Validate a lifecycle document; the compiled lifecycle is ``None`` when it has errors.

    With ``events``, each rule's event type must be known and its ``when`` may only read
    declared data fields of that type."""
    data = doc.data
    if not isinstance(data, dict):
        msg = f"lifecycle.yaml must be a mapping with a lifecycle key, got {describe(data)}"
        return None, [doc.at((), msg, "missing-field" if data is None else "wrong-type")]
    spec, problems = validate_part(doc, (), LifecycleFile, data)
    body = data.get("lifecycle")
    if isinstance(body, dict):
        stages = body.get("stages")
        if stages is not None and stages != list(STAGES):
            msg = (
                "stages must be exactly " + ", ".join(STAGES) + " in this order (or left out);"
                " the stages are fixed"
            )
            problems.append(doc.at(("lifecycle", "stages"), msg, "bad-stages"))
        rules = body.get("rules")
        if isinstance(rules, list):
            for i, rule in enumerate(rules):
                if not isinstance(rule, dict):
                    continue
                loc = ("lifecycle", "rules", i)
                when, event = rule.get("when"), rule.get("event")
                if isinstance(when, str):
                    problems.extend(expression_problems(doc, (*loc, "when"), when))
                if events is None or not isinstance(event, str):
                    continue
                problems.extend(unknown_event(doc, (*loc, "event"), event, events))
                if isinstance(when, str):
                    problems.extend(unknown_fields(doc, (*loc, "when"), when, event, events))
    if problems or spec is None:
        return None, problems
    return compile_lifecycle(spec), []
