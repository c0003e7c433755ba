"""Helpers for the delivery tests: outbox rows straight in the store, messages, settings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from journeys.settings import Settings
from journeys.store.tables import customers, enrollments, outbox

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


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
) -> list[int]:
    """``count`` pending outbox rows for customers c-<n> (created, opted in or not), each with
    its own enrollment; returns the outbox ids."""
    people, runs, rows = [], [], []
    for n in range(first, first + count):
        cid = f"c-{n}"
        people.append(
            {
                "id": cid,
                "email": f"person{n}@example.com",
                "phone": f"+1415555{n % 10000:04d}",
                "first_name": f"Person{n}",
                "locale": "en",
                "email_opt_in": opt_in,
                "attributes": {"sms_opt_in": opt_in} if opt_in is not None else {},
                "created_at": due_at,
                "updated_at": due_at,
                **(customer or {}),
            }
        )
        runs.append(
            {
                "id": n,
                "journey": journey,
                "version": "v1",
                "customer_id": cid,
                "status": "active",
                "step": step,
                "vars": {},
                "entered_at": due_at,
            }
        )
        recipient = people[-1]["phone"] if channel == "sms" else people[-1]["email"]
        rows.append(
            {
                "enrollment_id": n,
                "step": step,
                "attempt": 1,
                "journey": journey,
                "customer_id": cid,
                "kind": kind,
                "template": "cart_reminder",
                "channel": channel,
                "locale": "en",
                "recipient": recipient,
                "subject": f"Hello Person{n}",
                "html": f"<p>Hello Person{n}</p>",
                "text": f"Hello Person{n}\n",
                "status": "pending",
                "due_at": due_at,
                "created_at": due_at,
                "message_kind": message_kind,
            }
        )
    with engine.begin() as conn:
        conn.execute(customers.insert(), people)
        conn.execute(enrollments.insert(), runs)
        conn.execute(outbox.insert(), rows)
        ids = conn.scalars(
            sa.select(outbox.c.id).where(outbox.c.enrollment_id.in_([r["id"] for r in runs]))
        ).all()
    return sorted(ids)


def statuses(engine: Engine, ids: Iterable[int] | None = None) -> dict[int, str]:
    """Outbox id → status."""
    stmt = sa.select(outbox.c.id, outbox.c.status)
    if ids is not None:
        stmt = stmt.where(outbox.c.id.in_(list(ids)))
    with engine.connect() as conn:
        return dict(conn.execute(stmt).all())


def rows(engine: Engine) -> list[dict[str, Any]]:
    """Every outbox row as a dict, by id."""
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(outbox).order_by(outbox.c.id))]


def delivery_settings(channels: Mapping[str, Any], **extra: Any) -> Settings:
    """Settings with ``channels`` (and the project sender) for dispatch tests."""
    return Settings(
        sender_email="shop@example.com",
        sender_name="Example Shop",
        sender_address="1 Main St, Springfield",
        channels={name: dict(spec) for name, spec in channels.items()},
        **extra,
    )


def settle(
    engine: Engine,
    channels: Any,
    settings: Settings,
    clock: Any,
    *,
    rounds: int = 10_000,
    tick: float = 0.0,
    **kwargs: Any,
) -> list[Any]:
    """Dispatch, moving the virtual clock to the next retry (and at least ``tick`` seconds,
    like a runner that dispatches every ``tick``), until nothing is pending; returns the
    reports."""
    from journeys.delivery.dispatcher import dispatch
    from journeys.store import outbox as store

    reports = []
    for _ in range(rounds):
        report = dispatch(engine, channels, settings, clock, **kwargs)
        reports.append(report)
        with engine.connect() as conn:
            due = store.next_due(conn)
        if due is None:
            return reports
        if report.deferred and report.handled == 0:
            due = max(due, min(report.deferred.values()))
        due = max(due, clock.now() + timedelta(seconds=tick))
        if due > clock.now():
            clock.set(due)
    raise AssertionError(f"the outbox did not settle in {rounds} dispatches")
