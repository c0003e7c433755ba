"""Vega-Lite specifications of the report's charts, built from the report's data (pure).

The dashboard and the HTML report embed these specs as JSON; the vendored Vega, Vega-Lite and
vega-embed draw them in the browser (:mod:`.assets`). Dates are the report's ``YYYY-MM-DD``
buckets, read as UTC.
"""

from __future__ import annotations

import math
from typing import Any

from journeys.plan import STAGES

Spec = dict[str, Any]

PALETTE = ["#4c6ef5", "#12b886", "#fab005", "#fa5252", "#7950f2", "#15aabf", "#fd7e14", "#868e96"]
CATEGORY_COLORS = {
    "promoter": "#12b886",
    "passive": "#fab005",
    "detractor": "#fa5252",
    "satisfied": "#12b886",
    "neutral": "#fab005",
    "unsatisfied": "#fa5252",
}
STAGE_COLORS = dict(
    zip(STAGES, ["#a5d8ff", "#4dabf7", "#4c6ef5", "#7950f2", "#12b886"], strict=True)
)
FONT = (
    "system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans KR', 'Noto Sans CJK KR', sans-serif"
)

CONFIG: Spec = {
    "font": FONT,
    "view": {"stroke": None},
    "background": None,
    "axis": {
        "labelColor": "#495057",
        "titleColor": "#495057",
        "gridColor": "#edf0f3",
        "domainColor": "#ced4da",
        "tickColor": "#ced4da",
        "labelFontSize": 11,
        "titleFontSize": 11,
        "titleFontWeight": 500,
    },
    "legend": {"labelColor": "#495057", "titleColor": "#495057", "orient": "top"},
    "range": {"category": PALETTE},
}
DATE: Spec = {
    "field": "bucket",
    "type": "temporal",
    "timeUnit": "utcyearmonthdate",
    "title": None,
    "axis": {"format": "%b %d", "labelAngle": 0, "tickCount": 6},
}


def _spec(data: list[dict[str, Any]], height: int = 220, **rest: Any) -> Spec:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "config": CONFIG,
        "width": "container",
        "height": height,
        "data": {"values": data},
        **rest,
    }


def _empty(text: str) -> Spec:
    """A chart with a message instead of data, so a page never shows a blank box."""
    return _spec(
        [{"text": text}],
        height=80,
        mark={"type": "text", "color": "#868e96", "fontSize": 13},
        encoding={"text": {"field": "text"}},
    )


# --------------------------------------------------------------------------- over time


def enrollments_trend(data: dict[str, Any]) -> Spec:
    """Entered and converted per bucket, all journeys together."""
    totals: dict[str, dict[str, int]] = {}
    for row in data["trends"]["enrollments"]:
        t = totals.setdefault(row["bucket"], {"entered": 0, "converted": 0})
        t["entered"] += row["entered"]
        t["converted"] += row["converted"]
    rows = [
        {"bucket": b, "measure": m, "count": t[m]}
        for b, t in sorted(totals.items())
        for m in ("entered", "converted")
    ]
    if not rows:
        return _empty("No customers entered a journey in this period")
    return _spec(
        rows,
        mark={"type": "area", "line": True, "opacity": 0.25, "interpolate": "monotone"},
        encoding={
            "x": DATE,
            "y": {"field": "count", "type": "quantitative", "title": "customers", "stack": None},
            "color": {
                "field": "measure",
                "type": "nominal",
                "title": None,
                "scale": {"domain": ["entered", "converted"], "range": PALETTE[:2]},
            },
            "tooltip": [
                {**DATE, "axis": None, "format": "%b %d"},
                {"field": "measure"},
                {"field": "count"},
            ],
        },
    )


def messages_trend(data: dict[str, Any]) -> Spec:
    """Emails sent, opened and clicked per bucket."""
    rows = [r for r in data["trends"]["messages"] if r["kind"] in ("sent", "opened", "clicked")]
    if not rows:
        return _empty("No emails in this period")
    return _spec(
        rows,
        mark={"type": "line", "point": True, "interpolate": "monotone"},
        encoding={
            "x": DATE,
            "y": {"field": "count", "type": "quantitative", "title": "emails"},
            "color": {
                "field": "kind",
                "type": "nominal",
                "title": None,
                "scale": {"domain": ["sent", "opened", "clicked"], "range": PALETTE[:3]},
            },
            "tooltip": [
                {**DATE, "axis": None, "format": "%b %d"},
                {"field": "kind"},
                {"field": "count"},
            ],
        },
    )


