"""The engine end to end on a real store (SQLite and PostgreSQL), in virtual time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select

from engine_helpers import (
    DRIP,
    T0,
    customer_row,
    enrollment_rows,
    event,
    messages,
    open_service,
    run_until,
    step_history,
    write_project,
)
from journeys.channels.base import ChannelRegistry
from journeys.service import STANDARD_CHANNELS
from journeys.simulate import NullChannel
from journeys.store import repository as repo
from journeys.store import setbased as setrepo
from journeys.store.tables import events, stage_history, step_runs, survey_answers

CART = """
journey: cart
name: Cart
stage: consideration
trigger: {event: cart.updated, when: "event.data.cart_total >= 20"}
exit_on: [order.placed]
goal: {event: order.placed, within: 7d}
cooldown: 7d
steps:
  - id: wait_a_day
    wait: 24h
  - id: remind
    send: {template: hello}
"""


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def cart_service(tmp_path: Path, db_url: str):
    service = open_service(write_project(tmp_path, {"cart": CART}), db_url)
    service.import_customers(
        [
            {"id": "c-1", "email": "a@example.com", "first_name": "Ann", "timezone": "UTC"},
            {"id": "c-2", "email": "b@example.com", "first_name": "민지", "locale": "ko-KR"},
        ]
    )
    yield service
    service.close()


def test_reminder_24h_after_cart_and_exit_on_purchase(cart_service) -> None:
    s = cart_service
    report = s.ingest(
        [
            event("e1", "cart.updated", "c-1", "2026-03-02T10:00:00Z", cart_total=50),
            event("e2", "cart.updated", "c-2", "2026-03-02T11:00:00Z", cart_total=50),
            event("e3", "order.placed", "c-2", "2026-03-02T20:00:00Z", total=50, order_id="o1"),
        ]
    )
    assert report.accepted == 3 and not report.errors
    run_until(s, T0 + timedelta(days=5))
    sent = messages(s)
    assert [(m["customer_id"], m["step"], m["due_at"]) for m in sent] == [
        ("c-1", "remind", utc(2026, 3, 3, 10))
    ]
    assert sent[0]["subject"] == "Hello Ann" and sent[0]["status"] == "sent"
    rows = {r["customer_id"]: r for r in enrollment_rows(s)}
    assert rows["c-1"]["status"] == "completed"
    assert rows["c-2"]["status"] == "exited" and rows["c-2"]["exit_reason"] == "order.placed"
    assert rows["c-2"]["converted_at"] is not None
    assert customer_row(s, "c-2")["orders_count"] == 1


def test_trigger_condition_is_respected(cart_service) -> None:
    cart_service.ingest([event("e1", "cart.updated", "c-1", "2026-03-02T10:00:00Z", cart_total=5)])
    run_until(cart_service, T0 + timedelta(days=3))
    assert enrollment_rows(cart_service) == []


def test_same_events_twice_give_one_enrollment_and_one_message(cart_service) -> None:
    batch = [event("e1", "cart.updated", "c-1", "2026-03-02T10:00:00Z", cart_total=50)]
    cart_service.ingest(batch)
    run_until(cart_service, T0 + timedelta(days=1))
    again = cart_service.ingest(batch)
    assert again.duplicates == 1 and again.accepted == 0
    run_until(cart_service, T0 + timedelta(days=3))
    assert len(enrollment_rows(cart_service)) == 1
    assert len(messages(cart_service)) == 1


def test_no_second_enrollment_while_active_and_cooldown_after(cart_service) -> None:
    s = cart_service
    s.ingest(
        [
            event("e1", "cart.updated", "c-1", "2026-03-02T10:00:00Z", cart_total=50),
            event("e2", "cart.updated", "c-1", "2026-03-02T12:00:00Z", cart_total=60),
            # Ended on 03-03 10:00; within the 7-day cooldown:
            event("e3", "cart.updated", "c-1", "2026-03-05T10:00:00Z", cart_total=60),
            # After it:
            event("e4", "cart.updated", "c-1", "2026-03-11T10:00:00Z", cart_total=60),
        ]
    )
    run_until(s, T0 + timedelta(days=12))
    rows = enrollment_rows(s)
    assert [r["entered_at"] for r in rows] == [utc(2026, 3, 2, 10), utc(2026, 3, 11, 10)]


def test_bad_records_are_reported_and_good_ones_kept(cart_service) -> None:
    from journeys.service import records_from_text

    text = "\n".join(
        [
            '{"id": "e1", "type": "cart.updated", "customer_id": "c-1", '
            '"occurred_at": "2026-03-02T10:00:00Z", "data": {"cart_total": 50}}',
            "{not json",
            '{"id": "e2", "type": "cart.updated", "customer_id": "nobody", '
            '"occurred_at": "2026-03-02T10:00:00Z"}',
            '{"id": "e3", "type": "order.placed", "customer_id": "c-1", '
            '"occurred_at": "2026-03-02T10:00:00Z", "data": {"total": "lots"}}',
            '{"id": "e4", "type": "cart.updated", "customer_id": "c-1", '
            '"occurred_at": "yesterday"}',
        ]
    )
    report = cart_service.ingest(records_from_text(text))
    assert report.accepted == 1
    lines = dict(report.errors)
    assert "not valid JSON" in lines[2]
    assert "unknown customer 'nobody'" in lines[3]
    assert "'data.total' must be a number" in lines[4]
    assert "not an ISO 8601 time" in lines[5]
    bad = cart_service.import_customers(
        [{"id": "c-9", "timezone": "Mars/Olympus"}, {"email": "x@y"}]
    )
    assert bad.accepted == 0
    assert "not an IANA time zone" in bad.errors[0][1] and "missing 'id'" in bad.errors[1][1]


@pytest.mark.parametrize("path", ["python", "set-based"])
def test_crash_inside_a_batch_rolls_back(cart_service, monkeypatch, path: str) -> None:
    s = cart_service
    s.ingest([event("e1", "cart.updated", "c-1", "2026-03-02T10:00:00Z", cart_total=50)])
    s.clock.set(utc(2026, 3, 2, 10))
    real = setrepo.advance_set_step

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    def boom_after_writing(*args, **kwargs):
        real(*args, **kwargs)  # history appended, enrollments moved: then the crash
        raise RuntimeError("disk on fire")

    if path == "python":
        # The batch that matches the cart event crashes while writing: nothing of it stays,
        # and the event is still pending.
        s.runtime.set_based = False
        monkeypatch.setattr(repo, "add_step_runs", boom)
        with pytest.raises(RuntimeError):
            s.run_pass()
        assert enrollment_rows(s) == []
    else:
        # The event's batch commits (the enrollment is due at its first step, a wait: step
        # by step, its step is left to its own unit); the set-based chunk that runs the wait
        # crashes after its statements.
        s.runtime.set_min_rows = 0  # the set-based path even for one row
        monkeypatch.setattr(setrepo, "advance_set_step", boom_after_writing)
        with pytest.raises(RuntimeError):
            s.run_pass(by_step=True)
        rows = enrollment_rows(s)
        assert rows[0]["step"] == "wait_a_day" and rows[0]["wake_at"] == utc(2026, 3, 2, 10)
    assert step_history(s) == []
    monkeypatch.undo()
    s.run_pass()
    assert enrollment_rows(s)[0]["step"] == "remind"
    assert [r["outcome"] for r in step_history(s)] == ["waited"]


def test_a_pass_uses_a_constant_number_of_statements(tmp_path: Path, sqlite_url: str) -> None:
    project = write_project(tmp_path, {"cart": CART})

    def statements_for(n: int) -> int:
        service = open_service(project, sqlite_url.replace(".db", f"-{n}.db"))
        service.import_customers([{"id": f"c-{i}", "email": f"{i}@x.io"} for i in range(n)])
        service.ingest(
            [
                event(f"e{i}", "cart.updated", f"c-{i}", "2026-03-02T00:00:00Z", cart_total=30)
                for i in range(n)
            ]
        )
        count = 0

        def counter(*args, **kwargs) -> None:
            nonlocal count
            count += 1

        sa_event.listen(service.db, "before_cursor_execute", counter)
        service.run_pass()
        sa_event.remove(service.db, "before_cursor_execute", counter)
        service.close()
        return count

    # 30x the events: the same statements (a multi-row INSERT may be split in a few chunks).
    small, large = statements_for(50), statements_for(1500)
    assert large <= small + 3, (small, large)


def test_template_error_fails_one_message_not_the_batch(tmp_path: Path, db_url: str) -> None:
    spec = """
    journey: greet
    name: Greet
    trigger: {event: customer.signed_up}
    steps:
      - id: hi
        send: {template: risky}
    """
    risky = "---\nsubject: Hi\n---\n{{ 100 // customer.divisor }}\n"
    service = open_service(write_project(tmp_path, {"greet": spec}, {"risky.html": risky}), db_url)
    service.ingest(
        [
            event(
                "e1", "customer.signed_up", "c-1", "2026-03-02T01:00:00Z", email="a@x.io", divisor=0
            ),
            event(
                "e2", "customer.signed_up", "c-2", "2026-03-02T01:00:00Z", email="b@x.io", divisor=4
            ),
        ]
    )
    run_until(service, T0 + timedelta(hours=2))
    by_customer = {m["customer_id"]: m for m in messages(service)}
    assert by_customer["c-1"]["status"] == "failed"
    assert "ZeroDivisionError" in by_customer["c-1"]["error"]
    assert by_customer["c-2"]["status"] == "sent" and by_customer["c-2"]["html"].strip() == "25"
    service.close()


def test_locale_fallback_and_consent(tmp_path: Path, db_url: str) -> None:
    spec = """
    journey: greet
    name: Greet
    trigger: {event: customer.signed_up}
    steps:
      - id: hi
        send: {template: hello}
    """
    service = open_service(write_project(tmp_path, {"greet": spec}), db_url)
    service.ingest(
        [
            event(
                "e1",
                "customer.signed_up",
                "c-ko",
                "2026-03-02T01:00:00Z",
                email="k@x.io",
                first_name="민지",
                locale="ko-KR",
            ),
            event(
                "e2",
                "customer.signed_up",
                "c-en",
                "2026-03-02T01:00:00Z",
                email="e@x.io",
                first_name="Ann",
                locale="en-US",
            ),
            event(
                "e3",
                "customer.signed_up",
                "c-no",
                "2026-03-02T01:00:00Z",
                email="n@x.io",
                email_opt_in=False,
            ),
            event("e4", "email.unsubscribed", "c-en", "2026-03-02T01:00:00Z"),
        ]
    )
    run_until(service, T0 + timedelta(hours=2))
    by_customer = {m["customer_id"]: m for m in messages(service)}
    assert (
        by_customer["c-ko"]["subject"] == "(광고) 안녕하세요 민지"  # Korean advertising rule
        and by_customer["c-ko"]["locale"] == "ko"
    )
    assert by_customer["c-en"]["status"] == "suppressed"
    assert (
        by_customer["c-no"]["status"] == "suppressed" and "consent" in by_customer["c-no"]["error"]
    )
    service.close()


def test_wait_until_local_time_and_quiet_hours(tmp_path: Path, db_url: str) -> None:
    spec = """
    journey: morning
    name: Morning
    trigger: {event: customer.signed_up}
    quiet_hours: "21:00-09:00"
    steps:
      - id: now
        send: {template: hello}
      - id: next_morning
        wait: {until: "10:00"}
      - id: later
        send: {template: hello}
    """
    service = open_service(write_project(tmp_path, {"morning": spec}), db_url)
    # 23:00 in Seoul (14:00Z): quiet until 09:00 Seoul (00:00Z), then wait until 10:00 (01:00Z).
    # New York 2026-03-07 22:00 EST (03-08 03:00Z): quiet until 09:00 EDT after the DST change
    # (13:00Z), then 10:00 EDT (14:00Z).
    service.ingest(
        [
            event(
                "e1",
                "customer.signed_up",
                "seoul",
                "2026-03-02T14:00:00Z",
                email="s@x.io",
                timezone="Asia/Seoul",
            ),
            event(
                "e2",
                "customer.signed_up",
                "ny",
                "2026-03-08T03:00:00Z",
                email="n@x.io",
                timezone="America/New_York",
            ),
        ]
    )
    run_until(service, utc(2026, 3, 10))
    got = [(m["customer_id"], m["step"], m["due_at"]) for m in messages(service)]
    assert got == [
        ("seoul", "now", utc(2026, 3, 3, 0)),
        ("seoul", "later", utc(2026, 3, 3, 1)),
        ("ny", "now", utc(2026, 3, 8, 13)),
        ("ny", "later", utc(2026, 3, 8, 14)),
    ]
    service.close()


def date_journey(journey: str, field: str, at: str) -> str:
    """A journey that sends ``hello`` yearly on ``customer.<field>`` at local ``at``."""
    return f"""
