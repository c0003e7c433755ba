"""What expressions and templates see: customer, event, answers, now and journey."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from journeys.clock import iso as _slow_iso

PROFILE_FIELDS = (
    "id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "locale",
    "timezone",
    "birthday",
    "email_opt_in",
    "stage",
    "orders_count",
    "lifetime_value",
    "first_order_at",
    "last_order_at",
)
"""Columns of a customer that expressions see next to its free-form attributes."""


def iso(value: datetime) -> str | None:
    """:func:`journeys.clock.iso` (``2026-03-01T10:15:00Z``), without strftime for UTC values
    (this runs several times per enrollment step)."""
    if value.tzinfo is UTC:
        return value.replace(microsecond=0, tzinfo=None).isoformat() + "Z"
    return _slow_iso(value)


def customer_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A flat dict of a customer: attributes first, then profile fields (which win)."""
    view: dict[str, Any] = dict(row.get("attributes") or {})
    for name in PROFILE_FIELDS:
        value = row.get(name)
        view[name] = iso(value) if isinstance(value, datetime) else value
    return view


def event_view(event: Mapping[str, Any] | None) -> dict[str, Any]:
    """``event.type``, ``event.occurred_at`` (ISO), ``event.data``, ``event.id``."""
    if not event:
        return {}
    occurred = event.get("occurred_at")
    return {
        "id": event.get("id"),
        "type": event.get("type"),
        "occurred_at": iso(occurred) if isinstance(occurred, datetime) else occurred,
        "data": event.get("data") or {},
    }


def expression_context(
    customer: Mapping[str, Any],
    *,
    event: Mapping[str, Any] | None,
    answers: Mapping[str, Any] | None,
    now: datetime,
    journey: Mapping[str, Any],
) -> dict[str, Any]:
    """The names an expression can use (docs/language.md, Expressions)."""
    return {
        "customer": customer,
        "event": event or {},
        "answers": answers or {},
        "now": iso(now),
        "journey": journey,
    }
