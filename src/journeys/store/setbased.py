"""SQL for set-based steps (:mod:`journeys.runtime.setbased`): a few statements per step.

For one step of one plan version and one chunk of due enrollments, :func:`advance_set_step`
appends the step history with ``INSERT … SELECT``, applies literal attribute updates to the
customers with one ``UPDATE … FROM``, and moves the enrollments on with one ``UPDATE … FROM``
whose ``CASE`` picks each one's branch. Conditions read the customer row; their guard (fields
present, of the compared type) is part of every statement's ``WHERE``, so an enrollment the
database cannot decide exactly is left due for the Python path.

Like :mod:`journeys.store.repository`, these functions take a connection and never commit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    Connection,
    Float,
    Integer,
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB

from journeys.conditions import Arm, BoolOp, Compare, Cond, InList, Not, Ref, SetStep, refs
from journeys.plan import END
from journeys.state import Customer
from journeys.store import repository as repo
from journeys.store.tables import customers, enrollments, events, step_runs

E, C = enrollments.c, customers.c

_OPS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "lteq": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gteq": lambda a, b: a >= b,
}


@dataclass(frozen=True)
class DueGroup:
    """Due enrollments at one step of one plan version, locked for this transaction: either
    their ids (a list on PostgreSQL, a JSON array on SQLite, handed back to ``json_each``
    without being parsed) or, on SQLite, every such row with an id in ``window``."""

    journey: str
    version: str
    step: str
    ids: list[int] | str | None = None
    window: tuple[int, int] | None = None
    last: tuple[datetime, int] | None = None
    """The (wake_at, id) of the chunk's last row: the next chunk starts after it."""


_OTHER = enrollments.alias("other")


def _alone(now: datetime) -> Any:
    """No other enrollment of the row's customer is due by ``now``: then nothing another of
    the customer's steps does could come between this row's steps (event time exactness)."""
    o = _OTHER.c
    return ~exists().where(
        o.customer_id == E.customer_id,
        o.status == literal_column("'active'"),
        o.wake_at <= now,
        o.id != E.id,
    )


def _no_pending_events(now: datetime) -> Any:
    """The row's customer has no event pending by ``now`` (another worker may be matching
    one: this row's steps must wait for it, as a customer's timeline runs in time order).

    Not a correlated subquery: the pass matches pending events before it runs set-based
    steps, so the few left (arrived meanwhile) are read once per statement, whatever plan a
    database without statistics would pick for a correlated one."""
    pending = select(events.c.customer_id).where(
        events.c.processed_at.is_(None), events.c.occurred_at <= now
    )
    return E.customer_id.not_in(pending)


def _due(c: Any, now: datetime, journey: str | None = None, step: str | None = None) -> list[Any]:
    """Active, due, waiting for no event (of ``journey``/at ``step``); ``c`` is
    ``enrollments.c`` or :class:`_Unindexed`."""
    # The constant in the SQL text: the planners take the partial due index only then.
    where = [c.status == literal_column("'active'"), c.wake_at <= now, c.waiting_for.is_(None)]
    if journey is not None:
        where.append(c.journey == journey)
    if step is not None:
        where.append(c.step == step)
    return where


_DUE_COUNT: dict[tuple[bool, bool], Any] = {}


def due_count(
    conn: Connection,
    now: datetime,
    limit: int,
    *,
    journey: str | None = None,
    step: str | None = None,
) -> int:
    """How many enrollments are due and wait for no event, counted up to ``limit`` only (a
    million due rows are not counted)."""
    # Built once per shape: the engine asks on every round, mostly to hear "a few".
    key = (journey is not None, step is not None)
    stmt = _DUE_COUNT.get(key)
    if stmt is None:
        where = _due(E, bindparam("now", type_=E.wake_at.type))
        if journey is not None:
            where.append(E.journey == bindparam("journey"))
        if step is not None:
            where.append(E.step == bindparam("step"))
        head = select(E.id).where(*where).limit(bindparam("limit")).subquery()
        stmt = _DUE_COUNT[key] = select(func.count()).select_from(head)
    params = {"now": now, "limit": limit, "journey": journey, "step": step}
    return int(conn.execute(stmt, params).scalar_one())


def id_span(conn: Connection) -> tuple[int, int]:
    """The lowest and highest enrollment id."""
    # Two statements: SQLite answers min() or max() alone from the rowid, not both at once.
    low = conn.execute(select(func.min(E.id))).scalar()
    high = conn.execute(select(func.max(E.id))).scalar()
    return int(low or 0), int(high or 0)


