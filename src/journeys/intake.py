"""Bounds of incoming records: what the store can keep, checked before it has to.

A record that the database would refuse (a 300-character email on PostgreSQL, a NUL character,
an integer beyond 64 bits, a year-1 time that overflows at UTC, JSON nested a thousand deep)
must fail alone, as one error line naming the record, and never take a whole file down with a
traceback. :func:`check_customer` and :func:`check_event` raise :class:`BoundsError` for such
records; :mod:`journeys.runtime.records` calls them first. The text limits equal the sizes of
the columns in ``store/tables.py`` (``tests/test_limits.py`` checks them).

Custom date attributes (the ``customer.<attr>`` of date triggers, and ``birthday``) are checked
by :func:`date_problem` and the import wrappers :func:`checked_customers` /
:func:`checked_events`, which turn a record with an unreadable date into a bad line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date
from typing import Any

from journeys.clock import parse_instant
from journeys.plan import DateTrigger, Plan
from journeys.spec import limits

MAX_DEPTH = 32
"""Nesting of ``data`` and attributes: no CRM event needs more, and it keeps every later
``json.dumps``, copy and comparison far from Python's recursion limit."""
MAX_LINE = 1_000_000
"""Characters of one JSON Lines record (the CSV reader's own limit is 131,072 per field)."""
INT32 = 2**31 - 1
"""``orders_count`` is an INTEGER column: 32 bits on PostgreSQL."""
INT64 = 2**63 - 1
"""Integers inside JSON data: SQLite stores at most 64 bits, and the JSON functions of both
databases read larger ones as floats."""

CUSTOMER_TEXT: dict[str, int] = {
    "id": limits.CUSTOMER_ID,
    "email": 320,
    "phone": 64,
    "first_name": 200,
    "last_name": 200,
    "locale": 35,
    "timezone": 64,
    "stage": 32,
}
"""Customer columns holding text, and their sizes (``customers`` table)."""
EVENT_TEXT: dict[str, int] = {
    "id": limits.EVENT_ID,
    "customer_id": limits.CUSTOMER_ID,
}
DATE_ATTRIBUTES = frozenset({"birthday"})
"""Customer attributes that are always dates."""

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ].*)?$")
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")
_INSTANTS = ("first_order_at", "last_order_at")
_EDGE_YEARS = ("0001", "9999")


class BoundsError(ValueError):
    """A record the store cannot keep; the message names the field and the limit."""


_LONG_QUOTE = re.compile(r"'([^'\n]{57})[^'\n]{4,}'")


