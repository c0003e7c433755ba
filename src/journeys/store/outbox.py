"""The dispatcher's SQL: claim due outbox rows, record what providers said, recover, list.

Like :mod:`journeys.store.repository`, every function takes an open ``Connection`` and never
commits: the caller owns the transaction. The dispatcher commits the claim (rows marked
``sending``) *before* it calls a provider and records the answer in a second transaction,
so a crash in between leaves rows ``sending`` that :func:`recover_stale` turns into
``unknown`` (at most once) or back into ``pending`` (at least once), never sends them blindly.

Claims: PostgreSQL locks the rows it takes with ``FOR UPDATE SKIP LOCKED`` so workers never
share one; SQLite's transactions begin ``IMMEDIATE`` (:mod:`journeys.store.db`), one writer
at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, or_, select, type_coerce, update

from journeys.store.bulk import IN_CHUNK
from journeys.store.tables import (
    UtcDateTime,
    customers,
    outbox,
    suppressed_addresses,
    suppressions,
    topic_optouts,
)

PENDING = "pending"
SENDING = "sending"
SENT = "sent"
LOGGED = "logged"
FAILED = "failed"
UNKNOWN = "unknown"
SUPPRESSED = "suppressed"
STATUSES = (PENDING, SENDING, SENT, LOGGED, FAILED, UNKNOWN, SUPPRESSED)
"""Every outbox status (docs/delivery.md, "Outbox states")."""

ERASED_ID = "customer_id"
"""The ``channel`` of the hashed entry an erased customer's id leaves in
``suppressed_addresses``."""

RETRYABLE_BY_HAND = (FAILED, UNKNOWN)
"""What ``journeys outbox retry`` may put back in the queue."""


def _chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _due(now: datetime) -> Any:
    return and_(
        outbox.c.status == PENDING,
        outbox.c.due_at <= now,
        or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now),
    )


def due_channels(conn: Connection, now: datetime) -> list[str]:
    """Channels with messages due at ``now`` (pending, and past any retry wait)."""
    stmt = select(outbox.c.channel).where(_due(now)).group_by(outbox.c.channel)
    return sorted(conn.scalars(stmt))


def pick(conn: Connection, channel: str, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` due messages of ``channel``, oldest first, locked for this transaction
    on PostgreSQL (``SKIP LOCKED``: another worker takes others)."""
    stmt = select(outbox).where(_due(now), outbox.c.channel == channel)
    stmt = stmt.order_by(outbox.c.due_at, outbox.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return [dict(r._mapping) for r in conn.execute(stmt)]


def begin_sending(conn: Connection, ids: Sequence[int], now: datetime, dispatcher: str) -> None:
    """Mark picked rows ``sending``: one more attempt, ``sending_at`` now, by ``dispatcher``.
    The caller commits this before calling the provider."""
    for chunk in _chunks(list(ids)):
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_(chunk))
            .values(
                status=SENDING,
                attempts=outbox.c.attempts + 1,
                sending_at=now,
                dispatcher=dispatcher,
            )
        )


def address_hash(channel: str, address: str) -> str:
    """sha256 of the normalised address: lower-case email, the phone as given (E.164)."""
    normal = address.strip().lower() if channel == "email" else address.strip()
    return hashlib.sha256(f"{channel}:{normal}".encode()).hexdigest()


Address = tuple[str, str, str | None]
"""(customer id, channel, recipient address or None)."""


def suppression_reasons(conn: Connection, addresses: Iterable[Address]) -> dict[Address, str]:
    """Why each (customer, channel, recipient) is suppressed now, for those that are:
    ``unsubscribed``, ``bounced`` or ``complaint`` (the customer's suppression on that
    channel), or ``erased`` (the address or the customer id belonged to an erased customer).
    The renderer asks before it renders; the dispatcher again before it sends."""
    wanted = sorted(set(addresses), key=lambda a: (a[0], a[1], a[2] or ""))
    by_customer: dict[tuple[str, str], str] = {}
    for chunk in _chunks(sorted({cid for cid, _, _ in wanted})):
        stmt = select(suppressions.c.customer_id, suppressions.c.channel, suppressions.c.reason)
        for cid, channel, reason in conn.execute(stmt.where(suppressions.c.customer_id.in_(chunk))):
            by_customer[(cid, channel)] = reason
    hashes: dict[Address, list[tuple[str, str]]] = {}
    for cid, channel, recipient in wanted:
        pairs = [(ERASED_ID, address_hash(ERASED_ID, cid))]
        if recipient:
            pairs.append((channel, address_hash(channel, recipient)))
        hashes[(cid, channel, recipient)] = pairs
    kept: dict[tuple[str, str], str] = {}
    digests = sorted({digest for pairs in hashes.values() for _, digest in pairs})
    for chunk in _chunks(digests):
        stmt = select(
            suppressed_addresses.c.channel,
            suppressed_addresses.c.address_hash,
            suppressed_addresses.c.reason,
        ).where(suppressed_addresses.c.address_hash.in_(chunk))
        for channel, digest, reason in conn.execute(stmt):
            kept[(channel, digest)] = reason
    found: dict[Address, str] = {}
    for address, pairs in hashes.items():
        reason = by_customer.get((address[0], address[1]))
        for pair in pairs:
            reason = kept.get(pair, reason)
        if reason:
            found[address] = reason
    return found


