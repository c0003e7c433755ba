"""Rules about event types: every type a journey names is in the event catalogue, and
``event.data.<field>`` names a declared field when the type declares its data."""

from __future__ import annotations

from collections.abc import Iterator

from journeys.spec.context import JourneyContext
from journeys.spec.diagnostics import Diagnostic, did_you_mean, quote, valid_list
from journeys.spec.events import EventCatalogue
from journeys.spec.limits import EVENT_TYPE, EVENT_TYPE_PATTERN
from journeys.spec.rules.expressions import member_refs
from journeys.spec.rules.registry import journey_rule
from journeys.spec.yamlpos import Path_, YamlDoc

_STEP_EVENTS = (("wait_for", "event"), ("emit", "event"))


def unknown_event(doc: YamlDoc, loc: Path_, name: str, events: EventCatalogue) -> list[Diagnostic]:
    """``unknown-event`` when ``name`` (found at ``loc``) is not in the catalogue."""
    if events.knows(name) or not EVENT_TYPE_PATTERN.match(name) or len(name) > EVENT_TYPE:
        return []  # a malformed type is reported by the structure check
    hint = did_you_mean(name, events.names())
    where = f"under events: in {events.declared_in}"
    if hint:
        msg = f"event type {quote(name)} is not known{hint} (or declare it {where})"
    else:
        msg = f"event type {quote(name)} is not known; declare it {where}"
        msg += valid_list(events.names(), "known")
    return [doc.at(loc, msg, "unknown-event")]


def unknown_fields(
    doc: YamlDoc,
    loc: Path_,
    source: str,
    event: str,
    events: EventCatalogue,
    *,
    template: bool = False,
) -> list[Diagnostic]:
    """``unknown-event-field`` for each ``event.data.<field>`` of ``source`` that the declared
    data of ``event`` does not have (nothing when ``event`` declares no data)."""
    fields = events.data_fields(event)
    if fields is None:
        return []
    out = []
    declared = sorted(fields)
    for name in dict.fromkeys(member_refs(source, ("event", "data"), template=template)):
        if name in fields:
            continue
        out.append(doc.at(loc, _no_field(event, name, declared, events), "unknown-event-field"))
    return out


def event_sites(ctx: JourneyContext) -> Iterator[tuple[Path_, str]]:
    """``(loc, type)`` of every event type the journey names: trigger, exit_on, goal, and
    the wait_for and emit steps."""
    for key in ("trigger", "goal"):
        body = ctx.doc.get((key,))
        if isinstance(body, dict) and isinstance(body.get("event"), str):
            yield (key, "event"), body["event"]
    exits = ctx.doc.get(("exit_on",))
    if isinstance(exits, list):
        for i, name in enumerate(exits):
            if isinstance(name, str):
                yield ("exit_on", i), name
    for i, raw in ctx.steps_raw():
        for kind, key in _STEP_EVENTS:
            body = raw.get(kind)
            if isinstance(body, dict) and isinstance(body.get(key), str):
                yield ("steps", i, kind, key), body[key]


@journey_rule
def event_types_known(ctx: JourneyContext) -> Iterator[Diagnostic]:
    """Every event type named by the journey is well-known, declared or stored."""
    if ctx.events is None:
        return
    for loc, name in event_sites(ctx):
        yield from unknown_event(ctx.doc, loc, name, ctx.events)


def typed_expression_sites(ctx: JourneyContext) -> Iterator[tuple[Path_, str, str, bool]]:
    """``(loc, source, event type, is a template)`` of expressions whose ``event`` has a
    known type: a condition on the trigger, goal or wait_for event, and, in a journey
    triggered by an event, the conditions and inline templates of its steps (they see the
    triggering event)."""
    trigger_event = None
    for key in ("trigger", "goal"):
        body = ctx.doc.get((key,))
        if isinstance(body, dict) and isinstance(body.get("event"), str):
            if key == "trigger":
                trigger_event = body["event"]
            if isinstance(body.get("when"), str):
                yield (key, "when"), body["when"], body["event"], False
    for i, raw in ctx.steps_raw():
        body = raw.get("wait_for")
        if (
            isinstance(body, dict)
            and isinstance(body.get("event"), str)
            and isinstance(body.get("when"), str)
        ):
            yield ("steps", i, "wait_for", "when"), body["when"], body["event"], False
    if trigger_event is None:
        return
    for loc, source in ctx.expression_sites():
        if loc[0] == "steps" and "wait_for" not in loc:
            yield loc, source, trigger_event, False
    for loc, source in ctx.inline_template_sites():
        yield loc, source, trigger_event, True


@journey_rule
def event_data_fields_known(ctx: JourneyContext) -> Iterator[Diagnostic]:
    """``event.data.<field>`` is a declared field of the event's type (when it declares)."""
    if ctx.events is None:
        return
    for loc, source, event, template in typed_expression_sites(ctx):
        yield from unknown_fields(ctx.doc, loc, source, event, ctx.events, template=template)
    for i, raw in ctx.steps_raw():
        body = raw.get("emit")
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            continue
        event = body.get("event")
        fields = ctx.events.data_fields(event) if isinstance(event, str) else None
        if fields is None:
            continue
        for key in body["data"]:
            if key not in fields:
                msg = _no_field(event, key, sorted(fields), ctx.events)
                yield ctx.at(
                    ("steps", i, "emit", "data", key), msg, "unknown-event-field", key=True
                )


def _no_field(event: str, name: str, declared: list[str], events: EventCatalogue) -> str:
    msg = f"event {quote(event)} has no data field {quote(name)}" + did_you_mean(name, declared)
    if declared:
        return msg + valid_list(declared, f"declared in {events.declared_in}")
    return msg + f" (it declares no data in {events.declared_in})"
