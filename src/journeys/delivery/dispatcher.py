"""Dispatch: due outbox messages through their channels, each at most (or at least) once.

:func:`dispatch` is the one entry point. For each channel with due messages it repeats:

1. **claim** (one transaction): take a batch of due ``pending`` rows (PostgreSQL: ``FOR UPDATE
   SKIP LOCKED``; SQLite: an immediate transaction), check consent again against the store as
   it is *now* (an unsubscribe committed while the message waited stops it: ``suppressed``),
   mark the rest ``sending`` with one more attempt, and **commit** before any provider call;
2. **send** the batch through the channel;
3. **record** each answer (second transaction): ``sent`` (a provider accepted it, with its id)
   or ``logged`` (console/file), ``pending`` again with a time to retry, ``failed`` with the
   reason, or ``unknown``.

A crash between 1 and 3 leaves the batch ``sending``. Once a channel's lease has passed
(twice the longest a batch can take, at least a minute) those rows are settled by the next
dispatch: ``unknown`` under ``at_most_once`` (the default for marketing: never sent twice,
listed by ``journeys outbox``, sent again only by ``journeys outbox retry``), back to
``pending`` under ``at_least_once`` (the default for transactional messages).

Answers: 429 closes the provider's gate until its reset (``X-RateLimit-Reset`` /
``Retry-After``): no call to that channel before then, waiting in this dispatch when the wait
is short (``max_wait``), else leaving the channel to a later one; the rate-limited message is
retried after the reset and does not count as a failed attempt. 5xx and time-outs are retried
with exponential backoff and jitter up to ``retry.attempts``, then ``failed``; a time-out
under ``at_most_once`` is ``unknown`` at once (the provider may have accepted it). Other 4xx
are ``failed`` with the provider's message. A client-side ``rate_limit`` spaces the calls.
All times come from the injected clock, and waiting is the clock's ``sleep``.
"""

from __future__ import annotations

import logging
import os
import random
import uuid
import weakref
from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from journeys.channels.base import (
    Channel,
    ChannelError,
    ChannelRegistry,
    OutboundMessage,
    SendResult,
    UnknownChannelError,
)
from journeys.clock import Clock
from journeys.delivery.config import AT_MOST_ONCE, ChannelConfig, channel_config
from journeys.delivery.consent import OPT_IN_FIELDS, may_send
from journeys.delivery.email import email_headers
from journeys.settings import Settings
from journeys.store import outbox as store

log = logging.getLogger("journeys.delivery")

MAX_WAIT = 10.0
"""Longest a dispatch waits in place for a rate-limit reset or a rate-limit token; a longer
wait leaves the channel to the next dispatch."""
DEFAULT_RATE_WAIT = 1.0
"""Seconds to hold a channel after a 429 that did not say how long."""
MAX_RETRY_AFTER = 3600.0
"""A provider's wait longer than this is taken for a clock mismatch and cut to it."""
MIN_LEASE = 60.0
"""No row is taken for abandoned before it has been ``sending`` this long."""

_PROCESS_IDS: dict[int, str] = {}


def process_id() -> str:
    """Who marks rows ``sending`` when the caller names no dispatcher: this host and process
    (a forked child gets its own)."""
    pid = os.getpid()
    if pid not in _PROCESS_IDS:
        _PROCESS_IDS[pid] = f"{os.uname().nodename}:{pid}:{uuid.uuid4().hex[:8]}"
    return _PROCESS_IDS[pid]


@dataclass
class DispatchReport:
    """What one :func:`dispatch` did: messages by the status it left them in (``retrying``
    for those back in the queue with a time to retry), settled crashes, deferred channels."""

    counts: Counter[str] = field(default_factory=Counter)
    recovered: Counter[str] = field(default_factory=Counter)
    """Rows a dead dispatcher left ``sending``: how many became ``unknown``/``pending``."""
    deferred: dict[str, datetime] = field(default_factory=dict)
    """Channels left for later because the provider asked to wait until then."""
    calls: int = 0
    """Provider calls made."""

    @property
    def handled(self) -> int:
        """Messages this dispatch took from the queue."""
        return sum(self.counts.values())

    @property
    def sent(self) -> int:
        """Messages a provider accepted."""
        return self.counts[store.SENT]

    @property
    def logged(self) -> int:
        """Messages a console or file channel wrote down (reaching nobody)."""
        return self.counts[store.LOGGED]

    def summary(self) -> str:
        """``sent 12, logged 3, retrying 2`` (only what happened)."""
        parts = [f"{k} {v}" for k, v in sorted(self.counts.items()) if v]
        parts += [f"recovered {k} {v}" for k, v in sorted(self.recovered.items()) if v]
        parts += [f"{name} waits until {at:%H:%M:%S}" for name, at in self.deferred.items()]
        return ", ".join(parts) or "nothing due"


