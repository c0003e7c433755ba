"""Customers: lifetime value, retention and churn, orders, the lifecycle stages now and the
stage changes of the period."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection

from journeys.insight.period import Unit, roll_up
from journeys.insight.stats import predicted_clv, ratio
from journeys.plan import STAGES
from journeys.store import kpis as q


def clv_figures(conn: Connection, scope: q.Scope, order_days: Iterable[Any]) -> dict[str, Any]:
    """Lifetime value (historic, predicted, by stage), retention and churn against the
    period before, and the orders of the period."""
    customers = ltv = 0.0
    by_stage: dict[str, float | None] = {}
    for row in q.lifetime_values(conn):
        customers += row.customers
        ltv += row.ltv_sum or 0.0
        by_stage[row.stage or "none"] = ratio(row.ltv_sum or 0.0, row.customers, 2)
    retention = q.retention_counts(conn, scope)
    retention_rate = ratio(retention.retained, retention.previous)
    churn_rate = round(1 - retention_rate, 4) if retention_rate is not None else None
    n_orders = revenue = 0.0
    for row in order_days:
        n_orders += row.orders
        revenue += row.revenue or 0.0
    order = {s: by_stage[s] for s in (*STAGES, *sorted(by_stage)) if s in by_stage}
    return {
        "clv": {
            "historic": ratio(ltv, customers, 2),
            "predicted": predicted_clv(int(n_orders), revenue, retention.current, churn_rate),
            "by_stage": order,
        },
        "retention_rate": retention_rate,
        "churn_rate": churn_rate,
        "orders": int(n_orders),
        "revenue": round(revenue, 2),
        "average_order_value": ratio(revenue, n_orders, 2),
        "customers_retained": retention.retained,
        "customers_ordered_before": retention.previous,
    }


def stage_counts(conn: Connection) -> dict[str, int]:
    """Customers per lifecycle stage now, in lifecycle order, other stages after."""
    counts = {row.stage or "none": row.count for row in q.stage_counts(conn)}
    ordered = [s for s in STAGES if s in counts] + sorted(set(counts) - set(STAGES))
    return {s: counts[s] for s in ordered}


def stage_changes(conn: Connection, scope: q.Scope, unit: Unit) -> dict[str, Any]:
    """Stage changes of the period per bucket, and their totals from → to."""
    per_bucket: Counter[tuple[str, str, str]] = Counter()
    totals: Counter[str] = Counter()
    for row in q.stage_transitions(conn, scope):
        start = row.from_stage or "none"
        per_bucket[(roll_up(row.day, unit), start, row.to_stage)] += row.count
        totals[f"{start} → {row.to_stage}"] += row.count
    series = [
        {"bucket": b, "from": a, "to": t, "count": n} for (b, a, t), n in sorted(per_bucket.items())
    ]
    return {"bucket": unit, "series": series, "totals": dict(totals.most_common())}