journey: {journey}
name: {journey}
trigger: {{date: customer.{field}, at: "{at}"}}
steps:
  - id: greet
    send: {{template: hello}}
"""


def test_birthday_local_9am_once_a_year_and_feb29(tmp_path: Path, db_url: str) -> None:
    spec = date_journey("bday", "birthday", "09:00")
    service = open_service(write_project(tmp_path, {"bday": spec}), db_url, start=utc(2027, 2, 27))
    service.import_customers(
        [
            {"id": "seoul", "email": "s@x.io", "timezone": "Asia/Seoul", "birthday": "1990-02-28"},
            {
                "id": "leap",
                "email": "l@x.io",
                "timezone": "Europe/London",
                "birthday": "1992-02-29",
            },
            {
                "id": "nyc",
                "email": "n@x.io",
                "timezone": "America/New_York",
                "birthday": "1985-03-01",
            },
            {"id": "none", "email": "u@x.io", "birthday": "1980-02-28"},
        ]
    )
    run_until(service, utc(2027, 3, 3))
    run_until(service, utc(2027, 3, 3, 12))  # sweeping again must not enroll twice
    got = sorted((m["customer_id"], m["due_at"]) for m in messages(service))
    assert got == [
        ("leap", utc(2027, 2, 28, 9)),
        ("none", utc(2027, 2, 28, 9)),  # no zone: the journey's default (UTC)
        ("nyc", utc(2027, 3, 1, 14)),
        ("seoul", utc(2027, 2, 28, 0)),
    ]
    assert {r["trigger_key"] for r in enrollment_rows(service)} == {"2027"}
    service.close()


SURVEY = """
journey: nps
name: NPS
trigger: {event: order.delivered}
steps:
  - id: ask
    survey: {kind: nps, template: hello, within: 7d}
    on_answer: triage
    on_timeout: end
  - id: triage
    branch:
      - when: "answers.ask.category == 'detractor'"
        goto: alert
      - when: "answers.ask.category == 'promoter'"
        goto: promote
      - goto: end
  - id: alert
    notify: {to: support, template: hello}
    goto: end
  - id: promote
    update: {stage: advocacy, set: {promoter_score: "{{ answers.ask.score }}"}}
