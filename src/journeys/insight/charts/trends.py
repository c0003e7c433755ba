"""Charts over time (the overview page, and a journey's entries and NPS): one point per
bucket of the report's trends, plus the KPI cards' sparklines."""

from __future__ import annotations

from typing import Any

from journeys.insight.charts.base import (
    CATEGORY_COLORS,
    DATE,
    DATE_TIP,
    PALETTE,
    Spec,
    empty,
    frame,
    measure_colors,
)

NPS_CATEGORIES = ["promoter", "passive", "detractor"]


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
        return empty("No customers entered a journey in this period")
    return frame(
        rows,
        mark={"type": "area", "line": True, "opacity": 0.25, "interpolate": "monotone"},
        encoding={
            "x": DATE,
            "y": {"field": "count", "type": "quantitative", "title": "customers", "stack": None},
            "color": measure_colors("measure", ["entered", "converted"]),
            "tooltip": [DATE_TIP, {"field": "measure"}, {"field": "count"}],
        },
    )


def messages_trend(data: dict[str, Any]) -> Spec:
    """Emails sent, opened and clicked per bucket."""
    rows = [r for r in data["trends"]["messages"] if r["kind"] in ("sent", "opened", "clicked")]
    if not rows:
        return empty("No emails in this period")
    return frame(
        rows,
        mark={"type": "line", "point": True, "interpolate": "monotone"},
        encoding={
            "x": DATE,
            "y": {"field": "count", "type": "quantitative", "title": "emails"},
            "color": measure_colors("kind", ["sent", "opened", "clicked"]),
            "tooltip": [DATE_TIP, {"field": "kind"}, {"field": "count"}],
        },
    )


def orders_trend(data: dict[str, Any]) -> Spec:
    """Revenue per bucket, with the order count in the tooltip."""
    rows = data["trends"]["orders"]
    if not rows:
        return empty("No orders in this period")
    return frame(
        rows,
        mark={"type": "bar", "color": PALETTE[4], "cornerRadiusEnd": 2},
        encoding={
            "x": DATE,
            "y": {"field": "revenue", "type": "quantitative", "title": "revenue"},
            "tooltip": [
                DATE_TIP,
                {"field": "orders"},
                {"field": "revenue", "format": ",.2f"},
            ],
        },
    )


def nps_trend(rows: list[dict[str, Any]]) -> Spec:
    """NPS per bucket (line, right axis) over the promoter/passive/detractor shares (stacked
    bars, left axis)."""
    if not rows:
        return empty("No NPS answers in this period")
    shares = [
        {
            "bucket": r["bucket"],
            "category": c,
            "share": r[c],
            "answers": r["answers"],
            "nps": r["nps"],
        }
        for r in rows
        for c in NPS_CATEGORIES
    ]
    tooltip = [DATE_TIP, {"field": "nps", "title": "NPS"}, {"field": "answers"}]
    return frame(
        shares,
        layer=[_nps_shares(tooltip), _nps_line(tooltip)],
        resolve={"scale": {"y": "independent"}},
    )


def _nps_shares(tooltip: list[Spec]) -> Spec:
    """The layer of stacked promoter/passive/detractor shares per bucket."""
    return {
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
                "sort": NPS_CATEGORIES,
                "scale": {
                    "domain": NPS_CATEGORIES,
                    "range": [CATEGORY_COLORS[c] for c in NPS_CATEGORIES],
                },
            },
            "order": {"field": "category", "sort": "descending"},
            "tooltip": [*tooltip, {"field": "category"}, {"field": "share", "format": ".0%"}],
        },
    }


def _nps_line(tooltip: list[Spec]) -> Spec:
    """The layer of the NPS line (one point per bucket, read off the promoter rows)."""
    return {
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
    }


def sparkline(values: list[dict[str, Any]], field: str, color: str = PALETTE[0]) -> Spec:
    """A tiny line of ``field`` per bucket, for a KPI card."""
    points = [v for v in values if v.get(field) is not None]
    spec = frame(
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
            "tooltip": [DATE_TIP, {"field": field}],
        },
    )
    spec["padding"] = 0
    return spec
