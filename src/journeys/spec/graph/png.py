"""Draw a :class:`~journeys.spec.graph.layout.Layout` as PNG with Pillow (same layout as SVG)."""

from __future__ import annotations

import io
import itertools
import math

from journeys.plan import Plan
from journeys.spec.graph.layout import Box, Layout, Route, bezier, layout
from journeys.spec.graph.model import journey_graph
from journeys.spec.graph.svg import STYLE, TRIGGER_RADIUS

EDGE = (95, 99, 104)


def _polyline(route: Route) -> list[tuple[float, float]]:
    if route.back:
        return list(route.points)
    pts: list[tuple[float, float]] = [route.points[0]]
    for (x0, y0), (x1, y1) in zip(route.points, route.points[1:], strict=False):
        pts.extend(bezier(x0, y0, x1, y1, k / 20) for k in range(1, 21))
    return pts


def _dashed(draw: object, pts: list[tuple[float, float]], width: int, s: float) -> None:
    on, off = 6 * s, 4 * s
    carry, drawing = 0.0, True
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        seg = math.hypot(x1 - x0, y1 - y0)
        pos = 0.0
        while pos < seg:
            step = min((on if drawing else off) - carry, seg - pos)
            a = pos / seg if seg else 0
            b = (pos + step) / seg if seg else 0
            if drawing:
                draw.line(  # type: ignore[attr-defined]
                    [
                        (x0 + (x1 - x0) * a, y0 + (y1 - y0) * a),
                        (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b),
                    ],
                    fill=EDGE,
                    width=width,
                )
            pos += step
            carry += step
            if carry >= (on if drawing else off) - 1e-9:
                carry, drawing = 0.0, not drawing


def _arrowhead(draw: object, pts: list[tuple[float, float]], s: float) -> None:
    (x0, y0), (x1, y1) = pts[-2], pts[-1]
    angle = math.atan2(y1 - y0, x1 - x0)
    length, spread = 10 * s, 0.45
    left = (x1 - length * math.cos(angle - spread), y1 - length * math.sin(angle - spread))
    right = (x1 - length * math.cos(angle + spread), y1 - length * math.sin(angle + spread))
    draw.polygon([(x1, y1), left, right], fill=EDGE)  # type: ignore[attr-defined]


def _hex(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _box(draw: object, box: Box, lay: Layout, s: float, fonts: object) -> None:
    fill, stroke = (_hex(c) for c in STYLE[box.node.shape])
    x0, y0 = (box.x - box.w / 2) * s, (box.y - box.h / 2) * s
    x1, y1 = (box.x + box.w / 2) * s, (box.y + box.h / 2) * s
    width = max(1, round(1.5 * s))
    if box.node.shape == "diamond":
        cx, cy = box.x * s, box.y * s
        pts = [(cx, y0), (x1, cy), (cx, y1), (x0, cy)]
        draw.polygon(pts, fill=fill, outline=stroke, width=width)  # type: ignore[attr-defined]
    elif box.node.shape == "end":
        draw.ellipse([x0, y0, x1, y1], fill=fill, outline=stroke, width=width)  # type: ignore[attr-defined]
    else:
        radius = (min(box.h / 2, TRIGGER_RADIUS) if box.node.shape == "trigger" else 8) * s
        draw.rounded_rectangle(  # type: ignore[attr-defined]
            [x0, y0, x1, y1], radius=radius, fill=fill, outline=stroke, width=width
        )
    f = lay.fonts
    assert f is not None
    lines = box.node.lines
    size = f.size
    total = len(lines) * size + (len(lines) - 1) * 4
    top = box.y - total / 2
    for i, line in enumerate(lines):
        font = fonts[1] if i == 0 and len(lines) > 1 else fonts[0]  # type: ignore[index]
        cy = (top + i * (size + 4) + size / 2) * s
        draw.text((box.x * s, cy), f.clean(line), font=font, fill=(32, 33, 36), anchor="mm")  # type: ignore[attr-defined]


def layout_to_png(lay: Layout, scale: float = 2.0) -> bytes:
    """PNG bytes for a layout, ``scale`` times the SVG size (crisp on high-DPI screens)."""
    from PIL import Image, ImageDraw

    from journeys.spec.graph.fonts import fonts as font_set

    f = lay.fonts
    assert f is not None
    big = font_set(round(f.size * scale))
    small = font_set(round((f.size - 1) * scale))
    title = font_set(round((f.size + 2) * scale))
    s = scale
    image = Image.new("RGB", (math.ceil(lay.width * s), math.ceil(lay.height * s)), "white")
    draw = ImageDraw.Draw(image)
    draw.text((24 * s, 30 * s), f.clean(lay.title), font=title.bold, fill=(32, 33, 36), anchor="ls")
    width = max(1, round(1.4 * s))
    for route in lay.routes:
        pts = [(x * s, y * s) for x, y in _polyline(route)]
        if route.edge.dashed:
            _dashed(draw, pts, width, s)
        else:
            draw.line(pts, fill=EDGE, width=width, joint="curve")
        _arrowhead(draw, pts, s)
    for box in lay.boxes.values():
        _box(draw, box, lay, s, (big.regular, big.bold))
    for route in lay.routes:
        lab = route.label
        if lab is None:
            continue
        rect = [
            (lab.x - lab.w / 2) * s,
            (lab.y - lab.h / 2) * s,
            (lab.x + lab.w / 2) * s,
            (lab.y + lab.h / 2) * s,
        ]
        draw.rounded_rectangle(rect, radius=3 * s, fill="white", outline=(218, 220, 224))
        top = lab.y - (len(lab.lines) * f.size + (len(lab.lines) - 1) * 4) / 2
        for i, line in enumerate(lab.lines):
            draw.text(
                (lab.x * s, (top + i * (f.size + 4) + f.size / 2) * s),
                f.clean(line),
                font=small.regular,
                fill=(60, 64, 67),
                anchor="mm",
            )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def render_png(plan: Plan, scale: float = 2.0) -> bytes:
    """PNG bytes of a picture of ``plan``."""
    return layout_to_png(layout(journey_graph(plan)), scale)
