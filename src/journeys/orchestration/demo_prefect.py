"""``journeys demo --prefect``: watch the example journeys run as Prefect flows.

Starts a local Prefect server (SQLite, telemetry off, UI on), imports sample customers into a
fresh journeys database, serves every example journey (``journeys deploy --serve``), replays
sample CRM events as Prefect events (``crm.<type>``), prints the UI address and keeps running
until Ctrl-C. Time runs fast (one hour per second by default, the same in every process: see
:class:`journeys.orchestration.flow_support.ScaledClock`), so a day's wait takes 24 seconds and
the UI fills with journey runs and their ``<journey>.<step>`` task runs.

Everything it writes goes to ``out_dir`` (default ``demo-out/prefect``): the journeys database,
``messages.jsonl`` (the messages the journeys "send"), the Prefect server's home, database and
log. Nothing else is touched, and both child processes are stopped on exit.

Run it with ``python -m journeys.orchestration.demo_prefect`` (or ``make demo-prefect``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from journeys.clock import iso, parse_instant
from journeys.orchestration.flow_support import (
    ENV_CLOCK_ORIGIN,
    ENV_CLOCK_SPEED,
    ENV_DATABASE_URL,
    ENV_MESSAGES_FILE,
    ScaledClock,
)
from journeys.orchestration.prefect_deploy import find_project_root

DEFAULT_PORT = 4200


def port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def pick_port(host: str, preferred: int) -> int:
    """``preferred`` if free, else any free port."""
    if port_is_free(host, preferred):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def base_environment(prefect_home: Path) -> dict[str, str]:
    """This environment without Prefect profile settings, telemetry off, its own Prefect home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_HOME": str(prefect_home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
        }
    )
    return env


