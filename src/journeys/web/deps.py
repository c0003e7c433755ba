"""What routers share: the core and the pages of the app, and one way to answer with a page."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from journeys.runtime.links import SURVEY, BadToken
from journeys.web.core import WebCore
from journeys.web.pages import Pages


def get_core(request: Request) -> WebCore:
    """The app's :class:`~journeys.web.core.WebCore` (``Depends(get_core)``)."""
    core: WebCore = request.app.state.core
    return core


def page(
    request: Request, name: str, locale: str | None, status: int = 200, **context: Any
) -> HTMLResponse:
    """Page ``name`` in ``locale`` (the browser's language when None)."""
    core = get_core(request)
    pages: Pages = request.app.state.pages
    if locale is None:
        locale = pages.best_locale(request.headers.get("accept-language"))
    html = pages.render(name, locale, sender=core.config.sender_name, **context)
    return HTMLResponse(html, status_code=status)


def link_error(request: Request, core: WebCore, salt: str, exc: BadToken | None) -> HTMLResponse:
    """The friendly page of a link that does not work: expired (410, in the customer's
    language), tampered (400) or unknown (404), in the browser's language otherwise."""
    what = "survey" if salt == SURVEY else "unsubscribe"
    if exc is None:
        return page(request, "link_error", None, 404, reason="unknown", what=what)
    if exc.expired:
        locale = core.locale_of_payload(salt, exc.payload)
        return page(request, "link_error", locale, 410, reason="expired", what=what)
    return page(request, "link_error", None, 400, reason="invalid", what=what)
