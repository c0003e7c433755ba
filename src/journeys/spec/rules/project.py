"""Rules across journey files."""

from __future__ import annotations

from collections.abc import Iterator

from journeys.spec.context import JourneyContext, ProjectContext
from journeys.spec.diagnostics import Diagnostic, quote
from journeys.spec.rules.registry import project_rule


@project_rule
def unique_journey_ids(ctx: ProjectContext) -> Iterator[Diagnostic]:
    """No two files define the same journey id (the later ones are reported)."""
    first: dict[str, JourneyContext] = {}
    for journey in ctx.journeys:
        jid = journey.parsed.journey_id
        if jid is None:
            continue
        if jid in first:
            other = first[jid]
            line, col = other.doc.pos(("journey",))
            journey.failed = True
            msg = (
                f"journey {quote(jid)} is already defined in {other.path}:{line}:{col};"
                " journey ids must be unique, rename one"
            )
            yield journey.at(("journey",), msg, "duplicate-journey")
        else:
            first[jid] = journey