def consent_facts(
    conn: Connection, rows: Sequence[Mapping[str, Any]]
) -> tuple[dict[str, dict[str, Any]], dict[int, str], set[int]]:
    """What consent needs to know about outbox ``rows`` now: the customers' profiles by id (a
    customer erased since is missing), by outbox id why the row's address is suppressed
    (:func:`suppression_reasons`) when it is, and the ids of rows whose customer left the
    row's subscription topic."""
    profiles: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(sorted({r["customer_id"] for r in rows})):
        for row in conn.execute(select(customers).where(customers.c.id.in_(chunk))):
            profiles[row.id] = dict(row._mapping)
    keys = {r["id"]: (r["customer_id"], r["channel"], r.get("recipient")) for r in rows}
    reasons = suppression_reasons(conn, keys.values())
    suppressed = {i: reasons[key] for i, key in keys.items() if key in reasons}
    return profiles, suppressed, _left_topic(conn, rows)


def _left_topic(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> set[int]:
    """Ids of ``rows`` whose customer opted out of the row's topic (one query per chunk)."""
    wanted = {(r["customer_id"], r["topic"]): r["id"] for r in rows if r.get("topic")}
    if not wanted:
        return set()
    left: set[int] = set()
    topics = sorted({topic for _, topic in wanted})
    for chunk in _chunks(sorted({cid for cid, _ in wanted})):
        found = conn.execute(
            select(topic_optouts.c.customer_id, topic_optouts.c.topic).where(
                topic_optouts.c.customer_id.in_(chunk), topic_optouts.c.topic.in_(topics)
            )
        )
        left.update(wanted[key] for key in map(tuple, found) if key in wanted)
    return left


_RECORD = (
    update(outbox)
    .where(
        outbox.c.id == bindparam("_id"),
        outbox.c.dispatcher == bindparam("_dispatcher"),
        # Literals, not IN: an expanding parameter cannot run in executemany.
        or_(outbox.c.status == SENDING, outbox.c.status == UNKNOWN),
    )
    .values(
        status=bindparam("status"),
        sent_at=bindparam("sent_at"),
        provider_id=bindparam("provider_id"),
        provider_status=bindparam("provider_status"),
        error=bindparam("error"),
        next_attempt_at=bindparam("next_attempt_at"),
        attempts=outbox.c.attempts - bindparam("uncount"),
    )
)


def record(conn: Connection, dispatcher: str, results: Sequence[Mapping[str, Any]]) -> int:
    """Store what happened to messages this dispatcher marked ``sending``: each result has
    ``id``, ``status`` and optionally ``sent_at``, ``provider_id``, ``provider_status``,
    ``error``, ``next_attempt_at`` and ``uncount`` (1 when the call never happened). A row
    that recovery marked ``unknown`` meanwhile gets the real answer; another dispatcher's
    row is left alone. Returns the rows changed."""
    if not results:
        return 0
    params = [
        {
            "_id": r["id"],
            "_dispatcher": dispatcher,
            "status": r["status"],
            "sent_at": r.get("sent_at"),
            "provider_id": r.get("provider_id"),
            "provider_status": r.get("provider_status"),
            "error": r.get("error"),
            "next_attempt_at": r.get("next_attempt_at"),
            "uncount": int(r.get("uncount", 0)),
        }
        for r in results
    ]
    return int(conn.execute(_RECORD, params).rowcount or 0)


def stale(conn: Connection, before: datetime) -> list[dict[str, Any]]:
    """Rows marked ``sending`` before ``before`` (id, channel, message_kind, sending_at):
    candidates whose dispatcher may have died."""
    stmt = select(outbox.c.id, outbox.c.channel, outbox.c.message_kind, outbox.c.sending_at).where(
        outbox.c.status == SENDING, outbox.c.sending_at < before
    )
    return [dict(r._mapping) for r in conn.execute(stmt)]


ABANDONED = "the dispatcher stopped during the provider call: it may or may not have been sent"


def settle_stale(
    conn: Connection, *, unknown: Sequence[int], retry: Sequence[int], now: datetime
) -> None:
    """Abandoned ``sending`` rows: ``unknown`` ones stay out of the queue (at most once),
    ``retry`` ones go back to ``pending`` (at least once)."""
    for ids, status in ((unknown, UNKNOWN), (retry, PENDING)):
        for chunk in _chunks(list(ids)):
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(chunk), outbox.c.status == SENDING)
                .values(status=status, error=ABANDONED, next_attempt_at=now)
            )


