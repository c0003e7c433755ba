"""Provider webhooks: SendGrid's signed Event Webhook (checked as SendGrid's own library checks
it, replays deduplicated) and Twilio's SMS status callback (X-Twilio-Signature)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sendgrid.helpers.eventwebhook import EventWebhook
from twilio.request_validator import RequestValidator

from journeys.store.tables import events, outbox, suppressions
from journeys.web.sendgrid import SignatureError, load_public_key, verify_signature
from web_helpers import (
    SECRET,
    WebEnv,
    add_customer,
    open_env,
    send_survey,
    sign_body,
    signing_key,
)


def _message_id(env: WebEnv, cid: str = "c-1") -> int:
    send_survey(env, cid)
    (row,) = env.rows(outbox, outbox.c.customer_id == cid, outbox.c.kind == "survey")
    return int(row["id"])


def _batch(message_id: int, prefix: str = "ev") -> list[dict[str, Any]]:
    base = {"email": "c-1@example.com", "timestamp": 1772500000, "message_id": str(message_id)}
    return [
        {**base, "event": "processed", "sg_event_id": f"{prefix}-1"},
        {**base, "event": "delivered", "sg_event_id": f"{prefix}-2", "response": "250 OK"},
        {**base, "event": "open", "sg_event_id": f"{prefix}-3"},
        {**base, "event": "click", "sg_event_id": f"{prefix}-4", "url": "https://shop/x"},
        {**base, "event": "spamreport", "sg_event_id": f"{prefix}-5"},
    ]


def _post(env: WebEnv, body: bytes, *, timestamp: str | None = None, sign: bool = True) -> Any:
    stamp = timestamp or str(int(env.clock.now().timestamp()))
    headers = {"Content-Type": "application/json"}
    if sign:
        headers["X-Twilio-Email-Event-Webhook-Signature"] = sign_body(env.private_key, body, stamp)
        headers["X-Twilio-Email-Event-Webhook-Timestamp"] = stamp
    return env.client.post("/webhooks/sendgrid", content=body, headers=headers)


def test_signed_events_become_email_events_of_our_message(web_env: WebEnv) -> None:
    message_id = _message_id(web_env)
    response = _post(web_env, json.dumps(_batch(message_id)).encode())
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 5, "duplicates": 0, "suppressed": 1, "skipped": 0}
    stored = {e["type"]: e for e in web_env.rows(events, events.c.type.like("email.%"))}
    assert set(stored) == {
        "email.processed",
        "email.delivered",
        "email.opened",
        "email.clicked",
        "email.complained",
    }
    click = stored["email.clicked"]
    assert click["customer_id"] == "c-1"
    assert click["id"] == "sendgrid:ev-4"
    assert click["data"] == {
        "message_id": str(message_id),
        "provider": "sendgrid",
        "url": "https://shop/x",
        "journey": "post-purchase",
        "step": "nps",
        "template": "nps_request",
    }
    assert click["occurred_at"].timestamp() == 1772500000
    assert [(s["customer_id"], s["reason"]) for s in web_env.rows(suppressions)] == [
        ("c-1", "complaint")
    ]
    web_env.tick()  # the runner matches them like any event
    assert all(e["processed_at"] for e in web_env.rows(events, events.c.type.like("email.%")))


def test_bounces_suppress_but_blocks_do_not(web_env_db: WebEnv) -> None:
    first, second = _message_id(web_env_db, "c-1"), _message_id(web_env_db, "c-2")
    batch = [
        {"event": "bounce", "sg_event_id": "b1", "timestamp": 1772500000,
         "message_id": str(first), "type": "bounce", "reason": "550 no such user",
         "status": "5.1.1"},
        {"event": "bounce", "sg_event_id": "b2", "timestamp": 1772500000,
         "message_id": str(second), "type": "blocked", "reason": "421 try later"},
    ]  # fmt: skip
    assert _post(web_env_db, json.dumps(batch).encode()).status_code == 200
    bounced = web_env_db.rows(events, events.c.type == "email.bounced")
    assert [(e["customer_id"], e["data"]["reason"], e["data"]["status"]) for e in bounced] == [
        ("c-1", "550 no such user", "5.1.1")
    ]
    assert [
        e["customer_id"] for e in web_env_db.rows(events, events.c.type == "email.blocked")
    ] == ["c-2"]
    assert [(s["customer_id"], s["reason"]) for s in web_env_db.rows(suppressions)] == [
        ("c-1", "bounced")
    ]


@pytest.mark.parametrize("deliveries", [1, 3, 46])
def test_the_same_batch_delivered_many_times_changes_state_once(
    web_env_db: WebEnv, deliveries: int
) -> None:
    message_id = _message_id(web_env_db)
    body = json.dumps(
        [
            *_batch(message_id),
            {
                "event": "unsubscribe",
                "sg_event_id": "u1",
                "timestamp": 1772500001,
                "message_id": str(message_id),
            },
        ]
    ).encode()
    answers = []
    for attempt in range(deliveries):
        web_env_db.clock.set(web_env_db.clock.now() + timedelta(seconds=attempt))  # a later retry
        answers.append(_post(web_env_db, body).json())
    assert answers[0] == {"accepted": 6, "duplicates": 0, "suppressed": 1, "skipped": 0}
    for later in answers[1:]:
        assert later == {"accepted": 0, "duplicates": 6, "suppressed": 0, "skipped": 0}
    assert len(web_env_db.rows(events, events.c.type.like("email.%"))) == 6
    assert len(web_env_db.rows(suppressions)) == 1
    web_env_db.tick()
    assert len(web_env_db.rows(suppressions)) == 1


def test_bad_signatures_tampered_bodies_and_stale_timestamps_are_refused(
    web_env: WebEnv,
) -> None:
    message_id = _message_id(web_env)
    body = json.dumps(_batch(message_id)).encode()
    now = str(int(web_env.clock.now().timestamp()))
    signature = sign_body(web_env.private_key, body, now)
    other_key, _ = signing_key()
    stale = str(int(web_env.clock.now().timestamp()) - 11 * 60)
    cases = {
        "unsigned": ({}, body),
        "tampered body": (
            {"signature": signature, "timestamp": now},
            body.replace(b'"open"', b'"click"'),
        ),
        "other key": ({"signature": sign_body(other_key, body, now), "timestamp": now}, body),
        "other timestamp": ({"signature": signature, "timestamp": str(int(now) + 1)}, body),
        "stale": ({"signature": sign_body(web_env.private_key, body, stale), "timestamp": stale},
                  body),
        "garbage signature": ({"signature": "%%%not-base64", "timestamp": now}, body),
    }  # fmt: skip
    for name, (headers, sent) in cases.items():
        wire = {"Content-Type": "application/json"}
        if headers:
            wire["X-Twilio-Email-Event-Webhook-Signature"] = headers["signature"]
            wire["X-Twilio-Email-Event-Webhook-Timestamp"] = headers["timestamp"]
        response = web_env.client.post("/webhooks/sendgrid", content=sent, headers=wire)
        assert response.status_code == 401, name
    assert web_env.rows(events, events.c.type.like("email.%")) == []
    assert web_env.rows(suppressions) == []


def test_signature_is_checked_before_the_body_is_read(web_env: WebEnv) -> None:
    response = _post(web_env, b"{not json", sign=False)
    assert response.status_code == 401
    signed_garbage = _post(web_env, b"{not json")
    assert signed_garbage.status_code == 400


def test_our_check_agrees_with_sendgrids_own_helper(web_env: WebEnv) -> None:
    private, public = signing_key()
    key = load_public_key(public)
    helper = EventWebhook(public)
    now = web_env.clock.now()
    stamp = str(int(now.timestamp()))
    body = json.dumps(_batch(7), ensure_ascii=False).encode()
    good = sign_body(private, body, stamp)
    other, _ = signing_key()
    variants = [
        (body, good, stamp),
        (body + b" ", good, stamp),
        (body, good, str(int(stamp) - 1)),
        (body, sign_body(other, body, stamp), stamp),
        ('[{"event":"open","n":"한국어"}]'.encode(), good, stamp),
    ]
    for sent, signature, timestamp in variants:
        theirs = helper.verify_signature(sent.decode(), signature, timestamp)
        try:
            verify_signature(key, sent, signature, timestamp, now)
            ours = True
        except SignatureError:
            ours = False
        assert ours == theirs
    assert helper.verify_signature(body.decode(), good, stamp) is True


def test_events_of_messages_we_did_not_send_are_skipped_not_retried(web_env: WebEnv) -> None:
    _message_id(web_env)
    batch = [
        {"event": "open", "sg_event_id": "x1", "timestamp": 1772500000, "message_id": "99999"},
        {"event": "open", "sg_event_id": "x2", "timestamp": 1772500000},
        {"event": "group_resubscribe", "sg_event_id": "x3", "timestamp": 1772500000},
        "not an object",
    ]
    response = _post(web_env, json.dumps(batch).encode())
    assert response.status_code == 200
    assert response.json()["skipped"] == 4
    assert web_env.rows(events, events.c.type.like("email.%")) == []


def test_without_a_public_key_the_webhook_says_it_is_not_configured(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOURNEYS_SECRET_KEY", SECRET)
    env = open_env(tmp_path / "p", sqlite_url)
    try:
        env.app.state.sendgrid_key = None
        response = env.client.post("/webhooks/sendgrid", content=b"[]")
        assert response.status_code == 503
        assert "webhook_public_key" in response.json()["error"]
    finally:
        env.client.close()
        env.service.close()


SMS_JOURNEY = """
journey: sms-thanks
name: Thanks by SMS
trigger: {event: order.placed}
steps:
  - id: text
    send: {template: thanks_feedback, channel: sms}
