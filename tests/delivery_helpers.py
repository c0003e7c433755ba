"""Helpers for the delivery tests: outbox rows straight in the store, messages, settings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from journeys.channels.base import OutboundMessage
from journeys.settings import Settings
from journeys.store.tables import outbox
from journeys.testing.seed import START, seed_outbox

__all__ = ["START", "delivery_settings", "message", "rows", "seed_outbox", "settle", "statuses"]


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


def message(outbox_id: int = 1, **changes: Any) -> OutboundMessage:
    """A rendered email for channel tests (``changes`` replace fields)."""
    fields: dict[str, Any] = {
        "outbox_id": outbox_id,
        "customer_id": "c-1",
        "journey": "cart",
        "step": "remind",
        "template": "cart_reminder",
        "channel": "email",
        "recipient": "a@example.com",
        "subject": "Hello",
        "html": "<p>Hello</p>",
        "text": "Hello",
        "locale": "en",
        "due_at": START,
        "headers": {"From": "Example Shop <shop@example.com>"},
    }
    return OutboundMessage(**{**fields, **changes})


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
