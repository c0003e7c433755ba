"""Charts of the lifecycle page: customers per stage now, and the stage changes of the
period over time and as a from × to matrix."""

from __future__ import annotations

from typing import Any

from journeys.insight.charts.base import DATE, DATE_TIP, STAGE_COLORS, Spec, empty, frame
from journeys.plan import STAGES


def stages(counts: dict[str, int]) -> Spec:
    """Customers per lifecycle stage, in lifecycle order."""
    rows = [{"stage": s, "customers": n, "order": i} for i, (s, n) in enumerate(counts.items())]
    if not rows:
        return empty("No customers yet")
    domain = list(counts)
    return frame(
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
        return empty("No stage changes in this period")
    domain = [s for s in STAGES if any(r["to"] == s for r in rows)]
    domain += sorted({r["to"] for r in rows} - set(domain))
    return frame(
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
                DATE_TIP,
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
        return empty("No stage changes in this period")
    order = ["none", *stage_order]
    order += sorted({s for pair in totals for s in pair} - set(order))
    rows = [{"from": a, "to": b, "count": n} for (a, b), n in totals.items()]
    top = max(totals.values())
    return frame(
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
