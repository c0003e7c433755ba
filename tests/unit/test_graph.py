"""Journey diagrams: Mermaid text and the layered layout behind SVG/PNG."""

from __future__ import annotations

import io
import itertools
import math
from pathlib import Path

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


LONG = """\
journey: order-anniversary-with-a-rather-long-identifier
name: Order anniversary thank-you for customers who have been with us for a long while
trigger:
  event: order.placed
  when: "(customer.lifetime_value or 0) >= 300 and customer.orders_count > 2 and customer.vip"
steps:
  - id: check_value_of_the_customer_before_anything_else
    branch:
      - when: "(customer.lifetime_value or 0) >= 300 and (customer.x | days_since(now)) < 30"
        goto: vip
      - when: "customer.stage == 'loyalty' and customer.y != '%%{init: x}%% #1 | <b>'"
        goto: loyal
      - goto: end
  - {id: vip, send: {template: vip_coupon}}
  - id: again
    wait_for: {event: order.placed, within: 7d, when: "event.data.total > 100 and event.data.c"}
    on_event: vip
    on_timeout: loyal
  - id: loyal
    update: {stage: loyalty, set: {a_very_long_attribute_name_number_one: 1, another_one: 2}}
  - id: bye
    exit: the customer was thanked for being a long-time customer with a coupon or a kind word
"""


def _texts(plan: Plan) -> list[str]:
    graph = journey_graph(plan)
    found = [line for node in graph.nodes for line in node.lines]
    return found + [line for e in graph.edges for line in e.label.split("\n") if line]


def test_long_text_is_wrapped_never_cut() -> None:
    plan = load_journey_text(LONG)
    words = " ".join(_texts(plan)).split()
    for text in (plan.trigger.when, plan.steps[0].cases[0].when, plan.steps[-1].reason):
        assert " ".join(text.split()) in " ".join(words)
    assert not any("…" in line for line in _texts(plan))
    assert max(len(line) for line in _texts(plan) if " " in line) <= 45


def test_every_text_is_in_the_svg_and_everything_is_inside_the_canvas() -> None:
    from xml.etree import ElementTree

    from journeys.spec.graph.fonts import fonts

    plan = load_journey_text(LONG)
    svg = render_svg(plan)
    root = ElementTree.fromstring(svg)
    drawn = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert journey_graph(plan).title in drawn
    for line in _texts(plan):
        assert line in drawn, line
    lay = layout(journey_graph(plan))
    title_width = fonts(lay.fonts.size + 2).width(lay.title, bold=True)  # type: ignore[union-attr]
    assert 24 + title_width <= lay.width
    labels = [r.label for r in lay.routes if r.label]
    rects = [(b.x, b.y, b.w, b.h) for b in lay.boxes.values()]
    rects += [(lab.x, lab.y, lab.w, lab.h) for lab in labels]
    for x, y, w, h in rects:
        assert x - w / 2 >= 0 and x + w / 2 <= lay.width and y - h / 2 >= 0
        assert y + h / 2 <= lay.height
    for r in lay.routes:
        assert all(0 <= x <= lay.width and 0 <= y <= lay.height for x, y in r.points)
    for a, b in itertools.combinations(labels, 2):
        assert not a.overlaps(b.x, b.y, b.w, b.h), (a.text, b.text)
    for lab in labels:
        for box in lay.boxes.values():
            assert not (
                abs(box.x - lab.x) * 2 < box.w + lab.w and abs(box.y - lab.y) * 2 < box.h + lab.h
            ), (lab.text, box.node.id)


def test_the_png_is_the_layout_at_twice_the_size() -> None:
    from PIL import Image

    plan = load_journey_text(LONG)
    lay = layout(journey_graph(plan))
    image = Image.open(io.BytesIO(render_png(plan)))
    assert (image.width, image.height) == (math.ceil(lay.width * 2), math.ceil(lay.height * 2))


def test_mermaid_escapes_what_mermaid_reads() -> None:
    text = to_mermaid(load_journey_text(LONG))
    assert "%%{" not in text and "#37;#37;{init: x}#37;#37;" in text
    assert "#35;1 #124; #lt;b#gt;" in text
    assert text.count("\n  %% ") == 1  # the title comment, and no other comment line


def test_graph_command_formats(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from journeys.cli import _register, app

    spec = tmp_path / "cart.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    _register()
    run = CliRunner().invoke
    assert run(app, ["graph", str(spec), "--format", "mermaid"]).stdout.startswith("flowchart TD")
    assert run(app, ["graph", str(spec), "--format", "svg"]).stdout.startswith("<svg")
    assert run(app, ["graph", str(spec), "--format", "png"]).exit_code == 2
    readme = tmp_path / "cart.md"
    assert run(app, ["graph", str(spec), "--out", str(readme)]).exit_code == 0
    assert readme.read_text().startswith("```mermaid\nflowchart TD\n")
    picture = tmp_path / "cart.png"
    assert run(app, ["graph", str(spec), "--out", str(picture)]).exit_code == 0
    assert picture.read_bytes().startswith(b"\x89PNG")
    assert run(app, ["graph", str(spec), "--out", str(tmp_path / "x.gif")]).exit_code == 2
