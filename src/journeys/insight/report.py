"""The KPI report: every figure of ``journeys report`` and the dashboard, as plain data.

:func:`build_report` asks the store (:mod:`journeys.store.kpis`) for grouped counts and turns
them into the JSON contract of docs/metrics.md with the formulas of :mod:`.stats`. The plans
only name and order things (steps, split variants, where a waiting customer is).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from journeys.clock import iso
from journeys.insight.period import Unit, make_period, roll_up
from journeys.insight.stats import csat, nps, predicted_clv, ratio, two_proportion_test
from journeys.plan import STAGES, Plan, SplitStep, WaitStep
from journeys.store import kpis as q

CONTROL = "control"
"""The variant name that marks a split's hold-out group (its baseline)."""

MESSAGE_COUNTS = ("sent", "pending", "failed", "suppressed")
EVENT_KEYS = {
    "email.delivered": "delivered",
    "email.opened": "opened",
    "email.clicked": "clicked",
    "email.bounced": "bounced",
    "email.unsubscribed": "unsubscribed",
}
LATEST_COMMENTS = 20
TOP_KEYWORDS = 10


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
    journeys = _journeys(conn, scope, plans, now, facts)
    message_facts = q.message_facts(conn, scope)
    messages = _messages(conn, scope, journeys, message_facts)
    surveys = _surveys(conn, scope, journeys, unit)
    orders = q.order_days(conn, scope)
    clv = _clv(conn, scope, orders)
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
        "stages": _stages(conn),
        "stage_transitions": _transitions(conn, scope, unit),
        "messages": messages,
        "voc": _voc(conn, scope),
        "trends": _trends(conn, scope, unit, facts, message_facts, orders, surveys["series"]),
    }


# --------------------------------------------------------------------------- journeys


def _new_journey(name: str, plan: Plan | None) -> dict[str, Any]:
    return {
        "name": plan.name if plan else name,
        "goal": plan.goal.event if plan and plan.goal else None,
        "entered": 0,
        "active": 0,
        "completed": 0,
        "exited": {},
        "converted": 0,
        "conversion_rate": None,
        "steps": {s.id: _new_step() for s in plan.steps} if plan else {},
        "variants": {},
        "nps": None,
        "csat": None,
        "answers": {},
        "nps_trend": [],
        "messages": {},
        "open_rate": None,
        "click_rate": None,
        "unsubscribe_rate": None,
    }


def _new_step() -> dict[str, Any]:
    return {"reached": 0, "now": 0, "waiting": 0, "exited": 0}


def _journeys(
    conn: Connection,
    scope: q.Scope,
    plans: dict[str, Plan],
    now: datetime,
    facts: Iterable[Any],
) -> dict[str, dict[str, Any]]:
    wanted = {scope.journey: plans.get(scope.journey)} if scope.journey else plans
    out: dict[str, dict[str, Any]] = {n: _new_journey(n, p) for n, p in wanted.items()}
    tallies: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])

    def journey(name: str) -> dict[str, Any]:
        return out.setdefault(name, _new_journey(name, plans.get(name)))

    def step(j: dict[str, Any], step_id: str) -> dict[str, Any]:
        return j["steps"].setdefault(step_id, _new_step())

    for row in facts:
        j = journey(row.journey)
        j["entered"] += row.entered
        j["converted"] += row.converted
        if row.status == "exited":
            reason = row.exit_reason or "unknown"
            j["exited"][reason] = j["exited"].get(reason, 0) + row.entered
            if row.step and (row.step in j["steps"] or not plans.get(row.journey)):
                step(j, row.step)["exited"] += row.entered
        elif row.status in ("active", "completed"):
            j[row.status] += row.entered
        if isinstance(row.variants, dict):
            for split, variant in row.variants.items():
                tally = tallies[(row.journey, str(split), str(variant))]
                tally[0] += row.entered
                tally[1] += row.converted
    for row in q.steps_reached(conn, scope):
        step(journey(row.journey), row.step)["reached"] = row.reached
    for row in q.active_positions(conn, now, scope.journey):
        where, waiting = position(plans.get(row.journey), row.step, row.waiting_step, row.sleeping)
        s = step(journey(row.journey), where)
        s["now"] += row.count
        if waiting:
            s["waiting"] += row.count
    for name, j in out.items():
        j["conversion_rate"] = ratio(j["converted"], j["entered"]) if j["goal"] else None
        plan = plans.get(name)
        if plan:
            j["variants"] = _variants(plan, tallies)
    return dict(sorted(out.items()))


