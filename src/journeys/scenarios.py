"""``journeys test``: scenario files that pin down what journeys do, in virtual time.

A scenario lists customers, events at times relative to ``start`` (``10h``, ``2d``) or absolute,
and what must come out: the exact messages (with times, to the minute), enrollment outcomes and
customer stages. See docs/cli.md for the format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from journeys.clock import iso
from journeys.plan import Plan
from journeys.scenario_file import Scenario, check_scenarios, resolve
from journeys.simulate import SimulationResult, restrict, simulate
from journeys.spec import Project
from journeys.spec.diagnostics import Diagnostic

MESSAGE_KEYS = ("customer_id", "journey", "step", "template", "channel", "at")

__all__ = [
    "Scenario",
    "ScenarioError",
    "ScenarioResult",
    "check_scenarios",
    "discover",
    "load_scenarios",
    "run_scenario",
]


class ScenarioError(ValueError):
    """A scenario file with problems; ``diagnostics`` lists every one of them."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))


@dataclass
class ScenarioResult:
    """Pass or fail, with the differences found."""

    scenario: Scenario
    failures: list[str] = field(default_factory=list)
    simulation: SimulationResult | None = None

    @property
    def passed(self) -> bool:
        """No difference between expected and actual."""
        return not self.failures


def load_scenarios(path: Path, plans: Mapping[str, Plan] | None = None) -> list[Scenario]:
    """Scenarios of one file (a mapping with ``scenarios:`` or a single scenario);
    :class:`ScenarioError` lists every problem (see :func:`check_scenarios`)."""
    scenarios, problems = check_scenarios(path, plans)
    if problems:
        raise ScenarioError(problems)
    return scenarios


def discover(paths: list[Path]) -> list[Path]:
    """Scenario files under ``paths`` (``*.yaml``/``*.yml``)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*.y*ml")))
        else:
            found.append(path)
    return found


def run_scenario(project: Project, scenario: Scenario) -> ScenarioResult:
    """Simulate one scenario and compare with its expectations."""
    result = ScenarioResult(scenario)
    try:
        scoped = restrict(project, scenario.journeys)
    except KeyError as exc:
        result.failures.append(str(exc.args[0]))
        return result
    sim = simulate(
        scoped, scenario.customers, scenario.events, start=scenario.start, until=scenario.until
    )
    result.simulation = sim
    for line, message in sim.customer_report.errors + sim.event_report.errors:
        result.failures.append(f"bad record {line}: {message}")
    expect = scenario.expect
    if "messages" in expect:
        wanted = [_message(m, scenario.start) for m in expect["messages"] or []]
        actual = [{k: m[k] for k in MESSAGE_KEYS} for m in sim.messages]
        if not all("channel" in m for m in expect["messages"] or []):
            actual = [{k: v for k, v in m.items() if k != "channel"} for m in actual]
            wanted = [{k: v for k, v in m.items() if k != "channel"} for m in wanted]
        if actual != wanted:
            result.failures.append("messages differ:\n" + _diff(wanted, actual))
    for exp in expect.get("enrollments") or []:
        _match_one(
            result,
            "enrollment",
            exp,
            sim.enrollments,
            keys=("customer_id", "journey"),
            start=scenario.start,
        )
    for exp in expect.get("customers") or []:
        flat = [{"id": c["id"], "stage": c["stage"], **c["attributes"]} for c in sim.customers]
        _match_one(result, "customer", exp, flat, keys=("id",), start=scenario.start)
    return result


def _message(raw: dict[str, Any], start: datetime) -> dict[str, Any]:
    msg = {k: raw.get(k) for k in MESSAGE_KEYS}
    msg["channel"] = raw.get("channel", "email")
    msg["at"] = iso(resolve(str(raw["at"]), start))
    return msg


def _match_one(
    result: ScenarioResult,
    what: str,
    expected: dict[str, Any],
    actual: list[dict[str, Any]],
    *,
    keys: tuple[str, ...],
    start: datetime,
) -> None:
    candidates = [a for a in actual if all(a.get(k) == expected.get(k) for k in keys)]
    label = ", ".join(f"{k}={expected.get(k)}" for k in keys)
    if not candidates:
        result.failures.append(f"no {what} with {label}")
        return
    want = dict(expected)
    for key in ("entered_at", "ended_at"):
        if key in want and want[key] is not None:
            want[key] = iso(resolve(str(want[key]), start))
    for cand in reversed(candidates):  # the latest enrollment is the one people mean
        if all(cand.get(k) == v for k, v in want.items()):
            return
    last = candidates[-1]
    diffs = ", ".join(
        f"{k}: expected {v!r}, got {last.get(k)!r}" for k, v in want.items() if last.get(k) != v
    )
    result.failures.append(f"{what} {label}: {diffs}")


def _diff(wanted: list[dict[str, Any]], actual: list[dict[str, Any]]) -> str:
    def fmt(m: dict[str, Any]) -> str:
        return " ".join(f"{k}={m.get(k)}" for k in MESSAGE_KEYS if k in m)

    lines = []
    for m in wanted:
        if m not in actual:
            lines.append(f"  - missing: {fmt(m)}")
    for m in actual:
        if m not in wanted:
            lines.append(f"  + unexpected: {fmt(m)}")
    if not lines:
        lines.append("  same messages in a different order")
    return "\n".join(lines)
