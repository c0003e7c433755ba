"""SendGrid's signed Event Webhook: the signature check, and its events as ours (pure).

SendGrid signs ``timestamp + raw body`` with ECDSA (P-256, SHA-256) and sends the base64 DER
signature in ``X-Twilio-Email-Event-Webhook-Signature`` and the timestamp in
``X-Twilio-Email-Event-Webhook-Timestamp``. The public key is the base64 DER key SendGrid shows
under Mail Settings. Custom arguments given at send time come back as top-level fields of each
event: our dispatcher sends ``message_id`` (the outbox row id), so an event maps back to the
customer, journey, step and template without any personal data leaving us.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
MAX_SKEW = 600
"""Seconds a signed timestamp may be away from now (replays of old captures are refused)."""

EVENT_TYPES: dict[str, str] = {
    "processed": "email.processed",
    "delivered": "email.delivered",
    "open": "email.opened",
    "click": "email.clicked",
    "bounce": "email.bounced",
    "dropped": "email.dropped",
    "deferred": "email.deferred",
    "spamreport": "email.complained",
    "unsubscribe": "email.unsubscribed",
    "group_unsubscribe": "email.unsubscribed",
}
"""SendGrid's event names and the event types journeys stores them as."""

BLOCKED = "email.blocked"
"""A ``bounce`` whose ``type`` is ``blocked``: the receiving server refused this time (not a
bad address), so it is stored under its own type and suppresses nothing."""

SUPPRESSES: dict[str, str] = {
    "email.bounced": "bounced",
    "email.complained": "complaint",
    "email.unsubscribed": "unsubscribed",
}
"""Event types that suppress the customer's email, with the suppression reason."""


class WebhookKeyError(ValueError):
    """The configured public key is not one SendGrid issues."""


class SignatureError(ValueError):
    """The request is not signed by SendGrid (or too old); the message says which check
    failed."""


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key (base64 DER, as shown in its settings; a PEM block is
    accepted too)."""
    body = "".join(
        line for line in text.strip().splitlines() if not line.startswith("-----")
    ).strip()
    try:
        key = load_der_public_key(base64.b64decode(body, validate=True))
    except (ValueError, binascii.Error, TypeError) as exc:
        raise WebhookKeyError(f"not a base64 DER public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise WebhookKeyError("not an elliptic-curve (ECDSA) public key")
    return key


def verify_signature(
    key: ec.EllipticCurvePublicKey,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    now: datetime,
) -> None:
    """Check the signature of a webhook request before anything reads its body; raises
    :class:`SignatureError`."""
    if not signature or not timestamp:
        raise SignatureError(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER}")
    if not timestamp.isdigit():
        raise SignatureError(f"{TIMESTAMP_HEADER} is not a Unix time")
    if abs(now.timestamp() - int(timestamp)) > MAX_SKEW:
        raise SignatureError(f"the signed timestamp is more than {MAX_SKEW // 60} minutes off")
    try:
        der = base64.b64decode(signature, validate=True)
        key.verify(der, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        raise SignatureError("the signature does not match the body") from None


@dataclass(frozen=True)
class MappedEvent:
    """One SendGrid event as one of ours: the event record (without ``customer_id``, which
    comes from the message) and the outbox id it belongs to."""

    message_id: int
    record: dict[str, Any]


def map_event(raw: Any) -> MappedEvent | str:
    """The event of one item of the webhook's JSON array, or why it is skipped."""
    if not isinstance(raw, Mapping):
        return "not a JSON object"
    kind = raw.get("event")
    etype = EVENT_TYPES.get(str(kind))
    if etype is None:
        return f"event {kind!r} is not one journeys records"
    sg_id = raw.get("sg_event_id")
    if not isinstance(sg_id, str) or not sg_id:
        return "no sg_event_id"
    custom = raw.get("custom_args") if isinstance(raw.get("custom_args"), Mapping) else {}
    message = raw.get("message_id", custom.get("message_id"))
    if not isinstance(message, str | int) or not str(message).isdigit():
        return "no message_id custom argument: not a message journeys sent"
    stamp = raw.get("timestamp")
    if not isinstance(stamp, int | float) or isinstance(stamp, bool):
        return "no timestamp"
    if etype == "email.bounced" and raw.get("type") == "blocked":
        etype = BLOCKED
    data: dict[str, Any] = {"message_id": str(message), "provider": "sendgrid"}
    if kind == "click" and isinstance(raw.get("url"), str):
        data["url"] = raw["url"]
    for key in ("reason", "status", "response", "type", "bounce_classification"):
        if kind in ("bounce", "dropped", "deferred") and isinstance(raw.get(key), str | int):
            data["reason" if key == "response" else key] = raw[key]
    if kind == "group_unsubscribe" and raw.get("asm_group_id") is not None:
        data["group_id"] = raw["asm_group_id"]
    record = {
        "id": f"sendgrid:{sg_id}",
        "type": etype,
        "occurred_at": datetime.fromtimestamp(stamp, UTC),
        "data": data,
    }
    return MappedEvent(int(message), record)
