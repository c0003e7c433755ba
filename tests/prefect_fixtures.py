"""A real Prefect server for the Prefect tests, started by the tests.

Use with ``pytest_plugins = ["prefect_fixtures"]`` in a test module.

``prefect_server`` (session): runs ``prefect server start`` on a free local port with its own
``PREFECT_HOME`` and SQLite database in a temp dir, telemetry and API logging off and the UI
off; waits for ``/api/health`` (about 15 s); yields the API URL; stops the server at the end.

``prefect_api`` (function): points this process's Prefect client at that server
(``temporary_settings``) and returns the API URL; ``prefect_env`` is the environment for
subprocesses (``journeys deploy --serve``, workers) talking to it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

STARTUP_TIMEOUT = 90.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prefect_client_env(api_url: str, home: Path) -> dict[str, str]:
    """Environment of a process that talks to the test server (telemetry and API logs off)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_LOGGING_TO_API_ENABLED": "false",
        }
    )
    return env


def _prefect_executable() -> str:
    candidate = Path(sys.executable).with_name("prefect")
    return str(candidate) if candidate.exists() else (shutil.which("prefect") or "prefect")


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start ``prefect server start`` on a free port; yield its API URL (``…/api``)."""
    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = prefect_client_env(api_url, home)
    del env["PREFECT_API_URL"]  # the server must not talk to itself through a profile
    env.update(
        {
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "false",
            # Schedule runs from cron schedules within seconds (default: a minute), so tests
            # can see them without waiting.
            "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
        }
    )
    log_path = home / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [_prefect_executable(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as a whole below
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"prefect server exited:\n{log_path.read_text(errors='replace')}")
            try:
                if httpx.get(f"{api_url}/health", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prefect server not up:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.25)
        yield api_url
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server's process group (it was started in a session of its own)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@pytest.fixture
def prefect_api(prefect_server: str, tmp_path: Path) -> Iterator[str]:
    """Point this process's Prefect settings at the test server; yields the API URL."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_LOGGING_TO_API_ENABLED,
        temporary_settings,
    )

    with temporary_settings(
        updates={PREFECT_API_URL: prefect_server, PREFECT_LOGGING_TO_API_ENABLED: False}
    ):
        yield prefect_server
        _delete_deployments()


def _delete_deployments() -> None:
    """Remove every deployment and automation a test registered (and with them their scheduled
    runs), so the scheduler and the trigger service do not keep working for them on the
    server the following tests share."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        for automation in client.read_automations():
            client.delete_automation(automation.id)
        for deployment in client.read_deployments():
            client.delete_deployment(deployment.id)


@pytest.fixture
def prefect_env(prefect_server: str, tmp_path: Path) -> dict[str, str]:
    """Environment for a subprocess that talks to the test server."""
    home = tmp_path / "prefect-client"
    home.mkdir(exist_ok=True)
    return prefect_client_env(prefect_server, home)
