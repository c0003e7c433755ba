"""The delivery part of ``journeys.yaml``: channels and their providers, consent, advertising.

Structure only (pydantic, strict, unknown keys refused), like :mod:`journeys.spec.models`;
what depends on the provider (which keys it uses, which it needs) is checked by
:func:`check_delivery_settings`, so that every problem is reported at its key. Secrets are
never settings: a channel names the environment variable that holds its key
(``api_key_env``, ``password_env`` …, with the documented defaults).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from journeys.spec.diagnostics import Diagnostic, did_you_mean, quote, valid_list
from journeys.spec.types import Duration
from journeys.spec.yamlpos import YamlDoc

Provider = Literal["sendgrid", "smtp", "twilio", "webhook", "console", "file"]
Guarantee = Literal["at_most_once", "at_least_once"]

CHANNEL_PROVIDERS: dict[str, tuple[str, ...]] = {
    "email": ("sendgrid", "smtp", "console", "file"),
    "sms": ("twilio", "console", "file"),
    "push": ("console", "file"),
    "webhook": ("webhook", "console", "file"),
}
"""The providers each channel can use."""

COMMON_KEYS = ("provider", "delivery", "rate_limit", "retry", "batch", "concurrency", "timeout")
PROVIDER_KEYS: dict[str, tuple[str, ...]] = {
    "sendgrid": ("host", "sandbox", "api_key_env", "secret_block"),
    "smtp": ("host", "port", "user", "security", "password_env"),
    "twilio": (
        "from",
        "messaging_service_sid",
        "default_region",
        "host",
        "account_sid_env",
        "auth_token_env",
    ),
    "webhook": ("url", "format", "secret_env"),
    "console": (),
    "file": ("path",),
}
"""The keys each provider reads besides :data:`COMMON_KEYS`."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class RateLimitSpec(_Model):
    """``rate_limit: {messages: 100, per: 1s}``: at most that many provider calls per period."""

    messages: Annotated[int, Field(ge=1)]
    per: Duration


class RetrySpec(_Model):
    """``retry: {attempts: 5, backoff: 30s, max_backoff: 1h}`` for 5xx answers and time-outs."""

    attempts: Annotated[int, Field(ge=1, le=50)] = 5
    backoff: Duration = "30s"
    max_backoff: Duration = "1h"


class ChannelSpec(_Model):
    """One channel under ``channels:``; which keys apply depends on ``provider``."""

    model_config = ConfigDict(populate_by_name=False)

    provider: Provider
    delivery: Guarantee | None = None
    rate_limit: RateLimitSpec | None = None
    retry: RetrySpec | None = None
    batch: Annotated[int, Field(ge=1, le=1000)] | None = None
    concurrency: Annotated[int, Field(ge=1, le=64)] | None = None
    timeout: Annotated[float, Field(gt=0, le=300)] | None = None
    host: str | None = None
    sandbox: bool | None = None
    api_key_env: str | None = None
    secret_block: str | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    user: str | None = None
    security: Literal["starttls", "ssl", "none"] | None = None
    password_env: str | None = None
    from_: str | None = Field(default=None, alias="from")
    messaging_service_sid: str | None = None
    default_region: str | None = None
    account_sid_env: str | None = None
    auth_token_env: str | None = None
    url: str | None = None
    format: Literal["json", "slack"] | None = None
    secret_env: str | None = None
    path: str | None = None


class ChannelsSpec(_Model):
    """``channels:``: the provider behind each channel name journeys use."""

    email: ChannelSpec | None = None
    sms: ChannelSpec | None = None
    push: ChannelSpec | None = None
    webhook: ChannelSpec | None = None


class ConsentSpec(_Model):
    """``consent: {missing: deny}``: a customer whose profile says nothing about opt-in."""

    missing: Literal["deny", "allow"] = "deny"


class AdvertisingSpec(_Model):
    """``advertising: {subject_prefix: {ko: "(광고) "}}``: marks marketing messages by locale."""

    subject_prefix: dict[str, str] = Field(default_factory=dict)


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")


