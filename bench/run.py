"""The journeys benchmark (``make bench``): see docs/benchmarks.md for what each figure means.

Every measurement runs in a child process of its own (``--child NAME``) so that its peak RSS
(``ru_maxrss``) is the memory of that run alone; data preparation runs in a separate child
before it, so generated data never counts against the run it feeds. Data is deterministic
(:mod:`journeys.sampledata` with fixed seeds, plus seeded rows for the 1M-row runs) and lives in
SQLite files (WAL) in a temporary directory deleted at the end.

Figure 1f, the storage floor, runs right after figure 1 (``--only stream`` or ``floor``): it
copies the schema of figure 1's finished database into a fresh file and inserts, with plain
``sqlite3`` ``executemany`` and no Python logic, every row figure 1 wrote (events, enrollments,
step runs, outbox, …) in as many transactions as figure 1 had hourly ticks. Figure 1's events
over those seconds is how fast any engine could go if storing exactly those rows were its only
cost: a lower bound on storage work, since the engine also updates rows it inserted. Each
table is also timed alone (µs per row).

    .venv/bin/python bench/run.py                 # full scale (default)
    .venv/bin/python bench/run.py --scale 0.1     # or BENCH_SCALE=0.1: a quick run
    .venv/bin/python bench/run.py --only stream,waits

Prints a table and one JSON line, and writes ``bench/out/results.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import itertools
import json
import os
import platform
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT / "src"))

SEED = 7
START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
DAYS = 30
TICK = timedelta(hours=1)
# Shopping sessions per customer per day: 200,000 customers then give about 1,000,000 events
# in 30 days (sampledata's default of 0.2 would fill 1M events in ~8 days).
SESSIONS_PER_DAY = 0.052

FULL = {
    "stream_customers": 200_000,
    "stream_events": 1_000_000,
    "waits": 1_000_000,
    "sweep_customers": 1_000_000,
}
SLICE_EVENTS = 20_000
NAIVE_FLOW_RUNS = 20
BATCH_SIZE = 5000
MiB = 1024 * 1024

TARGETS = {
    "stream_events_per_s": (">=", 20_000),
    "waits_per_s": (">=", 50_000),
    "sweep_seconds": ("<=", 5.0),
    "peak_rss_mib": ("<=", 1024),
    "engine_vs_raw_slowdown": ("<=", 10.0),
    "delivery_client_messages_per_s": (">=", 2_000),
}

BENCH_JOURNEY = """\
# Benchmark-only journey (bench/run.py, figure 2): a wait whose next steps are a branch and
# an update, so advancing 1M woken enrollments measures the engine, not template rendering.
journey: bench-waits
name: Benchmark waits
stage: loyalty
trigger: {event: bench.started}
steps:
  - id: pause
    wait: 1d
  - id: tier
    branch:
      - when: "customer.lifetime_value >= 500"
        goto: vip
      - goto: regular
  - id: vip
    update: {set: {tier: vip}}
    goto: end
  - id: regular
    update: {set: {tier: regular}}
"""


# ----------------------------------------------------------------------------- helpers


def peak_rss_mib() -> float:
    """This process's peak resident set size (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, Python and SQLite versions."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    import sqlalchemy

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(ram, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "platform": platform.platform(),
    }


def bench_engine(path: Path) -> Any:
    """The journeys SQLite engine (WAL, BEGIN IMMEDIATE) plus bench pragmas, not migrated."""
    from sqlalchemy import event

    from journeys.store import db as store_db

    engine = store_db.create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA cache_size = -131072")  # 128 MiB page cache
        cursor.execute("PRAGMA temp_store = MEMORY")
        cursor.close()

    return engine


def open_bench_db(path: Path) -> Any:
    """The journeys SQLite engine (WAL, BEGIN IMMEDIATE) plus bench pragmas, migrated."""
    from journeys.store import db as store_db

    engine = bench_engine(path)
    store_db.migrate(engine)
    if os.environ.get("BENCH_SQL_TIMES"):
        _time_statements(engine)
    return engine


SQL_TIMES: dict[str, list[float]] = {}


def _time_statements(engine: Any) -> None:
    """BENCH_SQL_TIMES=1: total time and count per SQL statement (printed at exit)."""
    import atexit

    from sqlalchemy import event

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info["bench_t0"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        key = " ".join(statement.split())[:110]
        entry = SQL_TIMES.setdefault(key, [0.0, 0])
        entry[0] += time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter())
        entry[1] += 1

    @atexit.register
    def _report() -> None:
        for key, (total, n) in sorted(SQL_TIMES.items(), key=lambda kv: -kv[1][0])[:25]:
            print(f"{total:8.2f} s {n:7d}  {key}", file=sys.stderr)


def null_channels() -> Any:
    from journeys.channels.base import ChannelRegistry
    from journeys.service import STANDARD_CHANNELS
    from journeys.simulate import NullChannel

    return ChannelRegistry({name: NullChannel() for name in STANDARD_CHANNELS})


