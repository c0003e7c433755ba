"""Journey diagrams: Mermaid text and the layered layout behind SVG/PNG."""

from __future__ import annotations

import io
import itertools

from journeys.plan import Plan
from journeys.spec import load_journey_text
from journeys.spec.graph import journey_graph, layout, render_png, render_svg, to_mermaid

SPEC = """\
journey: cart
name: Cart
trigger: {event: cart.updated, when: "event.data.total >= 20"}
steps:
  - {id: wait_a_day, wait: 24h}
  - {id: remind, send: {template: cart_reminder}}
  - id: bought
    wait_for: {event: order.placed, within: 48h}
    on_event: thanks
    on_timeout: value
  - id: value
    branch:
      - {when: "customer.lifetime_value >= 500", goto: vip}
      - {goto: coupon}
  - {id: vip, send: {template: vip}, goto: end}
  - id: coupon
    split:
      - {variant: a, weight: 45, goto: coupon_a}
      - {variant: b, weight: 45, goto: coupon_b}
      - {variant: control, weight: 10, goto: end}
  - {id: coupon_a, send: {template: a}, goto: end}
  - {id: coupon_b, send: {template: b}, goto: again}
  - {id: again, wait: {until: "09:00"}, goto: remind}
  - {id: thanks, exit: converted}
"""


def plan() -> Plan:
    return load_journey_text(SPEC)


def test_labels() -> None:
    graph = journey_graph(plan())
    lines = {n.id: n.lines for n in graph.nodes}
    assert lines["wait_a_day"] == ("wait_a_day", "wait 24h")
    assert lines["bought"] == ("bought", "wait for order.placed ≤ 48h")
    assert lines["remind"] == ("remind", "send cart_reminder")
    assert lines["again"] == ("again", "wait until 09:00")
    labels = {(e.source, e.target): e.label for e in graph.edges}
    assert labels[("bought", "thanks")] == "order.placed"
    assert labels[("bought", "value")] == "timeout 48h"
    assert labels[("value", "vip")] == "customer.lifetime_value >= 500"
    assert labels[("value", "coupon")] == "else"
    assert labels[("coupon", "__end__")] == "control 10%"


def test_mermaid() -> None:
    text = to_mermaid(plan())
    assert text.startswith("flowchart TD\n")
    assert '-.->|"timeout 48h"|' in text
    assert '{"value<br/>branch"}' in text
    assert '(("end"))' in text
    assert "#gt;=" in text  # no raw > that Mermaid would misread


def test_layout_has_no_overlaps() -> None:
    lay = layout(journey_graph(plan()))
    boxes = list(lay.boxes.values())
    for a, b in itertools.combinations(boxes, 2):
        apart_x = abs(a.x - b.x) * 2 >= a.w + b.w
        apart_y = abs(a.y - b.y) * 2 >= a.h + b.h
        assert apart_x or apart_y, (a.node.id, b.node.id)
    labels = [r.label for r in lay.routes if r.label]
    assert len(labels) == sum(1 for r in lay.routes if r.edge.label)
    for a, b in itertools.combinations(labels, 2):
        assert not a.overlaps(b.x, b.y, b.w, b.h), (a.text, b.text)
    for lab in labels:
        for box in boxes:
            assert not (
                abs(box.x - lab.x) * 2 < box.w + lab.w and abs(box.y - lab.y) * 2 < box.h + lab.h
            )
    for box in boxes:
        assert box.x - box.w / 2 >= 0 and box.x + box.w / 2 <= lay.width
    assert any(r.back for r in lay.routes)  # again → remind goes back up


def test_ranks_follow_the_flow() -> None:
    lay = layout(journey_graph(plan()))
    y = {k: b.y for k, b in lay.boxes.items()}
    assert y["__trigger__"] < y["wait_a_day"] < y["remind"] < y["bought"] < y["value"]
    assert y["__end__"] == max(y.values())


def test_svg_and_png() -> None:
    from xml.etree import ElementTree

    from PIL import Image

    svg = render_svg(plan())
    ElementTree.fromstring(svg)  # well-formed
    assert svg.startswith("<svg") and "marker-end" in svg and "wait for order.placed ≤ 48h" in svg
    image = Image.open(io.BytesIO(render_png(plan())))
    assert image.width > 300 and image.height > 500
