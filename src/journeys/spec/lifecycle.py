"""``journey_specs/lifecycle.yaml``: declarative stage rules, validated like journeys."""

from __future__ import annotations

from journeys.plan import STAGES, Lifecycle
from journeys.spec.compiler import compile_lifecycle
from journeys.spec.diagnostics import Diagnostic
from journeys.spec.models import LifecycleFile
from journeys.spec.rules.expressions import expression_problems
from journeys.spec.structure import describe, validate_part
from journeys.spec.yamlpos import YamlDoc

LIFECYCLE_NAMES = ("lifecycle.yaml", "lifecycle.yml")


def parse_lifecycle(doc: YamlDoc) -> tuple[Lifecycle | None, list[Diagnostic]]:
    """Validate a lifecycle document; the compiled lifecycle is ``None`` when it has errors."""
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
                if isinstance(rule, dict) and isinstance(rule.get("when"), str):
                    loc = ("lifecycle", "rules", i, "when")
                    problems.extend(expression_problems(doc, loc, rule["when"]))
    if problems or spec is None:
        return None, problems
    return compile_lifecycle(spec), []
