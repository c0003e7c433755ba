"""Composition: a compiled template and a customer's context become the message a channel sends.

:class:`Composer` adds what every message needs besides the marketer's words:

- the context the layout uses: ``sender`` (name, email, address, reply_to: the journey's own
  sender over the project's), ``unsubscribe_url``, ``message_kind`` and ``locale``;
- for **email**: the CSS of ``<style>`` blocks inlined into ``style=""`` attributes
  (``css-inline``) so Gmail and Outlook show the layout as designed, the text part tidied,
  and the headers: ``From``, ``Reply-To`` and, for marketing, ``List-Unsubscribe`` (the
  signed https link, plus ``mailto:`` when ``list_unsubscribe_mailto`` is set) with
  ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058);
- for **marketing** in a locale with an advertising prefix (``ko`` → ``(광고) ``, Korea's
  rule for advertising messages): the prefix in front of the subject, or of an SMS's text;
- for a test send: ``[TEST]`` in front of the subject and ``X-Journeys-Test: true``.

The renderer calls :meth:`Composer.compose` instead of ``template.render``; the dispatcher
calls :func:`email_headers` for outbox rows rendered without headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import formataddr
from typing import Any

import css_inline

from journeys.delivery.consent import MARKETING, TRANSACTIONAL
from journeys.delivery.layout import tidy_text
from journeys.expressions import ExpressionError, compile_template
from journeys.runtime.links import unsubscribe_url
from journeys.settings import Settings
from journeys.templates import CompiledTemplate, TemplateError, locale_chain

TEST_PREFIX = "[TEST] "
TEST_HEADER = "X-Journeys-Test"
ONE_CLICK = "List-Unsubscribe=One-Click"

_INLINER = css_inline.CSSInliner(
    keep_style_tags=False, keep_at_rules=True, load_remote_stylesheets=False
)


@dataclass(frozen=True)
class ComposedMessage:
    """What goes into the outbox row: subject, HTML (email only), text, headers and the
    subscription topic the message belongs to."""

    subject: str
    html: str | None
    text: str
    headers: dict[str, str] = field(default_factory=dict)
    topic: str | None = None


def sender_of(
    settings: Settings, journey_sender: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The sender a message shows: the journey's ``sender`` fields over the project's."""
    found = {
        "email": settings.sender_email,
        "name": settings.sender_name,
        "reply_to": settings.sender_reply_to or "",
        "address": settings.sender_address or "",
    }
    for key, value in (journey_sender or {}).items():
        if value:
            found[key] = str(value)
    return found


def unsubscribe_link(
    settings: Settings,
    customer_id: str,
    channel: str = "email",
    *,
    at: datetime,
    topic: str | None = None,
) -> str:
    """The customer's signed one-click unsubscribe link (:mod:`journeys.runtime.links`),
    signed at ``at`` (the links of one day are the same); with a ``topic`` (a topic of the
    project), one click leaves that topic only."""
    return unsubscribe_url(settings, customer_id, channel, at=at, topic=topic)


def email_headers(
    settings: Settings,
    customer_id: str,
    kind: str,
    *,
    at: datetime,
    sender: Mapping[str, str] | None = None,
    test: bool = False,
    topic: str | None = None,
    unsubscribe: str | None = None,
) -> dict[str, str]:
    """``From``, ``Reply-To`` and, for marketing, the RFC 8058 unsubscribe headers (its link
    ``unsubscribe``, or one signed at ``at`` for ``topic`` when the message belongs to one)."""
    who = sender if sender is not None else sender_of(settings)
    headers = {"From": formataddr((who.get("name") or "", who.get("email") or ""))}
    if who.get("reply_to"):
        headers["Reply-To"] = who["reply_to"]
    if kind != TRANSACTIONAL:
        link = unsubscribe or unsubscribe_link(settings, customer_id, at=at, topic=topic)
        targets = [f"<{link}>"]
        if settings.list_unsubscribe_mailto:
            targets.append(f"<mailto:{settings.list_unsubscribe_mailto}?subject=unsubscribe>")
        headers["List-Unsubscribe"] = ", ".join(targets)
        headers["List-Unsubscribe-Post"] = ONE_CLICK
    if test:
        headers[TEST_HEADER] = "true"
    return headers


