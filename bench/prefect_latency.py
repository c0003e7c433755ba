"""Event-to-outbox latency when CRM events arrive as Prefect events (issue 4, ``make bench``).

What it measures: a CRM event is emitted as a Prefect event ``crm.cart.updated`` (resource
``journeys.customer.<id>``) at a steady 100 events/s; the served deployment of a one-step journey
(event trigger, then straight to ``send``) is triggered, pulls the events, enrolls the customer
and writes the message to the outbox. Latency per event = the outbox row's ``created_at`` minus
the wall-clock instant the event was emitted (carried in the event's ``data.emitted_at``). The
flows use the real clock, on the same machine, so both ends read the same wall clock.

Everything is real and started here, loopback only, and stopped at the end:

* ``prefect server start`` on a free 127.0.0.1 port, SQLite in a temporary ``PREFECT_HOME``,
  telemetry and API logging off, UI off (as ``tests/prefect_fixtures.py``); with
  ``--prefect-db postgres`` its database is a second fresh database on the PostgreSQL server
  instead (production setup; at 100 events/s a SQLite-backed server falls behind on a small
  machine, see docs/benchmarks.md);
* a fresh PostgreSQL database for the journeys store (created, then dropped), on the server at
  ``$JOURNEYS_BENCH_POSTGRES_URL`` or ``$JOURNEYS_TEST_POSTGRES_URL`` (default
  ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``);
* ``journeys deploy SPECS --serve`` in a subprocess with the production defaults (coalescing
  window 10 s, settle 6 s, the every-minute ``tick`` deployment, Prefect's runner defaults),
  ``JOURNEYS_DATABASE_URL`` pointing at that database and messages going to a file.

One customer per event (customers are imported first), so each event makes exactly one
enrollment and one outbox row. Full scale is 60 s at 100 events/s = 6,000 events; ``scale``
shrinks the duration (never below 10 s). After the last event the run waits until every event
has its outbox row (bounded: see :data:`DRAIN_SECONDS`).

Latency is bounded below by the coalescing: a journey's trigger fires on the first event of a
window and the run is scheduled ``window + settle`` seconds after it (16 s with the defaults), so
the event that triggers a run waits at least that long, plus the runner's poll, the flow run's
start-up and its work; later events of the window wait less (down to the settle time), and events
that arrive while a run is busy are picked up by its next round (the server's event persister
flushes every 5 s).

    .venv/bin/python bench/prefect_latency.py                 # full scale (60 s of events)
    .venv/bin/python bench/prefect_latency.py --scale 0.2     # or BENCH_SCALE=0.2: 12 s
    .venv/bin/python bench/prefect_latency.py --prefect-db postgres

Prints a table and one JSON line. ``run(scale)`` returns the same dict (for ``bench/run.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from journeys.orchestration.demo_prefect import stop_process_group

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

RATE = 100.0
"""Events per second emitted."""

FULL_SECONDS = 60.0
"""Emission time at full scale (6,000 events at 100/s)."""

MIN_SECONDS = 10.0
"""Emission time never goes below this, whatever the scale."""

DRAIN_SECONDS = 180.0
"""After the last event, wait at most this long plus the emission time for every outbox row (it
covers the window and settle time, a backlog on the server, a run, and the every-minute tick
that picks up an event a finishing run missed)."""

QUIET_SECONDS = 90.0
"""Then wait at most this long for the journey's runs to finish and the outbox to be sent."""

STARTUP_SECONDS = 120.0
"""Upper bound for the Prefect server to answer and the deployments to be registered."""

PG_URL_ENVS = ("JOURNEYS_BENCH_POSTGRES_URL", "JOURNEYS_TEST_POSTGRES_URL")
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

JOURNEY = "bench-latency"
EVENT_TYPE = "cart.updated"

SPEC = f"""\
# Benchmark-only journey (bench/prefect_latency.py): the first step after the event trigger is a
# send, so an event becomes an outbox row as soon as a run processes it.
journey: {JOURNEY}
name: Prefect event latency (benchmark)
stage: consideration
trigger: {{event: {EVENT_TYPE}}}
steps:
  - id: remind
    send: {{template: bench_reminder}}
"""

TEMPLATE = """\
---
subject: "Your cart is waiting"
---
<p>Hi {{ customer.first_name }}, your cart is waiting.</p>
"""


# ----------------------------------------------------------------------------- helpers


