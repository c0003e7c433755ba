"""Channels deliver rendered outbox messages: one interface, errors tagged retryable or not.

:class:`Channel` is the protocol; :class:`ChannelRegistry` maps the names used in specs and
settings (``email``, ``sms``, ``console``, team names…) to channel instances.
"""

from journeys.channels.base import (
    Channel,
    ChannelError,
    ChannelRegistry,
    OutboundMessage,
    SendResult,
    UnknownChannelError,
)
from journeys.channels.console import ConsoleChannel
from journeys.channels.file import FileChannel

__all__ = [
    "Channel",
    "ChannelError",
    "ChannelRegistry",
    "ConsoleChannel",
    "FileChannel",
    "OutboundMessage",
    "SendResult",
    "UnknownChannelError",
]