def due_groups(
    conn: Connection,
    now: datetime,
    limit: int,
    *,
    journey: str | None = None,
    step: str | None = None,
    window: tuple[int, int] | None = None,
    after: tuple[datetime, int] | None = None,
) -> list[DueGroup]:
    """Due enrollments that wait for no event, grouped by (journey, version, step): those
    with ids in ``window`` (SQLite), or the oldest ``limit`` after ``after`` (a (wake_at, id)
    key; locked on PostgreSQL, where other workers skip them)."""
    keys = (E.journey, E.version, E.step)
    if window is not None:
        e = _Unindexed(conn.dialect.name)  # the window's rowid range, not the due index
        in_window = (
            select(*keys)
            .distinct()
            .where(
                E.id.between(*window),
                *_due(e, now, journey, step),
                _alone(now),
                _no_pending_events(now),
            )
        )
        return [DueGroup(j, v, s, window=window) for j, v, s in conn.execute(in_window)]
    due = (
        select(E.id, *keys, E.wake_at)
        .where(*_due(E, now, journey, step), _alone(now), _no_pending_events(now))
        .order_by(E.wake_at, E.id)
        .limit(limit)
    )
    if after is not None:
        due = due.where(
            tuple_(E.wake_at, E.id) > tuple_(literal(after[0], E.wake_at.type), after[1])
        )
    if conn.dialect.name != "postgresql":
        chunk = due.subquery()
        ckeys = (chunk.c.journey, chunk.c.version, chunk.c.step)
        grouped = select(*ckeys, func.json_group_array(chunk.c.id)).group_by(*ckeys)
        # One writer: a short chunk was everything due, so no key to go on from.
        return [DueGroup(j, v, s, ids) for j, v, s, ids in conn.execute(grouped)]
    found: dict[tuple[str, str, str], list[int]] = {}
    last: tuple[datetime, int] | None = None
    # Hold the rows' customers too (:mod:`.claims`): a customer a Python batch holds is
    # skipped, and a Python batch skips the customers this chunk holds.
    held = due.join(customers, C.id == E.customer_id).with_for_update(
        of=[enrollments, customers], skip_locked=True
    )
    for eid, j, v, s, wake in conn.execute(held):
        found.setdefault((j, v, s), []).append(eid)
        last = (wake, eid)
    return [DueGroup(j, v, s, ids, last=last) for (j, v, s), ids in found.items()]


def _chosen_due(conn: Connection, spec: SetStep, now: datetime, group: DueGroup) -> list[Any]:
    """WHERE terms: the rows of ``group`` due at ``spec`` whose customer passes its guard."""
    dialect = conn.dialect.name
    e = _Unindexed(dialect)
    if group.window is not None:
        # One writer holds the lock: every due row at this step in the window is fair game.
        chosen = E.id.between(*group.window)
    elif isinstance(group.ids, str):
        each = func.json_each(bindparam("ids", group.ids, type_=String)).table_valued("value")
        chosen = E.id.in_(select(each.c.value))
    else:
        chosen = E.id == any_(bindparam("ids", group.ids, type_=ARRAY(Integer)))
    return [
        chosen,
        *_due(e, now, spec.journey, spec.step),
        _alone(now),
        _no_pending_events(now),
        e.version == spec.version,
        C.id == E.customer_id,  # a missing customer is the Python path's error to report
        *(guard_clause(ref, dialect) for ref in sorted(spec.guard, key=repr)),
    ]


def _history(conn: Connection, where: list[Any], step: Any, label: Any) -> int:
    """Step history rows (``step``, ``label``: SQL values) for the rows ``where`` selects."""
    stmt = step_runs.insert().from_select(
        ["enrollment_id", "journey", "step", "at", "outcome"],
        select(E.id, E.journey, step, E.wake_at, label).where(*where),
    )
    # Without preserve_rowcount an INSERT's rowcount may be -1 (psycopg does that).
    result = conn.execute(stmt.execution_options(preserve_rowcount=True))
    return max(int(result.rowcount or 0), 0)