"""


def test_survey_answers_drive_the_feedback_loop(tmp_path: Path, db_url: str) -> None:
    service = open_service(write_project(tmp_path, {"nps": SURVEY}), db_url)
    service.import_customers(
        [{"id": c, "email": f"{c}@x.io"} for c in ("happy", "angry", "silent")]
    )
    service.ingest(
        [
            event(f"d-{c}", "order.delivered", c, "2026-03-02T10:00:00Z")
            for c in ("happy", "angry", "silent")
        ]
        + [
            event(
                "a1",
                "survey.answered",
                "happy",
                "2026-03-03T10:00:00Z",
                journey="nps",
                step="ask",
                score=10,
            ),
            event(
                "a2",
                "survey.answered",
                "angry",
                "2026-03-03T11:00:00Z",
                journey="nps",
                step="ask",
                score=2,
                comment="Delivery was late and the box was crushed",
            ),
        ]
    )
    run_until(service, T0 + timedelta(days=10))
    kinds = sorted((m["customer_id"], m["kind"]) for m in messages(service))
    assert kinds == [
        ("angry", "notify"),
        ("angry", "survey"),
        ("happy", "survey"),
        ("silent", "survey"),
    ]
    survey_msg = next(m for m in messages(service) if m["customer_id"] == "happy")
    assert "/survey?token=" in (survey_msg["html"] or "") or survey_msg["status"] == "sent"
    happy = customer_row(service, "happy")
    assert happy["stage"] == "advocacy" and happy["attributes"]["promoter_score"] == 10
    rows = {r["customer_id"]: r for r in enrollment_rows(service)}
    assert rows["silent"]["status"] == "completed"
    assert rows["silent"]["ended_at"] == utc(2026, 3, 9, 10)  # 7 days after the survey
    with service.db.connect() as conn:
        silent = rows["silent"]["id"]
        outcomes = conn.execute(
            select(step_runs.c.step, step_runs.c.outcome)
            .where(step_runs.c.enrollment_id == silent)
            .order_by(step_runs.c.id)
        ).all()
    assert [tuple(o) for o in outcomes] == [
        ("ask", "waiting for survey.answered"),
        ("ask", "timed out"),
        ("end", "completed"),
    ]
    with service.db.connect() as conn:
        cats = dict(
            conn.execute(select(survey_answers.c.customer_id, survey_answers.c.category)).all()
        )
        analysed = conn.execute(
            select(
                survey_answers.c.customer_id,
                survey_answers.c.sentiment,
                survey_answers.c.sentiment_score < 0,
                survey_answers.c.keywords,
            ).order_by(survey_answers.c.customer_id)
        ).all()
        history = (
            conn.execute(
                select(stage_history.c.to_stage).where(stage_history.c.customer_id == "happy")
            )
            .scalars()
            .all()
        )
        entered = conn.scalar(
            select(func.count()).select_from(events).where(events.c.type == "stage.entered")
        )
    assert cats == {"happy": "promoter", "angry": "detractor"}
    # the comment is analysed as the answer is stored; no comment, nothing to analyse
    assert [tuple(r) for r in analysed] == [
        ("angry", "negative", True, ["delivery", "box"]),
        ("happy", None, None, None),
    ]
    assert history == ["advocacy"] and entered == 1
    service.close()


def test_lifecycle_rules_and_stage_trigger(tmp_path: Path, db_url: str) -> None:
    lifecycle = """
    lifecycle:
      initial: awareness
      rules:
        - {event: order.placed, stage: purchase}
        - {event: order.placed, when: "customer.orders_count >= 3", stage: loyalty}
    """
    loyal = """
    journey: loyal
    name: Loyal
    trigger: {stage: loyalty}
    steps:
      - id: thanks
        send: {template: hello}
    """
    service = open_service(write_project(tmp_path, {"loyal": loyal}, lifecycle=lifecycle), db_url)
    service.import_customers([{"id": "c-1", "email": "a@x.io"}])
    service.ingest(
        [
            event(f"o{i}", "order.placed", "c-1", f"2026-03-0{2 + i}T10:00:00Z", total=10 * (i + 1))
            for i in range(3)
        ]
    )
    run_until(service, T0 + timedelta(days=6))
    person = customer_row(service, "c-1")
    assert person["stage"] == "loyalty" and person["orders_count"] == 3
    assert person["lifetime_value"] == 60
    with service.db.connect() as conn:
        stages = (
            conn.execute(select(stage_history.c.to_stage).order_by(stage_history.c.id))
            .scalars()
            .all()
        )
    assert stages == ["purchase", "loyalty"]
    assert [(m["customer_id"], m["due_at"]) for m in messages(service)] == [
        ("c-1", utc(2026, 3, 4, 10))
    ]
    service.close()


def test_in_flight_enrollments_stay_on_their_version(tmp_path: Path, sqlite_url: str) -> None:
    v1 = DRIP
    v2 = v1.replace("old_mail", "new_mail")
    service = open_service(write_project(tmp_path / "a", {"drip": v1}), sqlite_url)
    service.ingest(
        [event("e1", "customer.signed_up", "c-1", "2026-03-02T00:00:00Z", email="a@x.io")]
    )
    run_until(service, T0 + timedelta(hours=1))
    service.close()
    service = open_service(
        write_project(tmp_path / "b", {"drip": v2}), sqlite_url, start=T0 + timedelta(hours=1)
    )
    service.ingest(
        [event("e2", "customer.signed_up", "c-2", "2026-03-02T02:00:00Z", email="b@x.io")]
    )
    run_until(service, T0 + timedelta(days=2))
    assert sorted((m["customer_id"], m["step"]) for m in messages(service)) == [
        ("c-1", "old_mail"),
        ("c-2", "new_mail"),
    ]
    service.close()


def test_split_is_deterministic_and_weighted() -> None:
    from journeys.runtime.decide import split_bucket

    buckets = [split_bucket(f"c-{i}", "cart", "coupon") for i in range(10_000)]
    assert buckets == [split_bucket(f"c-{i}", "cart", "coupon") for i in range(10_000)]
    share = sum(1 for b in buckets if b < 45) / len(buckets)
    assert 0.43 < share < 0.47


def test_a_late_event_applies_at_its_arrival_and_is_counted(cart_service) -> None:
    """An event stored after a pass passed its time is late: it applies where the engine
    had got to (the watermark), not in the past the engine has already run, and the pass
    counts it. The customer's order history keeps its true time."""
    s = cart_service
    s.ingest([event("e1", "cart.updated", "c-1", "2026-03-02T10:00:00Z", cart_total=50)])
    run_until(s, T0 + timedelta(hours=12))
    assert s.watermark() == T0 + timedelta(hours=12)
    # An order from the day before arrives late: it ends the cart journey from now on.
    s.ingest([event("late", "order.placed", "c-1", "2026-03-01T09:00:00Z", total=30)])
    report = s.run_pass()
    assert report.late == 1 and report.events == 1
    run_until(s, T0 + timedelta(days=3))
    (row,) = enrollment_rows(s)
    assert (row["status"], row["exit_reason"]) == ("exited", "order.placed")
    assert row["ended_at"] == T0 + timedelta(hours=12)
    assert messages(s) == []
    person = customer_row(s, "c-1")
    assert person["orders_count"] == 1 and person["last_order_at"] == utc(2026, 3, 1, 9)
    with s.db.connect() as conn:
        applied = conn.execute(select(events.c.applied_at).where(events.c.id == "late")).scalar()
    assert applied == T0 + timedelta(hours=12)


