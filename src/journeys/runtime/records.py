"""Validation of incoming records: events (docs/events.md) and customers (docs/customers.md).

Each function returns the normalised record or raises :class:`RecordError` whose message says
what is wrong and how to fix it; callers attach the file and line number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from journeys.clock import as_utc, parse_instant
from journeys.intake import bounded, check_customer, check_event, short
from journeys.runtime.timecalc import is_valid_zone

CREATING_EVENTS = frozenset({"customer.updated", "customer.created", "customer.signed_up"})
"""Event types that may name a customer we have not seen: they create the profile."""

EVENT_FIELDS = frozenset({"id", "type", "customer_id", "occurred_at", "data"})
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f", ""}


class RecordError(ValueError):
    """A record that cannot be accepted; the message names the field and the fix."""


def _text(record: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = record.get(key)
    if value is None or value == "":
        if required:
            raise RecordError(f"missing {key!r}")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RecordError(f"{key!r} must be a string, got {type(value).__name__}")
    return str(value).strip()


def parse_bool(value: Any, key: str) -> bool:
    """``true/false/1/0/yes/no`` (CSV-friendly) to bool."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise RecordError(f"{key!r} must be true or false, got {value!r}")


def _int(value: Any, key: str) -> int:
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        return int(str(value).strip().removesuffix(".0"))
    except ValueError:
        raise RecordError(f"{key!r} must be a whole number, got {value!r}") from None


def _number(value: Any, key: str) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise RecordError(f"{key!r} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise RecordError(f"{key!r} must be a finite number, got {value!r}")
    return number


def _instant(value: Any, key: str) -> datetime:
    if isinstance(value, datetime):
        return as_utc(value)
    text = str(value).strip()
    try:
        parsed = parse_instant(text)
    except ValueError:
        raise RecordError(
            f"{key!r} {value!r} is not an ISO 8601 time; write e.g. 2026-03-01T10:15:00Z"
        ) from None
    tail = text[10:]
    if "T" in text and not (text.endswith(("Z", "z")) or "+" in tail or "-" in tail):
        raise RecordError(f"{key!r} {value!r} has no time zone; add Z for UTC")
    return parsed


def _profile_field(out: dict[str, Any], key: str, value: Any, record: Mapping[str, Any]) -> bool:
    """Normalise one profile column into ``out``; False if ``key`` is not a profile column."""
    if key == "email":
        email = _text(record, "email")
        if email and ("@" not in email or " " in email):
            raise RecordError(f"'email' {email!r} is not an email address")
        out["email"] = email
    elif key == "timezone":
        tz = _text(record, "timezone")
        if tz and not is_valid_zone(tz):
            raise RecordError(
                f"'timezone' {tz!r} is not an IANA time zone (e.g. Asia/Seoul, Europe/London)"
            )
        out["timezone"] = tz
    elif key == "birthday":
        text = _text(record, "birthday")
        if text:
            try:
                date.fromisoformat(text)
            except ValueError:
                raise RecordError(f"'birthday' {text!r} is not a date; write YYYY-MM-DD") from None
        out["birthday"] = text
        out["birthday_md"] = text[5:10] if text else None
    elif key == "email_opt_in":
        out["email_opt_in"] = None if value in (None, "") else parse_bool(value, key)
    elif key in ("locale", "phone", "first_name", "last_name", "stage"):
        out[key] = _text(record, key)
    elif key == "orders_count":
        out[key] = _int(value, key)
    elif key == "lifetime_value":
        out[key] = _number(value, key)
    elif key in ("first_order_at", "last_order_at"):
        out[key] = _instant(value, key) if value not in (None, "") else None
    else:
        return False
    return True


def normalise_customer(record: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """A customer row from a CSV/JSONL record or ``customer.updated`` data.

    ``partial`` (trait updates) keeps only the keys present. Unknown columns become attributes.
    """
    if not isinstance(record, Mapping):
        raise RecordError(f"a customer must be an object, got {type(record).__name__}")
    with bounded(RecordError):  # what the store cannot keep fails here, with a short reason
        check_customer(record)
        out: dict[str, Any] = {}
        if not partial:
            out["id"] = _text(record, "id", required=True)
        attributes: dict[str, Any] = {}
        for key, value in record.items():
            if key in ("id", "attributes"):
                continue
            if not _profile_field(out, key, value, record):
                attributes[key] = value
        extra = record.get("attributes")
        if isinstance(extra, Mapping):
            attributes.update(extra)
        out["attributes"] = attributes
    return out


def normalise_event(record: Any) -> dict[str, Any]:
    """An event row from a JSON object (docs/events.md); raises :class:`RecordError`."""
    if not isinstance(record, Mapping):
        raise RecordError(f"an event must be a JSON object, got {type(record).__name__}")
    unknown = sorted(set(record) - EVENT_FIELDS)
    if unknown:
        raise RecordError(
            f"unknown field(s) {', '.join(short(u, 40) for u in unknown[:5])}; "
            "an event has id, type, customer_id, occurred_at, data"
        )
    with bounded(RecordError):  # what the store cannot keep fails here, with a short reason
        check_event(record)
        event_id = _text(record, "id", required=True)
        event_type = _text(record, "type", required=True)
        customer_id = _text(record, "customer_id", required=True)
        if record.get("occurred_at") in (None, ""):
            raise RecordError("missing 'occurred_at'")
        occurred = _instant(record["occurred_at"], "occurred_at")
        return {
            "id": event_id,
            "type": event_type,
            "customer_id": customer_id,
            "occurred_at": occurred,
            "data": event_data(event_type, record.get("data") or {}),
        }


def event_data(event_type: str, data: Any) -> dict[str, Any]:
    """The ``data`` of an event of ``event_type``, checked and normalised (``order.placed``
    needs a numeric ``total``, ``survey.answered`` its journey, step and score, …); raises
    :class:`RecordError`. Ingested and journey-emitted events both go through it."""
    if not isinstance(data, Mapping):
        raise RecordError(f"'data' must be an object, got {type(data).__name__}")
    data = dict(data)
    if event_type == "order.placed":
        if "total" not in data:
            raise RecordError("order.placed needs data.total (the order amount)")
        data["total"] = _number(data["total"], "data.total")
    elif event_type == "survey.answered":
        for key in ("journey", "step", "score"):
            if key not in data:
                raise RecordError(f"survey.answered needs data.{key}")
        data["score"] = _int(data["score"], "data.score")
        if not 0 <= data["score"] <= 10:
            raise RecordError(f"data.score must be 0-10 (NPS) or 1-5 (CSAT), got {data['score']}")
    elif event_type in CREATING_EVENTS:
        normalise_customer(data, partial=True)  # validate traits now, apply later
    return data
