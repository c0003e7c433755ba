"""What each page shows, built from report data (pure): KPI cards with their trend and change,
journey rows, chart specs. The dashboard and the HTML report render these with the same
templates."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from journeys.insight import charts
from journeys.insight.diagram import journey_svg
from journeys.insight.stats import ratio
from journeys.plan import Plan


@dataclass
class Card:
    """One KPI: its value as text, the change against the period before, a sparkline."""

    label: str
    value: str
    hint: str
    change: str = ""
    good: bool | None = None  # the change is good news (green), bad (red), or neither
    chart: str | None = None


@dataclass
class Page:
    """Chart specs by id, filled while a view is built."""

    charts: dict[str, charts.Spec] = field(default_factory=dict)

    def add(self, key: str, spec: charts.Spec) -> str:
        """Register ``spec`` under ``key``; returns the key for the template."""
        self.charts[key] = spec
        return key


def _fmt(value: float | None, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    if kind == "score":
        return f"{value:+.1f}"
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "share":
        return f"{value:.1f}%"
    return f"{value:,.0f}"


def _change(
    now: float | None, before: float | None, kind: str, higher_is_better: bool
) -> tuple[str, bool | None]:
    if now is None or before is None:
        return "", None
    delta = now - before
    if abs(delta) < 1e-9:
        return "no change", None
    arrow = "▲" if delta > 0 else "▼"
    if kind == "pct":
        text = f"{arrow} {abs(100 * delta):.1f} pts"
    elif kind in ("score", "share"):
        text = f"{arrow} {abs(delta):.1f} pts"
    elif kind == "money":
        text = f"{arrow} {abs(delta):,.2f}"
    else:
        text = f"{arrow} {abs(delta):,.0f}"
    return text, (delta > 0) == higher_is_better


def conversion(data: dict[str, Any]) -> float | None:
    """Converted ÷ entered over the journeys that have a goal."""
    with_goal = [j for j in data["journeys"].values() if j.get("goal")]
    return ratio(sum(j["converted"] for j in with_goal), sum(j["entered"] for j in with_goal))


def _rate_series(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Per bucket: conversion, open and click rates (for sparklines)."""
    entered: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in data["trends"]["enrollments"]:
        entered[r["bucket"]][0] += r["entered"]
        entered[r["bucket"]][1] += r["converted"]
    mail: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in data["trends"]["messages"]:
        mail[r["bucket"]][r["kind"]] += r["count"]
    return {
        "conversion": [{"bucket": b, "v": ratio(c, n)} for b, (n, c) in sorted(entered.items())],
        "open": [
            {"bucket": b, "v": ratio(m["opened"], m["sent"])} for b, m in sorted(mail.items())
        ],
        "click": [
            {"bucket": b, "v": ratio(m["clicked"], m["sent"])} for b, m in sorted(mail.items())
        ],
        "entered": [{"bucket": b, "v": n} for b, (n, _c) in sorted(entered.items())],
    }


class _Kpi(NamedTuple):
    """One KPI card's figures, before formatting."""

    label: str
    value: float | None
    previous: float | None  # the same KPI over the period before
    kind: str  # how it is formatted: pct, score, share, money or a count
    higher_is_better: bool
    hint: str
    spark: tuple[list[dict[str, Any]], str] | None = None  # sparkline values and field


def kpi_cards(page: Page, data: dict[str, Any], before: dict[str, Any] | None) -> list[Card]:
    """The overview's KPI cards, each with its change against ``before`` (the period of the
    same length just before) and, where the report has one, a sparkline over the period."""
    kpis = [kpi for group in _KPI_GROUPS for kpi in group(data, before)]
    cards = []
    for i, kpi in enumerate(kpis):
        change, good = _change(kpi.value, kpi.previous, kpi.kind, kpi.higher_is_better)
        chart = None
        spark = kpi.spark
        if spark and sum(1 for v in spark[0] if v.get(spark[1]) is not None) > 1:
            color = charts.PALETTE[i % len(charts.PALETTE)]
            chart = page.add(f"spark-{i}", charts.sparkline(spark[0], spark[1], color))
        cards.append(Card(kpi.label, _fmt(kpi.value, kpi.kind), kpi.hint, change, good, chart))
    return cards


def _previous(before: dict[str, Any] | None) -> dict[str, Any]:
    return (before or {}).get("kpis", {})


