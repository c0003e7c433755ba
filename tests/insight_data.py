"""A small shop written straight into the tables, whose every KPI is worked out by hand in
tests/test_insight_report.py (March 2026 is the period; February the one before it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert

from journeys.plan import (
    END,
    EventTrigger,
    Goal,
    Plan,
    SendStep,
    SplitStep,
    SplitVariant,
    SurveyStep,
    WaitForStep,
    WaitStep,
)
from journeys.store.tables import (
    customers,
    enrollments,
    events,
    journey_versions,
    outbox,
    stage_history,
    step_runs,
    survey_answers,
)

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)
NOW = datetime(2026, 3, 15, tzinfo=UTC)


def day(d: int, month: int = 3, hour: int = 12) -> datetime:
    """A time in 2026."""
    return datetime(2026, month, d, hour, tzinfo=UTC)


CART = Plan(
    journey="cart",
    name="Cart recovery",
    version="v1",
    trigger=EventTrigger("cart.updated"),
    steps=(
        WaitStep(id="pause", next="remind", seconds=3600),
        SendStep(id="remind", next="coupon", template="cart_reminder"),
        SplitStep(
            id="coupon",
            next=END,
            variants=(
                SplitVariant("a", 45, "coupon_a"),
                SplitVariant("b", 45, "coupon_b"),
                SplitVariant("control", 10, END),
            ),
        ),
        SendStep(id="coupon_a", next=END, template="coupon_percent"),
        SendStep(id="coupon_b", next=END, template="coupon_shipping"),
        WaitForStep(id="wait_buy", next=END, event="order.placed", within_seconds=86400),
    ),
    goal=Goal("order.placed", within_seconds=7 * 86400),
)

POST = Plan(
    journey="post",
    name="Post-purchase NPS",
    version="v1",
    trigger=EventTrigger("order.delivered"),
    steps=(SurveyStep(id="nps", next=END, survey="nps", template="nps_request"),),
)


def _customer(cid: str, stage: str | None, orders: int, ltv: float) -> dict[str, Any]:
    return {
        "id": cid,
        "email": f"{cid}@example.com",
        "first_name": cid.upper(),
        "locale": "ko-KR" if cid == "c3" else "en",
        "stage": stage,
        "attributes": {},
        "orders_count": orders,
        "lifetime_value": ltv,
        "created_at": day(1, 1),
        "updated_at": day(1, 1),
    }


def _enrollment(
    eid: int,
    cid: str,
    entered: datetime,
    status: str,
    step: str,
    *,
    variant: str | None = None,
    converted: datetime | None = None,
    reason: str | None = None,
    wake_at: datetime | None = None,
    waiting: str | None = None,
) -> dict[str, Any]:
    vars_: dict[str, Any] = {"variants": {"coupon": variant}} if variant else {}
    if waiting:
        vars_["waiting_step"] = waiting
    return {
        "id": eid,
        "journey": "cart",
        "version": "v1",
        "customer_id": cid,
        "status": status,
        "step": step,
        "wake_at": wake_at,
        "waiting_for": "order.placed" if waiting else None,
        "vars": vars_,
        "trigger_key": None,
        "entered_at": entered,
        "ended_at": None if status == "active" else entered + timedelta(days=1),
        "exit_reason": reason,
        "converted_at": converted,
    }


def _message(
    mid: int, eid: int, cid: str, step: str, template: str, created: datetime, status: str = "sent"
) -> dict[str, Any]:
    return {
        "id": mid,
        "enrollment_id": eid,
        "step": step,
        "attempt": 1,
        "journey": "cart",
        "customer_id": cid,
        "kind": "send",
        "template": template,
        "channel": "email",
        "locale": "en",
        "status": status,
        "due_at": created,
        "created_at": created,
        "sent_at": created if status == "sent" else None,
    }


def _event(
    eid: str, etype: str, cid: str, at: datetime, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": eid,
        "type": etype,
        "customer_id": cid,
        "occurred_at": at,
        "received_at": at,
        "data": data or {},
        "source": "api",
    }


def _answer(
    n: int, cid: str, journey: str, kind: str, score: int, category: str, at: datetime, **extra: Any
) -> dict[str, Any]:
    return {
        "event_id": f"answer-{n}",
        "enrollment_id": None,
        "customer_id": cid,
        "journey": journey,
        "step": "nps" if kind == "nps" else "csat",
        "kind": kind,
        "score": score,
        "category": category,
        "comment": extra.get("comment"),
        "sentiment": extra.get("sentiment"),
        "sentiment_score": extra.get("sentiment_score"),
        "keywords": extra.get("keywords"),
        "answered_at": at,
    }


def build_shop(db: Engine) -> None:
    """Write the shop into ``db`` (a migrated, empty database)."""
    remind_at = day(2, hour=14)
    with db.begin() as conn:
        conn.execute(
            insert(journey_versions),
            [
                {
                    "journey": p.journey,
                    "version": p.version,
                    "plan": p.to_dict(),
                    "created_at": MARCH,
                }
                for p in (CART, POST)
            ],
        )
        conn.execute(
            insert(customers),
            [
                _customer("c1", "loyalty", 3, 300.0),
                _customer("c2", "purchase", 1, 100.0),
                _customer("c3", "loyalty", 2, 500.0),
                _customer("c4", "awareness", 0, 0.0),
                _customer("c5", "consideration", 0, 0.0),
                _customer("c6", "purchase", 1, 50.0),
            ],
        )
        conn.execute(
            insert(enrollments),
            [
                _enrollment(1, "c1", day(2), "completed", END, variant="a", converted=day(5)),
                _enrollment(2, "c2", day(3), "completed", END, variant="a"),
                _enrollment(3, "c3", day(4), "completed", END, variant="b", converted=day(10)),
                _enrollment(4, "c4", day(4), "exited", "pause", reason="order.placed"),
                _enrollment(5, "c5", day(6), "active", "remind", wake_at=NOW + timedelta(hours=1)),
                _enrollment(
                    6, "c6", day(20, 2), "completed", END, variant="a", converted=day(21, 2)
                ),
                _enrollment(7, "c1", day(8), "completed", END, variant="control"),
                _enrollment(
                    8,
                    "c2",
                    day(9),
                    "active",
                    END,
                    wake_at=NOW + timedelta(hours=5),
                    waiting="wait_buy",
                ),
            ],
        )
        runs = []
        for eid, start, coupon in (
            (1, day(2), True),
            (2, day(3), True),
            (3, day(4), True),
            (7, day(8), True),
            (4, day(4), False),
            (5, day(6), False),
            (6, day(20, 2), True),
        ):
            runs.append(
                {
                    "enrollment_id": eid,
                    "journey": "cart",
                    "step": "pause",
                    "at": start,
                    "outcome": "waited",
                }
            )
            if coupon:
                later = start + timedelta(hours=2)
                runs.append(
                    {
                        "enrollment_id": eid,
                        "journey": "cart",
                        "step": "remind",
                        "at": later,
                        "outcome": "send cart_reminder",
                    }
                )
                runs.append(
                    {
                        "enrollment_id": eid,
                        "journey": "cart",
                        "step": "coupon",
                        "at": later,
                        "outcome": "variant x",
                    }
                )
        # Enrollment 6 entered in February: its March run is not March's cohort's funnel.
        runs.append(
            {
                "enrollment_id": 6,
                "journey": "cart",
                "step": "coupon",
                "at": day(1),
                "outcome": "variant a",
            }
        )
        # A quiet-hours deferral runs `remind` twice for enrollment 1: still one enrollment.
        runs.append(
            {
                "enrollment_id": 1,
                "journey": "cart",
                "step": "remind",
                "at": day(2, hour=1),
                "outcome": "deferred: quiet hours",
            }
        )
        conn.execute(insert(step_runs), runs)
        conn.execute(
            insert(outbox),
            [
                _message(1, 1, "c1", "remind", "cart_reminder", remind_at),
                _message(2, 2, "c2", "remind", "cart_reminder", day(3, hour=14)),
                _message(3, 3, "c3", "remind", "cart_reminder", day(4, hour=14)),
                _message(4, 7, "c1", "remind", "cart_reminder", day(8, hour=14)),
                _message(5, 1, "c1", "coupon_a", "coupon_percent", day(2, hour=15)),
                _message(6, 2, "c2", "coupon_a", "coupon_percent", day(3, hour=15), "failed"),
                _message(7, 3, "c3", "coupon_b", "coupon_shipping", day(9)),
                _message(8, 6, "c6", "remind", "cart_reminder", day(20, 2)),
            ],
        )
        conn.execute(
            insert(events),
            [
                # Orders: February (the period before) and March.
                _event("o1", "order.placed", "c1", day(10, 2), {"total": 100}),
                _event("o2", "order.placed", "c2", day(12, 2), {"total": 100}),
                _event("o3", "order.placed", "c3", day(20, 2), {"total": 200}),
                _event("o4", "order.placed", "c6", day(25, 2), {"total": 50}),
                _event("o5", "order.placed", "c1", day(5), {"total": 100}),
                _event("o6", "order.placed", "c1", day(20), {"total": 100}),
                _event("o7", "order.placed", "c3", day(10), {"total": 300}),
                _event("o8", "order.placed", "c2", day(2, 4), {"total": 999}),  # April
                # Email events, by message id (the outbox row id as a string).
                _event("e1", "email.opened", "c1", day(2, hour=18), {"message_id": "1"}),
                _event("e2", "email.opened", "c1", day(3), {"message_id": "1"}),  # again
                _event("e3", "email.opened", "c2", day(4), {"message_id": "2"}),
                _event("e4", "email.clicked", "c1", day(3), {"message_id": "1"}),
                _event("e5", "email.bounced", "c3", day(4, hour=15), {"message_id": "3"}),
                _event("e6", "email.unsubscribed", "c2", day(4), {"message_id": "2"}),
                _event("e7", "email.delivered", "c1", day(2, hour=15), {"message_id": "1"}),
                _event("e8", "email.opened", "c6", day(21, 2), {"message_id": "8"}),  # Feb mail
                _event("e9", "email.opened", "c1", day(3), {"message_id": "not-a-number"}),
                # No message id: the customer's latest email before it (message 7).
                _event("e10", "email.opened", "c3", day(12)),
            ],
        )
        conn.execute(
            insert(survey_answers),
            [
                _answer(
                    1,
                    "c1",
                    "post",
                    "nps",
                    10,
                    "promoter",
                    day(3),
                    comment="Fast delivery, great service",
                    sentiment="positive",
                    sentiment_score=0.8,
                    keywords=["delivery", "service"],
                ),
                _answer(2, "c2", "post", "nps", 9, "promoter", day(4)),
                _answer(
                    3,
                    "c3",
                    "post",
                    "nps",
                    9,
                    "promoter",
                    day(5),
                    comment="배송이 빨라요",
                    sentiment="positive",
                    sentiment_score=0.4,
                    keywords=["배송"],
                ),
                _answer(4, "c4", "post", "nps", 7, "passive", day(6)),
                _answer(
                    5,
                    "c5",
                    "post",
                    "nps",
                    5,
                    "detractor",
                    day(7),
                    comment="Late delivery and a damaged box",
                    sentiment="negative",
                    sentiment_score=-0.6,
                    keywords=["delivery", "box"],
                ),
                _answer(6, "c6", "post", "nps", 0, "detractor", day(7, 2)),  # February
                _answer(7, "c1", "cart", "csat", 5, "satisfied", day(8)),
                _answer(8, "c2", "cart", "csat", 4, "satisfied", day(9)),
                _answer(9, "c3", "cart", "csat", 3, "neutral", day(10)),
                _answer(10, "c4", "cart", "csat", 1, "unsatisfied", day(11)),
            ],
        )
        conn.execute(
            insert(stage_history),
            [
                {
                    "customer_id": "c4",
                    "from_stage": None,
                    "to_stage": "awareness",
                    "at": day(1),
                    "reason": "created",
                },
                {
                    "customer_id": "c5",
                    "from_stage": "awareness",
                    "to_stage": "consideration",
                    "at": day(2),
                    "reason": "rule",
                },
                {
                    "customer_id": "c1",
                    "from_stage": "purchase",
                    "to_stage": "loyalty",
                    "at": day(5),
                    "reason": "rule",
                },
                {
                    "customer_id": "c3",
                    "from_stage": "purchase",
                    "to_stage": "loyalty",
                    "at": day(10),
                    "reason": "rule",
                },
                {
                    "customer_id": "c6",
                    "from_stage": "awareness",
                    "to_stage": "purchase",
                    "at": day(25, 2),
                    "reason": "rule",
                },
            ],
        )
