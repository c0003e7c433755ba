"""Messages a step decides to send: recipient, consent and frequency caps, decided at the
step's own time. Rendering happens later (:mod:`.render`), once the enrollment has an id."""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta
from typing import Any

from journeys.plan import Plan
from journeys.runtime.batch import Batch, CustomerState
from journeys.runtime.decide import MessageIntent
from journeys.settings import Settings
from journeys.state import Customer, Enrollment, MessageDraft


def draft(
    batch: Batch,
    state: CustomerState,
    enrollment: Enrollment,
    intent: MessageIntent,
    context: dict[str, Any],
    at: datetime,
    plan: Plan,
) -> MessageDraft:
    """The message ``intent`` of ``enrollment`` at ``at``, with the consent decision made at
    ``at``: what the profile says (no address, no opt-in), suppressions and frequency caps."""
    customer = state.customer
    assert customer is not None
    message = new_draft(batch.rt.settings, customer, enrollment, intent, context, at)
    if intent.kind != "notify" and message.status == "pending":
        blocked = _blocked(batch, state, message)
        if blocked is not None:
            message.status, message.error = "suppressed", blocked
    batch.changes.drafts.append(message)
    return message


def new_draft(
    settings: Settings,
    customer: Customer,
    enrollment: Enrollment,
    intent: MessageIntent,
    context: dict[str, Any],
    at: datetime,
) -> MessageDraft:
    """A draft of ``intent`` for ``customer``, suppressed when the profile itself rules it
    out (no address, no opt-in); suppressions and caps are the batch's to add."""
    attempt = int(enrollment.vars.get("sent", {}).get(intent.step, 1))
    channel, recipient, locale = intent.channel, customer.email, customer.locale
    if intent.kind == "notify":
        team = settings.teams.get(intent.team or "", {})
        channel = team.get("channel", "console")
        recipient = team.get("address") or team.get("url") or intent.team
        locale = settings.default_locale
    message = MessageDraft(
        enrollment=enrollment,
        step=intent.step,
        kind=intent.kind,
        template=intent.template,
        channel=channel,
        subject=intent.subject,
        team=intent.team,
        attempt=attempt,
        at=at,
        customer=customer.view(),
        context=context,
        recipient=recipient,
        locale=locale or settings.default_locale,
    )
    if intent.kind != "notify" and channel == "email":
        if not customer.email:
            message.status, message.error = "suppressed", "no email address"
        elif not customer.email_opt_in:
            message.status, message.error = "suppressed", "no consent (email_opt_in is false)"
    return message


def _blocked(batch: Batch, state: CustomerState, message: MessageDraft) -> str | None:
    """Why the customer must not get ``message`` at its time (suppressions, caps), or None."""
    if message.channel != "email":
        return None
    if "email" in state.suppressed:
        return "unsubscribed or bounced"
    settings = batch.rt.settings
    cap, per = settings.frequency_cap_messages, settings.frequency_cap_seconds
    if message.kind != "send" or not cap or not per:
        return None
    # The sends of the window (at - per, at]: exact whatever order batches run in, since a
    # customer's steps run in time order.
    since = message.at - timedelta(seconds=per)
    recent = bisect.bisect_right(state.sends, message.at) - bisect.bisect_right(state.sends, since)
    if recent >= cap:
        return f"frequency cap: {cap} per {per}s"
    bisect.insort(state.sends, message.at)
    return None
