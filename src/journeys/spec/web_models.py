"""The web app's keys of ``journeys.yaml``: ``web:``, ``topics:`` and ``sendgrid:``.

```yaml
web:
  survey_expires: 30d          # survey links stop working after this
  unsubscribe_expires: 365d    # unsubscribe links (at least 60d, as mailbox providers expect)
  max_body_kb: 4096            # larger request bodies get 413
  rate_limit: {requests: 600, per: 1m}   # per API key; more gets 429 with Retry-After
  trust_localhost: true        # staff pages open without a login from 127.0.0.1 / ::1
  segment_events: {"Order Completed": order.placed}   # Segment event name -> our type
topics:                        # subscription topics: the unsubscribe page lets people choose
  newsletter: {label: Newsletter, label_ko: 뉴스레터, description: Monthly news}
  offers: {label: Offers and coupons}
sendgrid:
  webhook_public_key: MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE…   # or $SENDGRID_WEBHOOK_PUBLIC_KEY
```
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from journeys.durations import parse_duration
from journeys.spec.diagnostics import Diagnostic, quote
from journeys.spec.types import SLUG, Duration, EventType
from journeys.spec.yamlpos import YamlDoc

RETIRED_KEYS = frozenset({"survey_secret"})
"""Keys journeys.yaml once had; each gets a diagnostic saying what replaced it."""
MIN_UNSUBSCRIBE_DAYS = 60
"""Unsubscribe links must work at least this long (Gmail and Yahoo sender rules)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class RateLimitSpec(_Model):
    """``rate_limit: {requests: 600, per: 1m}``: per API key, a burst of ``requests`` refilled
    evenly over ``per``."""

    requests: Annotated[int, Field(ge=1)]
    per: Duration


class WebSpec(_Model):
    """``web:``: the web app (``journeys web``, and ``journeys run`` unless ``--no-web``)."""

    survey_expires: Duration | None = None
    unsubscribe_expires: Duration | None = None
    max_body_kb: Annotated[int, Field(ge=1)] | None = None
    rate_limit: RateLimitSpec | None = None
    trust_localhost: bool | None = None
    segment_events: dict[str, EventType] | None = None


class TopicSpec(_Model):
    """A subscription topic: the label people see (``label_<locale>`` per language) and an
    optional description (``description_<locale>`` likewise)."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    label: str
    description: str | None = None


class SendgridSpec(_Model):
    """``sendgrid:``: the public key of the signed Event Webhook (base64, as SendGrid shows it
    under Mail Settings; ``$SENDGRID_WEBHOOK_PUBLIC_KEY`` wins)."""

    webhook_public_key: str | None = None


def check_web_settings(doc: YamlDoc, data: dict[str, Any]) -> list[Diagnostic]:
    """What the models cannot say: no secret in the file, unsubscribe links that live long
    enough, topic keys that are labels and descriptions only."""
    problems: list[Diagnostic] = []
    if "survey_secret" in data:
        problems.append(
            doc.at(
                ("survey_secret",),
                "survey_secret is no longer read: secrets do not belong in journeys.yaml. "
                "Remove it and set $JOURNEYS_SECRET_KEY, or let journeys generate "
                ".journeys/secret (docs/web.md)",
                "secret-in-settings",
                key=True,
            )
        )
    web = data.get("web")
    if isinstance(web, dict) and isinstance(web.get("unsubscribe_expires"), str):
        try:
            seconds = parse_duration(web["unsubscribe_expires"])
        except ValueError:
            seconds = None  # reported by the model
        if seconds is not None and seconds < MIN_UNSUBSCRIBE_DAYS * 86400:
            problems.append(
                doc.at(
                    ("web", "unsubscribe_expires"),
                    f"unsubscribe links must work for at least {MIN_UNSUBSCRIBE_DAYS}d, as "
                    f"mailbox providers expect; use {MIN_UNSUBSCRIBE_DAYS}d or more",
                    "bad-value",
                )
            )
    topics = data.get("topics")
    if isinstance(topics, dict):
        for name, topic in topics.items():
            if not SLUG.match(str(name)):
                msg = f"topic name {quote(name)} must be a lowercase slug such as newsletter"
                problems.append(doc.at(("topics", name), msg, "bad-id", key=True))
            if not isinstance(topic, dict):
                continue
            for key, value in topic.items():
                base, sep, locale = str(key).partition("_")
                if key in ("label", "description"):
                    continue
                if base not in ("label", "description") or not sep or not locale:
                    msg = (
                        f"unknown key {quote(key)} in topic {quote(name)} (valid: label, "
                        "description, "
                        "label_<locale>, description_<locale>)"
                    )
                    problems.append(doc.at(("topics", name, key), msg, "unknown-key", key=True))
                elif not isinstance(value, str):
                    msg = f"{key} must be text"
                    problems.append(doc.at(("topics", name, key), msg, "wrong-type"))
    return problems