def advance_set_step(conn: Connection, spec: SetStep, now: datetime, group: DueGroup) -> int:
    """Run ``spec`` for the due enrollments of ``group`` (from :func:`due_groups`; its step
    may differ when the rows moved on to ``spec`` in this transaction) that pass its guard;
    returns how many moved on."""
    dialect = conn.dialect.name
    where = _chosen_due(conn, spec, now, group)
    target = _pick(spec, dialect, lambda arm: arm.target)
    label = _pick(spec, dialect, lambda arm: arm.label)

    _history(conn, where, E.step, label)
    if spec.set_attributes:
        _update_customers(conn, spec, where, dialect)

    values: dict[str, Any]
    if spec.complete or spec.exit_reason is not None:
        values = {
            "status": "completed" if spec.complete else "exited",
            "exit_reason": spec.exit_reason,
            "ended_at": E.wake_at,
            "wake_at": None,
        }
    else:
        ends = [arm.target == END and not spec.wait for arm in spec.arms]
        later = _add_seconds(E.wake_at, spec.add_seconds, dialect)
        values = {"step": target}
        if all(ends):
            values.update(status="completed", ended_at=E.wake_at, wake_at=None)
        elif any(ends):
            finished = target == END
            values.update(
                status=case((finished, "completed"), else_="active"),
                ended_at=case((finished, E.wake_at), else_=None),
                wake_at=case((finished, None), else_=later),
            )
        elif spec.add_seconds:
            values["wake_at"] = later
    result = conn.execute(update(enrollments).where(*where).values(**values))
    return int(result.rowcount or 0)


def advance_chained(
    conn: Connection,
    spec: SetStep,
    targets: Mapping[str, SetStep],
    now: datetime,
    group: DueGroup,
) -> dict[str, int]:
    """Run ``spec`` and, for the rows whose arm leads to one of ``targets`` (from
    :func:`journeys.runtime.setbased.chained`), that target step too, writing each enrollment
    once; returns how many rows ran each step.

    The arm is chosen by one ``CASE`` over the customer row, evaluated by every statement;
    the targets' customer updates run before the enrollments move and never touch a field
    the conditions read, so every statement sees the same choice.
    """
    dialect = conn.dialect.name
    where = _chosen_due(conn, spec, now, group)
    arms = spec.arms
    whens = [
        (condition_clause(arm.when, dialect), index)
        for index, arm in enumerate(arms[:-1])
        if arm.when is not None
    ]
    arm_of = case(*whens, else_=len(arms) - 1) if whens else literal(len(arms) - 1)
    counts = {spec.step: _history(conn, where, E.step, _pick(spec, dialect, lambda a: a.label))}
    for index, arm in enumerate(arms):
        target = targets.get(arm.target)
        if target is None:
            continue
        took = [*where, arm_of == index]
        label = literal(target.arms[0].label, String)
        n = _history(conn, took, literal(target.step, String), label)
        counts[target.step] = counts.get(target.step, 0) + n
        if n and target.set_attributes:
            _update_customers(conn, target, took, dialect)
    finals = [_final_state(arm, targets.get(arm.target), dialect) for arm in arms]
    values = {
        column: case(
            *((arm_of == i, final[column]) for i, final in enumerate(finals[:-1])),
            else_=finals[-1][column],
        )
        if len(finals) > 1
        else finals[0][column]
        for column in finals[0]
    }
    result = conn.execute(update(enrollments).where(*where).values(**values))
    counts[spec.step] = int(result.rowcount or 0)
    return counts


def _final_state(arm: Arm, target: SetStep | None, dialect: str) -> dict[str, Any]:
    """Where an enrollment taking ``arm`` ends up, after ``target`` too when it is chained."""
    # A typed NULL: PostgreSQL reads a CASE of untyped NULLs as text.
    never = literal(None, E.wake_at.type)
    done = {"status": literal("completed"), "ended_at": E.wake_at, "wake_at": never}
    state: dict[str, Any] = {
        "step": literal(arm.target, String),
        "status": literal("active"),
        "wake_at": E.wake_at,
        "ended_at": E.ended_at,
        "exit_reason": E.exit_reason,
    }
    if target is None:
        return {**state, **done, "step": literal(END, String)} if arm.target == END else state
    if target.exit_reason is not None:
        return {
            **state,
            **done,
            "status": literal("exited"),
            "exit_reason": literal(target.exit_reason, String),
        }
    after = target.arms[0].target
    state["step"] = literal(after, String)
    if target.wait:
        state["wake_at"] = _add_seconds(E.wake_at, target.add_seconds, dialect)
    elif after == END:
        state.update(done)
    return state


class _Unindexed:
    """Columns of ``enrollments`` for the statements' filters. On SQLite each is written
    ``+enrollments.<col>``, SQLite's way to keep a term from choosing an index: otherwise the
    planner walks the due index over *every* due row for each chunk instead of looking up
    the chunk's ids, and a million due rows cost a million visits per chunk."""

    def __init__(self, dialect: str) -> None:
        self._plain = dialect != "sqlite"

    def __getattr__(self, name: str) -> Any:
        column = E[name]
        if self._plain:
            return column
        return literal_column(f"+enrollments.{name}", type_=column.type)