def _subject(override: str, ctx: Mapping[str, Any], template: CompiledTemplate) -> str:
    """A step's subject override (itself a template) rendered for one customer."""
    try:
        return " ".join(compile_template(override).render(ctx).split())
    except ExpressionError as exc:
        raise TemplateError(f"subject: {exc}", template.source.path) from None
    except Exception as exc:  # a marketer's subject may raise anything
        raise TemplateError(f"subject: {type(exc).__name__}: {exc}", template.source.path) from None


def _known_topic(settings: Settings, topic: str | None) -> str | None:
    """``topic`` when the project defines it (``journeys validate`` reports the others; an
    unknown one must not make a link the preference page cannot honour)."""
    return topic if topic in settings.topics else None


def ad_prefix(settings: Settings, locale: str | None) -> str:
    """The advertising prefix for ``locale`` (``ko-KR`` uses ``ko``'s), or ``""``."""
    for candidate in locale_chain(locale)[:-1]:
        if candidate in settings.ad_subject_prefix:
            return settings.ad_subject_prefix[candidate]
    return ""


def _prefixed(prefix: str, text: str) -> str:
    return text if not prefix or text.startswith(prefix.strip()) else prefix + text


def inline_css(html: str) -> str:
    """``html`` with the rules of its ``<style>`` blocks moved into ``style`` attributes
    (media queries stay in a ``<style>``); HTML without a style block is returned as is."""
    if "<style" not in html:
        return html
    return _INLINER.inline(html)


class Composer:
    """Composes messages for one project's settings (cheap to build; keep one per renderer)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def context(
        self,
        ctx: Mapping[str, Any],
        *,
        customer_id: str,
        channel: str,
        kind: str,
        locale: str,
        at: datetime,
        sender: Mapping[str, str] | None = None,
        topic: str | None = None,
    ) -> dict[str, Any]:
        """``ctx`` with what layouts and filters use: ``sender``, ``unsubscribe_url`` (for the
        message's ``topic``), ``message_kind`` and ``locale`` (values already in ``ctx`` win)."""
        full = dict(ctx)
        full.setdefault("sender", sender_of(self.settings, sender))
        full.setdefault("message_kind", kind)
        full.setdefault("locale", locale)
        if channel in ("email", "sms", "push"):
            link = unsubscribe_link(self.settings, customer_id, at=at, topic=topic)
            full.setdefault("unsubscribe_url", link)
        return full

    def compose(
        self,
        template: CompiledTemplate,
        ctx: Mapping[str, Any],
        *,
        customer_id: str,
        channel: str,
        at: datetime,
        kind: str = MARKETING,
        locale: str | None = None,
        sender: Mapping[str, str] | None = None,
        subject: str | None = None,
        test: bool = False,
    ) -> ComposedMessage:
        """Render ``template`` for one customer and make it a message for ``channel``.

        ``locale`` is the customer's (numbers and dates follow it; default: the project's);
        ``subject`` a step's subject override (itself a template). Raises
        :class:`~journeys.templates.TemplateError` when the template fails for this customer.
        """
        locale = locale or self.settings.default_locale
        who = sender_of(self.settings, sender)
        topic = _known_topic(self.settings, template.source.topic)
        full = self.context(
            ctx,
            customer_id=customer_id,
            channel=channel,
            kind=kind,
            locale=locale,
            at=at,
            sender=who,
            topic=topic,
        )
        rendered = template.render(full)
        title = _subject(subject, full, template) if subject else rendered.subject
        text = tidy_text(rendered.text)
        prefix = ad_prefix(self.settings, locale) if kind == MARKETING else ""
        title = _prefixed(prefix, title)
        if test:
            title = TEST_PREFIX + title
        if channel != "email":
            body = _prefixed(prefix, text) if channel == "sms" else text
            return ComposedMessage(subject=title, html=None, text=body, topic=topic)
        headers = email_headers(
            self.settings,
            customer_id,
            kind,
            at=at,
            sender=who,
            test=test,
            topic=topic,
            unsubscribe=full.get("unsubscribe_url"),
        )
        return ComposedMessage(
            subject=title, html=inline_css(rendered.html), text=text, headers=headers, topic=topic
        )