def machine(pg_version: str | None = None) -> dict[str, Any]:
    """CPU model, cores, RAM, OS, Python, Prefect and PostgreSQL versions."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = 0.0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) / 1024 / 1024
    import prefect

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(ram, 1),
        "python": platform.python_version(),
        "prefect": prefect.__version__,
        "postgresql": pg_version,
        "platform": platform.platform(),
    }


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence (``p`` in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _executable(name: str) -> str:
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def client_env(home: Path, api_url: str | None) -> dict[str, str]:
    """Environment of a child process: no inherited Prefect or journeys settings, telemetry and
    API logging off, its own ``PREFECT_HOME``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "JOURNEYS_"))}
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_LOGGING_TO_API_ENABLED": "false",
        }
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables of this process for the duration; restore them after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


# ----------------------------------------------------------------------------- components


@contextlib.contextmanager
def postgres_database(prefix: str = "journeys_bench_latency") -> Iterator[tuple[str, str]]:
    """A fresh, uniquely named PostgreSQL database; yields (URL, server version); dropped after."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    from journeys.store.db import database_url

    configured = next((os.environ[k] for k in PG_URL_ENVS if os.environ.get(k)), None)
    server_url = database_url(configured or DEFAULT_PG_URL)
    admin = sa.create_engine(
        server_url,
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        connect_args={"connect_timeout": 5},
    )
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        version = str(conn.exec_driver_sql("SHOW server_version").scalar_one())
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False), version
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()


@contextlib.contextmanager
def prefect_server(workdir: Path, database_url: str | None = None) -> Iterator[str]:
    """``prefect server start`` on a free loopback port (SQLite unless ``database_url``, an
    asyncpg URL, is given; telemetry, UI and API logging off); yields the API URL; stops the
    server's process group at the end."""
    import httpx

    home = workdir / "prefect-server"
    home.mkdir()
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = client_env(home, None)
    env.update(
        {
            "PREFECT_API_DATABASE_CONNECTION_URL": database_url
            or f"sqlite+aiosqlite:///{home / 'prefect.db'}",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "false",
        }
    )
    log_path = workdir / "prefect-server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [_executable("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def healthy() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{api_url}/health", timeout=1.0).status_code == 200
        return False

    try:
        _wait_ready(proc, log_path, healthy, "prefect server", interval=0.25)
        yield api_url
    finally:
        stop_process_group(proc, signal.SIGTERM)


