"""The SQL of the dashboard's customer pages: search, and everything stored about one person.

Each function reads by customer id through an index (``ix_outbox_customer``,
``ix_enrollments_customer``, ``ix_events_customer_type``, ``ix_survey_answers_customer``,
``ix_stage_history_customer``); step runs are read through ``ix_step_runs_journey_step``
with the journey's step ids spelled out, since nothing indexes them by enrollment.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, func, or_, select

from journeys.store.tables import (
    customers,
    enrollments,
    events,
    outbox,
    stage_history,
    step_runs,
    survey_answers,
)

EMAIL_EVENT_PREFIX = "email."


def search_customers(conn: Connection, query: str, limit: int = 50) -> Sequence[Any]:
    """Customers whose id or email is ``query`` or starts with it (emails case-insensitive)."""
    q = query.strip()
    if not q:
        return []
    pattern = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    stmt = (
        select(
            customers.c.id,
            customers.c.email,
            customers.c.first_name,
            customers.c.last_name,
            customers.c.stage,
            customers.c.orders_count,
            customers.c.lifetime_value,
        )
        .where(
            or_(
                customers.c.id == q,
                customers.c.id.like(q.replace("%", "\\%").replace("_", "\\_") + "%", escape="\\"),
                func.lower(customers.c.email).like(pattern, escape="\\"),
            )
        )
        .order_by(customers.c.id)
        .limit(limit)
    )
    return conn.execute(stmt).all()


def customer(conn: Connection, customer_id: str) -> Any | None:
    """The customer's row, or None."""
    return conn.execute(select(customers).where(customers.c.id == customer_id)).first()


def stages_of(conn: Connection, customer_id: str) -> Sequence[Any]:
    """The customer's stage changes, oldest first."""
    stmt = (
        select(stage_history)
        .where(stage_history.c.customer_id == customer_id)
        .order_by(stage_history.c.at, stage_history.c.id)
    )
    return conn.execute(stmt).all()


def enrollments_of(conn: Connection, customer_id: str) -> Sequence[Any]:
    """The customer's enrollments, newest first."""
    stmt = (
        select(enrollments)
        .where(enrollments.c.customer_id == customer_id)
        .order_by(enrollments.c.entered_at.desc(), enrollments.c.id.desc())
    )
    return conn.execute(stmt).all()


def step_runs_of(
    conn: Connection, journey: str, steps: Iterable[str], enrollment_ids: Sequence[int]
) -> Sequence[Any]:
    """Step runs of these enrollments of ``journey`` at ``steps``, in order."""
    step_ids = sorted(set(steps))
    if not step_ids or not enrollment_ids:
        return []
    stmt = (
        select(step_runs)
        .where(
            step_runs.c.journey == journey,
            step_runs.c.step.in_(step_ids),
            step_runs.c.enrollment_id.in_(list(enrollment_ids)),
        )
        .order_by(step_runs.c.at, step_runs.c.id)
    )
    return conn.execute(stmt).all()


def messages_of(conn: Connection, customer_id: str, limit: int = 200) -> Sequence[Any]:
    """The customer's messages (without their bodies), newest first."""
    cols = [c for c in outbox.c if c.name not in ("html", "text")]
    stmt = (
        select(*cols)
        .where(outbox.c.customer_id == customer_id)
        .order_by(outbox.c.created_at.desc(), outbox.c.id.desc())
        .limit(limit)
    )
    return conn.execute(stmt).all()


def events_of(conn: Connection, customer_id: str, limit: int = 200) -> Sequence[Any]:
    """The customer's latest events, newest first."""
    stmt = (
        select(events.c.id, events.c.type, events.c.occurred_at, events.c.data, events.c.error)
        .where(events.c.customer_id == customer_id)
        .order_by(events.c.occurred_at.desc(), events.c.seq.desc())
        .limit(limit)
    )
    return conn.execute(stmt).all()


def answers_of(conn: Connection, customer_id: str) -> Sequence[Any]:
    """The customer's survey answers, newest first."""
    stmt = (
        select(survey_answers)
        .where(survey_answers.c.customer_id == customer_id)
        .order_by(survey_answers.c.answered_at.desc(), survey_answers.c.id.desc())
    )
    return conn.execute(stmt).all()
