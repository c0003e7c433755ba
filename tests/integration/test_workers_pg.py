"""Many worker processes on one PostgreSQL database (issue 4, "Scale-out on PostgreSQL").

Real components only: a fresh PostgreSQL database per test (``pg_database_factory``) and real
worker *processes* (``forkserver``, see :func:`_worker_process`), each a
:class:`journeys.worker.Worker` whose channels record every send into a file of its own.

- 4 workers, 20,000 enrollments of a three-send journey: every step runs once (``step_runs``),
  every message is queued once (``outbox``) and handed to a channel once (the send files), no
  deadlock, no error in any worker's log, and the work is shared.
- 20 trials (seeded) in which one of the 4 workers is killed with SIGKILL at a random moment
  while a new batch is being worked on, and a replacement is started: nothing is lost, nothing
  is doubled in ``step_runs`` or ``outbox``, and no message reaches a channel twice: a killed
  dispatcher's batch was committed as ``sending`` before the provider call and is left in
  doubt (``unknown``, at most once), never sent again. Only killed workers leave doubt.
- Smaller checks: ``journeys run --worker`` refuses SQLite and explains the move; ``--once`` on
  PostgreSQL and the workers' connection settings; a customer one worker holds is left alone by
  the others; a down provider does not make dispatch spin.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

DRIP = """
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
DRIP_SETTINGS = (
    "events: {drip.signup: {description: the test's sign-up event}}\nconsent: {missing: allow}\n"
)
"""``journeys.yaml`` declaring the drip's own trigger event; customers count as opted in."""
STEPS = ("first", "second", "third")
BAD_LOG_MARKERS = ("Traceback", " ERROR ", " CRITICAL ", "deadlock", "conflicted")


# ------------------------------------------------------------------------- worker process


class RecordingChannel:
    """A "provider" that appends ``{"w", "b", "id"}`` per message to its own JSON Lines file.

    ``w`` is the worker, ``b`` the batch number within that worker, ``id`` the outbox id (the
    idempotency key a real provider would get). A batch is one ``write`` to an ``O_APPEND``
    file, done before ``send_batch`` returns: once it is there, the provider "accepted" it.
    ``delay`` seconds of provider latency follow each batch, widening the window in which a
    SIGKILL lands between acceptance and the dispatch transaction's commit.
    """

    name = "recording"

    def __init__(self, path: Path, tag: str, delay: float) -> None:
        self.path, self.tag, self.delay, self.batch = path, tag, delay, 0

    def send_batch(self, messages: Sequence[Any]) -> list[Any]:
        """Record the batch, then report every message accepted (``rec:<outbox id>``)."""
        from journeys.channels.base import SendResult

        self.batch += 1
        lines = (
            json.dumps({"w": self.tag, "b": self.batch, "id": m.outbox_id}) + "\n" for m in messages
        )
        data = memoryview("".join(lines).encode())
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            while data:
                data = data[os.write(fd, data) :]
        finally:
            os.close(fd)
        if self.delay:
            time.sleep(self.delay)
        return [SendResult(f"rec:{m.outbox_id}") for m in messages]


def _worker_process(
    url: str, root: str, sends: str, tag: str, batch: int, delay: float, interval: float, log: str
) -> None:
    """Body of one worker process: a :class:`Worker` with a :class:`RecordingChannel`.

    stdout and stderr (tracebacks included) and the log records go to ``log``.
    """
    import logging

    from journeys.channels.base import ChannelRegistry
    from journeys.service import STANDARD_CHANNELS
    from journeys.worker import Worker, open_worker_service

    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        force=True,
    )
    channel = RecordingChannel(Path(sends), tag, delay)
    service = open_worker_service(
        url,
        Path(root) / "journey_specs",
        Path(root) / "templates",
        batch_size=batch,
        channels=ChannelRegistry({name: channel for name in STANDARD_CHANNELS}),
        worker_id=tag,
    )
    worker = Worker(service, interval=interval)
    worker.install_signal_handlers()
    try:
        worker.run()
    finally:
        service.close()
        logging.shutdown()


