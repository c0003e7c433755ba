"""Prefect flows of journeys: the entry points of every deployment.

These are module-level flows so that Prefect can load them again from their entry point
(``flows/journey_flows.py:journey_flow``), as ``serve`` and workers do; flows built from
closures at run time could not be served together.

=====================  =============================================================  ========
flow (entry point)     what it does                                                   deployed
=====================  =============================================================  ========
``journey_flow``       pull CRM events → process → date/schedule sweep → advance      one per
                       the journey step by step → dispatch the outbox                 journey
``tick``               pull CRM events → process → advance every journey → dispatch   ``tick``
``ingest_events``      ingest a JSON Lines/CSV file of CRM events (by path)           ad hoc
``ingest_prefect_events``  pull ``crm.*`` Prefect events into the event store         ad hoc
``process_events``     match pending events (enroll, wake, exit, goals)               ad hoc
``advance_journey``    run every due step of one journey, one task run per step       ad hoc
``sweep_triggers``     enroll for date and schedule triggers due up to now            ad hoc
``dispatch_outbox``    send due outbox rows exactly once                              ad hoc
=====================  =============================================================  ========

Privacy: parameters are a journey id or a file path; results are counts; logs are counts and
ids. Event payloads and customer profiles never pass through Prefect parameters, results or logs.
The engine is reached through :func:`journeys.orchestration.flow_support.current_service`,
configured by the environment (``JOURNEYS_DATABASE_URL``, ``JOURNEYS_SPECS`` …).

Retries: every task that only writes to the journeys database retries, because each of those
writes is idempotent (events are keyed by their id, enrollments by (journey, customer,
trigger key), outbox rows by (enrollment, step, attempt), and a batch commits with the
enrollments' move to their next step). Sending is different: see :func:`dispatch_task`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from journeys.orchestration.flow_support import current_service, service_scope
from journeys.orchestration.prefect_events import pull_crm_events

BATCH_LIMIT = 5000
"""Enrollments per claimed batch of one step."""

DISPATCH_LIMIT = 1000
"""Outbox rows per dispatch call."""

MAX_ROUNDS = 20
"""A journey run repeats pull → process → advance → dispatch while new events keep arriving, at
most this many times, so events that arrive while it runs are not left for the next run."""

TIME_BUDGET_SECONDS = 300.0
"""... and for at most this long; the next triggered or ticked run continues."""

_TASK_OPTIONS: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}
_FLOW_OPTIONS: dict[str, Any] = {"persist_result": False, "log_prints": False}


# --------------------------------------------------------------------------- tasks


@task(name="ingest-file", retries=2, retry_delay_seconds=5, **_TASK_OPTIONS)
def ingest_file_task(path: str) -> dict[str, int]:
    """Ingest a JSON Lines (or CSV) file of CRM events.

    Retry-safe: the store deduplicates by event id. Bad lines are counted, not logged (their
    content may be personal data); ``journeys ingest`` shows them by line.
    """
    from journeys.service import read_records

    report = current_service().ingest(read_records(Path(path)), source="file")
    counts = {
        "accepted": report.accepted,
        "duplicates": report.duplicates,
        "errors": len(report.errors),
    }
    get_run_logger().info("ingested %s: %s", path, counts)
    return counts


@task(name="ingest-prefect-events", retries=2, retry_delay_seconds=5, **_TASK_OPTIONS)
def pull_prefect_events_task() -> dict[str, Any]:
    """Pull ``crm.*`` Prefect events since the cursor into the store (deduplicated: retry-safe)."""
    report = pull_crm_events(current_service()).as_dict()
    get_run_logger().info(
        "pulled %d CRM events (%d new, %d duplicates, %d rejected) from %s to %s",
        report["read"],
        report["accepted"],
        report["duplicates"],
        report["errors"],
        report["since"],
        report["until"],
    )
    return report


@task(name="process-events", retries=2, retry_delay_seconds=5, **_TASK_OPTIONS)
def process_events_task(limit: int = BATCH_LIMIT) -> int:
    """Match pending events. Retry-safe: an event is marked processed with its effects."""
    count = current_service().process_events(limit=limit)
    get_run_logger().info("processed %d events", count)
    return count


@task(name="sweep-triggers", retries=2, retry_delay_seconds=5, **_TASK_OPTIONS)
def sweep_triggers_task(journey: str | None = None) -> int:
    """Enroll for due date/schedule triggers. Retry-safe: one enrollment per trigger key."""
    count = current_service().sweep_triggers(journey)
    get_run_logger().info("date/schedule triggers enrolled %d customers", count)
    return count


@task(name="advance-step", retries=1, retry_delay_seconds=10, **_TASK_OPTIONS)
def advance_step_task(journey: str, step: str, limit: int = BATCH_LIMIT) -> int:
    """Run one step for a claimed batch of due enrollments; returns how many it handled.

    Retry-safe: the batch commits its effects together with each enrollment's move to its next
    step, and the outbox row of a message step has the unique key (enrollment, step, attempt),
    so a retry only redoes what did not commit and cannot write a message twice. This task
    only writes outbox rows; sending them is :func:`dispatch_task`'s job.
    """
    count = current_service().advance_step(journey, step, limit=limit)
    get_run_logger().info("%s.%s handled %d enrollments", journey, step, count)
    return count


@task(name="advance-all", retries=1, retry_delay_seconds=10, **_TASK_OPTIONS)
def advance_all_task() -> dict[str, int]:
    """Advance every journey until nothing is due (same retry argument as advance-step)."""
    counts = current_service().advance(None)
    get_run_logger().info("advanced %d enrollment steps: %s", sum(counts.values()), counts)
    return counts


@task(name="dispatch-outbox", retries=0, **_TASK_OPTIONS)
def dispatch_task(limit: int = DISPATCH_LIMIT) -> int:
    """Send due outbox rows. Deliberately **no task retries**.

    Sending is the one side effect outside the database: if this task failed after a provider
    accepted a message but before its row was marked sent, a blind retry could send it again.
    The dispatcher already handles failures per row (retryable channel errors leave the row
    pending; a crashed dispatch rolls back and the next one takes the row again, locked while
    it is sent), so retrying the whole task adds only risk.
    """
    count = current_service().dispatch(limit=limit)
    get_run_logger().info("dispatched %d outbox rows", count)
    return count


def _advance_steps(journey: str, limit: int = BATCH_LIMIT) -> dict[str, int]:
    """Run each due step of ``journey`` as a task run ``<journey>.<step>`` until none is due."""
    service = current_service()
    totals: dict[str, int] = {}
    while True:
        steps = service.due_steps(journey)
        if not steps:
            break
        progressed = 0
        for step in steps:
            name = f"{journey}.{step}"
            step_task = advance_step_task.with_options(name=name, task_run_name=name)
            count = step_task(journey, step, limit)
            totals[name] = totals.get(name, 0) + count
            progressed += count
        if progressed == 0:
            # Everything due is claimed by other workers right now; they will finish it.
            break
    return totals


# --------------------------------------------------------------------------- flows


@flow(name="journey", **_FLOW_OPTIONS)
def journey_flow(journey: str) -> dict[str, Any]:
    """Everything one journey needs, run by its deployment (named after the journey).

    Pull CRM events from Prefect → process pending events → sweep date/schedule triggers →
    advance the journey step by step → dispatch the outbox; repeated while new events keep
    arriving (see :data:`MAX_ROUNDS`). Because it handles *every* pending event, a burst of
    events triggers a handful of runs, not one run per event.
    """
    logger = get_run_logger()
    started = time.monotonic()
    summary: dict[str, Any] = {
        "journey": journey,
        "rounds": 0,
        "pulled": 0,
        "processed": 0,
        "swept": 0,
        "steps": {},
        "dispatched": 0,
    }
    with service_scope():
        for round_no in range(MAX_ROUNDS):
            pulled = pull_prefect_events_task()
            processed = process_events_task()
            if round_no == 0:
                summary["swept"] = sweep_triggers_task(journey)
            steps = _advance_steps(journey)
            dispatched = dispatch_task()
            summary["rounds"] += 1
            summary["pulled"] += pulled["accepted"]
            summary["processed"] += processed
            summary["dispatched"] += dispatched
            for name, count in steps.items():
                summary["steps"][name] = summary["steps"].get(name, 0) + count
            if pulled["accepted"] == 0 or time.monotonic() - started > TIME_BUDGET_SECONDS:
                break
    logger.info(
        "journey %s: %d rounds, %d new events, %d processed, %d enrolled by sweep, "
        "%d step executions, %d dispatched",
        journey,
        summary["rounds"],
        summary["pulled"],
        summary["processed"],
        summary["swept"],
        sum(summary["steps"].values()),
        summary["dispatched"],
    )
    return summary


@flow(name="journeys-tick", **_FLOW_OPTIONS)
def tick() -> dict[str, Any]:
    """The periodic safety net (every minute): pull, process, advance every journey, dispatch.

    It finishes waits that came due with no event to trigger their journey, and events that
    arrived through ``journeys ingest`` rather than as Prefect events.
    """
    with service_scope():
        pulled = pull_prefect_events_task()
        processed = process_events_task()
        steps = advance_all_task()
        dispatched = dispatch_task()
    return {
        "pulled": pulled["accepted"],
        "processed": processed,
        "steps": steps,
        "dispatched": dispatched,
    }


@flow(name="ingest-events", **_FLOW_OPTIONS)
def ingest_events(path: str) -> dict[str, int]:
    """Ingest a JSON Lines file of CRM events (the run carries the path, never the events)."""
    with service_scope():
        return ingest_file_task(path)


@flow(name="ingest-prefect-events", **_FLOW_OPTIONS)
def ingest_prefect_events() -> dict[str, Any]:
    """Pull ``crm.*`` Prefect events since the cursor into the event store."""
    with service_scope():
        return pull_prefect_events_task()


@flow(name="process-events", **_FLOW_OPTIONS)
def process_events() -> int:
    """Match every pending event: enroll, wake waits, exit, record goals."""
    with service_scope():
        total = 0
        for _ in range(MAX_ROUNDS):
            count = process_events_task()
            total += count
            if count < BATCH_LIMIT:
                break
        return total


@flow(name="advance-journey", **_FLOW_OPTIONS)
def advance_journey(journey: str) -> dict[str, int]:
    """Run every due step of ``journey``, each as a task run named ``<journey>.<step>``."""
    with service_scope():
        return _advance_steps(journey)


@flow(name="sweep-triggers", **_FLOW_OPTIONS)
def sweep_triggers(journey: str | None = None) -> int:
    """Enroll customers for date and schedule triggers due up to now (all journeys if None)."""
    with service_scope():
        return sweep_triggers_task(journey)


@flow(name="dispatch-outbox", **_FLOW_OPTIONS)
def dispatch_outbox() -> int:
    """Send every due outbox row exactly once (the service dispatches until none is due)."""
    with service_scope():
        return dispatch_task()