def load_bench_project(workdir: Path, with_bench_journey: bool = False) -> Any:
    """The example project (journey_specs/ + templates/), optionally with ``bench-waits``."""
    from journeys.spec import load_project

    if not with_bench_journey:
        return load_project([ROOT / "journey_specs"], templates_dir=ROOT / "templates")
    specs = workdir / "specs" / "journey_specs"
    if not specs.exists():
        specs.mkdir(parents=True)
        for path in (ROOT / "journey_specs").glob("*.yaml"):
            shutil.copy(path, specs / path.name)
        import yaml

        settings = yaml.safe_load((ROOT / "journeys.yaml").read_text(encoding="utf-8"))
        settings.setdefault("events", {})["bench.started"] = {"description": "bench enrollment"}
        (specs.parent / "journeys.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
        (specs / "bench-waits.yaml").write_text(BENCH_JOURNEY, encoding="utf-8")
    project = load_project([specs], templates_dir=ROOT / "templates")
    if not project.ok:
        raise SystemExit("\n".join(str(d) for d in project.diagnostics))
    return project


def make_service(engine: Any, project: Any, at: datetime) -> Any:
    from journeys.clock import VirtualClock
    from journeys.service import JourneyService

    return JourneyService(
        engine, project, clock=VirtualClock(at), channels=null_channels(), batch_size=BATCH_SIZE
    )


def table_counts(engine: Any) -> dict[str, int]:
    from sqlalchemy import func, select

    from journeys.store.tables import enrollments, events, outbox, step_runs

    with engine.connect() as conn:
        return {
            "events": conn.scalar(select(func.count()).select_from(events)),
            "events_unprocessed": conn.scalar(
                select(func.count()).where(events.c.processed_at.is_(None))
            ),
            "events_with_error": conn.scalar(
                select(func.count()).where(events.c.error.is_not(None))
            ),
            "enrollments": conn.scalar(select(func.count()).select_from(enrollments)),
            "enrollments_active": conn.scalar(
                select(func.count()).where(enrollments.c.status == "active")
            ),
            "outbox": conn.scalar(select(func.count()).select_from(outbox)),
            "outbox_rendered": conn.scalar(
                select(func.count()).where(outbox.c.status == "pending")
            ),
            "step_runs": conn.scalar(select(func.count()).select_from(step_runs)),
        }


def iso_z(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- 1. stream


def prep_stream(workdir: Path, scale: float, n_events: int | None = None) -> dict[str, Any]:
    """Customers imported through the service; events written as JSON Lines (not timed in 1)."""
    from journeys.sampledata import generate_customers, generate_events, write_jsonl

    n_customers = max(100, int(FULL["stream_customers"] * scale))
    n_events = n_events or max(1000, int(FULL["stream_events"] * scale))
    db_path = workdir / "stream.db"
    t = time.perf_counter()
    people = generate_customers(n_customers, seed=SEED)
    events = itertools.islice(
        generate_events(people, START, DAYS, seed=SEED, sessions_per_day=SESSIONS_PER_DAY),
        n_events,
    )
    written = write_jsonl(workdir / "events.jsonl", events)
    generate_s = time.perf_counter() - t

    engine = open_bench_db(db_path)
    service = make_service(engine, load_bench_project(workdir), START)
    service.start_cursors(START)
    t = time.perf_counter()
    report = service.import_customers(people)
    import_s = time.perf_counter() - t
    assert report.ok, report.errors[:5]
    engine.dispose()
    return {
        "customers": n_customers,
        "events": written,
        "generate_s": round(generate_s, 2),
        "import_customers_s": round(import_s, 2),
        "import_customers_per_s": round(n_customers / import_s),
    }


def event_triggered(project: Any) -> Any:
    """``project`` without its date- and schedule-triggered journeys."""
    from journeys.plan import DateTrigger, ScheduleTrigger

    timed = (DateTrigger, ScheduleTrigger)
    plans = {k: p for k, p in project.plans.items() if not isinstance(p.trigger, timed)}
    return dataclasses.replace(project, plans=plans)


def run_stream(
    workdir: Path,
    events_file: str = "events.jsonl",
    *,
    to_window_end: bool = True,
    events_only: bool = False,
) -> dict[str, Any]:
    """Ingest → match → advance → render, stepping virtual time in hourly ticks, to the end of
    the 30-day window (or, for the slice, to the tick after the last event). ``events_only``:
    the event-triggered journeys only (the slice: what its events cause, not the calendar)."""
    from journeys.service import read_records

    engine = open_bench_db(workdir / "stream.db")
    project = load_bench_project(workdir)
    if events_only:
        project = event_triggered(project)
    service = make_service(engine, project, START)
    clock = service.clock
    end = START + timedelta(days=DAYS)
    ticks = 0
    ingested = 0
    counts: dict[str, int] = {}

    def step_to(boundary: datetime, pending: list[dict[str, Any]]) -> None:
        nonlocal ticks, ingested
        if pending:
            report = service.ingest(pending, source="bench")
            assert report.ok, report.errors[:5]
            ingested += report.accepted
            pending.clear()
        clock.set(boundary)
        for key, n in service.run_pass().as_dict().items():
            counts[key] = counts.get(key, 0) + n
        ticks += 1

    t, cpu = time.perf_counter(), time.process_time()
    boundary = START + TICK
    pending: list[dict[str, Any]] = []
    for record in read_records(workdir / events_file):
        if record is None:
            continue
        while record["occurred_at"] >= iso_z(boundary):
            step_to(boundary, pending)
            boundary += TICK
        pending.append(record)
    last_event_tick = boundary
    if not to_window_end:
        end = boundary
    while boundary <= end:
        step_to(boundary, pending)
        boundary += TICK
    elapsed, cpu = time.perf_counter() - t, time.process_time() - cpu
    totals = table_counts(engine)
    engine.dispose()
    advanced = sum(n for k, n in counts.items() if "." in k and k != "enrolled_by_time")
    return {
        "journeys": sorted(project.plans),
        "seconds": round(elapsed, 2),
        "events_ingested": ingested,
        "events_per_s": round(ingested / elapsed),
        "cpu_seconds": round(cpu, 2),
        "events_per_cpu_s": round(ingested / cpu),
        "ticks": ticks,
        "last_event_tick": last_event_tick.isoformat(),
        "virtual_until": clock.now().isoformat(),
        "matched_events": counts.get("events", 0),
        "enrolled_by_time": counts.get("enrolled_by_time", 0),
        "steps_advanced": advanced,
        "tables": totals,
        "peak_rss_mib": round(peak_rss_mib()),
    }


# ----------------------------------------------------------------------------- 1f. storage floor


SETUP_TABLES = ("alembic_version", "customers", "journey_versions", "scheduler_state")
"""Tables stream.db already holds before figure 1 starts (migration, customer import, plan
versions, trigger cursors): figure 1f preloads them untimed and replays every other table."""


def _quote(name: str) -> str:
    """``name`` as an SQLite identifier (``scheduler_state`` has a column called ``key``)."""
    return '"' + name.replace('"', '""') + '"'


@contextmanager
def _floor_db(path: Path, source: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A fresh SQLite file with the bench's pragmas, ``source``'s schema and setup rows.

    The connection comes from :func:`bench_engine`, so it has exactly the pragmas of every
    bench database (WAL, ``synchronous=NORMAL``, ``wal_autocheckpoint``, ``journal_size_limit``,
    the 128 MiB page cache, ``temp_store=MEMORY``) except ``foreign_keys``, switched off: rows
    are split across transactions per table, so a step run may arrive a tick before its
    enrollment. The schema is every ``CREATE TABLE`` then every ``CREATE INDEX`` of ``source``
    (internal ``sqlite_%`` objects and auto-indexes, which have no SQL, are left out).
    :data:`SETUP_TABLES` are copied in one untimed transaction. Yields the raw ``sqlite3``
    connection, in autocommit mode (explicit ``BEGIN``/``COMMIT``); closed on exit.
    """
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    engine = bench_engine(path)
    raw = engine.raw_connection()
    try:
        conn: sqlite3.Connection = raw.driver_connection
        conn.execute("PRAGMA foreign_keys = OFF")
        schema = source.execute(
            "SELECT sql FROM sqlite_master WHERE type IN ('table', 'index') AND sql IS NOT NULL"
            " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type = 'index', rowid"
        ).fetchall()
        for (sql,) in schema:
            conn.execute(sql)
        conn.execute("BEGIN IMMEDIATE")
        for table in SETUP_TABLES:
            cursor = source.execute(f"SELECT * FROM {_quote(table)}")
            conn.executemany(_insert_sql(table, cursor), cursor)
        conn.execute("COMMIT")
        yield conn
    finally:
        raw.close()
        engine.dispose()


def _insert_sql(table: str, cursor: sqlite3.Cursor) -> str:
    """``INSERT INTO table (columns of cursor's SELECT) VALUES (?, …)``."""
    columns = [_quote(column[0]) for column in cursor.description]
    marks = ", ".join("?" * len(columns))
    return f"INSERT INTO {_quote(table)} ({', '.join(columns)}) VALUES ({marks})"


def _replay(
    conn: sqlite3.Connection, source: sqlite3.Connection, rows: dict[str, int], ticks: int
) -> float:
    """Insert every row of the ``rows`` tables of ``source`` into ``conn`` in ``ticks``
    transactions and return the seconds spent in them.

    Each table's rows, in rowid order, are split evenly across the transactions (transaction
    ``i`` takes rows ``n*i//ticks`` to ``n*(i+1)//ticks``); each transaction is ``BEGIN
    IMMEDIATE``, one ``executemany`` of plain tuples per table, ``COMMIT``. Only that is timed:
    the next transaction's rows are fetched from ``source`` between the timed sections, so
    memory holds one tick's rows, not the whole run.
    """
    selects = {
        table: source.execute(f"SELECT * FROM {_quote(table)} ORDER BY rowid") for table in rows
    }
    inserts = {table: _insert_sql(table, cursor) for table, cursor in selects.items()}
    elapsed = 0.0
    for i in range(ticks):
        batches = []
        for table, n in rows.items():
            size = n * (i + 1) // ticks - n * i // ticks
            if size:  # fetchmany(0) would fetch every remaining row
                batches.append((inserts[table], selects[table].fetchmany(size)))
        t = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        for sql, batch in batches:
            conn.executemany(sql, batch)
        conn.execute("COMMIT")
        elapsed += time.perf_counter() - t
    return elapsed


def run_floor(workdir: Path) -> dict[str, Any]:
    """Figure 1f, the storage floor: how fast could any engine go if it wrote exactly the rows
    figure 1's run left in ``stream.db``, with no Python logic at all?

    ``stream.db`` is opened read-only. ``floor.db`` gets its schema, the bench pragmas and the
    :data:`SETUP_TABLES` rows (untimed; see :func:`_floor_db`). Then every row of every other
    table that has rows (events, enrollments, step_runs, outbox, stage_history, …) is inserted
    in as many transactions as figure 1 had hourly ticks (see :func:`_replay`): the rate is
    figure 1's ``events_ingested`` over those seconds, "events/s if storage were the only
    cost". It is a lower bound on the engine's storage work: only the final rows are
    inserted, while the engine also updates enrollments at every step, marks events processed,
    updates customers, reads, and checks foreign keys.

    Each table is then timed alone the same way, each in a fresh file of its own
    (``floor-<table>.db``, same schema and setup rows, deleted after) so that its indexes start
    empty as in the combined run; that gives µs per row per table.

    Needs ``stream.json`` (figure 1's result, written by :func:`main`) for the tick count and
    ``events_ingested``.
    """
    stream = json.loads((workdir / "stream.json").read_text(encoding="utf-8"))
    ticks, events = int(stream["ticks"]), int(stream["events_ingested"])
    source_uri = (workdir / "stream.db").resolve().as_uri() + "?mode=ro"
    source = sqlite3.connect(source_uri, uri=True)
    tables = [
        name
        for (name,) in source.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid"
        )
    ]
    counts = {t: source.execute(f"SELECT count(*) FROM {_quote(t)}").fetchone()[0] for t in tables}
    rows = {t: n for t, n in counts.items() if n and t not in SETUP_TABLES}
    total = sum(rows.values())

    t = time.perf_counter()
    with _floor_db(workdir / "floor.db", source) as conn:
        setup_s = time.perf_counter() - t
        seconds = _replay(conn, source, rows, ticks)

    per_table: dict[str, dict[str, Any]] = {}
    for table, n in rows.items():
        path = workdir / f"floor-{table}.db"
        with _floor_db(path, source) as conn:
            alone = _replay(conn, source, {table: n}, ticks)
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        per_table[table] = {
            "rows": n,
            "seconds": round(alone, 3),
            "us_per_row": round(alone / n * 1e6, 2),
        }
    source.close()
    return {
        "seconds": round(seconds, 3),
        "ticks": ticks,
        "events_ingested": events,
        "events_per_s": round(events / seconds) if seconds else 0,
        "rows": rows,
        "rows_total": total,
        "rows_per_s": round(total / seconds) if seconds else 0,
        "us_per_row": round(seconds / total * 1e6, 2) if total else 0,
        "preloaded": {t: counts[t] for t in SETUP_TABLES if t in counts},
        "setup_s": round(setup_s, 2),
        "tables": per_table,
        "peak_rss_mib": round(peak_rss_mib()),
    }


# ----------------------------------------------------------------------------- 2./3. 1M rows


def customer_rows(n: int, seed: int = SEED) -> Iterator[dict[str, Any]]:
    """``n`` customer rows for Core inserts: birthdays (birthday_md set), mixed time zones."""
    from journeys.sampledata import TIMEZONES

    zones = (*TIMEZONES, None)  # None: no time zone, the journey/project default
    rng = random.Random(f"bench-customers:{seed}")
    width = len(str(n))
    base = datetime(2025, 1, 1, tzinfo=UTC)
    for i in range(1, n + 1):
        cid = f"b-{i:0{width}d}"
        year = rng.randrange(1960, 2007)
        if i % 100 == 29:
            birthday = f"{year - year % 4}-02-29"
        else:
            birthday = (datetime(year, 1, 1) + timedelta(days=rng.randrange(365))).date()
            birthday = birthday.isoformat()
        orders = rng.choice((0, 0, 0, 1, 2, 3, 5, 8))
        locale = rng.choice(("ko", "en-US", "en"))
        yield {
            "id": cid,
            "email": f"{cid}@example.com",
            "phone": None,
            "first_name": "민준" if locale == "ko" else "Olivia",
            "last_name": "김" if locale == "ko" else "Smith",
            "locale": locale,
            "timezone": rng.choice(zones),
            "birthday": birthday,
            "birthday_md": birthday[5:10],
            "email_opt_in": rng.random() < 0.9,
            "stage": "purchase" if orders else "awareness",
            "attributes": {"signup_source": rng.choice(("organic", "social", "referral"))},
            "orders_count": orders,
            "lifetime_value": round(orders * rng.uniform(20, 160), 2),
            "first_order_at": None,
            "last_order_at": base + timedelta(seconds=rng.randrange(400 * 86400))
            if orders
            else None,
            "created_at": base,
            "updated_at": base,
        }


def insert_chunked(
    engine: Any, table: Any, rows: Iterator[dict[str, Any]], size: int = 20000
) -> int:
    done = 0
    while True:
        chunk = list(itertools.islice(rows, size))
        if not chunk:
            return done
        with engine.begin() as conn:
            conn.execute(table.insert(), chunk)
        done += len(chunk)


def prep_million(workdir: Path, waits_scale: float, sweep_scale: float) -> dict[str, Any]:
    """1M customers (Core executemany) and 1M due ``bench-waits`` enrollments at ``tier``
    (the first ``waits`` customers get one each)."""
    from journeys.store.tables import customers, enrollments

    n = max(1000, int(FULL["waits"] * waits_scale))
    n_customers = max(n, int(FULL["sweep_customers"] * sweep_scale))
    project = load_bench_project(workdir, with_bench_journey=True)
    plan = project.plans["bench-waits"]
    engine = open_bench_db(workdir / "million.db")
    service = make_service(engine, project, START)
    service.start_cursors(START)
    t = time.perf_counter()
    insert_chunked(engine, customers, customer_rows(n_customers))
    customers_s = time.perf_counter() - t

    rng = random.Random(f"bench-enrollments:{SEED}")
    width = len(str(n_customers))

    def enrollment_rows() -> Iterator[dict[str, Any]]:
        for i in range(1, n + 1):
            entered = START - timedelta(days=1, seconds=rng.randrange(86400))
            yield {
                "journey": plan.journey,
                "version": plan.version,
                "customer_id": f"b-{i:0{width}d}",
                "status": "active",
                "step": "tier",  # the step after the `pause` wait: due now
                "wake_at": entered + timedelta(days=1),
                "waiting_for": None,
                "vars": {"event": {"type": "bench.started", "data": {}}},
                "trigger_key": None,
                "entered_at": entered,
            }

    t = time.perf_counter()
    insert_chunked(engine, enrollments, enrollment_rows())
    enrollments_s = time.perf_counter() - t
    engine.dispose()
    return {
        "customers": n_customers,
        "enrollments": n,
        "insert_customers_s": round(customers_s, 2),
        "insert_enrollments_s": round(enrollments_s, 2),
    }


def run_waits(workdir: Path) -> dict[str, Any]:
    """Time one pass over every due ``bench-waits`` enrollment (the set-based path)."""
    project = load_bench_project(workdir, with_bench_journey=True)
    engine = open_bench_db(workdir / "million.db")
    service = make_service(engine, project, START)
    t = time.perf_counter()
    report = dict(service.run_pass().steps.counts)
    elapsed = time.perf_counter() - t
    woken = report.get("bench-waits.tier", 0)
    totals = table_counts(engine)
    engine.dispose()
    return {
        "seconds": round(elapsed, 2),
        "woken": woken,
        "waits_per_s": round(woken / elapsed) if elapsed else 0,
        "steps": report,
        "enrollments_active_after": totals["enrollments_active"],
        "peak_rss_mib": round(peak_rss_mib()),
    }


def run_sweep(workdir: Path) -> dict[str, Any]:
    """Time the birthday journey's sweeps over one full day (the ``sweep:birthday`` units of
    one pass; the pass as a whole also runs the new enrollments' first steps)."""
    from sqlalchemy import func, select

    from journeys.store.tables import customers, enrollments

    project = load_bench_project(workdir, with_bench_journey=True)
    project = dataclasses.replace(project, plans={"birthday": project.plans["birthday"]})
    engine = open_bench_db(workdir / "million.db")
    service = make_service(engine, project, START)
    service.clock.set(START + timedelta(days=1))
    swept = [0.0]

    def timed(label: str, work: Any) -> int:
        began = time.perf_counter()
        try:
            return work()
        finally:
            if label.startswith("sweep:"):
                swept[0] += time.perf_counter() - began

    t = time.perf_counter()
    enrolled = service.run_pass(run_unit=timed).enrolled_by_time
    whole = time.perf_counter() - t
    elapsed = swept[0]
    with engine.connect() as conn:
        n_customers = conn.scalar(select(func.count()).select_from(customers))
        check = conn.scalar(select(func.count()).where(enrollments.c.journey == "birthday"))
    engine.dispose()
    return {
        "seconds": round(elapsed, 3),
        "pass_seconds": round(whole, 3),
        "customers": n_customers,
        "enrolled": enrolled,
        "enrollments_in_db": check,
        "window": f"{START.isoformat()} .. {(START + timedelta(days=1)).isoformat()}",
        "peak_rss_mib": round(peak_rss_mib()),
    }


# ----------------------------------------------------------------------------- 5. baselines


RAW_DDL = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id VARCHAR(200) NOT NULL UNIQUE,
    type VARCHAR(120) NOT NULL,
    customer_id VARCHAR(128) NOT NULL,
    occurred_at DATETIME NOT NULL,
    received_at DATETIME NOT NULL,
    data JSON NOT NULL,
    source VARCHAR(32) NOT NULL DEFAULT 'api',
    processed_at DATETIME,
    error TEXT
);
CREATE INDEX ix_events_pending ON events (processed_at, occurred_at);
CREATE INDEX ix_events_customer_type ON events (customer_id, type);
"""


def run_raw(workdir: Path) -> dict[str, Any]:
    """The same event rows, json.loads'ed from the same file, sqlite3 executemany, one commit."""
    path = workdir / "raw.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.executescript(RAW_DDL)
    now = "2026-03-02 00:00:00.000000"
    t = time.perf_counter()
    rows = []
    with (workdir / "slice.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            e = json.loads(line)
            rows.append(
                (
                    e["id"],
                    e["type"],
                    e["customer_id"],
                    e["occurred_at"].replace("T", " ").replace("Z", ".000000"),
                    now,
                    json.dumps(e["data"]),
                    "bench",
                )
            )
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO events (id, type, customer_id, occurred_at, received_at, data, source)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - t
    conn.close()
    return {
        "rows": len(rows),
        "seconds": round(elapsed, 3),
        "rows_per_s": round(len(rows) / elapsed),
    }


NAIVE_FLOW = """
import json, sys, time
from prefect import flow

@flow(name="journeys-naive-event", log_prints=False)
def handle_event(event: dict) -> str:
    return event["id"]

n = int(sys.argv[1])
t = time.perf_counter()
handle_event({"id": "warm-up"})  # starts the ephemeral server: not counted
warm = time.perf_counter() - t
t = time.perf_counter()
for i in range(n):
    handle_event({"id": f"evt-{i}"})
elapsed = time.perf_counter() - t
print(json.dumps({"runs": n, "seconds": elapsed, "warm_up_s": warm}))
"""


def run_naive(workdir: Path, runs: int = NAIVE_FLOW_RUNS) -> dict[str, Any]:
    """N local Prefect flow runs of a trivial flow (ephemeral server, telemetry off)."""
    home = workdir / "prefect-home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            # a loaded 2-core machine can take longer than the default 20 s to start it
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        }
    )
    script = workdir / "naive_flow.py"
    script.write_text(NAIVE_FLOW, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script), str(runs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr or proc.stdout)[-2000:]}
    result = json.loads(lines[-1])
    result["per_run_s"] = result["seconds"] / result["runs"]
    result["events_per_s"] = 1 / result["per_run_s"]
    return result


