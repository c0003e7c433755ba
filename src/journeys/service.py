"""The facade every shell uses (CLI, APScheduler runner, PostgreSQL workers, Prefect flows).

``JourneyService.open(...)`` loads the compiled project and opens the store. Its methods are
the core operations: import customers, ingest events, run a pass (everything due, in event
time), dispatch the outbox, and step virtual time. It holds no logic of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from journeys.channels.base import Channel, ChannelRegistry
from journeys.channels.console import ConsoleChannel
from journeys.clock import Clock, SystemClock, VirtualClock
from journeys.delivery.dispatcher import dispatch
from journeys.delivery.factory import build_channels
from journeys.insight import voc
from journeys.runtime.batch import Runtime
from journeys.runtime.ingest import RecordReport, import_customers, ingest_events
from journeys.runtime.passes import (
    WATERMARK,
    Pass,
    PassReport,
    UnitRunner,
    cursor_key,
    run_directly,
)
from journeys.runtime.plans import PlanSet
from journeys.runtime.render import Renderer
from journeys.runtime.sweep import Sweeper
from journeys.sources import BadLine, parse_json_lines, read_records, records_from_text
from journeys.spec import Project
from journeys.spec.models import CHANNELS
from journeys.store.interface import Store, Tx
from journeys.store.memory import MemoryStore
from journeys.store.sql import SqlStore

__all__ = [
    "BadLine",
    "JourneyService",
    "ProjectInvalid",
    "RecordReport",
    "default_channels",
    "parse_json_lines",
    "read_records",
    "records_from_text",
]

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


class JourneyService:
    """Core operations over one store and one project. Cheap to call often; not thread-safe."""

    def __init__(
        self,
        db: Engine | Store,
        project: Project,
        *,
        clock: Clock | None = None,
        channels: ChannelRegistry | None = None,
        worker_id: str | None = None,
        batch_size: int = 2000,
    ) -> None:
        if not project.ok:
            raise ProjectInvalid(project)
        self.store: Store = SqlStore(db) if isinstance(db, Engine) else db
        self.db: Engine | None = db if isinstance(db, Engine) else None
        """The SQLAlchemy engine of a SQL store (None for the in-memory store)."""
        self.project = project
        self.clock = clock or SystemClock()
        self.channels = (
            channels if channels is not None else build_channels(project.settings, clock=self.clock)
        )
        self.worker_id = worker_id or f"{os.uname().nodename}:{os.getpid()}"
        settings = project.settings
        self.runtime = Runtime(
            plans=PlanSet(project.plans, project.lifecycle),
            settings=settings,
            renderer=Renderer(settings, project.templates, self.clock),
            batch_size=batch_size,
            analyse=voc.analyse,
        )
        self.sweeper = Sweeper(project.plans, settings.timezone, settings.feb29)
        self._versions_saved = False
        self._undispatched = True  # messages queued before this process started

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
        **engine_kw: Any,
    ) -> JourneyService:
        """Load the compiled project (cached by content) and open the store."""
        from journeys.spec.cache import load_compiled_project
        from journeys.store import db as store_db

        project = load_compiled_project(Path(specs), templates_dir=templates)
        if not project.ok:
            raise ProjectInvalid(project)
        engine = store_db.open_store(database_url, **engine_kw)
        return cls(
            engine,
            project,
            clock=clock,
            channels=channels,
            worker_id=worker_id,
            batch_size=batch_size,
        )

    @classmethod
    def in_memory(cls, project: Project, *, clock: Clock, **kw: Any) -> JourneyService:
        """A service on a fresh :class:`~journeys.store.memory.MemoryStore`."""
        return cls(MemoryStore(), project, clock=clock, **kw)

    def close(self) -> None:
        """Release database connections."""
        self.store.dispose()

    # ------------------------------------------------------------------ intake

    def import_customers(self, records: Iterable[Any], first_line: int = 1) -> RecordReport:
        """Upsert customer profiles (CSV/JSONL records); bad ones are reported by line."""
        report = import_customers(
            self.store,
            records,
            self.clock.now(),
            self.runtime.plans.lifecycle.initial,
            first_line,
        )
        if report.customers_changed:
            self.sweeper.profiles_changed()
        return report

    def ingest(
        self, records: Iterable[Any], source: str = "api", first_line: int = 1
    ) -> RecordReport:
        """Store events, deduplicated by id; bad records are reported by position. Matching
        happens in the next pass."""
        return ingest_events(self.store, records, self.clock.now(), source, first_line)

    # ------------------------------------------------------------------ passes

    def _save_versions(self) -> None:
        if not self._versions_saved:
            rows = self.runtime.plans.version_rows(self.clock.now())
            self.store.transaction(lambda tx: tx.save_versions(rows))
            self._versions_saved = True

    def run_pass(self, *, run_unit: UnitRunner = run_directly, by_step: bool = False) -> PassReport:
        """Everything due up to now, in event time (:mod:`journeys.runtime.passes`)."""
        self._save_versions()
        return Pass(
            self.runtime,
            self.store,
            self.sweeper,
            self.clock.now(),
            run_unit=run_unit,
            by_step=by_step,
        ).run()

    def start_cursors(self, at: datetime) -> None:
        """Sweep date and schedule triggers from ``at`` on (no catch-up before it)."""

        def work(tx: Tx) -> None:
            for plan in self.runtime.plans.timed():
                if tx.get_state(cursor_key(plan.journey)) is None:
                    tx.set_state(cursor_key(plan.journey), at)

        self.store.transaction(work)

    def replay_since(self, at: datetime) -> None:
        """Sweep date and schedule triggers again from ``at`` (``journeys run --since``):
        fires missed while nothing ran enroll now; fires already swept do not enroll twice
        (one enrollment per trigger key)."""

        def work(tx: Tx) -> None:
            for plan in self.runtime.plans.timed():
                tx.set_state(cursor_key(plan.journey), at)

        self.store.transaction(work)

    def dispatch(self, limit: int = 1000) -> int:
        """Send every due outbox message through its channel (:mod:`journeys.delivery`), in
        calls of at most ``limit`` messages (one dispatch batch each); returns how many went
        out (sent to a provider, or logged by console and file). The in-memory store
        (simulations) sends nothing."""
        if self.db is None:
            return 0
        total = 0
        while True:
            report = dispatch(
                self.db,
                self.channels,
                self.project.settings,
                self.clock,
                limit,
                dispatcher_id=self.worker_id,
            )
            total += report.sent + report.logged
            if report.handled < limit or not (report.sent or report.logged):
                # Everything due is done, or what is left waits (a provider down, a reset
                # ahead): the next dispatch takes it.
                return total

    def tick(self, *, dispatch_all: bool = True) -> dict[str, int]:
        """A pass, then dispatch. ``dispatch_all=False`` (virtual-time drivers, the only
        writer) skips the outbox query when the pass queued nothing."""
        report = self.run_pass()
        totals = report.as_dict()
        queued = report.steps.total > 0
        if dispatch_all or queued or self._undispatched:
            totals["dispatched"] = self.dispatch()
            self._undispatched = False
        return totals

    # ------------------------------------------------------------------ virtual time

    def next_event_time(self) -> datetime | None:
        """When something is next scheduled to happen (virtual-time stepping)."""
        now = self.clock.now()

        def read(tx: Tx) -> list[datetime]:
            found = [t for t in tx.next_times(now) if t is not None]
            if self.sweeper.plans:
                from journeys.runtime.batch import Batch

                batch = Batch(self.runtime, tx, now)
                for journey in self.sweeper.plans:
                    cursor = tx.get_state(cursor_key(journey))
                    found.append(self.sweeper.next_fire(batch, journey, max(cursor or now, now)))
            return found

        candidates = self.store.transaction(read, read_only=True)
        return min(candidates) if candidates else None

    def run_until(
        self,
        until: datetime,
        *,
        dispatch_all: bool = False,
        on_tick: Callable[[dict[str, int]], None] | None = None,
        max_steps: int = 1_000_000,
    ) -> int:
        """Virtual time: tick now, then at every instant something is scheduled, up to and at
        ``until``; returns the number of ticks. The clock must be a
        :class:`~journeys.clock.VirtualClock` (simulate, demo, tests)."""
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

    def watermark(self) -> datetime | None:
        """The instant every customer's timeline has run up to (None before the first pass)."""
        return self.store.transaction(lambda tx: tx.get_state(WATERMARK), read_only=True)
