"""The SQL of the insight report and dashboard (read-only; :mod:`journeys.insight` assembles it).

Every function takes an open ``Connection`` and a :class:`Scope` (a half-open period
``[start, end)`` and, optionally, one journey) and returns plain rows: counts and sums grouped
in the database, so the report's cost does not grow with Python loops over customers. The same
statements run on SQLite and PostgreSQL; where the dialects differ (calendar buckets, reading a
number out of JSON) a small helper writes each dialect's SQL.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    String,
    and_,
    case,
    cast,
    distinct,
    func,
    literal,
    null,
    select,
    type_coerce,
)
from sqlalchemy.sql.elements import ColumnElement

from journeys.store.db import SQLITE_BEGIN_OPTION
from journeys.store.tables import (
    IS_ACTIVE,
    customers,
    enrollments,
    events,
    journey_versions,
    outbox,
    stage_history,
    step_runs,
    survey_answers,
)

EMAIL_EVENTS = (
    "email.delivered",
    "email.opened",
    "email.clicked",
    "email.bounced",
    "email.unsubscribed",
)
"""The delivery events the report counts per message."""

ORDER_EVENT = "order.placed"


@dataclass(frozen=True)
class Scope:
    """What a query looks at: ``start <= time < end``, and one journey or all of them."""

    start: datetime
    end: datetime
    journey: str | None = None

    @property
    def previous(self) -> Scope:
        """The period of the same length just before this one."""
        return Scope(self.start - (self.end - self.start), self.start, self.journey)


@contextmanager
def reading(db: Engine) -> Iterator[Connection]:
    """A connection for a long read: one snapshot, and on SQLite no write lock (a deferred
    ``BEGIN``), so the runner keeps writing while a report or a dashboard page is built."""
    with db.connect() as conn:
        yield conn.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})


def _within(column: Any, scope: Scope) -> ColumnElement[bool]:
    return and_(column >= scope.start, column < scope.end)


def _for_journey(column: Any, scope: Scope) -> list[ColumnElement[bool]]:
    return [column == scope.journey] if scope.journey else []


def day(conn: Connection, column: Any) -> ColumnElement[str]:
    """The UTC calendar day of a time column as ``YYYY-MM-DD`` text. Reports group by day in
    SQL and roll days up to weeks or months in Python: a handful of rows, and no date
    arithmetic per row (SQLite's ``date(…, 'weekday 0')`` costs more than the scan)."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD", type_=String)
    # SQLite stores UtcDateTime as 'YYYY-MM-DD HH:MM:SS.ffffff' text.
    return func.substr(type_coerce(column, String), 1, 10, type_=String)


# --------------------------------------------------------------------------- journeys


def enrollment_facts(
    conn: Connection, scope: Scope, split_journeys: Collection[str] = ()
) -> Sequence[Any]:
    """Enrollments that entered in the period, in one scan, by (journey, status, step,
    exit_reason, day, variants): ``entered`` and ``converted`` counts. ``step`` is where an
    exited enrollment left; ``variants`` the ``vars.variants`` object of journeys in
    ``split_journeys`` (their A/B assignments), else NULL."""
    exited_step = case((enrollments.c.status == "exited", enrollments.c.step), else_=None)
    entered_day = day(conn, enrollments.c.entered_at)
    variants = (
        case(
            (enrollments.c.journey.in_(sorted(split_journeys)), enrollments.c.vars["variants"]),
            else_=None,
        )
        if split_journeys
        else null()
    )
    cols = (enrollments.c.journey, enrollments.c.status, exited_step, enrollments.c.exit_reason)
    query = (
        select(
            *cols[:2],
            exited_step.label("step"),
            enrollments.c.exit_reason,
            entered_day.label("day"),
            type_coerce(variants, enrollments.c.vars.type).label("variants"),
            func.count().label("entered"),
            func.count(enrollments.c.converted_at).label("converted"),
        )
        .where(
            _within(enrollments.c.entered_at, scope), *_for_journey(enrollments.c.journey, scope)
        )
        .group_by(*cols, entered_day, variants)
    )
    if not entered_outside(conn, scope):
        # Every enrollment is in the period: one pass over the table beats fetching each row
        # through an index in index order (SQLite's planner picks an index otherwise).
        query = query.with_hint(enrollments, "NOT INDEXED", "sqlite")
    return conn.execute(query).all()


def entered_outside(conn: Connection, scope: Scope) -> bool:
    """Whether any enrollment entered before or after the period (ix_enrollments_entered)."""
    older = select(enrollments.c.id).where(enrollments.c.entered_at < scope.start).limit(1)
    newer = select(enrollments.c.id).where(enrollments.c.entered_at >= scope.end).limit(1)
    return any(conn.execute(q).first() for q in (older, newer))


def active_positions(conn: Connection, now: datetime, journey: str | None = None) -> Sequence[Any]:
    """Active enrollments now, by (journey, step, waiting_step, sleeping): ``step`` is the step
    that runs next, ``waiting_step`` the wait_for/survey step waiting for its event (if any),
    ``sleeping`` whether ``wake_at`` is still ahead."""
    waiting = enrollments.c.vars["waiting_step"].as_string()
    sleeping = case((enrollments.c.wake_at > now, 1), else_=0)
    query = (
        select(
            enrollments.c.journey,
            enrollments.c.step,
            waiting.label("waiting_step"),
            sleeping.label("sleeping"),
            func.count().label("count"),
        )
        .where(IS_ACTIVE, *([enrollments.c.journey == journey] if journey else []))
        .group_by(enrollments.c.journey, enrollments.c.step, waiting, sleeping)
    )
    return conn.execute(query).all()


def steps_reached(conn: Connection, scope: Scope) -> Sequence[Any]:
    """Per (journey, step): how many of the enrollments that entered in the period have run
    the step (so far), the funnel of the period's cohort. When every enrollment entered in
    the period, the covering ``ix_step_runs_journey_step`` answers alone, without a join."""
    reached = func.count(distinct(step_runs.c.enrollment_id)).label("reached")
    query = select(step_runs.c.journey, step_runs.c.step, reached).where(
        *_for_journey(step_runs.c.journey, scope)
    )
    if entered_outside(conn, scope):
        query = query.join_from(
            step_runs, enrollments, enrollments.c.id == step_runs.c.enrollment_id
        ).where(
            _within(enrollments.c.entered_at, scope),
            # Runs cannot precede their enrollment: lets the planner skip older step runs.
            step_runs.c.at >= scope.start,
        )
    return conn.execute(query.group_by(step_runs.c.journey, step_runs.c.step)).all()


# --------------------------------------------------------------------------- messages


def message_facts(conn: Connection, scope: Scope) -> Sequence[Any]:
    """Messages created in the period, in one scan, by (journey, template, channel, status,
    day): ``count``."""
    created = day(conn, outbox.c.created_at)
    cols = (outbox.c.journey, outbox.c.template, outbox.c.channel, outbox.c.status)
    query = (
        select(*cols, created.label("day"), func.count().label("count"))
        .where(_within(outbox.c.created_at, scope), *_for_journey(outbox.c.journey, scope))
        .group_by(*cols, created)
    )
    return conn.execute(query).all()


def _latest_email_before(customer: Any, at: Any) -> ColumnElement[int]:
    """The id of the customer's latest email created at or before ``at``."""
    latest = outbox.alias("latest")
    return (
        select(latest.c.id)
        .where(
            latest.c.customer_id == customer,
            latest.c.channel == "email",
            latest.c.created_at <= at,
        )
        .order_by(latest.c.created_at.desc(), latest.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _digits(conn: Connection, text: Any) -> ColumnElement[bool]:
    if conn.dialect.name == "postgresql":
        return text.op("~")(literal("^[0-9]{1,18}$"))
    return and_(text.op("GLOB")(literal("[0-9]*")), ~text.op("GLOB")(literal("*[^0-9]*")))


def _email_events(conn: Connection, scope: Scope) -> Any:
    """``email.*`` events from the period's start with the outbox row each is about: the
    ``data.message_id`` when it is a number, else the customer's latest email before the
    event. A materialised CTE reads each event's JSON once."""
    raw = (
        select(
            events.c.type,
            events.c.customer_id,
            events.c.occurred_at,
            events.c.data["message_id"].as_string().label("raw"),
        )
        .where(events.c.type.in_(EMAIL_EVENTS), events.c.occurred_at >= scope.start)
        .cte("email_events")
        .prefix_with("MATERIALIZED")
    )
    mid = func.coalesce(
        case((_digits(conn, raw.c.raw), cast(raw.c.raw, Integer)), else_=None),
        _latest_email_before(raw.c.customer_id, raw.c.occurred_at),
    )
    return select(raw.c.type, raw.c.occurred_at, mid.label("mid")).subquery("ev")


def message_engagement(conn: Connection, scope: Scope) -> Sequence[Any]:
    """Per (journey, template, event type): how many distinct messages created in the period
    got at least one ``email.*`` event of that type."""
    ev = _email_events(conn, scope)
    query = (
        select(
            outbox.c.journey,
            outbox.c.template,
            ev.c.type,
            func.count(distinct(outbox.c.id)).label("count"),
        )
        .join_from(ev, outbox, outbox.c.id == ev.c.mid)
        .where(_within(outbox.c.created_at, scope), *_for_journey(outbox.c.journey, scope))
        .group_by(outbox.c.journey, outbox.c.template, ev.c.type)
    )
    return conn.execute(query).all()


# --------------------------------------------------------------------------- surveys


def survey_counts(conn: Connection, scope: Scope) -> Sequence[Any]:
    """Answers in the period by (journey, kind, category, day): ``count``, ``score_sum``."""
    answered = day(conn, survey_answers.c.answered_at)
    cols = (survey_answers.c.journey, survey_answers.c.kind, survey_answers.c.category)
    query = (
        select(
            *cols,
            answered.label("day"),
            func.count().label("count"),
            func.sum(survey_answers.c.score).label("score_sum"),
        )
        .where(
            _within(survey_answers.c.answered_at, scope),
            *_for_journey(survey_answers.c.journey, scope),
        )
        .group_by(*cols, answered)
    )
    return conn.execute(query).all()


def survey_comments(conn: Connection, scope: Scope, limit: int = 5000) -> Sequence[Any]:
    """The latest answers with a comment in the period, newest first."""
    query = (
        select(
            survey_answers.c.id,
            survey_answers.c.customer_id,
            survey_answers.c.journey,
            survey_answers.c.step,
            survey_answers.c.kind,
            survey_answers.c.score,
            survey_answers.c.category,
            survey_answers.c.comment,
            survey_answers.c.sentiment,
            survey_answers.c.sentiment_score,
            survey_answers.c.keywords,
            survey_answers.c.answered_at,
        )
        .where(
            _within(survey_answers.c.answered_at, scope),
            survey_answers.c.comment.is_not(None),
            survey_answers.c.comment != "",
            *_for_journey(survey_answers.c.journey, scope),
        )
        .order_by(survey_answers.c.answered_at.desc(), survey_answers.c.id.desc())
        .limit(limit)
    )
    return conn.execute(query).all()


# --------------------------------------------------------------------------- customers


def stage_counts(conn: Connection) -> Sequence[Any]:
    """Customers by current lifecycle stage (``None`` for no stage)."""
    query = select(customers.c.stage, func.count().label("count")).group_by(customers.c.stage)
    return conn.execute(query).all()


def stage_transitions(conn: Connection, scope: Scope) -> Sequence[Any]:
    """Stage changes in the period by (day, from_stage, to_stage): ``count``."""
    changed = day(conn, stage_history.c.at)
    query = (
        select(
            changed.label("day"),
            stage_history.c.from_stage,
            stage_history.c.to_stage,
            func.count().label("count"),
        )
        .where(_within(stage_history.c.at, scope))
        .group_by(changed, stage_history.c.from_stage, stage_history.c.to_stage)
    )
    return conn.execute(query).all()


def lifetime_values(conn: Connection) -> Sequence[Any]:
    """Customers with at least one order, by stage: ``customers``, ``ltv_sum``."""
    query = (
        select(
            customers.c.stage,
            func.count().label("customers"),
            func.sum(customers.c.lifetime_value).label("ltv_sum"),
        )
        .where(customers.c.orders_count > 0)
        .group_by(customers.c.stage)
    )
    return conn.execute(query).all()


def _order_total(conn: Connection) -> ColumnElement[float]:
    total = events.c.data["total"]
    return total.as_float()


def order_days(conn: Connection, scope: Scope) -> Sequence[Any]:
    """``order.placed`` per day of the period: ``orders``, ``revenue``."""
    placed = day(conn, events.c.occurred_at)
    query = (
        select(
            placed.label("day"),
            func.count().label("orders"),
            func.coalesce(func.sum(_order_total(conn)), 0.0).label("revenue"),
        )
        .where(events.c.type == ORDER_EVENT, _within(events.c.occurred_at, scope))
        .group_by(placed)
    )
    return conn.execute(query).all()


def retention_counts(conn: Connection, scope: Scope) -> Any:
    """Customers who ordered in the period before ``scope`` (``previous``), in ``scope``
    (``current``), and in both (``retained``)."""
    prev = scope.previous
    in_prev = case((events.c.occurred_at < scope.start, 1), else_=0)
    in_cur = case((events.c.occurred_at >= scope.start, 1), else_=0)
    per_customer = (
        select(func.max(in_prev).label("p"), func.max(in_cur).label("c"))
        .where(
            events.c.type == ORDER_EVENT,
            events.c.occurred_at >= prev.start,
            events.c.occurred_at < scope.end,
        )
        .group_by(events.c.customer_id)
        .subquery()
    )
    query = select(
        func.coalesce(func.sum(per_customer.c.p), 0).label("previous"),
        func.coalesce(func.sum(per_customer.c.c), 0).label("current"),
        func.coalesce(func.sum(per_customer.c.p * per_customer.c.c), 0).label("retained"),
    )
    return conn.execute(query).one()


# --------------------------------------------------------------------------- over time


def email_event_days(conn: Connection, scope: Scope) -> Sequence[Any]:
    """``email.*`` events per (day, type) of the period: ``count``."""
    happened = day(conn, events.c.occurred_at)
    query = select(happened.label("day"), events.c.type, func.count().label("count")).where(
        events.c.type.in_(EMAIL_EVENTS), _within(events.c.occurred_at, scope)
    )
    if scope.journey:
        ev = _email_events(conn, scope)
        happened = day(conn, ev.c.occurred_at)
        query = (
            select(happened.label("day"), ev.c.type, func.count().label("count"))
            .join_from(ev, outbox, outbox.c.id == ev.c.mid)
            .where(outbox.c.journey == scope.journey, ev.c.occurred_at < scope.end)
            .group_by(happened, ev.c.type)
        )
        return conn.execute(query).all()
    return conn.execute(query.group_by(happened, events.c.type)).all()


def activity_bounds(conn: Connection) -> tuple[datetime | None, datetime | None]:
    """About the first and last time anything happened: enrollments by ``entered_at``
    (indexed), events by their first and last stored row (no scan of either table)."""
    times: list[datetime] = []
    # One aggregate per statement: min() and max() together defeat the planners' shortcut of
    # reading one end of the index.
    for extreme in (func.min, func.max):
        at = conn.execute(select(extreme(enrollments.c.entered_at))).scalar()
        if at is not None:
            times.append(at)
    first_seq = conn.execute(select(func.min(events.c.seq))).scalar()
    last_seq = conn.execute(select(func.max(events.c.seq))).scalar()
    if first_seq is not None:
        stmt = select(events.c.occurred_at).where(events.c.seq.in_([first_seq, last_seq]))
        times += [row.occurred_at for row in conn.execute(stmt)]
    return (min(times), max(times)) if times else (None, None)


def latest_plans(conn: Connection) -> dict[str, dict[str, Any]]:
    """The newest stored plan (as its JSON dict) of every journey the store has run."""
    rows = conn.execute(
        select(journey_versions.c.journey, journey_versions.c.plan).order_by(
            journey_versions.c.journey, journey_versions.c.created_at
        )
    ).all()
    return {row.journey: row.plan for row in rows}
