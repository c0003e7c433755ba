"""Set-based steps: what compiles to SQL, that SQL decides exactly as Jinja does, and that a
journey advanced in SQL leaves the same database as one advanced step by step in Python."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine_helpers import T0, event, open_service, run_until, write_project
from journeys.conditions import refs
from journeys.expressions import ExpressionError, truthy
from journeys.runtime.context import customer_view, expression_context
from journeys.runtime.setbased import (
    chained,
    compile_condition,
    necessary_conditions,
    set_steps,
)
from journeys.store import setbased as setrepo
from journeys.store.db import create_engine, migrate
from journeys.store.tables import customers, enrollments, step_runs

COMPILED = [
    "customer.lifetime_value >= 500",
    "500 <= customer.lifetime_value",
    "customer.orders_count == 3 and customer.lifetime_value > 99.5",
    "customer.stage in ['loyalty', 'advocacy']",
    "customer.stage not in ('awareness',)",
    "not customer.tier == 'gold'",
    "customer.score > -2 or customer['plan'] != 'free'",
]
NOT_COMPILED = [
    "customer.stage > 'a'",  # text ordering depends on collation
    "customer.vip",  # bare truthiness
    "customer.vip == true",  # True == 1 in Python
    "event.data.total > 5",  # events are not in the customer row
    "answers.nps.score >= 9",
    "customer.first_order_at > '2026'",
    "customer.email_opt_in == 1",
    "customer.lifetime_value | int > 5",
    "1 < customer.orders_count < 5",
    "customer.orders_count == '3'",  # text column vs number: SQLite would coerce
    "customer.stage in ['a', 1]",
    "customer.x.y == 1",
    "(customer.lifetime_value * 2) > 5",
]


@pytest.mark.parametrize("source", COMPILED)
def test_conditions_that_compile(source: str) -> None:
    assert compile_condition(source) is not None


@pytest.mark.parametrize("source", NOT_COMPILED)
def test_conditions_left_to_jinja(source: str) -> None:
    assert compile_condition(source) is None


# ---------------------------------------------------------------- SQL agrees with Jinja

VALUES: list[Any] = [None, 0, 1, 3, 2.5, 499.99, 500, 1e6, -3, "gold", "free", "", "500", True, [1]]
CONDITIONS = [
    "customer.score >= 500",
    "customer.score < 3",
    "customer.score == 1",
    "customer.score != 1",
    "customer.tier == 'gold'",
    "customer.tier != 'gold'",
    "customer.tier in ['gold', 'free']",
    "customer.tier not in ['gold']",
    "customer.score in [1, 3, 2.5]",
    "not (customer.score > 2 and customer.tier == 'free')",
    "customer.score > 2 or customer.tier == ''",
    "customer.lifetime_value >= 100 and customer.stage == 'loyalty'",
    "customer.orders_count != 2",
    "customer.first_name == 'Ann'",
    *COMPILED,  # every form the compiler accepts is checked against Jinja too
]


def _random_customers() -> list[dict[str, Any]]:
    rng = random.Random(11)
    rows = []
    for i in range(400):
        attrs: dict[str, Any] = {}
        for name in ("score", "tier", "plan"):
            if rng.random() < 0.8:
                attrs[name] = rng.choice(VALUES)
        rows.append(
            {
                "id": f"c{i:03d}",
                "first_name": rng.choice([None, "Ann", "Bo"]),
                "stage": rng.choice(["awareness", "loyalty"]),
                "orders_count": rng.randint(0, 3),
                "lifetime_value": rng.choice([0.0, 99.5, 100, 1234.5]),
                "attributes": attrs,
                "created_at": T0,
                "updated_at": T0,
            }
        )
    return rows


def _store_with(db_url: str, rows: list[dict[str, Any]]) -> Any:
    engine = create_engine(db_url)
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(customers.insert(), rows)
    return engine


def test_sql_decides_exactly_as_jinja_wherever_its_guard_holds(db_url: str) -> None:
    """Random customers; for every condition, the rows the guard admits get SQL's answer, and
    that answer is Jinja's. Rows outside the guard are the ones Python must decide."""
    rows = _random_customers()
    engine = _store_with(db_url, rows)
    dialect = engine.dialect.name
    admitted_somewhere = 0
    for source in CONDITIONS:
        cond = compile_condition(source)
        assert cond is not None, source
        guard = [setrepo.guard_clause(ref, dialect) for ref in sorted(refs(cond), key=repr)]
        with engine.connect() as conn:
            admitted = set(conn.scalars(select(customers.c.id).where(*guard)))
            true = set(
                conn.scalars(
                    select(customers.c.id).where(*guard, setrepo.condition_clause(cond, dialect))
                )
            )
        for row in rows:
            if row["id"] not in admitted:
                continue
            ctx = expression_context(customer_view(row), event={}, answers={}, now=T0, journey={})
            assert truthy(source, ctx) == (row["id"] in true), (source, row)
        admitted_somewhere += len(admitted)
        if any(name in source for name in ("score", "tier", "plan")):
            # The guard keeps out exactly the rows Jinja could not compare (None, missing, …).
            assert len(admitted) < len(rows), source
    assert admitted_somewhere > 1000
    engine.dispose()


