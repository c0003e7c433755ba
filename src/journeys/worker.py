"""``journeys run --worker``: one of many worker processes sharing a PostgreSQL database.

A worker loops over the core operations (see the README) — match pending events, sweep date and
schedule triggers, advance due enrollments, dispatch the outbox — exactly like the embedded
runner's tick, but without APScheduler: there is no per-process job store to keep single, so
any number of workers on any number of machines can run against one PostgreSQL database.

Why that is safe (see ``docs/scaling.md``):

- every batch is one transaction that holds its customers with transaction-level advisory
  locks (:mod:`journeys.store.claims`) and its outbox rows with ``SELECT … FOR UPDATE SKIP
  LOCKED``, so two workers never run one customer's timeline or send one message at once;
- a worker killed with SIGKILL leaves an open transaction behind; PostgreSQL rolls it back when
  the connection drops, its row locks go with it, and the rows are claimable again;
- dispatch claims, sends and marks ``sent`` in one transaction, and the outbox row of a
  message is keyed by (enrollment, step, attempt), so a replayed step never queues a message
  twice. A worker that dies after the provider accepted a batch but before its commit leaves
  those rows ``pending``: another worker sends them again (at-least-once at the provider, for
  that one in-flight batch only).

SQLite is refused: it has one writer at a time, so workers would only queue on its lock.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from journeys.runtime.passes import PassReport
from journeys.store.db import database_url, describe

if TYPE_CHECKING:
    from journeys.service import JourneyService

log = logging.getLogger("journeys.worker")

SQLITE_REFUSAL = """\
journeys run --worker needs PostgreSQL, but the database is SQLite ({url}).
SQLite allows one writer process at a time: several workers would only queue on its lock.
Either run the embedded single-process service on SQLite:
    journeys run
or move to PostgreSQL (see docs/scaling.md):
    1. create a database:   createdb journeys
    2. point journeys at it: export JOURNEYS_DATABASE_URL=postgresql://USER@HOST:5432/journeys
       (the schema is migrated on first start)
    3. load your customers and events there (journeys import customers …, journeys ingest …)
    4. start as many workers as you need: journeys run --worker   (one per process/machine)"""


class WorkerConfigError(ValueError):
    """The worker cannot run against this configuration (e.g. a SQLite database)."""


def require_postgres(url: str | None) -> str:
    """The resolved database URL if it is PostgreSQL; :class:`WorkerConfigError` otherwise.

    ``url`` is resolved like every command does (explicit, ``$JOURNEYS_DATABASE_URL``, default
    SQLite), so a worker started without a URL is refused rather than silently using SQLite.
    """
    resolved = database_url(url)
    backend = make_url(resolved).get_backend_name()
    if backend == "sqlite":
        raise WorkerConfigError(SQLITE_REFUSAL.format(url=describe(resolved)))
    if backend != "postgresql":
        raise WorkerConfigError(
            f"journeys run --worker supports PostgreSQL only, not {backend!r} "
            f"({describe(resolved)})"
        )
    return resolved


@dataclass
class WorkerPassReport:
    """What one worker pass did: the pass (events, fires, steps) and what it dispatched."""

    run: PassReport = field(default_factory=PassReport)
    dispatched: int = 0

    @property
    def busy(self) -> bool:
        """Whether the pass did anything (the worker then goes again without sleeping)."""
        return self.run.busy or bool(self.dispatched)

    def as_dict(self) -> dict[str, int]:
        """Flat counts, the shape :meth:`JourneyService.tick` returns."""
        return {**self.run.as_dict(), "dispatched": self.dispatched}


def worker_pass(service: JourneyService) -> WorkerPassReport:
    """One pass (:mod:`journeys.runtime.passes`), then dispatch.

    A pass does not wait for work other workers hold: customers they hold are skipped, and
    the next pass picks up whatever they leave behind (or whatever a dead worker's aborted
    transaction released). Dispatch uses the runtime's batch size too, so one send-and-commit
    transaction (the at-least-once window if the worker dies) never covers more than a batch.
    """
    report = WorkerPassReport(run=service.run_pass())
    report.dispatched = service.dispatch(limit=service.runtime.batch_size)
    return report


class Worker:
    """The worker loop: passes back to back while there is work, ``interval`` apart when idle.

    :meth:`stop` (or SIGTERM/SIGINT when :meth:`install_signal_handlers` was called) ends the
    loop after the current batch; a second signal interrupts at once (the open transaction
    rolls back, which is always safe).
    """

    def __init__(
        self,
        service: JourneyService,
        *,
        interval: float = 1.0,
        on_pass: Callable[[WorkerPassReport], None] | None = None,
    ) -> None:
        self.service = service
        self.interval = interval
        self.on_pass = on_pass
        self.passes = 0
        self.failures = 0
        self._stop = threading.Event()

    def stop(self) -> None:
        """Ask the loop to end after the current pass."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop the loop gracefully; a second one interrupts the batch."""

        def handler(signum: int, frame: Any) -> None:
            if self._stop.is_set():
                raise KeyboardInterrupt
            log.info("signal %d: stopping after the current batch", signum)
            self._stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run_once(self) -> WorkerPassReport | None:
        """One pass; a failing pass is logged (its batch rolled back) and returns None."""
        try:
            report = worker_pass(self.service)
        except Exception:
            self.failures += 1
            log.exception("worker pass failed; its batch was rolled back and will be retried")
            return None
        self.passes += 1
        if self.on_pass is not None:
            self.on_pass(report)
        return report

    def run(self, max_passes: int | None = None) -> None:
        """Loop until stopped (or ``max_passes`` passes, for tests).

        A ``KeyboardInterrupt`` (Ctrl-C twice, or a second SIGTERM) ends the loop at once: the
        open batch's transaction rolls back and its rows are claimable again.
        """
        log.info("worker %s started (interval %gs)", self.service.worker_id, self.interval)
        try:
            while not self._stop.is_set():
                report = self.run_once()
                if max_passes is not None and self.passes + self.failures >= max_passes:
                    break
                if report is None or not report.busy:
                    self._stop.wait(self.interval)
        except KeyboardInterrupt:
            log.info("interrupted; the open batch rolled back")
        log.info("worker %s stopped after %d passes", self.service.worker_id, self.passes)


