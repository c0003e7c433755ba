"""``journeys test``: scenario files that pin down what journeys do, in virtual time.

A scenario lists customers, events at times relative to ``start`` (``10h``, ``2d``) or absolute,
and what must come out: the exact messages (with times, to the minute), enrollment outcomes and
customer stages. See docs/cli.md for the format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from journeys.clock import iso, parse_instant
from journeys.durations import DurationError, parse_duration
from journeys.simulate import SimulationResult, restrict, simulate
from journeys.spec import Project

MESSAGE_KEYS = ("customer_id", "journey", "step", "template", "channel", "at")


class ScenarioError(ValueError):
    """A scenario file that cannot be read; the message names the file and the problem."""


@dataclass
class Scenario:
    """One scenario, ready to simulate."""

    name: str
    path: Path
    journeys: list[str] | None
    start: datetime
    until: datetime
    customers: list[dict[str, Any]]
    events: list[dict[str, Any]]
    expect: dict[str, Any]


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


def _instant(value: Any, start: datetime, where: str) -> datetime:
    if isinstance(value, datetime):
        return parse_instant(value.isoformat())
    text = str(value).strip()
    try:
        return start + timedelta(seconds=parse_duration(text))
    except DurationError:
        pass
    try:
        return parse_instant(text)
    except ValueError:
        raise ScenarioError(
            f"{where}: {value!r} is neither a duration after start (10h, 2d) nor an ISO time"
        ) from None


def load_scenarios(path: Path) -> list[Scenario]:
    """Scenarios of one file (a mapping with ``scenarios:`` or a single scenario)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read it ({exc})") from None
    items = data.get("scenarios") if isinstance(data, dict) and "scenarios" in data else [data]
    if not isinstance(items, list):
        raise ScenarioError(f"{path}: 'scenarios' must be a list")
    out = []
    for index, item in enumerate(items):
        where = f"{path} scenario {index + 1}"
        if not isinstance(item, dict):
            raise ScenarioError(f"{where}: a scenario must be a mapping")
        try:
            start = parse_instant(str(item["start"]).replace(" ", "T"))
        except (KeyError, ValueError):
            raise ScenarioError(
                f"{where}: 'start' must be an ISO time like 2026-03-02T00:00:00Z"
            ) from None
        until = _instant(item.get("until", "30d"), start, f"{where} until")
        events = []
        for n, event in enumerate(_mappings(item, "events", where)):
            at = _instant(event.pop("at", "0m"), start, f"{where} event {n + 1}")
            event.setdefault("id", f"scn-{index}-{n}")
            event["occurred_at"] = iso(at)
            event.setdefault("data", {})
            events.append(event)
        journeys = item.get("journeys")
        expect = item.get("expect") or {}
        if not isinstance(expect, dict):
            raise ScenarioError(f"{where}: 'expect' must be a mapping")
        for n, message in enumerate(_mappings(expect, "messages", where)):
            if "at" not in message:
                raise ScenarioError(f"{where}: expected message {n + 1} has no 'at'")
        for key in ("enrollments", "customers"):
            _mappings(expect, key, where)
        out.append(
            Scenario(
                name=str(item.get("name") or f"{path.stem} #{index + 1}"),
                path=path,
                journeys=list(journeys) if journeys else None,
                start=start,
                until=until,
                customers=_mappings(item, "customers", where),
                events=events,
                expect=dict(expect),
            )
        )
    return out


def _mappings(parent: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    """``parent[key]``: a list of mappings (or nothing); otherwise a :class:`ScenarioError`."""
    value = parent.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ScenarioError(f"{where}: '{key}' must be a list of mappings")
    return [dict(v) for v in value]


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
    msg["at"] = iso(_instant(raw["at"], start, "expected message"))
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
            want[key] = iso(_instant(want[key], start, f"{what} {key}"))
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
