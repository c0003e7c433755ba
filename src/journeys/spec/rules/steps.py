"""Rules about steps and the step graph: ids, targets, reachability, loops, splits, branches."""

from __future__ import annotations

from collections.abc import Iterator

from journeys.plan import END, Plan, SurveyStep, WaitForStep, WaitStep
from journeys.spec.context import JourneyContext
from journeys.spec.diagnostics import Diagnostic, did_you_mean, quote, valid_list
from journeys.spec.rules.registry import journey_rule
from journeys.spec.yamlpos import Path_

WAITING_STEPS = (WaitStep, WaitForStep, SurveyStep)
"""Steps that give control back to time; a loop needs one of them."""

_TARGET_KEYS = ("goto", "on_event", "on_timeout", "on_answer")


@journey_rule
def duplicate_step_ids(ctx: JourneyContext) -> Iterator[Diagnostic]:
    """Every step id is used once."""
    first: dict[str, int] = {}
    for i, raw in ctx.steps_raw():
        sid = raw.get("id")
        if not isinstance(sid, str):
            continue
        if sid in first:
            line, _ = ctx.doc.pos(("steps", first[sid], "id"))
            msg = f"duplicate step id {quote(sid)} (first used at line {line}); ids must be unique"
            yield ctx.at(("steps", i, "id"), msg, "duplicate-step-id")
        else:
            first[sid] = i


def target_sites(ctx: JourneyContext) -> Iterator[tuple[Path_, str, str]]:
    """``(loc, key, target)`` of every jump: goto, on_*, branch and split gotos."""
    for i, raw in ctx.steps_raw():
        for key in _TARGET_KEYS:
            if isinstance(raw.get(key), str):
                yield ("steps", i, key), key, raw[key]
        for kind in ("branch", "split"):
            arms = raw.get(kind)
            if isinstance(arms, list):
                for j, arm in enumerate(arms):
                    if isinstance(arm, dict) and isinstance(arm.get("goto"), str):
                        yield ("steps", i, kind, j, "goto"), "goto", arm["goto"]


@journey_rule
def unknown_targets(ctx: JourneyContext) -> Iterator[Diagnostic]:
    """Every goto / on_* target is a step id or ``end``."""
    ids = list(dict.fromkeys(ctx.parsed.step_ids()))
    choices = [*ids, END]
    for loc, key, target in target_sites(ctx):
        if target not in choices:
            msg = f"{key} {quote(target)} is not a step" + did_you_mean(target, choices)
            yield ctx.at(loc, msg + valid_list(choices, "steps"), "unknown-goto")


def _index(ctx: JourneyContext) -> dict[str, int]:
    index: dict[str, int] = {}
    for entry in ctx.parsed.steps:
        if entry.id is not None:
            index.setdefault(entry.id, entry.index)
    return index


@journey_rule
def unreachable_steps(ctx: JourneyContext) -> Iterator[Diagnostic]:
    """Every step can be reached from the first step."""
    plan = ctx.plan
    if plan is None or not plan.steps:
        return
    known = {s.id for s in plan.steps} | {END}
    if any(t not in known for s in plan.steps for t in s.targets()):
        return  # an unknown target is reported already; reachability would only echo it
    seen = _reachable(plan)
    index = _index(ctx)
    for step in plan.steps:
        if step.id not in seen and step.id in index:
            msg = (
                f"step {quote(step.id)} can never run: no step leads to it"
                f" (the step before it jumps elsewhere); add a goto {quote(step.id)} or remove it"
            )
            yield ctx.at(("steps", index[step.id], "id"), msg, "unreachable-step")


def _reachable(plan: Plan) -> set[str]:
    seen: set[str] = set()
    todo = [plan.start]
    while todo:
        sid = todo.pop()
        if sid in seen or not plan.has_step(sid):
            continue
        seen.add(sid)
        todo.extend(plan.step(sid).targets())
    return seen


@journey_rule
def loops_without_wait(ctx: JourneyContext) -> Iterator[Diagnostic]:
    """Every cycle of steps contains a wait, wait_for or survey step.

    Checked on the compiled plan, or, when other parts of the journey have errors, on the
    steps as written (a step whose type cannot be told is taken as one that may wait).
    """
    graph = plan_graph(ctx.plan) if ctx.plan is not None else written_graph(ctx)
    index = _index(ctx)
    for cycle in find_busy_loops(*graph):
        path = " → ".join(quote(s) for s in [*cycle, cycle[0]])
        msg = (
            f"steps {path} form a loop with no wait in it, so an enrollment would spin forever;"
            " add a wait, wait_for or survey step to the loop"
        )
        yield ctx.at(("steps", index.get(cycle[0], 0), "id"), msg, "loop-without-wait")


StepGraph = tuple[list[str], set[str], dict[str, list[str]]]
"""Step ids in order, the ids of steps that never wait, and each step's targets."""

_WAITING_KINDS = ("wait", "wait_for", "survey")


def plan_graph(plan: Plan) -> StepGraph:
    """The step graph of a compiled plan."""
    busy = {s.id for s in plan.steps if not isinstance(s, WAITING_STEPS)}
    return [s.id for s in plan.steps], busy, {s.id: list(s.targets()) for s in plan.steps}


