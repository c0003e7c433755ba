"""The set-based path: steps that need no Python, run by the store for whole chunks of due
enrollments in a few statements each (:mod:`journeys.runtime.setbased` says which steps).

It is exact in event time because the store only takes an enrollment whose customer has
nothing else due by then (no other due enrollment; pending events were matched first), so
nothing this enrollment's steps do could have been seen, or changed, by another step of
the same customer in between.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from journeys.conditions import SetStep
from journeys.plan import END
from journeys.runtime.batch import Runtime
from journeys.runtime.setbased import chained
from journeys.store.interface import Store, Tx


@dataclass
class StepCounts:
    """Enrollment-steps run, per ``journey.step``."""

    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, journey: str, step: str, n: int) -> None:
        """Count ``n`` runs of ``journey.step``."""
        if n:
            self.counts[f"{journey}.{step}"] += n

    @property
    def total(self) -> int:
        """Runs in all."""
        return sum(self.counts.values())


def advance_set(
    rt: Runtime,
    store: Store,
    horizon: datetime,
    counts: StepCounts,
    *,
    journey: str | None = None,
    step: str | None = None,
    limit: int | None = None,
) -> int:
    """Run the set-based steps of enrollments due by ``horizon``; returns how many
    enrollment-steps ran (0: nothing set-based was due, or too little to be worth it).

    A small due set goes as one chunk of ids. A large one on SQLite goes window by window
    over the table's id range (one transaction each): rows close in the table are close on
    disk, so a million due rows cost a sequential pass, not a million random page visits.
    """
    if not rt.set_based or not store.set_based:
        return 0
    size = limit or rt.set_chunk or max(20 * rt.batch_size, 10_000)
    least = rt.batch_size if rt.set_min_rows is None else rt.set_min_rows
    if limit is not None:
        least = 1  # one step's batch: the caller chose the size

    def look(tx: Tx) -> tuple[int, tuple[int, int] | None]:
        count = tx.set_ops.due_count(horizon, size + 1, journey=journey, step=step)
        if count == 0 or count < least:
            return 0, None
        return count, tx.set_ops.id_span() if tx.set_ops.windowed else None

    count, span = store.transaction(look, read_only=True)
    if count == 0:
        return 0
    if span is not None and count > size:
        return sum(
            _chunk(rt, store, counts, horizon, journey, step, size, (a, a + size - 1), None)[0]
            for a in range(span[0], span[1] + 1, size)
        )
    # Chunk after chunk in (wake_at, id) order: rows a chunk leaves due (their customer fails
    # a guard, or their step needs Python) must not keep the next chunk from the rest.
    total, after = 0, None
    while True:
        moved, after = _chunk(rt, store, counts, horizon, journey, step, size, None, after)
        total += moved
        if after is None or limit is not None:
            return total


def _chunk(
    rt: Runtime,
    store: Store,
    counts: StepCounts,
    horizon: datetime,
    journey: str | None,
    step: str | None,
    size: int,
    window: tuple[int, int] | None,
    after: tuple[datetime, int] | None,
) -> tuple[int, tuple[datetime, int] | None]:
    """One transaction: the set-based steps of one chunk (or id window) of due rows, and the
    set-based steps those rows move on to (a branch, an update, the end); returns how many
    moved and the key the next chunk starts after (None: no more)."""

    def work(tx: Tx) -> tuple[int, StepCounts, tuple[datetime, int] | None]:
        ops = tx.set_ops
        local = StepCounts()
        moved = 0
        groups = ops.due_groups(
            horizon, size, journey=journey, step=step, window=window, after=after
        )
        last = next((g.last for g in groups if g.last is not None), None)
        queue = [((g.journey, g.version, g.step), g) for g in groups]
        # Bounded: a cycle of zero-length waits stops here and goes on in the next chunk.
        for _ in range(rt.max_steps):
            if not queue:
                break
            (j, v, s), group = queue.pop(0)
            plan = rt.plans.version(j, v, tx.load_version)
            steps = rt.plans.set_steps(plan) if plan else {}
            spec = steps.get(s)
            if spec is None:
                continue
            # Only a whole advance (no single ``step`` asked for) runs on past the step.
            then = chained(spec, steps) if step is None else {}
            if then:
                ran = ops.advance_chained(spec, then, horizon, group)
            else:
                ran = {s: ops.advance_set_step(spec, horizon, group)}
            for name, n in ran.items():
                local.add(j, name, n)
                moved += n
            if ran[s] and step is None:
                # The statements re-check step and due time, so handing the same rows on is
                # exact: only those that moved to that step and are due take it.
                queue.extend(((j, v, t), group) for t in _next_steps(spec, then))
        return moved, local, last

    moved, local, last = store.transaction(work)
    for key, n in local.counts.items():
        counts.counts[key] += n
    return moved, last


def _next_steps(spec: SetStep, then: Mapping[str, SetStep]) -> list[str]:
    """Steps the rows of ``spec`` (and its chained targets ``then``) may be due at next."""
    if spec.wait:
        return []
    found: dict[str, None] = {}
    for arm in spec.arms:
        target = then.get(arm.target)
        if target is None:
            found[arm.target] = None
        elif not target.wait and target.exit_reason is None:
            found[target.arms[0].target] = None
    return [step for step in found if step != END]
