"""Rendering: a message a step wants sent becomes an outbox row (subject, HTML, text).

Templates and expressions run in the sandbox; a failure for one customer fails that one
message with its reason and never the batch. Consent that the customer row itself tells
(no address, ``email_opt_in`` false) is decided here; suppressions and frequency caps, which
need the store, are applied by the engine once per batch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from journeys.clock import Clock
from journeys.expressions import ExpressionError, compile_template
from journeys.plan import Plan
from journeys.runtime.decide import MessageIntent
from journeys.runtime.links import survey_url, unsubscribe_url
from journeys.settings import Settings
from journeys.templates import TemplateError, TemplateStore


class Renderer:
    """Turns message intents into outbox rows for one project's settings and templates."""

    def __init__(self, settings: Settings, templates: TemplateStore, clock: Clock) -> None:
        self.settings = settings
        self.templates = templates
        self.clock = clock

    def outbox_row(
        self,
        enr: dict[str, Any],
        intent: MessageIntent,
        person: dict[str, Any],
        ctx: dict[str, Any],
        at: datetime,
        plan: Plan,
    ) -> dict[str, Any]:
        """The outbox row of ``intent`` for enrollment ``enr`` at logical time ``at``."""
        settings = self.settings
        locale = person.get("locale") or settings.default_locale
        channel, recipient = intent.channel, person.get("email")
        status, error = "pending", None
        if intent.kind == "notify":
            team = settings.teams.get(intent.team or "", {})
            channel = team.get("channel", "console")
            recipient = team.get("address") or team.get("url") or intent.team
            locale = settings.default_locale
        elif channel == "email":
            if not person.get("email"):
                status, error = "suppressed", "no email address"
            elif not person.get("email_opt_in", True):
                status, error = "suppressed", "no consent (email_opt_in is false)"
        attempt = int((enr.get("vars") or {}).get("sent", {}).get(intent.step, 1))
        row: dict[str, Any] = {
            "enrollment_id": enr["id"],
            "step": intent.step,
            "attempt": attempt,
            "journey": plan.journey,
            "customer_id": person["id"],
            "kind": intent.kind,
            "template": intent.template,
            "channel": channel,
            "locale": "",
            "recipient": recipient,
            "subject": None,
            "html": None,
            "text": None,
            "status": status,
            "due_at": at,
            "created_at": self.clock.now(),
            "error": error,
        }
        if status != "pending":
            return row
        mctx = dict(ctx)
        signed_at = self.clock.now()
        mctx["unsubscribe_url"] = unsubscribe_url(settings, person["id"], at=signed_at)
        if intent.kind == "survey":
            mctx["survey_url"] = survey_url(
                settings, enr["id"], plan.journey, intent.step, at=signed_at
            )
        try:
            template = self.templates.for_locale(intent.template, locale)
            message = template.render(mctx)
            subject = message.subject
            if intent.subject:
                subject = " ".join(compile_template(intent.subject).render(mctx).split())
            row.update(
                locale=template.source.locale, subject=subject, html=message.html, text=message.text
            )
        except (TemplateError, ExpressionError) as exc:
            row.update(status="failed", error=f"template {intent.template}: {exc}"[:1000])
        except Exception as exc:  # a marketer's subject override may raise anything
            row.update(
                status="failed",
                error=f"template {intent.template}: {type(exc).__name__}: {exc}"[:1000],
            )
        return row