def _process_context() -> Any:
    """``forkserver`` processes: each worker is a fresh process forked from a server that has
    imported journeys once (nothing of pytest's process, connections or threads is shared),
    so starting the 20 replacements of the SIGKILL test costs milliseconds, not imports."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(
        ["journeys.worker", "journeys.service", "journeys.channels.base", __name__]
    )
    return ctx


# ------------------------------------------------------------------------------ harness


@dataclass
class WorkerProcess:
    """One running worker: its process, log file and send file."""

    tag: str
    proc: Any  # multiprocessing.Process
    log: Path
    sends: Path


@dataclass
class Cluster:
    """Worker processes on one database; each logs to ``<dir>/<tag>.log``."""

    url: str
    root: Path
    batch_size: int
    send_delay: float = 0.0
    interval: float = 0.05
    workers: dict[str, WorkerProcess] = field(default_factory=dict)
    killed: list[str] = field(default_factory=list)

    def start(self, tag: str) -> WorkerProcess:
        """Start worker ``tag`` (its PostgreSQL ``application_name`` is ``jw-<tag>``)."""
        out = self.root / "workers"
        out.mkdir(exist_ok=True)
        log, sends = out / f"{tag}.log", out / f"{tag}.sends.jsonl"
        log.touch()
        url = f"{self.url}?application_name=jw-{tag}"
        args = (url, str(self.root), str(sends), tag, self.batch_size)
        args += (self.send_delay, self.interval, str(log))
        proc = _process_context().Process(target=_worker_process, args=args, name=tag)
        proc.start()
        worker = WorkerProcess(tag, proc, log, sends)
        self.workers[tag] = worker
        return worker

    def alive(self) -> list[WorkerProcess]:
        """Workers not killed (whether or not they are still starting)."""
        return [w for t, w in self.workers.items() if t not in self.killed]

    def started(self) -> list[WorkerProcess]:
        """Live workers whose loop runs (a worker still importing is not worth killing)."""
        return [w for w in self.alive() if "started" in w.log.read_text(errors="replace")]

    def kill(self, worker: WorkerProcess) -> None:
        """SIGKILL, no cleanup of any kind."""
        os.kill(worker.proc.pid, signal.SIGKILL)
        worker.proc.join(30)
        assert worker.proc.exitcode == -signal.SIGKILL
        self.killed.append(worker.tag)

    def wait_started(self, timeout: float = 60) -> None:
        """Wait until every live worker has logged that its loop started."""
        deadline = time.monotonic() + timeout
        for w in self.alive():
            while "started" not in w.log.read_text(errors="replace"):
                self.check_running()
                assert time.monotonic() < deadline, f"{w.tag} did not start"
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM every live worker and wait; each must exit 0 (graceful stop)."""
        self.wait_started()
        live = [w for w in self.alive() if w.proc.exitcode is None]
        for w in live:
            os.kill(w.proc.pid, signal.SIGTERM)
        for w in live:
            w.proc.join(60)
            assert w.proc.exitcode == 0, f"{w.tag} exited {w.proc.exitcode}"

    def terminate(self) -> None:
        """Last-resort cleanup (test failure): kill whatever still runs."""
        for w in self.workers.values():
            if w.proc.exitcode is None:
                w.proc.kill()
                w.proc.join(30)

    def check_running(self) -> None:
        """Fail at once if a worker that should be running has exited."""
        for w in self.alive():
            if w.proc.exitcode is not None:
                pytest.fail(f"worker {w.tag} exited {w.proc.exitcode}:\n{w.log.read_text()}")

    def logs_without_errors(self, tags: Sequence[str]) -> None:
        """No traceback, error, deadlock or conflict retry in these workers' logs."""
        for tag in tags:
            text = self.workers[tag].log.read_text(errors="replace")
            bad = [line for line in text.splitlines() if any(m in line for m in BAD_LOG_MARKERS)]
            assert not bad, f"{tag} logged problems:\n" + "\n".join(bad[:20])


@pytest.fixture
def project_root(tmp_path: Path) -> Path:
    """A project with the three-send drip journey."""
    from engine_helpers import write_project

    write_project(tmp_path, {"drip": DRIP}, settings=DRIP_SETTINGS)
    return tmp_path


@pytest.fixture
def cluster_factory(project_root: Path) -> Iterator[Callable[..., Cluster]]:
    """``new(url, batch_size, send_delay=0)`` → a :class:`Cluster`; all killed at teardown."""
    made: list[Cluster] = []

    def new(url: str, batch_size: int, send_delay: float = 0.0) -> Cluster:
        cluster = Cluster(url, project_root, batch_size, send_delay)
        made.append(cluster)
        return cluster

    yield new
    for cluster in made:
        cluster.terminate()