# ---------------------------------------------------------------- segments

SEGMENTS = [
    "customer.score >= 3 and (customer.plan | length) > 2",
    "customer.orders_count > 0 and (customer.last_order_at | days_since(now) or 0) > 60",
    "customer.tier == 'gold' and customer.vip and customer.score > 2",
    "customer.vip and customer.score < 3",  # raises for some, false for others
    "(customer.score > 2 or customer.tier == 'free') and customer.stage == 'loyalty'",
]


def test_necessary_conditions_are_the_and_operands_that_compile() -> None:
    found = necessary_conditions("customer.a > 1 and customer.vip and customer.b == 'x'")
    assert found == (compile_condition("customer.a > 1"), compile_condition("customer.b == 'x'"))
    assert necessary_conditions("customer.a > 1 or customer.vip") == ()
    assert necessary_conditions("customer.a > 1 or customer.b < 2") == (
        compile_condition("customer.a > 1 or customer.b < 2"),
    )
    assert necessary_conditions("customer.vip") == ()
    assert necessary_conditions("{{ nope") == ()


def test_segment_prefilter_keeps_everyone_jinja_would_enroll(db_url: str) -> None:
    """The customers the database leaves out of a schedule sweep are exactly ones whose
    segment Jinja finds false (or cannot evaluate); everyone it finds true stays in."""
    rows = _random_customers()
    engine = _store_with(db_url, rows)
    by_id = {row["id"]: row for row in rows}
    for source in SEGMENTS:
        conds = necessary_conditions(source)
        assert conds, source
        with engine.connect() as conn:
            kept = {c.id for chunk in setrepo.segment_customers(conn, conds, 37) for c in chunk}
        assert 0 < len(kept) < len(rows), source
        for cid, row in by_id.items():
            ctx = expression_context(customer_view(row), event={}, answers={}, now=T0, journey={})
            try:
                enrolls = truthy(source, ctx)
            except ExpressionError:
                enrolls = False
            if enrolls:
                assert cid in kept, (source, row)
    engine.dispose()


# ---------------------------------------------------------------- whole journeys

