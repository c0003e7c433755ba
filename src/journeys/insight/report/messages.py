"""Messages per template, overall and per journey: counts by status, email engagement and
the rates over delivered emails."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection

from journeys.insight.stats import ratio
from journeys.store import kpis as q

MESSAGE_COUNTS = ("sent", "pending", "failed", "suppressed")
EVENT_KEYS = {
    "email.delivered": "delivered",
    "email.opened": "opened",
    "email.clicked": "clicked",
    "email.bounced": "bounced",
    "email.unsubscribed": "unsubscribed",
}


def _new_counts() -> dict[str, Any]:
    counts: dict[str, Any] = dict.fromkeys(MESSAGE_COUNTS, 0)
    counts.update(dict.fromkeys(EVENT_KEYS.values(), 0))
    counts["emails"] = 0
    return counts


def _rates(c: dict[str, Any]) -> dict[str, Any]:
    """Open, click and unsubscribe rates over delivered emails (sent minus bounced)."""
    reached = max(c["emails"] - c["bounced"], 0)
    c["open_rate"] = ratio(c["opened"], reached)
    c["click_rate"] = ratio(c["clicked"], reached)
    c["unsubscribe_rate"] = ratio(c["unsubscribed"], reached)
    c["bounce_rate"] = ratio(c["bounced"], c["emails"])
    return c


def message_figures(
    conn: Connection,
    scope: q.Scope,
    journeys: dict[str, dict[str, Any]],
    message_facts: Iterable[Any],
) -> dict[str, Any]:
    """Counts and rates per template (``by_template``) and over all (``_total``); fills
    each journey's own ``messages`` and rates in ``journeys``."""
    by_template: dict[str, dict[str, Any]] = defaultdict(_new_counts)
    by_journey: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(_new_counts))
    total = _new_counts()

    def add(journey: str, template: str, key: str, n: int) -> None:
        for counts in (by_template[template], by_journey[journey][template], total):
            counts[key] = counts.get(key, 0) + n

    for row in message_facts:
        add(row.journey, row.template, row.status, row.count)
        if row.channel == "email" and row.status == "sent":
            add(row.journey, row.template, "emails", row.count)
    for row in q.message_engagement(conn, scope):
        add(row.journey, row.template, EVENT_KEYS[row.type], row.count)
    for name, templates in by_journey.items():
        j = journeys.get(name)
        if j is None:
            continue
        j["messages"] = {t: _rates(c) for t, c in sorted(templates.items())}
        summed = _new_counts()
        for c in templates.values():
            for key in summed:
                summed[key] += c[key]
        rates = _rates(summed)
        j.update({k: rates[k] for k in ("open_rate", "click_rate", "unsubscribe_rate")})
    return {
        "by_template": {t: _rates(c) for t, c in sorted(by_template.items())},
        "_total": _rates(total),
    }
