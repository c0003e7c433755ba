"""``journeys send-test``: one real message from a template, to one address, marked as a test.

The template is rendered for a sample customer (``Test``, the given address and locale) with
the project's sender and composition (layout, inlined CSS, advertising prefix), ``[TEST]`` in
front of the subject and ``X-Journeys-Test: true``, and handed straight to the configured
channel: it does not enter the outbox, the reports or any journey.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from journeys.channels.base import (
    Channel,
    ChannelError,
    ChannelRegistry,
    OutboundMessage,
    SendResult,
)
from journeys.clock import Clock
from journeys.delivery.email import Composer
from journeys.delivery.recipients import NoAddress, recipient
from journeys.runtime.links import survey_url
from journeys.settings import Settings
from journeys.templates import TemplateError, TemplateStore

TEST_CUSTOMER = "test-customer"


@dataclass(frozen=True)
class SendTestResult:
    """What was sent and what the channel said."""

    message: OutboundMessage
    outcome: SendResult | ChannelError
    provider: str


def sample_context(
    customer: Mapping[str, Any], settings: Settings, now: datetime
) -> dict[str, Any]:
    """The context a test message renders with: a sample customer and an empty event."""
    return {
        "customer": dict(customer),
        "event": {"type": "test", "data": {}},
        "answers": {},
        "now": now.isoformat(),
        "journey": {"id": "send-test", "name": "send-test"},
        "survey_url": survey_url(settings, 0, "send-test", "test", at=now),
    }


def send_test(
    settings: Settings,
    templates: TemplateStore,
    channels: ChannelRegistry,
    clock: Clock,
    *,
    template: str,
    to: str,
    channel: str = "email",
    locale: str | None = None,
) -> SendTestResult:
    """Render ``template`` for a sample customer at ``to`` and send it through ``channel``.
    Raises :class:`~journeys.templates.TemplateError` (bad template),
    :class:`~journeys.delivery.recipients.NoAddress` (bad address) or
    :class:`~journeys.channels.base.UnknownChannelError`."""
    locale = locale or settings.default_locale
    customer = _test_customer(to, channel, locale)
    address = recipient(customer, channel, settings)
    target = channels.get_channel(channel)
    compiled = templates.for_locale(template, locale)
    kind = templates.kind(template) or "marketing"
    now = clock.now()
    composed = Composer(settings).compose(
        compiled,
        sample_context(customer, settings, now),
        customer_id=TEST_CUSTOMER,
        at=now,
        channel=channel,
        kind=kind,
        locale=locale,
        test=True,
    )
    message = OutboundMessage(
        outbox_id=0,
        customer_id=TEST_CUSTOMER,
        journey="send-test",
        step="test",
        template=template,
        channel=channel,
        recipient=address,
        subject=composed.subject,
        html=composed.html or "",
        text=composed.text,
        locale=compiled.source.locale,
        due_at=now,
        headers=composed.headers,
        message_kind=kind,
    )
    outcome = _send_one(target, message)
    provider = str(getattr(target, "provider", type(target).__name__))
    return SendTestResult(message, outcome, provider)


def _test_customer(to: str, channel: str, locale: str) -> dict[str, Any]:
    """The sample customer ``Test Customer``, reachable at ``to`` on ``channel``."""
    return {
        "id": TEST_CUSTOMER,
        "first_name": "Test",
        "last_name": "Customer",
        "locale": locale,
        "email": to if channel == "email" else None,
        "phone": to if channel == "sms" else None,
        "attributes": {},
    }


def _send_one(target: Channel, message: OutboundMessage) -> SendResult | ChannelError:
    """What the channel says about ``message``; an exception it raises becomes a retryable
    error."""
    try:
        outcomes = list(target.send_batch([message]))
        return outcomes[0]
    except Exception as exc:  # report, never a traceback
        return ChannelError(f"{type(exc).__name__}: {exc}", retryable=True)


__all__ = ["NoAddress", "SendTestResult", "TemplateError", "sample_context", "send_test"]
