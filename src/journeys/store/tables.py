"""SQLAlchemy Core tables: the whole persistent state of journeys.

Only :mod:`journeys.store` knows SQL. Times are stored as timezone-aware UTC datetimes.
The Alembic migrations (0001 and the revisions after it) build exactly this schema; a test
compares the head revision with these tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no zone, so values are stored as UTC and read
    back with ``tzinfo=UTC`` instead of naive.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: journeys stores aware UTC times only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    # On SQLite, one processor per direction does what process_bind_param plus the dialect's
    # DATETIME string conversion do (the same text, the same values), without the
    # TypeDecorator chain: these run for every datetime of every row the engine reads and writes.

    def bind_processor(self, dialect: Dialect) -> Any:
        if not _plain_sqlite_datetime(dialect):
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError(f"naive datetime {value!r}: journeys stores aware UTC times only")
            if value.tzinfo is not UTC:
                value = value.astimezone(UTC)
            # DATETIME's storage format, "%Y-%m-%d %H:%M:%S.%f" (without the "+00:00").
            return value.isoformat(" ", "microseconds")[:26]

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if not _plain_sqlite_datetime(dialect):
            return super().result_processor(dialect, coltype)
        parse = datetime.fromisoformat

        def process(value: str | None) -> datetime | None:
            if value is None:
                return None
            if len(value) == 26:  # DATETIME's format: parsing it as UTC beats .replace()
                try:
                    return parse(value + "+00:00")
                except ValueError:
                    pass
            when = parse(value)
            return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)

        return process


_SQLITE_DATETIME_FORMAT = (
    "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"
)


def _plain_sqlite_datetime(dialect: Dialect) -> bool:
    """Whether ``dialect`` is SQLite storing datetimes in DATETIME's default text format."""
    if dialect.name != "sqlite":
        return False
    impl = dialect.type_descriptor(DateTime(timezone=True))
    return getattr(impl, "_storage_format", None) == _SQLITE_DATETIME_FORMAT and not getattr(
        impl, "_reg", None
    )


# JSON on SQLite, JSONB on PostgreSQL.
Json = JSON().with_variant(JSONB(), "postgresql")

customers = Table(
    "customers",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("email", String(320)),
    Column("phone", String(64)),
    Column("first_name", String(200)),
    Column("last_name", String(200)),
    Column("locale", String(35)),
    Column("timezone", String(64)),
    Column("birthday", String(10)),  # YYYY-MM-DD as given
    Column("birthday_md", String(5)),  # MM-DD, indexed for the yearly sweep
    # True, False, or NULL when the profile never said (consent.missing decides; 0005).
    Column("email_opt_in", Boolean),
    Column("stage", String(32)),
    Column("attributes", Json, nullable=False, default=dict),
    Column("orders_count", Integer, nullable=False, server_default=text("0")),
    Column("lifetime_value", Float, nullable=False, server_default=text("0")),
    Column("first_order_at", UtcDateTime()),
    Column("last_order_at", UtcDateTime()),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_customers_birthday_md_timezone", "birthday_md", "timezone"),
    Index("ix_customers_stage", "stage"),
)

PENDING_PREDICATE = "processed_at IS NULL"
"""The predicate of the partial pending-event indexes."""

