"""The runtime on the in-memory store: hand-built plans, no database, milliseconds per test.

These pin down the event-time rules (docs/language.md, "Event time") and the parts of a pass:
matching, advancing, lifecycle, goals, re-entry, consent, late events, rollback.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine_helpers import WAIT_FOR_CART
from journeys.clock import VirtualClock
from journeys.plan import Lifecycle, StageRule
from journeys.service import JourneyService, default_channels
from journeys.settings import Settings
from journeys.simulate import NullChannel
from journeys.spec import Project, load_journey_text
from journeys.state import Status
from journeys.store.memory import MemoryStore
from journeys.templates import TemplateStore

T0 = datetime(2026, 3, 2, tzinfo=UTC)

CART = WAIT_FOR_CART.replace(
    "steps:", "goal: {event: order.placed, within: 7d}\ncooldown: 2d\nsteps:"
)

LOYAL = """
journey: loyal
name: Loyal
trigger: {stage: loyalty}
steps:
  - id: welcome
    send: {template: hello}
"""

SURVEY = """
journey: nps
name: NPS
trigger: {event: order.delivered}
steps:
  - id: ask
    survey: {kind: nps, template: hello, within: 3d}
    on_answer: triage
    on_timeout: end
  - id: triage
    branch:
      - when: "answers.ask.category == 'promoter'"
        goto: promoter
      - goto: end
  - id: promoter
    update: {stage: advocacy}
