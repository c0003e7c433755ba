"""Deterministic sample customers and CRM events for the demo, the tests and the benchmark.

Everything here is driven by a seeded :class:`random.Random`, so the same arguments always give
the same data. Customers follow docs/customers.md and events docs/events.md.

:func:`generate_events` streams: it keeps one pending entry per customer plus the few follow-up
events already decided (a cart's order, an order's delivery) in a heap, never the whole stream,
so ``itertools.islice(generate_events(generate_customers(200_000), start, 30), 1_000_000)``
runs in constant memory beyond the customer list.
"""

from __future__ import annotations

import csv
import heapq
import itertools
import json
import random
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

FIRST_NAMES_EN = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Oliver", "Sophia", "Elijah", "Isabella", "James",
    "Mia", "Lucas", "Amelia", "Henry", "Harper", "Jack", "Grace", "Leo", "Chloe", "Ethan",
)  # fmt: skip
LAST_NAMES_EN = (
    "Smith", "Johnson", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Walker", "Wright",
    "Clarke", "Harris", "Lewis", "Young", "King", "Green", "Baker", "Hall", "Moore",
)  # fmt: skip
FIRST_NAMES_KO = (
    "민준", "서연", "도윤", "지우", "서준", "하은", "예준", "하윤", "지호", "수아",
    "Mina", "Jiwoo", "Minho", "Yuna", "Seojun", "Haeun",
)  # fmt: skip
ROMANIZED = {
    "민준": "minjun", "서연": "seoyeon", "도윤": "doyun", "지우": "jiwoo", "서준": "seojun",
    "하은": "haeun", "예준": "yejun", "하윤": "hayun", "지호": "jiho", "수아": "sua",
}  # fmt: skip
LAST_NAMES_KO = ("김", "이", "박", "최", "정", "강", "조", "윤", "Kim", "Lee", "Park", "Choi")

LOCALES: tuple[tuple[str, int], ...] = (("ko", 35), ("en-US", 40), ("en", 25))
"""Locales and their weights (percent)."""

TIMEZONES_BY_LOCALE: dict[str, tuple[str, ...]] = {
    "ko": ("Asia/Seoul", "Asia/Seoul", "Asia/Seoul", "Asia/Seoul", "America/Los_Angeles"),
    "en-US": ("America/New_York", "America/New_York", "America/Los_Angeles", "UTC"),
    "en": ("Europe/London", "Europe/London", "Australia/Sydney", "UTC"),
}
TIMEZONES: tuple[str, ...] = (
    "Asia/Seoul",
    "America/New_York",
    "Europe/London",
    "America/Los_Angeles",
    "UTC",
    "Australia/Sydney",
)

SIGNUP_SOURCES: tuple[str, ...] = ("organic", "search_ads", "social", "referral", "newsletter")

CATALOGUE: tuple[dict[str, Any], ...] = (
    {"sku": "TS-001", "name": "Organic cotton T-shirt", "category": "apparel", "price": 24.0},
    {"sku": "SH-014", "name": "Linen shirt", "category": "apparel", "price": 59.9},
    {"sku": "JN-203", "name": "Straight-leg jeans", "category": "apparel", "price": 79.0},
    {"sku": "SN-310", "name": "Canvas sneakers", "category": "shoes", "price": 65.0},
    {"sku": "BT-411", "name": "Leather ankle boots", "category": "shoes", "price": 149.0},
    {"sku": "BG-502", "name": "Everyday tote bag", "category": "bags", "price": 39.5},
    {"sku": "BG-517", "name": "Travel backpack", "category": "bags", "price": 119.0},
    {"sku": "MG-601", "name": "Stoneware mug", "category": "home", "price": 14.5},
    {"sku": "CN-640", "name": "Soy candle", "category": "home", "price": 19.0},
    {"sku": "BL-655", "name": "Wool throw blanket", "category": "home", "price": 89.0},
    {"sku": "SC-702", "name": "Silk scarf", "category": "accessories", "price": 45.0},
    {"sku": "WT-760", "name": "Minimal wrist watch", "category": "accessories", "price": 199.0},
    {"sku": "SK-801", "name": "Merino socks (3 pairs)", "category": "apparel", "price": 18.0},
    {"sku": "SG-850", "name": "Sunglasses", "category": "accessories", "price": 95.0},
)
CURRENCY = "USD"

