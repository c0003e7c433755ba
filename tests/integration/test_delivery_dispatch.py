"""The dispatcher's guarantees on SQLite and PostgreSQL: consent at send time, honest statuses,
crash recovery, retries on request, erasure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from typer.testing import CliRunner

from delivery_helpers import START, delivery_settings, rows, seed_outbox, statuses
from engine_helpers import write_project
from journeys.channels.base import ChannelRegistry
from journeys.clock import VirtualClock
from journeys.delivery.dispatcher import dispatch
from journeys.delivery.factory import build_channels
from journeys.service import JourneyService, default_channels
from journeys.settings import Settings
from journeys.simulate import NullChannel
from journeys.store import outbox as store
from journeys.store.db import open_store
from journeys.store.privacy import erase_customer
from journeys.store.tables import suppressed_addresses, suppressions
from journeys.testing.fake_providers import Credentials, FakeProviders

CREDS = Credentials()
ENV = {"SENDGRID_API_KEY": CREDS.sendgrid_key}


@pytest.fixture
def fake() -> Iterator[FakeProviders]:
    with FakeProviders(CREDS) as server:
        yield server


def _sendgrid(fake: FakeProviders, **extra: Any) -> tuple[Settings, ChannelRegistry]:
    settings = delivery_settings({"email": {"provider": "sendgrid", "host": fake.url}}, **extra)
    return settings, build_channels(settings, env=ENV)


def _cli(*args: str) -> Any:
    from journeys.cli import _register, app

    _register()
    return CliRunner().invoke(app, list(args))


def _unsubscribe(engine: Engine, customer_id: str, reason: str = "unsubscribed") -> None:
    with engine.begin() as conn:
        conn.execute(
            suppressions.insert().values(
                customer_id=customer_id, channel="email", reason=reason, created_at=START
            )
        )


DRIP = """
journey: drip
trigger: {event: customer.signed_up}
steps:
  - id: later
    wait: 1d
  - id: hello
    send: {template: hello}
