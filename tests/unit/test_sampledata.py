"""The sample data generator: deterministic, on contract (docs/events.md), sorted and streaming."""

from __future__ import annotations

import csv
import itertools
import json
import re
import types
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from journeys.sampledata import (
    CUSTOMER_COLUMNS,
    EVENT_TYPES,
    TIMEZONES,
    generate_customers,
    generate_events,
    write_customers_csv,
    write_jsonl,
)

START = datetime(2026, 3, 1, tzinfo=UTC)
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def parse(text: str) -> datetime:
    """ISO ``…Z`` to an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def customers() -> list[dict]:
    return generate_customers(300)


@pytest.fixture(scope="module")
def events(customers: list[dict]) -> list[dict]:
    return list(generate_events(customers, START, 21))


def test_customers_are_deterministic_and_seeded() -> None:
    assert generate_customers(50) == generate_customers(50)
    assert generate_customers(50, seed=8) != generate_customers(50)
    # A prefix does not depend on how many are asked for.
    assert generate_customers(60)[:50] == generate_customers(50)


def test_customer_contract(customers: list[dict]) -> None:
    assert [c["id"] for c in customers[:3]] == ["c-0001", "c-0002", "c-0003"]
    assert len({c["id"] for c in customers}) == len(customers) == 300
    assert len({c["email"] for c in customers}) == len(customers)
    for c in customers:
        assert set(CUSTOMER_COLUMNS) <= set(c)
        assert re.fullmatch(r"[^@\s]+@example\.com", c["email"])
        assert c["first_name"] and c["last_name"]
        assert c["locale"] in {"ko", "en-US", "en"}
        assert c["timezone"] in TIMEZONES
        ZoneInfo(c["timezone"])
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", c["birthday"])
        year, month, day = map(int, c["birthday"].split("-"))
        date(year, month, day)  # a real date (Feb 29 only in leap years)
        assert isinstance(c["email_opt_in"], bool)
        assert c["orders_count"] >= 0
        assert (c["lifetime_value"] > 0) == (c["orders_count"] > 0)
        assert bool(c["last_order_at"]) == (c["orders_count"] > 0)


def test_customers_mix_locales_time_zones_and_leap_day_birthdays(customers: list[dict]) -> None:
    assert {c["locale"] for c in customers} == {"ko", "en-US", "en"}
    assert {c["timezone"] for c in customers} == set(TIMEZONES)
    assert customers[28]["birthday"].endswith("-02-29")  # c-0029
    assert sum(c["birthday"].endswith("-02-29") for c in customers) >= 3
    opted_in = sum(c["email_opt_in"] for c in customers)
    assert 0.8 * len(customers) <= opted_in < len(customers)
    assert any(c["orders_count"] > 0 for c in customers)
    assert any(c["orders_count"] == 0 for c in customers)


def test_ids_widen_for_large_counts() -> None:
    assert generate_customers(12_345)[-1]["id"] == "c-12345"
    assert generate_customers(0) == []


def test_events_are_deterministic(customers: list[dict], events: list[dict]) -> None:
    assert list(generate_events(customers, START, 21)) == events
    other = list(generate_events(customers, START, 21, seed=8))
    assert other != events
    assert all(e["id"].startswith("evt-8-") for e in other)


def test_events_follow_the_contract(customers: list[dict], events: list[dict]) -> None:
    known = {c["id"] for c in customers}
    end = START + timedelta(days=21)
    assert len({e["id"] for e in events}) == len(events)
    for e in events:
        assert set(e) == {"id", "type", "customer_id", "occurred_at", "data"}
        assert e["id"].startswith("evt-")
        assert e["type"] in EVENT_TYPES
        assert e["customer_id"] in known
        assert ISO_Z.match(e["occurred_at"])
        assert START <= parse(e["occurred_at"]) < end
        assert isinstance(e["data"], dict)
        json.dumps(e)  # JSON-serialisable as is
        if e["type"] == "cart.updated":
            items = e["data"]["items"]
            assert items
            assert all({"sku", "price"} <= set(item) for item in items)
            total = sum(i["price"] * i.get("quantity", 1) for i in items)
            assert e["data"]["cart_total"] == pytest.approx(total)
        if e["type"] == "order.placed":
            assert {"order_id", "total", "currency"} <= set(e["data"])
            assert e["data"]["total"] > 0
    assert "survey.answered" not in {e["type"] for e in events}


def test_events_are_sorted_by_time(events: list[dict]) -> None:
    times = [parse(e["occurred_at"]) for e in events]
    assert times == sorted(times)


def test_funnel_shape(events: list[dict]) -> None:
    counts = Counter(e["type"] for e in events)
    for kind in ("customer.signed_up", "product.viewed", "cart.updated", "order.placed"):
        assert counts[kind] > 0, kind
    assert counts["order.delivered"] > 0
    assert counts["email.opened"] + counts["email.clicked"] > 0
    assert counts["product.viewed"] > counts["cart.updated"] > counts["order.placed"]
    assert counts["order.delivered"] <= counts["order.placed"]


def test_orders_follow_a_cart_and_are_delivered_two_to_four_days_later(
    events: list[dict],
) -> None:
    placed: dict[str, tuple[str, datetime]] = {}
    carts: set[str] = set()
    for e in events:
        if e["type"] == "cart.updated":
            carts.add(e["customer_id"])
        if e["type"] == "order.placed":
            assert e["customer_id"] in carts
            assert e["data"]["order_id"] not in placed
            placed[e["data"]["order_id"]] = (e["customer_id"], parse(e["occurred_at"]))
        if e["type"] == "order.delivered":
            customer_id, at = placed[e["data"]["order_id"]]
            assert e["customer_id"] == customer_id
            lag = parse(e["occurred_at"]) - at
            assert timedelta(days=2) <= lag <= timedelta(days=4)


def test_signed_up_at_most_once_per_customer(events: list[dict]) -> None:
    signups = Counter(e["customer_id"] for e in events if e["type"] == "customer.signed_up")
    assert signups and max(signups.values()) == 1


def test_events_stream_lazily() -> None:
    many = generate_customers(5_000)
    stream = generate_events(many, START, 365)
    assert isinstance(stream, types.GeneratorType)
    first = list(itertools.islice(stream, 1_000))
    assert len(first) == 1_000
    assert first == list(itertools.islice(generate_events(many, START, 365), 1_000))


def test_more_customers_and_days_give_more_events(customers: list[dict]) -> None:
    short = sum(1 for _ in generate_events(customers, START, 7))
    long = sum(1 for _ in generate_events(customers, START, 28))
    assert 0 < short < long
    assert list(generate_events(customers, START, 0)) == []
    assert list(generate_events([], START, 7)) == []


def test_naive_start_is_taken_as_utc(customers: list[dict]) -> None:
    naive = list(itertools.islice(generate_events(customers, START.replace(tzinfo=None), 3), 50))
    assert naive == list(itertools.islice(generate_events(customers, START, 3), 50))


def test_write_customers_csv_round_trips(tmp_path: Path, customers: list[dict]) -> None:
    path = tmp_path / "customers.csv"
    assert write_customers_csv(path, customers) == len(customers)
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(customers)
    assert list(rows[0])[:8] == list(CUSTOMER_COLUMNS[:8])
    assert rows[0]["id"] == "c-0001"
    assert {r["email_opt_in"] for r in rows} <= {"true", "false"}
    assert [r["first_name"] for r in rows] == [c["first_name"] for c in customers]


def test_write_customers_csv_keeps_unknown_columns(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    write_customers_csv(path, [{"id": "c-1", "email": None, "vip": True}])
    header, row = path.read_text(encoding="utf-8").splitlines()
    assert header == "id,email,vip"
    assert row == "c-1,,true"


def test_write_jsonl_streams_rows(tmp_path: Path, customers: list[dict]) -> None:
    path = tmp_path / "events.jsonl"
    stream = itertools.islice(generate_events(customers, START, 7), 200)
    assert write_jsonl(path, stream) == 200
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 200
    assert json.loads(lines[0])["id"].startswith("evt-")
    assert write_jsonl(tmp_path / "empty.jsonl", []) == 0
