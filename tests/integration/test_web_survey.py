"""Survey pages: a link from a rendered NPS email opens the question in the customer's language,
the answer becomes one survey.answered event the journey reacts to, a second answer updates
the first, and every broken link gets a friendly page."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from journeys.runtime.links import SURVEY, LinkKeys, sign, survey_token
from journeys.service import JourneyService
from journeys.store.tables import enrollments, events, outbox, survey_answers
from journeys.web import create_app
from web_helpers import (
    SECRET,
    WebEnv,
    add_customer,
    form_value,
    open_env,
    path_of,
    send_survey,
    survey_link_in,
    token_of,
)


def _answer(env: WebEnv, link: str, score: str, comment: str = "") -> tuple[int, str]:
    page = env.client.get(path_of(link))
    assert page.status_code == 200, page.text
    response = env.client.post(
        "/survey",
        data={
            "token": token_of(link),
            "score": score,
            "comment": comment,
            "csrf": form_value(page.text, "csrf"),
        },
        headers={"Origin": "http://testserver"},
    )
    return response.status_code, response.text


def test_survey_page_in_english_with_the_nps_scale_prefilled(web_env: WebEnv) -> None:
    link = send_survey(web_env)
    page = web_env.client.get(path_of(link) + "&score=9")
    assert page.status_code == 200
    assert '<html lang="en">' in page.text
    assert "How likely are you to recommend Example Shop" in page.text
    for n in range(11):
        assert f'value="{n}"' in page.text
    assert 'value="9" required checked' in page.text
    assert page.text.count("checked") == 1
    assert 'name="comment"' in page.text
    assert "Content-Security-Policy" in page.headers
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert page.headers["Cache-Control"] == "no-store"
    assert "<script" not in page.text


def test_survey_page_in_korean_for_a_korean_customer(web_env: WebEnv) -> None:
    link = send_survey(web_env, "c-ko", locale="ko-KR")
    page = web_env.client.get(path_of(link), headers={"Accept-Language": "en"})
    assert '<html lang="ko">' in page.text
    assert "추천하실 가능성" in page.text
    assert "답변 보내기" in page.text


def test_an_out_of_scale_prefill_is_ignored(web_env: WebEnv) -> None:
    link = send_survey(web_env)
    for score in ("11", "-1", "abc", "3.5"):
        page = web_env.client.get(path_of(link) + f"&score={score}")
        assert page.status_code == 200
        assert "checked" not in page.text


def test_answer_becomes_one_event_and_the_detractor_path_alerts_support(web_env: WebEnv) -> None:
    link = send_survey(web_env)
    status, body = _answer(web_env, link, "3", "The parcel was damaged")
    assert status == 200
    assert "Thank you!" in body and "(3)" in body
    answered = web_env.rows(events, events.c.type == "survey.answered")
    assert len(answered) == 1
    assert answered[0]["data"] == {
        "journey": "post-purchase",
        "step": "nps",
        "score": 3,
        "comment": "The parcel was damaged",
    }
    stored = web_env.rows(survey_answers)
    assert [(a["score"], a["category"], a["comment"]) for a in stored] == [
        (3, "detractor", "The parcel was damaged")
    ]
    assert (stored[0]["sentiment"], stored[0]["keywords"]) == ("negative", ["parcel"])

    web_env.tick()
    alerts = web_env.rows(outbox, outbox.c.kind == "notify")
    assert [(a["template"], a["recipient"]) for a in alerts] == [
        ("detractor_alert", "support@example.com")
    ]
    assert "The parcel was damaged" in alerts[0]["html"]
    apology = web_env.rows(outbox, outbox.c.template == "apology")
    assert len(apology) == 1


def test_second_answer_updates_the_first_without_a_second_event(web_env_db: WebEnv) -> None:
    link = send_survey(web_env_db)
    assert _answer(web_env_db, link, "3")[0] == 200
    web_env_db.tick()  # the journey reacted to the 3
    status, body = _answer(web_env_db, link, "8", "changed my mind")
    assert status == 200
    assert "updated your answer (8)" in body
    assert len(web_env_db.rows(events, events.c.type == "survey.answered")) == 1
    stored = web_env_db.rows(survey_answers)
    assert [(a["score"], a["category"], a["comment"]) for a in stored] == [
        (8, "passive", "changed my mind")
    ]
    assert stored[0]["sentiment"] == "neutral"  # re-analysed with the new comment
    page = web_env_db.client.get(path_of(link))
    assert "You answered 8" in page.text
    assert 'value="8" required checked' in page.text


def test_second_answer_before_the_runner_saw_the_first_replaces_the_event(
    web_env_db: WebEnv,
) -> None:
    link = send_survey(web_env_db)
    _answer(web_env_db, link, "2")
    _answer(web_env_db, link, "10")
    (event,) = web_env_db.rows(events, events.c.type == "survey.answered")
    assert event["data"]["score"] == 10
    web_env_db.tick()
    # The journey reacts to the answer that stands: promoter, so a review ask, no alert.
    assert web_env_db.rows(outbox, outbox.c.kind == "notify") == []
    assert len(web_env_db.rows(outbox, outbox.c.template == "review_request")) == 1


def test_a_score_off_the_scale_shows_the_form_again(web_env: WebEnv) -> None:
    link = send_survey(web_env)
    status, body = _answer(web_env, link, "12", "kept comment")
    assert status == 422
    assert "Please choose a score from 0 to 10" in body
    assert "kept comment" in body
    assert web_env.rows(events, events.c.type == "survey.answered") == []


def test_post_without_csrf_or_from_another_site_is_refused(web_env: WebEnv) -> None:
    link = send_survey(web_env)
    token = token_of(link)
    page = web_env.client.get(path_of(link))
    csrf = form_value(page.text, "csrf")
    html = {"Accept": "text/html"}
    no_csrf = web_env.client.post("/survey", data={"token": token, "score": "5"}, headers=html)
    assert no_csrf.status_code == 403
    assert "This form has expired" in no_csrf.text
    cross = web_env.client.post(
        "/survey",
        data={"token": token, "score": "5", "csrf": csrf},
        headers={**html, "Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    other = send_survey(web_env, "c-2")
    other_csrf = form_value(web_env.client.get(path_of(other)).text, "csrf")
    wrong_page = web_env.client.post(
        "/survey", data={"token": token, "score": "5", "csrf": other_csrf}, headers=html
    )
    assert wrong_page.status_code == 403
    assert web_env.rows(events, events.c.type == "survey.answered") == []


def test_tampered_forged_and_padded_tokens_get_a_friendly_page(web_env: WebEnv) -> None:
    link = send_survey(web_env)
    token = token_of(link)
    payload, stamp, signature = token.split(".")
    other_enrollment = sign(
        LinkKeys("someone-elses-secret-" + "z" * 20),
        SURVEY,
        {"e": 1, "j": "x", "s": "y"},
        web_env.clock.now(),
    )
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    for bad in (
        token + "==",
        token + ".",
        " " + token,
        f"{payload}.{stamp}.{flipped}",
        f"{payload[:-1]}.{stamp}.{signature}",
        other_enrollment,
        "not-a-token",
        "",
    ):
        page = web_env.client.get("/survey", params={"token": bad})
        assert page.status_code == 400, bad
        assert "This link does not work" in page.text
        assert "Traceback" not in page.text
        post = web_env.client.post("/survey", data={"token": bad, "score": "9", "csrf": "x"})
        assert post.status_code == 400
    assert web_env.rows(events, events.c.type == "survey.answered") == []


def test_expired_link_gets_a_page_in_the_customers_language(web_env: WebEnv) -> None:
    link = send_survey(web_env, "c-ko", locale="ko")
    web_env.clock.set(web_env.clock.now() + timedelta(days=31))
    page = web_env.client.get(path_of(link), headers={"Accept-Language": "en"})
    assert page.status_code == 410
    assert '<html lang="ko">' in page.text
    assert "유효 기간이 지났어요" in page.text


def test_unknown_enrollment_gets_a_not_found_page(web_env: WebEnv) -> None:
    send_survey(web_env)
    keys = LinkKeys(SECRET)
    now = web_env.clock.now()
    for token in (
        survey_token(keys, 999, "post-purchase", "nps", now),  # no such enrollment
        survey_token(keys, 1, "post-purchase", "settle", now),  # not a survey step
        survey_token(keys, 1, "no-such-journey", "nps", now),
    ):
        page = web_env.client.get("/survey", params={"token": token})
        assert page.status_code == 404
        assert "could not find this survey" in page.text


def test_answer_after_the_survey_timed_out_is_kept_but_changes_no_journey(
    web_env: WebEnv,
) -> None:
    link = send_survey(web_env)
    web_env.advance(timedelta(days=8))  # within: 7d has passed
    with web_env.service.db.connect() as conn:
        status = conn.scalar(select(enrollments.c.status))
    assert status == "completed"
    assert _answer(web_env, link, "9")[0] == 200
    web_env.tick()
    assert len(web_env.rows(survey_answers)) == 1
    assert web_env.rows(outbox, outbox.c.template == "review_request") == []


CSAT_JOURNEY = """
journey: support-csat
name: Support satisfaction
trigger: {event: ticket.closed}
steps:
  - id: rate
    survey: {kind: csat, template: nps_request, within: 3d}