@dataclass
class _Gate:
    """A provider's state across dispatches: closed until ``until`` after a 429, and the
    times of recent calls for the client-side rate limit (at most ``messages`` calls in any
    ``per`` window)."""

    until: datetime | None = None
    calls: deque[datetime] = field(default_factory=deque)
    cautious: bool = False
    """The last batch met a 429: claim only as many rows as go out at once until a batch
    passes without one (rows claimed behind a 429 would only go back to the queue)."""

    def wait(self, now: datetime, config: ChannelConfig) -> float:
        """Seconds before the next call may go."""
        wait = (self.until - now).total_seconds() if self.until and self.until > now else 0.0
        rate = config.rate_limit
        if rate is not None and self.allowance(now, config) <= 0:
            oldest = self.calls[len(self.calls) - rate.messages]
            wait = max(wait, (oldest - now).total_seconds() + rate.seconds)
        return wait

    def allowance(self, now: datetime, config: ChannelConfig) -> int:
        """How many calls may go in the next batch (the rate limit's room, the batch size,
        or the concurrency just after a 429)."""
        rate = config.rate_limit
        size = min(config.batch, config.concurrency) if self.cautious else config.batch
        if rate is None:
            return size
        window = now - timedelta(seconds=rate.seconds)
        while self.calls and self.calls[0] <= window:
            self.calls.popleft()
        return max(0, min(size, rate.messages - len(self.calls)))

    def spend(self, calls: int, at: datetime, config: ChannelConfig) -> None:
        if config.rate_limit is not None:
            self.calls.extend([at] * calls)

    def close_until(self, until: datetime) -> None:
        if self.until is None or until > self.until:
            self.until = until


_GATES: weakref.WeakKeyDictionary[Any, _Gate] = weakref.WeakKeyDictionary()


def _gate(channel: Channel) -> _Gate:
    gate = _GATES.get(channel)
    if gate is None:
        gate = _GATES[channel] = _Gate()
    return gate


def dispatch(
    db: Engine,
    channels: ChannelRegistry | Mapping[str, Channel],
    settings: Settings,
    clock: Clock,
    limit: int = 1000,
    *,
    dispatcher_id: str | None = None,
    max_wait: float = MAX_WAIT,
    rng: random.Random | None = None,
) -> DispatchReport:
    """Send up to ``limit`` due messages (see the module docstring); returns what happened.

    ``dispatcher_id`` names who marks rows ``sending`` (default: this process);
    ``max_wait``: the longest wait for a provider's reset or a rate-limit token done in
    place; ``rng``: the jitter of retry waits.
    """
    registry = channels if isinstance(channels, ChannelRegistry) else ChannelRegistry(channels)
    run = _Run(
        db,
        registry,
        settings,
        clock,
        limit,
        dispatcher_id or process_id(),
        max_wait,
        rng or random.Random(),
    )
    run.recover()
    with _reading(db) as conn:
        names = store.due_channels(conn, clock.now())
    for name in names:
        if run.report.handled >= limit:
            break
        run.drain(name)
    return run.report


@contextmanager
def _reading(db: Engine) -> Iterator[Any]:
    """A read-only transaction (SQLite: deferred, so it does not take the write lock)."""
    with db.connect() as conn:
        conn = conn.execution_options(journeys_sqlite_begin="DEFERRED")
        with conn.begin() as tx:
            yield conn
            tx.rollback()