def position(
    plan: Plan | None, step: str, waiting_step: str | None, sleeping: int
) -> tuple[str, bool]:
    """Where an active enrollment is, for the diagram: (step, waiting for an event or a time).

    The store keeps the step that runs *next*: a ``wait_for``/``survey`` names itself in
    ``vars.waiting_step``; a sleeping enrollment whose next step follows a ``wait`` is in that
    wait; otherwise it is due (or deferred by quiet hours) at ``step`` itself.
    """
    if waiting_step:
        return waiting_step, True
    if sleeping and plan is not None:
        for candidate in plan.steps:
            if isinstance(candidate, WaitStep) and candidate.next == step:
                return candidate.id, True
    return step, bool(sleeping)


def _variants(
    plan: Plan, tallies: Mapping[tuple[str, str, str], list[int]]
) -> dict[str, dict[str, Any]]:
    """Per split step: each variant's entered/converted/rate, and against the baseline (the
    ``control`` variant, else the split's first variant) the uplift and a z-test."""
    out: dict[str, dict[str, Any]] = {}
    for split in plan.steps:
        if not isinstance(split, SplitStep):
            continue
        counts = {v.variant: (0, 0) for v in split.variants}
        for (journey, step_id, variant), (entered, converted) in tallies.items():
            if journey == plan.journey and step_id == split.id:
                counts[variant] = (entered, converted)
        names = list(counts)
        baseline = CONTROL if CONTROL in counts else names[0]
        base_entered, base_converted = counts[baseline]
        variants: dict[str, Any] = {}
        for name in names:
            entered, converted = counts[name]
            v: dict[str, Any] = {
                "entered": entered,
                "converted": converted,
                "conversion_rate": ratio(converted, entered),
            }
            if name == baseline:
                v["baseline"] = True
            else:
                test = two_proportion_test(converted, entered, base_converted, base_entered)
                v.update(
                    uplift=test.uplift,
                    relative_uplift=test.relative_uplift,
                    z=test.z,
                    p_value=test.p_value,
                    significant=test.significant,
                )
            variants[name] = v
        winner = _winner(variants, baseline)
        out[split.id] = {"baseline": baseline, "winner": winner, "variants": variants}
    return out


def _winner(variants: dict[str, Any], baseline: str) -> str | None:
    """The variant that beats the baseline significantly with the highest rate, if any."""
    better = [
        (v["conversion_rate"] or 0.0, name)
        for name, v in variants.items()
        if name != baseline and v.get("significant") and (v.get("uplift") or 0) > 0
    ]
    return max(better)[1] if better else None


# --------------------------------------------------------------------------- messages


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


def _messages(
    conn: Connection,
    scope: q.Scope,
    journeys: dict[str, dict[str, Any]],
    message_facts: Iterable[Any],
) -> dict[str, Any]:
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


# --------------------------------------------------------------------------- surveys


