"""``journeys run``: the embedded service, one process under APScheduler.

APScheduler's job store is in memory and there is one scheduler per process, as it requires; the
state itself lives in the database. Jobs never overlap (``max_instances=1``) and missed runs
collapse into one (``coalesce``). Events come from ``journeys ingest`` or an inbox folder of
``*.jsonl`` files that the runner ingests and moves to ``done/`` (``failed/`` if unreadable).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from journeys.service import JourneyService, read_records

log = logging.getLogger("journeys.runner")


def ingest_inbox(service: JourneyService, inbox: Path) -> int:
    """Ingest every ``*.jsonl`` file in ``inbox`` and move it to ``inbox/done``; a file that
    cannot be read at all goes to ``inbox/failed`` with the reason logged, and the pass goes
    on (one bad file must not stop the service)."""
    total = 0
    for path in sorted(inbox.glob("*.jsonl")):
        try:
            report = service.ingest(read_records(path), source="inbox")
        except OSError as exc:
            log.error("%s: cannot read it (%s); moved to failed/", path, exc.strerror or exc)
            _move(path, inbox / "failed")
            continue
        for line, message in report.errors:
            log.warning("%s:%d: %s", path, line, message)
        _move(path, inbox / "done")
        total += report.accepted
    return total


def _move(path: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path.rename(folder / path.name)


def one_pass(service: JourneyService, inbox: Path | None = None) -> dict[str, Any]:
    """Ingest the inbox, then everything due now, then dispatch."""
    totals: dict[str, Any] = {}
    if inbox is not None:
        totals["ingested"] = ingest_inbox(service, inbox)
    totals.update(service.tick())
    return totals


def run_forever(
    service: JourneyService,
    *,
    interval: float = 10.0,
    inbox: Path | None = None,
    on_pass: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Tick every ``interval`` seconds until Ctrl-C or SIGTERM, then stop cleanly."""
    # One worker thread: a pass that outlasts the interval is never joined by a second one
    # (the service is not thread-safe); the missed runs collapse into one.
    scheduler = BackgroundScheduler(timezone="UTC", executors={"default": ThreadPoolExecutor(1)})

    def job() -> None:
        try:
            totals = one_pass(service, inbox)
        except Exception:  # keep the service alive; the batch rolled back
            log.exception("pass failed; its batch was rolled back and will be retried")
            return
        if on_pass is not None:
            on_pass(totals)

    scheduler.add_job(
        job,
        "interval",
        seconds=interval,
        id="tick",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),  # once right away, then every interval
    )

    # Ctrl-C and SIGTERM only raise a flag that the main thread polls: a KeyboardInterrupt
    # raised into the scheduler's own loop could land while it holds one of its locks, and
    # shutting down would then wait for that lock forever. The pass in progress finishes.
    stopping: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: stopping.append(signum))
    try:
        scheduler.start()
        while not stopping:
            time.sleep(0.2)
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
