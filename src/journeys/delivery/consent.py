"""May this customer get this kind of message on this channel? One pure function.

The rules (docs/delivery.md, "Consent"):

- **marketing** needs the channel's opt-in (``email_opt_in``, ``sms_opt_in``, ``push_opt_in``)
  to be true. A profile that says nothing counts as *no* unless ``consent: {missing: allow}``;
  a suppressed address (unsubscribed, bounced, complaint, erased) gets nothing marketing.
- **transactional** ignores opt-in and unsubscribes, but not a hard bounce or an erasure:
  mailing an address that bounced hurts every other message's deliverability.
- Channels that address no customer (``webhook``, ``console``) need no consent.

The renderer asks before it renders; the dispatcher asks again at send time, so an
unsubscribe committed while a message waited in the outbox stops it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from journeys.settings import Settings

MARKETING = "marketing"
TRANSACTIONAL = "transactional"
MESSAGE_KINDS = (MARKETING, TRANSACTIONAL)

OPT_IN_FIELDS: dict[str, str] = {
    "email": "email_opt_in",
    "sms": "sms_opt_in",
    "push": "push_opt_in",
}
"""The profile field that holds each customer channel's marketing consent."""

BLOCKS_TRANSACTIONAL = frozenset({"bounced", "erased"})
"""Suppression reasons that stop even transactional messages."""

_TRUE = frozenset({"true", "1", "yes", "y", "t", "on"})
_FALSE = frozenset({"false", "0", "no", "n", "f", "off"})


def opt_in(customer: Mapping[str, Any], channel: str) -> bool | None:
    """The customer's consent to marketing on ``channel``: True, False, or None when the
    profile does not say (a column, else an attribute; ``"yes"``/``"0"`` text is read too)."""
    field = OPT_IN_FIELDS.get(channel)
    if field is None:
        return None
    value = customer.get(field)
    if value is None:
        attributes = customer.get("attributes")
        if isinstance(attributes, Mapping):
            value = attributes.get(field)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return None


def may_send(
    customer: Mapping[str, Any],
    channel: str,
    kind: str,
    settings: Settings,
    suppressed: str | bool | None,
) -> str | None:
    """None when the message may go; otherwise why not (stored as the outbox row's reason).

    ``suppressed`` is the reason the customer's address on ``channel`` is suppressed
    (``unsubscribed``, ``bounced``, ``complaint``, ``erased``), True when suppressed for a
    reason not known, or None/False when it is not.
    """
    if channel not in OPT_IN_FIELDS:
        return None
    reason = ("unsubscribed" if suppressed is True else str(suppressed)) if suppressed else None
    if kind == TRANSACTIONAL:
        if reason in BLOCKS_TRANSACTIONAL:
            return f"suppressed: {channel} address {reason}"
        return None
    if reason:
        return f"suppressed: {channel} address {reason}"
    field = OPT_IN_FIELDS[channel]
    given = opt_in(customer, channel)
    if given is False:
        return f"no consent ({field} is false)"
    if given is None and settings.consent_missing != "allow":
        return f"no consent ({field} not given; consent.missing is deny)"
    return None