def orders_trend(data: dict[str, Any]) -> Spec:
    """Revenue per bucket, with the order count in the tooltip."""
    rows = data["trends"]["orders"]
    if not rows:
        return _empty("No orders in this period")
    return _spec(
        rows,
        mark={"type": "bar", "color": PALETTE[4], "cornerRadiusEnd": 2},
        encoding={
            "x": DATE,
            "y": {"field": "revenue", "type": "quantitative", "title": "revenue"},
            "tooltip": [
                {**DATE, "axis": None, "format": "%b %d"},
                {"field": "orders"},
                {"field": "revenue", "format": ",.2f"},
            ],
        },
    )


def nps_trend(rows: list[dict[str, Any]]) -> Spec:
    """NPS per bucket (line, right axis) over the promoter/passive/detractor shares (stacked
    bars, left axis)."""
    if not rows:
        return _empty("No NPS answers in this period")
    shares = [
        {
            "bucket": r["bucket"],
            "category": c,
            "share": r[c],
            "answers": r["answers"],
            "nps": r["nps"],
        }
        for r in rows
        for c in ("promoter", "passive", "detractor")
    ]
    names = ["promoter", "passive", "detractor"]
    tooltip = [
        {**DATE, "axis": None, "format": "%b %d"},
        {"field": "nps", "title": "NPS"},
        {"field": "answers"},
    ]
    return _spec(
        shares,
        layer=[
            {
                "mark": {"type": "bar", "opacity": 0.55},
                "encoding": {
                    "x": DATE,
                    "y": {
                        "field": "share",
                        "type": "quantitative",
                        "title": "share of answers",
                        "stack": "normalize",
                        "axis": {"format": "%"},
                    },
                    "color": {
                        "field": "category",
                        "type": "nominal",
                        "title": None,
                        "sort": names,
                        "scale": {"domain": names, "range": [CATEGORY_COLORS[c] for c in names]},
                    },
                    "order": {"field": "category", "sort": "descending"},
                    "tooltip": [
                        *tooltip,
                        {"field": "category"},
                        {"field": "share", "format": ".0%"},
                    ],
                },
            },
            {
                "transform": [{"filter": "datum.category == 'promoter'"}],
                "mark": {
                    "type": "line",
                    "color": "#212529",
                    "strokeWidth": 2.5,
                    "point": {"color": "#212529", "size": 30},
                },
                "encoding": {
                    "x": DATE,
                    "y": {
                        "field": "nps",
                        "type": "quantitative",
                        "title": "NPS",
                        "scale": {"domain": [-100, 100]},
                        "axis": {"orient": "right"},
                    },
                    "tooltip": tooltip,
                },
            },
        ],
        resolve={"scale": {"y": "independent"}},
    )


def sparkline(values: list[dict[str, Any]], field: str, color: str = PALETTE[0]) -> Spec:
    """A tiny line of ``field`` per bucket, for a KPI card."""
    points = [v for v in values if v.get(field) is not None]
    spec = _spec(
        points,
        height=36,
        mark={
            "type": "area",
            "line": {"color": color},
            "color": color,
            "opacity": 0.15,
            "interpolate": "monotone",
        },
        encoding={
            "x": {**DATE, "axis": None},
            "y": {"field": field, "type": "quantitative", "axis": None, "scale": {"zero": False}},
            "tooltip": [{**DATE, "axis": None, "format": "%b %d"}, {"field": field}],
        },
    )
    spec["padding"] = 0
    return spec


# --------------------------------------------------------------------------- journeys


def funnel(journey: dict[str, Any]) -> Spec:
    """Enrollments per step, in the plan's order, entered first."""
    rows = [{"step": "entered", "count": journey["entered"], "order": 0}]
    rows += [
        {"step": step, "count": s["reached"], "order": i + 1}
        for i, (step, s) in enumerate(journey["steps"].items())
    ]
    top = max((r["count"] for r in rows), default=0) or 1
    for r in rows:
        r["share"] = r["count"] / top
    y = {"field": "step", "type": "nominal", "sort": {"field": "order"}, "title": None}
    return _spec(
        rows,
        height=max(120, 26 * len(rows)),
        layer=[
            {
                "mark": {"type": "bar", "color": PALETTE[0], "cornerRadiusEnd": 3, "height": 18},
                "encoding": {
                    "y": y,
                    "x": {"field": "count", "type": "quantitative", "title": "customers"},
                    "tooltip": [
                        {"field": "step"},
                        {"field": "count"},
                        {"field": "share", "format": ".0%", "title": "of the widest"},
                    ],
                },
            },
            {
                "mark": {"type": "text", "align": "left", "dx": 4, "color": "#495057"},
                "encoding": {
                    "y": y,
                    "x": {"field": "count", "type": "quantitative"},
                    "text": {"field": "count", "format": ","},
                },
            },
        ],
    )


