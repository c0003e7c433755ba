"""The FastAPI application: :func:`create_app` over one journeys service.

``GET /`` and the staff pages are the dashboard (:func:`journeys.insight.dashboard.build_router`),
guarded by :func:`journeys.web.security.require_staff`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from journeys import __version__
from journeys.insight.dashboard import build_router
from journeys.web.config import WebConfig
from journeys.web.core import WebCore
from journeys.web.deps import page
from journeys.web.pages import Pages
from journeys.web.ratelimit import RateLimiter
from journeys.web.routers import health, intake, staff, survey, unsubscribe, webhooks
from journeys.web.security import SecurityMiddleware, require_staff
from journeys.web.sendgrid import WebhookKeyError, load_public_key
from journeys.web.server import redact

if TYPE_CHECKING:
    from journeys.service import JourneyService

log = logging.getLogger("journeys.web")

_MACHINE_PATHS = ("/v1/", "/webhooks/", "/healthz", "/openapi.json", "/docs", "/redoc")


class WebConfigError(ValueError):
    """A setting the web app cannot use; the message names it and the fix."""


def create_app(
    service: JourneyService,
    *,
    config: WebConfig | None = None,
    rate_clock: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """The web app over ``service`` (give it its own service: services are not shared across
    threads). ``config`` defaults to the project's settings and the environment."""
    config = config or WebConfig.from_settings(service.project.settings)
    app = FastAPI(
        title="journeys",
        version=__version__,
        summary="Survey answers, unsubscribes, provider webhooks and event intake.",
        description="See docs/web.md. `/v1/*` needs an API key (`journeys keys create`).",
    )
    app.state.core = WebCore(service, config)
    app.state.pages = Pages(service.project.templates.directory, config.default_locale)
    app.state.limiter = RateLimiter(config.rate_requests, config.rate_per, rate_clock)
    app.state.login_limiter = RateLimiter(10, 60.0, rate_clock)
    app.state.sendgrid_key = None
    if config.sendgrid_public_key:
        try:
            app.state.sendgrid_key = load_public_key(config.sendgrid_public_key)
        except WebhookKeyError as exc:
            raise WebConfigError(
                f"sendgrid.webhook_public_key (or $SENDGRID_WEBHOOK_PUBLIC_KEY): {exc}; copy "
                "the verification key from SendGrid's Mail Settings > Event Webhook"
            ) from None
    for module in (health, survey, unsubscribe, webhooks, intake, staff):
        app.include_router(module.router)
    if service.db is not None:  # the dashboard reads SQL (journeys.insight)
        app.include_router(
            build_router(
                service.db, require_staff, plans=service.project.plans, clock=service.clock
            ),
            include_in_schema=False,  # pages for people; the API contract stays the machine paths
        )
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _server_error)
    app.add_middleware(SecurityMiddleware, max_body=config.max_body)
    return app


def _wants_page(request: Request) -> bool:
    path = request.url.path
    if path.startswith(_MACHINE_PATHS):
        return False
    return "text/html" in request.headers.get("accept", "")


def _page_reason(status: int) -> str:
    if status == 403:
        return "form"
    if status in (404, 405):
        return "notfound"
    return "server" if status >= 500 else "request"


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    headers = dict(exc.headers or {})
    if exc.status_code in (301, 302, 303, 307, 308):
        return Response(status_code=exc.status_code, headers=headers)
    if _wants_page(request):
        response = page(
            request, "error", None, exc.status_code, reason=_page_reason(exc.status_code)
        )
        response.headers.update(headers)
        return response
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=headers)


async def _invalid_request(request: Request, exc: RequestValidationError) -> Response:
    if _wants_page(request):
        return page(request, "error", None, 422, reason="request")
    problems = [
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()
    ]
    return JSONResponse({"error": "invalid request", "problems": problems}, status_code=422)


async def _server_error(request: Request, exc: Exception) -> Response:
    # The path only, its token cut out: query strings and bodies hold tokens and personal data.
    log.error("%s %s failed: %s", request.method, redact(request.url.path), type(exc).__name__)
    log.debug("traceback", exc_info=exc)
    status = 503 if type(exc).__name__ == "OperationalError" else 500
    if _wants_page(request):
        return page(request, "error", None, status, reason="server")
    return JSONResponse({"error": "internal error; the request was not stored"}, status_code=status)
