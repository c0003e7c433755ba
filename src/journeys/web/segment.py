"""Segment's HTTP tracking API messages as our events (pure).

- ``track`` → an event of the mapped type (``web.segment_events``; by default ``Order Completed``
  → ``order.placed``); other names become ``object.action`` in lowercase (``Product Viewed`` →
  ``product.viewed``), and names without spaces are kept as they are. ``properties`` are its data.
- ``identify`` → ``customer.updated`` with the traits (``firstName`` → ``first_name`` …; the
  context's ``locale`` and ``timezone`` fill in when the traits do not say).
- ``page`` / ``screen`` → ``page.viewed`` / ``screen.viewed`` with ``name`` and the properties.
- ``group`` and ``alias``, and messages without a ``userId`` (anonymous visitors: journeys
  follows known customers), are skipped, not refused, so Segment does not retry them.

A user needs no ``identify`` first: each request also stores a ``customer.updated`` without
traits for every user it names (id ``segment-user:<userId>``, so once per user ever), which makes
an unknown user a customer. ``messageId`` is the event id, so a retried message is stored
once; the time is ``timestamp``, else ``originalTimestamp``, else ``sentAt``, else when it
arrived.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from journeys.runtime.records import RecordError

KINDS = ("track", "identify", "page", "screen", "group", "alias")
"""The message types of Segment's tracking API."""

TRAITS: dict[str, str] = {
    "firstName": "first_name",
    "lastName": "last_name",
    "first_name": "first_name",
    "last_name": "last_name",
    "email": "email",
    "phone": "phone",
    "birthday": "birthday",
    "locale": "locale",
    "timezone": "timezone",
}
"""Segment's reserved traits that are profile fields of ours."""

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Skipped:
    """A message journeys does not store, and why (not an error)."""

    reason: str


def event_type(name: str, mapping: Mapping[str, str]) -> str:
    """Our event type for a Segment event name (see the module docstring)."""
    if name in mapping:
        return mapping[name]
    words = name.split()
    if len(words) <= 1:
        return name.strip()
    action = words[-1].lower()
    return "_".join(w.lower() for w in words[:-1]) + "." + action


def _traits(msg: Mapping[str, Any]) -> dict[str, Any]:
    raw = msg.get("traits")
    if raw is None:
        raw = (msg.get("context") or {}).get("traits") or {}
    if not isinstance(raw, Mapping):
        raise RecordError(f"'traits' must be an object, got {type(raw).__name__}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        out[TRAITS.get(key, key)] = value
    birthday = out.get("birthday")
    if isinstance(birthday, str) and _DATE.match(birthday):
        out["birthday"] = birthday[:10]
    context = msg.get("context")
    if isinstance(context, Mapping):
        for key in ("locale", "timezone"):
            if isinstance(context.get(key), str) and key not in out:
                out[key] = context[key]
    return out


def _message_id(msg: Mapping[str, Any]) -> str:
    given = msg.get("messageId")
    if isinstance(given, str | int) and not isinstance(given, bool) and str(given).strip():
        return str(given).strip()
    # No id: the same message sent again must still be stored once.
    canonical = json.dumps(msg, sort_keys=True, separators=(",", ":"), default=str)
    return "segment-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def to_event(
    msg: Any, kind: str, *, mapping: Mapping[str, str], now: datetime
) -> dict[str, Any] | Skipped:
    """Our event for one Segment message of type ``kind`` (``msg["type"]`` wins in a batch);
    raises :class:`~journeys.runtime.records.RecordError` for a malformed one."""
    if not isinstance(msg, Mapping):
        raise RecordError(f"a Segment message must be a JSON object, got {type(msg).__name__}")
    kind = str(msg.get("type") or kind)
    if kind not in KINDS:
        raise RecordError(f"unknown message type {kind!r} (valid: {', '.join(KINDS)})")
    if kind in ("group", "alias"):
        return Skipped(f"{kind} messages are not recorded")
    user = msg.get("userId")
    if user is None or (isinstance(user, str) and not user.strip()):
        return Skipped("no userId (anonymous visitors are not tracked)")
    if isinstance(user, bool) or not isinstance(user, str | int):
        raise RecordError(f"'userId' must be a string, got {type(user).__name__}")
    when = msg.get("timestamp") or msg.get("originalTimestamp") or msg.get("sentAt") or now
    properties = msg.get("properties") or {}
    if not isinstance(properties, Mapping):
        raise RecordError(f"'properties' must be an object, got {type(properties).__name__}")
    if kind == "track":
        name = msg.get("event")
        if not isinstance(name, str) or not name.strip():
            raise RecordError("a track message needs 'event' (the event name)")
        etype, data = event_type(name, mapping), dict(properties)
    elif kind == "identify":
        etype, data = "customer.updated", _traits(msg)
    else:
        etype = f"{kind}.viewed"
        data = dict(properties)
        if isinstance(msg.get("name"), str):
            data["name"] = msg["name"]
    return {
        "id": _message_id(msg),
        "type": etype,
        "customer_id": str(user).strip(),
        "occurred_at": when,
        "data": data,
    }


def implied_customer(event: Mapping[str, Any]) -> dict[str, Any]:
    """The ``customer.updated`` (no traits) that makes the sender of ``event`` a customer, with
    one id per user so that it is stored once."""
    cid = event["customer_id"]
    return {
        "id": f"segment-user:{cid}",
        "type": "customer.updated",
        "customer_id": cid,
        "occurred_at": event["occurred_at"],
        "data": {},
    }
