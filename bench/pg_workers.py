"""Benchmark: journeys worker processes on PostgreSQL (issue 4, "Scale-out on PostgreSQL").

``run(scale)`` measures, each on a fresh PostgreSQL database that is created and dropped:

- **throughput** with 1, 2 and 4 worker processes (``journeys.worker.Worker``, the loop of
  ``journeys run --worker``) on the same backlog: ``n`` customers each enter a three-send
  journey; the clock runs from "go" (every worker started and waiting) until every enrollment
  has completed and every message is dispatched. Reported as enrollment-steps/s (3 per
  enrollment), plus events/s and messages/s over the same time;
- **event-to-outbox latency** (p50, p99) when events arrive at 100 events/s through
  ``JourneyService.ingest`` (the API/``journeys ingest`` path) with two workers running:
  from the event's ``received_at`` to its first message's ``outbox.created_at``. Events sent
  as Prefect events (``crm.*``) take a different path, measured by the Prefect benchmark.

Channels are null (accept everything, send nothing), so the numbers are the engine's and the
database's, not a provider's. The server is ``$JOURNEYS_BENCH_POSTGRES_URL``, else
``$JOURNEYS_TEST_POSTGRES_URL``, else ``postgresql://postgres@127.0.0.1:5432/postgres``; if it
cannot be reached the result says so under ``"skipped"``.

Run alone: ``python bench/pg_workers.py [--scale 0.2]``. ``bench/run.py`` calls :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

HERE = Path(__file__).resolve()
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
WORKER_COUNTS = (1, 2, 4)
LATENCY_RATE = 100.0  # events per second
LATENCY_WORKERS = 2
BATCH_SIZE = 500
IDLE_INTERVAL = 0.05  # seconds a worker sleeps when a pass found nothing

DRIP = """\
journey: drip
name: Three-message drip
stage: consideration
trigger: {event: drip.signup}
steps:
  - id: first
    send: {template: hello}
  - id: second
    send: {template: hello}
  - id: third
    send: {template: hello}
"""
HELLO = "---\nsubject: Hello {{ customer.first_name }}\n---\n<p>Hi {{ customer.first_name }}</p>\n"


# ---------------------------------------------------------------------------------- set-up


def server_url() -> str:
    """The maintenance-database URL of the PostgreSQL server to benchmark on."""
    from journeys.store.db import database_url

    return database_url(
        os.environ.get("JOURNEYS_BENCH_POSTGRES_URL")
        or os.environ.get("JOURNEYS_TEST_POSTGRES_URL")
        or DEFAULT_SERVER
    )


def _admin() -> sa.Engine:
    return sa.create_engine(
        server_url(),
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        connect_args={"connect_timeout": 3},
    )


@contextmanager
def fresh_database() -> Iterator[str]:
    """URL of a new, migrated database, dropped (connections terminated) afterwards."""
    from journeys.store.db import create_engine, migrate

    admin = _admin()
    name = f"journeys_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(server_url()).set(database=name).render_as_string(hide_password=False)
    try:
        engine = create_engine(url, poolclass=NullPool)
        migrate(engine)
        engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()


def write_project(root: Path) -> None:
    """The three-send journey and its template under ``root``."""
    (root / "journey_specs").mkdir(parents=True, exist_ok=True)
    (root / "templates").mkdir(parents=True, exist_ok=True)
    (root / "journey_specs" / "drip.yaml").write_text(DRIP, encoding="utf-8")
    (root / "templates" / "hello.html").write_text(HELLO, encoding="utf-8")


def open_feeder(url: str, root: Path) -> Any:
    """A :class:`JourneyService` (null channels) for importing customers and ingesting."""
    from journeys.channels.base import ChannelRegistry
    from journeys.service import STANDARD_CHANNELS, JourneyService
    from journeys.simulate import NullChannel

    channels = ChannelRegistry({n: NullChannel() for n in STANDARD_CHANNELS})
    return JourneyService.open(
        url, specs=root / "journey_specs", templates=root / "templates", channels=channels
    )


def customers(prefix: str, n: int) -> list[dict[str, Any]]:
    """``n`` customers with an email address."""
    return [
        {"id": f"{prefix}{i}", "email": f"{prefix}{i}@example.com", "first_name": "Ann"}
        for i in range(n)
    ]


def signup(cid: str) -> dict[str, Any]:
    """The trigger event of ``cid`` (occurred now, so it is due at once)."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {
        "id": f"signup:{cid}",
        "type": "drip.signup",
        "customer_id": cid,
        "occurred_at": now,
        "data": {},
    }