def next_due(conn: Connection) -> datetime | None:
    """When the next pending message falls due (its due time or its retry wait, whichever
    is later)."""
    retry = func.coalesce(outbox.c.next_attempt_at, outbox.c.due_at)
    # SQLite's two-argument max() is PostgreSQL's greatest().
    later = (func.max if conn.dialect.name == "sqlite" else func.greatest)(outbox.c.due_at, retry)
    stmt = select(type_coerce(func.min(later), UtcDateTime())).where(outbox.c.status == PENDING)
    return conn.scalar(stmt)


def mark(conn: Connection, ids_reasons: Mapping[int, str], status: str) -> None:
    """Give rows ``status`` with their reason (suppressed at send time, failed …)."""
    stmt = (
        update(outbox)
        .where(outbox.c.id == bindparam("_id"))
        .values(status=status, error=bindparam("error"))
    )
    if ids_reasons:
        conn.execute(stmt, [{"_id": i, "error": e} for i, e in ids_reasons.items()])


def messages(
    conn: Connection,
    *,
    statuses: Sequence[str] = (),
    journey: str | None = None,
    ids: Sequence[int] = (),
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Outbox rows for ``journeys outbox``, newest first, without bodies."""
    columns = [c for c in outbox.c if c.name not in ("html", "text", "headers")]
    stmt = select(*columns).order_by(outbox.c.id.desc())
    if statuses:
        stmt = stmt.where(outbox.c.status.in_(list(statuses)))
    if journey:
        stmt = stmt.where(outbox.c.journey == journey)
    if ids:
        stmt = stmt.where(outbox.c.id.in_(list(ids)))
    if limit:
        stmt = stmt.limit(limit)
    return [dict(r._mapping) for r in conn.execute(stmt)]


def status_counts(conn: Connection, journey: str | None = None) -> dict[str, int]:
    """Messages per status (for the summary line of ``journeys outbox``)."""
    stmt = select(outbox.c.status, func.count()).group_by(outbox.c.status)
    if journey:
        stmt = stmt.where(outbox.c.journey == journey)
    return {status: int(n) for status, n in conn.execute(stmt)}


def requeue(conn: Connection, *, statuses: Sequence[str], ids: Sequence[int] = ()) -> int:
    """Put ``failed``/``unknown`` messages back in the queue, due at once, with fresh attempts
    (``journeys outbox retry``). Returns how many."""
    wanted = [s for s in statuses if s in RETRYABLE_BY_HAND]
    if not wanted:
        return 0
    stmt = update(outbox).where(outbox.c.status.in_(wanted))
    if ids:
        stmt = stmt.where(outbox.c.id.in_(list(ids)))
    stmt = stmt.values(
        status=PENDING,
        attempts=0,
        next_attempt_at=None,
        error=func.coalesce("retry requested; before: " + outbox.c.error, "retry requested"),
    )
    return int(conn.execute(stmt).rowcount or 0)


def recent_marketing_counts(
    conn: Connection, customer_ids: Iterable[str], since: datetime
) -> dict[str, int]:
    """Marketing messages per customer due since ``since`` on any channel that were (or may
    have been, or will be) sent: for frequency caps across journeys and channels."""
    wanted = sorted(set(customer_ids))
    found: dict[str, int] = {}
    live = [PENDING, SENDING, SENT, UNKNOWN]
    for chunk in _chunks(wanted):
        stmt = (
            select(outbox.c.customer_id, func.count())
            .where(
                outbox.c.customer_id.in_(chunk),
                outbox.c.message_kind == "marketing",
                outbox.c.kind != "notify",
                outbox.c.status.in_(live),
                outbox.c.due_at > since,
            )
            .group_by(outbox.c.customer_id)
        )
        found.update({c: int(n) for c, n in conn.execute(stmt)})
    return found
