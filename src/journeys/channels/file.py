"""A channel that appends each message as one JSON line to a file (tests, demos, audits)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from journeys.channels.base import LOGGED, ChannelError, OutboundMessage, SendResult


class FileChannel:
    """Appends ``OutboundMessage.to_dict()`` as JSON Lines to ``path`` (UTF-8).

    The parent directory is created when needed; each batch is written and flushed before
    ``send_batch`` returns. ``provider_id`` is ``file:<outbox_id>``; results are ``logged``.
    """

    provider = "file"

    def __init__(self, path: str | os.PathLike[str], *, name: str = "file") -> None:
        self.name = name
        self.path = Path(path)

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult | ChannelError]:
        """Append one line per message; if the file cannot be written, all fail (retryable)."""
        if not messages:
            return []
        lines = [json.dumps(m.to_dict(), ensure_ascii=False) + "\n" for m in messages]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write("".join(lines))
                handle.flush()
        except OSError as exc:
            error = ChannelError(f"cannot write {self.path}: {exc}", retryable=True)
            return [error for _ in messages]
        return [SendResult(f"file:{m.outbox_id}", status=LOGGED) for m in messages]
