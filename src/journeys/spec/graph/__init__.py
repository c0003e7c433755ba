"""Diagrams of a journey: Mermaid text, and SVG/PNG drawn from a small layered layout.

Nothing here needs a browser or Node: SVG is written as text and PNG is drawn with Pillow.
"""

from journeys.spec.graph.layout import Layout, layout
from journeys.spec.graph.mermaid import to_mermaid
from journeys.spec.graph.model import Edge, JourneyGraph, Node, journey_graph
from journeys.spec.graph.png import render_png
from journeys.spec.graph.svg import render_svg

__all__ = [
    "Edge",
    "JourneyGraph",
    "Layout",
    "Node",
    "journey_graph",
    "layout",
    "render_png",
    "render_svg",
    "to_mermaid",
]
