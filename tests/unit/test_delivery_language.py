"""The delivery parts of the language and the settings: kind, journey sender, send-test."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from journeys.plan import Plan, SendStep, SurveyStep
from journeys.settings import Settings
from journeys.spec import load_project
from journeys.testing.fake_providers import Credentials, FakeProviders

ROOT = Path(__file__).resolve().parents[2]

JOURNEY = """
journey: orders
sender: {name: Orders team, reply_to: orders@example.com}
trigger: {event: order.placed}
steps:
  - id: receipt
    send: {template: receipt}
  - id: promo
    send: {template: receipt, kind: marketing}
  - id: tips
    send: {template: tips}
  - id: ask
    survey: {kind: nps, template: receipt, within: 7d}
"""


def _project(tmp_path: Path, files: dict[str, str], settings: str = "") -> Any:
    specs, templates = tmp_path / "journey_specs", tmp_path / "templates"
    specs.mkdir()
    templates.mkdir()
    (specs / "orders.yaml").write_text(textwrap.dedent(JOURNEY), encoding="utf-8")
    if settings:
        (tmp_path / "journeys.yaml").write_text(textwrap.dedent(settings), encoding="utf-8")
    for name, text in files.items():
        (templates / name).write_text(text, encoding="utf-8")
    return load_project([specs], templates_dir=templates)


RECEIPT = "---\nsubject: Your receipt\nkind: transactional\n---\n<p>Thanks</p>"
TIPS = "---\nsubject: Tips\n---\n<p>Tips</p>"


def test_kind_comes_from_the_step_then_the_template_then_marketing(tmp_path: Path) -> None:
    project = _project(tmp_path, {"receipt.html": RECEIPT, "tips.html": TIPS})
    assert project.ok, project.diagnostics
    plan = project.plans["orders"]
    kinds = {s.id: s.message_kind for s in plan.steps if isinstance(s, SendStep | SurveyStep)}
    assert kinds == {
        "receipt": "transactional",
        "promo": "marketing",
        "tips": "marketing",
        "ask": "transactional",
    }
    assert plan.sender == {"name": "Orders team", "reply_to": "orders@example.com"}
    assert Plan.from_json(plan.to_json()) == plan


def test_locale_files_must_agree_on_the_kind(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        {
            "receipt.html": RECEIPT,
            "receipt.ko.html": "---\nsubject: 영수증\n---\n<p>감사</p>",
            "tips.html": TIPS,
            "tips.ko.html": TIPS,
        },
    )
    [problem] = [d for d in project.diagnostics if "disagree on kind" in d.message]
    assert problem.code == "template-error" and problem.line == 7
    assert "receipt: transactional, receipt.ko: unset" in problem.message


def test_a_partial_that_does_not_exist_or_does_not_compile_is_reported(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        {
            "_layout.html": "<html>{% block content %}</html>",
            "receipt.html": RECEIPT,
            "tips.html": "---\nsubject: Tips\n---\n{% extends '_layot.html' %}",
        },
    )
    messages = {(Path(d.path).name, d.message) for d in project.diagnostics}
    assert any(n == "_layout.html" and "block" in m for n, m in messages), messages
    assert (
        "tips.html",
        '"_layot.html" is not a partial in ' + str(tmp_path / "templates") + "/; "
        'did you mean "_layout.html"? (partials: _layout.html)',
    ) in messages


def test_the_example_project_validates_and_caps_marketing(tmp_path: Path) -> None:
    project = load_project([ROOT / "journey_specs"], templates_dir=ROOT / "templates")
    assert project.ok, "\n".join(map(str, project.diagnostics))
    settings = project.settings
    assert settings.frequency_cap_messages and settings.frequency_cap_seconds
    assert settings.channels == {} and settings.consent_missing == "deny"
    assert settings.ad_subject_prefix == {"ko": "(광고) "}


def test_send_test_sends_one_real_marked_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = Credentials()
    with FakeProviders(creds) as fake:
        _project(
            tmp_path,
            {"receipt.html": RECEIPT, "tips.html": TIPS},
            settings=f"""
            channels:
              email: {{provider: sendgrid, host: "{fake.url}"}}
            sender: {{email: shop@example.com, name: Example Shop, address: 1 Main St}}
            """,
        )
        monkeypatch.setenv("SENDGRID_API_KEY", creds.sendgrid_key)
        monkeypatch.chdir(tmp_path)
        result = _cli("send-test", "tips", "--to", "me@example.com", "--locale", "ko")
        assert result.exit_code == 0, result.output
        [(key, _)] = fake.stats()["accepted"].items()
        body = fake.bodies(key)[0]["body"]
    assert "sent tips to me@example.com through sendgrid" in result.stderr
    assert body["subject"] == "[TEST] (광고) Tips"
    assert body["headers"]["X-Journeys-Test"] == "true" and "test" in body["categories"]
    assert body["personalizations"] == [{"to": [{"email": "me@example.com"}]}]


def test_send_test_without_a_provider_says_it_only_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _project(tmp_path, {"receipt.html": RECEIPT, "tips.html": TIPS})
    monkeypatch.chdir(tmp_path)
    result = _cli("send-test", "tips", "--to", "me@example.com")
    assert result.exit_code == 0 and "logged by the console channel, not sent" in result.stderr
    bad = _cli("send-test", "tips", "--to", "010-12", "--locale", "ko")
    assert bad.exit_code == 1 and "not a valid number in region KR" in bad.stderr
    missing = _cli("send-test", "nope", "--to", "me@example.com")
    assert missing.exit_code == 1 and "template 'nope' does not exist" in missing.stderr


def _cli(*args: str) -> Any:
    from journeys.cli import _register, app

    _register()
    return CliRunner().invoke(app, list(args))


def test_settings_read_delivery_keys() -> None:
    settings = Settings.from_dict(
        {
            "sender": {"email": "a@example.com", "reply_to": "r@example.com", "address": "Seoul"},
            "consent": {"missing": "allow"},
            "list_unsubscribe_mailto": "u@example.com",
            "advertising": {"subject_prefix": {"ko": "(광고)", "ja": "【広告】"}},
            "channels": {"email": {"provider": "smtp", "host": "mail.example.com"}},
        }
    )
    assert (settings.sender_reply_to, settings.sender_address) == ("r@example.com", "Seoul")
    assert settings.consent_missing == "allow" and settings.list_unsubscribe_mailto
    assert settings.ad_subject_prefix == {"ko": "(광고)", "ja": "【広告】"}
    assert settings.channels["email"]["host"] == "mail.example.com"
