"""What every chart shares: colours, font, axis style, the date axis and the spec frame."""

from __future__ import annotations

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
DATE_TIP: Spec = {**DATE, "axis": None, "format": "%b %d"}
"""The date as a tooltip line."""


def frame(data: list[dict[str, Any]], height: int = 220, **rest: Any) -> Spec:
    """A full-width Vega-Lite spec of ``data`` with the shared look; ``rest`` is the chart."""
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "config": CONFIG,
        "width": "container",
        "height": height,
        "data": {"values": data},
        **rest,
    }


def empty(text: str) -> Spec:
    """A chart with a message instead of data, so a page never shows a blank box."""
    return frame(
        [{"text": text}],
        height=80,
        mark={"type": "text", "color": "#868e96", "fontSize": 13},
        encoding={"text": {"field": "text"}},
    )


def measure_colors(field: str, domain: list[str]) -> Spec:
    """A colour per measure, from the palette's start, without a legend title."""
    return {
        "field": field,
        "type": "nominal",
        "title": None,
        "scale": {"domain": domain, "range": PALETTE[: len(domain)]},
    }
