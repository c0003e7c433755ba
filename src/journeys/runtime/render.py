"""Rendering: a message draft becomes an outbox row (subject, HTML, text).

Templates and expressions run in the sandbox; a failure for one customer fails that one
message with its reason and never the batch. Whether the message may go at all was decided
when its step ran (:mod:`.messages`); a suppressed draft is stored without content.
"""

from __future__ import annotations

from typing import Any

from journeys.clock import Clock
from journeys.expressions import ExpressionError, compile_template
from journeys.runtime.links import survey_url, unsubscribe_url
from journeys.settings import Settings
from journeys.state import MessageDraft
from journeys.templates import TemplateError, TemplateStore


class Renderer:
    """Turns message drafts into outbox rows for one project's settings and templates."""

    def __init__(self, settings: Settings, templates: TemplateStore, clock: Clock) -> None:
        self.settings = settings
        self.templates = templates
        self.clock = clock

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
            "template": message.template,
            "channel": message.channel,
            "locale": "",
            "recipient": message.recipient,
            "subject": None,
            "html": None,
            "text": None,
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
        except Exception as exc:  # a marketer's subject override may raise anything
            row.update(
                status="failed",
                error=f"template {message.template}: {type(exc).__name__}: {exc}"[:1000],
            )
        return row

    def _render(self, message: MessageDraft) -> dict[str, Any]:
        settings = self.settings
        enrollment = message.enrollment
        ctx = dict(message.context)
        ctx["unsubscribe_url"] = unsubscribe_url(
            settings.base_url, settings.survey_secret, enrollment.customer_id
        )
        if message.kind == "survey":
            ctx["survey_url"] = survey_url(
                settings.base_url,
                settings.survey_secret,
                enrollment.id or 0,
                enrollment.journey,
                message.step,
                enrollment.customer_id,
            )
        template = self.templates.for_locale(message.template, message.locale or "")
        rendered = template.render(ctx)
        subject = rendered.subject
        if message.subject:
            subject = " ".join(compile_template(message.subject).render(ctx).split())
        return {
            "locale": template.source.locale,
            "subject": subject,
            "html": rendered.html,
            "text": rendered.text,
        }