"""


def test_a_csat_survey_asks_1_to_5(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOURNEYS_SECRET_KEY", SECRET)
    env = open_env(tmp_path / "csat", sqlite_url, extra_journeys={"support-csat": CSAT_JOURNEY})
    try:
        add_customer(env.service, "c-1")
        closed = {"id": "t-1", "type": "ticket.closed", "customer_id": "c-1",
                  "occurred_at": env.clock.now()}  # fmt: skip
        env.service.ingest([closed])
        env.tick()
        (row,) = env.rows(outbox, outbox.c.kind == "survey")
        link = survey_link_in(row["html"])
        page = env.client.get(path_of(link))
        assert "How satisfied are you with Example Shop?" in page.text
        assert [f'value="{n}"' in page.text for n in range(7)] == [False] + [True] * 5 + [False]
        assert "1 = very unsatisfied" in page.text and "5 = very satisfied" in page.text
        assert _answer(env, link, "0")[0] == 422
        assert _answer(env, link, "5")[0] == 200
        assert [(a["kind"], a["category"]) for a in env.rows(survey_answers)] == [
            ("csat", "satisfied")
        ]
    finally:
        env.client.close()
        env.service.close()


def test_a_project_page_translates_the_survey(web_env: WebEnv) -> None:
    pages = web_env.root / "templates" / "pages"
    pages.mkdir()
    (pages / "survey.fr.html").write_text(
        '{% extends "_survey.html" %}\n'
        "{% block title %}Une question{% endblock %}\n"
        "{% block question %}Recommanderiez-vous {{ sender }} ?{% endblock %}\n"
        "{% block submit %}Envoyer{% endblock %}\n",
        encoding="utf-8",
    )
    fresh = create_app(
        JourneyService(web_env.service.db, web_env.service.project, clock=web_env.clock)
    )
    link = send_survey(web_env, "c-fr", locale="fr-CA")
    with TestClient(fresh, base_url="http://testserver") as client:
        page = client.get(path_of(link))
    assert '<html lang="fr">' in page.text
    assert "Recommanderiez-vous Example Shop ?" in page.text and "Envoyer" in page.text