SCORED = """
journey: scored
name: Scored
trigger: {event: customer.signed_up}
steps:
  - id: check
    branch:
      - when: "customer.score >= 5"
        goto: high
      - goto: end
  - id: high
    update: {set: {tier: high}}
"""


@pytest.mark.parametrize("set_based", [True, False])
def test_a_condition_that_fails_at_run_time_ends_that_enrollment_only(
    tmp_path: Path, db_url: str, set_based: bool
) -> None:
    """``customer.score >= 5`` cannot be decided for a customer without a score or with a text
    score: that enrollment exits with the reason; the batch and everybody else go on."""
    s = open_service(write_project(tmp_path, {"scored": SCORED}), db_url)
    s.runtime.set_based = set_based
    s.runtime.set_min_rows = 0  # the set-based path even for these few rows
    s.import_customers(
        [{"id": "c-1", "score": 9}, {"id": "c-2"}, {"id": "c-3", "score": "7"}, {"id": "c-4"}]
    )
    s.ingest(
        [event(f"e{i}", "customer.signed_up", f"c-{i}", "2026-03-02T08:00:00Z") for i in (1, 2, 3)]
    )
    run_until(s, utc(2026, 3, 3))
    by_customer = {r["customer_id"]: r for r in enrollment_rows(s)}
    assert by_customer["c-1"]["status"] == "completed"
    assert customer_row(s, "c-1")["attributes"]["tier"] == "high"
    for cid in ("c-2", "c-3"):
        row = by_customer[cid]
        assert row["status"] == "exited"
        assert row["exit_reason"].startswith("error: check: 'customer.score >= 5' failed")
    assert "'>=' not supported" in by_customer["c-3"]["exit_reason"]