TIERS = """
journey: tiers
name: Tiers
trigger: {event: customer.signed_up}
steps:
  - id: pause
    wait: 1d
  - id: hop
    goto: tier
  - id: tier
    branch:
      - when: "customer.lifetime_value >= 500 and customer.score >= 5"
        goto: vip
      - when: "customer.plan in ['free', 'trial']"
        goto: free
      - when: "customer.stage == 'loyalty'"
        goto: loyal
  - id: regular
    update: {set: {tier: regular, touched: 1}}
    goto: again
  - id: again  # its target writes what it reads: not run in the same statements
    branch:
      - when: "customer.tier == 'regular'"
        goto: mark
      - goto: end
  - id: mark
    update: {set: {tier: marked}}
    goto: end
  - id: vip
    update: {set: {tier: vip, perks: [1, 2], note: null}}
  - id: nap
    wait: 2h
  - id: stop
    exit: vip_done
  - id: free
    branch:
      - when: "customer.score < 0"
        goto: end
      - when: "customer.score == 2"
        goto: stop
      - goto: loyal
  - id: loyal
    wait: 30m
"""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_urls(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """Two fresh databases on the same backend."""
    if request.param == "postgres":
        new: Callable[..., str] = request.getfixturevalue("pg_database_factory")
        return new(migrated=True), new(migrated=True)
    return (f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}")


def _state(service: Any) -> dict[str, Any]:
    with service.db.connect() as conn:
        enr = {
            r.customer_id: (r.status, r.step, r.wake_at, r.ended_at, r.exit_reason, r.vars)
            for r in conn.execute(select(enrollments))
        }
        owners = {r.id: r.customer_id for r in conn.execute(select(enrollments))}
        history = sorted(
            (owners[r.enrollment_id], r.step, r.at, r.outcome)
            for r in conn.execute(select(step_runs))
        )
        people = {
            r.id: (r.attributes, r.updated_at, r.stage) for r in conn.execute(select(customers))
        }
    return {"enrollments": enr, "history": history, "customers": people}


def _run_tiers(
    project: Any,
    url: str,
    people: list[dict[str, Any]],
    *,
    set_based: bool,
    chunk: int | None,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[int, list[Any], dict[str, Any]]:
    """Run TIERS for three days; (enrollment-steps moved in SQL, windows used, final state)."""
    service = open_service(project, url)
    service.runtime.set_based = set_based
    service.runtime.set_chunk = chunk
    service.runtime.set_min_rows = 0
    service.import_customers(people)
    with service.db.begin() as conn:  # some customers spend, some are loyal already
        for i in range(0, len(people), 3):
            conn.execute(
                customers.update()
                .where(customers.c.id == people[i]["id"])
                .values(lifetime_value=900.0, stage="loyalty" if i % 2 else "awareness")
            )
    service.ingest(
        [
            event(f"e{i}", "customer.signed_up", p["id"], f"2026-03-02T{i % 3:02d}:00:00Z")
            for i, p in enumerate(people)
        ]
    )
    moved: list[int] = []
    windows: list[Any] = []
    real_step, real_groups = setrepo.advance_set_step, setrepo.due_groups

    def counting(*args: Any, **kw: Any) -> int:
        moved.append(real_step(*args, **kw))
        return moved[-1]

    def groups(*args: Any, **kw: Any) -> Any:
        windows.append(kw.get("window"))
        return real_groups(*args, **kw)

    with monkeypatch.context() as patch:
        patch.setattr(setrepo, "advance_set_step", counting)
        patch.setattr(setrepo, "due_groups", groups)
        run_until(service, T0 + timedelta(days=3))
    state = _state(service)
    service.db.dispose()
    return sum(moved), windows, state


@pytest.mark.parametrize("chunk", [None, 7])
def test_set_based_advancing_leaves_the_same_database_as_python(
    tmp_path: Path,
    two_urls: tuple[str, str],
    chunk: int | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``chunk`` 7: many small transactions (id windows on SQLite, id lists on PostgreSQL)."""
    project = write_project(tmp_path, {"tiers": TIERS})
    rng = random.Random(5)
    people = []
    for i in range(120):
        person: dict[str, Any] = {"id": f"c{i:03d}", "email": f"{i}@x.io"}
        if rng.random() < 0.85:
            person["score"] = rng.choice([None, -1, 2, 5, 9, "7"])
        if rng.random() < 0.7:
            person["plan"] = rng.choice(["free", "trial", "pro", 3])
        people.append(person)
    moved, windows, sql = _run_tiers(
        project, two_urls[0], people, set_based=True, chunk=chunk, monkeypatch=monkeypatch
    )
    moved_by_python, _, python = _run_tiers(
        project, two_urls[1], people, set_based=False, chunk=chunk, monkeypatch=monkeypatch
    )
    assert moved > 100 and moved_by_python == 0
    if chunk and two_urls[0].startswith("sqlite"):
        assert any(w is not None for w in windows)  # the id-window path ran
    assert sql["enrollments"] == python["enrollments"]
    assert sql["history"] == python["history"]
    assert sql["customers"] == python["customers"]
    statuses = {v[0] for v in sql["enrollments"].values()}
    assert statuses == {"completed", "exited"}, statuses  # every path ran to its end
    outcomes = {h[3] for h in sql["history"]}
    assert {"case 1 → vip", "case 2 → free", "case 3 → loyal", "no case matched → regular"} <= (
        outcomes
    )
    # Every kind of chained target ran: an update, a wait, an exit, and an update to the end.
    assert {"case 2 → stop", "exit vip_done", "waited", "updated", "case 1 → mark"} <= outcomes


MIXED = """
journey: mixed
name: Mixed
trigger: {event: customer.signed_up}
steps:
  - id: pause
    wait: 1d
  - id: morning
    wait: {until: "09:00"}
  - id: hello
    send: {template: hello}
  - id: ab
    split:
      - {variant: a, weight: 50, goto: promote}
      - {variant: b, weight: 50, goto: promote}
  - id: promote
    update: {stage: loyalty}
  - id: stamp
    update: {set: {seen: "{{ now }}"}}
  - id: on_event
    branch:
      - when: "event.data.total > 5"
        goto: plain
  - id: plain
    update: {set: {plain: yes}}
"""


def test_which_steps_run_in_sql(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"mixed": MIXED, "tiers": TIERS})
    assert set(set_steps(project.plans["tiers"])) == {
        "pause",
        "hop",
        "tier",
        "regular",
        "vip",
        "nap",
        "stop",
        "free",
        "loyal",
        "again",
        "mark",
        "end",
    }
    # A local time of day, sends, splits, stage changes, templated values and conditions on
    # the event stay in Python.
    assert set(set_steps(project.plans["mixed"])) == {"pause", "plain", "end"}


def test_which_targets_run_in_the_same_statements(tmp_path: Path) -> None:
    """A branch or goto takes along targets with one unconditional way out, unless such a
    target writes a field the branch reads."""
    steps = set_steps(write_project(tmp_path, {"tiers": TIERS}).plans["tiers"])
    assert set(chained(steps["tier"], steps)) == {"vip", "regular", "loyal"}  # free branches
    assert set(chained(steps["free"], steps)) == {"stop", "loyal"}  # the first arm ends
    assert set(chained(steps["hop"], steps)) == set()  # tier has conditions
    assert chained(steps["again"], steps) == {}  # mark writes `tier`, which again reads
    assert chained(steps["regular"], steps) == {}  # an update runs alone
    assert chained(steps["pause"], steps) == {}  # a wait runs alone
