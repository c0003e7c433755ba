"""API keys: made here, printed once, stored as a SHA-256 hash (``journeys keys``).

A key looks like ``jk_<prefix>_<secret>``. The prefix is public (it finds the stored row and is
shown by ``journeys keys list``); the secret part has 256 bits, so a fast hash is enough and
nothing about the key can be recovered from the database. Scopes: ``events`` for the intake API
(``/v1/*``), ``staff`` for staff pages (the dashboard).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from journeys.store import web as store

SCOPES = ("events", "staff")
_KEY = re.compile(r"^jk_([a-z0-9]{10})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class ApiKeyError(ValueError):
    """A key that cannot be created or revoked; the message says why."""


@dataclass(frozen=True)
class ApiKey:
    """A stored key as the app sees it after authentication."""

    id: int
    name: str
    scope: str


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(db: Engine, name: str, scope: str, now: datetime) -> str:
    """A new key named ``name``; returns the key itself (shown once, stored hashed)."""
    if not _NAME.match(name):
        raise ApiKeyError(f"key name {name!r}: use letters, digits, '.', '_' or '-' (max 100)")
    if scope not in SCOPES:
        raise ApiKeyError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
    prefix = secrets.token_hex(5)
    key = f"jk_{prefix}_{secrets.token_urlsafe(32)}"
    row = {"name": name, "prefix": prefix, "key_hash": hash_key(key), "scope": scope}
    try:
        with db.begin() as conn:
            if store.api_key_by_name(conn, name) is not None:
                raise ApiKeyError(f"a key named {name!r} exists; revoke it or pick another name")
            store.insert_api_key(conn, {**row, "created_at": now})
    except IntegrityError:
        raise ApiKeyError(f"a key named {name!r} exists; revoke it or pick another name") from None
    return key


def list_keys(db: Engine) -> list[dict[str, Any]]:
    """Every key: name, prefix, scope, created, last used, revoked (never the key)."""
    with db.connect() as conn:
        return store.list_api_keys(conn)


def revoke_key(db: Engine, name: str, now: datetime) -> None:
    """Revoke the key named ``name`` at once."""
    with db.begin() as conn:
        if not store.revoke_api_key(conn, name, now):
            raise ApiKeyError(f"no active key named {name!r} (journeys keys list shows them)")


def authenticate(db: Engine, presented: str) -> ApiKey | None:
    """The active key ``presented`` is, or None (malformed, unknown, revoked or wrong)."""
    match = _KEY.match(presented.strip())
    if not match:
        return None
    with db.connect() as conn:
        row = store.api_key_by_prefix(conn, match[1])
    if row is None or row["revoked_at"] is not None:
        return None
    if not hmac.compare_digest(row["key_hash"], hash_key(presented.strip())):
        return None
    return ApiKey(row["id"], row["name"], row["scope"])


def still_active(db: Engine, key_id: int) -> ApiKey | None:
    """The key with id ``key_id`` if it is not revoked (a staff session names its key)."""
    with db.connect() as conn:
        row = store.api_key_by_id(conn, key_id)
    if row is None or row["revoked_at"] is not None:
        return None
    return ApiKey(row["id"], row["name"], row["scope"])
