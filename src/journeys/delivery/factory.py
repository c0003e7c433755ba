"""The channels a project's ``journeys.yaml`` describes, with their secrets from the environment.

Without a ``channels:`` section every channel is the console (demo mode: messages are
``logged``, nothing is sent). With one, each configured channel gets its provider; secrets
are read from environment variables (``SENDGRID_API_KEY``, ``SMTP_PASSWORD``,
``TWILIO_ACCOUNT_SID``/``TWILIO_AUTH_TOKEN``, ``JOURNEYS_WEBHOOK_SECRET``, or the variable a
channel names) or, for SendGrid deployed on Prefect, a Secret block; they are never logged
or stored. Webhook teams (``teams: {support: {channel: webhook, url: …}}``) are served by
the ``webhook`` channel.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from journeys.channels.base import Channel, ChannelRegistry
from journeys.channels.console import ConsoleChannel
from journeys.channels.file import FileChannel
from journeys.clock import Clock, SystemClock
from journeys.delivery.config import ChannelConfig, channel_config
from journeys.settings import Settings

STANDARD = ("email", "sms", "push", "webhook", "console")
"""Channel names steps use."""

DEFAULT_ENV = {
    "api_key_env": "SENDGRID_API_KEY",
    "password_env": "SMTP_PASSWORD",
    "account_sid_env": "TWILIO_ACCOUNT_SID",
    "auth_token_env": "TWILIO_AUTH_TOKEN",
    "secret_env": "JOURNEYS_WEBHOOK_SECRET",
}
"""The environment variable each secret is read from unless the channel names another."""


class ChannelSetupError(ValueError):
    """Channels that cannot be built (a missing secret …); the message lists each and the fix."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("cannot set up delivery:\n" + "\n".join(f"  {p}" for p in problems))


def prefect_secret(name: str) -> str:
    """The value of the Prefect Secret block ``name`` (deployed projects keep keys there)."""
    from prefect.blocks.system import Secret

    return str(Secret.load(name).get())


def build_channels(
    settings: Settings,
    *,
    clock: Clock | None = None,
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    secret_block: Callable[[str], str] = prefect_secret,
) -> ChannelRegistry:
    """A registry with every channel ``settings`` configures; :class:`ChannelSetupError`
    names every secret that is missing. ``base_dir``: where a ``file`` channel's relative
    path starts (default: beside ``journeys.yaml``, else the working directory)."""
    clock = clock or SystemClock()
    env = os.environ if env is None else env
    root = base_dir or (settings.path.parent if settings.path else Path.cwd())
    builder = _Builder(settings, clock, env, root, secret_block)
    registry = ChannelRegistry()
    console = ConsoleChannel()
    if not settings.channels:
        for name in STANDARD:
            registry.register(name, console)
    else:
        registry.register("console", console)
        for name in settings.channels:
            if name == "webhook" and settings.channels[name].get("provider") == "webhook":
                continue  # below, with the webhook teams
            channel = builder.build(channel_config(settings, name))
            if channel is not None:
                registry.register(name, channel)
    teams = builder.webhook_teams()
    configured = settings.channels.get("webhook", {}).get("provider")
    if configured == "webhook" or (teams and configured is None):
        webhook = builder.webhook(channel_config(settings, "webhook"), teams)
        if webhook is not None:
            registry.register("webhook", webhook, replace=True)
    if builder.problems:
        raise ChannelSetupError(builder.problems)
    return registry


