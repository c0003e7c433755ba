"""Rendering: a message draft becomes an outbox row (subject, HTML, text).

Templates and expressions run in the sandbox; a failure for one customer fails that one
message with its reason and never the batch. Whether the message may go at all was decided
when its step ran (:mod:`.messages`); a suppressed draft is stored without content. The
message itself (layout, inlined CSS, text part, unsubscribe headers, advertising prefix) is
made by :class:`journeys.delivery.email.Composer`.
"""

from __future__ import annotations

from typing import Any

from journeys.clock import Clock
from journeys.delivery.email import Composer
from journeys.expressions import ExpressionError
from journeys.runtime.links import survey_url
from journeys.settings import Settings
from journeys.state import MessageDraft
from journeys.templates import TemplateError, TemplateStore


class Renderer:
    """Turns message drafts into outbox rows for one project's settings and templates."""

    def __init__(self, settings: Settings, templates: TemplateStore, clock: Clock) -> None:
        self.settings = settings
        self.templates = templates
        self.clock = clock
        self.composer = Composer(settings)

    def outbox_row(self, message: MessageDraft) -> dict[str, Any]:
        """The outbox row of ``message`` (its enrollment must have an id)."""
        enrollment = message.enrollment
        row: dict[str, Any] = {
            "enrollment_id": enrollment.id,
            "step": message.step,
            "attempt": message.attempt,
            "journey": enrollment.journey,
            "customer_id": enrollment.customer_id,
            "kind": message.kind,
            "message_kind": message.message_kind,
            "template": message.template,
            "channel": message.channel,
            "locale": "",
            "recipient": message.recipient,
            "subject": None,
            "html": None,
            "text": None,
            "headers": None,
            "topic": None,
            "status": message.status,
            "due_at": message.at,
            "created_at": self.clock.now(),
            "error": message.error,
        }
        if message.status != "pending":
            return row
        try:
            row.update(self._render(message))
        except (TemplateError, ExpressionError) as exc:
            row.update(status="failed", error=f"template {message.template}: {exc}"[:1000])
        except Exception as exc:  # a marketer's template may raise anything
            row.update(
                status="failed",
                error=f"template {message.template}: {type(exc).__name__}: {exc}"[:1000],
            )
        return row

    def _render(self, message: MessageDraft) -> dict[str, Any]:
        enrollment = message.enrollment
        ctx = dict(message.context)
        now = self.clock.now()
        if message.kind == "survey":
            ctx["survey_url"] = survey_url(
                self.settings, enrollment.id or 0, enrollment.journey, message.step, at=now
            )
        template = self.templates.for_locale(message.template, message.locale or "")
        composed = self.composer.compose(
            template,
            ctx,
            customer_id=enrollment.customer_id,
            channel=message.channel,
            kind=message.message_kind,
            locale=message.customer.get("locale") or self.settings.default_locale,
            sender=message.sender,
            subject=message.subject,
            at=now,
        )
        return {
            "topic": composed.topic,
            "locale": template.source.locale,
            "subject": composed.subject,
            "html": composed.html,
            "text": composed.text,
            "headers": composed.headers or None,
        }
