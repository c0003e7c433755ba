"""Read scenario files (``journeys test``) like journeys: positions, models, every problem.

A scenario file is either one scenario or ``scenarios: [ … ]``. It is read with the journey
language's loader (:func:`journeys.spec.yamlpos.load_yaml`: positions, no YAML surprises) and
checked against the models below, so that a misspelled ``mesages:`` under ``expect`` or an
``at: yesterday`` is a ``file:line:col: message [code]`` diagnostic, all of them at once,
instead of a scenario that silently checks nothing or a traceback. The customers and events
of a scenario go through the same record checks as ``journeys import``/``ingest``, and, when
the project is given, journey and step names are checked against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from journeys.clock import iso, parse_instant
from journeys.durations import DurationError, parse_duration
from journeys.intake import DATE_ATTRIBUTES, date_attributes, dates_problem
from journeys.plan import Plan
from journeys.runtime.records import RecordError, normalise_customer, normalise_event
from journeys.spec.diagnostics import (
    Diagnostic,
    did_you_mean,
    quote,
    sort_diagnostics,
    valid_list,
)
from journeys.spec.models import Channel, Stage
from journeys.spec.structure import describe, validate_part
from journeys.spec.types import EventType
from journeys.spec.yamlpos import Path_, YamlDoc, load_yaml

TIME_HELP = "a duration after start (1h, 2d) nor an ISO time like 2026-03-02T10:00:00Z"


def _instant_text(value: Any) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("bad-value", f"{describe(value)} is not an ISO time")
    try:
        parse_instant(value.replace(" ", "T"))
    except (ValueError, OverflowError):
        raise PydanticCustomError(
            "bad-value", f"{quote(value)} is not an ISO time like 2026-03-02T00:00:00Z"
        ) from None
    return value


def _when_text(value: Any) -> str:
    text = str(value).strip() if isinstance(value, str | int) else None
    if text is not None:
        try:
            parse_duration(text)
            return text
        except DurationError:
            pass
        try:
            parse_instant(text.replace(" ", "T"))
            return text
        except (ValueError, OverflowError):
            pass
    message = f"{describe(value)} is neither {TIME_HELP}".replace("{", "{{").replace("}", "}}")
    raise PydanticCustomError("bad-value", message)


Instant = Annotated[str, BeforeValidator(_instant_text)]
When = Annotated[str, BeforeValidator(_when_text)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class EventSpec(_Model):
    """An event of a scenario: ``{at: 1h, type: cart.updated, customer_id: c-1, data: {…}}``."""

    at: When = "0m"
    id: str | None = None
    type: EventType
    customer_id: str
    data: dict[str, Any] = Field(default_factory=dict)


class MessageSpec(_Model):
    """An expected message (all of them, in time order)."""

    customer_id: str
    journey: str
    step: str
    template: str
    channel: Channel | None = None
    at: When


class EnrollmentSpec(_Model):
    """An expected enrollment; only the keys given are compared."""

    customer_id: str
    journey: str
    status: Literal["active", "completed", "exited"] | None = None
    exit_reason: str | None = None
    entered_at: When | None = None
    ended_at: When | None = None


class CustomerSpec(BaseModel):
    """An expected customer: its id, optionally its stage, and attributes as flat keys."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    id: str
    stage: Stage | None = None


class ExpectSpec(_Model):
    """What must come out of the scenario."""

    messages: list[MessageSpec] | None = None
    enrollments: list[EnrollmentSpec] = Field(default_factory=list)
    customers: list[CustomerSpec] = Field(default_factory=list)


class ScenarioSpec(_Model):
    """One scenario."""

    name: str | None = None
    journeys: list[str] | None = None
    start: Instant
    until: When = "30d"
    customers: list[dict[str, Any]] = Field(default_factory=list)
    events: list[EventSpec] = Field(default_factory=list)
    expect: ExpectSpec = Field(default_factory=ExpectSpec)


@dataclass
class Scenario:
    """One scenario, ready to simulate."""

    name: str
    path: Path
    journeys: list[str] | None
    start: datetime
    until: datetime
    customers: list[dict[str, Any]]
    events: list[dict[str, Any]]
    expect: dict[str, Any]


def resolve(value: str, start: datetime) -> datetime:
    """A checked :data:`When`: a duration after ``start``, or an ISO time."""
    try:
        return start + timedelta(seconds=parse_duration(value))
    except DurationError:
        return parse_instant(value.replace(" ", "T"))