def url_problem(value: str, *, https_only: bool) -> str | None:
    """Why ``value`` is not a usable provider URL, or None. ``https_only`` allows plain http
    only on this machine (local test servers)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{quote(value)} is not a URL; write it as https://host[/path]"
    if https_only and parts.scheme != "https" and not _is_loopback(parts.hostname):
        return f"{quote(value)} must use https (plain http only for localhost)"
    return None


def check_delivery_settings(doc: YamlDoc, data: Mapping[str, Any]) -> list[Diagnostic]:
    """Provider-dependent checks of ``channels:`` and of webhook teams (structure is checked
    by the models): each provider fits its channel, uses only its own keys and has what it
    needs."""
    return [*_check_channels(doc, data.get("channels")), *_check_teams(doc, data.get("teams"))]


def _check_channels(doc: YamlDoc, channels: Any) -> Iterator[Diagnostic]:
    if not isinstance(channels, dict):
        return
    for name, spec in channels.items():
        if name not in CHANNEL_PROVIDERS or not isinstance(spec, dict):
            continue  # reported by the models
        provider = spec.get("provider")
        allowed = CHANNEL_PROVIDERS[name]
        if provider not in PROVIDER_KEYS:
            continue
        loc = ("channels", name)
        if provider not in allowed:
            msg = f"provider {quote(provider)} cannot send {name}" + valid_list(
                list(allowed), f"providers for {name}"
            )
            yield doc.at((*loc, "provider"), msg, "bad-value")
            continue
        own = PROVIDER_KEYS[provider]
        for key in spec:
            if key in COMMON_KEYS or key in own or key not in _ALL_KEYS:
                continue
            msg = f"key {quote(key)} in channels.{name} is not used by provider {provider}"
            msg += did_you_mean(key, list(own)) + valid_list([*COMMON_KEYS, *own])
            yield doc.at((*loc, key), msg, "unknown-key", key=True)
        yield from _check_provider(doc, loc, provider, spec)


_ALL_KEYS = frozenset(k for keys in PROVIDER_KEYS.values() for k in keys)


def _check_provider(
    doc: YamlDoc, loc: tuple[str, ...], provider: str, spec: dict[str, Any]
) -> Iterator[Diagnostic]:
    where = ".".join(loc)
    if provider == "smtp" and not spec.get("host"):
        yield doc.at(loc, f"{where} uses provider smtp and needs 'host'", "missing-field")
    if provider == "twilio" and bool(spec.get("from")) == bool(spec.get("messaging_service_sid")):
        msg = (
            f"{where} uses provider twilio and needs exactly one of 'from' (a sender number"
            " such as \"+15005550006\") or 'messaging_service_sid'"
        )
        yield doc.at(loc, msg, "missing-field")
    if provider == "twilio" and isinstance(spec.get("default_region"), str):
        import phonenumbers

        region = spec["default_region"]
        if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            msg = f"default_region {quote(region)} is not a two-letter region code (KR, US, GB …)"
            yield doc.at((*loc, "default_region"), msg, "bad-value")
    if provider == "webhook" and not spec.get("url"):
        yield doc.at(loc, f"{where} uses provider webhook and needs 'url'", "missing-field")
    for key, https_only in (("host", provider != "smtp"), ("url", True)):
        value = spec.get(key)
        if provider == "smtp" or not isinstance(value, str):
            continue
        problem = url_problem(value, https_only=https_only)
        if problem:
            yield doc.at((*loc, key), f"{key}: {problem}", "bad-value")


def _check_teams(doc: YamlDoc, teams: Any) -> Iterator[Diagnostic]:
    if not isinstance(teams, dict):
        return
    for name, team in teams.items():
        if not isinstance(team, dict):
            continue
        url = team.get("url")
        if team.get("channel") == "webhook" and isinstance(url, str):
            problem = url_problem(url, https_only=True)
            if problem:
                yield doc.at(("teams", name, "url"), f"url: {problem}", "bad-value")
        for key in ("format", "secret_env"):
            if key in team and team.get("channel") != "webhook":
                msg = f"{key} in teams.{name} only applies to channel webhook"
                yield doc.at(("teams", name, key), msg, "unknown-key", key=True)
