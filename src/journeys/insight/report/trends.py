"""The report's series over time: enrollments, emails, orders and NPS per bucket."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection

from journeys.insight.period import Unit, roll_up
from journeys.insight.report.messages import EVENT_KEYS
from journeys.insight.report.surveys import nps_series
from journeys.store import kpis as q


def trend_figures(
    conn: Connection,
    scope: q.Scope,
    unit: Unit,
    facts: Iterable[Any],
    message_facts: Iterable[Any],
    order_days: Iterable[Any],
    nps_series_counts: Mapping[str, Counter[str]],
) -> dict[str, list[dict[str, Any]]]:
    """Enrollments per bucket and journey, emails per bucket and kind, orders and NPS
    per bucket."""
    enrollments: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in facts:
        tally = enrollments[(roll_up(row.day, unit), row.journey)]
        tally[0] += row.entered
        tally[1] += row.converted
    messages: Counter[tuple[str, str]] = Counter()
    for row in message_facts:
        if row.channel == "email" and row.status == "sent":
            messages[(roll_up(row.day, unit), "sent")] += row.count
    for row in q.email_event_days(conn, scope):
        messages[(roll_up(row.day, unit), EVENT_KEYS[row.type])] += row.count
    orders: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for row in order_days:
        tally_o = orders[roll_up(row.day, unit)]
        tally_o[0] += row.orders
        tally_o[1] += row.revenue or 0.0
    return {
        "enrollments": [
            {"bucket": b, "journey": j, "entered": n, "converted": c}
            for (b, j), (n, c) in sorted(enrollments.items())
        ],
        "messages": [
            {"bucket": b, "kind": k, "count": n} for (b, k), n in sorted(messages.items())
        ],
        "orders": [
            {"bucket": b, "orders": int(n), "revenue": round(r, 2)}
            for b, (n, r) in sorted(orders.items())
        ],
        "nps": nps_series(nps_series_counts),
    }