events = Table(
    "events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(200), nullable=False, unique=True),  # the idempotency key
    Column("type", String(120), nullable=False),
    Column("customer_id", String(128), nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("data", Json, nullable=False, default=dict),
    Column("source", String(32), nullable=False, server_default="api"),
    Column("processed_at", UtcDateTime()),
    Column("error", Text),
    # When a late event (one that arrived after the engine passed its time) was applied.
    Column("applied_at", UtcDateTime()),
    # Pending events only (partial): they stay small however many events were processed.
    # Queries spell the predicate as the literal ``processed_at IS NULL``.
    Index(
        "ix_events_pending",
        "occurred_at",
        sqlite_where=text(PENDING_PREDICATE),
        postgresql_where=text(PENDING_PREDICATE),
    ),
    Index(
        "ix_events_pending_customer",
        "customer_id",
        "occurred_at",
        sqlite_where=text(PENDING_PREDICATE),
        postgresql_where=text(PENDING_PREDICATE),
    ),
    Index("ix_events_customer_type", "customer_id", "type"),
    # The report's orders and email events of a period (journeys.store.kpis) without reading
    # every event of the shop; customer_id so retention reads no table rows. By time within a
    # type, so new events land at the end of their type's range: (type, customer_id, …) made
    # inserts several times dearer.
    Index("ix_events_type_time", "type", "occurred_at", "customer_id"),
)

journey_versions = Table(
    "journey_versions",
    metadata,
    Column("journey", String(100), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("plan", Json, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

ACTIVE_PREDICATE = "status = 'active'"
"""The predicate of the partial enrollment indexes."""

enrollments = Table(
    "enrollments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("journey", String(100), nullable=False),
    Column("version", String(64), nullable=False),
    Column("customer_id", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # active | completed | exited
    Column("step", String(100), nullable=False),
    Column("wake_at", UtcDateTime()),  # due time; None while waiting only for an event
    Column("waiting_for", String(120)),  # event type a wait_for/survey step waits for
    Column("waiting_step", String(100)),  # the wait_for/survey step waiting for it
    Column("vars", Json, nullable=False, default=dict),
    Column("trigger_key", String(64)),  # e.g. the birthday year: once per key
    Column("entered_at", UtcDateTime(), nullable=False),
    Column("ended_at", UtcDateTime()),
    Column("exit_reason", String(200)),
    Column("converted_at", UtcDateTime()),
    # Due enrollments, oldest first. Partial: an enrollment that ends leaves the index
    # instead of moving to a (completed, NULL) entry nothing reads. Queries must spell the
    # predicate as the literal ``status = 'active'`` (:data:`IS_ACTIVE`) for the planners to
    # take it; a bound parameter does not prove it.
    Index(
        "ix_enrollments_due",
        "wake_at",
        sqlite_where=text(ACTIVE_PREDICATE),
        postgresql_where=text(ACTIVE_PREDICATE),
    ),
    Index("ix_enrollments_customer", "customer_id", "journey"),
    # The report's cohort of a period; entered_at never changes, so only inserts pay for it.
    Index("ix_enrollments_entered", "entered_at"),
    # At most one active enrollment per customer and journey; customer first, so it also
    # finds a customer's other active enrollments (set-based steps check there are none due).
    Index(
        "uq_enrollments_active",
        "customer_id",
        "journey",
        unique=True,
        sqlite_where=text(ACTIVE_PREDICATE),
        postgresql_where=text(ACTIVE_PREDICATE),
    ),
    UniqueConstraint("journey", "customer_id", "trigger_key", name="uq_enrollments_trigger_key"),
)

IS_ACTIVE = enrollments.c.status == literal_column("'active'")
"""``enrollments.status = 'active'`` with the constant in the SQL text, so SQLite and
PostgreSQL can use the partial ``ix_enrollments_due``."""

step_runs = Table(
    "step_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("enrollment_id", Integer, ForeignKey("enrollments.id"), nullable=False),
    Column("journey", String(100), nullable=False),
    Column("step", String(100), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("outcome", String(200), nullable=False),
    # Covers the report's funnel (distinct enrollments per journey and step); nothing looks
    # step runs up by enrollment, so there is no index for that to pay for on every insert.
    Index("ix_step_runs_journey_step", "journey", "step", "enrollment_id"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("enrollment_id", Integer, ForeignKey("enrollments.id"), nullable=False),
    Column("step", String(100), nullable=False),
    Column("attempt", Integer, nullable=False, server_default=text("1")),
    Column("journey", String(100), nullable=False),
    Column("customer_id", String(128), nullable=False),
    Column("kind", String(16), nullable=False),  # send | survey | notify
    Column("template", String(100), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("locale", String(35), nullable=False, server_default=""),
    Column("recipient", String(320)),
    Column("subject", Text),
    Column("html", Text),
    Column("text", Text),
    # pending | sending | sent | logged | failed | unknown | suppressed (docs/delivery.md)
    Column("status", String(16), nullable=False),
    Column("due_at", UtcDateTime(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime()),
    Column("error", Text),
    Column("provider_id", String(200)),
    # Delivery (0005): marketing | transactional; provider calls made; not before this time;
    # when and by whom it was marked sending (committed before the provider call).
    Column("message_kind", String(16), nullable=False, server_default="marketing"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", UtcDateTime()),
    Column("sending_at", UtcDateTime()),
    Column("dispatcher", String(200)),
    Column("provider_status", String(200)),  # the provider's own answer: "202", "queued"
    Column("headers", Json),  # From, Reply-To, List-Unsubscribe … as composed
    # (0009) the subscription topic (``topics:``) its template names; NULL: no topic
    Column("topic", String(100)),
    UniqueConstraint("enrollment_id", "step", "attempt", name="uq_outbox_enrollment_step_attempt"),
    Index("ix_outbox_pending", "status", "due_at"),
    # A customer's messages: the dashboard's customer page, and email events that carry no
    # message id are matched to the customer's latest email before them (journeys.insight).
    Index("ix_outbox_customer", "customer_id", "created_at"),
)

survey_answers = Table(
    "survey_answers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(200), nullable=False, unique=True),
    Column("enrollment_id", Integer, ForeignKey("enrollments.id")),
    Column("customer_id", String(128), nullable=False),
    Column("journey", String(100), nullable=False),
    Column("step", String(100), nullable=False),
    Column("kind", String(8), nullable=False),  # nps | csat
    Column("score", Integer, nullable=False),
    Column("category", String(16), nullable=False),
    Column("comment", Text),
    Column("answered_at", UtcDateTime(), nullable=False),
    # The comment's analysis (journeys.insight.voc): negative | neutral | positive, a score in
    # [-1, 1] and the keywords (a JSON list); NULL until analysed.
    Column("sentiment", String(8)),
    Column("sentiment_score", Float),
    Column("keywords", Json),
    Index("ix_survey_answers_journey", "journey", "step"),
    Index("ix_survey_answers_customer", "customer_id"),
)

stage_history = Table(
    "stage_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String(128), nullable=False),
    Column("from_stage", String(32)),
    Column("to_stage", String(32), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("reason", String(200), nullable=False),
    Index("ix_stage_history_customer", "customer_id"),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String(128), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("reason", String(64), nullable=False),  # unsubscribed | bounced | complaint
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("customer_id", "channel", name="uq_suppressions_customer_channel"),
)

suppressed_addresses = Table(
    "suppressed_addresses",
    metadata,
    # sha256 of the normalised address (lower-case email, E.164 phone): what is left of an
    # erased customer, so that a re-import of the same address is never contacted again.
    Column("channel", String(32), primary_key=True),
    Column("address_hash", String(64), primary_key=True),
    Column("reason", String(64), nullable=False),  # erased | unsubscribed | bounced …
    Column("created_at", UtcDateTime(), nullable=False),
)

scheduler_state = Table(
    "scheduler_state",
    metadata,
    Column("key", String(200), primary_key=True),  # e.g. "trigger:<journey>" → last swept time
    Column("at", UtcDateTime(), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False, unique=True),  # the key's public first part
    Column("key_hash", String(64), nullable=False),  # SHA-256 of the whole key, hex
    Column("scope", String(16), nullable=False),  # events | staff
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_used_at", UtcDateTime()),
    Column("revoked_at", UtcDateTime()),
)
"""API keys of the web app's intake endpoints and staff pages (``journeys keys``), stored
hashed: the key itself is printed once and kept nowhere."""

topic_optouts = Table(
    "topic_optouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String(128), nullable=False),
    Column("topic", String(100), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("customer_id", "topic", name="uq_topic_optouts_customer_topic"),
)
"""Subscription topics (``topics:`` in journeys.yaml) a customer left on the preference page;
``suppressions`` says who left every marketing message of a channel."""
