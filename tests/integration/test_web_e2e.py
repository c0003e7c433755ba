"""End to end in a real headless Chromium (Debian's ``chromium``, driven by Playwright): a
customer opens the survey link of a rendered NPS email on a phone, answers 3 and sees the
thank-you page, and support is alerted on the next pass; then unsubscribes from the email's
link. Screenshots are kept in ``test-artifacts/web/`` (git-ignored) to be looked at."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

from journeys.store.tables import outbox, suppressions, survey_answers
from journeys.web import WebServer, serve_in_background
from web_helpers import REPO, WebEnv, path_of, send_survey, unsubscribe_link_in

CHROMIUM = Path("/usr/bin/chromium")
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
ARTIFACTS = REPO / "test-artifacts" / "web"

pytestmark = pytest.mark.slow


@pytest.fixture
def server(web_env: WebEnv) -> Iterator[WebServer]:
    running = serve_in_background(web_env.app, "127.0.0.1", 0)
    yield running
    running.stop()


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[BrowserContext]:
    """A fresh Chromium profile with a phone-sized viewport."""
    if not CHROMIUM.exists():
        pytest.fail(
            "Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            viewport={"width": 390, "height": 844},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="en-US",
        )
        yield context
        context.close()


def _shot(page: Page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, ARTIFACTS / path.name)


def test_a_customer_answers_a_survey_and_unsubscribes_in_chromium(
    web_env: WebEnv, server: WebServer, phone: BrowserContext, tmp_path: Path
) -> None:
    link = send_survey(web_env, "c-1")
    page = phone.new_page()
    page.goto(server.url + path_of(link))
    expect(page.get_by_role("heading", level=1)).to_contain_text("How likely are you to recommend")
    radios = page.get_by_role("radio")
    expect(radios).to_have_count(11)
    _shot(page, tmp_path, "survey-en")

    page.locator("label.option", has_text="3").first.click()  # a tap on the "3" box
    expect(page.get_by_role("radio", name="3")).to_be_checked()
    page.get_by_label("Anything you would like to tell us?").fill("The box arrived crushed.")
    _shot(page, tmp_path, "survey-en-answered")
    page.get_by_role("button", name="Send my answer").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you!")
    _shot(page, tmp_path, "thanks-en")

    (answer,) = web_env.rows(survey_answers)
    assert (answer["score"], answer["comment"]) == (3, "The box arrived crushed.")
    web_env.tick()
    (alert,) = web_env.rows(outbox, outbox.c.kind == "notify")
    assert (alert["template"], alert["recipient"]) == ("detractor_alert", "support@example.com")
    assert "The box arrived crushed." in alert["html"]

    (email,) = web_env.rows(outbox, outbox.c.kind == "survey")
    page.goto(server.url + path_of(unsubscribe_link_in(email["html"])))
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose what you get from us")
    _shot(page, tmp_path, "preferences-en")
    assert web_env.rows(suppressions) == []  # opening the page changed nothing
    page.get_by_role("button", name="Unsubscribe from all marketing emails").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You are unsubscribed")
    _shot(page, tmp_path, "unsubscribed-en")
    assert [(s["customer_id"], s["reason"]) for s in web_env.rows(suppressions)] == [
        ("c-1", "unsubscribed")
    ]


def test_korean_pages_and_a_broken_link_in_chromium(
    web_env: WebEnv, server: WebServer, phone: BrowserContext, tmp_path: Path
) -> None:
    link = send_survey(web_env, "c-ko", locale="ko-KR")
    page = phone.new_page()
    page.goto(server.url + path_of(link) + "&score=9")
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    expect(page.get_by_role("radio", name="9")).to_be_checked()
    _shot(page, tmp_path, "survey-ko")
    page.get_by_role("button", name="답변 보내기").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("감사합니다!")
    _shot(page, tmp_path, "thanks-ko")
    page.goto(server.url + path_of(link)[:-3])
    expect(page.get_by_role("heading", level=1)).to_have_text("This link does not work")
    _shot(page, tmp_path, "broken-link")