def written_graph(ctx: JourneyContext) -> StepGraph:
    """The step graph as written, for a journey that does not compile: each step with a text
    id and a known type, with the targets the compiler would give it."""
    entries = ctx.parsed.steps
    order: list[str] = []
    busy: set[str] = set()
    targets: dict[str, list[str]] = {}
    for n, entry in enumerate(entries):
        raw = entry.raw
        if entry.id is None or entry.id in targets or not isinstance(raw, dict):
            continue
        following = entries[n + 1].id if n + 1 < len(entries) else END
        nxt = raw["goto"] if isinstance(raw.get("goto"), str) else following
        order.append(entry.id)
        targets[entry.id] = [t for t in _written_targets(entry.kind, raw, nxt) if t is not None]
        # A "goto" step with other keys may be a misspelled wait: it is not known to be busy.
        plain = entry.kind != "goto" or set(raw) <= {"id", "goto"}
        if entry.kind is not None and entry.kind not in _WAITING_KINDS and plain:
            busy.add(entry.id)
    return order, busy, targets


def _written_targets(kind: str | None, raw: dict[str, object], nxt: str | None) -> list[str | None]:
    arms = raw.get(kind) if kind in ("branch", "split") else None
    if isinstance(arms, list):
        arms = [a for a in arms if isinstance(a, dict)]
        gotos: list[str | None] = [a["goto"] for a in arms if isinstance(a.get("goto"), str)]
        has_else = kind == "split" or any(a.get("when") is None for a in arms)
        return gotos if has_else else [*gotos, nxt]
    if kind == "exit":
        return []
    return [nxt]


def find_busy_loops(
    order_ids: list[str], busy: set[str], targets: dict[str, list[str]]
) -> list[list[str]]:
    """One cycle (as step ids, first in step order) per strongly connected set of ``busy``
    steps (steps that never wait)."""
    order = {sid: i for i, sid in enumerate(order_ids)}
    graph = {sid: [t for t in targets[sid] if t in busy and t != END] for sid in sorted(busy)}
    loops: list[list[str]] = []
    for component in _strongly_connected(graph):
        start = min(component, key=order.__getitem__)
        if len(component) == 1 and start not in graph[start]:
            continue
        loops.append(_cycle_through(graph, start, set(component)))
    return sorted(loops, key=lambda c: order[c[0]])


def _strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit on long journeys)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            recurse = False
            for j in range(i, len(graph[node])):
                nxt = graph[node][j]
                if nxt not in index:
                    work.append((node, j + 1))
                    work.append((nxt, 0))
                    recurse = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if recurse:
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                result.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return result


def _cycle_through(graph: dict[str, list[str]], start: str, members: set[str]) -> list[str]:
    """A shortest cycle from ``start`` back to itself inside ``members`` (BFS)."""
    parents: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in graph[node]:
            if nxt not in members:
                continue
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                return list(reversed(path))
            if nxt not in parents:
                parents[nxt] = node
                queue.append(nxt)
    return [start]  # pragma: no cover - a component always has a cycle


@journey_rule
def split_weights(ctx: JourneyContext) -> Iterator[Diagnostic]:
    """Split weights add up to 100 and variant names are unique."""
    for i, raw in ctx.steps_raw():
        arms = raw.get("split")
        if not isinstance(arms, list):
            continue
        weights: list[tuple[str, int]] = []
        seen: set[str] = set()
        for j, arm in enumerate(arms):
            if not isinstance(arm, dict):
                continue
            name, weight = arm.get("variant"), arm.get("weight")
            if isinstance(name, str):
                if name in seen:
                    msg = f"variant {quote(name)} appears twice in this split; name each one once"
                    yield ctx.at(("steps", i, "split", j, "variant"), msg, "duplicate-variant")
                seen.add(name)
            if isinstance(weight, int) and not isinstance(weight, bool):
                weights.append((str(name), weight))
        if not weights or len(weights) != len(arms):
            continue  # malformed arms are reported by the structure check
        total = sum(w for _, w in weights)
        if total != 100:
            parts = " + ".join(f"{n} {w}" for n, w in weights)
            msg = f"split weights add up to {total}, not 100 ({parts}); adjust them to total 100"
            yield ctx.at(("steps", i, "split"), msg, "split-weights")


@journey_rule
def branch_else_last(ctx: JourneyContext) -> Iterator[Diagnostic]:
    """A branch case without ``when`` (the else) is the last case."""
    for i, raw in ctx.steps_raw():
        cases = raw.get("branch")
        if not isinstance(cases, list):
            continue
        else_at = None
        for j, case in enumerate(cases):
            if not isinstance(case, dict):
                continue
            if else_at is not None:
                msg = (
                    f"this case comes after the else case (case {else_at + 1}, the one without"
                    " when) so it can never be chosen; move the else case last"
                )
                yield ctx.at(("steps", i, "branch", j), msg, "unreachable-case")
            elif case.get("when") is None:
                else_at = j
