"""SMTP against aiosmtpd, Twilio and webhooks against local servers, and the channel factory."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from sqlalchemy import Engine

from delivery_helpers import START, delivery_settings, rows, seed_outbox, settle
from delivery_helpers import message as delivery_message
from journeys.channels.smtp_email import SmtpChannel
from journeys.channels.webhook import signature
from journeys.clock import VirtualClock
from journeys.delivery.dispatcher import dispatch
from journeys.delivery.factory import ChannelSetupError, build_channels
from journeys.testing.fake_providers import Credentials, FakeProviders, FaultPlan
from journeys.testing.shared_clock import SharedClock

CREDS = Credentials()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------ SMTP


class Mailbox:
    """An aiosmtpd handler: keeps what it queued, refuses some recipients."""

    def __init__(self) -> None:
        self.received: list[Envelope] = []

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 no such user here"
        if address.startswith("busy@"):
            return "451 4.3.0 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return f"250 2.0.0 queued as Q{len(self.received)}"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trusted(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Clients trust the test CA the way they trust real ones: through the default store."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


def _auth(
    server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"me", b"s3cret")
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server(ca: trustme.CA, trusted: None) -> Iterator[tuple[Controller, Mailbox]]:
    """STARTTLS required, then AUTH required."""
    box = Mailbox()
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=_free_port(),
        tls_context=_server_context(ca),
        require_starttls=True,
        authenticator=_auth,
        auth_required=True,
    )
    controller.start()
    yield controller, box
    controller.stop()


def test_smtp_with_starttls_and_login_sends_each_message_once(
    db_engine: Engine, smtp_server: tuple[Controller, Mailbox]
) -> None:
    controller, box = smtp_server
    ids = seed_outbox(db_engine, 2)
    seed_outbox(db_engine, 1, first=3, customer={"email": "nobody@example.com"})
    seed_outbox(db_engine, 1, first=4, customer={"email": "busy@example.com"})
    settings = delivery_settings(
        {"email": {"provider": "smtp", "host": "127.0.0.1", "port": controller.port, "user": "me"}},
        base_url="https://crm.example.com",
    )
    channels = build_channels(settings, env={"SMTP_PASSWORD": "s3cret"})
    dispatch(db_engine, channels, settings, VirtualClock(START))
    by_id = {r["id"]: r for r in rows(db_engine)}
    assert [by_id[i]["status"] for i in ids] == ["sent", "sent"]
    assert by_id[ids[0]]["provider_status"] == "250 2.0.0 queued as Q1"
    assert by_id[3]["status"] == "failed"
    assert by_id[3]["error"] == "SMTP server refused the recipient: 550 5.1.1 no such user here"
    assert by_id[4]["status"] == "pending" and "451 4.3.0" in by_id[4]["error"]  # retried later
    assert len(box.received) == 2
    mail = email.message_from_bytes(box.received[0].content, policy=email.policy.default)
    assert mail["To"] == "person1@example.com"
    assert mail["From"] == "Example Shop <shop@example.com>"
    assert mail["X-Journeys-Message-Id"] == str(ids[0])
    assert mail["Message-ID"] == by_id[ids[0]]["provider_id"]
    assert mail["List-Unsubscribe"].startswith("<https://crm.example.com/unsubscribe/")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    parts = [p.get_content_type() for p in mail.walk() if not p.is_multipart()]
    assert parts == ["text/plain", "text/html"]


def test_smtp_refuses_a_wrong_password_for_good(
    smtp_server: tuple[Controller, Mailbox], trusted: None
) -> None:
    controller, box = smtp_server
    channel = SmtpChannel("127.0.0.1", controller.port, user="me", password="wrong")
    message = delivery_message(1, html="")
    [result] = channel.send_batch([message])
    assert not result.retryable and "535" in str(result)  # type: ignore[union-attr]
    assert box.received == []


def test_smtp_over_ssl_and_an_unreachable_server(ca: trustme.CA, trusted: None) -> None:
    box = Mailbox()
    controller = Controller(
        box, hostname="127.0.0.1", port=_free_port(), ssl_context=_server_context(ca)
    )
    controller.start()
    try:
        channel = SmtpChannel("127.0.0.1", controller.port, security="ssl")
        message = delivery_message(7)
        [sent] = channel.send_batch([message])
        assert sent.provider_id and len(box.received) == 1  # type: ignore[union-attr]
    finally:
        controller.stop()
    [down] = SmtpChannel("127.0.0.1", _free_port(), security="none").send_batch([message])
    assert down.retryable and not down.attempted and "cannot connect" in str(down)  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------- Twilio


@pytest.fixture
def fake() -> Iterator[FakeProviders]:
    with FakeProviders(CREDS) as server:
        yield server


TWILIO_ENV = {"TWILIO_ACCOUNT_SID": CREDS.twilio_sid, "TWILIO_AUTH_TOKEN": CREDS.twilio_token}


def test_twilio_sends_e164_numbers_and_skips_the_others(
    db_engine: Engine, fake: FakeProviders
) -> None:
    ids = seed_outbox(db_engine, 2, channel="sms")
    [bad] = seed_outbox(db_engine, 1, first=3, channel="sms", customer={"phone": "12345"})
    settings = delivery_settings(
        {"sms": {"provider": "twilio", "from": "+15005550006", "host": fake.url}}
    )
    dispatch(db_engine, build_channels(settings, env=TWILIO_ENV), settings, VirtualClock(START))
    by_id = {r["id"]: r for r in rows(db_engine)}
    assert [by_id[i]["status"] for i in ids] == ["sent", "sent"]
    assert (
        by_id[ids[0]]["provider_id"].startswith("SM")
        and by_id[ids[0]]["provider_status"] == "queued"
    )
    assert by_id[bad]["status"] == "failed" and by_id[bad]["error"].startswith(
        "skipped: phone '12345'"
    )
    accepted = fake.stats()["accepted"]
    assert set(accepted) == {f"{by_id[i]['recipient']}|Hello Person{i}\n" for i in ids}
    form = fake.bodies(f"{by_id[ids[0]]['recipient']}|Hello Person{ids[0]}\n")[0]["body"]
    assert form["From"] == "+15005550006" and form["To"] == "+14155550001"


def test_twilio_waits_after_a_429_and_refuses_a_wrong_token(db_engine: Engine) -> None:
    clock = SharedClock(START)
    try:
        first = seed_outbox(db_engine, 2, channel="sms")[0]
        key = f"+1415555{first:04d}|Hello Person{first}\n"
        with FakeProviders(
            CREDS, FaultPlan(script={key: ["429"]}, reset=(3, 3)), clock_name=clock.name
        ) as fake:
            settings = delivery_settings(
                {
                    "sms": {
                        "provider": "twilio",
                        "messaging_service_sid": "MG1",
                        "host": fake.url,
                        "concurrency": 1,
                    }
                }
            )
            settle(
                db_engine, build_channels(settings, clock=clock, env=TWILIO_ENV), settings, clock
            )
            requests = fake.stats()["requests"]
            assert [r["outcome"] for r in requests] == ["429", "accept", "accept"]
            assert requests[1]["at"] >= requests[0]["reset"]
            assert fake.bodies(key)[0]["body"]["MessagingServiceSid"] == "MG1"
            wrong = {**TWILIO_ENV, "TWILIO_AUTH_TOKEN": "nope"}
            [third] = seed_outbox(db_engine, 1, first=3, channel="sms")
            dispatch(db_engine, build_channels(settings, clock=clock, env=wrong), settings, clock)
            error = {r["id"]: r["error"] for r in rows(db_engine)}[third]
            assert (
                error
                == "Twilio answered 401: Unable to create record: Authenticate (Twilio error 20003)"
            )
    finally:
        clock.close()


# --------------------------------------------------------------------------------- webhook


def test_team_webhooks_are_signed_and_slack_gets_its_own_json(
    db_engine: Engine, fake: FakeProviders
) -> None:
    support = f"{fake.url}/hooks/support"
    slack = f"{fake.url}/slack/alerts"
    settings = delivery_settings(
        {"email": {"provider": "console"}},
        teams={
            "support": {"channel": "webhook", "url": support},
            "alerts": {"channel": "webhook", "url": slack, "format": "slack"},
        },
    )
    signed = seed_outbox(
        db_engine,
        1,
        channel="webhook",
        kind="notify",
        step="alert",
        customer={"email": "x@example.com"},
    )
    posted = seed_outbox(db_engine, 1, first=2, channel="webhook", kind="notify", step="alert")
    with db_engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE outbox SET recipient = '{support}' WHERE id = {signed[0]}")
        conn.exec_driver_sql(f"UPDATE outbox SET recipient = '{slack}' WHERE id = {posted[0]}")
    env = {"JOURNEYS_WEBHOOK_SECRET": CREDS.webhook_secret}
    dispatch(db_engine, build_channels(settings, env=env), settings, VirtualClock(START))
    assert {r["status"] for r in rows(db_engine)} == {"sent"}
    [hook] = fake.bodies(str(signed[0]))
    assert hook["body"]["message_id"] == str(signed[0])
    assert hook["body"]["journey"] == "cart" and hook["body"]["subject"] == "Hello Person1"
    assert hook["path"] == "/hooks/support" and fake.stats()["problems"] == []
    [slack_post] = [v for k, v in fake.stats()["accepted"].items() if k != str(signed[0])]
    assert slack_post == 1


def test_a_webhook_with_a_wrong_secret_or_an_unknown_url_fails(
    db_engine: Engine, fake: FakeProviders
) -> None:
    url = f"{fake.url}/hooks/support"
    settings = delivery_settings({}, teams={"support": {"channel": "webhook", "url": url}})
    [wrong, stray] = seed_outbox(db_engine, 2, channel="webhook", kind="notify")
    with db_engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE outbox SET recipient = '{url}' WHERE id = {wrong}")
        conn.exec_driver_sql(
            f"UPDATE outbox SET recipient = 'https://evil.example/x' WHERE id = {stray}"
        )
    env = {"JOURNEYS_WEBHOOK_SECRET": "not-the-secret"}
    dispatch(db_engine, build_channels(settings, env=env), settings, VirtualClock(START))
    errors = {r["id"]: (r["status"], r["error"]) for r in rows(db_engine)}
    assert errors[wrong] == ("failed", "the webhook answered 401: bad signature")
    assert errors[stray] == ("failed", "https://evil.example/x is not a configured webhook URL")


def test_the_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    assert signature("key", "1767225600", b'{"a":1}') == (
        "sha256=" + __import__("hmac").new(b"key", b'1767225600.{"a":1}', "sha256").hexdigest()
    )


# --------------------------------------------------------------------------------- factory


def test_every_missing_secret_is_named_at_once() -> None:
    settings = delivery_settings(
        {
            "email": {"provider": "smtp", "host": "mail.example.com", "user": "me"},
            "sms": {"provider": "twilio", "from": "+15005550006"},
            "webhook": {"provider": "webhook", "url": "https://hooks.example.com/x"},
        },
        teams={
            "slack": {"channel": "webhook", "url": "https://hooks.slack.com/x", "format": "slack"}
        },
    )
    with pytest.raises(ChannelSetupError) as caught:
        build_channels(settings, env={})
    assert caught.value.problems == [
        "channels.email (smtp): set $SMTP_PASSWORD (the SMTP password)",
        "channels.sms (twilio): set $TWILIO_ACCOUNT_SID (the Twilio account SID)",
        "channels.sms (twilio): set $TWILIO_AUTH_TOKEN (the Twilio auth token)",
        "channels.webhook (webhook): set $JOURNEYS_WEBHOOK_SECRET (the signing secret)",
    ]


def test_a_prefect_secret_block_can_hold_the_sendgrid_key() -> None:
    settings = delivery_settings({"email": {"provider": "sendgrid", "secret_block": "sg-key"}})
    asked: list[str] = []

    def block(name: str) -> str:
        asked.append(name)
        return "SG.from-the-block"

    channels = build_channels(settings, env={}, secret_block=block)
    assert asked == ["sg-key"] and channels["email"].provider == "sendgrid"  # type: ignore[attr-defined]

    def broken(name: str) -> str:
        raise RuntimeError("no such block")

    with pytest.raises(ChannelSetupError, match="cannot read the Prefect Secret block 'sg-key'"):
        build_channels(settings, env={}, secret_block=broken)


def test_no_channels_means_the_console_for_everything() -> None:
    channels = build_channels(delivery_settings({}))
    assert {channels[n].provider for n in ("email", "sms", "push", "webhook", "console")} == {  # type: ignore[attr-defined]
        "console"
    }
