"""Annotated value types of the language: each checks one kind of scalar and names its code.

Validators raise :class:`pydantic_core.PydanticCustomError` whose *type* is the diagnostic
code (``bad-duration``, ``bad-time`` …) so that structural errors keep a precise code.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Annotated, Any

from croniter import croniter
from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from journeys.durations import (
    DURATION_HELP,
    MAX_DAYS,
    TIME_HELP,
    DurationError,
    parse_duration,
    parse_time_of_day,
)
from journeys.spec import limits
from journeys.spec.diagnostics import quote

SLUG = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
STEP_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_QUIET = re.compile(r"^\s*(\S+)\s*-\s*(\S+)\s*$")


def _fail(code: str, message: str) -> PydanticCustomError:
    # Braces would be read as placeholders by pydantic; double them.
    return PydanticCustomError(code, message.replace("{", "{{").replace("}", "}}"))


def _text(value: Any, code: str, what: str) -> str:
    if not isinstance(value, str):
        raise _fail(code, f"{what} must be text, got {quote(value)}")
    return value


def _limit(text: str, limit: int, what: str) -> str:
    if len(text) > limit:
        raise _fail(
            "too-long",
            f"{what} {quote(text[:40] + '…')} is {len(text)} characters; the limit is {limit}"
            " (the database column that stores it); shorten it",
        )
    return text


def check_journey_id(value: Any) -> str:
    """A journey id: lowercase letters, digits, single ``-``/``_`` between them."""
    text = _limit(_text(value, "bad-id", "journey id"), limits.JOURNEY_ID, "journey id")
    if not SLUG.match(text):
        hint = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "my-journey"
        raise _fail(
            "bad-id",
            f"journey id {quote(text)} is not a lowercase slug (letters, digits, - and _);"
            f" try {quote(hint)}",
        )
    return text


def check_step_id(value: Any) -> str:
    """A step id: lowercase letters, digits, ``_`` and ``-``; ``end`` is reserved."""
    text = _limit(_text(value, "bad-id", "step id"), limits.STEP_ID, "step id")
    if text == "end":
        raise _fail("bad-id", 'step id "end" is reserved for the end of the journey; rename it')
    if not STEP_ID.match(text):
        hint = re.sub(r"[^a-z0-9_-]+", "_", text.lower()).strip("_-") or "step"
        raise _fail(
            "bad-id",
            f"step id {quote(text)} must use lowercase letters, digits, _ and -; try {quote(hint)}",
        )
    return text


def check_duration(value: Any) -> str:
    """A positive duration such as ``30m``, ``24h``, ``3d``, ``2w`` or ``P3D``."""
    try:
        parse_duration(value)
    except DurationError as exc:
        if isinstance(value, int) and not isinstance(value, bool):
            message = f"{value} has no unit; {DURATION_HELP}"
        elif "zero" in str(exc):
            message = f"duration {quote(value)} is zero; it must be positive"
        elif "longer than" in str(exc):
            message = f"duration {quote(value)} is longer than {MAX_DAYS}d (ten years)"
        else:
            message = f"{quote(value)} is not a duration; {DURATION_HELP}"
        raise _fail("bad-duration", message) from None
    return str(value)


def check_signed_duration(value: Any) -> str:
    """A duration that may be negative (``-3d``), for date trigger offsets."""
    if isinstance(value, str) and value.strip().startswith("-"):
        check_duration(value.strip()[1:])
        return value.strip()
    return check_duration(value)


def check_time(value: Any) -> str:
    """A 24-hour local time ``HH:MM``."""
    if not isinstance(value, str):
        raise _fail(
            "bad-time", f'{quote(value)} is not a time of day; use a 24-hour time like "09:00"'
        )
    try:
        parse_time_of_day(value)
    except DurationError:
        raise _fail("bad-time", f"{quote(value)} is not a time of day; {TIME_HELP}") from None
    return value


def check_quiet_hours(value: Any) -> str:
    """A local window ``HH:MM-HH:MM`` (may wrap past midnight, e.g. ``21:00-09:00``)."""
    text = _text(value, "bad-time", "quiet_hours")
    match = _QUIET.match(text)
    help_ = 'use a local window "HH:MM-HH:MM", for example "21:00-09:00"'
    if not match:
        raise _fail("bad-time", f"quiet_hours {quote(text)} is not a window; {help_}")
    try:
        start, end = parse_time_of_day(match[1]), parse_time_of_day(match[2])
    except DurationError:
        raise _fail("bad-time", f"quiet_hours {quote(text)} is not a window; {help_}") from None
    if start == end:
        raise _fail("bad-time", f"quiet_hours {quote(text)} starts and ends at the same time")
    return text


def parse_quiet_hours(text: str) -> tuple[int, int]:
    """``"21:00-09:00"`` → ``(1260, 540)`` (call only on a checked value)."""
    match = _QUIET.match(text)
    assert match is not None
    return parse_time_of_day(match[1]), parse_time_of_day(match[2])


def check_cron(value: Any) -> str:
    """A standard 5-field cron expression (minute hour day month weekday)."""
    text = _text(value, "bad-cron", "schedule")
    fields = text.split()
    help_ = 'use 5 fields: minute hour day-of-month month day-of-week, e.g. "0 10 * * MON"'
    if len(fields) != 5:
        raise _fail("bad-cron", f"schedule {quote(text)} has {len(fields)} fields; {help_}")
    try:
        valid = croniter.is_valid(text)
    except Exception:  # croniter may raise on exotic input
        valid = False
    if not valid:
        raise _fail("bad-cron", f"schedule {quote(text)} is not a valid cron expression; {help_}")
    return text


def check_timezone(value: Any) -> str:
    """An IANA time zone name such as ``Europe/Paris`` or ``UTC``."""
    text = _text(value, "bad-timezone", "timezone")
    try:
        if not text or text.startswith(("/", ".")) or ".." in text:
            raise ValueError(text)
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        from journeys.spec.diagnostics import did_you_mean

        hint = did_you_mean(text, sorted(zoneinfo.available_timezones()))
        raise _fail(
            "bad-timezone",
            f"unknown time zone {quote(text)}{hint} (use an IANA name such as Asia/Seoul or UTC)",
        ) from None
    return text


def check_date_field(value: Any) -> str:
    """A customer date attribute: ``customer.birthday`` (or just ``birthday``)."""
    text = _text(value, "wrong-type", "date")
    if not re.match(r"^(customer\.)?[A-Za-z_][A-Za-z0-9_]*$", text):
        raise _fail(
            "bad-trigger",
            f"date {quote(text)} must name a customer attribute, for example customer.birthday",
        )
    return text


def check_event_type(value: Any) -> str:
    """An event type such as ``order.placed``: letters, digits and ``. _ - : /``."""
    text = _text(value, "wrong-type", "an event type")
    if not limits.EVENT_TYPE_PATTERN.match(text):
        msg = f"event type {quote(text)} must be {limits.EVENT_TYPE_CHARS}, like order.placed"
        raise _fail("bad-value", msg)
    return _limit(text, limits.EVENT_TYPE, "event type")


def _bounded_text(limit: int, what: str) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, str):  # other kinds are reported by the type check
            _limit(value, limit, what)
        return value

    return check


def _string(
    pattern: str | None = None,
    description: str = "",
    max_length: int | None = None,
    min_length: int | None = None,
) -> WithJsonSchema:
    schema: dict[str, Any] = {"type": "string"}
    if min_length:
        schema["minLength"] = min_length
    if pattern:
        schema["pattern"] = pattern
    if max_length:
        schema["maxLength"] = max_length
    if description:
        schema["description"] = description
    return WithJsonSchema(schema)


_DURATION_RE = r"^(?:(?:\d+[smhdw])+|P(?:\d+W)?(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+S)?)?)$"

JourneyId = Annotated[
    str,
    BeforeValidator(check_journey_id),
    _string(SLUG.pattern, "lowercase slug", limits.JOURNEY_ID),
]
StepId = Annotated[
    str, BeforeValidator(check_step_id), _string(STEP_ID.pattern, "step id", limits.STEP_ID)
]
Duration = Annotated[
    str, BeforeValidator(check_duration), _string(_DURATION_RE, "30m, 24h, 3d, 2w or P3D")
]
SignedDuration = Annotated[
    str,
    BeforeValidator(check_signed_duration),
    _string("^-?" + _DURATION_RE[1:], "a duration, negative for before: -3d"),
]
TimeOfDay = Annotated[
    str, BeforeValidator(check_time), _string(r"^([01]?\d|2[0-3]):[0-5]\d$", "HH:MM")
]
QuietHours = Annotated[
    str,
    BeforeValidator(check_quiet_hours),
    _string(r"^\s*\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}\s*$", "HH:MM-HH:MM"),
]
Cron = Annotated[str, BeforeValidator(check_cron), _string(None, "5-field cron expression")]
TimeZone = Annotated[str, BeforeValidator(check_timezone), _string(None, "IANA time zone")]
EventType = Annotated[
    str,
    BeforeValidator(check_event_type),
    _string(limits.EVENT_TYPE_PATTERN.pattern, "event type", limits.EVENT_TYPE),
]
TemplateName = Annotated[
    str,
    BeforeValidator(_bounded_text(limits.TEMPLATE_NAME, "template name")),
    _string(None, "a template in templates/", limits.TEMPLATE_NAME),
]
ExitReason = Annotated[
    str,
    BeforeValidator(_bounded_text(limits.EXIT_REASON, "exit reason")),
    _string(None, "why the enrollment ends", limits.EXIT_REASON, 1),
]
VariantName = Annotated[
    str,
    BeforeValidator(_bounded_text(limits.VARIANT, "variant")),
    _string(None, "variant name", limits.VARIANT, 1),
]
DateField = Annotated[
    str, BeforeValidator(check_date_field), _string(r"^(customer\.)?[A-Za-z_][A-Za-z0-9_]*$")
]
Expression = Annotated[str, _string(None, "Jinja2 expression")]
Target = Annotated[str, _string(None, "a step id or end")]
