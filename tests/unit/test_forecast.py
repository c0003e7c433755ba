"""``journeys forecast`` on the in-memory store: history replayed against versions of a
journey, with numbers worked out by hand (T0 = 2026-03-02 00:00 UTC)."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine_helpers import SIGNUP_WELCOME, WAIT_FOR_CART, write_project
from journeys.clock import iso
from journeys.forecast import Forecast, Subject, run_forecast
from journeys.forecast.project import live_plan, spec_plan
from journeys.forecast.text import render_text
from journeys.runtime.ingest import import_customers, ingest_events
from journeys.sampledata import generate_customers, generate_events
from journeys.simulate import simulate
from journeys.spec import Project, load_project
from journeys.spec.project import load_project_with
from journeys.state import Customer, Event, Suppression
from journeys.store.memory import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, tzinfo=UTC)
START, UNTIL = T0, T0 + timedelta(days=5)

CART, WELCOME = WAIT_FOR_CART, SIGNUP_WELCOME


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def event(eid: str, etype: str, cid: str, hours: float, **data: Any) -> dict[str, Any]:
    return {
        "id": eid,
        "type": etype,
        "customer_id": cid,
        "occurred_at": iso(at(hours)),
        "data": data,
    }


class ListHistory:
    """A history held in lists, served ``batch`` events at a time."""

    def __init__(self, customers: list[Customer], events: list[Event], batch: int = 2) -> None:
        self._customers, self._events, self.batch = customers, events, batch
        self.asked: list[Collection[str] | None] = []

    def event_batches(self, start: datetime, end: datetime) -> Iterator[list[Event]]:
        found = sorted(
            (e for e in self._events if start <= e.occurred_at < end),
            key=lambda e: (e.occurred_at, e.seq or 0),
        )
        for i in range(0, len(found), self.batch):
            yield found[i : i + self.batch]

    def customers(self, ids: Collection[str] | None, at: datetime) -> Iterator[list[Customer]]:
        self.asked.append(None if ids is None else set(ids))
        yield [c for c in self._customers if ids is None or c.id in ids]

    def suppressions(self, ids: Sequence[str]) -> list[Suppression]:
        return []


def recorded(customers: list[dict[str, Any]], events: list[dict[str, Any]]) -> ListHistory:
    """The records as a database would hold them (imported, ingested)."""
    store = MemoryStore()
    import_customers(store, customers, T0 - timedelta(days=30), "awareness")
    report = ingest_events(store, events, T0)
    assert report.ok, report.errors
    stored = [store.events[seq]["event"] for seq in sorted(store.events)]
    return ListHistory(store.all_customers(), stored)


def people(*ids: str) -> list[dict[str, Any]]:
    return [
        {"id": cid, "email": f"{cid}@example.com", "timezone": "UTC", "email_opt_in": True}
        for cid in ids
    ]


def forecast(
    project: Project, history: ListHistory, spec: str = "cart", live: str | None = None
) -> Forecast:
    plans = {p.journey: p for p in project.plans.values()}
    subject = Subject(spec, plans[spec])
    if live is not None:
        subject = Subject(spec, plans[spec], project_plan(live), "database")
    return run_forecast(
        project, subject, history, start=START, until=UNTIL, days=5, spec_file="cart.yaml"
    )


def project_plan(text: str) -> Any:
    from journeys.spec import load_journey_text

    return load_journey_text(text)


CARTS = [
    event("e1", "cart.updated", "c-1", 1),
    event("e2", "cart.updated", "c-2", 2),
    event("e3", "cart.updated", "c-3", 3),
    event("e4", "order.placed", "c-2", 10, total=30),  # within 24h: no reminder
]


def test_three_carts_one_order_within_a_day_give_two_reminders_at_exact_times(
    tmp_path: Path,
) -> None:
    project = write_project(tmp_path, {"cart": CART})
    history = recorded(people("c-1", "c-2", "c-3", "c-4"), CARTS)
    result = forecast(project, history)
    run = result.spec
    assert (run.entered, run.customers, run.completed, run.active) == (3, 3, 2, 0)
    assert dict(run.exits) == {"order.placed": 1}
    assert run.converted == 0  # the journey has no goal
    assert [(m["customer_id"], m["at"], m["outcome"]) for m in run.messages] == [
        ("c-1", "2026-03-03T01:00:00Z", "messages"),
        ("c-3", "2026-03-03T03:00:00Z", "messages"),
    ]
    remind = run.to_dict()["steps"][0]
    assert remind == {
        "step": "remind",
        "template": "hello",
        "channel": "email",
        "kind": "send",
        "messages": 2,
        "frequency_cap": 0,
        "suppressed": 0,
        "failed": 0,
        "quiet_hours": 0,
        "first": "2026-03-03T01:00:00Z",
        "last": "2026-03-03T03:00:00Z",
        "per_day": {"2026-03-03": 2},
    }
    assert (result.replayed.events, result.replayed.customers) == (4, 3)
    assert history.asked == [{"c-1", "c-2"}, {"c-3"}]  # customers load with their events
    assert result.live is None and result.to_dict()["difference"] is None


def test_the_frequency_cap_holds_back_a_reminder_after_another_journeys_message(
    tmp_path: Path,
) -> None:
    settings = "consent: {missing: allow}\nfrequency_cap: {messages: 1, per: 1d}\n"
    project = write_project(tmp_path, {"cart": CART, "welcome": WELCOME}, settings=settings)
    # c-1 signs up 20h in: welcome at 20h, then their reminder at 25h is the second in a day.
    signup = event("s1", "customer.signed_up", "c-1", 20)
    result = forecast(project, recorded(people("c-1", "c-2", "c-3"), [*CARTS, signup]))
    assert result.alongside == ["welcome"]  # it sends marketing under the same cap
    run = result.spec
    assert run.total("messages") == 1 and run.total("frequency_cap") == 1
    held, sent = run.messages
    assert (held["customer_id"], held["outcome"]) == ("c-1", "frequency_cap")
    assert held["reason"] == "frequency cap: 1 per 86400s"
    assert (sent["customer_id"], sent["at"]) == ("c-3", "2026-03-03T03:00:00Z")


def test_without_a_cap_a_journey_that_only_sends_does_not_run_beside(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"cart": CART, "welcome": WELCOME})
    signup = event("s1", "customer.signed_up", "c-1", 20)
    result = forecast(project, recorded(people("c-1", "c-2", "c-3"), [*CARTS, signup]))
    assert result.alongside == []
    assert result.spec.total("messages") == 2 and result.spec.total("frequency_cap") == 0


def test_quiet_hours_delay_a_reminder_to_their_end(tmp_path: Path) -> None:
    quiet = CART.replace("trigger:", 'quiet_hours: "21:00-09:00"\ntimezone: UTC\ntrigger:')
    project = write_project(tmp_path, {"cart": quiet})
    # A cart at 10:00: its reminder goes at 10:00 the next day. A cart at 22:00: the
    # reminder falls at 22:00 the next day, inside quiet hours, and waits for 09:00.
    carts = [event("a", "cart.updated", "c-1", 10), event("b", "cart.updated", "c-3", 22)]
    run = forecast(project, recorded(people("c-1", "c-3"), carts)).spec
    assert run.total("quiet_hours") == 1 and run.total("messages") == 2
    assert [(m["customer_id"], m["at"], m["deferred_from"]) for m in run.messages] == [
        ("c-1", "2026-03-03T10:00:00Z", None),
        ("c-3", "2026-03-04T09:00:00Z", "2026-03-03T22:00:00Z"),
    ]
    assert run.steps["remind"].per_day == {"2026-03-03": 1, "2026-03-04": 1}


def test_a_48h_wait_differs_from_the_live_24h_one(tmp_path: Path) -> None:
    slower = CART.replace("within: 24h", "within: 48h")
    project = write_project(tmp_path, {"cart": slower})
    events = [
        CARTS[0],
        CARTS[2],
        event("o1", "order.placed", "c-1", 30, total=30),  # after 24h, within 48h
    ]
    result = forecast(project, recorded(people("c-1", "c-3"), events), live=CART)
    spec, live = result.spec, result.live
    assert live is not None and spec.version != live.version
    # Live: reminders at 25h (c-1) and 27h (c-3). 48h: c-1 orders first; c-3 at 51h.
    assert [(m["customer_id"], m["at"]) for m in live.messages] == [
        ("c-1", "2026-03-03T01:00:00Z"),
        ("c-3", "2026-03-03T03:00:00Z"),
    ]
    assert [(m["customer_id"], m["at"]) for m in spec.messages] == [("c-3", "2026-03-04T03:00:00Z")]
    diff = result.to_dict()["difference"]
    assert diff["messages"] == -1 and diff["completed"] == -1 and diff["entered"] == 0
    assert diff["steps"]["remind"]["messages"] == -1
    data = result.to_dict()
    assert data["live"]["from"] == "database" and data["live"]["unchanged"] is False
    assert data["live"]["totals"]["messages"] == 2
    text = render_text(result, with_messages=True)
    lines = [line.split() for line in text.splitlines()]
    assert ["messages", "going", "out", "1", "2", "-1"] in lines
    assert ["exited:", "order.placed", "1", "0", "+1"] in lines
    assert "going out 1 / 2" in text
    assert "2026-03-04 03:00  c-3  remind (hello, email)  goes out" in text


def test_the_live_version_is_the_one_the_database_saved_else_the_specs(tmp_path: Path) -> None:
    project = write_project(tmp_path, {"cart": CART})
    plan = project.plans["cart"]
    other = project_plan(CART.replace("24h", "48h"))
    assert live_plan(plan, other.to_dict(), plan) == (other, "database")
    assert live_plan(plan, None, plan) == (plan, "specs")
    assert live_plan(plan, {"journey": "cart"}, None) == (None, None)  # unreadable
    assert not Subject("cart", plan, plan, "specs").changed
    assert Subject("cart", plan, other, "database").changed


def test_a_spec_replaces_the_journey_with_its_id_and_keeps_the_rest(tmp_path: Path) -> None:
    write_project(tmp_path, {"cart": CART, "welcome": WELCOME})
    draft = tmp_path / "drafts" / "cart-v2.yaml"
    draft.parent.mkdir()
    draft.write_text(CART.replace("24h", "48h"), encoding="utf-8")
    project = load_project_with(tmp_path / "journey_specs", draft)
    assert project.ok, project.diagnostics
    assert sorted(project.plans) == ["cart", "welcome"]
    plan = spec_plan(project, draft)
    assert plan is not None and plan.source == str(draft)
    assert project.settings.consent_missing == "allow"  # the project's journeys.yaml


def test_a_bad_spec_gets_the_validate_diagnostics(tmp_path: Path) -> None:
    write_project(tmp_path, {"cart": CART})
    draft = tmp_path / "bad.yaml"
    draft.write_text(CART.replace("template: hello", "template: nope"), encoding="utf-8")
    project = load_project_with(tmp_path / "journey_specs", draft)
    assert not project.ok
    (problem,) = project.errors
    assert str(problem).startswith(f'{draft}:13:22: template "nope" does not exist')
    assert str(problem).endswith("[missing-template]")


def test_the_forecast_replays_what_simulate_runs(tmp_path: Path) -> None:
    """Passes at batch boundaries, only the journeys that matter: the same messages and
    enrollments as simulate's instant-by-instant run of every journey."""
    project = load_project([ROOT / "journey_specs"], templates_dir=ROOT / "templates")
    customers = generate_customers(40, seed=3)
    events = list(generate_events(customers, START, 5, seed=3, sessions_per_day=0.6))
    sim = simulate(project, customers, events, start=START, until=UNTIL)
    history = recorded(customers, events)
    history.batch = 50
    journeys = sorted({m["journey"] for m in sim.messages})
    # Event, schedule (win-back) and stage (loyalty-advocacy) triggers all send something.
    assert {"abandoned-cart", "browse", "loyalty-advocacy", "welcome", "win-back"} <= set(journeys)
    for journey in journeys:
        result = forecast(project, history, spec=journey)
        expected = [
            (m["customer_id"], m["step"], m["at"]) for m in sim.messages if m["journey"] == journey
        ]
        got = [
            (m["customer_id"], m["step"], m["at"])
            for m in result.spec.messages
            if m["outcome"] == "messages"
        ]
        assert sorted(got) == sorted(expected) and expected, journey
        entered = [e for e in sim.enrollments if e["journey"] == journey]
        assert result.spec.entered == len(entered)


@pytest.mark.parametrize("batch", [1, 3, 1000])
def test_batches_of_any_size_give_the_same_forecast(tmp_path: Path, batch: int) -> None:
    project = write_project(tmp_path, {"cart": CART})
    # c-4's cart comes at the very start of the period; c-1 updates theirs (already in).
    more = [event("e0", "cart.updated", "c-4", 0), event("e5", "cart.updated", "c-1", 10)]
    history = recorded(people("c-1", "c-2", "c-3", "c-4"), [*CARTS, *more])
    history.batch = batch
    run = forecast(project, history).spec
    assert [(m["customer_id"], m["at"]) for m in run.messages] == [
        ("c-4", "2026-03-03T00:00:00Z"),
        ("c-1", "2026-03-03T01:00:00Z"),
        ("c-3", "2026-03-03T03:00:00Z"),
    ]