"""


def test_an_unsubscribe_committed_while_messages_wait_stops_them(
    db_url: str, tmp_path: Path, fake: FakeProviders
) -> None:
    project = write_project(tmp_path, {"drip": DRIP})
    service = JourneyService(
        open_store(db_url),
        project,
        clock=VirtualClock(START),
        channels=default_channels(NullChannel()),
    )
    people = [
        {"id": f"c-{n}", "email": f"p{n}@example.com", "email_opt_in": "true"} for n in range(6)
    ]
    assert service.import_customers(people).ok
    signups = [
        {
            "id": f"e-{n}",
            "type": "customer.signed_up",
            "customer_id": f"c-{n}",
            "occurred_at": "2026-03-02T09:00:00Z",
        }
        for n in range(6)
    ]
    assert service.ingest(signups).ok
    service.run_pass()
    service.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    service.run_pass()  # the messages are rendered and wait in the outbox
    assert set(statuses(service.db).values()) == {"pending"}
    for n in range(3):  # committed after rendering, before sending
        _unsubscribe(service.db, f"c-{n}")
    settings, channels = _sendgrid(fake)
    report = dispatch(service.db, channels, settings, service.clock)
    assert (report.sent, report.counts["suppressed"]) == (3, 3)
    by_customer = {r["customer_id"]: r for r in rows(service.db)}
    for n in range(3):
        assert by_customer[f"c-{n}"]["status"] == "suppressed"
        assert by_customer[f"c-{n}"]["error"] == "suppressed: email address unsubscribed"
        assert by_customer[f"c-{n}"]["attempts"] == 0
    accepted = fake.stats()["accepted"]
    assert set(accepted) == {str(by_customer[f"c-{n}"]["id"]) for n in range(3, 6)}
    service.close()


def test_consent_is_checked_again_at_send_time(db_engine: Engine, fake: FakeProviders) -> None:
    unknown_consent = seed_outbox(db_engine, 2, opt_in=None)
    refused = seed_outbox(db_engine, 1, first=3, opt_in=False)
    receipt_unsubscribed = seed_outbox(db_engine, 1, first=4, message_kind="transactional")
    receipt_bounced = seed_outbox(db_engine, 1, first=5, message_kind="transactional")
    _unsubscribe(db_engine, "c-4")
    _unsubscribe(db_engine, "c-5", "bounced")
    settings, channels = _sendgrid(fake)
    dispatch(db_engine, channels, settings, VirtualClock(START))
    got = {r["id"]: (r["status"], r["error"]) for r in rows(db_engine)}
    deny = "no consent (email_opt_in not given; consent.missing is deny)"
    assert [got[i] for i in unknown_consent] == [("suppressed", deny)] * 2
    assert got[refused[0]] == ("suppressed", "no consent (email_opt_in is false)")
    assert got[receipt_unsubscribed[0]] == ("sent", None)  # transactional ignores unsubscribes
    assert got[receipt_bounced[0]] == ("suppressed", "suppressed: email address bounced")
    assert set(fake.stats()["accepted"]) == {str(receipt_unsubscribed[0])}


def test_missing_consent_may_be_allowed(db_engine: Engine, fake: FakeProviders) -> None:
    ids = seed_outbox(db_engine, 2, opt_in=None)
    settings, channels = _sendgrid(fake, consent_missing="allow")
    dispatch(db_engine, channels, settings, VirtualClock(START))
    assert statuses(db_engine, ids) == {i: "sent" for i in ids}


def test_console_and_file_channels_log_and_never_send(db_engine: Engine, tmp_path: Path) -> None:
    demo = seed_outbox(db_engine, 2)
    report = dispatch(db_engine, build_channels(Settings()), Settings(), VirtualClock(START))
    assert report.logged == 2 and report.sent == 0
    assert statuses(db_engine, demo) == {i: "logged" for i in demo}
    filed = seed_outbox(db_engine, 1, first=3, channel="sms")
    settings = delivery_settings({"sms": {"provider": "file", "path": "sms.jsonl"}})
    channels = build_channels(settings, base_dir=tmp_path)
    assert dispatch(db_engine, channels, settings, VirtualClock(START)).logged == 1
    [line] = (tmp_path / "sms.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["outbox_id"] == filed[0]
    assert statuses(db_engine, filed) == {filed[0]: "logged"}


def test_a_channel_nobody_configured_fails_its_messages(db_engine: Engine) -> None:
    ids = seed_outbox(db_engine, 2, channel="sms")
    settings = delivery_settings({"email": {"provider": "console"}})
    dispatch(db_engine, build_channels(settings), settings, VirtualClock(START))
    assert {r["status"] for r in rows(db_engine)} == {"failed"}
    assert (
        rows(db_engine)[0]["error"] == "unknown channel 'sms'; configured channels: console, email"
    )
    assert statuses(db_engine, ids) == {i: "failed" for i in ids}


def _abandon(engine: Engine, ids: list[int], when: Any) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.update(store.outbox)
            .where(store.outbox.c.id.in_(ids))
            .values(status="sending", sending_at=when, dispatcher="gone:1", attempts=1)
        )


def test_rows_left_sending_by_a_dead_dispatcher_are_settled_after_the_lease(
    db_engine: Engine, fake: FakeProviders
) -> None:
    marketing = seed_outbox(db_engine, 2)
    receipts = seed_outbox(db_engine, 2, first=3, message_kind="transactional")
    recent = seed_outbox(db_engine, 1, first=5)
    _abandon(db_engine, marketing + receipts, START)
    _abandon(db_engine, recent, START + timedelta(minutes=59, seconds=30))
    settings, channels = _sendgrid(fake)
    clock = VirtualClock(START + timedelta(hours=1))
    report = dispatch(db_engine, channels, settings, clock)
    assert report.recovered == {"unknown": 2, "pending": 2}
    got = statuses(db_engine)
    assert [got[i] for i in marketing] == ["unknown", "unknown"]  # at most once
    assert [got[i] for i in receipts] == ["sent", "sent"]  # at least once: sent again
    assert got[recent[0]] == "sending"  # its dispatcher may still be waiting for an answer
    assert set(fake.stats()["accepted"]) == {str(i) for i in receipts}
    at_least = delivery_settings(
        {"email": {"provider": "sendgrid", "host": fake.url, "delivery": "at_least_once"}}
    )
    clock.advance(timedelta(minutes=5))
    dispatch(db_engine, build_channels(at_least, env=ENV), at_least, clock)
    assert statuses(db_engine, recent) == {recent[0]: "sent"}


def test_outbox_retry_sends_unknown_and_failed_again_on_request(
    db_url: str, fake: FakeProviders
) -> None:
    engine = open_store(db_url)
    ids = seed_outbox(engine, 3)
    _abandon(engine, ids[:2], START)
    with engine.begin() as conn:
        store.mark(conn, {ids[2]: "SendGrid answered 400: bad"}, store.FAILED)
    settings, channels = _sendgrid(fake)
    dispatch(engine, channels, settings, VirtualClock(START + timedelta(hours=1)))
    assert statuses(engine) == {ids[0]: "unknown", ids[1]: "unknown", ids[2]: "failed"}
    listed = _cli("outbox", "--database", db_url, "--status", "unknown", "--status", "failed")
    assert listed.exit_code == 0 and "2 unknown" in listed.stderr
    assert "SendGrid answered 400: bad" in listed.stdout
    assert _cli("outbox", "retry", "--database", db_url, "--id", str(ids[0])).exit_code == 0
    assert statuses(engine)[ids[0]] == "pending"
    result = _cli("outbox", "retry", "--database", db_url, "--status", "failed")
    assert result.exit_code == 0 and "1 messages queued again (failed)" in result.stderr
    bad = _cli("outbox", "retry", "--database", db_url, "--status", "sent")
    assert bad.exit_code == 1 and "use one of: failed, unknown" in bad.stderr
    dispatch(engine, channels, settings, VirtualClock(START + timedelta(hours=2)))
    assert statuses(engine) == {ids[0]: "sent", ids[1]: "unknown", ids[2]: "sent"}
    [retried] = [r for r in rows(engine) if r["id"] == ids[0]]
    assert retried["attempts"] == 1 and retried["error"] is None
    engine.dispose()


def test_erase_keeps_only_hashes_and_the_address_is_never_mailed_again(
    db_url: str, fake: FakeProviders, tmp_path: Path
) -> None:
    engine = open_store(db_url)
    [first] = seed_outbox(engine, 1)
    settings, channels = _sendgrid(fake)
    dispatch(engine, channels, settings, VirtualClock(START))
    exported = _cli("customers", "export", "c-1", "--database", db_url)
    assert exported.exit_code == 0, exported.output
    data = json.loads(exported.stdout)
    assert data["customer"]["email"] == "person1@example.com"
    assert [m["id"] for m in data["messages"]] == [first]
    assert data["enrollments"][0]["customer_id"] == "c-1"
    erased = _cli("customers", "erase", "c-1", "--yes", "--database", db_url)
    assert erased.exit_code == 0 and "erased c-1" in erased.stderr
    assert _cli("customers", "export", "c-1", "--database", db_url).exit_code == 1
    with engine.connect() as conn:
        kept = conn.execute(sa.select(suppressed_addresses)).all()
        dump = json.dumps([dict(r._mapping) for r in conn.execute(sa.select(store.outbox))])
    assert {k.channel for k in kept} == {"email", "sms", "customer_id"}
    assert all("@" not in k.address_hash and len(k.address_hash) == 64 for k in kept)
    assert "person1@example.com" not in dump
    # The same person imported again, under another id: never mailed again.
    [again] = seed_outbox(
        engine, 1, first=2, customer={"email": "Person1@Example.com"}, message_kind="transactional"
    )
    with engine.begin() as conn:
        conn.execute(sa.update(store.outbox).values(recipient="Person1@Example.com"))
    dispatch(engine, channels, settings, VirtualClock(START))
    assert statuses(engine, [again]) == {again: "suppressed"}
    assert [r["error"] for r in rows(engine)] == ["suppressed: email address erased"]
    with engine.begin() as conn:
        assert erase_customer(conn, "nobody", START) is None
    engine.dispose()


def test_what_the_renderer_asks_the_store(db_engine: Engine) -> None:
    """Suppression reasons by (customer, channel, address) and marketing counts for caps."""
    seed_outbox(db_engine, 2)
    seed_outbox(db_engine, 1, first=3, message_kind="transactional")
    seed_outbox(db_engine, 1, first=4, channel="sms")
    _unsubscribe(db_engine, "c-1")
    with db_engine.begin() as conn:
        conn.execute(
            suppressed_addresses.insert().values(
                channel="email",
                address_hash=store.address_hash("email", "gone@example.com"),
                reason="erased",
                created_at=START,
            )
        )
        reasons = store.suppression_reasons(
            conn,
            [
                ("c-1", "email", "person1@example.com"),
                ("c-1", "sms", "+14155550001"),
                ("c-9", "email", "GONE@example.com"),
                ("c-2", "email", "person2@example.com"),
            ],
        )
        counts = store.recent_marketing_counts(
            conn, ["c-1", "c-2", "c-3", "c-4"], START - timedelta(days=1)
        )
    assert reasons == {
        ("c-1", "email", "person1@example.com"): "unsubscribed",
        ("c-9", "email", "GONE@example.com"): "erased",
    }
    assert counts == {"c-1": 1, "c-2": 1, "c-4": 1}  # every channel; transactional not counted
