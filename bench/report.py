"""Benchmark: the full insight report at 1M customers, 5M step runs and 1M messages (issue 12).

``run(scale)`` writes a shop straight into the tables of a fresh SQLite file (migrated by
journeys; rows inserted with plain ``sqlite3`` ``executemany``, not timed) and then times
``journeys.insight.report.build_report`` in a fresh process, all sections, twice: over all
recorded activity (90 days, what ``journeys report`` does without ``--from/--to``) and over the
last 30 days (the dashboard's default). Sizes at scale 1:

| table | rows |
|---|---|
| customers | 1,000,000 (stages, orders, lifetime values) |
| enrollments | 1,000,000 over 5 journeys (one with an A/B/control split) |
| step_runs | 5,000,000 (5 per enrollment) |
| outbox | 1,000,000 (one email per enrollment) |
| events | 1,000,000 orders + 400,000 email events (10 % without a message id) |
| survey_answers | 100,000 (half with an analysed comment) |
| stage_history | 1,000,000 |

It also measures what the insight migration's indexes cost the engine's writes: inserting
200,000 outbox, event and enrollment rows with and without each.

Run alone: ``python bench/report.py [--scale 0.1] [--keep]``; ``bench/run.py --only report``
calls :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent / "src"))

TARGET_SECONDS = 10.0
FULL = {
    "customers": 1_000_000,
    "enrollments": 1_000_000,
    "step_runs_per_enrollment": 5,
    "orders": 1_000_000,
    "email_events": 400_000,
    "answers": 100_000,
    "stage_changes": 1_000_000,
}
START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 90
END = START + timedelta(days=DAYS)
JOURNEYS = ("welcome", "cart", "browse", "post", "winback")
STEPS = ("enter", "wait", "send", "split", "finish")
STAGES = ("awareness", "consideration", "purchase", "loyalty", "advocacy")
CHUNK = 50_000


def _t(value: datetime) -> str:
    """SQLite's storage format of journeys' UtcDateTime."""
    return value.isoformat(" ", "microseconds")[:26]


def _plans() -> dict[str, Any]:
    from journeys.plan import (
        END as END_STEP,
    )
    from journeys.plan import (
        EventTrigger,
        Goal,
        Plan,
        SendStep,
        SplitStep,
        SplitVariant,
        UpdateStep,
        WaitStep,
    )

    plans = {}
    for name in JOURNEYS:
        split: Any = (
            SplitStep(
                id="split",
                next=END_STEP,
                variants=(
                    SplitVariant("a", 45, "finish"),
                    SplitVariant("b", 45, "finish"),
                    SplitVariant("control", 10, "finish"),
                ),
            )
            if name == "cart"
            else UpdateStep(id="split", next="finish", set={"seen": True})
        )
        plans[name] = Plan(
            journey=name,
            name=name.title(),
            version="v1",
            trigger=EventTrigger(f"{name}.start"),
            steps=(
                UpdateStep(id="enter", next="wait"),
                WaitStep(id="wait", next="send", seconds=3600),
                SendStep(id="send", next="split", template=f"{name}_mail"),
                split,
                UpdateStep(id="finish", next=END_STEP),
            ),
            goal=Goal("order.placed", within_seconds=7 * 86400),
        )
    return plans


def _insert(
    db: sqlite3.Connection, table: str, columns: tuple[str, ...], rows: Iterator[tuple]
) -> int:
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    n = 0
    chunk: list[tuple] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            db.executemany(sql, chunk)
            n += len(chunk)
            chunk.clear()
    if chunk:
        db.executemany(sql, chunk)
        n += len(chunk)
    db.commit()
    return n


def generate(path: Path, scale: float, seed: int = 7) -> dict[str, int]:
    """Write the shop into a migrated database at ``path``; returns the row counts."""
    from journeys.store.db import create_engine, migrate

    engine = create_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    rng = random.Random(seed)
    n = {k: max(100, int(v * scale)) for k, v in FULL.items() if k != "step_runs_per_enrollment"}
    span = DAYS * 86400
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    plans = _plans()
    _insert(
        db,
        "journey_versions",
        ("journey", "version", "plan", "created_at"),
        ((p.journey, p.version, json.dumps(p.to_dict()), _t(START)) for p in plans.values()),
    )
    width = len(str(n["customers"]))

    def cid(i: int) -> str:
        return f"c{i:0{width}d}"

    def customers() -> Iterator[tuple]:
        for i in range(n["customers"]):
            orders = rng.choice((0, 0, 0, 1, 1, 2, 3, 5))
            stage = STAGES[min(orders + rng.randrange(2), 4)]
            yield (
                cid(i),
                f"{cid(i)}@example.com",
                "ko" if i % 3 == 0 else "en",
                stage,
                "{}",
                orders,
                round(orders * rng.uniform(20, 160), 2),
                1,
                _t(START),
                _t(START),
            )

    _insert(
        db,
        "customers",
        (
            "id",
            "email",
            "locale",
            "stage",
            "attributes",
            "orders_count",
            "lifetime_value",
            "email_opt_in",
            "created_at",
            "updated_at",
        ),
        customers(),
    )

    entered_at: list[datetime] = []

    def enrollments() -> Iterator[tuple]:
        for i in range(n["enrollments"]):
            journey = JOURNEYS[i % len(JOURNEYS)]
            entered = START + timedelta(seconds=rng.randrange(span))
            entered_at.append(entered)
            r = rng.random()
            status = "completed" if r < 0.7 else ("exited" if r < 0.9 else "active")
            step = "end" if status == "completed" else rng.choice(STEPS)
            vars_: dict[str, Any] = {}
            if journey == "cart":
                vars_["variants"] = {"split": rng.choice(("a", "a", "b", "b", "control"))}
            converted = (
                _t(entered + timedelta(hours=rng.randrange(1, 150))) if rng.random() < 0.2 else None
            )
            yield (
                i + 1,
                journey,
                "v1",
                cid(i % n["customers"]),
                status,
                step,
                _t(END + timedelta(hours=rng.randrange(48))) if status == "active" else None,
                json.dumps(vars_),
                _t(entered),
                None if status == "active" else _t(entered + timedelta(days=2)),
                "order.placed" if status == "exited" else None,
                converted,
            )

    _insert(
        db,
        "enrollments",
        (
            "id",
            "journey",
            "version",
            "customer_id",
            "status",
            "step",
            "wake_at",
            "vars",
            "entered_at",
            "ended_at",
            "exit_reason",
            "converted_at",
        ),
        enrollments(),
    )

    def step_runs() -> Iterator[tuple]:
        for i, entered in enumerate(entered_at):
            journey = JOURNEYS[i % len(JOURNEYS)]
            for k, step in enumerate(STEPS):
                yield (i + 1, journey, step, _t(entered + timedelta(hours=k)), "ran")

    runs = _insert(
        db, "step_runs", ("enrollment_id", "journey", "step", "at", "outcome"), step_runs()
    )

    def outbox() -> Iterator[tuple]:
        for i, entered in enumerate(entered_at):
            journey = JOURNEYS[i % len(JOURNEYS)]
            at = _t(entered + timedelta(hours=2))
            yield (
                i + 1,
                i + 1,
                "send",
                journey,
                cid(i % n["customers"]),
                "send",
                f"{journey}_mail",
                "email",
                "en",
                "sent" if i % 50 else "failed",
                at,
                at,
                at,
            )

    _insert(
        db,
        "outbox",
        (
            "id",
            "enrollment_id",
            "step",
            "journey",
            "customer_id",
            "kind",
            "template",
            "channel",
            "locale",
            "status",
            "due_at",
            "created_at",
            "sent_at",
        ),
        outbox(),
    )

    def events() -> Iterator[tuple]:
        for i in range(n["orders"]):
            at = START + timedelta(seconds=rng.randrange(span))
            yield (
                f"o{i}",
                "order.placed",
                cid(rng.randrange(n["customers"])),
                _t(at),
                _t(at),
                json.dumps({"total": round(rng.uniform(10, 300), 2)}),
                "bench",
                _t(at),
            )
        kinds = (
            ("email.opened",) * 6 + ("email.clicked",) * 2 + ("email.bounced", "email.unsubscribed")
        )
        for i in range(n["email_events"]):
            mid = rng.randrange(len(entered_at))
            at = entered_at[mid] + timedelta(hours=3 + rng.randrange(48))
            data = {} if i % 10 == 0 else {"message_id": str(mid + 1)}
            yield (
                f"m{i}",
                rng.choice(kinds),
                cid(mid % n["customers"]),
                _t(at),
                _t(at),
                json.dumps(data),
                "bench",
                _t(at),
            )

    _insert(
        db,
        "events",
        (
            "id",
            "type",
            "customer_id",
            "occurred_at",
            "received_at",
            "data",
            "source",
            "processed_at",
        ),
        events(),
    )

    def answers() -> Iterator[tuple]:
        for i in range(n["answers"]):
            score = rng.randrange(11)
            category = "promoter" if score >= 9 else ("passive" if score >= 7 else "detractor")
            at = _t(START + timedelta(seconds=rng.randrange(span)))
            comment = rng.choice(("Fast delivery", "배송이 늦어요", None, None))
            analysed = comment is not None
            yield (
                f"a{i}",
                cid(rng.randrange(n["customers"])),
                "post",
                "nps",
                "nps",
                score,
                category,
                comment,
                at,
                "positive" if analysed else None,
                0.5 if analysed else None,
                json.dumps(["delivery"] if analysed else []) if analysed else None,
            )

    _insert(
        db,
        "survey_answers",
        (
            "event_id",
            "customer_id",
            "journey",
            "step",
            "kind",
            "score",
            "category",
            "comment",
            "answered_at",
            "sentiment",
            "sentiment_score",
            "keywords",
        ),
        answers(),
    )

    def stage_changes() -> Iterator[tuple]:
        for _i in range(n["stage_changes"]):
            k = rng.randrange(4)
            at = _t(START + timedelta(seconds=rng.randrange(span)))
            yield (cid(rng.randrange(n["customers"])), STAGES[k], STAGES[k + 1], at, "rule")

    _insert(
        db,
        "stage_history",
        ("customer_id", "from_stage", "to_stage", "at", "reason"),
        stage_changes(),
    )
    db.execute("ANALYZE")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return {**n, "step_runs": runs}


def time_report(path: Path) -> dict[str, Any]:
    """In this process: the full report over all activity, then over the last 30 days."""
    from journeys.insight.report import build_report, stored_plans
    from journeys.store.db import create_engine

    engine = create_engine(f"sqlite:///{path}")
    out: dict[str, Any] = {}
    try:
        plans = stored_plans(engine)
        for label, start in (("all_activity", None), ("last_30_days", END - timedelta(days=30))):
            t = time.perf_counter()
            data = build_report(engine, plans, start=start, end=END if start else None, now=END)
            out[f"{label}_s"] = round(time.perf_counter() - t, 2)
            if label == "all_activity":
                cart = data["journeys"]["cart"]
                out["check"] = {
                    "entered": sum(j["entered"] for j in data["journeys"].values()),
                    "cart_variants": {
                        v: c["entered"] for v, c in cart["variants"]["split"]["variants"].items()
                    },
                    "open_rate": data["kpis"]["open_rate"],
                    "retention_rate": data["kpis"]["retention_rate"],
                }
    finally:
        engine.dispose()
    return out


INDEX_COSTS = {
    # index: (table, columns, row maker) — rows as the engine writes them, in batches
    "ix_outbox_customer": (
        "outbox",
        (
            "id",
            "enrollment_id",
            "step",
            "journey",
            "customer_id",
            "kind",
            "template",
            "channel",
            "locale",
            "status",
            "due_at",
            "created_at",
        ),
        lambda i, rng, at: (
            i + 1,
            i + 1,
            "send",
            "cart",
            f"c{rng.randrange(10**6):07d}",
            "send",
            "t",
            "email",
            "en",
            "pending",
            at,
            at,
        ),
    ),
    "ix_events_type_time": (
        "events",
        ("id", "type", "customer_id", "occurred_at", "received_at", "data", "source"),
        lambda i, rng, at: (
            f"e{i}",
            rng.choice(("order.placed", "cart.updated", "email.opened")),
            f"c{rng.randrange(10**6):07d}",
            at,
            at,
            "{}",
            "api",
        ),
    ),
    "ix_enrollments_entered": (
        "enrollments",
        ("id", "journey", "version", "customer_id", "status", "step", "vars", "entered_at"),
        lambda i, rng, at: (i + 1, "cart", "v1", f"c{i:07d}", "active", "s", "{}", at),
    ),
}


def index_costs(workdir: Path, rows: int) -> dict[str, dict[str, float]]:
    """µs per row inserted with and without each index the insight migration adds (the
    engine's writes: every message, event and enrollment), in batches of 5,000 rows."""
    from journeys.store.db import create_engine, migrate

    out: dict[str, dict[str, float]] = {}
    for index, (table, columns, make) in INDEX_COSTS.items():
        out[index] = {}
        for label in ("with_index", "without_index"):
            path = workdir / f"{index}-{label}.db"
            engine = create_engine(f"sqlite:///{path}")
            migrate(engine)
            engine.dispose()
            db = sqlite3.connect(path)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA foreign_keys = OFF")
            if label == "without_index":
                db.execute(f"DROP INDEX {index}")
            rng = random.Random(3)
            data = [make(i, rng, _t(START + timedelta(seconds=i))) for i in range(rows)]
            marks = ", ".join("?" * len(columns))
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
            t = time.perf_counter()
            for k in range(0, rows, 5000):  # one transaction per batch, like the engine
                db.executemany(sql, data[k : k + 5000])
                db.commit()
            out[index][f"{label}_us_per_row"] = round((time.perf_counter() - t) / rows * 1e6, 2)
            db.close()
            path.unlink()
    return out


def run(scale: float = 1.0, keep: bool = False) -> dict[str, Any]:
    """Generate, then time the report in a child process; see the module docstring."""
    workdir = Path(tempfile.mkdtemp(prefix="journeys-bench-report-"))
    path = workdir / "report.db"
    try:
        t = time.perf_counter()
        counts = generate(path, scale)
        generate_s = round(time.perf_counter() - t, 1)
        proc = subprocess.run(
            [sys.executable, str(HERE), "--time", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            return {"error": proc.stderr[-2000:]}
        timing = json.loads(proc.stdout.strip().splitlines()[-1])
        result = {
            "scale": scale,
            "rows": counts,
            "generate_s": generate_s,
            "database_mib": round(path.stat().st_size / 2**20),
            **timing,
            "index_costs": index_costs(workdir, max(10_000, int(200_000 * scale))),
            "target_s": TARGET_SECONDS,
        }
        result["met"] = result["all_activity_s"] <= TARGET_SECONDS
        return result
    finally:
        if keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    parser.add_argument("--time", help=argparse.SUPPRESS)  # the child: time one database
    args = parser.parse_args()
    if args.time:
        print(json.dumps(time_report(Path(args.time))))
        return
    print(json.dumps(run(args.scale, keep=args.keep), indent=2))


if __name__ == "__main__":
    main()
