"""``journeys deploy``: plans → Prefect deployments, triggers and schedules; coalescing.

The tests marked ``prefect`` run against a real Prefect server started by the tests
(:mod:`prefect_fixtures`); the others check the pure mapping and ``--dry-run``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from journeys.orchestration import prefect_deploy as pd
from journeys.orchestration import prefect_events as pe
from journeys.plan import (
    DateTrigger,
    EventTrigger,
    Plan,
    ScheduleTrigger,
    SendStep,
    StageTrigger,
    WaitForStep,
    WaitStep,
)

pytest_plugins = ["prefect_fixtures"]

ROOT = Path(__file__).resolve().parents[2]


def cart_plan(journey: str = "abandoned-cart", event: str = "cart.updated") -> Plan:
    """A small event-triggered journey: wait, remind, wait for an order."""
    return Plan(
        journey=journey,
        name="Abandoned cart recovery",
        version="v-cart",
        trigger=EventTrigger(event=event),
        steps=(
            WaitStep(id="wait_a_day", next="remind", seconds=86400),
            SendStep(id="remind", next="bought", template="cart_reminder"),
            WaitForStep(id="bought", next="end", event="order.placed", within_seconds=172800),
        ),
        stage="consideration",
        exit_on=("order.placed",),
    )


def birthday_plan() -> Plan:
    return Plan(
        journey="birthday",
        name="Birthday greeting",
        version="v-bday",
        trigger=DateTrigger(field="birthday", at_minutes=540),
        steps=(SendStep(id="greet", next="end", template="birthday_greeting"),),
        stage="loyalty",
    )


def weekly_plan() -> Plan:
    return Plan(
        journey="weekly-digest",
        name="Weekly digest",
        version="v-weekly",
        trigger=ScheduleTrigger(cron="0 10 * * MON", segment="customer.stage == 'loyalty'"),
        steps=(SendStep(id="digest", next="end", template="digest"),),
        timezone="Asia/Seoul",
    )


def loyalty_plan() -> Plan:
    return Plan(
        journey="loyalty-welcome",
        name="Loyalty welcome",
        version="v-loyal",
        trigger=StageTrigger(stage="loyalty"),
        steps=(SendStep(id="hello", next="end", template="welcome"),),
        stage="loyalty",
    )


PLANS = [cart_plan(), birthday_plan(), weekly_plan(), loyalty_plan()]


# --------------------------------------------------------------------------- pure mapping


def test_one_deployment_per_journey_named_after_it_plus_tick() -> None:
    specs = pd.plan_deployments(PLANS)
    assert [s.name for s in specs] == [
        "abandoned-cart",
        "birthday",
        "loyalty-welcome",
        "weekly-digest",
        "tick",
    ]
    for spec in specs[:-1]:
        assert spec.entrypoint == "flows/journey_flows.py:journey_flow"
        assert spec.parameters == {"journey": spec.name}
        assert "journeys" in spec.tags
        assert (spec.concurrency_limit, spec.collision_strategy) == (1, "CANCEL_NEW")
    tick = specs[-1]
    assert tick.entrypoint == "flows/journey_flows.py:tick"
    assert [(s.cron, s.timezone) for s in tick.schedules] == [("* * * * *", "UTC")]


def test_event_journey_gets_a_throttled_trigger_on_all_its_event_types() -> None:
    spec = pd.plan_deployment(cart_plan(), pd.DeployOptions(window_seconds=10, settle_seconds=6))
    assert spec.tags == ("journeys", "stage:consideration", "trigger:event")
    assert spec.schedules == ()
    (trigger,) = spec.triggers
    assert trigger.expect == ("crm.cart.updated", "crm.order.placed")
    assert trigger.match == {"prefect.resource.id": "journeys.customer.*"}
    assert (trigger.posture, trigger.threshold, trigger.within_seconds) == ("Reactive", 1, 10)
    assert trigger.schedule_after_seconds == 16
    assert trigger.parameters == {"journey": "abandoned-cart"}


def test_date_schedule_and_stage_triggers() -> None:
    bday = pd.plan_deployment(birthday_plan())
    assert bday.triggers == ()
    assert [(s.cron, s.timezone) for s in bday.schedules] == [("*/15 * * * *", "UTC")]
    assert "stage:loyalty" in bday.tags

    weekly = pd.plan_deployment(weekly_plan())
    assert [(s.cron, s.timezone) for s in weekly.schedules] == [("0 10 * * MON", "Asia/Seoul")]
    assert not any(t.startswith("stage:") for t in weekly.tags)

    loyal = pd.plan_deployment(loyalty_plan())
    assert [t.expect for t in loyal.triggers] == [("crm.stage.entered",)]
    assert loyal.schedules == ()


def test_dry_run_text_and_json() -> None:
    specs = pd.plan_deployments([cart_plan(), weekly_plan()])
    text = pd.format_text(specs)
    assert "deployment journey/abandoned-cart" in text
    assert "trigger:     on crm.cart.updated, crm.order.placed" in text
    assert "schedule:    cron '0 10 * * MON' Asia/Seoul" in text
    assert "deployment journeys-tick/tick" in text
    data = json.loads(pd.format_json(specs))
    by_name = {d["name"]: d for d in data["deployments"]}
    assert set(by_name) == {"abandoned-cart", "weekly-digest", "tick"}
    assert by_name["abandoned-cart"]["triggers"][0]["expect"] == [
        "crm.cart.updated",
        "crm.order.placed",
    ]
    assert by_name["weekly-digest"]["full_name"] == "journey/weekly-digest"


def test_crm_event_round_trip_through_a_prefect_event() -> None:
    crm = {
        "id": "evt-81f2",
        "type": "cart.updated",
        "customer_id": "c-1001",
        "occurred_at": "2026-03-01T10:15:00Z",
        "data": {"cart_total": 59.9},
    }
    event = pe.to_prefect_event(crm)
    assert event.event == "crm.cart.updated"
    assert event.resource.id == "journeys.customer.c-1001"
    assert event.id == pe.prefect_event_id("evt-81f2") == pe.to_prefect_event(crm).id
    assert pe.from_prefect_event(event) == crm


# --------------------------------------------------------------------------- CLI


def _cli(args: list[str]) -> Any:
    from typer.testing import CliRunner

    from journeys.cli import _register, app

    _register()  # imports the command modules, which add their commands to `app`
    return CliRunner().invoke(app, args)


@pytest.fixture
def example_specs() -> Path:
    """The example journeys (which must load: a broken example fails here, never skips)."""
    from journeys.spec import load_project

    project = load_project([ROOT / "journey_specs"])
    assert project.ok and project.plans, project.diagnostics
    return ROOT / "journey_specs"


def test_cli_dry_run_lists_every_example_journey(example_specs: Path) -> None:
    from journeys.spec import load_project

    plans = load_project([example_specs]).plans
    result = _cli(["deploy", str(example_specs), "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    names = [d["name"] for d in data["deployments"]]
    assert names == [*sorted(plans), "tick"]
    text = _cli(["deploy", str(example_specs), "--dry-run"])
    assert text.exit_code == 0, text.output
    for journey in plans:
        assert f"deployment journey/{journey}\n" in text.output


# --------------------------------------------------------------------------- real server


def _read_back(names: list[str]) -> dict[str, dict[str, Any]]:
    """Deployments ``journey/<name>`` with their schedules and trigger automations."""
    from prefect import get_client

    out: dict[str, dict[str, Any]] = {}
    with get_client(sync_client=True) as client:
        automations = client.read_automations()
        for name in names:
            flow_name = "journeys-tick" if name == "tick" else "journey"
            dep = client.read_deployment_by_name(f"{flow_name}/{name}")
            owned = [
                a
                for a in automations
                if any(getattr(action, "deployment_id", None) == dep.id for action in a.actions)
            ]
            out[name] = {
                "deployment": dep,
                "schedules": [(s.schedule.cron, s.schedule.timezone) for s in dep.schedules],
                "automations": owned,
            }
    return out


@pytest.mark.prefect
def test_register_creates_deployments_with_triggers_and_schedules(prefect_api: str) -> None:
    pool = f"pool-{uuid.uuid4().hex[:8]}"
    specs = pd.plan_deployments(PLANS)
    ids = pd.register_deployments(
        specs, work_pool=pool, job_variables={"env": {"JOURNEYS_SPECS": "journey_specs"}}
    )
    assert set(ids) == {s.full_name for s in specs}
    got = _read_back([s.name for s in specs])

    cart = got["abandoned-cart"]
    dep = cart["deployment"]
    assert dep.parameters == {"journey": "abandoned-cart"}
    assert set(dep.tags) == {"journeys", "stage:consideration", "trigger:event"}
    assert dep.entrypoint == "flows/journey_flows.py:journey_flow"
    assert dep.work_pool_name == pool
    assert dep.version == "v-cart"
    assert dep.concurrency_options is not None
    assert dep.concurrency_options.collision_strategy.value == "CANCEL_NEW"
    assert dep.job_variables == {"env": {"JOURNEYS_SPECS": "journey_specs"}}
    assert cart["schedules"] == []
    (automation,) = cart["automations"]
    trigger = automation.trigger
    assert trigger.expect == {"crm.cart.updated", "crm.order.placed"}
    assert trigger.within == timedelta(seconds=pd.DEFAULT_WINDOW_SECONDS)
    assert trigger.threshold == 1
    (action,) = automation.actions
    assert action.parameters == {"journey": "abandoned-cart"}
    assert action.schedule_after == timedelta(
        seconds=pd.DEFAULT_WINDOW_SECONDS + pd.DEFAULT_SETTLE_SECONDS
    )

    assert got["birthday"]["schedules"] == [("*/15 * * * *", "UTC")]
    assert got["birthday"]["automations"] == []
    assert got["weekly-digest"]["schedules"] == [("0 10 * * MON", "Asia/Seoul")]
    assert [a.trigger.expect for a in got["loyalty-welcome"]["automations"]] == [
        {"crm.stage.entered"}
    ]
    assert got["tick"]["schedules"] == [("* * * * *", "UTC")]

    # Runs carry ids only: the only parameter a journey deployment takes is the journey id.
    schema = dep.parameter_openapi_schema
    assert set(schema["properties"]) == {"journey"}

    # The server's scheduler really creates runs from the cron schedules (with SQLAlchemy 2.1
    # Prefect 3.8's scheduler fails on every pass and no scheduled run ever appears).
    for name in ("journeys-tick/tick", "journey/birthday"):
        scheduled = _wait_for_runs(ids[name], 1, timeout=45)
        assert scheduled, f"the Prefect scheduler created no run for {name}"
        assert all(r.state_name == "Scheduled" for r in scheduled)

    # Deploying again updates in place: same ids, one automation per trigger.
    assert pd.register_deployments(specs, work_pool=pool) == ids
    assert len(_read_back(["abandoned-cart"])["abandoned-cart"]["automations"]) == 1


@pytest.mark.prefect
def test_cli_deploy_registers_every_example_journey(prefect_api: str, example_specs: Path) -> None:
    from journeys.spec import load_project

    plans = load_project([example_specs]).plans
    pool = f"pool-{uuid.uuid4().hex[:8]}"
    result = _cli(["deploy", str(example_specs), "--work-pool", pool, "--json"])
    assert result.exit_code == 0, result.output
    ids = json.loads(result.output[result.output.index("{") :])["deployments"]
    assert set(ids) == {f"journey/{j}" for j in plans} | {"journeys-tick/tick"}
    got = _read_back(sorted(plans))
    for journey, plan in plans.items():
        expected = pd.plan_deployment(plan)
        dep = got[journey]["deployment"]
        assert dep.name == journey
        assert dep.parameters == {"journey": journey}
        assert set(dep.tags) == set(expected.tags)
        assert got[journey]["schedules"] == [(s.cron, s.timezone) for s in expected.schedules]
        assert [a.trigger.expect for a in got[journey]["automations"]] == [
            set(t.expect) for t in expected.triggers
        ]


def _flow_runs(deployment_id: Any) -> list[Any]:
    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        )


def _wait_for_runs(deployment_id: Any, count: int, timeout: float = 60.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        runs = _flow_runs(deployment_id)
        if len(runs) >= count or time.monotonic() > deadline:
            return runs
        time.sleep(0.5)


@pytest.fixture
def burst_journey(prefect_api: str) -> Iterator[tuple[str, str, Any]]:
    """A registered journey reacting to a unique event type; (journey, event type, dep id)."""
    suffix = uuid.uuid4().hex[:8]
    journey, event_type = f"burst-{suffix}", f"burst{suffix}.seen"
    options = pd.DeployOptions(window_seconds=BURST_WINDOW, settle_seconds=SETTLE, tick=False)
    specs = pd.plan_deployments([cart_plan(journey, event_type)], options)
    # A pool with no worker: triggered runs stay Scheduled, so they can be counted.
    ids = pd.register_deployments(specs, work_pool=f"idle-{suffix}")
    yield journey, event_type, ids[f"journey/{journey}"]


BURST_WINDOW = 6
SETTLE = 1


def _crm_events(event_type: str, prefix: str, count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}-{i}",
            "type": event_type,
            "customer_id": f"c-{i % 50}",
            "occurred_at": "2026-03-01T10:00:00Z",
            "data": {},
        }
        for i in range(count)
    ]


def _wait_until_the_trigger_listens(deployment_id: Any, event_type: str) -> int:
    """Probe events until the server has loaded the new automation (a run appears), then let
    every window the probes opened close; returns how many runs the probes made.

    The server loads a new automation asynchronously (seconds on a loaded machine) and ignores
    matching events until then, so a fixed sleep is a race."""
    deadline = time.monotonic() + 90
    probe = 0
    while not _flow_runs(deployment_id):
        assert time.monotonic() < deadline, "the automation never fired"
        pe.emit_crm_events(_crm_events(event_type, f"probe-{probe}", 1))
        probe += 1
        time.sleep(0.5)
    time.sleep(2 * BURST_WINDOW + 1)  # the probes' windows (and the one after) have closed
    return len(_flow_runs(deployment_id))


@pytest.mark.prefect
def test_a_burst_of_events_becomes_one_flow_run(burst_journey: tuple[str, str, Any]) -> None:
    journey, event_type, deployment_id = burst_journey
    before = _wait_until_the_trigger_listens(deployment_id, event_type)
    events = _crm_events(event_type, journey, 400)
    emitted_at, burst_started = datetime.now(UTC), time.monotonic()
    # Two bursts inside one window: 300 events ...
    assert pe.emit_crm_events(events[:200]) == 200
    assert pe.emit_crm_events(events[200:300]) == 100
    burst_sent = time.monotonic()
    assert burst_sent - burst_started < BURST_WINDOW  # all of them inside one window
    # ... are one flow run,
    _wait_for_runs(deployment_id, before + 1)
    time.sleep(1.0)
    runs = sorted(_flow_runs(deployment_id), key=lambda r: r.expected_start_time)
    assert len(runs) == before + 1
    run = runs[-1]
    assert run.parameters == {"journey": journey}
    assert run.state_name == "Scheduled"
    # which starts after the window (+ settle), so it sees every event of the window.
    assert run.expected_start_time - emitted_at >= timedelta(seconds=BURST_WINDOW + SETTLE)

    # After the window, the next burst gets exactly one more run. The window opened at the
    # first of the burst's events the server evaluated, which was emitted before `burst_sent`.
    time.sleep(max(0.0, burst_sent + BURST_WINDOW + 0.5 - time.monotonic()))
    assert pe.emit_crm_events(events[300:]) == 100
    _wait_for_runs(deployment_id, before + 2)
    time.sleep(1.0)
    assert len(_flow_runs(deployment_id)) == before + 2


@pytest.mark.prefect
def test_pull_reads_crm_events_back_with_a_cursor(prefect_api: str) -> None:
    tag = uuid.uuid4().hex[:8]
    events = [
        {
            "id": f"pull-{tag}-{i}",
            "type": f"pull{tag}.seen",
            "customer_id": f"c-{i}",
            "occurred_at": "2026-03-01T10:00:00Z",
            "data": {"n": i},
        }
        for i in range(60)  # more than one page (50)
    ]
    pe.emit_crm_events(events)

    class Sink:
        def __init__(self) -> None:
            self.seen: dict[str, dict[str, Any]] = {}

        def ingest(self, records: Any, source: str = "api") -> Any:
            new = 0
            for record in records:
                new += record["id"] not in self.seen
                self.seen[record["id"]] = record
            return type("R", (), {"accepted": new, "duplicates": 0, "errors": []})()

    sink = Sink()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pe.pull_crm_events(sink)
        if all(e["id"] in sink.seen for e in events):
            break
        time.sleep(1.0)
    assert {e["id"]: e for e in events}.items() <= sink.seen.items()
    cursor = pe.read_cursor()
    assert cursor is not None
    # The cursor only moves forward.
    pe.write_cursor(cursor - timedelta(hours=1))
    assert pe.read_cursor() == cursor


def test_job_environment_paths_for_a_checkout_and_for_a_git_source(tmp_path: Path) -> None:
    specs, templates = tmp_path / "journey_specs", tmp_path / "templates"
    assert pd.job_environment(specs, templates, tmp_path) == {
        "JOURNEYS_SPECS": "journey_specs",
        "JOURNEYS_TEMPLATES": "templates",
    }
    outside = pd.job_environment(Path("/srv/specs"), None, tmp_path)
    assert outside == {"JOURNEYS_SPECS": "/srv/specs"}
    # A git URL: the flow runs in that checkout, the paths are relative to it as given.
    git = pd.job_environment(Path("journey_specs"), None, "https://example.com/acme/j.git")
    assert git == {"JOURNEYS_SPECS": "journey_specs"}
