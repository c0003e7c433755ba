"""Unsubscribe and preferences: GET only shows a page (scanners must not unsubscribe), the form
and RFC 8058's one-click POST unsubscribe at once, topics make a preference centre, and the
suppression stops the next marketing email."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from journeys.runtime.links import LinkKeys, unsubscribe_token
from journeys.store import web as store
from journeys.store.tables import events, outbox, suppressions, topic_optouts
from web_helpers import (
    SECRET,
    TOPICS,
    WebEnv,
    add_customer,
    form_value,
    open_env,
    path_of,
    send_survey,
    unsubscribe_link_in,
)


def _link(env: WebEnv, cid: str = "c-1", locale: str = "en", topic: str | None = None) -> str:
    add_customer(env.service, cid, locale)
    token = unsubscribe_token(LinkKeys(SECRET), cid, "email", topic, env.clock.now())
    return f"/unsubscribe/{token}"


def test_the_link_in_a_rendered_email_opens_the_preference_centre(web_env: WebEnv) -> None:
    send_survey(web_env)
    (row,) = web_env.rows(outbox, outbox.c.kind == "survey")
    link = path_of(unsubscribe_link_in(row["html"]))
    page = web_env.client.get(link)
    assert page.status_code == 200
    assert "Choose what you get from us" in page.text
    assert "c•••@example.com" in page.text
    assert "c-1@example.com" not in page.text
    assert page.text.count('type="checkbox"') == 2
    assert page.text.count(" checked") == 2
    assert "News once a month" in page.text
    # Showing the page changed nothing: link scanners follow every link.
    assert web_env.rows(suppressions) == []
    assert web_env.rows(topic_optouts) == []


def test_unsubscribe_from_all_records_one_suppression_and_one_event(web_env_db: WebEnv) -> None:
    link = _link(web_env_db)
    page = web_env_db.client.get(link)
    csrf = form_value(page.text, "csrf")
    for _ in range(2):
        done = web_env_db.client.post(link, data={"csrf": csrf, "action": "all"})
        assert done.status_code == 200
        assert "You are unsubscribed" in done.text
    assert [
        (s["customer_id"], s["channel"], s["reason"]) for s in web_env_db.rows(suppressions)
    ] == [("c-1", "email", "unsubscribed")]
    (event,) = web_env_db.rows(events, events.c.type == "email.unsubscribed")
    assert event["data"] == {"channel": "email", "source": "page"}
    again = web_env_db.client.get(link)
    assert "You are unsubscribed" in again.text
    assert 'type="checkbox"' not in again.text


def test_saving_topics_keeps_exactly_the_checked_ones(web_env_db: WebEnv) -> None:
    link = _link(web_env_db, locale="ko")
    page = web_env_db.client.get(link)
    assert "받고 싶은 소식을 골라 주세요" in page.text and "뉴스레터" in page.text
    csrf = form_value(page.text, "csrf")
    saved = web_env_db.client.post(
        link, data={"csrf": csrf, "action": "save", "topics": ["offers"]}
    )
    assert saved.status_code == 200
    assert "할인 및 쿠폰" in saved.text
    assert {r["topic"] for r in web_env_db.rows(topic_optouts)} == {"newsletter"}
    assert web_env_db.rows(suppressions) == []
    with web_env_db.service.db.connect() as conn:
        assert store.opted_out_customers(conn, ["c-1", "c-2"], "newsletter") == {"c-1"}
        assert store.opted_out_customers(conn, ["c-1"], "offers") == set()
    page = web_env_db.client.get(link)
    assert page.text.count(" checked") == 1
    # Rejoining the newsletter and leaving offers: two changes, two events.
    web_env_db.clock.set(web_env_db.clock.now() + timedelta(minutes=1))
    web_env_db.client.post(link, data={"csrf": csrf, "action": "save", "topics": ["newsletter"]})
    assert {r["topic"] for r in web_env_db.rows(topic_optouts)} == {"offers"}
    changes = web_env_db.rows(events, events.c.type.like("topic.%"))
    assert sorted((e["type"], e["data"]["topic"]) for e in changes) == [
        ("topic.subscribed", "newsletter"),
        ("topic.unsubscribed", "newsletter"),
        ("topic.unsubscribed", "offers"),
    ]


def test_one_click_post_unsubscribes_without_csrf(web_env: WebEnv) -> None:
    link = _link(web_env)
    response = web_env.client.post(
        link,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert [s["reason"] for s in web_env.rows(suppressions)] == ["unsubscribed"]
    (event,) = web_env.rows(events, events.c.type == "email.unsubscribed")
    assert event["data"]["source"] == "one-click"


def test_one_click_with_a_topic_leaves_only_that_topic(web_env: WebEnv) -> None:
    link = _link(web_env, topic="offers")
    response = web_env.client.post(link, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert {r["topic"] for r in web_env.rows(topic_optouts)} == {"offers"}
    assert web_env.rows(suppressions) == []


def test_browser_post_without_csrf_is_refused(web_env: WebEnv) -> None:
    link = _link(web_env)
    refused = web_env.client.post(link, data={"action": "all"}, headers={"Accept": "text/html"})
    assert refused.status_code == 403
    assert "This form has expired" in refused.text
    assert web_env.rows(suppressions) == []


def test_unsubscribe_stops_the_next_marketing_email(web_env: WebEnv) -> None:
    link = _link(web_env)
    csrf = form_value(web_env.client.get(link).text, "csrf")
    web_env.client.post(link, data={"csrf": csrf, "action": "all"})
    delivered = {
        "id": "delivered-c-1",
        "type": "order.delivered",
        "customer_id": "c-1",
        "occurred_at": web_env.clock.now(),
    }
    web_env.service.ingest([delivered])
    web_env.advance(timedelta(days=3, hours=1))
    (survey,) = web_env.rows(outbox, outbox.c.kind == "survey")
    assert survey["status"] == "suppressed"


def test_bad_expired_and_unknown_unsubscribe_links(web_env: WebEnv) -> None:
    link = _link(web_env, locale="ko")
    assert web_env.client.get(link + "x").status_code == 400
    bad_one_click = web_env.client.post(link + "x", data={"List-Unsubscribe": "One-Click"})
    assert bad_one_click.status_code == 400
    unknown = unsubscribe_token(LinkKeys(SECRET), "nobody", "email", None, web_env.clock.now())
    page = web_env.client.get(f"/unsubscribe/{unknown}")
    assert page.status_code == 404 and "could not find this subscription" in page.text
    web_env.clock.set(web_env.clock.now() + timedelta(days=200))
    still = web_env.client.get(link)  # unsubscribe links work well past 60 days
    assert still.status_code == 200
    web_env.clock.set(web_env.clock.now() + timedelta(days=200))
    expired = web_env.client.get(link)
    assert expired.status_code == 410
    assert "유효 기간이 지났어요" in expired.text
    assert web_env.rows(suppressions) == []


def test_without_topics_the_page_is_a_plain_confirmation(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOURNEYS_SECRET_KEY", SECRET)
    env = open_env(tmp_path / "plain", sqlite_url)
    try:
        link = _link(env)
        page = env.client.get(link)
        assert "Unsubscribe from our emails?" in page.text
        assert 'type="checkbox"' not in page.text
        csrf = form_value(page.text, "csrf")
        assert env.client.post(link, data={"csrf": csrf}).status_code == 200
        assert len(env.rows(suppressions)) == 1
    finally:
        env.client.close()
        env.service.close()


DEALS = """
journey: deals
name: Deals after delivery
trigger: {event: order.delivered}
steps:
  - id: offer
    send: {template: deal}
  - id: later
    wait: 1d
  - id: news
    send: {template: digest}
  - id: offer_again
    send: {template: deal}