class Feeder:
    """Imports customers and ingests their trigger events (the CRM side)."""

    def __init__(self, url: str, root: Path) -> None:
        from journeys.channels.base import ChannelRegistry
        from journeys.service import STANDARD_CHANNELS, JourneyService
        from journeys.simulate import NullChannel
        from journeys.spec import load_project
        from journeys.store import db as store_db

        project = load_project([root / "journey_specs"], templates_dir=root / "templates")
        channels = ChannelRegistry({n: NullChannel() for n in STANDARD_CHANNELS})
        self.db: Engine = store_db.open_store(url)
        self.service = JourneyService(self.db, project, channels=channels)
        self.total = 0

    def feed(self, prefix: str, n: int) -> None:
        """``n`` new customers, each with one ``drip.signup`` event."""
        ids = [f"{prefix}-{i}" for i in range(n)]
        report = self.service.import_customers(
            {"id": c, "email": f"{c}@example.com", "first_name": "Ann"} for c in ids
        )
        assert report.ok and report.accepted == n
        events = (
            {
                "id": f"signup:{c}",
                "type": "drip.signup",
                "customer_id": c,
                "occurred_at": "2026-03-02T09:00:00Z",
                "data": {},
            }
            for c in ids
        )
        report = self.service.ingest(events)
        assert report.ok and report.accepted == n
        self.total += n

    def progress(self) -> tuple[int, int, int, int, int]:
        """(enrollments, completed, outbox rows, pending outbox rows, unprocessed events)."""
        with self.db.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT (SELECT count(*) FROM enrollments),"
                    " (SELECT count(*) FROM enrollments WHERE status = 'completed'),"
                    " (SELECT count(*) FROM outbox),"
                    " (SELECT count(*) FROM outbox WHERE status = 'pending'),"
                    " (SELECT count(*) FROM events WHERE processed_at IS NULL)"
                )
            ).one()
        return tuple(row)  # type: ignore[return-value]

    def wait_done(self, cluster: Cluster, timeout: float) -> float:
        """Wait until everything fed so far is completed and dispatched; returns seconds."""
        start = time.monotonic()
        n = self.total
        while True:
            state = self.progress()
            if state == (n, n, 3 * n, 0, 0):
                return time.monotonic() - start
            cluster.check_running()
            if time.monotonic() - start > timeout:
                pytest.fail(
                    f"not done after {timeout}s: (enrolled, completed, outbox, "
                    f"pending, unprocessed events) = {state}, expected {n} enrollments"
                )
            time.sleep(0.05)

    def close(self) -> None:
        """Dispose of the connection pool."""
        self.service.close()


def read_sends(cluster: Cluster) -> tuple[Counter[int], dict[str, set[int]]]:
    """Every recorded send: count per outbox id, and each worker's last batch of ids.

    A line cut short by SIGKILL (a partial write) is not a send: the provider never got it.
    """
    counts: Counter[int] = Counter()
    last_batch: dict[str, set[int]] = {}
    for tag, worker in cluster.workers.items():
        if not worker.sends.exists():
            continue
        batches: dict[int, set[int]] = {}
        for line in worker.sends.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            counts[rec["id"]] += 1
            batches.setdefault(rec["b"], set()).add(rec["id"])
        if batches:
            last_batch[tag] = batches[max(batches)]
    return counts, last_batch


