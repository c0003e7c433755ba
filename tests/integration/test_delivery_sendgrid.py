"""The SendGrid channel and the dispatcher: the official client against a local server that
speaks /v3/mail/send (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from delivery_helpers import START, delivery_settings, message, rows, seed_outbox, settle, statuses
from journeys.channels.sendgrid_email import DEFAULT_HOST, SendGridChannel
from journeys.delivery.dispatcher import dispatch
from journeys.delivery.factory import ChannelSetupError, build_channels
from journeys.testing.fake_providers import Credentials, FakeProviders, FaultPlan
from journeys.testing.shared_clock import SharedClock

CREDS = Credentials()
ENV = {"SENDGRID_API_KEY": CREDS.sendgrid_key}


@pytest.fixture
def clock() -> Iterator[SharedClock]:
    shared = SharedClock(START)
    yield shared
    shared.close()


@pytest.fixture
def provider(clock: SharedClock) -> Iterator[Callable[..., FakeProviders]]:
    """``provider(plan)`` starts a fake SendGrid in this virtual time; stopped afterwards."""
    started: list[FakeProviders] = []

    def start(plan: FaultPlan | None = None) -> FakeProviders:
        fake = FakeProviders(CREDS, plan, clock_name=clock.name)
        fake.start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()


def sendgrid(fake: FakeProviders, **options: Any) -> dict[str, Any]:
    return {"email": {"provider": "sendgrid", "host": fake.url, **options}}


def setup(fake: FakeProviders, clock: SharedClock, **options: Any) -> tuple[Any, Any]:
    settings = delivery_settings(
        sendgrid(fake, **options),
        base_url="https://crm.example.com",
        sender_reply_to="help@example.com",
    )
    return settings, build_channels(settings, clock=clock, env=ENV)


def test_each_message_is_one_request_with_our_headers_and_no_personal_data(
    db_engine: Engine, provider: Callable[..., FakeProviders], clock: SharedClock
) -> None:
    fake = provider()
    marketing = seed_outbox(db_engine, 3)
    receipt = seed_outbox(db_engine, 1, first=4, message_kind="transactional", step="receipt")
    settings, channels = setup(fake, clock)
    report = dispatch(db_engine, channels, settings, clock)
    assert report.sent == 4 and report.calls == 4
    assert fake.stats()["problems"] == []
    stored = {r["id"]: r for r in rows(db_engine)}
    for outbox_id in [*marketing, *receipt]:
        [request] = fake.bodies(str(outbox_id))
        body = request["body"]
        assert request["headers"]["authorization"] == f"Bearer {CREDS.sendgrid_key}"
        assert body["custom_args"] == {"message_id": str(outbox_id)}
        assert body["categories"] == ["cart", stored[outbox_id]["step"]]
        assert body["from"] == {"email": "shop@example.com", "name": "Example Shop"}
        assert body["reply_to"] == {"email": "help@example.com"}
        assert body["personalizations"] == [{"to": [{"email": stored[outbox_id]["recipient"]}]}]
        assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
        assert "mail_settings" not in body
        assert stored[outbox_id]["status"] == "sent"
        assert stored[outbox_id]["provider_id"] == request["provider_id"]
        assert stored[outbox_id]["provider_status"] == "202"
        assert stored[outbox_id]["attempts"] == 1
    for outbox_id in marketing:
        headers = fake.bodies(str(outbox_id))[0]["body"]["headers"]
        assert headers["List-Unsubscribe"].startswith("<https://crm.example.com/unsubscribe/")
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "headers" not in fake.bodies(str(receipt[0]))[0]["body"]


def test_a_wrong_key_fails_at_once_with_sendgrids_message(
    db_engine: Engine, provider: Callable[..., FakeProviders], clock: SharedClock
) -> None:
    fake = provider()
    [_outbox_id] = seed_outbox(db_engine, 1)
    settings = delivery_settings(sendgrid(fake))
    channels = build_channels(settings, clock=clock, env={"SENDGRID_API_KEY": "SG.wrong"})
    settle(db_engine, channels, settings, clock)
    [row] = rows(db_engine)
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert row["error"] == (
        "SendGrid answered 401: The provided authorization grant is invalid, expired, or revoked"
    )
    assert fake.stats()["accepted"] == {} and len(fake.stats()["requests"]) == 0


def test_sandbox_mode_and_the_host_setting(
    db_engine: Engine, provider: Callable[..., FakeProviders], clock: SharedClock
) -> None:
    fake = provider()
    [outbox_id] = seed_outbox(db_engine, 1)
    settings, channels = setup(fake, clock, sandbox=True)
    dispatch(db_engine, channels, settings, clock)
    body = fake.bodies(str(outbox_id))[0]["body"]
    assert body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    eu = delivery_settings(
        {"email": {"provider": "sendgrid", "host": "https://api.eu.sendgrid.com"}}
    )
    assert build_channels(eu, env=ENV)["email"].host == "https://api.eu.sendgrid.com"  # type: ignore[attr-defined]
    plain = delivery_settings({"email": {"provider": "sendgrid"}})
    assert build_channels(plain, env=ENV)["email"].host == DEFAULT_HOST  # type: ignore[attr-defined]
    with pytest.raises(ChannelSetupError, match=r"set \$SENDGRID_API_KEY"):
        build_channels(plain, env={})
    assert CREDS.sendgrid_key not in repr(build_channels(plain, env=ENV)["email"])


def test_a_429_holds_every_call_until_the_reset(
    db_engine: Engine, provider: Callable[..., FakeProviders], clock: SharedClock
) -> None:
    ids = seed_outbox(db_engine, 6)
    fake = provider(FaultPlan(script={str(ids[1]): ["429"]}, reset=(2.0, 2.0)))
    settings, channels = setup(fake, clock, concurrency=1, batch=3)
    settle(db_engine, channels, settings, clock)
    requests = fake.stats()["requests"]
    [limited] = [r for r in requests if r["outcome"] == "429"]
    assert limited["reset"] == START.timestamp() + 2
    later = [r for r in requests if r["seq"] > limited["seq"]]
    assert later and all(r["at"] >= limited["reset"] for r in later)
    assert fake.stats()["accepted"] == {str(i): 1 for i in ids}
    assert set(statuses(db_engine).values()) == {"sent"}
    assert {r["id"]: r["attempts"] for r in rows(db_engine)}[ids[1]] == 1  # a 429 is no failure


def test_5xx_backs_off_exponentially_then_fails(
    db_engine: Engine, provider: Callable[..., FakeProviders], clock: SharedClock
) -> None:
    [outbox_id] = seed_outbox(db_engine, 1)
    fake = provider(FaultPlan(script={str(outbox_id): ["500"] * 4}))
    settings, channels = setup(fake, clock, retry={"attempts": 4, "backoff": "10s"})
    settle(db_engine, channels, settings, clock)
    times = [r["at"] - START.timestamp() for r in fake.stats()["requests"]]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == 4
    # Equal jitter: each wait is between half and all of 10 s, 20 s, 40 s.
    assert [5 <= gaps[0] <= 10, 10 <= gaps[1] <= 20, 20 <= gaps[2] <= 40] == [True] * 3
    [row] = rows(db_engine)
    assert (row["status"], row["attempts"]) == ("failed", 4)
    assert row["error"] == (
        "gave up after 4 attempts: SendGrid answered 500: internal error, try again later"
    )


def test_a_refused_message_fails_at_once_with_the_providers_reason(
    db_engine: Engine, provider: Callable[..., FakeProviders], clock: SharedClock
) -> None:
    fake = provider()
    seed_outbox(db_engine, 1)
    with db_engine.begin() as conn:
        conn.exec_driver_sql("UPDATE outbox SET subject = ''")
    settings, channels = setup(fake, clock)
    settle(db_engine, channels, settings, clock)
    [row] = rows(db_engine)
    assert (row["status"], row["error"]) == (
        "failed",
        "SendGrid answered 400: The subject is required. (subject)",
    )


def test_a_time_out_is_unknown_at_most_once_and_retried_at_least_once(
    db_engine: Engine, provider: Callable[..., FakeProviders], clock: SharedClock
) -> None:
    marketing = seed_outbox(db_engine, 1)
    receipt = seed_outbox(db_engine, 1, first=2, message_kind="transactional")
    hang = {str(marketing[0]): ["hang"], str(receipt[0]): ["hang"]}
    fake = provider(FaultPlan(script=hang))
    settings, channels = setup(fake, clock, timeout=0.3, retry={"backoff": "5s"})
    settle(db_engine, channels, settings, clock)
    by_id = {r["id"]: r for r in rows(db_engine)}
    # Marketing defaults to at most once: the provider may have it, so it is not resent.
    assert by_id[marketing[0]]["status"] == "unknown"
    assert "no answer from SendGrid within 0.3s" in by_id[marketing[0]]["error"]
    # Transactional defaults to at least once: resent after the backoff.
    assert (by_id[receipt[0]]["status"], by_id[receipt[0]]["attempts"]) == ("sent", 2)
    assert fake.stats()["accepted"] == {str(receipt[0]): 1}


def test_a_client_side_rate_limit_spaces_the_calls(
    db_engine: Engine, provider: Callable[..., FakeProviders], clock: SharedClock
) -> None:
    seed_outbox(db_engine, 7)
    fake = provider()
    settings, channels = setup(fake, clock, rate_limit={"messages": 2, "per": "1s"})
    settle(db_engine, channels, settings, clock)
    times = sorted(r["at"] for r in fake.stats()["requests"])
    assert len(times) == 7 and times[0] == START.timestamp()
    # Never more than 2 calls in any second.
    assert all(b - a >= 1.0 - 1e-6 for a, b in zip(times, times[2:], strict=False))
    assert times[-1] - times[0] <= 3.0 + 1e-6  # and no slower than the limit


def test_a_long_reset_leaves_the_channel_for_a_later_dispatch(
    db_engine: Engine, provider: Callable[..., FakeProviders], clock: SharedClock
) -> None:
    ids = seed_outbox(db_engine, 5)
    fake = provider(FaultPlan(script={str(ids[0]): ["429"]}, reset=(60.0, 60.0)))
    settings, channels = setup(fake, clock, concurrency=1, batch=2)
    first = dispatch(db_engine, channels, settings, clock)
    assert first.deferred == {"email": START + timedelta(seconds=60)}
    assert len(fake.stats()["requests"]) == 1  # nothing else went to a rate-limited provider
    again = dispatch(db_engine, channels, settings, clock)  # still before the reset
    assert again.handled == 0 and len(fake.stats()["requests"]) == 1
    clock.advance(timedelta(seconds=60))
    dispatch(db_engine, channels, settings, clock)
    assert fake.stats()["accepted"] == {str(i): 1 for i in ids}


def test_the_channel_alone_reports_each_answer() -> None:
    channel = SendGridChannel("SG.x", host="http://127.0.0.1:9", timeout=1)
    [result] = channel.send_batch([message()])
    assert result.retryable and not result.ambiguous and "cannot reach SendGrid" in str(result)  # type: ignore[union-attr]
