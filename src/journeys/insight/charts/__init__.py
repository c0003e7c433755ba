"""Vega-Lite specifications of the report's charts, built from the report's data (pure).

The dashboard and the HTML report embed these specs as JSON; the vendored Vega, Vega-Lite and
vega-embed draw them in the browser (:mod:`journeys.insight.assets`). Dates are the report's
``YYYY-MM-DD`` buckets, read as UTC. The charts over time are in :mod:`.trends`, those of a
journey's page in :mod:`.journey`, the lifecycle stages in :mod:`.lifecycle`; the shared look
in :mod:`.base`.
"""

from journeys.insight.charts.base import CATEGORY_COLORS, PALETTE, STAGE_COLORS, Spec
from journeys.insight.charts.journey import funnel, keywords, templates, variants
from journeys.insight.charts.lifecycle import stage_flow, stage_matrix, stages
from journeys.insight.charts.trends import (
    enrollments_trend,
    messages_trend,
    nps_trend,
    orders_trend,
    sparkline,
)

__all__ = [
    "CATEGORY_COLORS",
    "PALETTE",
    "STAGE_COLORS",
    "Spec",
    "enrollments_trend",
    "funnel",
    "keywords",
    "messages_trend",
    "nps_trend",
    "orders_trend",
    "sparkline",
    "stage_flow",
    "stage_matrix",
    "stages",
    "templates",
    "variants",
]