@dataclass
class _Run:
    """One :func:`dispatch` call."""

    db: Engine
    registry: ChannelRegistry
    settings: Settings
    clock: Clock
    limit: int
    me: str
    max_wait: float
    rng: random.Random
    report: DispatchReport = field(default_factory=DispatchReport)

    def recover(self) -> None:
        """Settle rows whose dispatcher died while they were ``sending``."""
        now = self.clock.now()
        configs: dict[str, ChannelConfig] = {}
        unknown: list[int] = []
        retry: list[int] = []
        with self.db.begin() as conn:
            for row in store.stale(conn, now - timedelta(seconds=MIN_LEASE)):
                name = row["channel"]
                config = configs.setdefault(name, channel_config(self.settings, name))
                if row["sending_at"] > now - timedelta(seconds=config.lease):
                    continue  # its dispatcher may still be waiting for the provider
                if config.guarantee(row["message_kind"]) == AT_MOST_ONCE:
                    unknown.append(row["id"])
                else:
                    retry.append(row["id"])
            store.settle_stale(conn, unknown=unknown, retry=retry, now=now)
        self.report.recovered.update({store.UNKNOWN: len(unknown), store.PENDING: len(retry)})
        if unknown or retry:
            log.warning(
                "%d messages were left sending by a dispatcher that stopped: %d unknown "
                "(journeys outbox --status unknown), %d queued again",
                len(unknown) + len(retry),
                len(unknown),
                len(retry),
            )

    def drain(self, name: str) -> None:
        """Dispatch channel ``name`` until nothing of it is due, the limit is reached, or its
        provider asks for a wait longer than ``max_wait``."""
        config = channel_config(self.settings, name)
        try:
            channel: Channel | None = self.registry.get_channel(name)
            missing = ""
        except UnknownChannelError as exc:
            channel, missing = None, str(exc)
        gate = _gate(channel) if channel is not None else _Gate()
        report = self.report
        while report.handled < self.limit:
            now = self.clock.now()
            wait = gate.wait(now, config)
            if wait > 0:
                if wait > self.max_wait:
                    report.deferred[name] = now + timedelta(seconds=wait)
                    return
                _sleep(self.clock, wait)
                now = self.clock.now()
            size = min(config.batch, self.limit - report.handled, gate.allowance(now, config))
            if size <= 0:
                return
            with self.db.begin() as conn:
                rows = store.pick(conn, name, now, size)
                if not rows:
                    return
                if channel is None:
                    store.mark(conn, {r["id"]: missing for r in rows}, store.FAILED)
                    report.counts[store.FAILED] += len(rows)
                    continue
                blocked = _consent(conn, rows, self.settings)
                store.mark(conn, blocked, store.SUPPRESSED)
                sending = [r for r in rows if r["id"] not in blocked]
                store.begin_sending(conn, [r["id"] for r in sending], now, self.me)
            # Committed: a crash from here on leaves these rows `sending`, never resent blindly.
            report.counts[store.SUPPRESSED] += len(blocked)
            if sending:
                self.send(channel, config, gate, sending)
            if len(rows) < size:
                return

    def send(
        self, channel: Channel, config: ChannelConfig, gate: _Gate, rows: list[dict[str, Any]]
    ) -> None:
        """Call the provider for claimed rows and record every answer."""
        started = self.clock.now()
        outcomes = _send(channel, rows, self.settings)
        done = self.clock.now()
        results = [
            _settle(row, outcome, config, done, self.rng)
            for row, outcome in zip(rows, outcomes, strict=True)
        ]
        with self.db.begin() as conn:
            store.record(conn, self.me, results)
        attempted = sum(1 for o in outcomes if not isinstance(o, ChannelError) or o.attempted)
        self.report.calls += attempted
        gate.spend(attempted, started, config)
        self.report.counts.update(r["report"] for r in results)
        limited = [o for o in outcomes if isinstance(o, ChannelError) and o.rate_limited]
        gate.cautious = bool(limited)
        if limited:
            wait = max(_provider_wait(o) for o in limited)
            gate.close_until(done + timedelta(seconds=wait))


def _sleep(clock: Clock, seconds: float) -> None:
    sleep = getattr(clock, "sleep", None)
    if sleep is None:
        raise TypeError(f"{type(clock).__name__} cannot sleep; give dispatch a clock with sleep()")
    sleep(seconds)


