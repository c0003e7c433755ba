"""Runtime commands: import, ingest, run, simulate, test, demo."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from journeys.cli import app, load_valid_project
from journeys.clock import parse_instant

err = Console(stderr=True, soft_wrap=True)  # no wrapping: tools parse file:line: lines

SpecsOpt = Annotated[Path, typer.Option("--specs", help="Journey specs (folder or file).")]
TemplatesOpt = Annotated[
    Path | None, typer.Option("--templates", help="Templates folder (default: beside the specs).")
]
DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database",
        envvar="JOURNEYS_DATABASE_URL",
        help="SQLAlchemy URL (default sqlite:///journeys.db).",
    ),
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _open_service(database: str | None, specs: Path, templates: Path | None) -> Any:
    from journeys.service import JourneyService, ProjectInvalid
    from journeys.store.db import StoreUnavailable

    try:
        return JourneyService.open(database, specs=specs, templates=templates)
    except ProjectInvalid as exc:
        raise _fail(str(exc)) from None
    except StoreUnavailable as exc:
        raise _fail(str(exc), code=2) from None


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def _with_progress(path: Path, records: Iterator[Any], label: str) -> Iterator[Any]:
    total = _count_lines(path)
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task(label, total=total)
        for record in records:
            progress.advance(task)
            yield record


def _print_record_report(path: Path, report: Any, noun: str, extra: str = "") -> None:
    for line, message in report.errors[:200]:
        err.print(f"{path}:{line}: {message}", highlight=False, markup=False)
    if len(report.errors) > 200:
        err.print(f"… and {len(report.errors) - 200} more bad records")
    err.print(
        f"{path}: {report.accepted} {noun} stored, {report.duplicates} duplicates, "
        f"{report.unchanged} unchanged, {len(report.errors)} bad records{extra}",
        highlight=False,
    )


def _customer_records(path: Path, plans: dict[str, Any]) -> Iterator[Any]:
    """The records of a customers file; those whose date attributes (birthday, date trigger
    fields) do not parse become bad lines."""
    from journeys.intake import checked_customers, date_attributes
    from journeys.service import BadLine, read_records

    return checked_customers(read_records(path), date_attributes(plans), BadLine)


def _event_records(path: Path, plans: dict[str, Any]) -> Iterator[Any]:
    """The records of an events file, profile events checked like :func:`_customer_records`."""
    from journeys.intake import checked_events, date_attributes
    from journeys.runtime.records import CREATING_EVENTS
    from journeys.service import BadLine, read_records

    return checked_events(read_records(path), date_attributes(plans), BadLine, CREATING_EVENTS)


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise _fail(f"{path}: no such file")


@app.command("import")
def import_cmd(
    kind: Annotated[str, typer.Argument(help="What to import: customers.")],
    file: Annotated[Path, typer.Argument(help="CSV (with an id column) or JSON Lines.")],
    database: DatabaseOpt = None,
    specs: SpecsOpt = Path("journey_specs"),
    templates: TemplatesOpt = None,
) -> None:
    """Import customer profiles; bad records are listed by line, good ones kept."""
    if kind != "customers":
        raise _fail(f"cannot import {kind!r}; use: journeys import customers FILE")
    _check_file(file)
    service = _open_service(database, specs, templates)
    try:
        records = _customer_records(file, service.project.plans)
        report = service.import_customers(_with_progress(file, records, "customers"))
    finally:
        service.close()
    _print_record_report(file, report, "customers")
    if report.errors:
        raise typer.Exit(1)


@app.command("ingest")
def ingest_cmd(
    file: Annotated[
        Path,
        typer.Argument(
            help="Events as JSON Lines: id, type, customer_id, occurred_at, data (docs/cli.md)."
        ),
    ],
    database: DatabaseOpt = None,
    specs: SpecsOpt = Path("journey_specs"),
    templates: TemplatesOpt = None,
    process: Annotated[
        bool, typer.Option(help="Run a pass right away: match the events and run what is due.")
    ] = True,
) -> None:
    """Store events (deduplicated by id) and match them; running a file twice changes nothing."""
    _check_file(file)
    service = _open_service(database, specs, templates)
    try:
        records = _event_records(file, service.project.plans)
        report = service.ingest(_with_progress(file, records, "events"), source="file")
        matched = service.run_pass().events if process else 0
    finally:
        service.close()
    _print_record_report(file, report, "events", f", {matched} matched")
    if report.errors:
        raise typer.Exit(1)


@app.command("run")
def run_cmd(
    database: DatabaseOpt = None,
    specs: SpecsOpt = Path("journey_specs"),
    templates: TemplatesOpt = None,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    interval: Annotated[
        float | None,
        typer.Option(help="Seconds between passes (default 10; 1 for --worker, when idle)."),
    ] = None,
    inbox: Annotated[
        Path | None, typer.Option(help="Folder whose *.jsonl event files are ingested.")
    ] = None,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker",
            help="Run as one of many worker processes on PostgreSQL (no APScheduler); "
            "see docs/scaling.md.",
        ),
    ] = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Rows per batch (transaction), --worker.")
    ] = 500,
    since: Annotated[
        str | None,
        typer.Option(
            help="Replay the date and schedule triggers from this ISO 8601 time (a window "
            "missed while nothing ran); a fire already swept does not enroll twice."
        ),
    ] = None,
    web: Annotated[
        bool, typer.Option("--web/--no-web", help="Serve the web app too (not with --once).")
    ] = True,
    host: Annotated[str, typer.Option("--host", help="Address of the web app.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Its port.")] = 8000,
) -> None:
    """The embedded service: APScheduler passes, and the web app unless --no-web.

    Every pass ingests the inbox, matches events, runs triggers, advances and dispatches; the
    web app (docs/web.md) answers on --host:--port beside it.

    With --worker: one of any number of worker processes sharing a PostgreSQL database.
    """
    if worker:
        _run_worker(database, specs, templates, once, interval or 1.0, inbox, batch_size)
        return
    # With the web app, a survey answer or an API event is matched within 2 s (docs/web.md).
    interval = interval or (2.0 if web and not once else 10.0)
    replay = _parse_time(since, "--since") if since else None
    service = _open_service(database, specs, templates)
    try:
        if replay is not None:
            service.replay_since(replay)
        _run_passes(service, once, interval, inbox, (host, port) if web else None)
    finally:
        service.close()


def _run_passes(
    service: Any,
    once: bool,
    interval: float,
    inbox: Path | None,
    web: tuple[str, int] | None,
) -> None:
    """One pass (``once``), or passes every ``interval`` seconds beside the web app at
    ``web`` (host, port) until Ctrl-C."""
    from journeys.runner import one_pass, run_forever

    if once:
        totals = one_pass(service, inbox)
        err.print(_summary(totals), highlight=False)
        return
    from journeys.cli.web_cmds import start_web

    server = start_web(service, *web) if web else None
    err.print(
        f"journeys: running {len(service.project.plans)} journeys every {interval:g}s "
        "(Ctrl-C to stop)"
    )
    try:
        run_forever(
            service,
            interval=interval,
            inbox=inbox,
            on_pass=lambda t: err.print(_summary(t), highlight=False) if any(t.values()) else None,
        )
    finally:
        if server is not None:
            server.stop()
    err.print("journeys: stopped")


def _run_worker(
    database: str | None,
    specs: Path,
    templates: Path | None,
    once: bool,
    interval: float,
    inbox: Path | None,
    batch_size: int,
) -> None:
    from journeys.service import ProjectInvalid
    from journeys.store.db import StoreUnavailable, describe
    from journeys.worker import (
        PassReport,
        Worker,
        WorkerConfigError,
        open_worker_service,
        require_postgres,
    )

    if inbox is not None:
        raise _fail(
            "--inbox is for the single-process runner; workers share one database, so feed "
            "events with `journeys ingest` or Prefect events"
        )
    try:
        url = require_postgres(database)
        service = open_worker_service(url, specs, templates, batch_size=batch_size)
    except (WorkerConfigError, StoreUnavailable) as exc:
        raise _fail(str(exc), code=2) from None
    except ProjectInvalid as exc:
        raise _fail(str(exc)) from None
    try:

        def show(report: PassReport) -> None:
            if report.busy:
                err.print(_summary(report.as_dict()), highlight=False)

        runner = Worker(service, interval=interval, on_pass=show)
        if once:
            report = runner.run_once()
            if report is None:
                raise typer.Exit(1)
            if not report.busy:
                err.print(_summary(report.as_dict()), highlight=False)
            return
        err.print(
            f"journeys: worker {service.worker_id} on {describe(url)}, "
            f"{len(service.project.plans)} journeys, batches of {batch_size}, idle poll "
            f"{interval:g}s (Ctrl-C to stop)",
            highlight=False,
        )
        runner.install_signal_handlers()
        runner.run()
        err.print("journeys: worker stopped")
    finally:
        service.close()


def _summary(totals: dict[str, Any]) -> str:
    parts = [f"{k} {v}" for k, v in totals.items() if v]
    return "pass: " + (", ".join(parts) if parts else "nothing due")


def _parse_time(value: str, name: str) -> datetime:
    try:
        return parse_instant(value)
    except ValueError:
        raise _fail(
            f"{name} {value!r} is not an ISO time; write e.g. 2026-03-01T00:00:00Z"
        ) from None


@app.command("simulate")
def simulate_cmd(
    customers: Annotated[Path, typer.Option("--customers", help="Customers CSV or JSONL.")],
    events: Annotated[Path, typer.Option("--events", help="Events JSONL.")],
    start: Annotated[str, typer.Option("--start", help="Virtual start time (ISO 8601).")],
    until: Annotated[str, typer.Option("--until", help="Virtual end time (ISO 8601).")],
    specs: SpecsOpt = Path("journey_specs"),
    templates: TemplatesOpt = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object: messages, enrollments, customers."),
    ] = False,
    render: Annotated[
        bool,
        typer.Option("--render", help="Include each message's rendered subject and text."),
    ] = False,
) -> None:
    """Run the journeys in virtual time; nothing is sent and no database file is left."""
    from journeys.simulate import simulate, timeline

    _check_file(customers)
    _check_file(events)
    t0, t1 = _parse_time(start, "--start"), _parse_time(until, "--until")
    if t1 <= t0:
        raise _fail("--until must be after --start")
    project = load_valid_project(specs, templates)
    result = simulate(
        project,
        _customer_records(customers, project.plans),
        _event_records(events, project.plans),
        start=t0,
        until=t1,
    )
    bad = 0
    for path, report in ((customers, result.customer_report), (events, result.event_report)):
        for line, message in report.errors:
            err.print(f"{path}:{line}: {message}", markup=False, highlight=False)
            bad += 1
    if as_json:
        sys.stdout.write(
            json.dumps(result.to_dict(render=render), ensure_ascii=False, indent=2) + "\n"
        )
    else:
        sys.stdout.write(timeline(result) + "\n")
        for m in result.messages if render else []:
            sys.stdout.write(
                f"\n{m['at']}  {m['customer_id']} {m['journey']}.{m['step']} → {m['template']}\n"
                f"Subject: {m['subject']}\n{(m['text'] or '').rstrip()}\n"
            )
    if bad:
        raise typer.Exit(1)  # the run still happened, on the good records


@app.command("test")
def test_cmd(
    paths: Annotated[list[Path] | None, typer.Argument(help="Scenario files or folders.")] = None,
    specs: SpecsOpt = Path("journey_specs"),
    templates: TemplatesOpt = None,
) -> None:
    """Run scenario files (default tests/scenarios) and report pass/fail with a diff."""
    from journeys.scenarios import check_scenarios, discover, run_scenario

    project = load_valid_project(specs, templates)
    files = discover(paths or [Path("tests/scenarios")])
    if not files:
        raise _fail("no scenario files found")
    passed = failed = 0
    for file in files:
        scenarios, problems = check_scenarios(file, project.plans)
        if problems:
            for problem in problems:
                err.print(str(problem), markup=False, highlight=False)
            err.print(f"[red]ERROR[/red] {file}: not run (fix the problems above)", highlight=False)
            failed += 1
            continue
        for scenario in scenarios:
            result = run_scenario(project, scenario)
            if result.passed:
                passed += 1
                err.print(f"[green]PASS[/green] {file}: {scenario.name}", highlight=False)
            else:
                failed += 1
                err.print(f"[red]FAIL[/red] {file}: {scenario.name}", highlight=False)
                for failure in result.failures:
                    err.print(
                        "     " + failure.replace("\n", "\n     "), markup=False, highlight=False
                    )
    err.print(f"{passed} passed, {failed} failed", highlight=False)
    if failed:
        raise typer.Exit(1)


@app.command("demo")
def demo_cmd(
    specs: SpecsOpt = Path("journey_specs"),
    templates: TemplatesOpt = None,
    out: Annotated[
        Path, typer.Option(help="Where the demo writes its database and messages.")
    ] = Path("demo-out"),
    customers: Annotated[
        int | None,
        typer.Option(help="How many sample customers (default 300; 200 with --prefect)."),
    ] = None,
    days: Annotated[
        int | None,
        typer.Option(
            help="Days of sample events (default 30; 7 with --prefect, replayed at an "
            "hour a second)."
        ),
    ] = None,
    prefect: Annotated[
        bool,
        typer.Option(
            "--prefect",
            help="Start a local Prefect server, serve the journeys as deployments and replay "
            "the events as Prefect events; runs until Ctrl-C.",
        ),
    ] = False,
) -> None:
    """Every example journey on sample customers and days of events, in virtual time."""
    load_valid_project(specs, templates)
    sizes = {k: v for k, v in (("customers", customers), ("days", days)) if v is not None}
    if prefect:
        from journeys.orchestration.demo_prefect import run_demo_prefect

        raise typer.Exit(run_demo_prefect(specs, templates, out / "prefect", **sizes))
    from journeys.demo import run_demo

    run_demo(specs, templates, out, **sizes)