def variants(split: dict[str, Any]) -> Spec:
    """Conversion rate per variant with a 95 % interval (normal approximation); the baseline
    in grey."""
    if not any(v["converted"] for v in split["variants"].values()):
        entered = sum(v["entered"] for v in split["variants"].values())
        return _empty(f"No conversions yet ({entered:,} customers in the test)")
    rows = []
    for name, v in split["variants"].items():
        n, rate = v["entered"], v["conversion_rate"] or 0.0
        half = 1.96 * math.sqrt(rate * (1 - rate) / n) if n else 0.0
        rows.append(
            {
                "variant": name,
                "rate": rate,
                "low": max(rate - half, 0.0),
                "high": min(rate + half, 1.0),
                "entered": n,
                "converted": v["converted"],
                "role": "baseline"
                if v.get("baseline")
                else ("winner" if name == split["winner"] else "variant"),
                "p": v.get("p_value"),
            }
        )
    y = {"field": "variant", "type": "nominal", "title": None, "sort": None}
    color = {
        "field": "role",
        "type": "nominal",
        "title": None,
        "scale": {
            "domain": ["baseline", "variant", "winner"],
            "range": ["#adb5bd", PALETTE[0], PALETTE[1]],
        },
    }
    return _spec(
        rows,
        height=max(90, 34 * len(rows)),
        layer=[
            {
                "mark": {"type": "bar", "cornerRadiusEnd": 3, "height": 20},
                "encoding": {
                    "y": y,
                    "x": {
                        "field": "rate",
                        "type": "quantitative",
                        "title": "conversion rate",
                        "axis": {"format": "%"},
                    },
                    "color": color,
                    "tooltip": [
                        {"field": "variant"},
                        {"field": "entered"},
                        {"field": "converted"},
                        {"field": "rate", "format": ".1%"},
                        {"field": "p", "title": "p-value"},
                    ],
                },
            },
            {
                "mark": {"type": "rule", "color": "#343a40"},
                "encoding": {
                    "y": y,
                    "x": {"field": "low", "type": "quantitative"},
                    "x2": {"field": "high"},
                },
            },
        ],
    )


def templates(messages: dict[str, dict[str, Any]]) -> Spec:
    """Sent, opened and clicked per template (grouped bars)."""
    rows = [
        {"template": t, "measure": m, "count": c.get(m, 0)}
        for t, c in messages.items()
        for m in ("sent", "opened", "clicked")
    ]
    if not rows:
        return _empty("No messages in this period")
    return _spec(
        rows,
        height=max(120, 22 * 3 * len(messages)),
        mark={"type": "bar", "cornerRadiusEnd": 2},
        encoding={
            "y": {"field": "template", "type": "nominal", "title": None},
            "yOffset": {"field": "measure", "sort": ["sent", "opened", "clicked"]},
            "x": {"field": "count", "type": "quantitative", "title": "messages"},
            "color": {
                "field": "measure",
                "type": "nominal",
                "title": None,
                "scale": {"domain": ["sent", "opened", "clicked"], "range": PALETTE[:3]},
            },
            "tooltip": [{"field": "template"}, {"field": "measure"}, {"field": "count"}],
        },
    )


def keywords(category: str, words: list[dict[str, Any]]) -> Spec:
    """The top keywords of one answer category."""
    if not words:
        return _empty("No keywords yet")
    return _spec(
        words,
        height=max(60, 20 * len(words)),
        mark={
            "type": "bar",
            "color": CATEGORY_COLORS.get(category, PALETTE[0]),
            "cornerRadiusEnd": 2,
        },
        encoding={
            "y": {
                "field": "keyword",
                "type": "nominal",
                "sort": "-x",
                "title": None,
                "axis": {"labelLimit": 160},
            },
            "x": {
                "field": "count",
                "type": "quantitative",
                "title": "comments",
                "axis": {"tickMinStep": 1},
            },
            "tooltip": [{"field": "keyword"}, {"field": "count"}],
        },
    )