# How long PostgreSQL keeps a worker's transaction that has gone quiet (its process hangs, or
# its machine vanished without closing the connection) before it aborts it and frees the
# claimed rows. It must exceed the slowest step inside one batch — the provider calls of one
# dispatch batch — or a slow but healthy batch would be aborted after its messages went out.
IDLE_TRANSACTION_TIMEOUT = 600.0
# Server-side TCP keepalives: a worker machine that dies without closing its connections is
# noticed after about idle + interval x count seconds, and its transactions abort.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 30, 10, 3


def worker_connect_args(
    idle_transaction_timeout: float = IDLE_TRANSACTION_TIMEOUT,
) -> dict[str, Any]:
    """psycopg connection arguments that bound how long a dead worker's claims survive.

    A worker *process* that dies (even SIGKILL) closes its sockets and PostgreSQL aborts its
    transaction at once. These settings cover what the kernel cannot: a machine that dies or
    is cut off (TCP keepalives on both sides) and a process that hangs inside a transaction
    (``idle_in_transaction_session_timeout``).
    """
    options = " ".join(
        [
            f"-c idle_in_transaction_session_timeout={int(idle_transaction_timeout * 1000)}",
            f"-c tcp_keepalives_idle={KEEPALIVE_IDLE}",
            f"-c tcp_keepalives_interval={KEEPALIVE_INTERVAL}",
            f"-c tcp_keepalives_count={KEEPALIVE_COUNT}",
        ]
    )
    return {
        "options": options,
        "keepalives": 1,
        "keepalives_idle": KEEPALIVE_IDLE,
        "keepalives_interval": KEEPALIVE_INTERVAL,
        "keepalives_count": KEEPALIVE_COUNT,
    }


def open_worker_service(
    database: str | None,
    specs: str | Path = "journey_specs",
    templates: str | Path | None = None,
    *,
    batch_size: int = 500,
    idle_transaction_timeout: float = IDLE_TRANSACTION_TIMEOUT,
    **kwargs: Any,
) -> JourneyService:
    """A :class:`JourneyService` for a worker: PostgreSQL only (see :func:`require_postgres`),
    with :func:`worker_connect_args` on every connection (URL query parameters win).

    ``kwargs`` go to :class:`JourneyService` (``channels``, ``clock``, ``worker_id``).
    """
    from journeys.service import JourneyService
    from journeys.spec.cache import load_compiled_project
    from journeys.store import db as store_db

    url = require_postgres(database)
    project = load_compiled_project(Path(specs), templates_dir=templates)
    given = set(make_url(url).query)
    connect_args = {
        k: v for k, v in worker_connect_args(idle_transaction_timeout).items() if k not in given
    }
    engine = store_db.open_store(url, connect_args=connect_args)
    try:
        return JourneyService(engine, project, batch_size=batch_size, **kwargs)
    except BaseException:
        engine.dispose()
        raise


__all__ = [
    "IDLE_TRANSACTION_TIMEOUT",
    "SQLITE_REFUSAL",
    "Worker",
    "WorkerConfigError",
    "WorkerPassReport",
    "open_worker_service",
    "require_postgres",
    "worker_connect_args",
    "worker_pass",
]
