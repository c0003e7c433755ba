"""Mermaid flowchart text of a journey (paste into GitHub Markdown or mermaid.live)."""

from __future__ import annotations

from journeys.plan import Plan
from journeys.spec.graph.model import Node, journey_graph


def _text(text: str) -> str:
    """``text`` inside a quoted Mermaid label: entity codes for the characters Mermaid reads
    (``%`` too: ``%%{…}%%`` anywhere in a diagram is a configuration directive)."""
    escaped = text.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;")
    escaped = escaped.replace(">", "#gt;").replace("|", "#124;").replace("%", "#37;")
    return escaped.replace("\n", "<br/>")


def _node(mid: str, node: Node) -> str:
    label = "<br/>".join(_text(line) for line in node.lines)
    if node.shape == "trigger":
        return f'{mid}(["{label}"])'
    if node.shape == "diamond":
        return f'{mid}{{"{label}"}}'
    if node.shape == "end":
        return f'{mid}(("{label}"))'
    if node.shape == "exit":
        return f'{mid}[/"{label}"\\]'
    if node.shape == "wait":
        return f'{mid}("{label}")'
    return f'{mid}["{label}"]'


def to_mermaid(plan: Plan) -> str:
    """A ``flowchart TD`` of ``plan``: trigger, steps, labelled edges, end."""
    graph = journey_graph(plan)
    ids = {node.id: f"n{i}" for i, node in enumerate(graph.nodes)}
    lines = ["flowchart TD", f"  %% {_text(graph.title)}"]
    lines += [f"  {_node(ids[n.id], n)}" for n in graph.nodes]
    for e in graph.edges:
        arrow = "-.->" if e.dashed else "-->"
        label = f'|"{_text(e.label)}"|' if e.label else ""
        lines.append(f"  {ids[e.source]} {arrow}{label} {ids[e.target]}")
    return "\n".join(lines) + "\n"
