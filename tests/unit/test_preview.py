"""``journeys preview`` and ``journeys simulate --render``: messages as customers get them."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from journeys.cli import _register, app
from journeys.service import JourneyService

ROOT = Path(__file__).resolve().parents[2]
SPECS = ["--specs", str(ROOT / "journey_specs"), "--templates", str(ROOT / "templates")]


def run(*args: str, env: dict[str, str] | None = None) -> object:
    _register()
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    service = JourneyService.open(url, specs=ROOT / "journey_specs", templates=ROOT / "templates")
    try:
        people = [
            {
                "id": "c-1",
                "email": "mina@example.com",
                "first_name": "Mina",
                "locale": "ko",
                "email_opt_in": True,
            },
            {"id": "c-2", "email": "leo@example.com", "first_name": "Leo", "email_opt_in": "no"},
        ]
        assert service.import_customers(people).ok
        cart = {
            "cart_total": 42.0,
            "currency": "EUR",
            "items": [{"sku": "X1", "name": "Blue teapot", "price": 42.0, "quantity": 1}],
        }
        report = service.ingest(
            [
                {
                    "id": "cart-1",
                    "type": "cart.updated",
                    "customer_id": "c-1",
                    "occurred_at": "2026-03-02T10:00:00Z",
                    "data": cart,
                }
            ]
        )
        assert report.ok
    finally:
        service.close()
    return url


def test_preview_a_sample_customer_in_korean() -> None:
    result = run("preview", "cart_reminder", "--sample", "--locale", "ko", *SPECS)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "template cart_reminder (ko file)" in out and "abandoned-cart.remind" in out
    assert "status: would be sent" in out
    assert "Subject: " in out and "장바구니" in out  # the Korean subject and body
    assert "--- text ---" in out and "--- html ---" in out and "<table" in out
    assert "/unsubscribe/" in out  # the customer's own unsubscribe link


def test_preview_a_stored_customer_with_their_own_event(store: str) -> None:
    result = run("preview", "cart_reminder", "--customer", "c-1", "--database", store, *SPECS)
    assert result.exit_code == 0, result.output
    assert "event: cart.updated (stored: cart-1)" in result.output
    assert "Blue teapot" in result.output and "€42.00" in result.output
    assert "Mina" in result.output


def test_preview_says_when_a_customer_would_not_get_it(store: str) -> None:
    result = run("preview", "welcome", "--customer", "c-2", "--database", store, *SPECS)
    assert result.exit_code == 0, result.output
    assert "status: suppressed: no consent (email_opt_in is false)" in result.output
    assert "Subject: " in result.output and "Leo" in result.output


def test_preview_mistakes_are_one_line(store: str) -> None:
    typo = run("preview", "cart_remindr", "--sample", *SPECS)
    assert typo.exit_code == 1 and 'did you mean "cart_reminder"?' in typo.output
    ghost = run("preview", "welcome", "--customer", "ghost", "--database", store, *SPECS)
    assert ghost.exit_code == 1 and "no customer 'ghost'" in ghost.output
    both = run("preview", "welcome", "--customer", "c-1", "--sample", *SPECS)
    assert both.exit_code == 2


def test_preview_open_writes_the_html_and_opens_a_browser(tmp_path: Path) -> None:
    seen = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" > {seen}\n', encoding="utf-8")
    browser.chmod(browser.stat().st_mode | stat.S_IEXEC)
    page = tmp_path / "out" / "welcome.html"
    env = {**os.environ, "BROWSER": str(browser)}
    result = run("preview", "welcome", "--open", "--out", str(page), *SPECS, env=env)
    assert result.exit_code == 0, result.output
    assert page.read_text(encoding="utf-8").startswith("<")
    assert seen.read_text(encoding="utf-8").strip() == page.resolve().as_uri()


def test_simulate_render_adds_subject_and_text(tmp_path: Path) -> None:
    customers = tmp_path / "c.jsonl"
    customers.write_text(
        json.dumps({"id": "c-1", "email": "a@example.com", "email_opt_in": True}) + "\n"
    )
    events = tmp_path / "e.jsonl"
    signup = {
        "id": "e1",
        "type": "customer.signed_up",
        "customer_id": "c-1",
        "occurred_at": "2026-03-02T10:00:00Z",
        "data": {"first_name": "Ana"},
    }
    events.write_text(json.dumps(signup) + "\n")
    args = ["simulate", "--customers", str(customers), "--events", str(events)]
    args += ["--start", "2026-03-02T00:00:00Z", "--until", "2026-03-03T00:00:00Z", "--json"]
    plain = json.loads(run(*args, *SPECS).stdout)
    rendered = json.loads(run(*args, "--render", *SPECS).stdout)
    assert plain["messages"] and "subject" not in plain["messages"][0]
    first = rendered["messages"][0]
    assert first["template"] == "welcome" and "Ana" in first["subject"]
    assert "Ana" in first["text"] and "<p>" not in first["text"]
    text_mode = run(*args[:-1], "--render", *SPECS)
    assert "Subject: " in text_mode.stdout