EVENT_TYPES: frozenset[str] = frozenset(
    {
        "customer.signed_up",
        "product.viewed",
        "cart.updated",
        "order.placed",
        "order.delivered",
        "email.opened",
        "email.clicked",
    }
)
"""Every event type :func:`generate_events` produces (never ``survey.answered``)."""

CUSTOMER_COLUMNS: tuple[str, ...] = (
    "id",
    "email",
    "first_name",
    "last_name",
    "locale",
    "timezone",
    "birthday",
    "email_opt_in",
    "signup_source",
    "favorite_category",
    "orders_count",
    "lifetime_value",
    "last_order_at",
)
"""CSV column order of :func:`write_customers_csv` (the first eight: docs/customers.md)."""

# Funnel probabilities of one shopping session.
P_CART = 0.35  # a session with views puts something in the cart
P_ORDER = 0.40  # a cart is bought
P_ORDER_SOON = 0.6  # … within the hour (the rest: hours to two days later, after reminders)
P_EMAIL_OPEN = 0.10  # a session starts from an email that was opened
P_EMAIL_CLICK = 0.45  # … and clicked
P_SIGNUP = 0.30  # a customer signs up during the generated window


def generate_customers(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` customers ``c-0001`` … with profile fields (docs/customers.md) and a few attributes.

    Locales mix ``ko``, ``en-US`` and ``en``; time zones follow the locale (Seoul, New York,
    London, Los Angeles, Sydney, UTC); about one in 100 was born on Feb 29 (``c-0029`` is);
    about 9 in 10 opted in to email. Extra columns: ``signup_source`` and
    ``favorite_category`` (attributes) and starting ``orders_count``/``lifetime_value``/
    ``last_order_at`` for customers with history, so that win-back and VIP branches have
    someone to act on.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = random.Random(f"customers:{seed}")
    width = max(4, len(str(n)))
    locales = [loc for loc, _ in LOCALES]
    weights = [w for _, w in LOCALES]
    customers: list[dict[str, Any]] = []
    for i in range(1, n + 1):
        locale = rng.choices(locales, weights)[0]
        if locale == "ko":
            first, last = rng.choice(FIRST_NAMES_KO), rng.choice(LAST_NAMES_KO)
        else:
            first, last = rng.choice(FIRST_NAMES_EN), rng.choice(LAST_NAMES_EN)
        cid = f"c-{i:0{width}d}"
        orders = rng.choices((0, 1, 2, 3, 5, 8), (55, 18, 10, 8, 6, 3))[0]
        ltv = round(sum(rng.uniform(20, 160) for _ in range(orders)), 2) if orders else 0.0
        last_order = (
            _iso(datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(400 * 86400)))
            if orders
            else ""
        )
        customers.append(
            {
                "id": cid,
                "email": f"{_ascii_slug(first, i)}.{cid[2:]}@example.com",
                "first_name": first,
                "last_name": last,
                "locale": locale,
                "timezone": rng.choice(TIMEZONES_BY_LOCALE[locale]),
                "birthday": _birthday(rng, i),
                "email_opt_in": rng.random() < 0.9,
                "signup_source": rng.choice(SIGNUP_SOURCES),
                "favorite_category": rng.choice(
                    ("apparel", "shoes", "bags", "home", "accessories")
                ),
                "orders_count": orders,
                "lifetime_value": ltv,
                "last_order_at": last_order,
            }
        )
    return customers


def generate_events(
    customers: list[dict[str, Any]],
    start: datetime,
    days: int,
    seed: int = 7,
    *,
    sessions_per_day: float = 0.2,
) -> Iterator[dict[str, Any]]:
    """Stream a realistic funnel of CRM events in ``[start, start + days)``, sorted by time.

    Per customer: an optional ``customer.signed_up``; shopping sessions at random times
    (about ``sessions_per_day`` each) of 1-4 ``product.viewed``, sometimes a ``cart.updated``
    (``items`` and ``cart_total``), part of which become ``order.placed`` (``order_id``,
    ``total``, ``currency``, ``items``) soon or up to two days later, each followed 2-4 days
    later by ``order.delivered``; now and then an ``email.opened``/``email.clicked``.
    Survey answers are never generated: journeys ask for them.

    Ids are ``evt-<seed>-<n>``, unique per seed; ``occurred_at`` is ISO 8601 UTC with ``Z``.
    Events are produced lazily, so the caller can stop at any count.
    """
    if days < 0:
        raise ValueError("days must be >= 0")
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    start = start.astimezone(UTC).replace(microsecond=0)
    t0 = int(start.timestamp())
    rng = random.Random(f"events:{seed}")
    rate = max(sessions_per_day, 1e-9) / 86400  # sessions per second per customer
    timeline = _Timeline(t0 + days * 86400)
    _plan_first_visits(rng, timeline.push, len(customers), t0, days, rate)
    counter = 0
    orders = itertools.count(1)
    while timeline:
        when, kind, index, payload = timeline.pop()
        if kind == "session":
            _plan_session(rng, timeline.push, when, index, orders)
            timeline.push(when + max(600, int(rng.expovariate(rate))), "session", index)
            continue
        assert payload is not None
        counter += 1
        event = {
            "id": f"evt-{seed}-{counter:09d}",
            "type": payload["type"],
            "customer_id": customers[index]["id"],
            "occurred_at": _iso(datetime.fromtimestamp(when, UTC)),
            "data": payload["data"],
        }
        if event["type"] == "order.placed":
            _plan_delivery(rng, timeline.push, when, index, payload["data"]["order_id"])
        yield event


def write_customers_csv(path: str | Path, customers: Iterable[dict[str, Any]]) -> int:
    """Write customers as CSV (:data:`CUSTOMER_COLUMNS` first, any others after); return the count.

    Booleans are written ``true``/``false`` and missing values as empty cells.
    """
    rows = list(customers)
    extra = sorted({k for row in rows for k in row} - set(CUSTOMER_COLUMNS))
    columns = [c for c in CUSTOMER_COLUMNS if any(c in row for row in rows)] + extra
    if not rows:
        columns = list(CUSTOMER_COLUMNS)
    with Path(path).open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: _cell(row.get(c)) for c in columns})
    return len(rows)


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write one compact JSON object per line (streams ``rows``); return the count."""
    count = 0
    with Path(path).open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
            fh.write("\n")
            count += 1
    return count


# --------------------------------------------------------------------------- helpers


Push = Callable[[int, str, int, dict[str, Any] | None], None]


class _Timeline:
    """The entries still to come before ``t_end``, earliest first: kind ``session`` plans a
    shopping session of a customer, kind ``event`` is a ready event (its payload)."""

    def __init__(self, t_end: int) -> None:
        self.t_end = t_end
        # (time, seq, kind, customer index, payload); `seq` keeps the order total and
        # deterministic.
        self._heap: list[tuple[int, int, str, int, dict[str, Any] | None]] = []
        self._seq = 0

    def __bool__(self) -> bool:
        return bool(self._heap)

    def push(self, when: int, kind: str, index: int, payload: dict[str, Any] | None = None) -> None:
        """Queue an entry; one at or after ``t_end`` is dropped."""
        if when < self.t_end:
            heapq.heappush(self._heap, (when, self._seq, kind, index, payload))
            self._seq += 1

    def pop(self) -> tuple[int, str, int, dict[str, Any] | None]:
        """The earliest entry, as (time, kind, customer index, payload)."""
        when, _, kind, index, payload = heapq.heappop(self._heap)
        return when, kind, index, payload


def _plan_first_visits(
    rng: random.Random, push: Push, count: int, t0: int, days: int, rate: float
) -> None:
    """Queue each customer's sign-up (for some) and first shopping session."""
    for index in range(count):
        if rng.random() < P_SIGNUP:
            signed_up = t0 + rng.randrange(max(days * 86400, 1))
            push(signed_up, "event", index, {"type": "customer.signed_up", "data": _signup(rng)})
            first = signed_up + rng.randrange(60, 3 * 3600)
        else:
            first = t0 + int(rng.expovariate(rate))
        push(first, "session", index, None)


def _plan_delivery(rng: random.Random, push: Push, placed: int, index: int, order_id: str) -> None:
    """Queue the delivery of an order placed at ``placed``, two to four days later."""
    delivered = placed + rng.randrange(2 * 86400, 4 * 86400 + 1)
    push(delivered, "event", index, {"type": "order.delivered", "data": {"order_id": order_id}})


def _plan_session(
    rng: random.Random, push: Push, when: int, index: int, orders: Iterator[int]
) -> None:
    """Decide the events of one shopping session starting at ``when`` and queue them."""
    t = when
    if rng.random() < P_EMAIL_OPEN:
        push(t, "event", index, {"type": "email.opened", "data": {"campaign": "newsletter"}})
        if rng.random() < P_EMAIL_CLICK:
            t += rng.randrange(5, 120)
            push(t, "event", index, {"type": "email.clicked", "data": {"campaign": "newsletter"}})
        t += rng.randrange(5, 60)
    viewed: list[dict[str, Any]] = []
    for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
        product = rng.choice(CATALOGUE)
        viewed.append(product)
        push(t, "event", index, {"type": "product.viewed", "data": {**product}})
        t += rng.randrange(20, 300)
    if rng.random() >= P_CART:
        return
    items: list[dict[str, Any]] = []
    for chosen in {p["sku"]: p for p in viewed}.values():
        if items and rng.random() < 0.4:
            continue  # looked at it, did not take it
        quantity = rng.choice((1, 1, 1, 2))
        items.append(
            {
                "sku": chosen["sku"],
                "name": chosen["name"],
                "price": chosen["price"],
                "quantity": quantity,
            }
        )
    total = round(sum(i["price"] * i["quantity"] for i in items), 2)
    cart = {"items": items, "cart_total": total, "currency": CURRENCY}
    push(t, "event", index, {"type": "cart.updated", "data": cart})
    if rng.random() >= P_ORDER:
        return
    if rng.random() < P_ORDER_SOON:
        t += rng.randrange(60, 3600)
    else:
        t += rng.randrange(3 * 3600, 2 * 86400)
    order = {
        "order_id": f"o-{next(orders):07d}",
        "total": total,
        "currency": CURRENCY,
        "items": items,
    }
    push(t, "event", index, {"type": "order.placed", "data": order})


def _signup(rng: random.Random) -> dict[str, Any]:
    return {"source": rng.choice(SIGNUP_SOURCES)}


def _birthday(rng: random.Random, i: int) -> str:
    year = rng.randrange(1960, 2007)
    if i % 100 == 29 or rng.random() < 1 / 500:
        return f"{year - year % 4}-02-29"  # born on a leap day (every 100th customer or so)
    day = date(year, 1, 1) + timedelta(days=rng.randrange(365))
    return day.isoformat()


def _ascii_slug(name: str, i: int) -> str:
    name = ROMANIZED.get(name, name)
    slug = "".join(ch for ch in name.lower() if ch.isascii() and ch.isalnum())
    return slug or f"customer{i}"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
