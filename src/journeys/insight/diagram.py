"""The journey diagram with live numbers on each step (an SVG, drawn without a browser).

It is :mod:`journeys.spec.graph`'s diagram (the one ``journeys graph`` draws) with one more
line per node: how many enrollments passed the step in the period, how many are there now and
how many left the journey there.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from journeys.plan import Plan
from journeys.spec.graph.layout import layout
from journeys.spec.graph.model import END_ID, TRIGGER_ID, JourneyGraph, Node, journey_graph
from journeys.spec.graph.svg import layout_to_svg

LIVE_COLOR = "#1864ab"


def _count_line(step: dict[str, Any] | None) -> str:
    if not step:
        return "–"
    parts = []
    if step.get("reached"):
        parts.append(f"{step['reached']:,} passed")
    if step.get("now"):
        parts.append(f"{step['now']:,} here now")
    if step.get("exited"):
        parts.append(f"{step['exited']:,} exited")
    return " · ".join(parts) or "nobody yet"


def live_graph(plan: Plan, journey: dict[str, Any]) -> tuple[JourneyGraph, list[str]]:
    """The plan's graph with a count line added to each node, and those lines."""
    graph = journey_graph(plan)
    added: list[str] = []
    nodes: list[Node] = []
    for node in graph.nodes:
        if node.id == TRIGGER_ID:
            line = f"{journey.get('entered', 0):,} entered"
        elif node.id == END_ID:
            line = f"{journey.get('completed', 0):,} done"
        else:
            line = _count_line(journey.get("steps", {}).get(node.id))
        added.append(line)
        nodes.append(Node(node.id, (*node.lines, line), node.shape))
    graph.nodes = nodes
    return graph, added


def journey_svg(plan: Plan, journey: dict[str, Any]) -> str:
    """SVG text of the journey with its live numbers (the count lines in bold blue)."""
    graph, lines = live_graph(plan, journey)
    svg = layout_to_svg(layout(graph))
    for line in set(lines):
        text = escape(line)
        svg = svg.replace(
            f'text-anchor="middle">{text}</text>',
            f'text-anchor="middle" fill="{LIVE_COLOR}" font-weight="bold">{text}</text>',
        )
    # Scale to the page's width instead of a fixed pixel size.
    return svg.replace(
        "<svg ", '<svg class="journey-diagram" preserveAspectRatio="xMidYMin meet" ', 1
    )
