"""Signed links for survey answers and unsubscribes (HMAC-SHA256, URL-safe, no expiry needed:
the token only identifies what it answers)."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from typing import Any


class BadToken(ValueError):
    """A token that was altered, truncated or signed with another secret."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(payload: dict[str, Any], secret: str) -> str:
    """``<payload>.<signature>``; :func:`verify` returns the payload."""
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()[:16]
    return f"{body}.{_b64(mac)}"


def verify(token: str, secret: str) -> dict[str, Any]:
    """The payload of a token made by :func:`sign`; :class:`BadToken` otherwise."""
    try:
        body, mac = token.split(".", 1)
        expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(expected, _unb64(mac)):
            raise BadToken("signature does not match")
        data = json.loads(_unb64(body))
    except (ValueError, json.JSONDecodeError) as exc:
        raise BadToken(str(exc)) from None
    if not isinstance(data, dict):
        raise BadToken("payload is not an object")
    return data


def survey_url(
    base_url: str, secret: str, enrollment_id: int, journey: str, step: str, customer_id: str
) -> str:
    """The answer link of a survey step (append ``&score=N``)."""
    token = sign({"e": enrollment_id, "j": journey, "s": step, "c": customer_id}, secret)
    return f"{base_url.rstrip('/')}/survey?token={token}"


@functools.lru_cache(maxsize=65536)
def unsubscribe_url(base_url: str, secret: str, customer_id: str, channel: str = "email") -> str:
    """The one-click unsubscribe link (RFC 8058) of a customer (cached: it is the same in
    every message the customer gets)."""
    token = sign({"c": customer_id, "ch": channel}, secret)
    return f"{base_url.rstrip('/')}/unsubscribe/{token}"
