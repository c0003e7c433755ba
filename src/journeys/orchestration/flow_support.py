"""What a flow run needs to reach the engine: configuration from the environment, one service.

Flow-run parameters carry ids only (a journey id, a file path), never personal data and never
credentials, so everything else comes from the environment of the process that runs the flow:

``JOURNEYS_DATABASE_URL``
    SQLAlchemy URL of the journeys database (PostgreSQL when several workers share it). Set it
    in the worker's (or ``journeys deploy --serve`` process's) environment; it is deliberately
    not stored in the deployment, because it usually holds a password.
``JOURNEYS_SPECS``
    Directory (or file) of journey specs; default ``journey_specs`` in the working directory.
``JOURNEYS_TEMPLATES``
    Templates directory; default: the engine's default next to the specs.
``JOURNEYS_WORKER_ID``
    Name of this worker in its logs; default: the engine's default (host and pid).
``JOURNEYS_MESSAGES_FILE``
    Development and demo only: deliver every channel's messages to this JSON Lines file
    instead of the engine's default channels.
``JOURNEYS_CLOCK_ORIGIN`` and ``JOURNEYS_CLOCK_SPEED``
    Demo only: time runs ``SPEED`` times faster than the wall clock from the real instant
    ``ORIGIN`` (ISO 8601) on, the same in every process, so a day's wait takes 24 s at 3600.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from journeys.clock import Clock, parse_instant

if TYPE_CHECKING:
    from journeys.channels.base import ChannelRegistry
    from journeys.service import JourneyService

ENV_DATABASE_URL = "JOURNEYS_DATABASE_URL"
ENV_SPECS = "JOURNEYS_SPECS"
ENV_TEMPLATES = "JOURNEYS_TEMPLATES"
ENV_WORKER_ID = "JOURNEYS_WORKER_ID"
ENV_MESSAGES_FILE = "JOURNEYS_MESSAGES_FILE"
ENV_CLOCK_ORIGIN = "JOURNEYS_CLOCK_ORIGIN"
ENV_CLOCK_SPEED = "JOURNEYS_CLOCK_SPEED"

_current: JourneyService | None = None


class ScaledClock:
    """Demo time: ``origin + (wall now - origin) * speed`` (identical in every process)."""

    def __init__(self, origin: datetime, speed: float) -> None:
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, not {speed}")
        self.origin = origin
        self.speed = speed

    def now(self) -> datetime:
        """The scaled current time (aware UTC)."""
        return self.origin + (datetime.now(UTC) - self.origin) * self.speed


def clock_from_env() -> Clock | None:
    """A :class:`ScaledClock` when ``JOURNEYS_CLOCK_SPEED`` is set, else None (wall clock)."""
    speed = os.environ.get(ENV_CLOCK_SPEED)
    if not speed:
        return None
    origin_text = os.environ.get(ENV_CLOCK_ORIGIN)
    if not origin_text:
        raise RuntimeError(f"{ENV_CLOCK_SPEED} needs {ENV_CLOCK_ORIGIN} (an ISO 8601 instant)")
    return ScaledClock(parse_instant(origin_text), float(speed))


def channels_from_env() -> ChannelRegistry | None:
    """Every channel to ``JOURNEYS_MESSAGES_FILE`` when set, else None (engine defaults)."""
    path = os.environ.get(ENV_MESSAGES_FILE)
    if not path:
        return None
    from journeys.channels.file import FileChannel
    from journeys.service import default_channels

    channel = FileChannel(path)
    return default_channels(channel)


def open_service_from_env() -> JourneyService:
    """Open a :class:`~journeys.service.JourneyService` configured by the environment."""
    from journeys.service import JourneyService

    return JourneyService.open(
        database_url=os.environ.get(ENV_DATABASE_URL) or None,
        specs=os.environ.get(ENV_SPECS) or "journey_specs",
        templates=os.environ.get(ENV_TEMPLATES) or None,
        clock=clock_from_env(),
        worker_id=os.environ.get(ENV_WORKER_ID) or None,
        channels=channels_from_env(),
    )


@contextmanager
def service_scope() -> Iterator[JourneyService]:
    """Open the service for the duration of a flow run and make it :func:`current_service`.

    Tasks take ids as parameters, not the service (Prefect would try to hash and record it);
    they reach it through :func:`current_service`. A scope opened while another is active
    reuses it, so a flow can call another flow's tasks without opening a second engine.
    """
    global _current
    if _current is not None:
        yield _current
        return
    service = open_service_from_env()
    _current = service
    try:
        yield service
    finally:
        _current = None
        service.close()


def current_service() -> JourneyService:
    """The service of the enclosing :func:`service_scope`; RuntimeError outside one."""
    if _current is None:
        raise RuntimeError("no journeys service is open: call tasks inside a journeys flow")
    return _current