# ---------------------------------------------------------------------------------- workers


class WorkerPool:
    """Worker processes (this file with ``--worker``) that start their loop on "go"."""

    def __init__(self, url: str, root: Path, count: int) -> None:
        self.go = root / f"go-{uuid.uuid4().hex[:6]}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        for i in range(count):
            log = root / f"worker-{count}-{i}.log"
            args = [sys.executable, str(HERE), "--worker", url, str(root), str(self.go)]
            with log.open("wb") as handle:
                self.procs.append(subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT))
            self.logs.append(log)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until every worker has loaded the project and opened the store."""
        deadline = time.monotonic() + timeout
        for proc, log in zip(self.procs, self.logs, strict=True):
            while "READY" not in log.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start:\n{log.read_text()}")
                time.sleep(0.02)

    def start(self) -> None:
        """Release every worker at once."""
        self.go.touch()

    def stop(self) -> None:
        """SIGTERM, then wait (SIGKILL after 60 s)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def errors(self) -> list[str]:
        """Error lines from the workers' logs."""
        bad = ("Traceback", "ERROR", "deadlock", "conflicted")
        return [
            line
            for log in self.logs
            for line in log.read_text(errors="replace").splitlines()
            if any(b in line for b in bad)
        ]


def _worker_main(argv: Sequence[str]) -> None:
    """``--worker URL ROOT GO``: a worker with null channels, looping once GO exists."""
    import logging

    from journeys.channels.base import ChannelRegistry
    from journeys.service import STANDARD_CHANNELS
    from journeys.simulate import NullChannel
    from journeys.worker import Worker, open_worker_service

    url, root, go = argv
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    service = open_worker_service(
        url,
        Path(root) / "journey_specs",
        Path(root) / "templates",
        batch_size=BATCH_SIZE,
        channels=ChannelRegistry({n: NullChannel() for n in STANDARD_CHANNELS}),
    )
    worker = Worker(service, interval=IDLE_INTERVAL)
    worker.install_signal_handlers()
    print("READY", flush=True)
    try:
        while not Path(go).exists() and not worker.stopping:
            time.sleep(0.01)
        worker.run()
    finally:
        service.close()


def _progress(db: sa.Engine) -> tuple[int, int, int]:
    with db.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM enrollments WHERE status = 'completed'),"
                " (SELECT count(*) FROM outbox WHERE status = 'sent'),"
                " (SELECT count(*) FROM events WHERE processed_at IS NULL)"
            )
        ).one()
    return row[0], row[1], row[2]


# ----------------------------------------------------------------------------- measurements


def measure_throughput(workers: int, n: int, root: Path) -> dict[str, Any]:
    """``n`` three-send enrollments worked off by ``workers`` processes on a fresh database."""
    with fresh_database() as url:
        feeder = open_feeder(url, root)
        try:
            feeder.import_customers(customers("c", n))
            feeder.ingest([signup(f"c{i}") for i in range(n)])
            pool = WorkerPool(url, root, workers)
            try:
                pool.wait_ready()
                start = time.monotonic()
                pool.start()
                while _progress(feeder.db) != (n, 3 * n, 0):
                    if time.monotonic() - start > 600:
                        raise RuntimeError(f"{workers} workers: not done after 600 s")
                    time.sleep(0.02)
                elapsed = time.monotonic() - start
            finally:
                pool.stop()
            errors = pool.errors()
        finally:
            feeder.close()
    return {
        "workers": workers,
        "enrollments": n,
        "seconds": round(elapsed, 3),
        "enrollment_steps_per_s": round(3 * n / elapsed, 1),
        "events_per_s": round(n / elapsed, 1),
        "messages_per_s": round(3 * n / elapsed, 1),
        "errors": errors[:10],
    }


