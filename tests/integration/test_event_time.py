"""Event time is the truth: however events are batched, ordered and processed, the outcome is
what ``journeys simulate`` gives.

Random customers and events for the example journeys are processed three ways on a real
store (SQLite and PostgreSQL) and compared with the simulation (the in-memory store, stepping
virtual time through every instant):

- as one file, ingested before one pass at the end;
- as parts ingested in a shuffled order, then one pass;
- as time-ordered parts with a pass (virtual clock) at each part's end.

The messages (to the second), the enrollments and the customers' stages and attributes must
be the same.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from journeys.clock import VirtualClock, iso
from journeys.service import JourneyService, default_channels
from journeys.simulate import NullChannel, simulate
from journeys.spec import Project, load_project
from journeys.store import db as store_db
from journeys.store.tables import customers, enrollments, outbox

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday: the win-back schedule fires in range
DAYS = 12
UNTIL = START + timedelta(days=DAYS)
ZONES = [None, "Asia/Seoul", "Europe/London", "America/New_York"]


@pytest.fixture(scope="module")
def project() -> Project:
    loaded = load_project([ROOT / "journey_specs"], templates_dir=ROOT / "templates")
    assert loaded.ok, loaded.diagnostics
    return loaded


def _instant(seconds: int) -> str:
    return iso(START + timedelta(seconds=seconds)) or ""


@st.composite
def scenarios(draw: Callable[..., Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A few customers (some lapsed buyers, some with a birthday in range) and their events."""
    people: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for c in range(draw(st.integers(1, 4))):
        cid = f"c-{c}"
        person: dict[str, Any] = {
            "id": cid,
            "email": f"{cid}@example.com",
            "first_name": f"Name{c}",
            "locale": draw(st.sampled_from(["en", "ko"])),
            "email_opt_in": draw(st.sampled_from(["true", "true", "false"])),
        }
        zone = draw(st.sampled_from(ZONES))
        if zone:
            person["timezone"] = zone
        if draw(st.booleans()):
            person["birthday"] = f"1990-03-{draw(st.integers(2, 13)):02d}"
        if draw(st.booleans()):  # bought long ago: the win-back segment
            person["orders_count"] = draw(st.integers(1, 3))
            person["last_order_at"] = "2025-11-01T10:00:00Z"
        people.append(person)
        for n in range(draw(st.integers(0, 8))):
            at = _instant(draw(st.integers(0, (DAYS - 1) * 86400)))
            kind = draw(
                st.sampled_from(
                    [
                        "cart.updated",
                        "cart.updated",
                        "order.placed",
                        "order.placed",
                        "order.delivered",
                        "product.viewed",
                        "customer.signed_up",
                        "survey.answered",
                        "email.clicked",
                        "referral.sent",
                        "email.unsubscribed",
                    ]
                )
            )
            data: dict[str, Any] = {}
            if kind == "cart.updated":
                total = draw(st.sampled_from([5.0, 25.0, 80.0]))
                data = {"cart_total": total, "items": [{"sku": "A1", "price": total}]}
            elif kind == "order.placed":
                data = {"order_id": f"o-{c}-{n}", "total": draw(st.sampled_from([30.0, 600.0]))}
            elif kind == "product.viewed":
                data = {"sku": "A1", "name": "Lamp", "price": 20.0}
            elif kind == "survey.answered":
                data = {
                    "journey": "post-purchase",
                    "step": "nps",
                    "score": draw(st.integers(0, 10)),
                }
            events.append(
                {
                    "id": f"e-{c}-{n}",
                    "type": kind,
                    "customer_id": cid,
                    "occurred_at": at,
                    "data": data,
                }
            )
    return people, events


def _open(project: Project, url: str, at: datetime) -> JourneyService:
    service = JourneyService(
        store_db.open_store(url),
        project,
        clock=VirtualClock(at),
        channels=default_channels(NullChannel()),
        batch_size=3,  # several batches even for a handful of customers
    )
    service.start_cursors(START)
    return service


def _outcome(service: JourneyService) -> dict[str, Any]:
    """The simulation contract's three lists, read from a SQL store, order-free."""
    assert service.db is not None
    with service.db.connect() as conn:
        messages = sorted(
            (r.customer_id, r.journey, r.step, r.template, r.channel, iso(r.due_at))
            for r in conn.execute(select(outbox).where(outbox.c.status.in_(["pending", "sent"])))
        )
        enrolled = sorted(
            (r.customer_id, r.journey, r.status, r.exit_reason, iso(r.entered_at), iso(r.ended_at))
            for r in conn.execute(select(enrollments))
        )
        people = sorted(
            (r.id, r.stage, sorted(r.attributes.items()), r.orders_count, r.lifetime_value)
            for r in conn.execute(select(customers))
        )
    return {"messages": messages, "enrollments": enrolled, "customers": people}


