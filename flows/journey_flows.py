"""Prefect flows of journeys: the entry points of every deployment.

These are module-level flows so that Prefect can load them again from their entry point
(``flows/journey_flows.py:journey_flow``), as ``serve`` and workers do; flows built from
closures at run time could not be served together.

=========================  =========================================================  ========
flow (entry point)         what it does                                               deployed
=========================  =========================================================  ========
``journey_flow``           pull CRM events → one pass (each unit a task run named     one per
                           after its step) → dispatch the outbox                      journey
``tick``                   pull CRM events → one pass → dispatch                      ``tick``
``ingest_events``          ingest a JSON Lines/CSV file of CRM events (by path)       ad hoc
``ingest_prefect_events``  pull ``crm.*`` Prefect events into the event store         ad hoc
``run_pass``               one pass: events, fired triggers, due steps, in event time ad hoc
``dispatch_outbox``        send due outbox rows exactly once                          ad hoc
=========================  =========================================================  ========

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from journeys.orchestration.flow_support import current_service, service_scope
from journeys.orchestration.prefect_events import pull_crm_events

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


@task(name="unit", retries=1, retry_delay_seconds=10, **_TASK_OPTIONS)
def unit_task(label: str, work: Callable[[], int]) -> int:
    """One unit of a pass (matching events, a step's due customers, a trigger's fire); the
    task run is named after it (``<journey>.<step>`` for a step) and returns its count.

    Retry-safe: a unit's batches commit their effects together with each enrollment's move to
    its next step, events are marked processed with their effects, and the outbox row of a
    message step has the unique key (enrollment, step, attempt), so a retry only redoes what
    did not commit and cannot write a message twice. Sending is :func:`dispatch_task`'s job.
    """
    count = work()
    get_run_logger().info("%s handled %d", label, count)
    return count


def _run_unit(label: str, work: Callable[[], int]) -> int:
    """Run one unit of a pass as a task run named after it."""
    return unit_task.with_options(name=label, task_run_name=label)(label, work)


def _pass() -> dict[str, int]:
    """One pass of the engine (everything due, in event time), each unit a task run."""
    report = current_service().run_pass(run_unit=_run_unit, by_step=True)
    return report.as_dict()


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


# --------------------------------------------------------------------------- flows


@flow(name="journey", **_FLOW_OPTIONS)
def journey_flow(journey: str) -> dict[str, Any]:
    """The run of one journey's deployment (named after the journey), started by its CRM
    events or its schedule.

    Pull CRM events from Prefect → one pass (match events, sweep the triggers that fired, run
    every due step, each group a task run named after its step) → dispatch the outbox;
    repeated while new events keep arriving (see :data:`MAX_ROUNDS`). A pass covers every
    journey, because a customer's journeys share the customer (a stage one changes is what
    another reads) and the pass keeps each customer's events and steps in time order; the
    deployment that ran decides only when it happens. Because it handles *every* pending
    event, a burst of events triggers a handful of runs, not one run per event.
    """
    logger = get_run_logger()
    started = time.monotonic()
    summary: dict[str, Any] = {
        "journey": journey,
        "rounds": 0,
        "pulled": 0,
        "events": 0,
        "enrolled_by_time": 0,
        "steps": {},
        "dispatched": 0,
    }
    with service_scope():
        for _ in range(MAX_ROUNDS):
            pulled = pull_prefect_events_task()
            counts = _pass()
            dispatched = dispatch_task()
            summary["rounds"] += 1
            summary["pulled"] += pulled["accepted"]
            summary["events"] += counts.pop("events", 0)
            summary["enrolled_by_time"] += counts.pop("enrolled_by_time", 0)
            counts.pop("late_events", None)
            summary["dispatched"] += dispatched
            for name, count in counts.items():
                summary["steps"][name] = summary["steps"].get(name, 0) + count
            if pulled["accepted"] == 0 or time.monotonic() - started > TIME_BUDGET_SECONDS:
                break
    logger.info(
        "journey %s: %d rounds, %d new events, %d matched, %d enrolled by date or schedule, "
        "%d step executions, %d dispatched",
        journey,
        summary["rounds"],
        summary["pulled"],
        summary["events"],
        summary["enrolled_by_time"],
        sum(summary["steps"].values()),
        summary["dispatched"],
    )
    return summary


@flow(name="journeys-tick", **_FLOW_OPTIONS)
def tick() -> dict[str, Any]:
    """The periodic safety net (every minute): pull, one pass, dispatch.

    It finishes waits that came due with no event to trigger their journey, and events that
    arrived through ``journeys ingest`` rather than as Prefect events.
    """
    with service_scope():
        pulled = pull_prefect_events_task()
        counts = _pass()
        dispatched = dispatch_task()
    return {"pulled": pulled["accepted"], "pass": counts, "dispatched": dispatched}


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


@flow(name="run-pass", **_FLOW_OPTIONS)
def run_pass() -> dict[str, int]:
    """One pass: every pending event and due step, and the triggers that fired, in event
    time; each group of work a task run."""
    with service_scope():
        return _pass()


@flow(name="dispatch-outbox", **_FLOW_OPTIONS)
def dispatch_outbox() -> int:
    """Send every due outbox row exactly once (the service dispatches until none is due)."""
    with service_scope():
        return dispatch_task()