"""


def at(hours: float) -> str:
    """An ISO time ``hours`` after T0."""
    return (T0 + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


def event(eid: str, etype: str, hours: float, cid: str = "c-1", **data: Any) -> dict[str, Any]:
    return {"id": eid, "type": etype, "customer_id": cid, "occurred_at": at(hours), "data": data}


def make_service(
    tmp_path: Path, *specs: str, settings: Settings | None = None, rules: tuple = ()
) -> JourneyService:
    """A service on a fresh memory store with hand-built plans and one template."""
    (tmp_path / "hello.html").write_text("---\nsubject: Hi\n---\n<p>Hi {{ customer.id }}</p>\n")
    plans = {}
    for text in specs:
        plan = load_journey_text(textwrap.dedent(text))
        plans[plan.journey] = plan
    project = Project(
        plans=plans,
        lifecycle=Lifecycle(rules=rules),
        settings=settings or Settings(),
        templates=TemplateStore(tmp_path),
    )
    service = JourneyService(
        MemoryStore(),
        project,
        clock=VirtualClock(T0),
        channels=default_channels(NullChannel()),
        batch_size=2,
    )
    service.start_cursors(T0)
    service.import_customers(
        [{"id": f"c-{i}", "email": f"{i}@x.io", "email_opt_in": True} for i in range(1, 4)]
    )
    return service


def pass_at(service: JourneyService, hours: float) -> Any:
    clock = service.clock
    assert isinstance(clock, VirtualClock)
    clock.set(T0 + timedelta(hours=hours))
    return service.run_pass()


def store(service: JourneyService) -> MemoryStore:
    assert isinstance(service.store, MemoryStore)
    return service.store


def outcome(service: JourneyService) -> tuple[list[Any], list[Any]]:
    s = store(service)
    messages = sorted(
        (r["customer_id"], r["step"], r["due_at"], r["status"]) for r in s.all_outbox()
    )
    enrolled = sorted(
        (e.customer_id, e.journey, str(e.status), e.exit_reason, e.entered_at, e.ended_at)
        for e in s.all_enrollments()
    )
    return messages, enrolled


def test_an_order_an_hour_after_the_cart_ends_it_whatever_the_batching(tmp_path: Path) -> None:
    events = [event("e1", "cart.updated", 10), event("e2", "order.placed", 11, total=20)]
    together = make_service(tmp_path, CART)
    together.ingest(events)
    pass_at(together, 72)
    apart = make_service(tmp_path, CART)
    apart.ingest(events[1:])  # the order first, in another file
    apart.ingest(events[:1])
    pass_at(apart, 72)
    assert outcome(together) == outcome(apart)
    messages, enrolled = outcome(together)
    assert messages == []
    assert enrolled == [
        (
            "c-1",
            "cart",
            "exited",
            "order.placed",
            T0 + timedelta(hours=10),
            T0 + timedelta(hours=11),
        )
    ]
    goal = store(together).all_enrollments()[0]
    assert goal.converted_at == T0 + timedelta(hours=11)


def test_a_timeout_runs_at_its_own_time_and_a_later_event_finds_the_next_step(
    tmp_path: Path,
) -> None:
    s = make_service(tmp_path, CART)
    s.ingest([event("e1", "cart.updated", 10), event("e2", "order.placed", 40, total=20)])
    report = pass_at(s, 72)  # one pass over a backlog of three days
    assert report.steps.counts["cart.wait_a_day"] == 1
    messages, enrolled = outcome(s)
    assert messages == [("c-1", "remind", T0 + timedelta(hours=34), "pending")]
    assert enrolled[0][2] == "completed"  # the order came after the reminder: converted only
    assert store(s).all_enrollments()[0].converted_at == T0 + timedelta(hours=40)


def test_many_small_passes_give_what_one_pass_gives(tmp_path: Path) -> None:
    events = [
        event("a1", "cart.updated", 1, "c-1"),
        event("a2", "order.placed", 30, "c-1", total=5),
        event("b1", "cart.updated", 2, "c-2"),
        event("b2", "cart.updated", 80, "c-2"),  # after the cooldown: enters again
        event("c1", "cart.updated", 5, "c-3"),
        event("c2", "order.placed", 6, "c-3", total=5),
    ]
    once = make_service(tmp_path, CART)
    once.ingest(events)
    pass_at(once, 120)
    stepped = make_service(tmp_path, CART)
    for hours in range(0, 121, 7):
        stepped.ingest([e for e in events if e["occurred_at"] <= at(hours)])
        pass_at(stepped, hours)
    pass_at(stepped, 120)
    assert outcome(once) == outcome(stepped)
    assert len([e for e in outcome(once)[1] if e[0] == "c-2"]) == 2


def test_an_emitted_stage_change_enrolls_at_the_same_instant(tmp_path: Path) -> None:
    rules = (StageRule(event="order.placed", stage="loyalty"),)
    s = make_service(tmp_path, LOYAL, rules=rules)
    s.ingest([event("o1", "order.placed", 5, total=10)])
    pass_at(s, 6)
    (enrollment,) = store(s).all_enrollments()
    assert enrollment.journey == "loyal" and enrollment.entered_at == T0 + timedelta(hours=5)
    assert store(s).customers["c-1"].stage == "loyalty"
    assert [c.to_stage for c in store(s).stage_history] == ["loyalty"]


def test_a_survey_answer_resumes_the_wait_with_the_answers(tmp_path: Path) -> None:
    s = make_service(tmp_path, SURVEY)
    s.ingest(
        [
            event("d1", "order.delivered", 1),
            event("s1", "survey.answered", 3, journey="nps", step="ask", score=10),
        ]
    )
    pass_at(s, 100)
    (enrollment,) = store(s).all_enrollments()
    assert enrollment.status is Status.COMPLETED
    assert enrollment.vars["answers"]["ask"]["category"] == "promoter"
    assert store(s).customers["c-1"].stage == "advocacy"
    (answer,) = store(s).answers.values()
    assert answer.enrollment is not None and answer.score == 10


TRIAGE = """
journey: triage
name: Triage
trigger: {event: order.delivered}
steps:
  - id: ask
    survey: {kind: nps, template: hello, within: 3d}
    on_answer: route
    on_timeout: end
  - id: route
    branch:
      - when: "answers.ask.sentiment == 'negative' and '배송' in answers.ask.keywords"
        goto: logistics
      - when: "answers.ask.sentiment == 'neutral'"
        goto: quiet
      - goto: end
  - id: logistics
    update: {set: {alert: logistics}}
    goto: end
  - id: quiet
    update: {set: {alert: none}}
