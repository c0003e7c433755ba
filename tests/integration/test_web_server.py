"""Serving for real: the background server of `journeys run`, `journeys web` refusing a weak
secret beyond loopback, access logs without tokens, and a survey answered over HTTP moving the
waiting journey of a running `journeys run` within 5 seconds."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from journeys.clock import VirtualClock
from journeys.service import JourneyService
from journeys.store.tables import enrollments, outbox
from journeys.web import serve_in_background
from web_helpers import (
    SECRET,
    WebEnv,
    add_customer,
    form_value,
    rows,
    survey_link_in,
    token_of,
    write_project,
)


def test_background_server_answers_and_stops_cleanly(web_env: WebEnv) -> None:
    server = serve_in_background(web_env.app, "127.0.0.1", 0)
    try:
        assert server.thread.is_alive()
        response = httpx.get(f"{server.url}/healthz", timeout=10)
        assert response.status_code == 200 and response.json() == {"status": "ok"}
        with pytest.raises(OSError, match=r"cannot listen on 127\.0\.0\.1"):
            serve_in_background(web_env.app, "127.0.0.1", server.port)
    finally:
        server.stop()
    assert not server.thread.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/healthz", timeout=2)


def _journeys(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "journeys", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_url(stream: IO[str]) -> str:
    for line in stream:
        found = re.search(r"web app on (http://\S+)", line)
        if found:
            return found[1]
    raise AssertionError("the web app never said where it listens")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEYS_")}
    return {**env, "JOURNEYS_SECRET_KEY": SECRET, **extra}


def test_journeys_web_refuses_a_weak_secret_beyond_loopback(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    for weak in ("change-me-in-production", "short"):
        proc = _journeys(
            "web", "--host", "0.0.0.0", "--port", "0",
            "--database", f"sqlite:///{tmp_path / 'j.db'}",
            cwd=root, env=_env(JOURNEYS_SECRET_KEY=weak),
        )  # fmt: skip
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 1
        assert "refusing to listen on 0.0.0.0: the link secret is weak" in stderr
        assert "Traceback" not in stderr


def test_journeys_web_logs_requests_without_tokens(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    proc = _journeys(
        "web", "--port", "0", "--database", f"sqlite:///{tmp_path / 'j.db'}", cwd=root, env=_env()
    )
    assert proc.stderr is not None
    try:
        url = _wait_for_url(proc.stderr)
        secret_token = "abcdefghijklmnop.qrstuv.wxyz0123456789"
        httpx.get(f"{url}/survey?token={secret_token}&score=3", timeout=10)
        httpx.get(f"{url}/unsubscribe/{secret_token}", timeout=10)
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        access, rest = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest
    assert "GET /survey?token=…&score=3" in access  # uvicorn's access log goes to stdout
    assert "GET /unsubscribe/…" in access
    assert secret_token not in access + rest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_survey_answer_moves_the_journey_of_journeys_run_within_5_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOURNEYS_SECRET_KEY", SECRET)
    root = write_project(tmp_path / "p")
    spec = root / "journey_specs" / "post-purchase.yaml"
    # Real time: no quiet hours, so the test does not depend on the hour it runs at.
    spec.write_text(spec.read_text().replace('quiet_hours: "21:00-09:00"', ""))
    url = f"sqlite:///{tmp_path / 'j.db'}"
    now = datetime.now(UTC)
    clock = VirtualClock(now - timedelta(days=3, hours=1))
    service = JourneyService.open(
        url, specs=root / "journey_specs", templates=root / "templates", clock=clock
    )
    try:
        add_customer(service, "c-1")
        delivered = {
            "id": "d-1",
            "type": "order.delivered",
            "customer_id": "c-1",
            "occurred_at": clock.now(),
        }
        service.ingest([delivered])
        service.run_until(now - timedelta(seconds=5))
        (survey,) = rows(service.db, outbox, outbox.c.kind == "survey")
    finally:
        service.close()
    link = survey_link_in(survey["html"])

    proc = _journeys(
        "run", "--database", url, "--port", str(_free_port()),
        "--specs", str(root / "journey_specs"), "--templates", str(root / "templates"),
        cwd=root, env=_env(),
    )  # fmt: skip
    assert proc.stderr is not None
    db = create_engine(url)
    try:
        base = _wait_for_url(proc.stderr)
        with httpx.Client(base_url=base, timeout=10) as client:
            page = client.get(link.replace("http://testserver", ""))
            assert page.status_code == 200
            answered = client.post(
                "/survey",
                data={"token": token_of(link), "score": "3", "csrf": form_value(page.text, "csrf")},
            )
            assert answered.status_code == 200 and "Thank you" in answered.text
        start = time.monotonic()
        alerts = 0
        while time.monotonic() - start < 5 and not alerts:
            with db.connect() as conn:
                query = select(func.count()).where(outbox.c.kind == "notify")
                alerts = conn.scalar(query) or 0
            time.sleep(0.05)
        assert alerts == 1, "support was not alerted within 5 s"
        with db.connect() as conn:
            assert conn.scalar(select(enrollments.c.exit_reason)) is None
    finally:
        db.dispose()
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest
    assert "journeys: stopped" in rest and "Traceback" not in rest


def test_journeys_run_says_when_the_web_port_is_taken(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _journeys(
            "run", "--port", str(port), "--database", f"sqlite:///{tmp_path / 'j.db'}",
            cwd=root, env=_env(),
        )  # fmt: skip
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in stderr and "--no-web" in stderr
    assert "Traceback" not in stderr
