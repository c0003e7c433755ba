"""Draw a :class:`~journeys.spec.graph.layout.Layout` as SVG text (no browser needed)."""

from __future__ import annotations

import itertools
from xml.sax.saxutils import escape

from journeys.plan import Plan
from journeys.spec.graph.layout import Box, Layout, Route, layout
from journeys.spec.graph.model import journey_graph

TRIGGER_RADIUS = 22
"""Corner radius of the trigger box: a pill when it is short, a rounded box when tall."""
FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
STYLE = {
    "trigger": ("#e8f0fe", "#3367d6"),
    "box": ("#ffffff", "#5f6368"),
    "wait": ("#fef7e0", "#b06000"),
    "diamond": ("#f3e8fd", "#8430ce"),
    "exit": ("#fce8e6", "#c5221f"),
    "end": ("#e6f4ea", "#137333"),
}


def _shape(box: Box) -> str:
    fill, stroke = STYLE[box.node.shape]
    x0, y0 = box.x - box.w / 2, box.y - box.h / 2
    common = f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"'
    if box.node.shape == "diamond":
        pts = f"{box.x},{y0} {x0 + box.w},{box.y} {box.x},{y0 + box.h} {x0},{box.y}"
        return f'<polygon points="{pts}" {common}/>'
    if box.node.shape == "end":
        return f'<circle cx="{box.x:.1f}" cy="{box.y:.1f}" r="{box.w / 2:.1f}" {common}/>'
    radius = min(box.h / 2, TRIGGER_RADIUS) if box.node.shape == "trigger" else 8
    return (
        f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{box.w:.1f}" height="{box.h:.1f}"'
        f' rx="{radius:.1f}" {common}/>'
    )


def _text(box: Box, size: int) -> list[str]:
    lines = box.node.lines
    total = len(lines) * size + (len(lines) - 1) * 4
    top = box.y - total / 2
    out = []
    for i, line in enumerate(lines):
        base = top + i * (size + 4) + size * 0.8
        weight = ' font-weight="bold"' if i == 0 and len(lines) > 1 else ""
        out.append(
            f'<text x="{box.x:.1f}" y="{base:.1f}" text-anchor="middle"{weight}>'
            f"{escape(line)}</text>"
        )
    return out


def _path(route: Route) -> str:
    pts = route.points
    if route.back:
        return "M " + " L ".join(f"{x:.1f} {y:.1f}" for x, y in pts)
    d = f"M {pts[0][0]:.1f} {pts[0][1]:.1f}"
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        ym = (y0 + y1) / 2
        d += f" C {x0:.1f} {ym:.1f}, {x1:.1f} {ym:.1f}, {x1:.1f} {y1:.1f}"
    return d


def layout_to_svg(lay: Layout) -> str:
    """SVG document text for a layout."""
    size = lay.fonts.size if lay.fonts else 14
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{lay.width:.0f}" height="{lay.height:.0f}"'
        f' viewBox="0 0 {lay.width:.0f} {lay.height:.0f}" font-family="{FONT}" font-size="{size}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8"'
        ' markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"'
        ' fill="#5f6368"/></marker></defs>',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text x="24" y="30" font-weight="bold" font-size="{size + 2}">{escape(lay.title)}</text>',
    ]
    for route in lay.routes:
        dash = ' stroke-dasharray="6 4"' if route.edge.dashed else ""
        parts.append(
            f'<path d="{_path(route)}" fill="none" stroke="#5f6368" stroke-width="1.4"{dash}'
            ' marker-end="url(#arrow)"/>'
        )
    for box in lay.boxes.values():
        parts.append(_shape(box))
        parts.extend(_text(box, size))
    for route in lay.routes:
        lab = route.label
        if lab is None:
            continue
        parts.append(
            f'<rect x="{lab.x - lab.w / 2:.1f}" y="{lab.y - lab.h / 2:.1f}" width="{lab.w:.1f}"'
            f' height="{lab.h:.1f}" rx="3" fill="#ffffff" fill-opacity="0.92" stroke="#dadce0"/>'
        )
        top = lab.y - (len(lab.lines) * size + (len(lab.lines) - 1) * 4) / 2
        for i, line in enumerate(lab.lines):
            parts.append(
                f'<text x="{lab.x:.1f}" y="{top + i * (size + 4) + size * 0.8:.1f}"'
                f' text-anchor="middle" font-size="{size - 1}" fill="#3c4043">'
                f"{escape(line)}</text>"
            )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def render_svg(plan: Plan) -> str:
    """An SVG picture of ``plan``."""
    return layout_to_svg(layout(journey_graph(plan)))
