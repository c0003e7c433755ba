"""End to end on a real Prefect server: CRM events as Prefect events → flow runs → outbox.

``journeys deploy --serve`` runs in a subprocess (as an operator would run it) against the test
server and a SQLite journeys database; the test emits ``crm.cart.updated`` events and watches
the database and the Prefect API.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from journeys.clock import iso
from journeys.orchestration import prefect_events as pe

pytest_plugins = ["prefect_fixtures"]

ROOT = Path(__file__).resolve().parents[2]
JOURNEY = "cart-flow"
CUSTOMERS = 200

SPEC = f"""\
journey: {JOURNEY}
name: Cart flow (Prefect end-to-end test)
stage: consideration
trigger: {{event: cart.updated, when: "event.data.cart_total >= 20"}}
steps:
  - id: wait_a_bit
    wait: 3s
  - id: remind
    send: {{template: cart_reminder}}
"""

TEMPLATE = """\
---
subject: "Your cart is waiting"
---
<p>Hi {{ customer.first_name }}, your cart is waiting.</p>
"""


@pytest.fixture
def project(tmp_path: Path) -> dict[str, str]:
    """A one-journey project and an empty SQLite database: paths and URL."""
    specs = tmp_path / "specs"
    templates = tmp_path / "templates"
    specs.mkdir()
    templates.mkdir()
    (specs / f"{JOURNEY}.yaml").write_text(SPEC, encoding="utf-8")
    (templates / "cart_reminder.html").write_text(TEMPLATE, encoding="utf-8")
    return {
        "specs": str(specs),
        "templates": str(templates),
        "db": f"sqlite:///{tmp_path / 'journeys.db'}",
    }


def _journeys_command() -> list[str]:
    script = Path(sys.executable).with_name("journeys")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from journeys.cli import main; main()"]


@pytest.fixture
def served(
    prefect_api: str, prefect_env: dict[str, str], project: dict[str, str], tmp_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``journeys deploy SPECS --serve`` in a subprocess, until its deployment is registered."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    env = {
        **prefect_env,
        "JOURNEYS_DATABASE_URL": project["db"],
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                *_journeys_command(),
                "deploy",
                project["specs"],
                "--templates",
                project["templates"],
                "--serve",
                "--window",
                "2",
                "--settle",
                "2",
                "--no-tick",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"journeys deploy --serve exited:\n{log_path.read_text()}")
            try:
                with get_client(sync_client=True) as client:
                    client.read_deployment_by_name(f"journey/{JOURNEY}")
                break
            except ObjectNotFound:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"deployment not registered:\n{log_path.read_text()}")
            time.sleep(0.5)
        _wait_until_the_trigger_listens()
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def _wait_until_the_trigger_listens() -> None:
    """Probe with an event of an unknown customer until the server has loaded the new trigger
    (a run appears; it records the probe as an error and ends), then let that run finish.

    The server loads a new automation asynchronously (seconds on a loaded machine) and ignores
    matching events until then, so a fixed sleep is a race."""
    deadline, probe = time.monotonic() + 90, 0
    while not _runs_and_tasks()[0]:
        assert time.monotonic() < deadline, "the trigger never fired"
        event = {
            "id": f"probe-{probe}",
            "type": "cart.updated",
            "customer_id": "probe",
            "occurred_at": iso(datetime.now(UTC)),
            "data": {},
        }
        pe.emit_crm_events([event])
        probe += 1
        time.sleep(0.5)

    def settled() -> bool:
        runs, _ = _runs_and_tasks()
        return all(r.state is not None and r.state.is_final() for r in runs)

    _wait(settled, 90, "the probe's flow run did not finish")


def _count(db_url: str, sql: str) -> int:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql)).scalar_one())
    finally:
        engine.dispose()


def _runs_and_tasks() -> tuple[list[Any], list[Any]]:
    from prefect import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterId,
    )

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(f"journey/{JOURNEY}")
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
        )
        tasks = (
            client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[r.id for r in runs]))
            )
            if runs
            else []
        )
    return runs, tasks


def _wait(predicate: Any, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            # Say what Prefect did: a trigger that never fired and a run that failed differ.
            try:
                runs, _ = _runs_and_tasks()
                seen = [f"{r.name}: {r.state_name} (created {r.created})" for r in runs]
            except Exception as exc:  # the server itself may be the problem
                seen = [f"could not read flow runs: {exc!r}"]
            pytest.fail(f"{message}; flow runs of the deployment: {seen or 'none'}")
        time.sleep(0.5)


@pytest.mark.prefect
@pytest.mark.slow
def test_crm_events_become_few_flow_runs_that_enroll_and_send_the_reminder(
    project: dict[str, str], served: subprocess.Popen[bytes]
) -> None:
    from prefect.deployments import run_deployment

    from journeys.service import JourneyService

    service = JourneyService.open(
        project["db"], specs=project["specs"], templates=project["templates"]
    )
    try:
        report = service.import_customers(
            {"id": f"c-{i:04d}", "email": f"person{i}@example.com", "first_name": f"Name{i}"}
            for i in range(CUSTOMERS)
        )
        assert report.accepted == CUSTOMERS
    finally:
        service.close()

    probe_runs = len(_runs_and_tasks()[0])
    now = iso(datetime.now(UTC))
    events = [
        {
            "id": f"cart-{i:04d}",
            "type": "cart.updated",
            "customer_id": f"c-{i:04d}",
            "occurred_at": now,
            "data": {"cart_total": 59.9, "items": [{"sku": "A1", "price": 59.9}]},
        }
        for i in range(CUSTOMERS)
    ]
    assert pe.emit_crm_events(events) == CUSTOMERS

    enrolled = f"SELECT count(*) FROM enrollments WHERE journey = '{JOURNEY}'"
    _wait(
        lambda: _count(project["db"], enrolled) == CUSTOMERS,
        120,  # window + settle + the server's event batching, on a loaded 2-core machine
        "the triggered flow run did not enroll every customer",
    )

    def settled() -> bool:
        runs, _ = _runs_and_tasks()
        return bool(runs) and all(r.state is not None and r.state.is_final() for r in runs)

    _wait(settled, 90, "flow runs did not finish")
    runs, tasks = _runs_and_tasks()
    # Coalescing: a burst of events is a handful of runs, not one per event.
    assert 1 <= len(runs) - probe_runs <= 2, [r.state_name for r in runs]
    assert any(r.state_name == "Completed" for r in runs)
    assert f"{JOURNEY}.wait_a_bit" in {t.name for t in tasks}

    # After the wait, the next run (the tick deployment in production) sends the reminder.
    time.sleep(3.5)
    final = run_deployment(f"journey/{JOURNEY}", timeout=90, poll_interval=1)
    assert final.state is not None and final.state.is_completed(), final.state
    reminders = f"SELECT count(*) FROM outbox WHERE journey = '{JOURNEY}' AND step = 'remind'"
    assert _count(project["db"], reminders) == CUSTOMERS
    distinct = (
        "SELECT count(DISTINCT enrollment_id) FROM outbox "
        f"WHERE journey = '{JOURNEY}' AND step = 'remind'"
    )
    assert _count(project["db"], distinct) == CUSTOMERS

    runs, tasks = _runs_and_tasks()
    by_name: dict[str, int] = {}
    for task_run in tasks:
        by_name[task_run.name] = by_name.get(task_run.name, 0) + 1
    assert f"{JOURNEY}.remind" in by_name

    # Runs carry ids only: no email, name or event payload in parameters or task inputs.
    for run in runs:
        assert run.parameters == {"journey": JOURNEY}
    exposed = json.dumps([r.parameters for r in runs] + [t.model_dump(mode="json") for t in tasks])
    assert "@example.com" not in exposed
    assert "Name1" not in exposed
    assert "cart_total" not in exposed