def _signup_journey(name: str, step: str) -> str:
    return f"""
journey: {name}
name: {name}
trigger: {{event: customer.signed_up}}
steps:
  - id: only
    {step}
"""


def test_a_bad_set_or_emit_value_ends_that_enrollment_not_every_batch(
    tmp_path: Path, db_url: str
) -> None:
    """A ``set`` value that fails, and an emitted ``order.placed`` without its total: each ends
    its own enrollment with the reason, and ticking goes on (both used to raise on every tick,
    so nothing else ever advanced)."""
    journeys = {
        "bad-set": _signup_journey(
            "bad-set", "update: {set: {score: \"{{ customer.orders_count + 'x' }}\"}}"
        ),
        "bad-emit": _signup_journey("bad-emit", "emit: {event: order.placed, data: {note: hi}}"),
        "ok": _signup_journey("ok", 'update: {set: {badge: "{{ customer.tier }}-1"}}'),
    }
    s = open_service(write_project(tmp_path, journeys), db_url)
    s.import_customers([{"id": "c-1", "tier": "gold"}])
    s.ingest([event("e1", "customer.signed_up", "c-1", "2026-03-02T08:00:00Z")])
    run_until(s, utc(2026, 3, 3))
    rows = {r["journey"]: r for r in enrollment_rows(s)}
    assert rows["bad-set"]["status"] == "exited"
    assert rows["bad-set"]["exit_reason"].startswith("error: only: ")
    assert "unsupported operand" in rows["bad-set"]["exit_reason"]
    assert rows["bad-emit"]["status"] == "exited"
    assert rows["bad-emit"]["exit_reason"] == (
        "error: only: order.placed needs data.total (the order amount)"
    )
    assert rows["ok"]["status"] == "completed"
    assert customer_row(s, "c-1")["attributes"]["badge"] == "gold-1"
    assert "score" not in customer_row(s, "c-1")["attributes"]


