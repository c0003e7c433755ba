"""The web app's queries and writes: API keys, survey answers, suppressions and topic opt-outs,
and the few reads of enrollments, customers and the outbox that links and webhooks need.

Events still go in through the service's ingest (deduplication and validation live there);
this module only holds the SQL the web app adds around it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from journeys.store.tables import (
    api_keys,
    customers,
    enrollments,
    events,
    outbox,
    suppressions,
    survey_answers,
    topic_optouts,
)

_IN_CHUNK = 500


def _upsertable(conn: Connection, table: Any) -> Any:
    """An INSERT with ``on_conflict_do_*`` on both dialects."""
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


def _one(conn: Connection, stmt: Any) -> dict[str, Any] | None:
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row is not None else None


def ping(db: Engine) -> None:
    """One round trip to the database (raises when it does not answer)."""
    with db.connect() as conn:
        conn.execute(text("SELECT 1"))


# ------------------------------------------------------------------------------------ API keys


def insert_api_key(conn: Connection, row: Mapping[str, Any]) -> None:
    """Store a new key (name, prefix, key_hash, scope, created_at)."""
    conn.execute(api_keys.insert().values(**row))


def api_key_by_name(conn: Connection, name: str) -> dict[str, Any] | None:
    """The key named ``name`` (revoked or not)."""
    return _one(conn, select(api_keys).where(api_keys.c.name == name))


def api_key_by_prefix(conn: Connection, prefix: str) -> dict[str, Any] | None:
    """The key whose public prefix is ``prefix``."""
    return _one(conn, select(api_keys).where(api_keys.c.prefix == prefix))


def api_key_by_id(conn: Connection, key_id: int) -> dict[str, Any] | None:
    """The key with id ``key_id``."""
    return _one(conn, select(api_keys).where(api_keys.c.id == key_id))


def list_api_keys(conn: Connection) -> list[dict[str, Any]]:
    """Every key, oldest first (hashes left out)."""
    columns = [c for c in api_keys.c if c.name != "key_hash"]
    return [dict(r) for r in conn.execute(select(*columns).order_by(api_keys.c.id)).mappings()]


def revoke_api_key(conn: Connection, name: str, at: datetime) -> bool:
    """Revoke the key named ``name``; False when there is no such key still active."""
    result = conn.execute(
        update(api_keys)
        .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    return bool(result.rowcount)


def touch_api_key(conn: Connection, key_id: int, at: datetime) -> None:
    """Note when a key was last used."""
    conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=at))


# ------------------------------------------------------------------------------------- surveys


def enrollment_brief(conn: Connection, enrollment_id: int) -> dict[str, Any] | None:
    """Journey, customer, status and step of an enrollment."""
    cols = (enrollments.c.id, enrollments.c.journey, enrollments.c.customer_id)
    stmt = select(*cols, enrollments.c.status, enrollments.c.step)
    return _one(conn, stmt.where(enrollments.c.id == enrollment_id))


def survey_answer(conn: Connection, event_id: str) -> dict[str, Any] | None:
    """The stored answer recorded under ``event_id``."""
    return _one(conn, select(survey_answers).where(survey_answers.c.event_id == event_id))


def upsert_survey_answer(conn: Connection, row: Mapping[str, Any]) -> None:
    """Store an answer, or replace the score, category, comment (with its analysis) and time
    of the one stored under the same ``event_id``."""
    stmt = _upsertable(conn, survey_answers).values(**row)
    columns = ("score", "category", "comment", "answered_at")
    analysis = ("sentiment", "sentiment_score", "keywords")
    changed = {k: stmt.excluded[k] for k in (*columns, *analysis)}
    conn.execute(stmt.on_conflict_do_update(index_elements=["event_id"], set_=changed))


def update_pending_event_data(conn: Connection, event_id: str, data: Mapping[str, Any]) -> bool:
    """Replace the data of an event nothing has processed yet; False when it was processed."""
    result = conn.execute(
        update(events)
        .where(events.c.id == event_id, events.c.processed_at.is_(None))
        .values(data=dict(data))
    )
    return bool(result.rowcount)


# ----------------------------------------------------------------------- customers and consent


def customer_brief(conn: Connection, customer_id: str) -> dict[str, Any] | None:
    """Id, email and locale of a customer."""
    stmt = select(customers.c.id, customers.c.email, customers.c.locale)
    return _one(conn, stmt.where(customers.c.id == customer_id))


def suppression_reason(conn: Connection, customer_id: str, channel: str) -> str | None:
    """Why the customer's ``channel`` is suppressed (unsubscribed, bounced, …), or None."""
    stmt = select(suppressions.c.reason).where(
        suppressions.c.customer_id == customer_id, suppressions.c.channel == channel
    )
    return conn.scalar(stmt)


def add_suppressions(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Record suppressions (customer_id, channel, reason, created_at); an existing one for the
    same customer and channel is kept. Returns how many are new."""
    added = 0
    for row in rows:  # one by one: the caller needs to know which were new
        stmt = _upsertable(conn, suppressions).values(**row).on_conflict_do_nothing()
        # RETURNING, not rowcount: psycopg reports -1 for these.
        added += len(conn.execute(stmt.returning(suppressions.c.id)).all())
    return added


def topic_optouts_of(conn: Connection, customer_id: str) -> set[str]:
    """The topics a customer left."""
    stmt = select(topic_optouts.c.topic).where(topic_optouts.c.customer_id == customer_id)
    return set(conn.scalars(stmt))


def set_topic_optouts(
    conn: Connection, customer_id: str, topics: Iterable[str], at: datetime
) -> tuple[set[str], set[str]]:
    """Make the customer's opt-outs exactly ``topics``: (topics left now, topics rejoined)."""
    wanted = set(topics)
    current = topic_optouts_of(conn, customer_id)
    left, rejoined = wanted - current, current - wanted
    if rejoined:
        conn.execute(
            delete(topic_optouts).where(
                topic_optouts.c.customer_id == customer_id, topic_optouts.c.topic.in_(rejoined)
            )
        )
    for topic in sorted(left):
        stmt = _upsertable(conn, topic_optouts).values(
            customer_id=customer_id, topic=topic, created_at=at
        )
        conn.execute(stmt.on_conflict_do_nothing())
    return left, rejoined


def opted_out_customers(conn: Connection, customer_ids: Iterable[str], topic: str) -> set[str]:
    """Which of ``customer_ids`` left ``topic`` (for the dispatcher: one query per batch)."""
    ids = sorted(set(customer_ids))
    found: set[str] = set()
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        stmt = select(topic_optouts.c.customer_id).where(
            topic_optouts.c.topic == topic, topic_optouts.c.customer_id.in_(chunk)
        )
        found.update(conn.scalars(stmt))
    return found


# -------------------------------------------------------------------------------------- outbox


def messages_by_id(conn: Connection, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Outbox rows by id: who and what each message was (webhook events map back to them)."""
    wanted = sorted(set(ids))
    cols = (outbox.c.id, outbox.c.customer_id, outbox.c.journey, outbox.c.step)
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(wanted), _IN_CHUNK):
        stmt = select(*cols, outbox.c.template, outbox.c.channel).where(
            outbox.c.id.in_(wanted[start : start + _IN_CHUNK])
        )
        found.update({row["id"]: dict(row) for row in conn.execute(stmt).mappings()})
    return found


def message_by_provider_id(conn: Connection, provider_id: str) -> int | None:
    """The outbox id of the message the provider knows as ``provider_id``."""
    return conn.scalar(select(outbox.c.id).where(outbox.c.provider_id == provider_id).limit(1))