def assert_exactly_once(db: Engine, n: int, doubtful: int = 0) -> set[int]:
    """Store invariants for ``n`` three-send enrollments; returns the outbox ids. Up to
    ``doubtful`` rows may be in doubt (``sending``/``unknown``: a killed dispatcher's batch)."""
    with db.connect() as conn:

        def scalar(sql: str) -> Any:
            return conn.execute(sa.text(sql)).scalar_one()

        assert scalar("SELECT count(*) FROM enrollments") == n
        assert scalar("SELECT count(*) FROM enrollments WHERE status <> 'completed'") == 0
        # Every step executed exactly once per enrollment.
        doubled_steps = scalar(
            "SELECT count(*) FROM (SELECT enrollment_id, step FROM step_runs"
            " GROUP BY enrollment_id, step HAVING count(*) > 1) d"
        )
        assert doubled_steps == 0
        assert scalar("SELECT count(*) FROM step_runs") == 3 * n
        steps = conn.execute(sa.text("SELECT DISTINCT step FROM step_runs")).scalars().all()
        assert sorted(steps) == sorted(STEPS)
        # Every message queued exactly once, sent, with the provider's id.
        assert scalar("SELECT count(*) FROM outbox") == 3 * n
        assert scalar("SELECT count(DISTINCT (enrollment_id, step)) FROM outbox") == 3 * n
        assert scalar("SELECT count(*) FROM outbox WHERE attempt <> 1") == 0
        assert (
            scalar("SELECT count(*) FROM outbox WHERE status NOT IN ('sent', 'sending', 'unknown')")
            == 0
        )
        assert scalar("SELECT count(*) FROM outbox WHERE status <> 'sent'") <= doubtful
        wrong_ids = scalar("SELECT count(*) FROM outbox WHERE provider_id <> 'rec:' || id")
        assert wrong_ids == 0
        return set(conn.execute(sa.text("SELECT id FROM outbox")).scalars())


def in_transaction(db: Engine, tag: str) -> bool:
    """Whether worker ``tag``'s backend is running a statement or holds an open transaction."""
    with db.connect() as conn:
        states = conn.execute(
            sa.text("SELECT state FROM pg_stat_activity WHERE application_name = :a"),
            {"a": f"jw-{tag}"},
        ).scalars()
        return any(s in ("active", "idle in transaction") for s in states)


# -------------------------------------------------------------------------------- tests


def _cli(args: list[str]) -> Any:
    from typer.testing import CliRunner

    from journeys.cli import _register, app

    _register()
    return CliRunner().invoke(app, args)


def test_worker_refuses_sqlite_and_says_how_to_move(project_root: Path) -> None:
    result = _cli(
        [
            "run",
            "--worker",
            "--database",
            f"sqlite:///{project_root / 'journeys.db'}",
            "--specs",
            str(project_root / "journey_specs"),
        ]
    )
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "needs PostgreSQL" in text and "one writer process at a time" in text
    assert "JOURNEYS_DATABASE_URL=postgresql://" in text and "docs/scaling.md" in text
    assert not (project_root / "journeys.db").exists(), "nothing was created"


@pytest.mark.postgres
def test_worker_cli_once_and_its_connection_settings(
    pg_database_factory: Callable[..., str], project_root: Path
) -> None:
    from journeys.worker import open_worker_service

    url = pg_database_factory(migrated=True)
    feeder = Feeder(url, project_root)
    try:
        feeder.feed("cli", 5)
        specs, templates = project_root / "journey_specs", project_root / "templates"
        args = ["run", "--worker", "--once", "--database", url, "--specs", str(specs)]
        result = _cli([*args, "--templates", str(templates), "--batch-size", "2"])
        assert result.exit_code == 0, result.output
        assert feeder.progress() == (5, 5, 15, 0, 0)
        assert "drip.first 5" in result.output and "dispatched 15" in result.output

        service = open_worker_service(url, specs, templates)
        try:
            with service.db.connect() as conn:
                show = conn.exec_driver_sql("SHOW idle_in_transaction_session_timeout")
                assert show.scalar_one() == "10min"
                assert conn.exec_driver_sql("SHOW tcp_keepalives_idle").scalar_one() == "30"
        finally:
            service.close()
    finally:
        feeder.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_four_workers_share_20000_enrollments_exactly_once(
    pg_database_factory: Callable[..., str],
    project_root: Path,
    cluster_factory: Callable[..., Cluster],
) -> None:
    n = int(os.environ.get("JOURNEYS_TEST_WORKER_ENROLLMENTS", "20000"))
    url = pg_database_factory(migrated=True)
    feeder = Feeder(url, project_root)
    try:
        feeder.feed("c", n)
        cluster = cluster_factory(url, batch_size=500)
        for i in range(4):
            cluster.start(f"w{i}")
        elapsed = feeder.wait_done(cluster, timeout=600)
        cluster.stop()

        outbox_ids = assert_exactly_once(feeder.db, n)
        counts, _ = read_sends(cluster)
        assert set(counts) == outbox_ids, "every message reached a channel"
        assert max(counts.values()) == 1, "no message reached a channel twice"
        per_worker = {t: len(read_lines(w.sends)) for t, w in cluster.workers.items()}
        assert sum(per_worker.values()) == 3 * n
        assert all(per_worker.values()), f"every worker took a share: {per_worker}"
        cluster.logs_without_errors(list(cluster.workers))
        print(f"\n{n} enrollments x 3 steps, 4 workers: {elapsed:.1f}s; sends {per_worker}")
    finally:
        feeder.close()


