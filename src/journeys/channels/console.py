"""A channel that prints a one-line summary per message (development and demos)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from typing import TextIO

from journeys.channels.base import LOGGED, ChannelError, OutboundMessage, SendResult
from journeys.clock import iso


class ConsoleChannel:
    """Writes ``due  journey/step  template  -> recipient [channel, locale]  "subject"`` lines.

    Never the HTML body. ``stream`` defaults to the *current* ``sys.stdout`` at send time.
    Results are ``logged``, never ``sent``: a console reaches nobody.
    """

    provider = "console"

    def __init__(self, stream: TextIO | None = None, *, name: str = "console") -> None:
        self.name = name
        self._stream = stream

    @staticmethod
    def format(message: OutboundMessage) -> str:
        """The one-line summary of ``message``."""
        recipient = message.recipient or message.customer_id
        if recipient != message.customer_id:
            recipient = f"{message.customer_id} <{recipient}>"
        subject = " ".join(message.subject.split())
        if len(subject) > 80:
            subject = subject[:79] + "…"
        return (
            f"{iso(message.due_at)}  #{message.outbox_id} {message.journey}/{message.step}  "
            f"{message.template} -> {recipient} [{message.channel}, {message.locale or '-'}]"
            f'  "{subject}"'
        )

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult | ChannelError]:
        """Print one line per message; a write error fails the rest of the batch (retryable)."""
        stream = self._stream if self._stream is not None else sys.stdout
        results: list[SendResult | ChannelError] = []
        failure: ChannelError | None = None
        for message in messages:
            if failure is None:
                try:
                    stream.write(self.format(message) + "\n")
                except (OSError, ValueError) as exc:  # closed or broken stream
                    failure = ChannelError(f"console write failed: {exc}", retryable=True)
            results.append(
                failure
                if failure is not None
                else SendResult(f"console:{message.outbox_id}", status=LOGGED)
            )
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
        return results
