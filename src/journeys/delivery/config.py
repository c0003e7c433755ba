"""The ``channels:`` settings as typed values, with the defaults docs/delivery.md lists.

``journeys.yaml`` is validated with positions by :mod:`journeys.spec.delivery_models`;
this module only reads what :class:`~journeys.settings.Settings` keeps of it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from journeys.delivery.consent import TRANSACTIONAL
from journeys.durations import parse_duration
from journeys.settings import Settings

AT_MOST_ONCE = "at_most_once"
AT_LEAST_ONCE = "at_least_once"

DEFAULT_BATCH = {"sendgrid": 50, "smtp": 20, "twilio": 20, "webhook": 20}
"""Messages per claim (one commit before and one after the provider calls)."""
DEFAULT_CONCURRENCY = {"sendgrid": 8, "smtp": 1, "twilio": 4, "webhook": 4}
"""Provider calls in flight at once within a batch."""
DEFAULT_TIMEOUT = 10.0
"""Seconds a provider call may take before it counts as a time-out."""
LOCAL_BATCH = 500
"""Batch of the console and file channels (no provider, nothing in doubt)."""


@dataclass(frozen=True)
class RetryPolicy:
    """5xx answers and time-outs: up to ``attempts`` calls, waiting ``backoff`` × 2^(n-1)
    (at most ``max_backoff``) with jitter between them."""

    attempts: int = 5
    backoff: float = 30.0
    max_backoff: float = 3600.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): the exponential
        step with "equal jitter" (between half of it and all of it), so retries of a batch
        that failed together spread out instead of hitting the provider at once again."""
        step = min(self.max_backoff, self.backoff * 2 ** max(0, attempt - 1))
        return step / 2 + rng.uniform(0, step / 2)


@dataclass(frozen=True)
class RateLimit:
    """At most ``messages`` provider calls per ``seconds``."""

    messages: int
    seconds: float

    @property
    def per_second(self) -> float:
        """The refill rate of the token bucket."""
        return self.messages / self.seconds


@dataclass(frozen=True)
class ChannelConfig:
    """One configured channel (``channels.<name>``) with its defaults filled in."""

    name: str
    provider: str = "console"
    delivery: str | None = None
    rate_limit: RateLimit | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    batch: int = LOCAL_BATCH
    concurrency: int = 1
    timeout: float = DEFAULT_TIMEOUT
    options: dict[str, Any] = field(default_factory=dict)
    """The provider's own keys (``host``, ``sandbox``, ``from`` …) as written."""

    def guarantee(self, kind: str) -> str:
        """``at_most_once`` or ``at_least_once`` for a message of ``kind``: the channel's
        ``delivery`` when set, else at least once for transactional messages and at most
        once for marketing."""
        if self.delivery:
            return self.delivery
        return AT_LEAST_ONCE if kind == TRANSACTIONAL else AT_MOST_ONCE

    @property
    def lease(self) -> float:
        """Seconds after which a message still ``sending`` is taken to be abandoned (its
        dispatcher died): twice the longest one batch of calls can take, at least a minute."""
        rounds = math.ceil(self.batch / max(1, self.concurrency))
        return max(60.0, 2 * rounds * self.timeout)


def channel_config(settings: Settings, name: str) -> ChannelConfig:
    """The configuration of channel ``name`` (console defaults when it has none)."""
    raw = dict(settings.channels.get(name) or {})
    provider = str(raw.pop("provider", "console"))
    local = provider in ("console", "file")
    rate = raw.pop("rate_limit", None)
    retry = raw.pop("retry", None) or {}
    return ChannelConfig(
        name=name,
        provider=provider,
        delivery=raw.pop("delivery", None),
        rate_limit=(
            RateLimit(int(rate["messages"]), float(parse_duration(rate["per"]))) if rate else None
        ),
        retry=RetryPolicy(
            attempts=int(retry.get("attempts", RetryPolicy.attempts)),
            backoff=float(parse_duration(retry["backoff"])) if "backoff" in retry else 30.0,
            max_backoff=(
                float(parse_duration(retry["max_backoff"])) if "max_backoff" in retry else 3600.0
            ),
        ),
        batch=int(raw.pop("batch", LOCAL_BATCH if local else DEFAULT_BATCH.get(provider, 20))),
        concurrency=int(raw.pop("concurrency", DEFAULT_CONCURRENCY.get(provider, 1))),
        timeout=float(raw.pop("timeout", DEFAULT_TIMEOUT)),
        options=raw,
    )