def measure_latency(
    seconds: float, root: Path, rate: float = LATENCY_RATE, workers: int = LATENCY_WORKERS
) -> dict[str, Any]:
    """Event-to-outbox latency with events ingested at ``rate`` per second, each as soon as it
    is due (one ingest call per event, or per few events if a call takes longer than 1/rate).
    """
    n = max(1, int(seconds * rate))
    with fresh_database() as url:
        feeder = open_feeder(url, root)
        try:
            feeder.import_customers(customers("l", n))
            pool = WorkerPool(url, root, workers)
            try:
                pool.wait_ready()
                pool.start()
                start = time.monotonic()
                sent = 0
                calls = 0
                while sent < n:
                    # Everything due by now in one call: the schedule holds even when one
                    # ingest call takes longer than the gap between two events.
                    due = min(n, int((time.monotonic() - start) * rate) + 1)
                    feeder.ingest([signup(f"l{i}") for i in range(sent, due)])
                    sent, calls = due, calls + 1
                    pause = start + sent / rate - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                offered = time.monotonic() - start
                deadline = time.monotonic() + 120
                while _progress(feeder.db)[0] < n and time.monotonic() < deadline:
                    time.sleep(0.05)
            finally:
                pool.stop()
            with feeder.db.connect() as conn:
                rows = conn.execute(
                    sa.text(
                        "SELECT extract(epoch FROM o.created_at - e.received_at)"
                        " FROM events e JOIN enrollments n ON n.customer_id = e.customer_id"
                        " JOIN outbox o ON o.enrollment_id = n.id AND o.step = 'first'"
                        " WHERE e.type = 'drip.signup'"
                    )
                ).scalars()
                latencies = sorted(float(x) for x in rows)
            errors = pool.errors()
        finally:
            feeder.close()
    return {
        "path": "JourneyService.ingest (journeys ingest / HTTP API)",
        "note": "Prefect-event path (crm.* events -> triggered flow runs) is measured by the "
        "Prefect benchmark, not here",
        "rate_events_per_s": rate,
        "offered_events_per_s": round(n / offered, 1) if offered else None,
        "ingest_calls": calls,
        "workers": workers,
        "worker_idle_poll_s": IDLE_INTERVAL,
        "events": n,
        "measured": len(latencies),
        "p50_ms": round(_percentile(latencies, 50) * 1000, 1) if latencies else None,
        "p99_ms": round(_percentile(latencies, 99) * 1000, 1) if latencies else None,
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
        "errors": errors[:10],
    }


def _percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    k = max(1, math.ceil(pct / 100 * len(sorted_values))) - 1
    return sorted_values[k]


def run(scale: float = 1.0) -> dict[str, Any]:
    """Throughput with 1, 2 and 4 workers and event-to-outbox latency; a JSON-ready dict.

    ``scale`` 1.0 means 4,000 enrollments per throughput run and 10 s of events at 100/s.
    """
    n = max(200, int(4000 * scale))
    seconds = max(3.0, 10.0 * scale)
    result: dict[str, Any] = {
        "name": "pg_workers",
        "unit": "enrollment-steps/s",
        "cpus": os.cpu_count(),
        "batch_size": BATCH_SIZE,
    }
    try:
        with _admin().connect() as conn:
            result["server"] = conn.exec_driver_sql("SHOW server_version").scalar()
    except Exception as exc:  # no server: say so instead of failing the whole bench run
        result["skipped"] = f"PostgreSQL not reachable: {str(exc).splitlines()[0]}"
        return result
    with tempfile.TemporaryDirectory(prefix="journeys-bench-") as tmp:
        root = Path(tmp)
        write_project(root)
        runs = [measure_throughput(w, n, root) for w in WORKER_COUNTS]
        result["throughput"] = {str(r["workers"]): r for r in runs}
        base = runs[0]["enrollment_steps_per_s"]
        result["speedup"] = {
            str(r["workers"]): round(r["enrollment_steps_per_s"] / base, 2) for r in runs
        }
        result["latency"] = measure_latency(seconds, root)
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``--scale S`` prints the result as JSON; ``--worker`` is internal."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--worker"]:
        _worker_main(args[1:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    options = parser.parse_args(args)
    print(json.dumps(run(options.scale), indent=2))


if __name__ == "__main__":
    main()