# ----------------------------------------------------------------------------- orchestration


CHILDREN = {
    "prep-stream": lambda w, s: prep_stream(w, s["stream"]),
    "stream": lambda w, s: run_stream(w),
    "floor": lambda w, s: run_floor(w),
    "prep-slice": lambda w, s: prep_slice(w, s["stream"]),
    "slice": lambda w, s: run_stream(
        w / "slice", "slice.jsonl", to_window_end=False, events_only=True
    ),
    "raw": lambda w, s: run_raw(w / "slice"),
    "naive": lambda w, s: run_naive(w),
    "prep-million": lambda w, s: prep_million(w, s["waits"], s["sweep"]),
    "waits": lambda w, s: run_waits(w),
    "sweep": lambda w, s: run_sweep(w),
}


def prep_slice(workdir: Path, scale: float) -> dict[str, Any]:
    """The first SLICE_EVENTS events of the stream (same customers and generator settings)."""
    slice_dir = workdir / "slice"
    slice_dir.mkdir(exist_ok=True)
    info = prep_stream(slice_dir, scale, n_events=SLICE_EVENTS)
    shutil.move(str(slice_dir / "events.jsonl"), str(slice_dir / "slice.jsonl"))
    return info


def child(name: str, workdir: Path, scales: dict[str, float]) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; returns its JSON result."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name]
    cmd += ["--workdir", str(workdir), "--scales", json.dumps(scales)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"benchmark step {name!r} failed (exit {proc.returncode})")
    result = json.loads(lines[-1])
    print(f"  {name:<13} {wall:7.1f} s", file=sys.stderr, flush=True)
    return result


