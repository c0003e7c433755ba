"""Signed links in messages: survey answers and unsubscribes.

A token is signed by :mod:`itsdangerous` (``TimestampSigner``: key derivation per purpose,
HMAC-SHA256, constant-time checks): a compact JSON payload, the time it was signed and the
signature, each part URL-safe base64 and joined by dots.
It is signed, not encrypted: it carries ids only (an enrollment id, a journey and step, or the
customer id of an unsubscribe link), never an address or a name.

- **Expiry**: the web app checks the age when it reads a token (survey links 30 days by default,
  unsubscribe links at least 60; ``docs/web.md``).
- **Rotation**: :class:`LinkKeys` holds the current secret and older ones. Links are signed with
  the current one and verified with any, so links already sent keep working during the grace
  period while the old secret stays listed.
- **Strict decoding**: a token must be exactly what the signer wrote: only the URL-safe
  alphabet, canonical base64, no padding and nothing appended.

The secret itself comes from :mod:`journeys.secrets` (``$JOURNEYS_SECRET_KEY``, else a random one
generated into ``.journeys/secret``); there is no public default.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from itsdangerous import BadData, BadSignature, TimestampSigner
from itsdangerous.encoding import base64_decode, base64_encode, int_to_bytes

if TYPE_CHECKING:
    from journeys.settings import Settings

SURVEY = "journeys.survey"
"""Salt of survey tokens: a token made for one purpose never verifies for another."""
UNSUBSCRIBE = "journeys.unsubscribe"
"""Salt of unsubscribe tokens."""

_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")


class BadToken(ValueError):
    """A token that was altered, truncated, signed with another secret, or has expired.

    ``expired`` is True for a genuine token that is too old; its verified ``payload`` is kept so
    that the page saying so can be in the customer's language.
    """

    def __init__(
        self, message: str, *, expired: bool = False, payload: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.expired = expired
        self.payload = payload


@dataclass(frozen=True)
class LinkKeys:
    """The secret that signs links and the older ones that still verify them."""

    current: str
    previous: tuple[str, ...] = ()

    def __repr__(self) -> str:  # never print a secret
        return f"LinkKeys(<{len(self.previous) + 1} secrets>)"


@functools.lru_cache(maxsize=64)
def _signers(keys: LinkKeys, salt: str) -> tuple[TimestampSigner, ...]:
    """One signer per secret, the current one first: it signs, and every one verifies."""
    return tuple(
        TimestampSigner(secret, salt=salt, digest_method=hashlib.sha256)
        for secret in (keys.current, *keys.previous)
    )


@functools.lru_cache(maxsize=64)
def _signing_key(keys: LinkKeys, salt: str) -> tuple[TimestampSigner, bytes]:
    """The signer of new links and its derived key."""
    signer = _signers(keys, salt)[0]
    return signer, signer.derive_key()


def _epoch(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: links are signed at aware UTC times")
    return int(at.timestamp())


def sign(keys: LinkKeys, salt: str, payload: dict[str, Any], at: datetime) -> str:
    """A token for ``payload`` signed at ``at``; :func:`verify` returns the payload.

    The signer's own ``sign`` would stamp the wall clock; journeys injects time, so the
    timestamp is written here in the signer's format and signed with its key and digest.
    """
    body = base64_encode(json.dumps(payload, separators=(",", ":"), sort_keys=True))
    stamped = body + b"." + base64_encode(int_to_bytes(_epoch(at)))
    signer, key = _signing_key(keys, salt)
    # signer.get_signature(stamped), without deriving the same key again for every link.
    return (stamped + b"." + base64_encode(signer.algorithm.get_signature(key, stamped))).decode()


def _canonical(token: str) -> bool:
    """Exactly what :func:`sign` writes: ``payload.timestamp.signature``, each part canonical
    unpadded URL-safe base64."""
    parts = token.split(".")
    if len(parts) != 3:
        return False
    for part in parts:
        if not _SEGMENT.match(part):
            return False
        try:
            if base64_encode(base64_decode(part)).decode() != part:
                return False
        except BadData:
            return False
    return True


def verify(
    keys: LinkKeys, salt: str, token: str, *, max_age: int | None, now: datetime
) -> dict[str, Any]:
    """The payload of ``token`` if it is genuine and at most ``max_age`` seconds old at ``now``;
    :class:`BadToken` otherwise (``expired`` set, with the payload, for an old genuine token)."""
    if not isinstance(token, str) or len(token) > 2000 or not _canonical(token):
        raise BadToken("not a token")
    for signer in _signers(keys, salt):
        try:
            body, signed_at = signer.unsign(token, return_timestamp=True)
        except BadSignature:
            continue
        break
    else:
        raise BadToken("signature does not match")
    try:
        data = json.loads(base64_decode(body))
    except (BadData, ValueError):
        raise BadToken("payload is not JSON") from None
    if not isinstance(data, dict):
        raise BadToken("payload is not an object")
    age = _epoch(now) - int(signed_at.timestamp())
    if max_age is not None and not 0 <= age <= max_age:
        raise BadToken("the link has expired", expired=True, payload=data)
    return data


# ----------------------------------------------------------------------------- the two links


@dataclass(frozen=True)
class SurveyLink:
    """What a survey token says: which enrollment's survey step it answers."""

    enrollment_id: int
    journey: str
    step: str