"""


@pytest.mark.parametrize(
    ("comment", "alert", "sentiment"),
    [
        ("배송이 너무 늦었고 포장도 엉망이었어요", "logistics", "negative"),
        ("", "none", None),  # no comment: neutral in expressions, nothing stored to analyse
    ],
)
def test_a_survey_comment_is_analysed_as_it_is_stored_and_steers_the_journey(
    tmp_path: Path, comment: str, alert: str, sentiment: str | None
) -> None:
    s = make_service(tmp_path, TRIAGE)
    answer = event("s1", "survey.answered", 3, journey="triage", step="ask", score=7)
    answer["data"]["comment"] = comment
    s.ingest([event("d1", "order.delivered", 1), answer])
    pass_at(s, 100)
    (enrollment,) = store(s).all_enrollments()
    assert enrollment.status is Status.COMPLETED
    assert store(s).customers["c-1"].attributes["alert"] == alert
    (stored,) = store(s).answers.values()
    assert stored.category == "passive" and stored.sentiment == sentiment
    if sentiment:
        assert "배송" in stored.keywords and stored.sentiment_score is not None
        assert stored.sentiment_score < 0
        assert enrollment.vars["answers"]["ask"]["keywords"] == list(stored.keywords)
    else:
        assert stored.keywords == () and stored.comment is None


def test_a_late_event_applies_at_the_watermark_and_is_counted(tmp_path: Path) -> None:
    s = make_service(tmp_path, CART)
    s.ingest([event("e1", "cart.updated", 10)])
    pass_at(s, 12)
    s.ingest([event("late", "order.placed", 11, total=5)])  # after the pass passed 11:00
    report = pass_at(s, 13)
    assert (report.events, report.late) == (1, 1)
    (enrollment,) = store(s).all_enrollments()
    assert enrollment.ended_at == T0 + timedelta(hours=12)
    customer = store(s).customers["c-1"]
    assert customer.last_order_at == T0 + timedelta(hours=11)  # its true time


def test_the_frequency_cap_counts_the_sends_of_the_window_before_each(tmp_path: Path) -> None:
    drip = """
    journey: drip
    name: Drip
    trigger: {event: signed}
    steps:
      - id: one
        send: {template: hello}
      - id: pause
        wait: 10h
      - id: two
        send: {template: hello}
      - id: pause2
        wait: 20h
      - id: three
        send: {template: hello}
    """
    capped = Settings(frequency_cap_messages=1, frequency_cap_seconds=86400)
    s = make_service(tmp_path, drip, settings=capped)
    s.import_customers([{"id": "c-1", "email": "1@x.io", "email_opt_in": True}])
    s.ingest(
        [{"id": "x", "type": "signed", "customer_id": "c-1", "occurred_at": at(0), "data": {}}]
    )
    pass_at(s, 48)
    statuses = [(r["step"], r["status"]) for r in store(s).all_outbox()]
    # 0h sent; 10h within a day of it: capped; 30h: the day since 6h holds no send: sent.
    assert statuses == [("one", "pending"), ("two", "suppressed"), ("three", "pending")]


def test_a_batch_that_raises_leaves_the_store_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = make_service(tmp_path, CART)
    s.ingest([event("e1", "cart.updated", 1)])
    from journeys.store import memory

    def boom(self: Any, rows: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(memory.MemoryTx, "add_outbox", boom)
    with pytest.raises(RuntimeError):
        pass_at(s, 2)
    assert store(s).enrollments == {} and len(store(s).pending) == 1
    monkeypatch.undo()
    pass_at(s, 2)
    assert len(store(s).enrollments) == 1 and not store(s).pending