def test_an_enrollment_that_ran_off_its_end_is_not_ended_again_in_the_same_batch(
    tmp_path: Path, db_url: str
) -> None:
    """The order resumes the wait_for, whose on_event is the end; the unsubscribe right after
    it, in the same batch, must not turn that completion into an exit."""
    spec = """
    journey: ordered
    name: Ordered
    trigger: {event: cart.updated}
    exit_on: [email.unsubscribed]
    steps:
      - id: buy
        wait_for: {event: order.placed, within: 2d}
        on_event: end
        on_timeout: end
    """
    s = open_service(write_project(tmp_path, {"ordered": spec}), db_url)
    s.import_customers([{"id": "c-1", "email": "a@x.io"}])
    s.ingest([event("e1", "cart.updated", "c-1", "2026-03-02T08:00:00Z")])
    run_until(s, utc(2026, 3, 2, 9))
    s.ingest(
        [
            event("e2", "order.placed", "c-1", "2026-03-02T10:00:00Z", total=10),
            event("e3", "email.unsubscribed", "c-1", "2026-03-02T10:05:00Z"),
        ]
    )
    s.clock.set(utc(2026, 3, 2, 11))  # both events late: one batch (run_until would step)
    s.tick()
    (row,) = enrollment_rows(s)
    assert (row["status"], row["exit_reason"]) == ("completed", None)
    assert row["ended_at"] == utc(2026, 3, 2, 10)