# --------------------------------------------------------------------------- stages


def stages(counts: dict[str, int]) -> Spec:
    """Customers per lifecycle stage, in lifecycle order."""
    rows = [{"stage": s, "customers": n, "order": i} for i, (s, n) in enumerate(counts.items())]
    if not rows:
        return _empty("No customers yet")
    domain = list(counts)
    return _spec(
        rows,
        height=max(120, 30 * len(rows)),
        layer=[
            {
                "mark": {"type": "bar", "cornerRadiusEnd": 3, "height": 20},
                "encoding": {
                    "y": {"field": "stage", "type": "nominal", "sort": domain, "title": None},
                    "x": {"field": "customers", "type": "quantitative"},
                    "color": {
                        "field": "stage",
                        "legend": None,
                        "scale": {
                            "domain": domain,
                            "range": [STAGE_COLORS.get(s, "#adb5bd") for s in domain],
                        },
                    },
                    "tooltip": [{"field": "stage"}, {"field": "customers", "format": ","}],
                },
            },
            {
                "mark": {"type": "text", "align": "left", "dx": 4, "color": "#495057"},
                "encoding": {
                    "y": {"field": "stage", "type": "nominal", "sort": domain},
                    "x": {"field": "customers", "type": "quantitative"},
                    "text": {"field": "customers", "format": ","},
                },
            },
        ],
    )


def stage_flow(transitions: dict[str, Any]) -> Spec:
    """Stage changes per bucket, stacked by the stage entered."""
    rows = transitions["series"]
    if not rows:
        return _empty("No stage changes in this period")
    domain = [s for s in STAGES if any(r["to"] == s for r in rows)]
    domain += sorted({r["to"] for r in rows} - set(domain))
    return _spec(
        rows,
        mark={"type": "bar"},
        encoding={
            "x": DATE,
            "y": {
                "aggregate": "sum",
                "field": "count",
                "type": "quantitative",
                "title": "customers",
            },
            "color": {
                "field": "to",
                "type": "nominal",
                "title": "entered stage",
                "scale": {
                    "domain": domain,
                    "range": [STAGE_COLORS.get(s, "#adb5bd") for s in domain],
                },
            },
            "tooltip": [
                {**DATE, "axis": None, "format": "%b %d"},
                {"field": "from"},
                {"field": "to"},
                {"aggregate": "sum", "field": "count", "title": "customers"},
            ],
        },
    )


def stage_matrix(transitions: dict[str, Any], stage_order: list[str]) -> Spec:
    """From-stage × to-stage heat map of the period's changes."""
    totals: dict[tuple[str, str], int] = {}
    for r in transitions["series"]:
        key = (r["from"], r["to"])
        totals[key] = totals.get(key, 0) + r["count"]
    if not totals:
        return _empty("No stage changes in this period")
    order = ["none", *stage_order]
    order += sorted({s for pair in totals for s in pair} - set(order))
    rows = [{"from": a, "to": b, "count": n} for (a, b), n in totals.items()]
    top = max(totals.values())
    return _spec(
        rows,
        height=40 * len(stage_order),
        layer=[
            {
                "mark": {"type": "rect", "cornerRadius": 3},
                "encoding": {
                    "x": {
                        "field": "to",
                        "type": "nominal",
                        "sort": order,
                        "title": "to",
                        "axis": {"labelAngle": 0, "orient": "top"},
                    },
                    "y": {"field": "from", "type": "nominal", "sort": order, "title": "from"},
                    "color": {
                        "field": "count",
                        "type": "quantitative",
                        "legend": None,
                        "scale": {"scheme": "blues"},
                    },
                    "tooltip": [{"field": "from"}, {"field": "to"}, {"field": "count"}],
                },
            },
            {
                "mark": {"type": "text", "fontWeight": 600},
                "encoding": {
                    "x": {"field": "to", "type": "nominal", "sort": order},
                    "y": {"field": "from", "type": "nominal", "sort": order},
                    "text": {"field": "count", "format": ","},
                    "color": {
                        "condition": {"test": f"datum.count > {top / 2}", "value": "white"},
                        "value": "#212529",
                    },
                },
            },
        ],
    )
