"""Outbox rows straight in the store, for the delivery tests and the delivery benchmark."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from journeys.store.tables import customers, enrollments, outbox

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
"""When the seeded messages are due (a Monday morning)."""


def seed_outbox(
    engine: Engine,
    count: int,
    *,
    channel: str = "email",
    message_kind: str = "marketing",
    kind: str = "send",
    opt_in: bool | None = True,
    due_at: datetime = START,
    journey: str = "cart",
    step: str = "remind",
    first: int = 1,
    customer: Mapping[str, Any] | None = None,
    message: Mapping[str, Any] | None = None,
) -> list[int]:
    """``count`` pending outbox rows for customers c-<n> (created with an email and a phone,
    opted in or not, ``customer`` overriding fields), each with its own enrollment; a
    ``Hello Person<n>`` message unless ``message`` gives other columns. Returns the ids."""
    people, runs, rows = [], [], []
    for n in range(first, first + count):
        cid = f"c-{n}"
        person = {**_customer_row(cid, n, opt_in, due_at), **(customer or {})}
        people.append(person)
        runs.append(_enrollment_row(n, cid, journey, step, due_at))
        recipient = person["phone"] if channel == "sms" else person["email"]
        row = _outbox_row(n, cid, journey, step, recipient, due_at)
        kinds = {"kind": kind, "channel": channel, "message_kind": message_kind}
        rows.append({**row, **kinds, **(message or {})})
    with engine.begin() as conn:
        conn.execute(customers.insert(), people)
        conn.execute(enrollments.insert(), runs)
        conn.execute(outbox.insert(), rows)
        ids = conn.scalars(
            sa.select(outbox.c.id).where(outbox.c.enrollment_id.in_([r["id"] for r in runs]))
        ).all()
    return sorted(ids)


def _customer_row(cid: str, n: int, opt_in: bool | None, at: datetime) -> dict[str, Any]:
    """Customer ``cid``, with an email and a phone, opted in to both or not (None: unsaid)."""
    return {
        "id": cid,
        "email": f"person{n}@example.com",
        "phone": f"+1415555{n % 10000:04d}",
        "first_name": f"Person{n}",
        "locale": "en",
        "email_opt_in": opt_in,
        "attributes": {"sms_opt_in": opt_in} if opt_in is not None else {},
        "created_at": at,
        "updated_at": at,
    }


def _enrollment_row(n: int, cid: str, journey: str, step: str, at: datetime) -> dict[str, Any]:
    """Enrollment <n> of ``cid``, active at ``step``."""
    return {
        "id": n,
        "journey": journey,
        "version": "v1",
        "customer_id": cid,
        "status": "active",
        "step": step,
        "vars": {},
        "entered_at": at,
    }


def _outbox_row(
    n: int, cid: str, journey: str, step: str, recipient: str, due_at: datetime
) -> dict[str, Any]:
    """The pending message ``Hello Person<n>`` of enrollment <n>."""
    return {
        "enrollment_id": n,
        "step": step,
        "attempt": 1,
        "journey": journey,
        "customer_id": cid,
        "template": "cart_reminder",
        "locale": "en",
        "recipient": recipient,
        "subject": f"Hello Person{n}",
        "html": f"<p>Hello Person{n}</p>",
        "text": f"Hello Person{n}\n",
        "status": "pending",
        "due_at": due_at,
        "created_at": due_at,
    }