def test_a_changed_time_zone_moves_the_birthday_sweep(tmp_path: Path, db_url: str) -> None:
    """Time zones are cached for the date sweep; a customer.updated that changes one must drop
    the cache, or a customer in a zone nobody else has is never swept."""
    spec = date_journey("bday", "birthday", "09:00")
    s = open_service(write_project(tmp_path, {"bday": spec}), db_url, start=utc(2027, 3, 1))
    s.import_customers(
        [{"id": "c-1", "email": "a@x.io", "timezone": "UTC", "birthday": "1990-03-05"}]
    )
    run_until(s, utc(2027, 3, 2))  # the zones are cached: only UTC
    s.ingest(
        [event("e1", "customer.updated", "c-1", "2027-03-02T00:00:00Z", timezone="Asia/Seoul")]
    )
    run_until(s, utc(2027, 3, 6))
    assert [(m["customer_id"], m["due_at"]) for m in messages(s)] == [
        ("c-1", utc(2027, 3, 5, 0))  # 09:00 in Seoul
    ]


class _Recording:
    name = "recording"

    def __init__(self) -> None:
        self.sent: list[int] = []

    def send_batch(self, messages: list[Any]) -> list[Any]:
        from journeys.channels.base import SendResult

        self.sent += [m.outbox_id for m in messages]
        return [SendResult(provider_id=f"p{m.outbox_id}") for m in messages]


class _Broken:
    name = "broken"

    def __init__(self) -> None:
        self.calls = 0

    def send_batch(self, messages: list[Any]) -> list[Any]:
        self.calls += 1
        raise RuntimeError("SDK bug")


def test_a_channel_that_raises_does_not_resend_what_other_channels_sent(
    tmp_path: Path, db_url: str
) -> None:
    """One dispatch batch, two channels: email sends, the team's console channel raises. The
    email rows are marked sent once (a rollback would send them again next time); the team
    rows stay pending, retried after a backoff, and go out when the channel works again."""
    spec = """
    journey: both
    name: Both
    trigger: {event: customer.signed_up}
    steps:
      - id: mail
        send: {template: hello}
      - id: tell
        notify: {to: support, template: hello}
    """
    s = open_service(write_project(tmp_path, {"both": spec}), db_url)
    email, broken = _Recording(), _Broken()
    s.channels = ChannelRegistry(
        {**{n: NullChannel() for n in STANDARD_CHANNELS}, "email": email, "console": broken}
    )
    s.import_customers([{"id": f"c-{i}", "email": f"{i}@x.io"} for i in range(3)])
    s.ingest(
        [event(f"e{i}", "customer.signed_up", f"c-{i}", "2026-03-02T08:00:00Z") for i in range(3)]
    )
    s.clock.set(utc(2026, 3, 2, 9))
    s.tick()
    s.dispatch()
    assert len(email.sent) == 3 and broken.calls >= 1
    statuses = sorted((m["kind"], m["status"]) for m in messages(s))
    assert statuses == [("notify", "pending")] * 3 + [("send", "sent")] * 3
    s.channels = ChannelRegistry({**{n: NullChannel() for n in STANDARD_CHANNELS}, "email": email})
    s.clock.set(utc(2026, 3, 2, 10))  # past the retry backoff
    s.dispatch()
    assert len(email.sent) == 3  # never twice
    assert {m["status"] for m in messages(s)} == {"sent"}


