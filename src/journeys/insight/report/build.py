"""Assembles the report from its sections, and reads back the stored plans."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from journeys.insight.period import make_period
from journeys.insight.report.customers import clv_figures, stage_changes, stage_counts
from journeys.insight.report.enrollments import journey_figures
from journeys.insight.report.messages import message_figures
from journeys.insight.report.surveys import survey_figures
from journeys.insight.report.trends import trend_figures
from journeys.insight.report.voice import voice_figures
from journeys.plan import Plan, SplitStep
from journeys.store import kpis as q


def build_report(
    db: Engine | Connection,
    plans: Mapping[str, Plan] | None = None,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    journey: str | None = None,
    now: datetime,
) -> dict[str, Any]:
    """Every figure for ``start <= t < end`` (default: all recorded activity), for one
    ``journey`` or all. ``now`` places the live counts (who is waiting where)."""
    if isinstance(db, Engine):
        with q.reading(db) as conn:
            return build_report(conn, plans, start=start, end=end, journey=journey, now=now)
    conn = db
    plans = dict(plans or {})
    first, last = q.activity_bounds(conn) if start is None or end is None else (None, None)
    period = make_period(start, end, first=first, last=last, now=now)
    scope = period.scope(journey)
    unit = period.unit

    splits = {n for n, p in plans.items() if any(isinstance(s, SplitStep) for s in p.steps)}
    facts = q.enrollment_facts(conn, scope, splits)
    journeys = journey_figures(conn, scope, plans, now, facts)
    message_facts = q.message_facts(conn, scope)
    messages = message_figures(conn, scope, journeys, message_facts)
    surveys = survey_figures(conn, scope, journeys, unit)
    orders = q.order_days(conn, scope)
    clv = clv_figures(conn, scope, orders)
    total = messages.pop("_total")
    return {
        "period": period.as_dict(),
        "journey": journey,
        "kpis": {
            "nps": surveys["nps"],
            "csat": surveys["csat"],
            "clv": clv["clv"],
            "retention_rate": clv["retention_rate"],
            "churn_rate": clv["churn_rate"],
            "open_rate": total["open_rate"],
            "click_rate": total["click_rate"],
            "unsubscribe_rate": total["unsubscribe_rate"],
            "answers": surveys["answers"],
            "orders": clv["orders"],
            "revenue": clv["revenue"],
            "average_order_value": clv["average_order_value"],
            "customers_retained": clv["customers_retained"],
            "customers_ordered_before": clv["customers_ordered_before"],
        },
        "journeys": journeys,
        "stages": stage_counts(conn),
        "stage_transitions": stage_changes(conn, scope, unit),
        "messages": messages,
        "voc": voice_figures(conn, scope),
        "trends": trend_figures(conn, scope, unit, facts, message_facts, orders, surveys["series"]),
    }


def stored_plans(db: Engine | Connection) -> dict[str, Plan]:
    """The newest plan of every journey the store has run (what the dashboard draws when it
    has no project at hand); plans it cannot read back are left out."""
    if isinstance(db, Engine):
        with q.reading(db) as conn:
            return stored_plans(conn)
    plans: dict[str, Plan] = {}
    for name, raw in q.latest_plans(db).items():
        try:
            plans[name] = Plan.from_dict(raw)
        except (KeyError, TypeError, ValueError):
            continue  # written by another version of journeys
    return plans
