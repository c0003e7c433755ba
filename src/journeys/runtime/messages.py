"""Messages a step decides to send: recipient, consent and frequency caps, decided at the
step's own time. Rendering happens later (:mod:`.render`), once the enrollment has an id."""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta
from typing import Any

from journeys.delivery.consent import MARKETING, TRANSACTIONAL, may_send
from journeys.delivery.recipients import NoAddress, recipient
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
    message = new_draft(batch.rt.settings, customer, enrollment, intent, context, at, plan)
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
    plan: Plan | None = None,
) -> MessageDraft:
    """A draft of ``intent`` for ``customer``, suppressed when the profile itself rules it
    out (no valid address, no consent: :mod:`journeys.delivery.consent`); suppressions and
    caps are the batch's to add. Team notifications are transactional."""
    attempt = int(enrollment.vars.get("sent", {}).get(intent.step, 1))
    kind = TRANSACTIONAL if intent.kind == "notify" else _kind(plan, intent.step)
    message = MessageDraft(
        enrollment=enrollment,
        step=intent.step,
        kind=intent.kind,
        template=intent.template,
        channel=intent.channel,
        subject=intent.subject,
        team=intent.team,
        attempt=attempt,
        at=at,
        customer=customer.view(),
        context=context,
        recipient=None,
        locale=customer.locale or settings.default_locale,
        message_kind=kind,
        sender=plan.sender if plan else None,
    )
    if intent.kind == "notify":
        team = settings.teams.get(intent.team or "", {})
        message.channel = team.get("channel", "console")
        message.recipient = team.get("address") or team.get("url") or intent.team
        message.locale = settings.default_locale
        return message
    try:
        message.recipient = recipient(message.customer, message.channel, settings)
    except NoAddress as exc:
        message.status, message.error = "suppressed", str(exc)
        return message
    refused = may_send(message.customer, message.channel, kind, settings, None)
    if refused is not None:
        message.status, message.error = "suppressed", refused
    return message


def _kind(plan: Plan | None, step_id: str) -> str:
    if plan is not None and plan.has_step(step_id):
        return str(getattr(plan.step(step_id), "message_kind", MARKETING))
    return MARKETING


def _blocked(batch: Batch, state: CustomerState, message: MessageDraft) -> str | None:
    """Why the customer must not get ``message`` at its time (a suppression of its channel,
    the frequency cap on marketing sends), or None."""
    settings = batch.rt.settings
    reason = state.suppressed.get(message.channel)
    if reason is not None:
        refused = may_send(
            message.customer, message.channel, message.message_kind, settings, reason
        )
        if refused is not None:
            return refused
    cap, per = settings.frequency_cap_messages, settings.frequency_cap_seconds
    if message.kind != "send" or message.message_kind != MARKETING or not cap or not per:
        return None
    # The sends of the window (at - per, at]: exact whatever order batches run in, since a
    # customer's steps run in time order.
    since = message.at - timedelta(seconds=per)
    recent = bisect.bisect_right(state.sends, message.at) - bisect.bisect_right(state.sends, since)
    if recent >= cap:
        return f"frequency cap: {cap} per {per}s"
    bisect.insort(state.sends, message.at)
    return None
