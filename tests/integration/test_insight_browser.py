"""The dashboard and the HTML report in a real headless Chromium (Debian's /usr/bin/chromium,
driven by Playwright without a browser download), after `journeys demo`.

Screenshots go to artifacts/insight/ (git-ignored) for a person to look at. Without Chromium
the test is skipped on a developer machine and fails in CI (``CI`` set), like PostgreSQL.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from journeys.clock import VirtualClock
from journeys.demo import run_demo
from journeys.insight.dashboard import build_router
from journeys.insight.html import render_html
from journeys.insight.report import build_report, stored_plans
from journeys.store.db import create_engine

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("JOURNEYS_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "artifacts" / "insight"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
END = datetime(2026, 3, 11, tzinfo=UTC)


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    result = run_demo(
        ROOT / "journey_specs", ROOT / "templates", out, customers=100, days=10, say=lambda _s: None
    )
    return result.database


@pytest.fixture(scope="module")
def server(demo_db: Path) -> Iterator[str]:
    engine = create_engine(f"sqlite:///{demo_db}")
    app = FastAPI()
    app.include_router(build_router(engine, clock=VirtualClock(END)), prefix="/insight")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:  # uvicorn's own "listening" flag
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/insight"
    srv.should_exit = True
    thread.join(timeout=30)
    sock.close()
    engine.dispose()


@pytest.fixture(scope="module")
def browser(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("profile"),
            executable_path=str(chromium),
            headless=True,
            args=FLAGS,
            viewport={"width": 1360, "height": 900},
        )
        yield context
        context.close()


def _open(browser: Any, url: str, shot: str) -> tuple[Any, list[str]]:
    """Load ``url``, wait until every chart is drawn, save a full-page screenshot."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    response = page.goto(url)
    assert response is None or response.ok, url
    page.wait_for_selector("body[data-charts-ready]", timeout=30_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
    return page, errors


def _charts_drawn(page: Any) -> int:
    """How many chart containers hold a rendered SVG; every container must have one."""
    containers = page.locator("[data-chart]").count()
    drawn = page.locator("[data-chart] svg").count()
    assert containers and drawn == containers, f"{drawn} of {containers} charts drawn"
    assert (
        page.locator(
            "[data-chart] svg .mark-rect, [data-chart] svg .mark-line, "
            "[data-chart] svg .mark-area, [data-chart] svg .mark-text"
        ).count()
        > 0
    )
    return drawn


def test_overview_and_journey_pages_render_their_charts(server: str, browser: Any) -> None:
    page, errors = _open(browser, f"{server}/?days=all", "overview")
    assert _charts_drawn(page) >= 6
    assert page.locator(".kpi .value").first.inner_text() not in ("", "–")
    assert errors == []
    page, errors = _open(
        browser, f"{server}/journeys/abandoned-cart?days=all", "journey-abandoned-cart"
    )
    _charts_drawn(page)
    assert page.locator("svg.journey-diagram text", has_text="entered").count() == 1
    assert page.locator(".verdict li").count() >= 2  # variants a and b against control
    assert errors == []
    page, errors = _open(browser, f"{server}/stages?days=all", "stages")
    _charts_drawn(page)
    assert errors == []


def test_customer_page_explains_messages(server: str, browser: Any) -> None:
    page = browser.new_page()
    page.goto(f"{server}/customers?q=c-00")
    link = page.locator("table a").first
    link.click()
    page.wait_for_selector("h1")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "customer.png"), full_page=True)
    assert page.locator("h2", has_text="Journeys").count() == 1
    assert page.locator("text=of journey").count() >= 1 or page.locator("text=No messages").count()


def test_the_html_report_draws_offline(demo_db: Path, browser: Any, tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{demo_db}")
    try:
        plans = stored_plans(engine)
        data = build_report(engine, plans, now=END)
    finally:
        engine.dispose()
    target = tmp_path / "report.html"
    target.write_text(render_html(data, plans), encoding="utf-8")
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(target.as_uri())
    page.wait_for_selector("body[data-charts-ready]", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    assert _charts_drawn(page) > 20
    assert [u for u in requests if not u.startswith("file:")] == []  # one file, no network
    assert errors == []
