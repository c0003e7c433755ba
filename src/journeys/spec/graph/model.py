"""A journey as a drawable graph: labelled nodes and edges built from a :class:`Plan`."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Literal

from journeys.durations import format_duration, format_time_of_day
from journeys.plan import (
    END,
    BranchStep,
    DateTrigger,
    EmitStep,
    EventTrigger,
    ExitStep,
    GotoStep,
    NotifyStep,
    Plan,
    ScheduleTrigger,
    SendStep,
    SplitStep,
    StageTrigger,
    Step,
    SurveyStep,
    UpdateStep,
    WaitForStep,
    WaitStep,
)

Shape = Literal["trigger", "box", "wait", "diamond", "exit", "end"]
TRIGGER_ID = "__trigger__"
END_ID = "__end__"
MAX_LABEL = 38


def wrap(text: str, limit: int = MAX_LABEL) -> list[str]:
    """``text`` in lines of at most about ``limit`` characters: never cut, only wrapped
    (a long condition is shown in full)."""
    lines = textwrap.wrap(
        " ".join(text.split()), width=limit, break_long_words=True, break_on_hyphens=False
    )
    return lines or [""]


@dataclass(frozen=True)
class Node:
    """A box of the diagram; the first line is the title (a step id or ``trigger``)."""

    id: str
    lines: tuple[str, ...]
    shape: Shape


@dataclass(frozen=True)
class Edge:
    """An arrow; ``dashed`` for timeouts and fallthroughs."""

    source: str
    target: str
    label: str = ""
    dashed: bool = False


@dataclass
class JourneyGraph:
    """Nodes (trigger, steps in order, end) and edges of one journey."""

    title: str
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def node(self, node_id: str) -> Node:
        """The node with ``node_id``."""
        return next(n for n in self.nodes if n.id == node_id)


def trigger_lines(plan: Plan) -> tuple[str, ...]:
    """Describe the trigger: ``event cart.updated`` and its condition."""
    t = plan.trigger
    if isinstance(t, EventTrigger):
        lines = [f"on {t.event}", *(wrap(f"if {t.when}") if t.when else [])]
    elif isinstance(t, DateTrigger):
        offset = ""
        if t.offset_seconds:
            sign = "-" if t.offset_seconds < 0 else "+"
            offset = f" {sign}{format_duration(abs(t.offset_seconds))}"
        lines = [f"yearly on {t.field}{offset}", f"at {format_time_of_day(t.at_minutes)}"]
    elif isinstance(t, ScheduleTrigger):
        lines = [f"cron {t.cron}", *(wrap(f"if {t.segment}") if t.segment else [])]
    else:
        assert isinstance(t, StageTrigger)
        lines = [f"enters stage {t.stage}"]
    return ("trigger", *lines)


def step_lines(step: Step) -> tuple[tuple[str, ...], Shape]:
    """Describe a step: its id, what it does, and its shape."""
    if isinstance(step, WaitStep):
        what = (
            f"wait {format_duration(step.seconds)}"
            if step.seconds
            else f"wait until {format_time_of_day(step.until_minutes or 0)}"
        )
        return (step.id, what), "wait"
    if isinstance(step, WaitForStep):
        lines = [step.id, f"wait for {step.event} ≤ {format_duration(step.within_seconds)}"]
        if step.when:
            lines.extend(wrap(f"if {step.when}"))
        return tuple(lines), "wait"
    if isinstance(step, BranchStep):
        return (step.id, "branch"), "diamond"
    if isinstance(step, SplitStep):
        return (step.id, "split"), "diamond"
    if isinstance(step, SendStep):
        via = "" if step.channel == "email" else f" ({step.channel})"
        return (step.id, f"send {step.template}{via}"), "box"
    if isinstance(step, SurveyStep):
        within = format_duration(step.within_seconds)
        return (step.id, f"survey {step.survey.upper()} {step.template} ≤ {within}"), "wait"
    if isinstance(step, NotifyStep):
        return (step.id, f"notify {step.to}: {step.template}"), "box"
    if isinstance(step, EmitStep):
        return (step.id, f"emit {step.event}"), "box"
    if isinstance(step, UpdateStep):
        lines = [step.id]
        if step.stage:
            lines.append(f"stage → {step.stage}")
        if step.set:
            lines.extend(wrap("set " + ", ".join(step.set)))
        return tuple(lines), "box"
    if isinstance(step, ExitStep):
        return (step.id, *wrap(f"exit: {step.reason}")), "exit"
    if isinstance(step, GotoStep):
        return (step.id, "goto"), "box"
    return (step.id, step.kind), "box"  # pragma: no cover - every kind is listed above


def step_edges(step: Step) -> list[Edge]:
    """The labelled arrows leaving ``step`` (targets are step ids or ``end``)."""
    edges: list[Edge] = []
    if isinstance(step, WaitForStep):
        timeout = f"timeout {format_duration(step.within_seconds)}"
        if step.on_event == step.on_timeout:
            edges.append(Edge(step.id, step.on_event, f"{step.event} or {timeout}"))
        else:
            edges.append(Edge(step.id, step.on_event, step.event))
            edges.append(Edge(step.id, step.on_timeout, timeout, dashed=True))
    elif isinstance(step, SurveyStep):
        timeout = f"timeout {format_duration(step.within_seconds)}"
        if step.on_answer == step.on_timeout:
            edges.append(Edge(step.id, step.on_answer, f"answered or {timeout}"))
        else:
            edges.append(Edge(step.id, step.on_answer, "answered"))
            edges.append(Edge(step.id, step.on_timeout, timeout, dashed=True))
    elif isinstance(step, BranchStep):
        for case in step.cases:
            label = "\n".join(wrap(case.when)) if case.when else "else"
            edges.append(Edge(step.id, case.goto, label, dashed=case.when is None))
        if all(c.when is not None for c in step.cases):
            edges.append(Edge(step.id, step.next, "otherwise", dashed=True))
    elif isinstance(step, SplitStep):
        for v in step.variants:
            edges.append(Edge(step.id, v.goto, f"{v.variant} {v.weight}%"))
    elif not isinstance(step, ExitStep):
        edges.append(Edge(step.id, step.next))
    return edges


def _merge(edges: list[Edge]) -> list[Edge]:
    """One arrow per (source, target), labels joined with ``/``."""
    merged: dict[tuple[str, str], Edge] = {}
    for e in edges:
        key = (e.source, e.target)
        if key in merged:
            old = merged[key]
            label = " / ".join(x for x in (old.label, e.label) if x)
            merged[key] = Edge(e.source, e.target, label, old.dashed and e.dashed)
        else:
            merged[key] = e
    return list(merged.values())


def journey_graph(plan: Plan) -> JourneyGraph:
    """The drawable graph of ``plan`` (unknown targets are drawn as missing nodes)."""
    graph = JourneyGraph(title=f"{plan.name} ({plan.journey})")
    graph.nodes.append(Node(TRIGGER_ID, trigger_lines(plan), "trigger"))
    ids = {s.id for s in plan.steps}
    edges = [Edge(TRIGGER_ID, plan.start)]
    for step in plan.steps:
        lines, shape = step_lines(step)
        graph.nodes.append(Node(step.id, lines, shape))
        edges.extend(step_edges(step))
    missing: list[str] = []
    for i, e in enumerate(edges):
        if e.target == END:
            edges[i] = Edge(e.source, END_ID, e.label, e.dashed)
        elif e.target not in ids and e.target not in missing:
            missing.append(e.target)
    for target in missing:
        graph.nodes.append(Node(target, (target, "missing step!"), "exit"))
    if any(e.target == END_ID for e in edges):
        graph.nodes.append(Node(END_ID, ("end",), "end"))
    graph.edges = _merge(edges)
    return graph