@dataclass(frozen=True)
class UnsubscribeLink:
    """What an unsubscribe token says: whom, on which channel, and from which topic (None:
    every marketing message on the channel)."""

    customer_id: str
    channel: str
    topic: str | None


def survey_token(keys: LinkKeys, enrollment_id: int, journey: str, step: str, at: datetime) -> str:
    """The token of a survey step's answer link."""
    return sign(keys, SURVEY, {"e": enrollment_id, "j": journey, "s": step}, at)


def read_survey_token(payload: dict[str, Any]) -> SurveyLink:
    """A verified survey payload as a :class:`SurveyLink`; :class:`BadToken` if it is not one."""
    try:
        enrollment, journey, step = payload["e"], payload["j"], payload["s"]
    except KeyError:
        raise BadToken("not a survey token") from None
    if not (isinstance(enrollment, int) and isinstance(journey, str) and isinstance(step, str)):
        raise BadToken("not a survey token")
    return SurveyLink(enrollment, journey, step)


def unsubscribe_token(
    keys: LinkKeys, customer_id: str, channel: str, topic: str | None, at: datetime
) -> str:
    """The token of an unsubscribe link."""
    payload: dict[str, Any] = {"c": customer_id, "ch": channel}
    if topic:
        payload["t"] = topic
    return sign(keys, UNSUBSCRIBE, payload, at)


def read_unsubscribe_token(payload: dict[str, Any]) -> UnsubscribeLink:
    """A verified unsubscribe payload as an :class:`UnsubscribeLink`."""
    customer, channel, topic = payload.get("c"), payload.get("ch"), payload.get("t")
    if not (isinstance(customer, str) and isinstance(channel, str)):
        raise BadToken("not an unsubscribe token")
    if topic is not None and not isinstance(topic, str):
        raise BadToken("not an unsubscribe token")
    return UnsubscribeLink(customer, channel, topic)


def survey_url(
    settings: Settings, enrollment_id: int, journey: str, step: str, *, at: datetime
) -> str:
    """The answer link of a survey step, signed at ``at`` (append ``&score=N``)."""
    from journeys.secrets import link_keys

    token = survey_token(link_keys(settings), enrollment_id, journey, step, at)
    return f"{settings.base_url.rstrip('/')}/survey?token={token}"


def unsubscribe_url(
    settings: Settings,
    customer_id: str,
    channel: str = "email",
    *,
    at: datetime,
    topic: str | None = None,
) -> str:
    """The customer's one-click unsubscribe link (RFC 8058), for ``topic`` when the message
    names one. The token is signed at the start of ``at``'s UTC day, so it is the same in every
    message the customer gets that day (and computed once per day per process)."""
    from journeys.secrets import link_keys

    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return _unsubscribe_url(
        settings.base_url.rstrip("/"), link_keys(settings), customer_id, channel, topic, day
    )


@functools.lru_cache(maxsize=65536)
def _unsubscribe_url(
    base_url: str,
    keys: LinkKeys,
    customer_id: str,
    channel: str,
    topic: str | None,
    day: datetime,
) -> str:
    return f"{base_url}/unsubscribe/{unsubscribe_token(keys, customer_id, channel, topic, day)}"
