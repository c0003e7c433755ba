"""The dashboard router mounted in a FastAPI app of the test's own, on the hand-made shop of
tests/insight_data.py (SQLite and PostgreSQL), and the one-file HTML report."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI, Header, HTTPException
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from insight_data import APRIL, CART, MARCH, NOW, POST, build_shop
from journeys.clock import VirtualClock
from journeys.insight.dashboard import build_router
from journeys.insight.html import render_html
from journeys.insight.report import build_report


def require_staff(x_staff: str | None = Header(default=None)) -> None:
    """The web app's staff check stands in as a header check."""
    if x_staff != "yes":
        raise HTTPException(status_code=401, detail="staff only")


@pytest.fixture
def client(db_engine: Engine) -> TestClient:
    build_shop(db_engine)
    app = FastAPI()
    router = build_router(lambda: db_engine, require_staff, clock=VirtualClock(NOW))
    app.include_router(router, prefix="/insight")
    return TestClient(app, headers={"X-Staff": "yes"})


def test_every_page_needs_staff(client: TestClient) -> None:
    for path in ("/insight/", "/insight/customers?q=c1", "/insight/static/vega.min.js"):
        assert client.get(path, headers={"X-Staff": "no"}).status_code == 401


def test_overview_shows_the_kpis_and_journeys(client: TestClient) -> None:
    page = client.get("/insight/", params={"from": "2026-03-01", "to": "2026-03-31"})
    assert page.status_code == 200
    text = page.text
    assert "01 Mar 2026 – 31 Mar 2026" in text
    assert re.search(r'class="label">NPS</div>\s*<div class="value">\+40\.0<', text)
    assert re.search(r'class="label">Open rate</div>\s*<div class="value">80\.0%<', text)
    assert 'href="/insight/journeys/cart"' in text and "Cart recovery" in text
    # The charts' data travels as JSON for the vendored Vega, loaded from the router itself.
    assert '<script src="/insight/static/vega.min.js"></script>' in text
    assert '"data-chart"' not in text and 'data-chart="entered"' in text
    assert "Late delivery and a damaged box" in text  # the latest comments


def test_journey_page_draws_the_live_diagram_and_the_ab_test(client: TestClient) -> None:
    page = client.get("/insight/journeys/cart", params={"from": "2026-03-01", "to": "2026-03-31"})
    assert page.status_code == 200
    text = page.text
    assert '<svg class="journey-diagram"' in text
    assert "6 passed · 1 here now · 1 exited" in text  # the wait step `pause`
    assert "7 entered" in text
    assert "No variant beats control significantly" in text
    assert "a converts 50.0% vs 0.0% for control: 50.0 points better, p = 0.387" in text
    assert client.get("/insight/journeys/nope").status_code == 404


def test_stages_customers_and_the_why_of_a_message(client: TestClient) -> None:
    stages = client.get("/insight/stages", params={"days": "all"})
    assert stages.status_code == 200 and "purchase → loyalty" in stages.text
    found = client.get("/insight/customers", params={"q": "C1@EXAMPLE"})
    assert 'href="/insight/customers/c1"' in found.text
    assert "No customer" in client.get("/insight/customers", params={"q": "zz"}).text
    person = client.get("/insight/customers/c1").text
    assert "c1@example.com" in person
    # Why did c1 get the cart reminder? The journey, the step, the split variant.
    assert "step remind of journey Cart recovery" in person and "coupon=a" in person
    assert "opened" in person and "clicked" in person  # engagement from the email events
    assert "completed" in person
    waiting = client.get("/insight/customers/c2").text
    assert "waiting at wait_buy for order.placed, at most until 15 Mar 2026 05:00 UTC" in waiting
    assert client.get("/insight/customers/nobody").status_code == 404


def test_bad_periods_and_static_files(client: TestClient) -> None:
    bad = client.get("/insight/", params={"from": "yesterday"})
    assert bad.status_code == 400 and "is not a date or time" in bad.text
    assert client.get("/insight/", params={"days": "12"}).status_code == 400
    js = client.get("/insight/static/vega-embed.min.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "sourceMappingURL" not in js.text
    assert client.get("/insight/static/secret.py").status_code == 404
    data = client.get("/insight/api/report", params={"from": "2026-03-01", "to": "2026-03-31"})
    assert data.json()["kpis"]["nps"] == 40.0


def test_the_html_report_is_one_file(db_engine: Engine, tmp_path: Path) -> None:
    build_shop(db_engine)
    data = build_report(db_engine, {"cart": CART, "post": POST}, start=MARCH, end=APRIL, now=NOW)
    page = render_html(data, {"cart": CART, "post": POST})
    # Nothing is loaded from elsewhere: scripts inline, no src/href to other files.
    assert "<script src" not in page and not re.search(r'(src|href)="(https?:)?//', page)
    assert "vegaEmbed" in page and page.count('<svg class="journey-diagram"') == 2
    for key in ("j0-funnel", "j0-ab-coupon", "st-matrix", "entered"):
        assert f'data-chart="{key}"' in page
    (tmp_path / "report.html").write_text(page, encoding="utf-8")
