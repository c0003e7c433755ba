"""Steps the store can advance for a whole set of enrollments at once, without Python per row.

A ``wait`` of a fixed duration, a ``goto``, a ``branch`` whose conditions compare customer
fields with constants, an ``update`` that sets literal attributes, an ``exit`` and the final
``end`` decide the same thing for every enrollment at that step, or something a database can
compute with ``CASE``. :func:`set_steps` describes such steps of a plan as :class:`SetStep`
values; :mod:`journeys.store.setbased` turns them into a few ``INSERT … SELECT``/``UPDATE``
statements per step and chunk. Everything else (sends, surveys, splits, stage changes,
templated values, conditions on events or answers) runs through :mod:`journeys.runtime.decide`.

Exactness is the rule: a condition compiles only when SQL gives the same answer as the Jinja
expression would. Comparisons are compiled with a *guard* (the fields they read are present
and of the compared type); enrollments whose customer fails the guard (a missing attribute, a
``None``, a string where a number is compared) are left due for the Python path, which
evaluates them exactly as before, errors included. Nothing here knows SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jinja2 import nodes

from journeys.conditions import Arm, BoolOp, Compare, Cond, InList, Not, Ref, SetStep
from journeys.expressions import ExpressionError, parse_expression
from journeys.plan import (
    END,
    BranchStep,
    ExitStep,
    GotoStep,
    Plan,
    Step,
    UpdateStep,
    WaitStep,
)
from journeys.runtime.context import PROFILE_FIELDS

NUMBER_COLUMNS = frozenset({"orders_count", "lifetime_value"})
"""Customer columns that are numbers and never null."""
TEXT_COLUMNS = frozenset(
    {"id", "email", "phone", "first_name", "last_name", "locale", "timezone", "birthday", "stage"}
)
"""Customer columns that hold text (or null) and read the same in expressions."""

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FLIP = {"lt": "gt", "gt": "lt", "lteq": "gteq", "gteq": "lteq", "eq": "eq", "ne": "ne"}
ORDERINGS = frozenset({"lt", "lteq", "gt", "gteq"})


def _expression(source: str) -> nodes.Node | None:
    """The single expression node of ``source``, or None (a syntax error, not one node)."""
    try:
        template = parse_expression(source)
    except ExpressionError:
        return None
    body = template.body
    if len(body) != 1 or not isinstance(body[0], nodes.Output) or len(body[0].nodes) != 1:
        return None
    return body[0].nodes[0]


def compile_condition(source: str) -> Cond | None:
    """``source`` as a :data:`Cond`, or None when SQL could not give exactly Jinja's answer."""
    node = _expression(source)
    return None if node is None else _cond(node)


def necessary_conditions(source: str) -> tuple[Cond, ...]:
    """Conditions every customer for whom ``source`` is true must meet: the top-level ``and``
    operands of ``source`` that compile (each exact wherever its own guard holds).

    Jinja evaluates ``a and b`` left to right and stops at the first false operand, so a
    customer for whom one operand is false (its guard holding) can never make ``source``
    true: at best an earlier operand raised first, which enrolls nobody either. A store may
    therefore leave such customers out before evaluating ``source`` on the rest.
    """
    top = _expression(source)
    if top is None:
        return ()
    operands: list[nodes.Node] = []
    stack = [top]
    while stack:
        node = stack.pop()
        if isinstance(node, nodes.And):
            stack += [node.right, node.left]
        else:
            operands.append(node)
    found = (_cond(node) for node in operands)
    return tuple(cond for cond in found if cond is not None)


def _cond(node: nodes.Node) -> Cond | None:
    if isinstance(node, nodes.And | nodes.Or):
        left, right = _cond(node.left), _cond(node.right)
        if left is None or right is None:
            return None
        return BoolOp("and" if isinstance(node, nodes.And) else "or", (left, right))
    if isinstance(node, nodes.Not):
        part = _cond(node.node)
        return None if part is None else Not(part)
    if isinstance(node, nodes.Compare) and len(node.ops) == 1:
        return _compare(node.expr, node.ops[0].op, node.ops[0].expr)
    return None


def _compare(left: nodes.Node, op: str, right: nodes.Node) -> Cond | None:
    if op in ("in", "notin"):
        name = _customer_field(left)
        values = _const_list(right)
        if name is None or not values:
            return None
        kinds = {_kind(v) for v in values}
        if len(kinds) != 1 or None in kinds:
            return None
        ref = _ref(name, kinds.pop())  # type: ignore[arg-type]
        return None if ref is None else InList(ref, values, negated=op == "notin")
    if op not in _FLIP:
        return None
    name, value = _customer_field(left), _const(right)
    if name is None:
        name, value, op = _customer_field(right), _const(left), _FLIP[op]
    if name is None or value is None:
        return None
    kind = _kind(value)
    if kind is None or (kind == "string" and op in ORDERINGS):
        # Ordering of text depends on the database's collation; Jinja's is Python's.
        return None
    ref = _ref(name, kind)
    return None if ref is None else Compare(ref, op, value)


