"""Staff login for pages guarded by :func:`journeys.web.security.require_staff` (the
dashboard): a staff API key (``journeys keys create NAME --scope staff``) opens a session
cookie for twelve hours. Requests from this machine need no login."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from journeys.web.deps import get_core, page
from journeys.web.security import (
    STAFF_COOKIE,
    STAFF_MAX_AGE,
    check_form,
    csrf_token,
    staff_session,
)

router = APIRouter(prefix="/staff", tags=["staff"])

LOGIN_FORM = "staff-login"


def _safe_next(target: str) -> str:
    """Only paths on this site (no open redirect)."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


@router.get("/login", response_class=HTMLResponse, summary="Staff login page")
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    """A form that asks for a staff key."""
    core = get_core(request)
    csrf = csrf_token(core.config.keys, LOGIN_FORM, core.now())
    return page(request, "staff_login", None, next=_safe_next(next), csrf=csrf, error=False)


@router.post("/login", response_model=None, summary="Open a staff session")
def login(
    request: Request,
    key: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """Check the staff key and set the session cookie."""
    core = get_core(request)
    check_form(request, core.config.keys, csrf, LOGIN_FORM, core.now())
    client = request.client.host if request.client else "?"
    wait = request.app.state.login_limiter.take(client)
    if wait:
        retry = request.app.state.login_limiter.retry_after(wait)
        raise HTTPException(429, "too many attempts", headers={"Retry-After": retry})
    found = core.authenticate(key)
    if found is None or found.scope != "staff":
        fresh = csrf_token(core.config.keys, LOGIN_FORM, core.now())
        return page(
            request, "staff_login", None, 401, next=_safe_next(next), csrf=fresh, error=True
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        STAFF_COOKIE,
        staff_session(core.config.keys, found, core.now()),
        max_age=STAFF_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=core.config.base_url.startswith("https://") or request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout", response_model=None, summary="Close the staff session")
def logout() -> Response:
    """Forget the session cookie."""
    response = RedirectResponse("/staff/login", status_code=303)
    response.delete_cookie(STAFF_COOKIE, path="/")
    return response