def _wait_ready(
    proc: subprocess.Popen[bytes],
    log_path: Path,
    ready: Callable[[], bool],
    what: str,
    *,
    interval: float,
) -> None:
    """Poll ``ready`` until it holds; fail with the log's tail if ``proc`` exits or
    :data:`STARTUP_SECONDS` pass."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while not ready():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited:\n{_tail(log_path)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {STARTUP_SECONDS} s:\n{_tail(log_path)}")
        time.sleep(interval)


@contextlib.contextmanager
def served_journey(
    workdir: Path,
    api_url: str,
    db_url: str,
    specs: Path,
    templates: Path,
    window: int | None,
    settle: int | None,
    poll: float | None,
) -> Iterator[subprocess.Popen[bytes]]:
    """``journeys deploy SPECS --serve`` in a subprocess until its deployments are registered."""
    from prefect import get_client

    home = workdir / "prefect-serve"
    home.mkdir()
    env = client_env(home, api_url)
    env["JOURNEYS_DATABASE_URL"] = db_url
    env["JOURNEYS_MESSAGES_FILE"] = str(workdir / "messages.jsonl")
    if poll is not None:
        env["PREFECT_RUNNER_POLL_FREQUENCY"] = str(poll)
    command = [
        _executable("journeys"),
        "deploy",
        str(specs),
        "--templates",
        str(templates),
        "--serve",
    ]
    if window is not None:
        command += ["--window", str(window)]
    if settle is not None:
        command += ["--settle", str(settle)]
    log_path = workdir / "serve.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def registered() -> bool:
        with get_client(sync_client=True) as client:
            return {JOURNEY, "tick"} <= {d.name for d in client.read_deployments()}

    try:
        _wait_ready(proc, log_path, registered, "journeys deploy --serve", interval=0.5)
        time.sleep(2.0)  # the runner starts polling; the server loads the new trigger
        yield proc
    finally:
        stop_process_group(proc, signal.SIGINT)


def import_customers(db_url: str, specs: Path, templates: Path, count: int) -> None:
    """Migrate the journeys database and import ``count`` customers ``b-000000`` …"""
    from journeys.service import JourneyService

    service = JourneyService.open(db_url, specs=specs, templates=templates)
    try:
        report = service.import_customers(
            {"id": _customer(i), "email": f"bench{i}@example.com", "first_name": f"B{i}"}
            for i in range(count)
        )
        if report.accepted != count:
            raise RuntimeError(f"imported {report.accepted} of {count} customers: {report.errors}")
    finally:
        service.close()


def _customer(i: int) -> str:
    return f"b-{i:06d}"


async def emit_paced(count: int, rate: float) -> dict[str, Any]:
    """Emit ``count`` ``crm.cart.updated`` events at ``rate`` per second over one connection.

    Event ``i`` is due at ``start + i / rate``; each carries its emission instant (wall clock)
    in ``data.emitted_at``. Returns the achieved rate and how far emission fell behind.
    """
    from prefect.events import get_events_client

    from journeys.clock import iso
    from journeys.orchestration.prefect_events import to_prefect_event

    lag_max = 0.0
    first_wall = datetime.now(UTC)
    async with get_events_client() as client:
        start = time.monotonic()
        first = last = start
        for i in range(count):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now_mono = time.monotonic()
            lag_max = max(lag_max, now_mono - due)
            emitted = datetime.now(UTC)
            crm_event = {
                "id": f"bench-{i:06d}",
                "type": EVENT_TYPE,
                "customer_id": _customer(i),
                "occurred_at": iso(emitted),
                "data": {"emitted_at": iso(emitted), "cart_total": 42.0},
            }
            await client.emit(to_prefect_event(crm_event, emitted))
            if i == 0:
                first, first_wall = now_mono, emitted
            last = time.monotonic()
    span = last - first
    return {
        "emitted": count,
        "emit_seconds": round(span, 3),
        "events_per_s": round((count - 1) / span, 1) if span > 0 and count > 1 else None,
        "emit_max_lag_ms": round(lag_max * 1000, 1),
        "first_emitted_at": first_wall,
    }


def outbox_count(engine: Any) -> int:
    import sqlalchemy as sa

    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM outbox WHERE journey = :j"), {"j": JOURNEY}
            ).scalar_one()
        )


def wait_for_outbox(
    engine: Any, expected: int, serve: subprocess.Popen[bytes], timeout: float
) -> float:
    """Poll until ``expected`` outbox rows exist (or ``timeout``); returns the seconds waited."""
    started = time.monotonic()
    while outbox_count(engine) < expected:
        if serve.poll() is not None or time.monotonic() - started > timeout:
            break
        time.sleep(0.5)
    return time.monotonic() - started


def latencies(engine: Any) -> dict[str, list[float]]:
    """Per event: seconds from emission to the event stored, the outbox row, the message sent."""
    import sqlalchemy as sa

    from journeys.clock import parse_instant

    query = sa.text(
        "SELECT e.data, e.received_at, o.created_at, o.sent_at FROM outbox o "
        "JOIN events e ON e.customer_id = o.customer_id AND e.type = :t WHERE o.journey = :j"
    )
    out: dict[str, list[float]] = {"stored": [], "outbox": [], "sent": []}
    with engine.connect() as conn:
        for data, received_at, created_at, sent_at in conn.execute(
            query, {"t": EVENT_TYPE, "j": JOURNEY}
        ):
            emitted = parse_instant(data["emitted_at"])
            out["stored"].append((received_at - emitted).total_seconds())
            out["outbox"].append((created_at - emitted).total_seconds())
            if sent_at is not None:
                out["sent"].append((sent_at - emitted).total_seconds())
    for values in out.values():
        values.sort()
    return out


def _read_runs(client: Any, deployment_name: str) -> list[Any]:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    deployment = client.read_deployment_by_name(deployment_name)
    return list(
        client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
        )
    )


def wait_for_quiet(engine: Any, serve: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll until no journey run is still going and no outbox row is pending (or ``timeout``),
    so run counts are final and the dispatch is measured too."""
    import sqlalchemy as sa
    from prefect import get_client

    pending = sa.text("SELECT count(*) FROM outbox WHERE journey = :j AND status = 'pending'")
    deadline = time.monotonic() + timeout
    while serve.poll() is None and time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            runs = _read_runs(client, f"journey/{JOURNEY}")
        busy = any(r.state is None or not r.state.is_final() for r in runs)
        with engine.connect() as conn:
            unsent = int(conn.execute(pending, {"j": JOURNEY}).scalar_one())
        if not busy and unsent == 0:
            return
        time.sleep(1.0)