class _Builder:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        env: Mapping[str, str],
        root: Path,
        secret_block: Callable[[str], str],
    ) -> None:
        self.settings, self.clock, self.env, self.root = settings, clock, env, root
        self.secret_block = secret_block
        self.problems: list[str] = []

    def secret(self, config: ChannelConfig, key: str, what: str) -> str | None:
        name = str(config.options.get(key) or DEFAULT_ENV[key])
        value = self.env.get(name)
        if not value:
            self.problems.append(
                f"channels.{config.name} ({config.provider}): set ${name} ({what})"
            )
        return value or None

    def build(self, config: ChannelConfig) -> Channel | None:
        provider, options = config.provider, config.options
        if provider == "console":
            return ConsoleChannel(name=config.name)
        if provider == "file":
            path = Path(str(options.get("path") or f"{config.name}-messages.jsonl"))
            return FileChannel(path if path.is_absolute() else self.root / path, name=config.name)
        if provider == "sendgrid":
            return self.sendgrid(config)
        if provider == "smtp":
            return self.smtp(config)
        if provider == "twilio":
            return self.twilio(config)
        self.problems.append(f"channels.{config.name}: unknown provider {provider!r}")
        return None

    def sendgrid(self, config: ChannelConfig) -> Channel | None:
        from journeys.channels.sendgrid_email import DEFAULT_HOST, SendGridChannel

        block = config.options.get("secret_block")
        key_env = str(config.options.get("api_key_env") or DEFAULT_ENV["api_key_env"])
        key = self.env.get(key_env)
        if not key and block:
            try:
                key = self.secret_block(str(block))
            except Exception as exc:  # Prefect not reachable, no such block …
                self.problems.append(
                    f"channels.{config.name} (sendgrid): cannot read the Prefect Secret block "
                    f"{block!r}: {type(exc).__name__}: {exc}"
                )
                return None
        if not key:
            self.problems.append(
                f"channels.{config.name} (sendgrid): set ${key_env} (the SendGrid API key)"
                " or secret_block: <name of a Prefect Secret block>"
            )
            return None
        return SendGridChannel(
            key,
            host=str(config.options.get("host") or DEFAULT_HOST),
            sandbox=bool(config.options.get("sandbox", False)),
            timeout=config.timeout,
            concurrency=config.concurrency,
            clock=self.clock,
            name=config.name,
        )

    def smtp(self, config: ChannelConfig) -> Channel | None:
        from journeys.channels.smtp_email import SmtpChannel

        options = config.options
        user = options.get("user")
        password = self.secret(config, "password_env", "the SMTP password") if user else None
        if user and password is None:
            return None
        security = str(options.get("security") or "starttls")
        default_port = 465 if security == "ssl" else (587 if security == "starttls" else 25)
        return SmtpChannel(
            str(options["host"]),
            int(options.get("port") or default_port),
            user=str(user) if user else None,
            password=password,
            security=security,
            timeout=config.timeout,
            clock=self.clock,
            name=config.name,
        )

    def twilio(self, config: ChannelConfig) -> Channel | None:
        from journeys.channels.twilio_sms import API_HOST, TwilioChannel

        sid = self.secret(config, "account_sid_env", "the Twilio account SID")
        token = self.secret(config, "auth_token_env", "the Twilio auth token")
        if sid is None or token is None:
            return None
        options = config.options
        return TwilioChannel(
            sid,
            token,
            from_number=options.get("from"),
            messaging_service_sid=options.get("messaging_service_sid"),
            host=str(options.get("host") or API_HOST),
            timeout=config.timeout,
            concurrency=config.concurrency,
            clock=self.clock,
            name=config.name,
        )

    def webhook_teams(self) -> dict[str, Any]:
        from journeys.channels.webhook import WebhookTarget

        found: dict[str, Any] = {}
        for name, team in self.settings.teams.items():
            if team.get("channel") != "webhook" or not team.get("url"):
                continue
            fmt = str(team.get("format") or "json")
            secret = None
            if fmt == "json":
                env_name = str(team.get("secret_env") or DEFAULT_ENV["secret_env"])
                secret = self.env.get(env_name)
                if not secret:
                    self.problems.append(
                        f"teams.{name} (webhook): set ${env_name} (the secret that signs"
                        " its requests), or use format: slack"
                    )
            found[name] = WebhookTarget(str(team["url"]), fmt, secret)
        return found

    def webhook(self, config: ChannelConfig, teams: dict[str, Any]) -> Channel | None:
        from journeys.channels.webhook import WebhookChannel, WebhookTarget

        default = None
        url = config.options.get("url")
        if url:
            fmt = str(config.options.get("format") or "json")
            secret = (
                self.secret(config, "secret_env", "the signing secret") if fmt == "json" else None
            )
            default = WebhookTarget(str(url), fmt, secret)
        return WebhookChannel(
            default,
            teams,
            timeout=config.timeout,
            concurrency=config.concurrency,
            clock=self.clock,
            name="webhook",
        )
