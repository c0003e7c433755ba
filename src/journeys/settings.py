"""Project settings: ``journeys.yaml`` at the project root (beside ``journey_specs/``).

Example::

    timezone: UTC             # default for customers without one and for cron schedules
    default_locale: en
    feb29: feb28              # feb28 | mar1: when Feb 29 birthdays fire in common years
    sender: {email: hello@example.com, name: Example Shop}
    teams:                    # targets of `notify: {to: …}`
      support: {channel: email, address: support@example.com}
      sales: {channel: console}
    frequency_cap: {messages: 3, per: 1d}   # per customer, all journeys, marketing email
    channels:                 # the provider behind each channel (docs/delivery.md)
      email: {provider: sendgrid}           # key: $SENDGRID_API_KEY
    consent: {missing: deny}  # no marketing without email_opt_in / sms_opt_in
    base_url: http://localhost:8000  # where `journeys web` is reachable; links point here
    web: {survey_expires: 30d}          # the web app (journeys.spec.web_models, docs/web.md)
    topics: {newsletter: {label: Newsletter}}   # subscription topics
    sendgrid: {webhook_public_key: MFkw…}       # the signed Event Webhook's key

The secret that signs links is not a setting: see :mod:`journeys.secrets`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Feb29 = Literal["feb28", "mar1"]
"""When Feb 29 birthdays fire in common years."""

DEFAULT_AD_PREFIX: dict[str, str] = {"ko": "(광고) "}
"""Subject prefix of marketing messages by locale (Korea's advertising rule)."""

DEFAULT_TEAMS: dict[str, dict[str, str]] = {
    "support": {"channel": "console"},
    "sales": {"channel": "console"},
    "marketing": {"channel": "console"},
}


@dataclass(frozen=True)
class Settings:
    """Project-wide settings; every field has a working default."""

    timezone: str = "UTC"
    default_locale: str = "en"
    feb29: Feb29 = "feb28"
    sender_email: str = "hello@example.com"
    sender_name: str = "journeys"
    teams: dict[str, dict[str, str]] = field(default_factory=lambda: dict(DEFAULT_TEAMS))
    frequency_cap_messages: int | None = None
    frequency_cap_seconds: int | None = None
    base_url: str = "http://localhost:8000"
    path: Path | None = None
    events: dict[str, dict[str, str] | None] = field(default_factory=dict)
    """The project's own event types (``events:``): type → declared data fields, or None."""
    sender_reply_to: str | None = None
    sender_address: str | None = None
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``channels:`` as written (validated); :mod:`journeys.delivery.config` reads it."""
    consent_missing: Literal["deny", "allow"] = "deny"
    list_unsubscribe_mailto: str | None = None
    ad_subject_prefix: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_AD_PREFIX))
    web: dict[str, Any] = field(default_factory=dict)
    """``web:`` as written (validated); :mod:`journeys.web.config` reads it."""
    topics: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``topics:`` as written (validated): subscription topics of the preference page."""
    sendgrid: dict[str, Any] = field(default_factory=dict)
    """``sendgrid:`` as written (validated)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | None = None) -> Settings:
        """Build from the parsed YAML mapping (unknown keys are rejected by the validator)."""
        from journeys.durations import parse_duration

        sender = data.get("sender") or {}
        cap = data.get("frequency_cap") or {}
        given = {
            "timezone": data.get("timezone"),
            "default_locale": data.get("default_locale"),
            "feb29": data.get("feb29"),
            "sender_email": sender.get("email"),
            "sender_name": sender.get("name"),
            "base_url": data.get("base_url"),
            "sender_reply_to": sender.get("reply_to"),
            "sender_address": sender.get("address"),
            "consent_missing": (data.get("consent") or {}).get("missing"),
            "list_unsubscribe_mailto": data.get("list_unsubscribe_mailto"),
        }
        prefix = (data.get("advertising") or {}).get("subject_prefix")
        # The defaults live in the fields above only; a key left out keeps its default.
        return cls(
            **{name: str(value) for name, value in given.items() if value is not None},
            teams={**DEFAULT_TEAMS, **(data.get("teams") or {})},
            frequency_cap_messages=cap.get("messages"),
            frequency_cap_seconds=parse_duration(cap["per"]) if cap.get("per") else None,
            path=path,
            events={
                str(name): dict(decl["data"])
                if isinstance(decl, dict) and decl.get("data") is not None
                else None
                for name, decl in (data.get("events") or {}).items()
            },
            channels={name: dict(spec) for name, spec in (data.get("channels") or {}).items()},
            ad_subject_prefix=dict(DEFAULT_AD_PREFIX if prefix is None else prefix),
            web=dict(data.get("web") or {}),
            topics={name: dict(spec) for name, spec in (data.get("topics") or {}).items()},
            sendgrid=dict(data.get("sendgrid") or {}),
        )


def find_settings_file(start: Path) -> Path | None:
    """``journeys.yaml`` in ``start`` or its parents (a specs dir's project root)."""
    start = start.resolve()
    for folder in (start, *start.parents) if start.is_dir() else start.parents:
        candidate = folder / "journeys.yaml"
        if candidate.is_file():
            return candidate
    return None
