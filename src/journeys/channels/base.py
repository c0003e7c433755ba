"""The channel interface: what dispatch hands to a channel and what it gets back.

A channel sends a *batch* of rendered outbox messages and returns one result per message, in
order: a :class:`SendResult` on success or a :class:`ChannelError` saying whether a retry may
help. A channel never raises for one bad message; it may raise only when it cannot say
anything about the batch (dispatch then treats every message as a retryable failure).
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
        }


@dataclass
class SendResult:
    """A message the provider accepted; ``provider_id`` identifies it there (for webhooks)."""

    provider_id: str | None = None


class ChannelError(Exception):
    """A message the channel could not send.

    ``retryable`` says whether sending it again later may succeed (timeouts, rate limits,
    5xx) or not (invalid recipient, rejected content, unknown channel).
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r}, retryable={self.retryable})"


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
