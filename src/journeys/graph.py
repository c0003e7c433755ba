"""Journey diagrams (Mermaid, SVG, PNG); see :mod:`journeys.spec.graph`."""

from journeys.spec.graph import journey_graph, layout, render_png, render_svg, to_mermaid

__all__ = ["journey_graph", "layout", "render_png", "render_svg", "to_mermaid"]