def flow_runs(origin: datetime) -> dict[str, Any]:
    """Flow runs of the journey's deployment and of ``tick``: counts by state, and for each
    journey run its timeline in seconds after the first event: ``created`` (when the server's
    automation action created it), ``expected`` (its scheduled start: the trigger's firing time
    plus window and settle, as the server computed it), ``start`` and ``end``."""
    from prefect import get_client

    def offset(at: datetime | None) -> float | None:
        return None if at is None else round((at - origin).total_seconds(), 1)

    result: dict[str, Any] = {}
    with get_client(sync_client=True) as client:
        for key, name in (("journey", f"journey/{JOURNEY}"), ("tick", "journeys-tick/tick")):
            runs = _read_runs(client, name)
            states = Counter(r.state_name or "?" for r in runs)
            worked = [r for r in runs if r.state is not None and r.state.is_completed()]
            longest = max((r.total_run_time.total_seconds() for r in worked), default=0.0)
            result[key] = {
                "runs": len(runs),
                "completed": len(worked),
                "states": dict(sorted(states.items())),
                "run_seconds_max": round(longest, 1),
            }
            if key == "journey":
                result[key]["timeline"] = [
                    {
                        "state": r.state_name,
                        "created": offset(r.created),
                        "expected": offset(r.expected_start_time),
                        "start": offset(r.start_time),
                        "end": offset(r.end_time),
                    }
                    for r in runs
                ]
    return result


# ----------------------------------------------------------------------------- the benchmark


def run(
    scale: float = 1.0,
    *,
    rate: float = RATE,
    window: int | None = None,
    settle: int | None = None,
    poll: float | None = None,
    prefect_db: str = "sqlite",
    keep: bool = False,
) -> dict[str, Any]:
    """Run the benchmark; returns figures, parameters and the machine (JSON-ready).

    ``window``/``settle`` default to ``journeys deploy``'s defaults; ``poll`` sets
    ``PREFECT_RUNNER_POLL_FREQUENCY`` of the served process (default: Prefect's).
    ``prefect_db`` is the Prefect server's own database: ``sqlite`` (default, as the tests and the
    demo) or ``postgres`` (a second fresh database on the same PostgreSQL server, as
    docs/operations.md recommends for production). ``keep`` leaves the temporary directory (logs,
    messages) in place and reports its path.
    """
    if prefect_db not in ("sqlite", "postgres"):
        raise ValueError(f"prefect_db must be 'sqlite' or 'postgres', not {prefect_db!r}")
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    from journeys.orchestration.prefect_deploy import (
        DEFAULT_SETTLE_SECONDS,
        DEFAULT_WINDOW_SECONDS,
    )

    seconds = max(MIN_SECONDS, FULL_SECONDS * scale)
    count = max(2, round(rate * seconds))
    eff_window = DEFAULT_WINDOW_SECONDS if window is None else window
    eff_settle = DEFAULT_SETTLE_SECONDS if settle is None else settle
    drain_seconds = DRAIN_SECONDS + seconds

    workdir = Path(tempfile.mkdtemp(prefix="journeys-bench-prefect-"))
    specs = workdir / "specs"
    templates = workdir / "templates"
    specs.mkdir()
    templates.mkdir()
    (specs / f"{JOURNEY}.yaml").write_text(SPEC, encoding="utf-8")
    (templates / "bench_reminder.html").write_text(TEMPLATE, encoding="utf-8")
    own_home = workdir / "prefect-client"
    own_home.mkdir()

    try:
        with contextlib.ExitStack() as stack:
            db_url, pg_version = stack.enter_context(postgres_database())
            import_customers(db_url, specs, templates, count)
            server_db = None
            if prefect_db == "postgres":
                from sqlalchemy.engine import make_url

                prefect_url, _ = stack.enter_context(postgres_database("prefect_bench_latency"))
                server_db = (
                    make_url(prefect_url)
                    .set(drivername="postgresql+asyncpg")
                    .render_as_string(hide_password=False)
                )
            api_url = stack.enter_context(prefect_server(workdir, server_db))
            # This process talks to the server too (emits events, reads runs back).
            stack.enter_context(
                patched_environ(
                    {
                        "PREFECT_HOME": str(own_home),
                        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                        "DO_NOT_TRACK": "1",
                        "PREFECT_LOGGING_TO_API_ENABLED": "false",
                        "PREFECT_API_URL": api_url,
                    }
                )
            )
            from prefect.settings import (
                PREFECT_API_URL,
                PREFECT_LOGGING_TO_API_ENABLED,
                temporary_settings,
            )

            stack.enter_context(
                temporary_settings(
                    updates={PREFECT_API_URL: api_url, PREFECT_LOGGING_TO_API_ENABLED: False}
                )
            )
            serve = stack.enter_context(
                served_journey(workdir, api_url, db_url, specs, templates, window, settle, poll)
            )
            engine = sa.create_engine(db_url, poolclass=NullPool)
            stack.callback(engine.dispose)

            emission = asyncio.run(emit_paced(count, rate))
            drained = wait_for_outbox(engine, count, serve, drain_seconds)
            wait_for_quiet(engine, serve, QUIET_SECONDS)
            lat = latencies(engine)
            runs = flow_runs(emission.pop("first_emitted_at"))
            if serve.poll() is not None:
                raise RuntimeError(f"journeys deploy --serve died:\n{_tail(workdir / 'serve.log')}")
            figures = machine(pg_version)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)

    outbox = lat["outbox"]

    def stats(values: Sequence[float]) -> dict[str, float | None]:
        if not values:
            return {"p50": None, "p95": None, "p99": None, "max": None, "min": None}
        return {
            "min": round(values[0], 2),
            "p50": round(percentile(values, 50), 2),
            "p95": round(percentile(values, 95), 2),
            "p99": round(percentile(values, 99), 2),
            "max": round(values[-1], 2),
        }

    return {
        "name": "prefect_event_latency",
        "scale": scale,
        "rate_target": rate,
        "seconds_target": seconds,
        "events": count,
        **emission,
        "outbox_rows": len(outbox),
        "missing": count - len(outbox),
        "drain_seconds": round(drained, 1),
        "drain_limit_s": drain_seconds,
        "latency_s": stats(outbox),
        "stored_latency_s": stats(lat["stored"]),
        "sent_latency_s": stats(lat["sent"]),
        "flow_runs": runs,
        "window_s": eff_window,
        "settle_s": eff_settle,
        "lower_bound_s": eff_window + eff_settle,
        "runner_poll_s": poll,
        "database": "postgresql",
        "prefect_database": prefect_db,
        "workdir": str(workdir) if keep else None,
        "machine": figures,
    }