def _surveys(
    conn: Connection, scope: q.Scope, journeys: dict[str, dict[str, Any]], unit: Unit
) -> dict[str, Any]:
    overall: dict[str, Counter[str]] = {"nps": Counter(), "csat": Counter()}
    per_journey: dict[str, dict[str, Counter[str]]] = defaultdict(
        lambda: {"nps": Counter(), "csat": Counter()}
    )
    series: dict[str, Counter[str]] = defaultdict(Counter)
    by_journey: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for row in q.survey_counts(conn, scope):
        kind = row.kind if row.kind in overall else "nps"
        overall[kind][row.category] += row.count
        per_journey[row.journey][kind][row.category] += row.count
        if kind == "nps":
            b = roll_up(row.day, unit)
            series[b][row.category] += row.count
            by_journey[row.journey][b][row.category] += row.count
    for name, j in journeys.items():
        kinds = per_journey.get(name)
        if kinds:
            j["nps"], j["csat"] = nps(kinds["nps"]), csat(kinds["csat"])
            j["answers"] = {k: dict(c) for k, c in kinds.items() if c}
        j["nps_trend"] = nps_series(by_journey.get(name, {}))
    return {
        "nps": nps(overall["nps"]),
        "csat": csat(overall["csat"]),
        "answers": {k: sum(c.values()) for k, c in overall.items()},
        "series": series,
    }


# --------------------------------------------------------------------------- customers


def _clv(conn: Connection, scope: q.Scope, order_days: Iterable[Any]) -> dict[str, Any]:
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


def _stages(conn: Connection) -> dict[str, int]:
    counts = {row.stage or "none": row.count for row in q.stage_counts(conn)}
    ordered = [s for s in STAGES if s in counts] + sorted(set(counts) - set(STAGES))
    return {s: counts[s] for s in ordered}


def _transitions(conn: Connection, scope: q.Scope, unit: Unit) -> dict[str, Any]:
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


# --------------------------------------------------------------------------- voice


def _voc(conn: Connection, scope: q.Scope) -> dict[str, Any]:
    """Sentiment and top keywords per answer category, and the latest comments."""
    rows = q.survey_comments(conn, scope)
    by_category: dict[str, dict[str, Any]] = {}
    keywords: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        c = by_category.setdefault(
            row.category,
            {"comments": 0, "sentiment": {"negative": 0, "neutral": 0, "positive": 0}},
        )
        c["comments"] += 1
        if row.sentiment in c["sentiment"]:
            c["sentiment"][row.sentiment] += 1
        keywords[row.category].update(_keyword_list(row.keywords))
    for category, c in by_category.items():
        c["keywords"] = [
            {"keyword": k, "count": n} for k, n in keywords[category].most_common(TOP_KEYWORDS)
        ]
    return {
        "comments": len(rows),
        "by_category": dict(sorted(by_category.items())),
        "latest": [_comment(row) for row in rows[:LATEST_COMMENTS]],
    }


def _keyword_list(value: Any) -> Iterable[str]:
    return [str(k) for k in value] if isinstance(value, list) else []


def _comment(row: Any) -> dict[str, Any]:
    return {
        "customer_id": row.customer_id,
        "journey": row.journey,
        "step": row.step,
        "kind": row.kind,
        "score": row.score,
        "category": row.category,
        "comment": row.comment,
        "sentiment": row.sentiment,
        "sentiment_score": row.sentiment_score,
        "keywords": list(_keyword_list(row.keywords)),
        "answered_at": iso(row.answered_at),
    }


# --------------------------------------------------------------------------- trends


def _trends(
    conn: Connection,
    scope: q.Scope,
    unit: Unit,
    facts: Iterable[Any],
    message_facts: Iterable[Any],
    order_days: Iterable[Any],
    nps_series_counts: Mapping[str, Counter[str]],
) -> dict[str, list[dict[str, Any]]]:
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


def nps_series(counts: Mapping[str, Counter[str]]) -> list[dict[str, Any]]:
    """Per bucket: answers, NPS and the promoter/passive/detractor shares."""
    out = []
    for b, cats in sorted(counts.items()):
        total = sum(cats.values())
        out.append(
            {
                "bucket": b,
                "answers": total,
                "nps": nps(cats),
                **{c: ratio(cats.get(c, 0), total) for c in ("promoter", "passive", "detractor")},
            }
        )
    return out


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