"""


@pytest.fixture
def sms_env(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("JOURNEYS_SECRET_KEY", SECRET)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "twilio-auth-token-for-tests")
    env = open_env(tmp_path / "sms", sqlite_url, extra_journeys={"sms-thanks": SMS_JOURNEY})
    add_customer(env.service, "c-1", phone="+15005550006")
    order = {
        "id": "o-1",
        "type": "order.placed",
        "customer_id": "c-1",
        "occurred_at": env.clock.now(),
        "data": {"total": 10},
    }
    env.service.ingest([order])
    env.tick()
    yield env
    env.client.close()
    env.service.close()


def _twilio(env: WebEnv, params: dict[str, str], query: str = "", token: str = "") -> Any:
    url = f"http://testserver/webhooks/twilio{query}"
    signature = RequestValidator(token or "twilio-auth-token-for-tests").compute_signature(
        url, params
    )
    return env.client.post(
        f"/webhooks/twilio{query}", data=params, headers={"X-Twilio-Signature": signature}
    )


def test_twilio_status_callbacks_become_sms_events(sms_env: WebEnv) -> None:
    (row,) = sms_env.rows(outbox, outbox.c.channel == "sms")
    query = f"?message_id={row['id']}"
    params = {"MessageSid": "SM1", "MessageStatus": "delivered", "AccountSid": "AC1"}
    assert _twilio(sms_env, params, query).status_code == 200
    assert _twilio(sms_env, params, query).json()["duplicates"] == 1
    (event,) = sms_env.rows(events, events.c.type == "sms.delivered")
    assert event["customer_id"] == "c-1"
    assert event["data"]["journey"] == "sms-thanks" and event["data"]["step"] == "text"
    stop = {"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "21610"}
    assert _twilio(sms_env, stop, query).status_code == 200
    assert [(s["channel"], s["reason"]) for s in sms_env.rows(suppressions)] == [
        ("sms", "unsubscribed")
    ]
    queued = {"MessageSid": "SM1", "MessageStatus": "queued"}
    assert _twilio(sms_env, queued, query).json() == {"accepted": 0, "skipped": 1}


def test_twilio_callbacks_with_a_wrong_signature_are_refused(sms_env: WebEnv) -> None:
    (row,) = sms_env.rows(outbox, outbox.c.channel == "sms")
    query = f"?message_id={row['id']}"
    params = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    assert _twilio(sms_env, params, query, token="another-token").status_code == 403
    tampered = sms_env.client.post(
        f"/webhooks/twilio{query}",
        data={**params, "MessageStatus": "failed"},
        headers={
            "X-Twilio-Signature": RequestValidator("twilio-auth-token-for-tests").compute_signature(
                f"http://testserver/webhooks/twilio{query}", params
            )
        },
    )
    assert tampered.status_code == 403
    assert sms_env.rows(events, events.c.type.like("sms.%")) == []
