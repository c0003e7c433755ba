"""Dispatch: due outbox rows to their channels, each message once.

This is the embedded default (claim, send and mark in one transaction per batch); the
delivery guarantees of real providers live in :mod:`journeys.delivery` when configured.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from journeys.channels.base import ChannelError, ChannelRegistry, OutboundMessage, SendResult
from journeys.clock import Clock
from journeys.store.interface import Store, Tx

log = logging.getLogger("journeys.dispatch")


def dispatch(store: Store, channels: ChannelRegistry, clock: Clock, limit: int = 1000) -> int:
    """Send due outbox messages through their channels; returns how many were sent."""
    sent_total = 0
    while True:
        now = clock.now()

        def batch(tx: Tx, now: datetime = now) -> tuple[int, int, int]:
            rows = tx.claim_outbox(now, limit)
            results: list[dict[str, Any]] = []
            by_channel: dict[str, list[dict[str, Any]]] = {}
            for row in rows:
                by_channel.setdefault(row["channel"], []).append(row)
            for name, group in by_channel.items():
                results.extend(_send_group(channels, name, group, now))
            tx.finish_outbox(results)
            return len(rows), len(results), sum(1 for r in results if r["status"] == "sent")

        claimed, finished, sent = store.transaction(batch)
        sent_total += sent
        if claimed < limit or not finished:
            # A short batch took everything due; a batch that only failed retryably (provider
            # down) stays pending for the next dispatch instead of being claimed at once.
            return sent_total


def _send_group(
    channels: ChannelRegistry, name: str, rows: list[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    try:
        channel = channels.get_channel(name)
    except KeyError as exc:
        return [_result(r, "failed", now, error=str(exc)) for r in rows]
    messages = [
        OutboundMessage(
            outbox_id=r["id"],
            customer_id=r["customer_id"],
            journey=r["journey"],
            step=r["step"],
            template=r["template"],
            channel=r["channel"],
            recipient=r["recipient"],
            subject=r["subject"] or "",
            html=r["html"] or "",
            text=r["text"] or "",
            locale=r["locale"] or "",
            due_at=r["due_at"],
        )
        for r in rows
    ]
    try:
        outcomes: list[SendResult | ChannelError] = list(channel.send_batch(messages))
        if len(outcomes) != len(rows):
            raise ChannelError(
                f"channel {name!r} returned {len(outcomes)} results for {len(rows)} messages"
            )
    except Exception as exc:
        # The channel could say nothing per message (base.py): every message stays pending
        # for the next dispatch. Raising here instead would roll back the rows other channels
        # of this batch already sent, and they would be sent again.
        log.error("channel %r failed for %d messages: %s", name, len(rows), exc)
        return []
    results = []
    for row, outcome in zip(rows, outcomes, strict=True):
        if isinstance(outcome, ChannelError):
            # Retryable errors stay pending for the next dispatch; others fail for good.
            if not outcome.retryable:
                results.append(_result(row, "failed", now, error=str(outcome)))
        else:
            results.append(_result(row, "sent", now, provider_id=outcome.provider_id))
    return results


def _result(
    row: Mapping[str, Any],
    status: str,
    now: datetime,
    *,
    provider_id: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "_id": row["id"],
        "status": status,
        "sent_at": now if status == "sent" else None,
        "provider_id": provider_id,
        "error": error,
    }