PHASES = ("events", "advance", "dispatch")


def phase_started(db: Engine, prefix: str, phase: str) -> bool:
    """Whether the first batch of ``phase`` committed for the customers of one trial."""
    sql = {
        "events": "SELECT count(*) FROM events WHERE processed_at IS NOT NULL"
        " AND customer_id LIKE :p",
        "advance": "SELECT count(*) FROM step_runs r JOIN enrollments e"
        " ON e.id = r.enrollment_id WHERE e.customer_id LIKE :p",
        "dispatch": "SELECT count(*) FROM outbox WHERE status = 'sent' AND customer_id LIKE :p",
    }[phase]
    with db.connect() as conn:
        return bool(conn.execute(sa.text(sql), {"p": f"{prefix}-%"}).scalar_one())


@pytest.mark.postgres
@pytest.mark.slow
def test_sigkill_a_worker_mid_batch_loses_and_doubles_nothing(
    pg_database_factory: Callable[..., str],
    project_root: Path,
    cluster_factory: Callable[..., Cluster],
) -> None:
    """20 seeded trials: new work arrives, one worker is SIGKILLed while it is being done.

    Trials rotate over the three kinds of batch (matching events, advancing enrollments,
    dispatching the outbox): the kill comes a random 0-50 ms after the first batch of that
    kind committed, when the rest are in flight, and hits a random worker (preferring one
    inside a transaction). A replacement is started and the trial waits until everything is
    done: the dead worker's batch must have been finished by the others.
    """
    trials = int(os.environ.get("JOURNEYS_TEST_KILL_TRIALS", "20"))
    per_trial = int(os.environ.get("JOURNEYS_TEST_KILL_ENROLLMENTS", "300"))
    rng = random.Random(20260302)
    url = pg_database_factory(migrated=True)
    feeder = Feeder(url, project_root)
    # Small batches and 100 ms of provider latency per batch: many transactions, and a visible
    # window between the provider accepting a batch and the commit that marks it sent.
    cluster = cluster_factory(url, batch_size=100, send_delay=0.1)
    try:
        for i in range(4):
            cluster.start(f"w{i}")
        cluster.wait_started()
        kills_in_transaction = 0
        for trial in range(trials):
            prefix, phase = f"t{trial}", PHASES[trial % len(PHASES)]
            feeder.feed(prefix, per_trial)
            deadline = time.monotonic() + 60
            while not phase_started(feeder.db, prefix, phase):
                cluster.check_running()
                assert time.monotonic() < deadline, f"trial {trial}: no {phase} batch"
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.05))
            candidates = cluster.started()
            busy = [w for w in candidates if in_transaction(feeder.db, w.tag)]
            victim = rng.choice(busy or candidates)
            kills_in_transaction += bool(busy)
            cluster.kill(victim)
            cluster.start(f"w{4 + trial}")
            took = feeder.wait_done(cluster, timeout=120)
            print(f"trial {trial}: {phase}, killed {victim.tag}, done {took:.2f}s later")
        cluster.stop()

        counts, _ = read_sends(cluster)
        with feeder.db.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, dispatcher FROM outbox WHERE status <> 'sent'"))
            doubtful = {outbox_id: dispatcher for outbox_id, dispatcher in rows}
        outbox_ids = assert_exactly_once(feeder.db, trials * per_trial, doubtful=len(doubtful))
        # At most once (the default for marketing): a killed dispatcher's batch is left in
        # doubt (sending, then unknown), never sent again; everything else went out once.
        assert max(counts.values()) == 1, "no message reached a channel twice"
        assert set(counts) | set(doubtful) == outbox_ids, "every message went out or is in doubt"
        assert set(doubtful.values()) <= set(cluster.killed), "only killed workers leave doubt"
        redelivered: set[int] = set()
        survivors = [t for t in cluster.workers if t not in cluster.killed]
        cluster.logs_without_errors(survivors)
        print(
            f"\n{trials} kills ({kills_in_transaction} inside an open transaction), "
            f"{trials * per_trial} enrollments, {len(doubtful)} messages left in doubt "
            f"(at most once), {len(redelivered)} sent twice"
        )
        assert kills_in_transaction >= trials // 2, "the kills should land mid-batch"
    finally:
        cluster.terminate()
        feeder.close()


