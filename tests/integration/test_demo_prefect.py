"""``journeys demo --prefect`` stops everything it started when it gets SIGTERM (as Docker and
systemd stop services), tested with a real signal on a real Prefect server."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
READY = "replaying sample CRM events"
STARTUP = 300.0


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.mark.prefect
@pytest.mark.slow
def test_sigterm_stops_the_prefect_server_and_the_served_journeys(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "journeys", "demo", "--prefect"]
    command += ["--out", str(tmp_path / "demo"), "--customers", "20", "--days", "1"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    demo = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + STARTUP
    try:
        while not any(READY in line for line in seen):
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            assert line is not None, "the demo exited early:\n" + "".join(seen)
            seen.append(line)
        port = int(re.search(r"Prefect UI:\s+http://127\.0\.0\.1:(\d+)", "".join(seen))[1])  # type: ignore[index]
        started = descendants(demo.pid)
        assert len(started) >= 2, started  # the Prefect server and `journeys deploy --serve`
        assert not port_is_free(port)

        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=120) == 143
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    rest: list[str] = []
    while (line := lines.get(timeout=10)) is not None:
        rest.append(line)
    assert "stopped (SIGTERM)" in "".join(rest)
    assert "Traceback" not in "".join(seen + rest)
    still = [pid for pid in started if alive(pid)]
    assert still == [], [Path(f"/proc/{p}/cmdline").read_bytes() for p in still]
    assert port_is_free(port)