def _reference(project: Project, people: list[dict[str, Any]], events: list[dict[str, Any]]):  # type: ignore[no-untyped-def]
    result = simulate(project, people, events, start=START, until=UNTIL)
    return {
        "messages": sorted(
            (m["customer_id"], m["journey"], m["step"], m["template"], m["channel"], m["at"])
            for m in result.messages
        ),
        "enrollments": sorted(
            (
                e["customer_id"],
                e["journey"],
                e["status"],
                e["exit_reason"],
                e["entered_at"],
                e["ended_at"],
            )
            for e in result.enrollments
        ),
        "customers": sorted(
            (
                c["id"],
                c["stage"],
                sorted(
                    (k, v)
                    for k, v in c["attributes"].items()
                    if k
                    not in ("orders_count", "lifetime_value", "first_order_at", "last_order_at")
                ),
                c["attributes"]["orders_count"],
                c["attributes"]["lifetime_value"],
            )
            for c in result.customers
        ),
    }


def _parts(events: list[dict[str, Any]], k: int, rng: random.Random) -> list[list[dict[str, Any]]]:
    cut = sorted(rng.sample(range(len(events) + 1), min(k, len(events) + 1)))
    bounds = [0, *cut, len(events)]
    return [events[a:b] for a, b in pairwise(bounds) if b > a]


def _check_all_modes(
    project: Project,
    new_url: Callable[[], str],
    people: list[dict[str, Any]],
    events: list[dict[str, Any]],
    seed: int,
) -> None:
    expected = _reference(project, people, events)
    rng = random.Random(seed)

    # One file, one pass at the end.
    service = _open(project, new_url(), UNTIL)
    service.import_customers(people)
    service.ingest(events)
    assert service.run_pass().late == 0
    assert _outcome(service) == expected, "one file, one pass"
    service.close()

    # Parts in a shuffled order, then one pass.
    parts = _parts(list(events), 4, rng)
    rng.shuffle(parts)
    service = _open(project, new_url(), UNTIL)
    service.import_customers(people)
    for part in parts:
        service.ingest(part)
    assert service.run_pass().late == 0
    assert _outcome(service) == expected, "shuffled parts, one pass"
    service.close()

    # Time-ordered parts, a pass at each part's end (parts end between distinct instants).
    ordered = sorted(events, key=lambda e: e["occurred_at"])
    service = _open(project, new_url(), START)
    service.import_customers(people)
    clock = service.clock
    assert isinstance(clock, VirtualClock)
    for part in _parts(ordered, 5, rng):
        later = [e for e in ordered if e["occurred_at"] == part[-1]["occurred_at"]]
        part = [e for e in part if e not in later] + later
        service.ingest(part)
        clock.set(max(clock.now(), datetime.fromisoformat(part[-1]["occurred_at"])))
        assert service.run_pass().late == 0
    clock.set(UNTIL)
    service.run_pass()
    assert _outcome(service) == expected, "time-ordered parts, a pass after each"
    service.close()


EXAMPLES = 25


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=scenarios(), seed=st.integers(0, 10_000))
def test_sqlite_backlogs_give_what_simulate_gives(
    project: Project, case: tuple[list[dict[str, Any]], list[dict[str, Any]]], seed: int
) -> None:
    people, events = case
    with tempfile.TemporaryDirectory() as folder:
        counter = iter(range(10))
        _check_all_modes(
            project,
            lambda: f"sqlite:///{Path(folder) / f'j{next(counter)}.db'}",
            people,
            events,
            seed,
        )


@pytest.mark.postgres
@settings(
    max_examples=EXAMPLES // 3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=scenarios(), seed=st.integers(0, 10_000))
def test_postgres_backlogs_give_what_simulate_gives(
    project: Project,
    pg_database_factory: Callable[..., str],
    case: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    seed: int,
) -> None:
    people, events = case
    _check_all_modes(project, lambda: pg_database_factory(migrated=True), people, events, seed)


def test_the_reported_case_a_cart_then_an_order_an_hour_later(
    project: Project, tmp_path: Path
) -> None:
    """The issue's case: an order an hour after the cart, ingested together and run once,
    sends nothing (as simulate says) instead of a reminder and a coupon."""
    people = [
        {"id": "c-1", "email": "a@example.com", "timezone": "Asia/Seoul", "email_opt_in": "true"}
    ]
    events = [
        {
            "id": "e1",
            "type": "cart.updated",
            "customer_id": "c-1",
            "occurred_at": "2026-03-02T10:00:00Z",
            "data": {"cart_total": 59.9, "items": [{"sku": "A1", "price": 59.9}]},
        },
        {
            "id": "e2",
            "type": "order.placed",
            "customer_id": "c-1",
            "occurred_at": "2026-03-02T11:00:00Z",
            "data": {"order_id": "o1", "total": 59.9},
        },
    ]
    service = _open(project, f"sqlite:///{tmp_path / 'j.db'}", UNTIL)
    service.import_customers(people)
    service.ingest(events)
    service.run_pass()
    outcome = _outcome(service)
    service.close()
    assert outcome["messages"] == []
    assert [e[1:4] for e in outcome["enrollments"]] == [
        ("abandoned-cart", "exited", "order.placed")
    ]
    assert outcome == _reference(project, people, events)
