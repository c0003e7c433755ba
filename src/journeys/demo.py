"""``journeys demo``: the example journeys on generated customers and 30 days of events.

Everything runs on the embedded default (a fresh SQLite file, no servers) in virtual time, with
the real engine and the file channel, and customers who react: some answer their NPS survey a
few hours after it is sent, which feeds the post-purchase feedback loop.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from journeys.channels.file import FileChannel
from journeys.clock import VirtualClock, iso
from journeys.insight.samples import sample_comment
from journeys.insight.voc import analyse_stored
from journeys.plan import nps_category
from journeys.report import build_report, render_report
from journeys.sampledata import generate_customers, generate_events
from journeys.service import JourneyService, default_channels
from journeys.spec import load_project
from journeys.store import db as store_db
from journeys.store.tables import customers, outbox

DEMO_START = datetime(2026, 3, 1, tzinfo=UTC)


@dataclass
class DemoResult:
    """Where the demo left its output, and its report."""

    out_dir: Path
    database: Path
    messages_file: Path
    samples_dir: Path
    report: dict[str, Any]


DEMO_OUTPUTS = ("journeys.db", "journeys.db-wal", "journeys.db-shm", "messages.jsonl", "samples")
"""What ``journeys demo`` writes in its output folder."""


def remove_outputs(out_dir: Path, names: tuple[str, ...]) -> None:
    """Delete the named files or folders of an earlier run from ``out_dir`` (only those)."""
    for name in names:
        target = out_dir / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()


def run_demo(
    specs: Path = Path("journey_specs"),
    templates: Path | None = None,
    out_dir: Path = Path("demo-out"),
    customers: int = 300,
    days: int = 30,
    seed: int = 7,
    say: Callable[[str], None] = print,
) -> DemoResult:
    """Run the demo and return where its results are.

    Only what an earlier demo wrote in ``out_dir`` is replaced; anything else there is left
    alone (``--out .`` must not wipe a project)."""
    remove_outputs(out_dir, DEMO_OUTPUTS)
    out_dir.mkdir(parents=True, exist_ok=True)
    database = out_dir / "journeys.db"
    messages_file = out_dir / "messages.jsonl"
    project = load_project([specs], templates_dir=templates)
    clock = VirtualClock(DEMO_START)
    # Thousands of small virtual-time transactions run in memory so the demo's speed does not
    # depend on the disk; the finished database is saved to a file at the end.
    db = store_db.open_store("sqlite:///:memory:")
    file_channel = FileChannel(messages_file)
    channels = default_channels(file_channel)
    service = JourneyService(db, project, clock=clock, channels=channels)
    try:
        people = generate_customers(customers, seed=seed)
        report = service.import_customers(people)
        say(f"imported {report.accepted} customers")
        events = list(generate_events(people, DEMO_START, days, seed=seed))
        report = service.ingest(events, source="demo")
        say(f"ingested {report.accepted} events over {days} days (virtual time)")
        service.start_cursors(DEMO_START)
        until = DEMO_START + timedelta(days=days)
        rng, words = random.Random(seed), random.Random(seed + 1)
        answered = [0]

        def answer(totals: dict[str, int]) -> None:
            if totals.get("dispatched"):
                _answer_surveys(service, rng, answered, words)

        steps = service.run_until(until, on_tick=answer)
        say(f"ran {len(project.plans)} journeys through {steps} instants up to {iso(until)}")
        samples = _write_samples(service, out_dir / "samples")
        # What the runtime will do as each answer is stored: sentiment and keywords.
        say(f"analysed {analyse_stored(db)} survey comments")
        _save_database(db, database)
        data = build_report(db, project.plans, now=until)
        say("")
        say(render_report(data))
        say("")
        say(f"database:          {database}")
        say(f"all messages:      {messages_file} (one JSON line per message)")
        say(f"sample messages:   {samples}/ (rendered HTML, en and ko)")
        say("explore:           journeys report --database sqlite:///" + str(database))
        say("                   (--format html --out report.html: the charts in one file)")
        return DemoResult(out_dir, database, messages_file, samples, data)
    finally:
        db.dispose()


def _answer_surveys(
    service: JourneyService, rng: random.Random, seen: list[int], words: random.Random
) -> None:
    """Some customers answer the NPS survey 2-30 hours after it is sent, half of them with a
    comment in their language (deterministic).

    ``seen[0]`` is the last outbox id looked at, so each survey is considered once.
    """
    with service.db.connect() as conn:
        rows = conn.execute(
            select(
                outbox.c.id, outbox.c.customer_id, outbox.c.journey, outbox.c.step, outbox.c.due_at
            )
            .where(
                outbox.c.kind == "survey",
                outbox.c.status.in_(("sent", "logged")),
                outbox.c.id > seen[0],
            )
            .order_by(outbox.c.id)
        ).all()
        locales = dict(
            conn.execute(
                select(customers.c.id, customers.c.locale).where(
                    customers.c.id.in_({row.customer_id for row in rows})
                )
            ).all()
        )
    events = []
    for row in rows:
        seen[0] = row.id
        if rng.random() > 0.6:
            continue
        score = rng.choices(range(11), weights=[2, 1, 1, 2, 2, 3, 4, 8, 10, 14, 13])[0]
        at = row.due_at.replace(tzinfo=UTC) + timedelta(hours=rng.randint(2, 30))
        data: dict[str, Any] = {"journey": row.journey, "step": row.step, "score": score}
        comment = sample_comment(words, nps_category(score), locales.get(row.customer_id))
        if comment:
            data["comment"] = comment
        events.append(
            {
                "id": f"demo-answer-{row.id}",
                "type": "survey.answered",
                "customer_id": row.customer_id,
                "occurred_at": iso(at),
                "data": data,
            }
        )
    if events:
        service.ingest(events, source="demo")


def _save_database(db: Engine, path: Path) -> None:
    """Copy the in-memory database to ``path`` with SQLite's online backup."""
    target = sqlite3.connect(path)
    try:
        with db.connect() as conn:
            conn.connection.dbapi_connection.backup(target)  # type: ignore[union-attr]
    finally:
        target.close()


def _write_samples(service: JourneyService, folder: Path, per_template: int = 2) -> Path:
    """A few rendered messages per template and locale, as HTML files to open in a browser."""
    folder.mkdir(parents=True, exist_ok=True)
    seen: dict[tuple[str, str], int] = {}
    with service.db.connect() as conn:
        rows = conn.execute(
            select(
                outbox.c.template,
                outbox.c.locale,
                outbox.c.customer_id,
                outbox.c.subject,
                outbox.c.html,
            )
            .where(outbox.c.status.in_(("sent", "logged")), outbox.c.html.is_not(None))
            .order_by(outbox.c.id)
        ).all()
    for row in rows:
        key = (row.template, row.locale or "default")
        if seen.get(key, 0) >= per_template:
            continue
        seen[key] = seen.get(key, 0) + 1
        name = f"{row.template}.{key[1]}.{row.customer_id}.html"
        (folder / name).write_text(
            f"<!-- subject: {row.subject} -->\n<h3>{row.subject}</h3>\n{row.html}", encoding="utf-8"
        )
    return folder
