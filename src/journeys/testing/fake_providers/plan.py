"""What the fake providers accept (:class:`Credentials`) and which answers fail
(:class:`FaultPlan`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass
class FaultPlan:
    """Which answers fail: ``rates`` maps ``"429"``, ``"500"``, ``"hang"`` (no answer until the
    client gives up) and ``"drop"`` (the connection closed without an answer) to fractions."""

    rates: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    reset: tuple[float, float] = (1.0, 3.0)
    """Seconds from now to the 429's reset (whole epoch seconds, as SendGrid sends)."""
    script: dict[str, list[str]] = field(default_factory=dict)
    """Outcomes by key for its first requests (``{"7": ["429", "500"]}``), before the rates."""
    latency: float = 0.0
    """Seconds (real time) the provider takes to answer."""

    def outcome(self, key: str, attempt: int) -> str:
        """``accept``, ``429``, ``500``, ``hang`` or ``drop`` for the ``attempt``-th request of
        ``key``."""
        scripted = self.script.get(key, [])
        if attempt <= len(scripted):
            return scripted[attempt - 1]
        draw = self._uniform(f"{key}:{attempt}")
        edge = 0.0
        for name in ("429", "500", "hang", "drop"):
            edge += self.rates.get(name, 0.0)
            if draw < edge:
                return name
        return "accept"

    def reset_after(self, key: str, attempt: int) -> float:
        """Seconds a 429 asks the client to wait (at least one)."""
        low, high = self.reset
        return low + (high - low) * self._uniform(f"reset:{key}:{attempt}")

    def _uniform(self, text: str) -> float:
        digest = hashlib.sha256(f"{self.seed}:{text}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class Credentials:
    """What the fake providers accept."""

    sendgrid_key: str = "SG.test-key"
    twilio_sid: str = "AC" + "0" * 32
    twilio_token: str = "twilio-test-token"
    webhook_secret: str = "webhook-test-secret"
