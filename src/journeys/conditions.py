"""Conditions and set-based steps as plain data: what the runtime compiles and the store runs.

:mod:`journeys.runtime.setbased` compiles Jinja conditions and plan steps into these values;
:mod:`journeys.store.setbased` turns them into SQL. Both import this module and neither imports
the other, so the store stays below the runtime. Nothing here knows Jinja or SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Ref:
    """A customer value an expression reads: a profile column, or a free-form attribute."""

    name: str
    column: bool
    kind: str  # "number" | "string": the type the guard requires


@dataclass(frozen=True)
class Compare:
    """``ref <op> value`` with ``op`` one of eq, ne, lt, lteq, gt, gteq."""

    ref: Ref
    op: str
    value: float | int | str


@dataclass(frozen=True)
class InList:
    """``ref in (values)`` (or ``not in`` when ``negated``)."""

    ref: Ref
    values: tuple[float | int | str, ...]
    negated: bool = False


@dataclass(frozen=True)
class BoolOp:
    """``and``/``or`` of conditions."""

    op: str  # "and" | "or"
    parts: tuple[Cond, ...]


@dataclass(frozen=True)
class Not:
    """``not`` a condition."""

    part: Cond


Cond = Compare | InList | BoolOp | Not


def refs(cond: Cond) -> set[Ref]:
    """Every customer value ``cond`` reads."""
    if isinstance(cond, Compare | InList):
        return {cond.ref}
    if isinstance(cond, Not):
        return refs(cond.part)
    return set().union(*(refs(p) for p in cond.parts))


# ------------------------------------------------------------------------------ steps


@dataclass(frozen=True)
class Arm:
    """One way out of a set-based step: taken when ``when`` holds (None: always)."""

    when: Cond | None
    target: str
    label: str  # the step history's outcome text


@dataclass(frozen=True)
class SetStep:
    """What one step does to every due enrollment at it, in terms a database can execute.

    Arms are tried in order (the last one has no condition). ``complete`` is the ``end``
    pseudo-step; ``exit_reason`` an ``exit`` step; ``wait`` a fixed wait of ``add_seconds``
    (its target, even ``END``, is where the enrollment sleeps); ``set_attributes`` an
    ``update`` with literal values. Otherwise a target of ``END`` completes the enrollment at
    once, as :func:`journeys.runtime.decide._goto` does.
    """

    journey: str
    version: str
    step: str
    arms: tuple[Arm, ...]
    wait: bool = False
    add_seconds: int = 0
    complete: bool = False
    exit_reason: str | None = None
    set_attributes: tuple[tuple[str, Any], ...] = ()

    @property
    def guard(self) -> frozenset[Ref]:
        """Customer values that must be present with their compared type."""
        found: set[Ref] = set()
        for arm in self.arms:
            if arm.when is not None:
                found |= refs(arm.when)
        return frozenset(found)
