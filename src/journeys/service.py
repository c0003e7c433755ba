"""The facade every shell uses (CLI, APScheduler runner, Prefect flows).

``JourneyService.open(...)`` loads and validates the project, opens (and migrates) the store
and builds the engine. Its methods are the core operations (README, "How it is built"):
ingest, process events, sweep date/schedule triggers, advance, dispatch.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from journeys.channels.base import (
    Channel,
    ChannelError,
    ChannelRegistry,
    OutboundMessage,
    SendResult,
)
from journeys.channels.console import ConsoleChannel
from journeys.clock import Clock, SystemClock, VirtualClock
from journeys.intake import MAX_DEPTH, MAX_LINE
from journeys.runtime.engine import Engine as JourneyEngine
from journeys.runtime.engine import StepReport, iter_chunks, quiesce
from journeys.runtime.records import (
    CREATING_EVENTS,
    RecordError,
    normalise_customer,
    normalise_event,
)
from journeys.spec import Project, load_project
from journeys.spec.models import CHANNELS
from journeys.store import db as store_db
from journeys.store import repository as repo

log = logging.getLogger("journeys.service")

INGEST_CHUNK = 5000
STANDARD_CHANNELS = CHANNELS
"""The channel names journeys can use (the language's ``channel:`` values)."""


def default_channels(channel: Channel | None = None) -> ChannelRegistry:
    """Every standard channel name on ``channel`` (default: the console); real providers are
    configured on top."""
    channel = channel if channel is not None else ConsoleChannel()
    return ChannelRegistry(dict.fromkeys(STANDARD_CHANNELS, channel))


class ProjectInvalid(Exception):
    """The specs have errors; ``diagnostics`` says which (``file:line:col: message [code]``)."""

    def __init__(self, project: Project) -> None:
        self.project = project
        lines = [str(d) for d in project.diagnostics]
        super().__init__("the journey specs have errors:\n" + "\n".join(lines))


@dataclass
class RecordReport:
    """The outcome of importing or ingesting a file: counts and every bad record by line."""

    accepted: int = 0
    duplicates: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No bad records."""
        return not self.errors


class BadLine:
    """A line that could not even be parsed (placeholder carrying the parse error)."""

    def __init__(self, message: str) -> None:
        self.message = message


# Bytes that are not UTF-8 survive decoding as lone surrogates (errors="surrogateescape"), so
# one bad line becomes one bad record instead of an exception that stops the whole file.
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
NOT_UTF8 = "not UTF-8 text: save the file as UTF-8"


def read_records(path: Path) -> Iterator[Any]:
    """Records of a JSON Lines or CSV file, one per line; unparsable lines (not JSON, not
    UTF-8, a CSV field over the CSV reader's limit, …) yield :class:`BadLine`.

    Blank lines, the CSV header and the extra lines of a CSV row with line breaks in a quoted
    value are yielded as None so that positions stay line numbers.
    """
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
            reader = csv.DictReader(handle)
            try:
                header = reader.fieldnames
            except csv.Error as exc:
                yield BadLine(f"the header cannot be read: {exc}")
                return
            if not header or "id" not in header:
                shown = [h[:40] for h in header or []][:20]
                yield BadLine(f"the header has no 'id' column (found: {shown})")
                return
            yield None  # the header line
            line = 2  # the line the next yielded item stands for
            while True:
                ended = reader.line_num
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    first = ended + 1
                    yield from itertools.repeat(None, max(first - line, 0))
                    yield BadLine(f"not a CSV row: {exc}")
                    line = max(first, line) + 1
                    continue
                breaks = sum(v.count("\n") for v in row.values() if isinstance(v, str))
                first = reader.line_num - breaks
                yield from itertools.repeat(None, max(first - line, 0))
                line = max(first, line) + 1
                if None in row:
                    yield BadLine(f"{len(row[None])} more value(s) than header columns")  # type: ignore[index]
                elif any(_NOT_UTF8.search(v) for v in row.values() if v):
                    yield BadLine(NOT_UTF8)
                else:
                    yield {k: v for k, v in row.items() if v not in (None, "")}
        return
    with path.open(encoding="utf-8", errors="surrogateescape") as handle:
        yield from parse_json_lines(handle)


def parse_json_lines(lines: Iterable[str]) -> Iterator[Any]:
    """One record per line: the parsed JSON, :class:`BadLine` if it is not JSON (or too long,
    or nested too deeply for any record), None if blank."""
    for line in lines:
        text = line.strip()
        if not text:
            yield None
            continue
        if len(text) > MAX_LINE:
            yield BadLine(f"the line is {len(text):,} characters; a record may have {MAX_LINE:,}")
            continue
        if _NOT_UTF8.search(text):
            yield BadLine(NOT_UTF8)
            continue
        try:
            yield json.loads(text)
        except json.JSONDecodeError as exc:
            yield BadLine(f"not valid JSON: {exc.msg} at column {exc.colno}")
        except RecursionError:
            yield BadLine(f"JSON nested too deeply (a record may nest {MAX_DEPTH} levels)")
        except ValueError as exc:  # e.g. an integer of thousands of digits
            yield BadLine(f"not valid JSON: {str(exc)[:120]}")


class JourneyService:
    """Core operations over one store and one project. Cheap to call often; not thread-safe."""

    def __init__(
        self,
        db: Engine,
        project: Project,
        *,
        clock: Clock | None = None,
        channels: ChannelRegistry | None = None,
        worker_id: str | None = None,
        batch_size: int = 2000,
    ) -> None:
        if not project.ok:
            raise ProjectInvalid(project)
        self.db = db
        self.project = project
        self.clock = clock or SystemClock()
        self.channels = channels if channels is not None else default_channels()
        self.worker_id = worker_id or f"{os.uname().nodename}:{os.getpid()}"
        self._undispatched = True  # messages queued before this process started
        self.engine = JourneyEngine(
            db,
            project.plans,
            lifecycle=project.lifecycle,
            settings=project.settings,
            templates=project.templates,
            clock=self.clock,
            batch_size=batch_size,
        )

    @classmethod
    def open(
        cls,
        database_url: str | None = None,
        specs: str | Path = "journey_specs",
        templates: str | Path | None = None,
        clock: Clock | None = None,
        worker_id: str | None = None,
        channels: ChannelRegistry | None = None,
        batch_size: int = 2000,
    ) -> JourneyService:
        """Load the project, open and migrate the store, and build the engine."""
        project = load_project([Path(specs)], templates_dir=templates)
        db = store_db.open_store(database_url)
        return cls(
            db, project, clock=clock, channels=channels, worker_id=worker_id, batch_size=batch_size
        )

    def close(self) -> None:
        """Release database connections."""
        self.db.dispose()

    # ------------------------------------------------------------------ import / ingest

    def import_customers(self, records: Iterable[Any], first_line: int = 1) -> RecordReport:
        """Upsert customer profiles (CSV/JSONL records). Importing the same file twice changes
        nothing; bad records are reported by line and skipped, good ones kept."""
        report = RecordReport()
        now = self.clock.now()
        numbered = ((first_line + i, r) for i, r in enumerate(records))
        for chunk in iter_chunks((x for x in numbered if x[1] is not None), INGEST_CHUNK):
            good: dict[str, dict[str, Any]] = {}
            for line, raw in chunk:
                if isinstance(raw, BadLine):
                    report.errors.append((line, raw.message))
                    continue
                if not isinstance(raw, Mapping):
                    report.errors.append((line, "a customer must be a JSON object or CSV row"))
                    continue
                try:
                    good[str(raw.get("id", "")).strip() or "?"] = normalise_customer(raw)
                except RecordError as exc:
                    report.errors.append((line, str(exc)))
            with self.db.begin() as conn:
                existing = repo.load_customers(conn, good)
                new_rows, changed = [], []
                for cid, rec in good.items():
                    old = existing.get(cid)
                    if old is None:
                        row = self.engine.new_customer(cid, now)
                        row.update(rec)
                        new_rows.append(row)
                        continue
                    merged = dict(old)
                    attrs = dict(old.get("attributes") or {})
                    attrs.update(rec.pop("attributes", {}))
                    merged.update(rec)
                    merged["attributes"] = attrs
                    if merged != old:
                        merged["updated_at"] = now
                        changed.append(merged)
                    else:
                        report.unchanged += 1
                repo.insert_customers(conn, new_rows)
                repo.update_customers(conn, changed)
            if new_rows or changed:
                self.engine.customers_changed()
            report.accepted += len(new_rows) + len(changed)
        return report

    def ingest(
        self, records: Iterable[Any], source: str = "api", first_line: int = 1
    ) -> RecordReport:
        """Store events, deduplicated by id. Bad records are reported by position and skipped;
        good ones are kept. Matching happens in :meth:`process_events`."""
        report = RecordReport()
        now = self.clock.now()
        numbered = ((first_line + i, r) for i, r in enumerate(records))
        created: set[str] = set()
        for chunk in iter_chunks((x for x in numbered if x[1] is not None), INGEST_CHUNK):
            parsed: list[tuple[int, dict[str, Any]]] = []
            for line, raw in chunk:
                if isinstance(raw, BadLine):
                    report.errors.append((line, raw.message))
                    continue
                try:
                    parsed.append((line, normalise_event(raw)))
                except RecordError as exc:
                    report.errors.append((line, str(exc)))
            with self.db.begin() as conn:
                known = repo.existing_customer_ids(conn, {e["customer_id"] for _, e in parsed})
                stored = repo.existing_event_ids(conn, {e["id"] for _, e in parsed})
                rows, seen = [], set()
                for line, event in parsed:
                    cid = event["customer_id"]
                    if event["type"] in CREATING_EVENTS:
                        created.add(cid)
                    elif cid not in known and cid not in created:
                        report.errors.append(
                            (
                                line,
                                f"unknown customer {cid!r}: import it first "
                                "(journeys import customers) or send customer.updated",
                            )
                        )
                        continue
                    if event["id"] in stored or event["id"] in seen:
                        report.duplicates += 1
                        continue
                    seen.add(event["id"])
                    rows.append({**event, "received_at": now, "source": source})
                repo.insert_events(conn, rows)
            report.accepted += len(rows)
        return report

    # ------------------------------------------------------------------ core operations

    def process_events(self, limit: int | None = None) -> int:
        """Match pending events (enroll, resume waits, exits, goals, stage rules)."""
        return self.engine.process_events(limit)

    def sweep_triggers(self, journey: str | None = None) -> int:
        """Date and schedule triggers due up to now; returns new enrollments."""
        return self.engine.sweep_triggers(journey)

    def due_steps(self, journey: str) -> list[str]:
        """Step ids of ``journey`` that have due enrollments."""
        return [s for _, s in self.engine.due_steps(journey)]

    def advance_step(self, journey: str, step: str, limit: int | None = None) -> int:
        """Run one step for a batch of its due enrollments."""
        return self.engine.advance_step(journey, step, limit)

    def advance(self, journey: str | None = None) -> dict[str, int]:
        """Advance every due enrollment until it waits or ends: ``journey.step`` → count."""
        report: StepReport = self.engine.advance(journey)
        return dict(report.counts)

    def dispatch(self, limit: int = 1000) -> int:
        """Send due outbox messages through their channels, each exactly once."""
        sent_total = 0
        while True:
            now = self.clock.now()
            with self.db.begin() as conn:
                rows = repo.claim_outbox(conn, now, limit)
                if not rows:
                    break
                results: list[dict[str, Any]] = []
                by_channel: dict[str, list[dict[str, Any]]] = {}
                for row in rows:
                    by_channel.setdefault(row["channel"], []).append(row)
                for name, group in by_channel.items():
                    results.extend(self._send_group(name, group, now))
                repo.finish_outbox(conn, results)
            sent_total += sum(1 for r in results if r["status"] == "sent")
            if len(rows) < limit or not results:
                # A short batch took everything due; a batch that only failed retryably
                # (provider down) stays pending for the next dispatch instead of being
                # claimed again at once.
                break
        return sent_total

    def _send_group(
        self, name: str, rows: list[dict[str, Any]], now: datetime
    ) -> list[dict[str, Any]]:
        try:
            channel = self.channels.get_channel(name)
        except KeyError as exc:
            return [_result(r, "failed", now, error=str(exc)) for r in rows]
        messages = [
            OutboundMessage(
                outbox_id=r["id"],
                customer_id=r["customer_id"],
                journey=r["journey"],
                step=r["step"],
                template=r["template"],
                channel=r["channel"],
                recipient=r["recipient"],
                subject=r["subject"] or "",
                html=r["html"] or "",
                text=r["text"] or "",
                locale=r["locale"] or "",
                due_at=r["due_at"],
            )
            for r in rows
        ]
        try:
            outcomes: list[SendResult | ChannelError] = list(channel.send_batch(messages))
            if len(outcomes) != len(rows):
                raise ChannelError(
                    f"channel {name!r} returned {len(outcomes)} results for {len(rows)} messages"
                )
        except Exception as exc:
            # The channel could say nothing per message (base.py): every message stays pending
            # for the next dispatch. Raising here instead would roll back the rows other
            # channels of this batch already sent, and they would be sent again.
            log.error("channel %r failed for %d messages: %s", name, len(rows), exc)
            return []
        results = []
        for row, outcome in zip(rows, outcomes, strict=True):
            if isinstance(outcome, ChannelError):
                # Retryable errors stay pending for the next dispatch; others fail for good.
                if outcome.retryable:
                    continue
                results.append(_result(row, "failed", now, error=str(outcome)))
            else:
                results.append(_result(row, "sent", now, provider_id=outcome.provider_id))
        return results

    def tick(self, *, dispatch_all: bool = True) -> dict[str, int]:
        """Everything due now: events, time triggers, advancing, then dispatch.

        ``dispatch_all=False`` (virtual-time drivers, where this process is the only writer)
        skips the outbox query when this engine queued nothing since the last dispatch.
        """
        queued = self.engine.queued
        totals = quiesce(self.engine)
        if dispatch_all or self.engine.queued != queued or self._undispatched:
            totals["dispatched"] = self.dispatch()
            self._undispatched = False
        return totals

    def next_event_time(self) -> datetime | None:
        """When something is next scheduled to happen (virtual-time stepping)."""
        return self.engine.next_event_time()

    def run_until(
        self,
        until: datetime,
        *,
        dispatch_all: bool = False,
        on_tick: Callable[[dict[str, int]], None] | None = None,
        max_steps: int = 1_000_000,
    ) -> int:
        """Virtual time: tick now, then at every instant something is scheduled, up to and at
        ``until``; returns the number of ticks. ``on_tick`` sees each tick's totals. The clock
        must be a :class:`~journeys.clock.VirtualClock` (simulate, demo, tests)."""
        clock = self.clock
        if not isinstance(clock, VirtualClock):
            raise TypeError("run_until steps a VirtualClock; a real clock ticks with `run`")
        ticks = 0
        while ticks < max_steps:
            totals = self.tick(dispatch_all=dispatch_all)
            ticks += 1
            if on_tick is not None:
                on_tick(totals)
            upcoming = self.next_event_time()
            if upcoming is None or upcoming > until:
                break
            clock.set(upcoming)
        if clock.now() < until:
            clock.set(until)
            totals = self.tick(dispatch_all=dispatch_all)
            ticks += 1
            if on_tick is not None:
                on_tick(totals)
        return ticks


def _result(
    row: Mapping[str, Any],
    status: str,
    now: datetime,
    *,
    provider_id: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "_id": row["id"],
        "status": status,
        "sent_at": now if status == "sent" else None,
        "provider_id": provider_id,
        "error": error,
    }


def records_from_text(text: str) -> list[Any]:
    """Parse JSON Lines text (tests, HTTP bodies) the way :func:`read_records` reads a file."""
    return list(parse_json_lines(io.StringIO(text)))