def read_lines(path: Path) -> list[str]:
    """Lines of a file that may not exist."""
    return path.read_text().splitlines() if path.exists() else []


CART = """
journey: cart
name: Cart
stage: consideration
trigger: {event: cart.updated}
exit_on: [order.placed]
steps:
  - id: wait_an_hour
    wait: 1h
  - id: remind
    send: {template: hello}
"""


@pytest.mark.postgres
def test_a_customer_held_by_one_worker_is_left_alone_by_the_others(
    pg_database_factory: Callable[..., str], tmp_path: Path
) -> None:
    """Two workers must not run one customer's timeline at once.

    Worker A holds the customer (inside A's open batch); worker B's pass must leave both of
    the customer's events alone. If B matched the order while A matched the cart, the exit
    would find no enrollment and the customer would get a cart reminder after buying.
    """
    from datetime import timedelta

    from engine_helpers import T0, enrollment_rows, event, messages, open_service, run_until
    from engine_helpers import write_project as write

    url = pg_database_factory(migrated=True)
    service = open_service(write(tmp_path, {"cart": CART}), url, start=T0)
    try:
        service.import_customers([{"id": "c-1", "email": "a@example.com"}])
        service.ingest(
            [
                event("e1", "cart.updated", "c-1", "2026-03-01T23:58:00Z", cart_total=50),
                event("e2", "order.placed", "c-1", "2026-03-01T23:59:00Z", total=50),
            ]
        )
        worker_a = service.db.connect()
        try:
            with worker_a.begin():
                worker_a.execute(sa.text("SELECT id FROM customers WHERE id = 'c-1' FOR UPDATE"))
                report = service.run_pass()  # worker B, while A holds the customer
                assert report.events == 0 and not report.complete
                with service.db.connect() as conn:
                    done = conn.execute(
                        sa.text("SELECT id FROM events WHERE processed_at IS NOT NULL")
                    ).scalars()
                    assert list(done) == [], "B must not touch a customer A holds"
                # A dies: its transaction rolls back and the cart event is free again.
                worker_a.rollback()
        finally:
            worker_a.close()
        run_until(service, T0 + timedelta(hours=3))
        [enrollment] = enrollment_rows(service)
        assert (enrollment["status"], enrollment["exit_reason"]) == ("exited", "order.placed")
        assert messages(service) == []
    finally:
        service.close()


class _DownProvider:
    """Every send fails with a retryable error (a provider outage); counts the calls."""

    name = "down"

    def __init__(self) -> None:
        self.calls = 0

    def send_batch(self, messages: Sequence[Any]) -> list[Any]:
        from journeys.channels.base import ChannelError

        self.calls += 1
        if self.calls > 20:
            raise RuntimeError("dispatch keeps re-sending the same batch")
        return [ChannelError("503 from provider", retryable=True) for _ in messages]


def test_dispatch_gives_up_for_this_pass_when_the_provider_is_down(tmp_path: Path) -> None:
    """A full batch that failed retryably stays pending for the next pass; dispatch must not
    claim it again at once (a worker would spin on a down provider and do nothing else)."""
    from engine_helpers import messages, open_service
    from engine_helpers import write_project as write
    from journeys.channels.base import ChannelRegistry
    from journeys.service import STANDARD_CHANNELS

    service = open_service(
        write(tmp_path, {"drip": DRIP}, settings=DRIP_SETTINGS), f"sqlite:///{tmp_path / 'j.db'}"
    )
    try:
        service.import_customers([{"id": f"c{i}", "email": f"c{i}@example.com"} for i in range(3)])
        service.ingest(
            [
                {"id": f"s{i}", "type": "drip.signup", "customer_id": f"c{i}", "data": {}}
                | {"occurred_at": "2026-03-01T00:00:00Z"}
                for i in range(3)
            ]
        )
        service.run_pass()
        provider = _DownProvider()
        service.channels = ChannelRegistry({n: provider for n in STANDARD_CHANNELS})
        assert service.dispatch(limit=4) == 0
        assert provider.calls == 1
        assert {m["status"] for m in messages(service)} == {"pending"}
    finally:
        service.close()
