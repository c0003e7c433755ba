"""Unsubscribe and preferences: ``GET /unsubscribe/T`` (a page: link scanners must not
unsubscribe anyone) and ``POST /unsubscribe/T`` (the page's form, or RFC 8058's one-click POST
with the body ``List-Unsubscribe=One-Click``, which unsubscribes at once)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from journeys.runtime.links import UNSUBSCRIBE, BadToken, read_unsubscribe_token
from journeys.web.core import Subscriber, WebCore
from journeys.web.deps import get_core, link_error, page
from journeys.web.security import check_form, csrf_token

router = APIRouter(tags=["unsubscribe"])

ONE_CLICK = "One-Click"


def _open(request: Request, core: WebCore, token: str) -> Subscriber | BadToken | None:
    try:
        link = read_unsubscribe_token(core.read_link(UNSUBSCRIBE, token))
    except BadToken as exc:
        return exc
    return core.subscriber(link)


def _topics(core: WebCore, who: Subscriber) -> list[dict[str, object]]:
    if who.link.channel != "email":
        return []
    return [
        {
            "name": topic.name,
            "label": topic.label(who.locale),
            "description": topic.description(who.locale),
            "subscribed": topic.name not in who.opted_out,
        }
        for topic in core.config.topics.values()
    ]


@router.get(
    "/unsubscribe/{token}", response_class=HTMLResponse, summary="Unsubscribe confirmation page"
)
def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    """A confirmation page, or the preference centre when the project has topics."""
    core = get_core(request)
    who = _open(request, core, token)
    if not isinstance(who, Subscriber):
        return link_error(request, core, UNSUBSCRIBE, who)
    return page(
        request,
        "unsubscribe",
        who.locale,
        token=token,
        csrf=csrf_token(core.config.keys, token, core.now()),
        suppressed=who.suppressed,
        email_hint=who.email_hint,
        topics=_topics(core, who),
    )


@router.post(
    "/unsubscribe/{token}",
    response_model=None,
    summary="Unsubscribe (the page's form, or RFC 8058 one-click)",
)
def unsubscribe(
    request: Request,
    token: str,
    one_click: Annotated[str, Form(alias="List-Unsubscribe")] = "",
    csrf: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "all",
    topics: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
) -> Response:
    """One-click (``List-Unsubscribe=One-Click``): unsubscribe at once, from the link's topic
    if it names one. The page's form: ``action=all`` unsubscribes from every marketing message,
    ``action=save`` keeps exactly the checked ``topics``."""
    core = get_core(request)
    who = _open(request, core, token)
    if one_click:
        if not isinstance(who, Subscriber):
            status = 410 if isinstance(who, BadToken) and who.expired else 400
            return PlainTextResponse("this unsubscribe link is not valid", status_code=status)
        if one_click != ONE_CLICK:
            return PlainTextResponse("expected List-Unsubscribe=One-Click", status_code=400)
        topic = who.link.topic
        if topic and topic in core.config.topics:
            kept = set(core.config.topics) - set(who.opted_out) - {topic}
            core.set_topics(who.link, kept, source="one-click")
        else:
            core.unsubscribe(who.link, source="one-click")
        return PlainTextResponse("unsubscribed")
    if not isinstance(who, Subscriber):
        return link_error(request, core, UNSUBSCRIBE, who)
    check_form(request, core.config.keys, csrf, token, core.now())
    if action == "save" and core.config.topics:
        kept = [t for t in topics if t in core.config.topics]
        core.set_topics(who.link, kept, source="page")
        labels = [core.config.topics[t].label(who.locale) for t in core.config.topics if t in kept]
        return page(request, "unsubscribed", who.locale, action="save", kept=labels)
    core.unsubscribe(who.link, source="page")
    return page(request, "unsubscribed", who.locale, action="all", kept=[])