"""
TOPIC_TEMPLATES = {
    "deal.html": "---\nsubject: A deal for you\ntopic: offers\n---\n"
    '<p>10% off. <a href="{{ unsubscribe_url }}">No more offers</a></p>\n',
    "digest.html": "---\nsubject: This month\ntopic: newsletter\n---\n<p>News</p>\n",
}


def test_a_template_topic_scopes_the_unsubscribe_link_and_holds_back_its_messages(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOURNEYS_SECRET_KEY", SECRET)
    env = open_env(
        tmp_path / "topics",
        sqlite_url,
        TOPICS,
        extra_journeys={"deals": DEALS},
        extra_templates=TOPIC_TEMPLATES,
    )
    try:
        add_customer(env.service, "c-1")
        delivered = {
            "id": "d-1",
            "type": "order.delivered",
            "customer_id": "c-1",
            "occurred_at": env.clock.now(),
            "data": {"order_id": "o-1"},
        }
        env.service.ingest([delivered])
        env.service.run_pass()  # rendered, not yet dispatched
        (offer,) = env.rows(outbox, outbox.c.journey == "deals")
        assert (offer["topic"], offer["status"]) == ("offers", "pending")
        header = re.search(r"<(http[^>]+/unsubscribe/[^>]+)>", offer["headers"]["List-Unsubscribe"])
        assert header and header[1] == unsubscribe_link_in(offer["html"])
        # One click in the mail client leaves the message's topic only ...
        one_click = env.client.post(path_of(header[1]), data={"List-Unsubscribe": "One-Click"})
        assert one_click.status_code == 200
        assert {r["topic"] for r in env.rows(topic_optouts)} == {"offers"}
        assert env.rows(suppressions) == []
        # ... so the offer rendered before the click does not go, and later offers neither,
        # while the newsletter still does.
        env.service.dispatch()
        (offer,) = env.rows(outbox, outbox.c.journey == "deals")
        assert offer["status"] == "suppressed" and "offers" in offer["error"]
        env.advance(timedelta(days=1, hours=1))
        sent = {
            r["step"]: (r["topic"], r["status"])
            for r in env.rows(outbox, outbox.c.journey == "deals")
        }
        assert sent["news"][0] == "newsletter" and sent["news"][1] != "suppressed"
        assert sent["offer_again"] == ("offers", "suppressed")
    finally:
        env.client.close()
        env.service.close()