def _customer_field(node: nodes.Node) -> str | None:
    """``x`` of ``customer.x`` / ``customer['x']``."""
    if isinstance(node, nodes.Getattr):
        base, name = node.node, node.attr
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        base, name = node.node, node.arg.value
    else:
        return None
    if isinstance(base, nodes.Name) and base.name == "customer" and isinstance(name, str):
        return name if _NAME.match(name) else None
    return None


def _const(node: nodes.Node) -> Any:
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.Neg) and isinstance(node.node, nodes.Const):
        value = node.node.value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return -value
    return None


def _const_list(node: nodes.Node) -> tuple[Any, ...] | None:
    if not isinstance(node, nodes.List | nodes.Tuple):
        return None
    values = tuple(_const(item) for item in node.items)
    return None if any(v is None for v in values) else values


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return None  # True == 1 in Python: leave booleans to Jinja
    if isinstance(value, int | float):
        return "number" if value == value and abs(value) != float("inf") else None
    if isinstance(value, str):
        return "string"
    return None


def _ref(name: str, kind: str) -> Ref | None:
    if name in PROFILE_FIELDS:
        # A profile column shadows an attribute of the same name (context.customer_view).
        ok = name in (NUMBER_COLUMNS if kind == "number" else TEXT_COLUMNS)
        return Ref(name, column=True, kind=kind) if ok else None
    return Ref(name, column=False, kind=kind)


def set_steps(plan: Plan) -> dict[str, SetStep]:
    """The steps of ``plan`` (and its ``end``) that :mod:`journeys.store.setbased` can run."""
    found = {END: _end(plan)}
    for step in plan.steps:
        described = _describe(plan, step)
        if described is not None:
            found[step.id] = described
    return found


def _end(plan: Plan) -> SetStep:
    return SetStep(plan.journey, plan.version, END, (Arm(None, END, "completed"),), complete=True)


def _describe(plan: Plan, step: Step) -> SetStep | None:
    def make(arms: list[Arm], **extra: Any) -> SetStep:
        return SetStep(plan.journey, plan.version, step.id, tuple(arms), **extra)

    if isinstance(step, WaitStep):
        if step.until_minutes is not None:
            return None  # a local time of day: the customer's zone, DST (Python)
        return make([Arm(None, step.next, "waited")], wait=True, add_seconds=int(step.seconds or 0))
    if isinstance(step, GotoStep):
        return make([Arm(None, step.next, f"goto {step.next}")])
    if isinstance(step, ExitStep):
        return make([Arm(None, step.id, f"exit {step.reason}")], exit_reason=step.reason)
    if isinstance(step, UpdateStep):
        if step.stage is not None:
            return None  # stage history and stage.entered events (Python)
        values = tuple(step.set.items())
        if any(isinstance(v, str) and "{{" in v for _, v in values):
            return None  # templated values (Python)
        if not all(_NAME.match(k) for k, _ in values):
            return None
        return make([Arm(None, step.next, "updated")], set_attributes=values)
    if isinstance(step, BranchStep):
        arms: list[Arm] = []
        for index, case in enumerate(step.cases):
            if case.when is None:
                arms.append(Arm(None, case.goto, f"else → {case.goto}"))
                break
            cond = compile_condition(case.when)
            if cond is None:
                return None
            arms.append(Arm(cond, case.goto, f"case {index + 1} → {case.goto}"))
        else:
            arms.append(Arm(None, step.next, f"no case matched → {step.next}"))
        return make(arms)
    return None


def chained(spec: SetStep, steps: Mapping[str, SetStep]) -> dict[str, SetStep]:
    """The arm targets of ``spec`` that a store may run in the same statements as ``spec``
    itself, by target: steps with one unconditional way out (a ``goto``, a literal
    ``update``, a fixed ``wait``, an ``exit``). Each enrollment is then written once for both
    steps instead of once per step.

    Only for steps that change nothing but the enrollment (a ``branch`` or a ``goto``), and
    only targets whose updates leave every field ``spec``'s conditions read alone: the
    target's changes to a customer must not change which arm another enrollment takes.
    """
    if spec.wait or spec.complete or spec.exit_reason is not None or spec.set_attributes:
        return {}
    read = {ref.name for ref in spec.guard}
    found: dict[str, SetStep] = {}
    for arm in spec.arms:
        target = steps.get(arm.target)
        if (
            arm.target == END
            or target is None
            or target.complete
            or len(target.arms) != 1
            or target.arms[0].when is not None
            or read & {name for name, _ in target.set_attributes}
        ):
            continue
        found[arm.target] = target
    return found
