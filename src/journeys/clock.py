"""Injected time. The runtime never calls ``datetime.now()``; it asks a clock.

:class:`VirtualClock` lets tests and ``journeys simulate`` skip time, like Temporal's test server.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime:
        """The current time (timezone-aware, UTC)."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        """The current UTC time."""
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of wall-clock time (a provider's rate-limit reset, say)."""
        if seconds > 0:
            time.sleep(seconds)


class VirtualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start)

    def now(self) -> datetime:
        """The virtual time."""
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when``; time never goes backwards."""
        when = as_utc(when)
        if when < self._now:
            raise ValueError(f"virtual time cannot go back from {self._now} to {when}")
        self._now = when

    def advance(self, delta: timedelta) -> None:
        """Move forward by ``delta``."""
        self.set(self._now + delta)

    def sleep(self, seconds: float) -> None:
        """Waiting in virtual time is moving the clock forward."""
        if seconds > 0:
            self.advance(timedelta(seconds=seconds))


def as_utc(value: datetime) -> datetime:
    """Aware UTC datetime (naive values are taken as UTC, as SQLite returns them)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_instant(text: str) -> datetime:
    """ISO 8601 (``2026-03-01T10:15:00Z``) to an aware UTC datetime; ValueError if malformed."""
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    parsed = datetime.fromisoformat(raw)
    return as_utc(parsed)


def iso(value: datetime | None) -> str | None:
    """``2026-03-01T10:15:00Z`` (UTC, seconds precision) or None."""
    if value is None:
        return None
    return as_utc(value).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


ZERO = timedelta(0)
