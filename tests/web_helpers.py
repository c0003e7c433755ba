"""Helpers for the web app's tests: the example project in a temp folder, a service on a virtual
clock, the app over its own service, and a post-purchase survey sent through the real pipeline."""

from __future__ import annotations

import base64
import html
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from journeys.clock import VirtualClock
from journeys.service import JourneyService
from journeys.store.tables import outbox
from journeys.web import create_app

REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SECRET = "test-secret-" + "x9Kq2" * 8
BASE_URL = "http://testserver"

SETTINGS = f"""
timezone: UTC
default_locale: en
sender: {{email: hello@example.com, name: Example Shop}}
teams:
  support: {{channel: email, address: support@example.com}}
  sales: {{channel: console}}
base_url: {BASE_URL}
consent: {{missing: allow}}
events:
  referral.sent: {{data: {{referral_code: string}}}}
  advocacy.candidate: {{data: {{}}}}
  ticket.closed: {{description: a support ticket was closed (the CSAT test's journey)}}
"""
TOPICS = """
topics:
  newsletter: {label: Newsletter, label_ko: 뉴스레터, description: News once a month}
  offers: {label: Offers and coupons, label_ko: 할인 및 쿠폰}
"""


def write_project(root: Path, extra: str = "", journeys: dict[str, str] | None = None) -> Path:
    """The repository's example journeys and templates with test settings (and ``journeys``
    added to the specs), under ``root``."""
    shutil.copytree(REPO / "journey_specs", root / "journey_specs")
    shutil.copytree(REPO / "templates", root / "templates")
    for name, text in (journeys or {}).items():
        (root / "journey_specs" / f"{name}.yaml").write_text(text, encoding="utf-8")
    (root / "journeys.yaml").write_text(SETTINGS + extra, encoding="utf-8")
    return root


def signing_key() -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A P-256 key pair as SendGrid makes them: the private key and the base64 DER public
    key SendGrid shows in its settings."""
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(der).decode()


def sign_body(private: ec.EllipticCurvePrivateKey, body: bytes, timestamp: str) -> str:
    """The ``X-Twilio-Email-Event-Webhook-Signature`` SendGrid would send."""
    return base64.b64encode(
        private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    ).decode()


@dataclass
class WebEnv:
    """A project, the runner's service, and the app over its own service."""

    root: Path
    clock: VirtualClock
    service: JourneyService
    app: FastAPI
    client: TestClient
    private_key: ec.EllipticCurvePrivateKey

    def tick(self) -> dict[str, int]:
        """One runner pass at the current virtual time."""
        return self.service.tick()

    def advance(self, delta: timedelta) -> None:
        """Move virtual time on and run every pass in between."""
        self.service.run_until(self.clock.now() + delta)

    def rows(self, table: Any, *where: Any) -> list[dict[str, Any]]:
        """Rows of ``table`` (matching ``where``) as dicts."""
        return rows(self.service.db, table, *where)


def rows(db: Engine, table: Any, *where: Any) -> list[dict[str, Any]]:
    """Rows of ``table`` (matching ``where``) as dicts."""
    with db.connect() as conn:
        return [dict(r) for r in conn.execute(select(table).where(*where)).mappings()]


def open_env(
    root: Path,
    database_url: str,
    extra_settings: str = "",
    extra_journeys: dict[str, str] | None = None,
    extra_templates: dict[str, str] | None = None,
    **app_kw: Any,
) -> WebEnv:
    """Everything a web test needs (the secret comes from ``$JOURNEYS_SECRET_KEY``, which the
    ``web_secret`` fixture sets); ``extra_templates`` maps file names to their text."""
    private, public = signing_key()
    settings = extra_settings + f"\nsendgrid: {{webhook_public_key: {public}}}\n"
    write_project(root, settings, extra_journeys)
    for name, text in (extra_templates or {}).items():
        (root / "templates" / name).write_text(text, encoding="utf-8")
    clock = VirtualClock(T0)
    service = JourneyService.open(
        database_url, specs=root / "journey_specs", templates=root / "templates", clock=clock
    )
    own = JourneyService(service.db, service.project, clock=clock)
    app = create_app(own, **app_kw)
    client = TestClient(app, base_url=BASE_URL, raise_server_exceptions=False)
    return WebEnv(root, clock, service, app, client, private)


def add_customer(
    service: JourneyService, cid: str = "c-1", locale: str = "en", **fields: Any
) -> None:
    """Import one customer who may get marketing email."""
    record = {
        "id": cid,
        "email": f"{cid}@example.com",
        "first_name": "Jane",
        "locale": locale,
        "timezone": "UTC",
        "email_opt_in": True,
        **fields,
    }
    report = service.import_customers([record])
    assert report.ok, report.errors


def send_survey(env: WebEnv, cid: str = "c-1", locale: str = "en") -> str:
    """Deliver an order to a new customer and run the post-purchase journey until its NPS
    email is in the outbox; returns the survey link from the rendered HTML."""
    add_customer(env.service, cid, locale)
    event = {
        "id": f"delivered-{cid}",
        "type": "order.delivered",
        "customer_id": cid,
        "occurred_at": env.clock.now(),
        "data": {"order_id": f"o-{cid}"},
    }
    assert env.service.ingest([event]).accepted == 1
    env.advance(timedelta(days=3, hours=1))
    rows = env.rows(outbox, outbox.c.customer_id == cid, outbox.c.kind == "survey")
    assert len(rows) == 1, rows
    return survey_link_in(rows[0]["html"])


def survey_link_in(body: str) -> str:
    """The survey link of a rendered survey email (without ``&score=``)."""
    found = re.search(r'href="([^"]*/survey\?token=[^"&]+)', html.unescape(body))
    assert found, body
    return found[1]


def unsubscribe_link_in(body: str) -> str:
    """The unsubscribe link of a rendered email."""
    found = re.search(r'href="([^"]*/unsubscribe/[^"]+)"', html.unescape(body))
    assert found, body
    return found[1]


def token_of(url: str) -> str:
    """The token of a survey or unsubscribe link."""
    parts = urlsplit(url)
    if parts.query:
        return parse_qs(parts.query)["token"][0]
    return parts.path.rsplit("/", 1)[1]


def path_of(url: str) -> str:
    """``/survey?token=…`` of an absolute link (the test client's base URL is the same)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def form_value(page: str, name: str) -> str:
    """The value of the hidden input ``name`` of a page."""
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, page
    return html.unescape(found[1])


def _web_env(root: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebEnv]:
    monkeypatch.setenv("JOURNEYS_SECRET_KEY", SECRET)
    monkeypatch.delenv("JOURNEYS_OLD_SECRET_KEYS", raising=False)
    monkeypatch.delenv("SENDGRID_WEBHOOK_PUBLIC_KEY", raising=False)
    env = open_env(root, url, TOPICS)
    yield env
    env.client.close()
    env.service.close()


@pytest.fixture
def web_env(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebEnv]:
    """The example project on SQLite with topics, the app and a client."""
    yield from _web_env(tmp_path / "project", sqlite_url, monkeypatch)


@pytest.fixture
def web_env_db(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebEnv]:
    """:func:`web_env` on SQLite and on PostgreSQL (for the tests of the web app's SQL)."""
    yield from _web_env(tmp_path / "project", db_url, monkeypatch)
