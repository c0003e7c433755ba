"""A small layered layout: rank by longest path from the trigger, order rows, place boxes.

Steps go top to bottom by rank; forward edges spanning several rows pass through invisible
waypoints so they route around boxes; back edges (loops) run up a lane on the right. Edge
labels are placed on their edge where they overlap neither a box nor another label.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from journeys.spec.graph.fonts import FontSet, fonts
from journeys.spec.graph.model import END_ID, TRIGGER_ID, Edge, JourneyGraph, Node

PAD_X, PAD_Y = 14, 9
LINE_GAP = 4
H_GAP = 36
V_GAP = 78
MARGIN = 24
LANE_GAP = 18
LABEL_PAD = 4


@dataclass
class Box:
    """A placed node: centre, size and its text lines."""

    node: Node
    x: float
    y: float
    w: float
    h: float

    @property
    def top(self) -> float:
        """Y of the top edge."""
        return self.y - self.h / 2

    @property
    def bottom(self) -> float:
        """Y of the bottom edge."""
        return self.y + self.h / 2


@dataclass
class Label:
    """A placed edge label (centre and size); ``text`` may hold several lines."""

    text: str
    x: float
    y: float
    w: float
    h: float

    @property
    def lines(self) -> list[str]:
        """The label's lines, top to bottom."""
        return self.text.split("\n")

    def overlaps(self, x: float, y: float, w: float, h: float) -> bool:
        """Whether this label's rectangle meets the given one."""
        return abs(self.x - x) * 2 < self.w + w and abs(self.y - y) * 2 < self.h + h


@dataclass
class Route:
    """A placed edge: its points (curved between consecutive points when drawn)."""

    edge: Edge
    points: list[tuple[float, float]]
    back: bool = False
    label: Label | None = None


@dataclass
class Layout:
    """Everything a renderer needs."""

    title: str
    width: float
    height: float
    boxes: dict[str, Box] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    fonts: FontSet | None = None


def _size(node: Node, f: FontSet) -> tuple[float, float]:
    widths = [f.width(line, bold=i == 0) for i, line in enumerate(node.lines)]
    text_w = max(widths) if widths else 10
    text_h = len(node.lines) * f.size + (len(node.lines) - 1) * LINE_GAP
    if node.shape == "diamond":
        return text_w * 2 + 24, text_h * 2 + 20
    if node.shape == "end":
        d = max(text_w, text_h) + 2 * PAD_Y + 6
        return d, d
    return text_w + 2 * PAD_X, text_h + 2 * PAD_Y


def _back_edges(graph: JourneyGraph) -> set[tuple[str, str]]:
    """Edges to an ancestor on the depth-first path from the trigger, in step order."""
    out: dict[str, list[str]] = {n.id: [] for n in graph.nodes}
    for e in graph.edges:
        out[e.source].append(e.target)
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}
    roots = [TRIGGER_ID] + [n.id for n in graph.nodes]
    for root in roots:
        if root in state:
            continue
        stack = [(root, iter(out[root]))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(out[nxt])))
    return back


def _ranks(graph: JourneyGraph, back: set[tuple[str, str]]) -> dict[str, int]:
    forward = [e for e in graph.edges if (e.source, e.target) not in back]
    rank = {n.id: 0 for n in graph.nodes}
    for _ in range(len(graph.nodes)):  # longest path by relaxation (the graph is a DAG)
        changed = False
        for e in forward:
            if rank[e.target] < rank[e.source] + 1:
                rank[e.target] = rank[e.source] + 1
                changed = True
        if not changed:
            break
    if END_ID in rank:
        rank[END_ID] = max(rank.values()) if len(rank) > 1 else 1
        if any(rank[n] == rank[END_ID] and n != END_ID for n in rank):
            rank[END_ID] += 1
    return rank