def check_scenarios(
    path: Path, plans: Mapping[str, Plan] | None = None
) -> tuple[list[Scenario], list[Diagnostic]]:
    """The scenarios of one file and every problem found in it (scenarios only when there is
    none). With ``plans``, journey and step names are checked against them."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return [], [
            Diagnostic(str(path), 1, 1, f"cannot read it: {exc.strerror}", "file-not-found")
        ]
    doc, problems = load_yaml(raw, str(path))
    if doc is None:
        return [], problems
    data = doc.data
    prefix: Path_ = ()
    items: Any = [data]
    if isinstance(data, dict) and "scenarios" in data:
        prefix, items = ("scenarios",), data["scenarios"]
        problems += _extra_keys(doc, data)
    if not isinstance(items, list) or not items or data is None:
        msg = "a scenario file has scenarios: [a list of scenarios], or one scenario mapping"
        return [], [*problems, doc.at(prefix, msg, "wrong-type" if data else "missing-field")]
    scenarios: list[Scenario] = []
    dates = date_attributes(plans) if plans is not None else DATE_ATTRIBUTES
    for index, item in enumerate(items):
        loc: Path_ = (*prefix, index) if prefix else ()
        spec, found = validate_part(doc, loc, ScenarioSpec, item)
        problems += found + _records(doc, loc, index, dates)
        if plans is not None:
            problems += _names(doc, loc, plans)
        if spec is not None:
            scenarios.append(_scenario(spec, index, path))
    return (scenarios if not problems else []), sort_diagnostics(problems)


def _extra_keys(doc: YamlDoc, data: dict[str, Any]) -> list[Diagnostic]:
    return [
        doc.at((key,), f"unknown key {quote(key)} next to scenarios:", "unknown-key", key=True)
        for key in data
        if key != "scenarios"
    ]


def _scenario(spec: ScenarioSpec, index: int, path: Path) -> Scenario:
    start = parse_instant(spec.start.replace(" ", "T"))
    events = [
        _event_record(
            {"id": e.id, "type": e.type, "customer_id": e.customer_id, "data": e.data, "at": e.at},
            index,
            n,
            start,
        )
        for n, e in enumerate(spec.events)
    ]
    return Scenario(
        name=spec.name or f"{path.stem} #{index + 1}",
        path=path,
        journeys=list(spec.journeys) if spec.journeys else None,
        start=start,
        until=resolve(spec.until, start),
        customers=[dict(c) for c in spec.customers],
        events=events,
        expect=spec.expect.model_dump(exclude_unset=True),
    )


def _event_record(raw: Mapping[str, Any], index: int, n: int, start: datetime) -> dict[str, Any]:
    """The ingest record of a scenario event (``at`` resolved against ``start``)."""
    record = {k: v for k, v in raw.items() if k != "at"}
    record["id"] = raw.get("id") or f"scn-{index}-{n}"
    record["occurred_at"] = iso(resolve(str(raw.get("at", "0m")), start))
    record.setdefault("data", {})
    if record["data"] is None:
        record["data"] = {}
    return record


def _records(doc: YamlDoc, loc: Path_, index: int, dates: frozenset[str]) -> list[Diagnostic]:
    """``bad-record`` for each customer or event that import/ingest would refuse (checked on
    the data as written, so that they are reported with the scenario's other problems)."""
    out: list[Diagnostic] = []
    try:
        start = parse_instant(str(doc.get((*loc, "start"))).replace(" ", "T"))
    except (ValueError, OverflowError):
        start = _ANY_START  # reported as a bad start; events are still checked
    for n, record in _mappings(doc, (*loc, "customers")):
        try:
            normalise_customer(record)
            problem = dates_problem(record, dates)
        except RecordError as exc:
            problem = str(exc)
        if problem:
            out.append(doc.at((*loc, "customers", n), f"customer: {problem}", "bad-record"))
    for n, raw in _mappings(doc, (*loc, "events")):
        try:
            normalise_event(_event_record(raw, index, n, start))
        except (RecordError, DurationError, ValueError, OverflowError) as exc:
            if isinstance(exc, RecordError):  # a bad `at` is reported by the structure check
                out.append(doc.at((*loc, "events", n), f"event: {exc}", "bad-record"))
    return out


_ANY_START = datetime(2026, 1, 1, tzinfo=UTC)


def _mappings(doc: YamlDoc, loc: Path_) -> list[tuple[int, dict[str, Any]]]:
    items = doc.get(loc)
    if not isinstance(items, list):
        return []
    return [(n, item) for n, item in enumerate(items) if isinstance(item, dict)]


def _names(doc: YamlDoc, loc: Path_, plans: Mapping[str, Plan]) -> list[Diagnostic]:
    """``unknown-journey`` / ``unknown-step`` for names the project does not have."""
    known = sorted(plans)
    out: list[Diagnostic] = []

    def journey(where: Path_) -> Plan | None:
        name = doc.get(where)
        if not isinstance(name, str) or name in plans:
            return plans.get(name) if isinstance(name, str) else None
        msg = f"journey {quote(name)} is not in the project" + did_you_mean(name, known)
        out.append(doc.at(where, msg + valid_list(known, "journeys"), "unknown-journey"))
        return None

    names = doc.get((*loc, "journeys"))
    for i in range(len(names) if isinstance(names, list) else 0):
        journey((*loc, "journeys", i))
    for i, message in _mappings(doc, (*loc, "expect", "messages")):
        plan = journey((*loc, "expect", "messages", i, "journey"))
        step = message.get("step")
        if plan is not None and isinstance(step, str) and not plan.has_step(step):
            steps = [s.id for s in plan.steps]
            msg = f"journey {quote(plan.journey)} has no step {quote(step)}"
            msg += did_you_mean(step, steps) + valid_list(steps, "steps")
            out.append(doc.at((*loc, "expect", "messages", i, "step"), msg, "unknown-step"))
    for i, _ in _mappings(doc, (*loc, "expect", "enrollments")):
        journey((*loc, "expect", "enrollments", i, "journey"))
    return out
