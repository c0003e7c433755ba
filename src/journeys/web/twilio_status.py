"""Twilio's SMS status callback as our events (pure; the signature is checked by the route
with the ``twilio`` library's ``RequestValidator``).

The SMS channel asks Twilio to call ``{base_url}/webhooks/twilio?message_id=<outbox id>``; a
callback without that parameter is mapped through ``MessageSid`` (the outbox's provider id).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

STATUS_TYPES: dict[str, str] = {
    "sent": "sms.sent",
    "delivered": "sms.delivered",
    "undelivered": "sms.undelivered",
    "failed": "sms.failed",
    "read": "sms.read",
}
"""The statuses journeys records (queued, accepted, sending … are steps on the way)."""

SUPPRESSING_ERRORS: dict[str, str] = {
    "21610": "unsubscribed",  # the recipient replied STOP
    "21211": "bounced",  # not a valid phone number
    "30005": "bounced",  # unknown destination handset
    "30006": "bounced",  # landline or unreachable carrier
}
"""Twilio error codes that mean the number must not be texted again, with the reason."""


def map_status(params: Mapping[str, str], message_id: int, now: datetime) -> dict[str, Any] | str:
    """The event record (without ``customer_id``) of one status callback, or why it is
    skipped."""
    sid, status = params.get("MessageSid", ""), params.get("MessageStatus", "")
    etype = STATUS_TYPES.get(status)
    if etype is None:
        return f"status {status!r} is not one journeys records"
    if not sid:
        return "no MessageSid"
    data: dict[str, Any] = {"message_id": str(message_id), "provider": "twilio"}
    if params.get("ErrorCode"):
        data["reason"] = f"Twilio error {params['ErrorCode']}"
        data["error_code"] = params["ErrorCode"]
    return {"id": f"twilio:{sid}:{status}", "type": etype, "occurred_at": now, "data": data}


def suppression_reason(params: Mapping[str, str]) -> str | None:
    """Why the callback means the number is suppressed, or None."""
    return SUPPRESSING_ERRORS.get(params.get("ErrorCode", ""))
