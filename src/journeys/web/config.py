"""The web app's configuration, read once from the project settings and the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from journeys.durations import parse_duration
from journeys.runtime.links import LinkKeys
from journeys.secrets import link_keys
from journeys.settings import Settings

ENV_SENDGRID_KEY = "SENDGRID_WEBHOOK_PUBLIC_KEY"
"""Overrides ``sendgrid.webhook_public_key``."""
ENV_TWILIO_TOKEN = "TWILIO_AUTH_TOKEN"
"""The Twilio auth token that signs status callbacks (the SMS channel uses it too)."""

DAY = 86400
DEFAULT_SEGMENT_EVENTS: dict[str, str] = {"Order Completed": "order.placed"}
"""Segment's e-commerce spec names that mean one of our well-known event types."""


@dataclass(frozen=True)
class Topic:
    """A subscription topic of the preference page."""

    name: str
    labels: Mapping[str, str]
    descriptions: Mapping[str, str]

    def label(self, locale: str) -> str:
        """The label in ``locale`` (``ko-KR`` → ``ko`` → the default)."""
        return _localised(self.labels, locale) or self.name

    def description(self, locale: str) -> str:
        """The description in ``locale``, or empty."""
        return _localised(self.descriptions, locale)


def _localised(texts: Mapping[str, str], locale: str) -> str:
    from journeys.templates import locale_chain

    for candidate in locale_chain(locale):
        if candidate in texts:
            return texts[candidate]
    return ""


def _topic(name: str, spec: Mapping[str, Any]) -> Topic:
    labels: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    for key, value in spec.items():
        base, _, locale = str(key).partition("_")
        (labels if base == "label" else descriptions)[locale] = str(value)
    return Topic(name, labels, descriptions)


@dataclass(frozen=True)
class WebConfig:
    """Everything the web app reads from ``journeys.yaml`` (``web:``, ``topics:``,
    ``sendgrid:``, ``base_url``, ``sender``) and the environment (secrets)."""

    keys: LinkKeys
    base_url: str = "http://localhost:8000"
    sender_name: str = "journeys"
    default_locale: str = "en"
    survey_max_age: int = 30 * DAY
    unsubscribe_max_age: int = 365 * DAY
    max_body: int = 4096 * 1024
    rate_requests: int = 600
    rate_per: float = 60.0
    trust_localhost: bool = True
    segment_events: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SEGMENT_EVENTS))
    topics: Mapping[str, Topic] = field(default_factory=dict)
    sendgrid_public_key: str | None = None
    twilio_auth_token: str | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, environ: Mapping[str, str] | None = None
    ) -> WebConfig:
        """The configuration of the project of ``settings``."""
        env = os.environ if environ is None else environ
        web = settings.web
        given: dict[str, Any] = {}
        if web.get("survey_expires"):
            given["survey_max_age"] = parse_duration(web["survey_expires"])
        if web.get("unsubscribe_expires"):
            given["unsubscribe_max_age"] = parse_duration(web["unsubscribe_expires"])
        if web.get("max_body_kb"):
            given["max_body"] = int(web["max_body_kb"]) * 1024
        if web.get("rate_limit"):
            given["rate_requests"] = int(web["rate_limit"]["requests"])
            given["rate_per"] = float(parse_duration(web["rate_limit"]["per"]))
        if web.get("trust_localhost") is not None:
            given["trust_localhost"] = bool(web["trust_localhost"])
        if web.get("segment_events"):
            given["segment_events"] = {**DEFAULT_SEGMENT_EVENTS, **web["segment_events"]}
        return cls(
            keys=link_keys(settings, env),
            base_url=settings.base_url.rstrip("/"),
            sender_name=settings.sender_name,
            default_locale=settings.default_locale,
            topics={name: _topic(name, spec) for name, spec in settings.topics.items()},
            sendgrid_public_key=(
                env.get(ENV_SENDGRID_KEY) or settings.sendgrid.get("webhook_public_key") or None
            ),
            twilio_auth_token=env.get(ENV_TWILIO_TOKEN) or None,
            **given,
        )