def layout(graph: JourneyGraph, font_size: int = 14) -> Layout:
    """Place ``graph``'s nodes and route its edges."""
    f = fonts(font_size)
    back = _back_edges(graph)
    rank = _ranks(graph, back)
    sizes = {n.id: _size(n, f) for n in graph.nodes}
    chains, dummy_rank = _waypoints(graph, back, rank, sizes)
    all_rank = {**rank, **dummy_rank}
    rows: dict[int, list[str]] = {}
    order_hint = {n.id: i for i, n in enumerate(graph.nodes)}
    for nid, r in sorted(all_rank.items(), key=lambda kv: _hint(kv[0], order_hint)):
        rows.setdefault(r, []).append(nid)
    up, down = _adjacency(graph, back, chains, all_rank)
    ranks = sorted(rows)
    _order_rows(rows, ranks, up, down)
    x = _x_positions(rows, ranks, up, down, sizes)
    y = _y_positions(graph, back, rank, rows, ranks, sizes, f)
    min_x = min(x[n] - sizes[n][0] / 2 for n in x)
    for n in x:
        x[n] += MARGIN - min_x
    out = Layout(title=graph.title, width=0, height=0, fonts=f)
    for node in graph.nodes:
        w, h = sizes[node.id]
        out.boxes[node.id] = Box(node, x[node.id], y[node.id], w, h)
    _route_edges(out, graph, back, [[(x[d], y[d]) for d in chains[i]] for i in chains])
    _spread_ports(out)
    _place_labels(out, f)
    _fit(out, fonts(font_size + 2).width(graph.title, bold=True))
    return out


def _waypoints(
    graph: JourneyGraph,
    back: set[tuple[str, str]],
    rank: dict[str, int],
    sizes: dict[str, tuple[float, float]],
) -> tuple[dict[int, list[str]], dict[str, int]]:
    """Invisible waypoints, one per row crossed, for each forward edge spanning several rows:
    the waypoints of each edge (by index; none for back edges) and the row of each one. Their
    sizes are added to ``sizes``."""
    chains: dict[int, list[str]] = {}
    dummy_rank: dict[str, int] = {}
    for i, e in enumerate(graph.edges):
        if (e.source, e.target) in back:
            continue
        span = rank[e.target] - rank[e.source]
        chain = []
        for r in range(rank[e.source] + 1, rank[e.target]):
            d = f"~{i}~{r}"
            dummy_rank[d] = r
            sizes[d] = (10.0, 10.0)
            chain.append(d)
        chains[i] = chain if span > 1 else []
    return chains, dummy_rank