def _pick(spec: SetStep, dialect: str, field: Any) -> Any:
    """A SQL value choosing ``field(arm)`` of the first arm whose condition holds."""
    arms = spec.arms
    if len(arms) == 1:
        return literal(field(arms[0]), String)
    whens = [
        (condition_clause(arm.when, dialect), field(arm))
        for arm in arms[:-1]
        if arm.when is not None
    ]
    return case(*whens, else_=literal(field(arms[-1]), String))


def _update_customers(conn: Connection, spec: SetStep, where: list[Any], dialect: str) -> None:
    due = select(E.customer_id.label("cid"), E.wake_at.label("at")).where(*where).subquery()
    if dialect == "postgresql":
        # Lock in id order, like every other customer write, so workers never deadlock.
        conn.execute(
            select(C.id).where(C.id.in_(select(due.c.cid))).order_by(C.id).with_for_update()
        )
        patch = cast(bindparam("patch", json.dumps(dict(spec.set_attributes))), JSONB)
        attributes: Any = C.attributes.op("||")(patch)
    else:
        args: list[Any] = []
        for key, value in spec.set_attributes:
            args += [f'$."{key}"', func.json(json.dumps(value))]
        attributes = func.json_set(C.attributes, *args)
    conn.execute(
        update(customers)
        .where(C.id == due.c.cid)
        .values(attributes=attributes, updated_at=due.c.at)
    )


def _add_seconds(column: Any, seconds: int, dialect: str) -> Any:
    if not seconds:
        return column
    if dialect == "postgresql":
        return column + literal(timedelta(seconds=seconds))
    # UtcDateTime's text on SQLite is "YYYY-MM-DD HH:MM:SS.ffffff": shift the whole seconds,
    # keep the fraction as it was.
    return func.strftime("%Y-%m-%d %H:%M:%S", column, f"+{seconds} seconds").op("||")(
        func.substr(column, 20)
    )


def _value(ref: Ref, dialect: str) -> Any:
    if ref.column:
        return C[ref.name]
    if dialect == "postgresql":
        text = func.jsonb_extract_path_text(C.attributes, ref.name)
        # Python reads JSON numbers as int or float; float8 agrees with both up to 2**53.
        return cast(text, Float) if ref.kind == "number" else text
    return func.json_extract(C.attributes, f'$."{ref.name}"')


def guard_clause(ref: Ref, dialect: str) -> Any:
    """SQL: the customer has ``ref``, of the type its comparisons need (Jinja could compare
    it)."""
    if ref.column:
        return C[ref.name].is_not(None)
    if dialect == "postgresql":
        kind = func.jsonb_typeof(func.jsonb_extract_path(C.attributes, ref.name))
        return kind == ("number" if ref.kind == "number" else "string")
    kind = func.json_type(C.attributes, f'$."{ref.name}"')
    return kind.in_(["integer", "real"]) if ref.kind == "number" else kind == "text"


def _const(ref: Ref, value: Any) -> Any:
    # Typed explicitly: psycopg would cast a list of numbers to the first one's type.
    return literal(value, Float if ref.kind == "number" else String)


def necessary_clause(conds: Sequence[Cond], dialect: str) -> Any:
    """SQL over ``customers``: false only where one of ``conds`` (from
    :func:`journeys.runtime.setbased.necessary_conditions`) is exactly false, i.e. its guard
    holds and it does not; customers the database cannot decide stay in."""
    parts = []
    for cond in conds:
        guard = and_(*(guard_clause(ref, dialect) for ref in sorted(refs(cond), key=repr)))
        # CASE, not OR: a guard on a missing attribute is NULL, not false, in SQL.
        parts.append(case((guard, condition_clause(cond, dialect)), else_=true()))
    return and_(*parts)


def segment_customers(
    conn: Connection, conds: Sequence[Cond], chunk: int = 5000
) -> Iterable[list[Customer]]:
    """The customers :func:`necessary_clause` keeps, in chunks (every customer when
    ``conds`` is empty)."""
    where = necessary_clause(conds, conn.dialect.name) if conds else None
    return repo.iter_customers(conn, chunk, where=where)


def condition_clause(cond: Cond, dialect: str) -> Any:
    """SQL for ``cond`` over the ``customers`` row; exact wherever its guard holds."""
    if isinstance(cond, Compare):
        return _OPS[cond.op](_value(cond.ref, dialect), _const(cond.ref, cond.value))
    if isinstance(cond, InList):
        value = _value(cond.ref, dialect)
        consts = [_const(cond.ref, v) for v in cond.values]
        return value.not_in(consts) if cond.negated else value.in_(consts)
    if isinstance(cond, Not):
        return not_(condition_clause(cond.part, dialect))
    assert isinstance(cond, BoolOp)
    parts = [condition_clause(p, dialect) for p in cond.parts]
    return and_(*parts) if cond.op == "and" else or_(*parts)