def table(result: Mapping[str, Any]) -> str:
    """The human-readable summary."""
    lat = result["latency_s"]
    runs = result["flow_runs"]
    rows = [
        ("events emitted", f"{result['events']} in {result['emit_seconds']} s"),
        ("events/s achieved", f"{result['events_per_s']} (target {result['rate_target']:g})"),
        ("outbox rows", f"{result['outbox_rows']} (missing {result['missing']})"),
        (
            "event -> outbox (s)",
            f"p50 {lat['p50']}  p95 {lat['p95']}  p99 {lat['p99']}  max {lat['max']}",
        ),
        (
            "event -> stored (s)",
            "p50 {p50}  p99 {p99}  max {max}".format(**result["stored_latency_s"]),
        ),
        ("event -> sent (s)", "p50 {p50}  p99 {p99}  max {max}".format(**result["sent_latency_s"])),
        (
            "journey flow runs",
            f"{runs['journey']['runs']} {runs['journey']['states']} "
            f"(longest {runs['journey']['run_seconds_max']} s; timeline in s after the first "
            "event:)",
        ),
        *(
            (
                f"  run {n}",
                "created {created}  expected {expected}  start {start}  end {end}  {state}".format(
                    **r
                ),
            )
            for n, r in enumerate(runs["journey"]["timeline"], 1)
        ),
        ("tick flow runs", f"{runs['tick']['runs']} {runs['tick']['states']}"),
        (
            "lower bound",
            f"window {result['window_s']} s + settle {result['settle_s']} s = "
            f"{result['lower_bound_s']} s for the event that triggers a run",
        ),
        (
            "machine",
            "{cpu}, {cores} cores, {ram_gib} GiB; Python {python}, Prefect {prefect}, "
            "PostgreSQL {postgresql}".format(**result["machine"])
            + f"; Prefect server on {result['prefect_database']}",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", 1.0)))
    parser.add_argument("--rate", type=float, default=RATE, help="events per second")
    parser.add_argument("--window", type=int, help="coalescing window (journeys deploy --window)")
    parser.add_argument("--settle", type=int, help="settle seconds (journeys deploy --settle)")
    parser.add_argument(
        "--poll", type=float, help="PREFECT_RUNNER_POLL_FREQUENCY of the served process"
    )
    parser.add_argument(
        "--prefect-db",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="the Prefect server's own database (default sqlite)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, messages)")
    args = parser.parse_args(argv)
    result = run(
        args.scale,
        rate=args.rate,
        window=args.window,
        settle=args.settle,
        poll=args.poll,
        prefect_db=args.prefect_db,
        keep=args.keep,
    )
    print(table(result))
    print(json.dumps(result, sort_keys=True))
    return 0 if result["missing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