class bounded:  # lowercase: used like a function, ``with bounded(RecordError):``
    """Turn :class:`BoundsError` (and a time that overflows at UTC) into ``error``, and cut
    long quoted values in the messages of ``error`` (a record's message must fit on a line,
    whatever the record holds). A class, not a generator: it wraps every record."""

    __slots__ = ("_error",)

    def __init__(self, error: type[Exception]) -> None:
        self._error = error

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if exc is None:
            return
        if isinstance(exc, BoundsError):
            raise self._error(str(exc)) from None
        if isinstance(exc, OverflowError):
            raise self._error("a time is out of range once moved to UTC") from None
        if isinstance(exc, self._error):
            raise self._error(_LONG_QUOTE.sub(r"'\1…'", str(exc))) from None


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters (records may be huge)."""
    text = repr(value) if not isinstance(value, str) else repr(value[: limit + 1])
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_text(value: Any, key: str, limit: int) -> None:
    """A text field: at most ``limit`` characters, no NUL and no lone surrogates."""
    kind = type(value)
    if kind is int:
        value = str(value)
    elif kind is not str:
        return  # missing, or not text: the field's own check says what it must be
    if len(value) > limit:
        raise BoundsError(f"{key!r} is {len(value)} characters; the limit is {limit}")
    if ("\x00" in value) if value.isascii() else _BAD_CHARS.search(value):
        raise BoundsError(f"{key!r} contains a NUL or an unpaired surrogate character")


def check_json(value: Any, key: str) -> None:
    """JSON data the store can keep: nesting, finite numbers, 64-bit integers, clean text.

    A quick pass answers for almost every record; only one that breaks a rule is walked again
    to name the value at fault.
    """
    if not _fine(value, 0):
        _walk(value, key)


def _fine(value: Any, depth: int) -> bool:
    """Whether ``value`` keeps every rule of :func:`check_json` (fast: scalars are checked in
    line, no names are built; this runs for every ingested event)."""
    kind = type(value)
    if kind is dict:
        if depth >= MAX_DEPTH:
            return False
        for k, v in value.items():
            if type(k) is not str or not _scalar_fine(k) or not _fine(v, depth + 1):
                return False
        return True
    if kind is list:
        return depth < MAX_DEPTH and all(_fine(v, depth + 1) for v in value)
    return _scalar_fine(value)


def _scalar_fine(value: Any) -> bool:
    kind = type(value)
    if kind is str:
        return ("\x00" not in value) if value.isascii() else not _BAD_CHARS.search(value)
    if kind is float:
        return value - value == 0.0  # False for inf and NaN
    if kind is int:
        return -INT64 <= value <= INT64
    return value is None or kind is bool


def _walk(value: Any, key: str, depth: int = 0) -> None:
    """:func:`check_json`'s rules, value by value, naming the first that breaks one."""
    if depth > MAX_DEPTH:
        raise BoundsError(f"{key!r} is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if _BAD_CHARS.search(value):
            raise BoundsError(f"{key!r} contains a NUL or an unpaired surrogate character")
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if abs(value) > INT64:
            raise BoundsError(f"{key!r} {short(value)} is beyond the 64-bit integer range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise BoundsError(f"{key!r} must be a finite number, got {value!r}")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise BoundsError(f"{key!r} has a key that is not text: {short(k)}")
            _walk(k, f"{key}.{k[:40]}", depth + 1)
            _walk(v, f"{key}.{k[:40]}", depth + 1)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _walk(item, f"{key}[{i}]", depth + 1)
    else:
        raise BoundsError(f"{key!r} holds a {type(value).__name__}, which JSON cannot carry")


def check_instant(value: Any, key: str) -> None:
    """An ISO time that stays a valid date when moved to UTC (``0001-01-01T00:00+14:00``
    does not)."""
    if not isinstance(value, str) or value.strip()[:4] not in _EDGE_YEARS:
        return  # only the first and last years can leave the calendar when moved to UTC
    try:
        parse_instant(value[:100])
    except OverflowError:
        raise BoundsError(f"{key!r} {short(value)} is out of range once moved to UTC") from None
    except ValueError:
        return  # not ISO at all: the field's own check says so


def check_int(value: Any, key: str, bound: int) -> None:
    """An integer field within ``±bound`` (text digits are counted before converting)."""
    text = str(value).strip() if isinstance(value, str | int) else ""
    digits = text.lstrip("+-").removesuffix(".0")
    if digits.isdigit() and (len(digits) > 19 or int(digits) > bound):
        raise BoundsError(f"{key!r} {short(value)} is larger than {bound:,}")


def date_problem(value: Any, key: str) -> str | None:
    """Why ``value`` is not a date ``YYYY-MM-DD`` (optionally with a time after it), or None."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and _DATE.match(value):
        try:
            date.fromisoformat(value[:10])
            return None
        except ValueError:
            return f"{key!r} {short(value)} is not a real date"
    return f"{key!r} {short(value)} is not a date; write YYYY-MM-DD (e.g. 1990-03-05)"


def check_customer(record: Mapping[str, Any]) -> None:
    """Every bound of a customer record (a CSV row, a JSON object or trait updates)."""
    for key, limit in CUSTOMER_TEXT.items():
        check_text(record.get(key), key, limit)
    check_int(record.get("orders_count"), "orders_count", INT32)
    for key in _INSTANTS:
        check_instant(record.get(key), key)
    problem = date_problem(record.get("birthday"), "birthday")
    if problem:
        raise BoundsError(problem)
    for key, value in record.items():
        if key not in CUSTOMER_TEXT and not (
            type(key) is str and _fine(key, 0) and _fine(value, 1)
        ):
            _walk(key, "a column name")
            _walk(value, str(key)[:40], 1)


def check_event(record: Mapping[str, Any]) -> None:
    """Every bound of an event record: type, ids, time and data."""
    kind = record.get("type")
    if kind is not None and kind != "":
        if not isinstance(kind, str):
            raise BoundsError(f"'type' must be text like order.placed, got {short(kind)}")
        if len(kind) > limits.EVENT_TYPE:
            raise BoundsError(f"'type' is {len(kind)} characters; the limit is {limits.EVENT_TYPE}")
        if not limits.EVENT_TYPE_PATTERN.match(kind):
            raise BoundsError(
                f"'type' {short(kind)} must be {limits.EVENT_TYPE_CHARS}, like order.placed"
            )
    for key, limit in EVENT_TEXT.items():
        check_text(record.get(key), key, limit)
    occurred = record.get("occurred_at")
    if isinstance(occurred, str) and len(occurred) > 64:
        raise BoundsError(f"'occurred_at' is {len(occurred)} characters; an ISO time has fewer")
    check_instant(occurred, "occurred_at")
    check_json(record.get("data"), "data")


# ------------------------------------------------------------------------ custom date attributes


def date_attributes(plans: Mapping[str, Plan]) -> frozenset[str]:
    """The customer attributes that hold dates: ``birthday`` and every date trigger's field."""
    fields = {p.trigger.field for p in plans.values() if isinstance(p.trigger, DateTrigger)}
    return DATE_ATTRIBUTES | fields


def dates_problem(traits: Mapping[str, Any], fields: Iterable[str]) -> str | None:
    """The first unreadable date among ``fields`` of ``traits`` (and its ``attributes``)."""
    nested = traits.get("attributes")
    for name in sorted(fields):
        if name in _INSTANTS:
            continue  # parsed as times by the record checks
        for source in (traits, nested if isinstance(nested, Mapping) else {}):
            problem = date_problem(source.get(name), name)
            if problem:
                used = "" if name in DATE_ATTRIBUTES else " (a date trigger reads it)"
                return problem + used
    return None


def checked_customers(
    records: Iterable[Any], fields: Iterable[str], bad: Callable[[str], Any]
) -> Iterator[Any]:
    """``records`` with each customer whose date attributes do not parse replaced by
    ``bad(message)`` (a bad line: reported by line, the other records kept)."""
    names = frozenset(fields)
    for record in records:
        problem = dates_problem(record, names) if isinstance(record, Mapping) else None
        yield bad(problem) if problem else record


def checked_events(
    records: Iterable[Any],
    fields: Iterable[str],
    bad: Callable[[str], Any],
    creating: Iterable[str],
) -> Iterator[Any]:
    """Like :func:`checked_customers` for the traits of profile events (``creating`` types)."""
    names, kinds = frozenset(fields), frozenset(creating)
    for record in records:
        problem = None
        if isinstance(record, Mapping) and record.get("type") in kinds:
            data = record.get("data")
            problem = dates_problem(data, names) if isinstance(data, Mapping) else None
        yield bad(f"in data: {problem}") if problem else record