def pg_workers(scale: float) -> dict[str, Any] | None:
    """Results of bench/pg_workers.py (issue 4: 1/2/4 PostgreSQL workers, ingest latency)."""
    return _bench_module("pg_workers", scale)


def prefect_latency(scale: float) -> dict[str, Any] | None:
    """Results of bench/prefect_latency.py (issue 4: CRM events arriving as Prefect events)."""
    return _bench_module("prefect_latency", scale)


def _bench_module(name: str, scale: float) -> dict[str, Any] | None:
    path = ROOT / "bench" / f"{name}.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        return module.run(scale=scale)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def verdict(key: str, value: float | None) -> str:
    if value is None or key not in TARGETS:
        return ""
    op, target = TARGETS[key]
    ok = value >= target if op == ">=" else value <= target
    return "met" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", 1.0)))
    parser.add_argument(
        "--only",
        default="stream,floor,waits,sweep,slice,naive,pg,prefect,delivery,report",
        help="figures to run (stream,floor,waits,sweep,slice,naive,pg,prefect,delivery,"
        "report); floor replays stream's database, so either name runs both",
    )
    for part in ("stream", "waits", "sweep"):
        parser.add_argument(
            f"--{part}-scale",
            type=float,
            default=os.environ.get(f"BENCH_{part.upper()}_SCALE"),
            help=f"scale of figure '{part}' only (default: --scale)",
        )
    parser.add_argument("--scales", help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the temporary databases")
    parser.add_argument("--profile", help="with --child: write a cProfile dump to this file")
    args = parser.parse_args(argv)

    if args.child:
        scales = json.loads(args.scales)
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            result = profiler.runcall(CHILDREN[args.child], Path(args.workdir), scales)
            out = Path(args.profile)
            profiler.dump_stats(out)
            stats = pstats.Stats(str(out), stream=sys.stderr).sort_stats("cumulative")
            stats.print_stats(40)
        else:
            result = CHILDREN[args.child](Path(args.workdir), scales)
        print(json.dumps(result, default=str))
        return 0

    only = set(args.only.split(","))
    scale = args.scale
    scales = {
        part: float(getattr(args, f"{part}_scale") or scale)
        for part in ("stream", "waits", "sweep")
    }
    results: dict[str, Any] = {
        "machine": machine(),
        "scale": scale,
        "scales": scales,
        "batch_size": BATCH_SIZE,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    workdir = Path(tempfile.mkdtemp(prefix="journeys-bench-"))
    print(f"journeys benchmark, scales {scales}, in {workdir}", file=sys.stderr)
    try:
        if "stream" in only or "floor" in only:
            results["stream_prep"] = child("prep-stream", workdir, scales)
            results["stream"] = child("stream", workdir, scales)
            # run_floor needs the stream's tick count and events_ingested
            (workdir / "stream.json").write_text(json.dumps(results["stream"]), encoding="utf-8")
            results["floor"] = child("floor", workdir, scales)
        if "waits" in only or "sweep" in only:
            results["million_prep"] = child("prep-million", workdir, scales)
            if "waits" in only:
                results["waits"] = child("waits", workdir, scales)
            if "sweep" in only:
                results["sweep"] = child("sweep", workdir, scales)
        if "slice" in only:
            results["slice_prep"] = child("prep-slice", workdir, scales)
            results["slice"] = child("slice", workdir, scales)
            results["raw"] = child("raw", workdir, scales)
        if "naive" in only:
            results["naive"] = child("naive", workdir, scales)
        if "pg" in only:
            pg = pg_workers(scales["waits"])
            if pg is not None:
                results["pg_workers"] = pg
        if "prefect" in only:
            latency = prefect_latency(scales["waits"])
            if latency is not None:
                results["prefect_latency"] = latency
        if "delivery" in only:
            delivery = _bench_module("delivery", scale)
            if delivery is not None:
                results["delivery"] = delivery
        if "report" in only:  # bench/report.py: the insight report at 1M customers (issue 12)
            report = _bench_module("report", scale)
            if report is not None:
                results["report"] = report
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["summary"] = summarise(results)
    print_table(results)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(json.dumps(results, default=str, separators=(",", ":")))
    return 0


def summarise(r: dict[str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = {}
    if "stream" in r:
        s["stream_events_per_s"] = r["stream"]["events_per_s"]
    if "floor" in r:
        s["storage_floor_events_per_s"] = r["floor"]["events_per_s"]
        if r["stream"]["events_per_s"]:
            s["floor_vs_engine"] = round(
                r["floor"]["events_per_s"] / r["stream"]["events_per_s"], 1
            )
    if "waits" in r:
        s["waits_per_s"] = r["waits"]["waits_per_s"]
    if "sweep" in r:
        s["sweep_seconds"] = r["sweep"]["seconds"]
    rss = [r[k]["peak_rss_mib"] for k in ("stream", "waits", "sweep") if k in r]
    if rss:
        s["peak_rss_mib"] = max(rss)
    if "slice" in r and "raw" in r:
        s["slice_engine_events_per_s"] = r["slice"]["events_per_s"]
        s["raw_sqlite_rows_per_s"] = r["raw"]["rows_per_s"]
        s["engine_vs_raw_slowdown"] = round(r["raw"]["rows_per_s"] / r["slice"]["events_per_s"], 1)
    if "naive" in r and "events_per_s" in r["naive"]:
        s["naive_prefect_events_per_s"] = round(r["naive"]["events_per_s"], 2)
        engine_rate = s.get("stream_events_per_s") or s.get("slice_engine_events_per_s")
        if engine_rate:
            s["engine_vs_naive_prefect"] = round(engine_rate / r["naive"]["events_per_s"])
    return s


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, scalar) pairs of nested dicts (bench/pg_workers.py's result)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        yield prefix, json.dumps(value, default=str)
    else:
        yield prefix, value


def print_table(r: dict[str, Any]) -> None:
    m = r["machine"]
    s = r["summary"]
    print(
        f"\nmachine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, "
        f"Python {m['python']}, SQLite {m['sqlite']}, SQLAlchemy {m['sqlalchemy']}"
    )
    print(f"scales: {r['scales']}  batch_size: {r['batch_size']}\n")
    rows: list[tuple[str, str, str, str]] = []

    def add(label: str, key: str, value: Any, unit: str) -> None:
        target = TARGETS.get(key)
        goal = f"{target[0]} {target[1]:,}" if target else ""
        text = f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"
        rows.append((label, f"{text} {unit}", goal, verdict(key, value)))

    if "stream" in r:
        st, prep = r["stream"], r["stream_prep"]
        add(
            f"1. ingest+match+advance+render ({st['events_ingested']:,} events, "
            f"{prep['customers']:,} customers)",
            "stream_events_per_s",
            st["events_per_s"],
            "events/s",
        )
        add("   elapsed", "", st["seconds"], "s")
        add("   outbox rows (rendered)", "", st["tables"]["outbox"], "")
        add("   … of which rendered", "", st["tables"]["outbox_rendered"], "")
        add("   (data generation, not timed)", "", prep["generate_s"], "s")
        add("   (customer import, not timed)", "", prep["import_customers_per_s"], "customers/s")
    if "floor" in r:
        fl = r["floor"]
        add(
            "1f. storage floor: the run's final rows inserted raw, tick by tick",
            "storage_floor_events_per_s",
            fl["events_per_s"],
            "events/s",
        )
        add(
            f"    elapsed ({fl['rows_total']:,} rows in {fl['ticks']:,} transactions)",
            "",
            fl["seconds"],
            "s",
        )
        if "floor_vs_engine" in s:
            add("    floor / engine", "", s["floor_vs_engine"], "x")
        for table, t in fl["tables"].items():
            add(f"    {table} alone ({t['rows']:,} rows)", "", t["us_per_row"], "µs/row")
    if "waits" in r:
        add(
            f"2. due waits advanced ({r['waits']['woken']:,})",
            "waits_per_s",
            r["waits"]["waits_per_s"],
            "waits/s",
        )
    if "sweep" in r:
        add(
            f"3. birthday sweep, 1 day ({r['sweep']['customers']:,} customers, "
            f"{r['sweep']['enrolled']:,} enrolled)",
            "sweep_seconds",
            r["sweep"]["seconds"],
            "s",
        )
    if "peak_rss_mib" in s:
        add("4. peak RSS of runs 1-3", "peak_rss_mib", s["peak_rss_mib"], "MiB")
        for k in ("stream", "waits", "sweep"):
            if k in r:
                add(f"   {k}", "", r[k]["peak_rss_mib"], "MiB")
    if "engine_vs_raw_slowdown" in s:
        add(
            f"5a. raw sqlite3 insert ({r['raw']['rows']:,} event rows)",
            "",
            s["raw_sqlite_rows_per_s"],
            "rows/s",
        )
        add(
            "    engine on the same slice (event-triggered journeys)",
            "",
            s["slice_engine_events_per_s"],
            "events/s",
        )
        add("    raw / engine", "engine_vs_raw_slowdown", s["engine_vs_raw_slowdown"], "x")
    if "naive" in r:
        if "events_per_s" in r["naive"]:
            add(
                f"5b. naive Prefect: one flow run per event ({r['naive']['runs']} runs)",
                "",
                round(r["naive"]["per_run_s"], 3),
                "s/run",
            )
            if "engine_vs_naive_prefect" in s:
                add("    engine / naive throughput", "", s["engine_vs_naive_prefect"], "x")
        else:
            rows.append(("5b. naive Prefect", "error (see results.json)", "", ""))
    if "pg_workers" in r:
        for key, value in _flatten(r["pg_workers"]):
            if isinstance(value, int | float) and not isinstance(value, bool):
                add(f"6. pg_workers: {key}", "", value, "")
            else:
                rows.append((f"6. pg_workers: {key}", str(value)[:60], "", ""))
    if "prefect_latency" in r:
        for key, value in _flatten(r["prefect_latency"]):
            if isinstance(value, int | float) and not isinstance(value, bool):
                add(f"7. prefect events: {key}", "", value, "")
    if "delivery" in r and "client_messages_per_s" in r["delivery"]:
        d = r["delivery"]
        add(
            "8. SendGrid client into a local server",
            "delivery_client_messages_per_s",
            d["client_messages_per_s"],
            "messages/s",
        )
        add(
            "   dispatch (claim, send, record) on SQLite",
            "",
            d["dispatch_messages_per_s"],
            "messages/s",
        )
    if "report" in r:
        for key, value in _flatten(r["report"]):
            if isinstance(value, int | float) and not isinstance(value, bool):
                add(f"9. insight report: {key}", "", value, "")
    widths = [max(len(row[i]) for row in rows) for i in range(4)] if rows else [0] * 4
    header = ("measure", "result", "target", "")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print()


if __name__ == "__main__":
    sys.exit(main())
