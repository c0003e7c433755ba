"""What expressions and templates see: customer, event, answers, now and journey."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from journeys.state import PROFILE_FIELDS, iso, profile_view

__all__ = ["PROFILE_FIELDS", "customer_view", "event_view", "expression_context", "iso"]


def customer_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A flat dict of a customer row: attributes first, then profile fields (which win)."""
    return profile_view(row.get("attributes"), row.get)


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