def _survey_kpis(data: dict[str, Any], before: dict[str, Any] | None) -> list[_Kpi]:
    k, b = data["kpis"], _previous(before)
    return [
        _Kpi(
            "NPS",
            k["nps"],
            b.get("nps"),
            "score",
            True,
            f"{k['answers']['nps']:,} answers: % promoters − % detractors",
            (data["trends"]["nps"], "nps"),
        ),
        _Kpi(
            "CSAT",
            k["csat"],
            b.get("csat"),
            "share",
            True,
            f"{k['answers']['csat']:,} answers: % scoring 4 or 5",
        ),
    ]


def _journey_kpis(data: dict[str, Any], before: dict[str, Any] | None) -> list[_Kpi]:
    k, b = data["kpis"], _previous(before)
    series = _rate_series(data)
    return [
        _Kpi(
            "Conversion",
            conversion(data),
            conversion(before) if before else None,
            "pct",
            True,
            "goal reached ÷ customers who entered",
            (series["conversion"], "v"),
        ),
        _Kpi(
            "Open rate",
            k["open_rate"],
            b.get("open_rate"),
            "pct",
            True,
            "opened ÷ delivered emails",
            (series["open"], "v"),
        ),
        _Kpi(
            "Click rate",
            k["click_rate"],
            b.get("click_rate"),
            "pct",
            True,
            "clicked ÷ delivered emails",
            (series["click"], "v"),
        ),
        _Kpi(
            "Unsubscribes",
            k["unsubscribe_rate"],
            b.get("unsubscribe_rate"),
            "pct",
            False,
            "unsubscribed ÷ delivered emails",
        ),
    ]


def _retention_kpis(data: dict[str, Any], before: dict[str, Any] | None) -> list[_Kpi]:
    k, b = data["kpis"], _previous(before)
    retained = (
        f"{k['customers_retained']:,} of {k['customers_ordered_before']:,} who ordered "
        "before ordered again"
        if k["customers_ordered_before"]
        else "nobody ordered in the period before"
    )
    return [
        _Kpi("Retention", k["retention_rate"], b.get("retention_rate"), "pct", True, retained),
        _Kpi("Churn", k["churn_rate"], b.get("churn_rate"), "pct", False, "1 − retention"),
    ]


def _value_kpis(data: dict[str, Any], before: dict[str, Any] | None) -> list[_Kpi]:
    k, b = data["kpis"], _previous(before)
    clv_before = b.get("clv") or {}
    return [
        _Kpi(
            "Revenue",
            k["revenue"],
            b.get("revenue"),
            "money",
            True,
            f"{k['orders']:,} orders, {_fmt(k['average_order_value'], 'money')} on average",
            (data["trends"]["orders"], "revenue"),
        ),
        _Kpi(
            "CLV (historic)",
            k["clv"]["historic"],
            clv_before.get("historic"),
            "money",
            True,
            "average lifetime value of customers who ordered",
        ),
        _Kpi(
            "CLV (predicted)",
            k["clv"]["predicted"],
            clv_before.get("predicted"),
            "money",
            True,
            "order value × orders per customer ÷ churn",
        ),
    ]


_KPI_GROUPS = (_survey_kpis, _journey_kpis, _retention_kpis, _value_kpis)
"""The overview's cards in order: surveys, journeys and email, retention, value."""


def journey_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per journey for the overview table: volume, conversion, NPS, email, A/B."""
    rows = []
    for name, j in data["journeys"].items():
        tests = []
        for split, s in j.get("variants", {}).items():
            if s["winner"]:
                tests.append(f"{split}: {s['winner']} wins")
            elif any(v["entered"] for v in s["variants"].values()):
                tests.append(f"{split}: no significant winner yet")
        rows.append(
            {
                "id": name,
                "name": j["name"],
                "entered": j["entered"],
                "active": sum(s.get("now", 0) for s in j["steps"].values()),
                "conversion": _fmt(j["conversion_rate"], "pct") if j.get("goal") else "no goal",
                "nps": _fmt(j.get("nps"), "score"),
                "open_rate": _fmt(j.get("open_rate"), "pct"),
                "tests": "; ".join(tests),
            }
        )
    return rows


def overview(data: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    """Everything of the overview page."""
    page = Page()
    return {
        "cards": kpi_cards(page, data, before),
        "journeys": journey_rows(data),
        "entered_chart": page.add("entered", charts.enrollments_trend(data)),
        "messages_chart": page.add("messages", charts.messages_trend(data)),
        "orders_chart": page.add("orders", charts.orders_trend(data)),
        "nps_chart": page.add("nps", charts.nps_trend(data["trends"]["nps"])),
        "stages_chart": page.add("stages", charts.stages(data["stages"])),
        "voc": voc_view(page, data["voc"], "voc"),
        "charts": page.charts,
    }


def voc_view(page: Page, voc: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Keywords per category (charts) and the latest comments."""
    order = ["detractor", "unsatisfied", "passive", "neutral", "promoter", "satisfied"]
    categories = sorted(voc["by_category"], key=lambda c: order.index(c) if c in order else 99)
    return {
        "comments": voc["comments"],
        "categories": [
            {
                "name": c,
                **voc["by_category"][c],
                "chart": page.add(
                    f"{prefix}-{c}", charts.keywords(c, voc["by_category"][c]["keywords"])
                ),
            }
            for c in categories
        ],
        "latest": voc["latest"],
    }