def start_prefect_server(
    out_dir: Path, host: str, port: int
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """``prefect server start`` on SQLite under ``out_dir``; (process, API URL, log path)."""
    home = out_dir / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    env = base_environment(home)
    env["PREFECT_API_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{out_dir / 'prefect.db'}"
    log_path = out_dir / "prefect-server.log"
    prefect = Path(sys.executable).with_name("prefect")
    command = [str(prefect) if prefect.exists() else "prefect", "server", "start"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*command, "--host", host, "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, f"http://{host}:{port}/api", log_path


def wait_until_healthy(
    proc: subprocess.Popen[bytes], api_url: str, log_path: Path, timeout: float = 120.0
) -> None:
    """Wait for ``/api/health``; RuntimeError with the server log if it fails."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the Prefect server exited; see {log_path}")
        try:
            if httpx.get(f"{api_url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Prefect server did not start in {timeout:.0f}s; {log_path}")
        time.sleep(0.5)


def stop_process_group(proc: subprocess.Popen[bytes], sig: int, timeout: float = 20.0) -> None:
    """Send ``sig`` to the process group of ``proc`` (started in its own session); then kill."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        proc.wait(timeout=5)


def _journeys_command() -> list[str]:
    script = Path(sys.executable).with_name("journeys")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from journeys.cli import main; main()"]


def _wait_for_deployments(expected: int, serve: subprocess.Popen[bytes], log_path: Path) -> None:
    from prefect import get_client

    deadline = time.monotonic() + 120
    while True:
        if serve.poll() is not None:
            raise RuntimeError(f"journeys deploy --serve exited; see {log_path}")
        with get_client(sync_client=True) as client:
            if len(client.read_deployments()) >= expected:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the deployments were not registered; see {log_path}")
        time.sleep(1.0)


def replay_events(
    events: Iterator[dict[str, Any]],
    clock: ScaledClock,
    should_stop: Callable[[], bool],
    say: Callable[[str], None],
    pause: float = 0.5,
) -> int:
    """Emit each event as a Prefect event when the scaled clock reaches its ``occurred_at``."""
    from journeys.orchestration.prefect_events import emit_crm_events

    emitted = 0
    pending: dict[str, Any] | None = next(events, None)
    last_report = time.monotonic()
    while pending is not None and not should_stop():
        now = clock.now()
        batch: list[dict[str, Any]] = []
        while pending is not None and parse_instant(str(pending["occurred_at"])) <= now:
            batch.append(pending)
            pending = next(events, None)
        if batch:
            emitted += emit_crm_events(batch)
        if time.monotonic() - last_report >= 10:
            say(f"  {iso(now)} (demo time): {emitted} CRM events emitted")
            last_report = time.monotonic()
        time.sleep(pause)
    return emitted


class _Terminated(BaseException):
    """SIGTERM arrived (Docker, systemd, ``kill``): stop like on Ctrl-C."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated


def run_demo_prefect(
    specs: Path = Path("journey_specs"),
    templates: Path | None = None,
    out_dir: Path = Path("demo-out/prefect"),
    customers: int = 200,
    days: int = 7,
    speed: float = 3600.0,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    seed: int = 7,
    say: Callable[[str], None] = print,
) -> int:
    """Run the Prefect demo until Ctrl-C or SIGTERM; returns the process exit code (130 after
    Ctrl-C, 143 after SIGTERM). Either way the Prefect server and ``deploy --serve`` it started
    are stopped (SIGTERM stops them too, as Docker and systemd stop a service with it)."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return _run_demo_prefect(
            specs, templates, out_dir, customers, days, speed, host, port, seed, say
        )
    except _Terminated:
        say("stopped (SIGTERM)")
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_demo_prefect(
    specs: Path,
    templates: Path | None,
    out_dir: Path,
    customers: int,
    days: int,
    speed: float,
    host: str,
    port: int,
    seed: int,
    say: Callable[[str], None],
) -> int:
    from journeys.demo import remove_outputs
    from journeys.sampledata import generate_events

    out_dir = out_dir.resolve()
    remove_outputs(out_dir, ("prefect-home", "prefect.db", "journeys.db", "messages.jsonl"))
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = specs.resolve()
    database_url = f"sqlite:///{out_dir / 'journeys.db'}"
    messages = out_dir / "messages.jsonl"
    port = pick_port(host, port)

    say(f"starting a Prefect server on {host}:{port} (SQLite, telemetry off) ...")
    server, api_url, server_log = start_prefect_server(out_dir, host, port)
    serve: subprocess.Popen[bytes] | None = None
    interrupted = False
    settings = ExitStack()
    try:
        wait_until_healthy(server, api_url, server_log)
        origin = datetime.now(UTC).replace(microsecond=0)
        clock = ScaledClock(origin, speed)
        env = _serve_environment(out_dir, api_url, database_url, messages, clock)
        settings.enter_context(_prefect_settings(api_url))
        people, journeys = _import_customers(
            database_url, specs, templates, clock, customers, seed, say
        )
        serve_log = out_dir / "serve.log"
        serve = _start_serving(specs, templates, env, serve_log)
        _wait_for_deployments(len(journeys) + 1, serve, serve_log)
        _say_where(say, f"http://{host}:{port}", journeys, speed, messages, serve_log, server_log)
        events = generate_events(people, origin, days, seed=seed)
        try:
            return _replay_while_serving(events, clock, serve, serve_log, say)
        except KeyboardInterrupt:
            interrupted = True
            say("\nstopping ...")
            return 130
    finally:
        _stop_children(server, serve, settings)
        if interrupted:
            say("stopped")


def _stop_children(
    server: subprocess.Popen[bytes], serve: subprocess.Popen[bytes] | None, settings: ExitStack
) -> None:
    """Stop ``deploy --serve`` and the Prefect server, and restore this process's settings."""
    # A second Ctrl-C or SIGTERM while stopping must not orphan the server: finish the
    # clean-up first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if serve is not None:
        stop_process_group(serve, signal.SIGINT)
    stop_process_group(server, signal.SIGTERM)
    settings.close()


def _serve_environment(
    out_dir: Path, api_url: str, database_url: str, messages: Path, clock: ScaledClock
) -> dict[str, str]:
    """The environment of ``deploy --serve``: the demo's Prefect server, database, messages
    file and scaled clock."""
    return {
        **base_environment(out_dir / "prefect-home"),
        "PREFECT_API_URL": api_url,
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        ENV_DATABASE_URL: database_url,
        ENV_MESSAGES_FILE: str(messages),
        ENV_CLOCK_ORIGIN: iso(clock.origin) or "",
        ENV_CLOCK_SPEED: str(clock.speed),
    }


def _say_where(
    say: Callable[[str], None],
    ui: str,
    journeys: list[str],
    speed: float,
    messages: Path,
    *logs: Path,
) -> None:
    """Where to look: the UI, what is served, how fast time runs, the outputs."""
    say("")
    say(f"Prefect UI:        {ui}   (deployments: {ui}/deployments, runs: {ui}/runs)")
    say(f"journeys served:   {', '.join(journeys)} + tick")
    say(f"demo time:         x{speed:g} (a day's wait takes {86400 / speed:.0f} s)")
    say(f"messages:          {messages}")
    say(f"logs:              {', '.join(map(str, logs))}")
    say("replaying sample CRM events as Prefect events (crm.<type>); Ctrl-C stops")
    say("")


def _import_customers(
    database_url: str,
    specs: Path,
    templates: Path | None,
    clock: ScaledClock,
    customers: int,
    seed: int,
    say: Callable[[str], None],
) -> tuple[list[dict[str, Any]], list[str]]:
    """Import ``customers`` sample customers into the journeys database; (the customers, the
    ids of the journeys to serve)."""
    from journeys.sampledata import generate_customers
    from journeys.service import JourneyService

    service = JourneyService.open(database_url, specs=specs, templates=templates, clock=clock)
    try:
        people = generate_customers(customers, seed=seed)
        journeys = sorted(service.project.plans)
        say(f"imported {service.import_customers(people).accepted} sample customers")
    finally:
        service.close()
    return people, journeys


def _start_serving(
    specs: Path, templates: Path | None, env: dict[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """``journeys deploy <specs> --serve`` in its own session, logging to ``log_path``."""
    command = [*_journeys_command(), "deploy", str(specs), "--serve"]
    if templates is not None:
        command += ["--templates", str(templates.resolve())]
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command,
            cwd=find_project_root(),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _replay_while_serving(
    events: Iterator[dict[str, Any]],
    clock: ScaledClock,
    serve: subprocess.Popen[bytes],
    serve_log: Path,
    say: Callable[[str], None],
) -> int:
    """Replay ``events``, then keep the journeys running until ``deploy --serve`` stops by
    itself (exit code 1); Ctrl-C raises KeyboardInterrupt."""
    count = replay_events(events, clock, lambda: serve.poll() is not None, say)
    say(f"replayed {count} events; journeys keep running (tick every minute); Ctrl-C stops")
    while serve.poll() is None:
        time.sleep(1.0)
    say(f"journeys deploy --serve stopped; see {serve_log}")
    return 1


def _prefect_settings(api_url: str) -> AbstractContextManager[Any]:
    """Point this process's Prefect client at the demo server (to emit the events)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings(updates={PREFECT_API_URL: api_url})


if __name__ == "__main__":  # pragma: no cover
    try:
        sys.exit(run_demo_prefect())
    except KeyboardInterrupt:
        sys.exit(130)
