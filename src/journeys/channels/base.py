"""The channel interface: what dispatch hands to a channel and what it gets back.

A channel sends a *batch* of rendered outbox messages and returns one result per message, in
order: a :class:`SendResult` on success or a :class:`ChannelError` saying whether a retry may
help. A channel never raises for one bad message; it may raise only when it cannot say
anything about the batch (dispatch then treats every message as a retryable failure).

A :class:`SendResult` says what happened: ``sent`` (a provider accepted the message) or
``logged`` (a console or file channel wrote it down; nobody received it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from journeys.clock import iso


@dataclass(frozen=True)
class OutboundMessage:
    """One rendered outbox row on its way to a channel."""

    outbox_id: int
    customer_id: str
    journey: str
    step: str
    template: str
    channel: str
    recipient: str | None
    subject: str
    html: str
    text: str
    locale: str
    due_at: datetime
    headers: dict[str, str] = field(default_factory=dict)
    message_kind: str = "marketing"
    """``marketing`` or ``transactional`` (decides unsubscribe headers and consent)."""

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (``due_at`` as ISO 8601 UTC with ``Z``)."""
        return {
            "outbox_id": self.outbox_id,
            "customer_id": self.customer_id,
            "journey": self.journey,
            "step": self.step,
            "template": self.template,
            "channel": self.channel,
            "recipient": self.recipient,
            "subject": self.subject,
            "html": self.html,
            "text": self.text,
            "locale": self.locale,
            "due_at": iso(self.due_at),
            "headers": dict(self.headers),
            "message_kind": self.message_kind,
        }


SENT = "sent"
"""A provider accepted the message."""

LOGGED = "logged"
"""A console or file channel wrote the message down; it reached nobody."""


@dataclass
class SendResult:
    """What a channel did with one message.

    ``provider_id`` identifies it at the provider (for webhooks), ``status`` is :data:`SENT`
    or :data:`LOGGED`, ``detail`` the provider's own word (``202 Accepted``, ``queued``).
    """

    provider_id: str | None = None
    status: str = SENT
    detail: str | None = None


class ChannelError(Exception):
    """A message the channel could not send.

    ``retryable`` says whether sending it again later may succeed (timeouts, rate limits,
    5xx) or not (invalid recipient, rejected content, unknown channel). ``retry_after`` is
    the number of seconds the provider asked to wait (``Retry-After``,
    ``X-RateLimit-Reset``), when it said so. ``ambiguous``: the request reached the provider
    but no answer came back (a read timeout), so it may have been accepted. ``attempted``
    False: the message never went out (the channel stopped the batch after a rate limit).
    ``status_code`` is the provider's HTTP (or SMTP) status, when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        ambiguous: bool = False,
        attempted: bool = True,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.ambiguous = ambiguous
        self.attempted = attempted
        self.status_code = status_code

    @property
    def rate_limited(self) -> bool:
        """The provider said "too many requests" (HTTP 429)."""
        return self.status_code == 429

    def __repr__(self) -> str:
        extra = ""
        if self.retry_after is not None:
            extra += f", retry_after={self.retry_after:g}"
        if self.ambiguous:
            extra += ", ambiguous=True"
        if not self.attempted:
            extra += ", attempted=False"
        return f"{type(self).__name__}({str(self)!r}, retryable={self.retryable}{extra})"


class UnknownChannelError(ChannelError, KeyError):
    """No channel is configured under the requested name (never retryable).

    A :class:`KeyError` too, so :class:`ChannelRegistry` behaves as a mapping.
    """

    def __init__(self, name: str, configured: Sequence[str]) -> None:
        listed = ", ".join(sorted(configured)) or "none"
        super().__init__(
            f"unknown channel {name!r}; configured channels: {listed}", retryable=False
        )
        self.name = name
        self.configured = tuple(sorted(configured))

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@runtime_checkable
class Channel(Protocol):
    """Anything that sends batches of messages."""

    name: str

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult | ChannelError]:
        """Send ``messages``; exactly one result per message, in the same order."""
        ...


class ChannelRegistry(Mapping[str, Channel]):
    """Channels by the name specs and settings use (``email``, ``sms``, ``console``, team names…).

    One channel instance may be registered under several names (for example a team name
    routed to ``email``).
    """

    def __init__(self, channels: Mapping[str, Channel] | None = None) -> None:
        self._channels: dict[str, Channel] = {}
        for name, channel in (channels or {}).items():
            self.register(name, channel)

    def register(self, name: str, channel: Channel, *, replace: bool = False) -> None:
        """Make ``channel`` available as ``name``; re-registering a name needs ``replace``."""
        if not name:
            raise ValueError("channel name must not be empty")
        if not callable(getattr(channel, "send_batch", None)):
            raise TypeError(f"{channel!r} is not a channel: it has no send_batch()")
        if name in self._channels and not replace:
            raise ValueError(f"channel {name!r} is already registered")
        self._channels[name] = channel

    def get_channel(self, name: str) -> Channel:
        """The channel registered as ``name``; :class:`UnknownChannelError` lists the others."""
        try:
            return self._channels[name]
        except KeyError:
            raise UnknownChannelError(name, list(self._channels)) from None

    def __getitem__(self, name: str) -> Channel:
        return self.get_channel(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._channels)

    def __len__(self) -> int:
        return len(self._channels)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._channels)
