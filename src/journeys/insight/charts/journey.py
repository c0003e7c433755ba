"""Charts of a journey's page: the funnel of steps, the A/B tests, the messages per template
and the keywords of what customers said (also on the overview)."""

from __future__ import annotations

import math
from typing import Any

from journeys.insight.charts.base import (
    CATEGORY_COLORS,
    PALETTE,
    Spec,
    empty,
    frame,
    measure_colors,
)


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
    return frame(
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
        return empty(f"No conversions yet ({entered:,} customers in the test)")
    rows = _variant_rows(split)
    y = {"field": "variant", "type": "nominal", "title": None, "sort": None}
    return frame(
        rows,
        height=max(90, 34 * len(rows)),
        layer=[
            _variant_bars(y),
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


def _variant_rows(split: dict[str, Any]) -> list[dict[str, Any]]:
    """Per variant: its rate, the interval around it and its role (baseline, winner, other)."""
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
    return rows


def _variant_bars(y: Spec) -> Spec:
    """The layer of conversion-rate bars, coloured by role."""
    return {
        "mark": {"type": "bar", "cornerRadiusEnd": 3, "height": 20},
        "encoding": {
            "y": y,
            "x": {
                "field": "rate",
                "type": "quantitative",
                "title": "conversion rate",
                "axis": {"format": "%"},
            },
            "color": {
                "field": "role",
                "type": "nominal",
                "title": None,
                "scale": {
                    "domain": ["baseline", "variant", "winner"],
                    "range": ["#adb5bd", PALETTE[0], PALETTE[1]],
                },
            },
            "tooltip": [
                {"field": "variant"},
                {"field": "entered"},
                {"field": "converted"},
                {"field": "rate", "format": ".1%"},
                {"field": "p", "title": "p-value"},
            ],
        },
    }


def templates(messages: dict[str, dict[str, Any]]) -> Spec:
    """Sent, opened and clicked per template (grouped bars)."""
    rows = [
        {"template": t, "measure": m, "count": c.get(m, 0)}
        for t, c in messages.items()
        for m in ("sent", "opened", "clicked")
    ]
    if not rows:
        return empty("No messages in this period")
    return frame(
        rows,
        height=max(120, 22 * 3 * len(messages)),
        mark={"type": "bar", "cornerRadiusEnd": 2},
        encoding={
            "y": {"field": "template", "type": "nominal", "title": None},
            "yOffset": {"field": "measure", "sort": ["sent", "opened", "clicked"]},
            "x": {"field": "count", "type": "quantitative", "title": "messages"},
            "color": measure_colors("measure", ["sent", "opened", "clicked"]),
            "tooltip": [{"field": "template"}, {"field": "measure"}, {"field": "count"}],
        },
    )


def keywords(category: str, words: list[dict[str, Any]]) -> Spec:
    """The top keywords of one answer category."""
    if not words:
        return empty("No keywords yet")
    return frame(
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