def journey_page(
    data: dict[str, Any], name: str, plan: Plan | None, *, prefix: str = ""
) -> dict[str, Any]:
    """Everything of one journey's page. ``data`` is a report for this journey alone (the
    dashboard) or for all journeys (the HTML report; chart keys then take ``prefix``)."""
    page = Page()
    j = data["journeys"][name]
    scoped = data.get("journey") == name
    trends = {
        "trends": {
            "enrollments": [r for r in data["trends"]["enrollments"] if r["journey"] == name]
        }
    }
    voc = (
        data["voc"]
        if scoped
        else {
            "comments": 0,
            "by_category": {},
            "latest": [c for c in data["voc"]["latest"] if c["journey"] == name],
        }
    )
    splits = []
    for split, s in j.get("variants", {}).items():
        chart = page.add(f"{prefix}ab-{split}", charts.variants(s))
        splits.append({"id": split, **s, "verdicts": _verdicts(s), "chart": chart})
    return {
        "id": name,
        "journey": j,
        "diagram": journey_svg(plan, j) if plan else None,
        "funnel_chart": page.add(f"{prefix}funnel", charts.funnel(j)),
        "templates_chart": page.add(f"{prefix}templates", charts.templates(j.get("messages", {}))),
        "nps_chart": page.add(f"{prefix}nps", charts.nps_trend(j.get("nps_trend", []))),
        "entered_chart": page.add(f"{prefix}entered", charts.enrollments_trend(trends)),
        "splits": splits,
        "messages": j.get("messages", {}),
        "voc": voc_view(page, voc, f"{prefix}voc"),
        "charts": page.charts,
    }


def _verdicts(split: dict[str, Any]) -> list[str]:
    """Each variant against the baseline of ``split``, in words."""
    baseline = split["variants"][split["baseline"]]
    verdicts = []
    for variant, v in split["variants"].items():
        if v.get("baseline"):
            continue
        if v["p_value"] is None:
            verdicts.append(f"{variant}: not enough data yet")
            continue
        uplift = v["uplift"] or 0.0
        sure = "significant" if v["significant"] else "not significant"
        if uplift:
            direction = "better" if uplift > 0 else "worse"
            difference = f"{100 * abs(uplift):.1f} points {direction}"
        else:
            difference = "no difference"
        verdicts.append(
            f"{variant} converts {_fmt(v['conversion_rate'], 'pct')} vs "
            f"{_fmt(baseline['conversion_rate'], 'pct')} for {split['baseline']}: "
            f"{difference}, p = {v['p_value']:.3f} ({sure})"
        )
    return verdicts


def stages_page(
    data: dict[str, Any], stage_order: list[str], *, prefix: str = ""
) -> dict[str, Any]:
    """Customers by stage now and the flow between stages in the period."""
    page = Page()
    transitions = data["stage_transitions"]
    return {
        "stages": data["stages"],
        "total": sum(data["stages"].values()),
        "transitions": transitions,
        "stages_chart": page.add(f"{prefix}stages", charts.stages(data["stages"])),
        "flow_chart": page.add(f"{prefix}flow", charts.stage_flow(transitions)),
        "matrix_chart": page.add(f"{prefix}matrix", charts.stage_matrix(transitions, stage_order)),
        "charts": page.charts,
    }


def plans_by_name(plans: Mapping[str, Plan]) -> dict[str, Plan]:
    """Plans sorted by journey id."""
    return dict(sorted(plans.items()))