def _consent(conn: Any, rows: Sequence[Mapping[str, Any]], settings: Settings) -> dict[int, str]:
    """Rows that may no longer go, with the reason (consent as the store says now)."""
    personal = [r for r in rows if r["kind"] != "notify" and r["channel"] in OPT_IN_FIELDS]
    if not personal:
        return {}
    profiles, suppressed, left_topic = store.consent_facts(conn, personal)
    blocked: dict[int, str] = {}
    for row in personal:
        customer = profiles.get(row["customer_id"])
        if customer is None:
            blocked[row["id"]] = "suppressed: the customer was erased"
            continue
        if row["id"] in left_topic:
            blocked[row["id"]] = f"suppressed: the customer left the topic {row['topic']!r}"
            continue
        reason = may_send(
            customer, row["channel"], row["message_kind"], settings, suppressed.get(row["id"])
        )
        if reason:
            blocked[row["id"]] = reason
    return blocked


def outbound(row: Mapping[str, Any], settings: Settings) -> OutboundMessage:
    """The message a channel gets for an outbox row (email rows rendered without headers
    get the project's From and unsubscribe headers)."""
    headers = dict(row.get("headers") or {})
    if not headers and row["channel"] == "email":
        kind = "transactional" if row["kind"] == "notify" else row["message_kind"]
        headers = email_headers(settings, row["customer_id"], kind, at=row["due_at"])
    return OutboundMessage(
        outbox_id=row["id"],
        customer_id=row["customer_id"],
        journey=row["journey"],
        step=row["step"],
        template=row["template"],
        channel=row["channel"],
        recipient=row["recipient"],
        subject=row["subject"] or "",
        html=row["html"] or "",
        text=row["text"] or "",
        locale=row["locale"] or "",
        due_at=row["due_at"],
        headers=headers,
        message_kind=row["message_kind"],
    )


def _send(
    channel: Channel, rows: Sequence[Mapping[str, Any]], settings: Settings
) -> list[SendResult | ChannelError]:
    messages = [outbound(r, settings) for r in rows]
    try:
        outcomes = list(channel.send_batch(messages))
        if len(outcomes) != len(messages):
            raise ChannelError(f"returned {len(outcomes)} results for {len(messages)} messages")
    except Exception as exc:
        # The channel could say nothing per message; some may have gone out before it failed.
        log.error("channel %r failed for %d messages: %s", channel, len(messages), exc)
        error = ChannelError(
            f"the channel failed for the whole batch ({type(exc).__name__}: {exc})",
            retryable=True,
            ambiguous=True,
        )
        return [error for _ in messages]
    return outcomes


def _settle(
    row: Mapping[str, Any],
    outcome: SendResult | ChannelError,
    config: ChannelConfig,
    now: datetime,
    rng: random.Random,
) -> dict[str, Any]:
    """The row update for one answer; ``report`` is the status this dispatch reports."""
    if isinstance(outcome, SendResult):
        return {
            "id": row["id"],
            "status": outcome.status,
            "report": outcome.status,
            "sent_at": now,
            "provider_id": outcome.provider_id,
            "provider_status": outcome.detail,
        }
    attempts = int(row["attempts"]) + 1
    error = str(outcome)[:1000]
    if not outcome.attempted or outcome.rate_limited:
        # Never reached the provider, or refused for the rate only: not a failed attempt.
        return _later(row, now + timedelta(seconds=_provider_wait(outcome)), error, uncount=1)
    if outcome.ambiguous and config.guarantee(row["message_kind"]) == AT_MOST_ONCE:
        return {"id": row["id"], "status": store.UNKNOWN, "report": store.UNKNOWN, "error": error}
    if not outcome.retryable:
        return {"id": row["id"], "status": store.FAILED, "report": store.FAILED, "error": error}
    if attempts >= config.retry.attempts:
        error = f"gave up after {attempts} attempts: {error}"[:1000]
        return {"id": row["id"], "status": store.FAILED, "report": store.FAILED, "error": error}
    wait = config.retry.delay(attempts, rng)
    if outcome.retry_after is not None:
        wait = max(wait, _provider_wait(outcome))
    return _later(row, now + timedelta(seconds=wait), error)


def _provider_wait(error: ChannelError) -> float:
    """The wait a provider asked for (its default when it said nothing), within reason."""
    wait = error.retry_after if error.retry_after is not None else DEFAULT_RATE_WAIT
    return min(max(0.0, wait), MAX_RETRY_AFTER)


def _later(row: Mapping[str, Any], when: datetime, error: str, uncount: int = 0) -> dict[str, Any]:
    return {
        "id": row["id"],
        "status": store.PENDING,
        "report": "retrying",
        "error": error,
        "next_attempt_at": when,
        "uncount": uncount,
    }