def test_a_date_trigger_on_an_attribute_fires_in_each_customers_zone(
    tmp_path: Path, db_url: str
) -> None:
    """``date: customer.renewal_date`` (an attribute, not the indexed birthday): local 10:00,
    once, in every customer's own zone, in one pass over the customers per sweep."""
    spec = date_journey("renewal", "renewal_date", "10:00")
    s = open_service(write_project(tmp_path, {"renewal": spec}), db_url, start=utc(2027, 3, 1))
    s.import_customers(
        [
            {"id": "utc", "email": "u@x.io", "timezone": "UTC", "renewal_date": "2024-03-05"},
            {
                "id": "seoul",
                "email": "s@x.io",
                "timezone": "Asia/Seoul",
                "renewal_date": "2025-03-05",
            },
            {"id": "other", "email": "o@x.io", "timezone": "UTC", "renewal_date": "2024-03-06"},
            {"id": "none", "email": "n@x.io", "timezone": "UTC"},
        ]
    )
    run_until(s, utc(2027, 3, 6, 12))
    assert sorted((m["customer_id"], m["due_at"]) for m in messages(s)) == [
        ("other", utc(2027, 3, 6, 10)),
        ("seoul", utc(2027, 3, 5, 1)),  # 10:00 in Seoul
        ("utc", utc(2027, 3, 5, 10)),
    ]


SEGMENTED = """
journey: scored
name: Scored
trigger:
  schedule: "0 10 * * MON"
  segment: "customer.orders_count >= 0 and customer.score >= 5"
steps:
  - id: hi
    send: {template: hello}
"""


def test_a_segment_that_fails_for_one_customer_skips_only_that_customer(
    tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """`customer.score >= 5` cannot be evaluated without a score: that customer is left out
    with a warning, the others are enrolled, and the next Monday sweeps again."""
    service = open_service(write_project(tmp_path, {"scored": SEGMENTED}), db_url)
    service.import_customers(
        [
            {"id": "c-1", "email": "a@example.com", "attributes": {"score": 7}},
            {"id": "c-2", "email": "b@example.com"},  # no score: the segment raises
            {"id": "c-3", "email": "c@example.com", "attributes": {"score": 2}},
        ]
    )
    with caplog.at_level("WARNING", logger="journeys.engine"):
        run_until(service, T0 + timedelta(days=8))
    assert sorted((m["customer_id"], m["due_at"]) for m in messages(service)) == [
        ("c-1", utc(2026, 3, 2, 10)),
        ("c-1", utc(2026, 3, 9, 10)),
    ]
    warnings = [r.getMessage() for r in caplog.records if "segment failed" in r.getMessage()]
    assert len(warnings) == 2, warnings
    assert "scored: the segment failed for 1 customer(s)" in warnings[0]
    assert "c-2:" in warnings[0] and "score" in warnings[0]


def test_a_schedule_without_a_segment_enrolls_every_customer(tmp_path: Path, db_url: str) -> None:
    everyone = SEGMENTED.replace(
        '  segment: "customer.orders_count >= 0 and customer.score >= 5"\n', ""
    )
    assert "segment" not in everyone
    service = open_service(write_project(tmp_path, {"scored": everyone}), db_url)
    service.import_customers(
        [{"id": "c-1", "email": "a@example.com"}, {"id": "c-2", "email": "b@example.com"}]
    )
    run_until(service, T0 + timedelta(days=1))
    assert sorted((m["customer_id"], m["due_at"]) for m in messages(service)) == [
        ("c-1", utc(2026, 3, 2, 10)),
        ("c-2", utc(2026, 3, 2, 10)),
    ]
