"""Per-key rate limits: a token bucket for each API key, in this process's memory."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable


class RateLimiter:
    """Allows bursts of ``requests`` per key, refilled evenly over ``per`` seconds.

    ``clock`` is a monotonic seconds counter (injected in tests). Thread-safe.
    """

    def __init__(
        self, requests: int, per: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = float(requests)
        self.rate = requests / per
        self.clock = clock
        self._buckets: dict[Hashable, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: Hashable) -> float:
        """Take one request for ``key``: 0 when allowed, else the seconds until one is."""
        with self._lock:
            now = self.clock()
            tokens, then = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate

    @staticmethod
    def retry_after(wait: float) -> str:
        """``Retry-After`` (whole seconds, at least 1) for a wait."""
        return str(max(1, math.ceil(wait)))
