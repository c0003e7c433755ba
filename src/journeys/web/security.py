"""Request-level safety of the web app: security headers, body size limit, CSRF on browser
forms, API key authentication with rate limits, and the staff-page guard.

- Every response says ``nosniff`` and ``Referrer-Policy: same-origin`` (a page's URL carries a
  link token that must not leak to another site); HTML pages get a strict
  ``Content-Security-Policy`` (no scripts at all, unless the page sets its own: the dashboard's
  allows its vendored chart scripts), ``X-Frame-Options: DENY`` and
  ``Cache-Control: no-store``.
- Bodies larger than ``web.max_body_kb`` get 413 before they are read in full.
- Forms a browser posts (survey, unsubscribe, staff login) carry a CSRF token bound to the
  page's link token and signed with the link secret, and a cross-site ``Origin`` or
  ``Sec-Fetch-Site`` is refused. The RFC 8058 one-click unsubscribe POST has none, by design.
- ``/v1/*`` needs an API key (``Authorization: Bearer <key>``, or Segment's Basic auth with the
  key as user name); each key has its own rate limit (429 with ``Retry-After``).
- :func:`require_staff`: staff pages (the dashboard) are open from this machine
  (``127.0.0.1``/``::1``, when no proxy header says the request came from elsewhere; see
  ``web.trust_localhost``) and need a staff key otherwise (Bearer, or the session cookie that
  ``/staff/login`` sets).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from journeys.runtime.links import BadToken, LinkKeys, sign, verify
from journeys.web.keys import ApiKey

if TYPE_CHECKING:
    from journeys.web.core import WebCore
    from journeys.web.ratelimit import RateLimiter

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSRF = "journeys.csrf"
STAFF_SESSION = "journeys.staff"
STAFF_COOKIE = "journeys_staff"
CSRF_MAX_AGE = 24 * 3600
"""A form may be submitted up to a day after the page was shown."""
STAFF_MAX_AGE = 12 * 3600
"""A staff session lasts twelve hours."""

PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_DOCS = ("/docs", "/redoc")  # FastAPI's API docs load their own scripts


class BodyTooLarge(HTTPException):
    """A request body over the limit (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit // 1024} KB")


class SecurityMiddleware:
    """Security headers on every response and the body size limit on every request."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await _plain(send, 413, f"request body larger than {self.max_body // 1024} KB")
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        docs = str(scope.get("path", "")).startswith(_DOCS)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                kind = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    # Our own form posts may carry the page's URL (and a real Origin, which
                    # browsers replace by "null" under no-referrer); other sites get nothing.
                    (b"referrer-policy", b"same-origin"),
                ]
                own_csp = any(k.lower() == b"content-security-policy" for k, _ in headers)
                if kind.startswith(b"text/html") and not docs:
                    csp = [] if own_csp else [(b"content-security-policy", PAGE_CSP.encode())]
                    extra += [
                        *csp,
                        (b"x-frame-options", b"DENY"),
                        (b"cache-control", b"no-store"),
                        (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
                    ]
                message["headers"] = headers + extra
            await send(message)

        await self.app(scope, limited, with_headers)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1").strip())
    return None


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# ----------------------------------------------------------------------------------- CSRF


def _bound(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def csrf_token(keys: LinkKeys, bound_to: str, now: datetime) -> str:
    """A CSRF token for a form about ``bound_to`` (the page's link token)."""
    return sign(keys, CSRF, {"b": _bound(bound_to)}, now)


def check_form(request: Request, keys: LinkKeys, token: str, bound_to: str, now: datetime) -> None:
    """Refuse (403) a browser form post that another site made, or whose CSRF token was not
    made for this page."""
    if request.headers.get("sec-fetch-site", "") == "cross-site":
        raise HTTPException(403, "cross-site form posts are refused")
    origin = request.headers.get("origin")
    # "null" (privacy modes, sandboxed frames) proves nothing either way: the token decides.
    if origin not in (None, "null") and origin not in _own_origins(request):
        raise HTTPException(403, "form posted from another site")
    try:
        payload = verify(keys, CSRF, token, max_age=CSRF_MAX_AGE, now=now)
    except BadToken:
        raise HTTPException(
            403, "the form has expired or was not made here; reload the page"
        ) from None
    if payload.get("b") != _bound(bound_to):
        raise HTTPException(403, "the form was made for another page; reload the page")


def _own_origins(request: Request) -> set[str]:
    core: WebCore = request.app.state.core
    url = request.url
    own = {f"{url.scheme}://{url.netloc}"}
    base = urlsplit(core.config.base_url)
    if base.scheme and base.netloc:
        own.add(f"{base.scheme}://{base.netloc}")
    return own


# ------------------------------------------------------------------------------- API keys


def presented_key(request: Request) -> str | None:
    """The key in ``Authorization``: ``Bearer <key>``, or Basic with the key as user name
    (Segment's write key)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, password = decoded.partition(":")
        return user or password or None
    return None


async def require_api_key(request: Request) -> ApiKey:
    """The ``events`` key a ``/v1`` request authenticates with; 401 without a valid one, 429
    when the key is over its rate limit."""
    core: WebCore = request.app.state.core
    limiter: RateLimiter = request.app.state.limiter
    presented = presented_key(request)
    key = await run_in_threadpool(core.authenticate, presented) if presented else None
    if key is None or key.scope != "events":
        raise HTTPException(
            401,
            "a valid API key is required: Authorization: Bearer <key> (journeys keys create)",
            headers={"WWW-Authenticate": 'Bearer realm="journeys", Basic realm="journeys"'},
        )
    wait = limiter.take(key.id)
    if wait:
        raise HTTPException(
            429,
            f"rate limit of key {key.name!r} exceeded; retry later",
            headers={"Retry-After": limiter.retry_after(wait)},
        )
    return key


# --------------------------------------------------------------------------------- staff


def is_local(request: Request, trust_localhost: bool) -> bool:
    """A request from this machine that no proxy forwarded."""
    if not trust_localhost or request.client is None:
        return False
    if any(h in request.headers for h in ("forwarded", "x-forwarded-for", "x-real-ip")):
        return False
    try:
        return ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return request.client.host == "testclient"  # Starlette's TestClient, always local


def staff_session(keys: LinkKeys, key: ApiKey, now: datetime) -> str:
    """The session cookie value for a staff key."""
    return sign(keys, STAFF_SESSION, {"k": key.id}, now)


async def require_staff(request: Request) -> ApiKey | None:
    """Guard of staff pages: ``Depends(require_staff)``. None for a local request, else the
    staff key; a browser without one is sent to ``/staff/login``, others get 401."""
    core: WebCore = request.app.state.core
    if is_local(request, core.config.trust_localhost):
        return None
    key: ApiKey | None = None
    presented = presented_key(request)
    if presented:
        key = await run_in_threadpool(core.authenticate, presented)
    elif cookie := request.cookies.get(STAFF_COOKIE):
        try:
            payload = verify(
                core.config.keys, STAFF_SESSION, cookie, max_age=STAFF_MAX_AGE, now=core.now()
            )
            if isinstance(payload.get("k"), int):
                key = await run_in_threadpool(core.staff_key, payload["k"])
        except BadToken:
            key = None
    if key is not None and key.scope == "staff":
        return key
    if "text/html" in request.headers.get("accept", ""):
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        raise HTTPException(
            303, "log in first", headers={"Location": f"/staff/login?next={target}"}
        )
    raise HTTPException(
        401, "a staff key is required", headers={"WWW-Authenticate": 'Bearer realm="journeys"'}
    )