def _adjacency(
    graph: JourneyGraph,
    back: set[tuple[str, str]],
    chains: dict[int, list[str]],
    all_rank: dict[str, int],
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The neighbours of each node (or waypoint) in the row above and in the row below."""
    up: dict[str, list[str]] = {n: [] for n in all_rank}
    down: dict[str, list[str]] = {n: [] for n in all_rank}
    for i, e in enumerate(graph.edges):
        if (e.source, e.target) in back:
            continue
        path = [e.source, *chains[i], e.target]
        for a, b in itertools.pairwise(path):
            down[a].append(b)
            up[b].append(a)
    return up, down


def _order_rows(
    rows: dict[int, list[str]],
    ranks: list[int],
    up: dict[str, list[str]],
    down: dict[str, list[str]],
) -> None:
    """Order each row by the mean position of its neighbours (barycenter), a few sweeps."""
    pos: dict[str, float] = {}
    for r in ranks:
        for j, n in enumerate(rows[r]):
            pos[n] = j
    for _ in range(4):
        for r in ranks[1:]:
            _reorder(rows[r], up, pos)
        for r in reversed(ranks[:-1]):
            _reorder(rows[r], down, pos)


def _x_positions(
    rows: dict[int, list[str]],
    ranks: list[int],
    up: dict[str, list[str]],
    down: dict[str, list[str]],
    sizes: dict[str, tuple[float, float]],
) -> dict[str, float]:
    """Centre x of every node: rows centred on 0, then nodes pulled toward their neighbours."""
    x: dict[str, float] = {}
    for r in ranks:
        cursor = 0.0
        for n in rows[r]:
            w = sizes[n][0]
            x[n] = cursor + w / 2
            cursor += w + H_GAP
        shift = cursor / 2
        for n in rows[r]:
            x[n] -= shift
    for _ in range(6):
        for r in ranks[1:]:
            _place(rows[r], up, x, sizes)
        for r in reversed(ranks[:-1]):
            _place(rows[r], down, x, sizes)
    return x


def _y_positions(
    graph: JourneyGraph,
    back: set[tuple[str, str]],
    rank: dict[str, int],
    rows: dict[int, list[str]],
    ranks: list[int],
    sizes: dict[str, tuple[float, float]],
    f: FontSet,
) -> dict[str, float]:
    """Centre y of every node: the gap below a row leaves room for the labels of the arrows
    leaving it."""
    labels_below: dict[int, float] = {}
    for e in graph.edges:
        if e.label and (e.source, e.target) not in back:
            r = rank[e.source]
            labels_below[r] = labels_below.get(r, 0.0) + label_size(e.label, f)[1] + LABEL_PAD
    y: dict[str, float] = {}
    cursor = float(MARGIN + 24)  # room for the title
    for r in ranks:
        height = max(sizes[n][1] for n in rows[r])
        for n in rows[r]:
            y[n] = cursor + height / 2
        cursor += height + max(V_GAP, labels_below.get(r, 0.0) + 2 * LABEL_PAD + 24)
    return y


def _route_edges(
    out: Layout,
    graph: JourneyGraph,
    back: set[tuple[str, str]],
    waypoints: list[list[tuple[float, float]]],
) -> None:
    """A route per edge: forward edges down through their waypoints, back edges up a lane of
    their own right of everything."""
    lane = max(b.x + b.w / 2 for b in out.boxes.values())
    forward = iter(waypoints)
    for e in graph.edges:
        src, dst = out.boxes[e.source], out.boxes[e.target]
        if (e.source, e.target) in back:
            lane += LANE_GAP
            pts = [
                (src.x + src.w / 2, src.y),
                (lane, src.y),
                (lane, dst.y),
                (dst.x + dst.w / 2, dst.y),
            ]
            out.routes.append(Route(e, pts, back=True))
            continue
        mids = next(forward)
        out.routes.append(Route(e, [(src.x, src.bottom), *mids, (dst.x, dst.top)]))


def _fit(out: Layout, title_width: float) -> None:
    """Move everything right of the left margin and size the canvas to hold every box,
    arrow, label and the title whole (nothing drawn may be cut at an edge)."""
    xs: list[float] = []
    ys: list[float] = []
    for b in out.boxes.values():
        xs += [b.x - b.w / 2, b.x + b.w / 2]
        ys += [b.y - b.h / 2, b.y + b.h / 2]
    for r in out.routes:
        xs += [x for x, _ in r.points]
        ys += [y for _, y in r.points]
        if r.label is not None:
            xs += [r.label.x - r.label.w / 2, r.label.x + r.label.w / 2]
            ys += [r.label.y - r.label.h / 2, r.label.y + r.label.h / 2]
    shift = MARGIN - min(xs)
    for b in out.boxes.values():
        b.x += shift
    for r in out.routes:
        r.points = [(x + shift, y) for x, y in r.points]
        if r.label is not None:
            r.label.x += shift
    out.width = max(max(xs) + shift, MARGIN + title_width) + MARGIN
    out.height = max(ys) + MARGIN


def _hint(nid: str, order: dict[str, int]) -> tuple[float, str]:
    if nid.startswith("~"):
        _, edge, _r = nid.split("~")
        return (float(edge) + 0.5, nid)
    return (float(order.get(nid, 0)), nid)


def _reorder(row: list[str], nbrs: dict[str, list[str]], pos: dict[str, float]) -> None:
    def key(n: str) -> float:
        ps = [pos[m] for m in nbrs[n]]
        return sum(ps) / len(ps) if ps else pos[n]

    row.sort(key=key)
    for j, n in enumerate(row):
        pos[n] = j


def _place(
    row: list[str],
    nbrs: dict[str, list[str]],
    x: dict[str, float],
    sizes: dict[str, tuple[float, float]],
) -> None:
    """Move each node toward the mean x of its neighbours, keeping order and spacing."""
    want = {n: (sum(x[m] for m in nbrs[n]) / len(nbrs[n]) if nbrs[n] else x[n]) for n in row}
    left: dict[str, float] = {}
    edge = -1e9
    for n in row:
        half = sizes[n][0] / 2
        left[n] = max(want[n], edge + half)
        edge = left[n] + half + H_GAP
    right: dict[str, float] = {}
    edge = 1e9
    for n in reversed(row):
        half = sizes[n][0] / 2
        right[n] = min(want[n], edge - half)
        edge = right[n] - half - H_GAP
    for n in row:
        x[n] = (left[n] + right[n]) / 2
    # Averaging can reintroduce overlaps; a final push to the right removes them.
    edge = -1e9
    for n in row:
        half = sizes[n][0] / 2
        x[n] = max(x[n], edge + half)
        edge = x[n] + half + H_GAP


def _spread_ports(out: Layout) -> None:
    """Spread the ends of several arrows leaving (or entering) one box along its side."""
    leaving: dict[str, list[Route]] = {}
    entering: dict[str, list[Route]] = {}
    for r in out.routes:
        if not r.back:
            leaving.setdefault(r.edge.source, []).append(r)
            entering.setdefault(r.edge.target, []).append(r)
    for nid, routes in leaving.items():
        box = out.boxes[nid]
        routes.sort(key=lambda r: r.points[1][0])
        for k, r in enumerate(routes):
            dx = _offset(k, len(routes), box.w * (0.55 if box.node.shape == "diamond" else 0.7))
            px = box.x + dx
            py = box.bottom
            if box.node.shape == "diamond":
                py = box.y + box.h / 2 * (1 - abs(dx) / (box.w / 2))
            r.points[0] = (px, py)
    for nid, routes in entering.items():
        box = out.boxes[nid]
        routes.sort(key=lambda r: r.points[-2][0])
        for k, r in enumerate(routes):
            dx = _offset(k, len(routes), box.w * (0.3 if box.node.shape == "diamond" else 0.6))
            py = box.top
            if box.node.shape == "diamond":
                py = box.y - box.h / 2 * (1 - abs(dx) / (box.w / 2))
            elif box.node.shape == "end":
                radius = box.w / 2
                dx = _offset(k, len(routes), radius)
                py = box.y - (radius * radius - dx * dx) ** 0.5
            r.points[-1] = (box.x + dx, py)


def _offset(k: int, n: int, span: float) -> float:
    if n <= 1:
        return 0.0
    return -span / 2 + span * k / (n - 1)


def point_on(route: Route, t: float) -> tuple[float, float]:
    """A point at fraction ``t`` of the first segment of ``route`` (as drawn)."""
    (x0, y0), (x1, y1) = route.points[0], route.points[1]
    if route.back:
        (x0, y0), (x1, y1) = route.points[1], route.points[2]
        return x0, y0 + (y1 - y0) * t
    return bezier(x0, y0, x1, y1, t)


def bezier(x0: float, y0: float, x1: float, y1: float, t: float) -> tuple[float, float]:
    """The vertical S-curve from (x0, y0) to (x1, y1) that renderers draw, at ``t``."""
    ym = (y0 + y1) / 2
    c = [(x0, y0), (x0, ym), (x1, ym), (x1, y1)]
    u = 1 - t
    bx = u**3 * c[0][0] + 3 * u * u * t * c[1][0] + 3 * u * t * t * c[2][0] + t**3 * c[3][0]
    by = u**3 * c[0][1] + 3 * u * u * t * c[1][1] + 3 * u * t * t * c[2][1] + t**3 * c[3][1]
    return bx, by


def label_size(text: str, f: FontSet) -> tuple[float, float]:
    """Width and height of an edge label of one or more lines."""
    lines = text.split("\n")
    w = max(f.width(line) for line in lines) + 2 * LABEL_PAD
    h = len(lines) * f.size + (len(lines) - 1) * LINE_GAP + 2 * LABEL_PAD
    return w, h


def _place_labels(out: Layout, f: FontSet) -> None:
    """Put each label where it meets no box and no other label."""
    placed: list[Label] = []
    for route in out.routes:
        text = route.edge.label
        if not text:
            continue
        w, h = label_size(text, f)
        best: tuple[float, Label] | None = None
        for t in (0.5, 0.38, 0.62, 0.28, 0.72, 0.2, 0.8):
            cx, cy = point_on(route, t)
            if route.back:
                cx += w / 2 + 4
            cost = sum(1 for lab in placed if lab.overlaps(cx, cy, w, h))
            cost += sum(
                1
                for b in out.boxes.values()
                if abs(b.x - cx) * 2 < b.w + w and abs(b.y - cy) * 2 < b.h + h
            )
            if best is None or cost < best[0]:
                best = (cost, Label(text, cx, cy, w, h))
            if cost == 0:
                break
        assert best is not None
        route.label = best[1]
        placed.append(best[1])
