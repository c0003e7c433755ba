"""The survey pages: ``GET /survey?token=T[&score=N]`` and ``POST /survey``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from journeys.runtime.links import SURVEY, BadToken, read_survey_token
from journeys.web.core import SurveyView, WebCore
from journeys.web.deps import get_core, link_error, page
from journeys.web.security import check_form, csrf_token

router = APIRouter(tags=["survey"])


def _open(request: Request, core: WebCore, token: str) -> SurveyView | HTMLResponse:
    try:
        link = read_survey_token(core.read_link(SURVEY, token))
    except BadToken as exc:
        return link_error(request, core, SURVEY, exc)
    view = core.survey(link)
    return view if view is not None else link_error(request, core, SURVEY, None)


def _score(text: str, view: SurveyView) -> int | None:
    text = text.strip()
    if not text.isdigit() or int(text) not in view.scale:
        return None
    return int(text)


def _form(
    request: Request,
    core: WebCore,
    view: SurveyView,
    token: str,
    score: int | None,
    comment: str | None,
    *,
    error: bool = False,
) -> HTMLResponse:
    return page(
        request,
        "survey",
        view.locale,
        422 if error else 200,
        token=token,
        csrf=csrf_token(core.config.keys, token, core.now()),
        kind=view.kind,
        scale=list(view.scale),
        score=score,
        previous=view.score,
        comment=comment,
        error=error,
    )


@router.get("/survey", response_class=HTMLResponse, summary="The survey page of a signed link")
def survey_page(request: Request, token: str = "", score: str = "") -> HTMLResponse:
    """The question (NPS 0-10 or CSAT 1-5) in the customer's language, prefilled with
    ``score`` (as the email's buttons link) or the answer given before."""
    core = get_core(request)
    view = _open(request, core, token)
    if isinstance(view, HTMLResponse):
        return view
    chosen = _score(score, view)
    return _form(
        request, core, view, token, chosen if chosen is not None else view.score, view.comment
    )


@router.post("/survey", response_class=HTMLResponse, summary="Store a survey answer")
def survey_answer(
    request: Request,
    token: Annotated[str, Form()] = "",
    score: Annotated[str, Form()] = "",
    comment: Annotated[str, Form(max_length=10000)] = "",
    csrf: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """Store the answer as a ``survey.answered`` event (a second answer replaces the first)
    and thank the customer."""
    core = get_core(request)
    view = _open(request, core, token)
    if isinstance(view, HTMLResponse):
        return view
    check_form(request, core.config.keys, csrf, token, core.now())
    chosen = _score(score, view)
    if chosen is None:
        return _form(request, core, view, token, None, comment, error=True)
    first = core.answer(view, chosen, comment)
    return page(request, "thanks", view.locale, score=chosen, updated=not first)
