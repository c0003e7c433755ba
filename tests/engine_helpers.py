"""Helpers for engine tests: a project written into tmp_path, and a service on a virtual clock."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from journeys.clock import VirtualClock
from journeys.service import JourneyService, default_channels
from journeys.simulate import NullChannel
from journeys.spec import Project, load_project
from journeys.store import db as store_db
from journeys.store.tables import customers, enrollments, outbox, step_runs

T0 = datetime(2026, 3, 2, tzinfo=UTC)

DRIP = """
journey: drip
name: Drip
trigger: {event: customer.signed_up}
steps:
  - id: first
    wait: 1d
  - id: old_mail
    send: {template: hello}
"""
"""A two-step journey whose second step later versions rename (version and in-flight tests)."""

WAIT_FOR_CART = """
journey: cart
name: Cart
trigger: {event: cart.updated}
steps:
  - id: wait_a_day
    wait_for: {event: order.placed, within: 24h}
    on_event: bought
    on_timeout: remind
  - id: bought
    exit: order.placed
  - id: remind
    send: {template: hello}
"""
"""A reminder a day after a cart, unless an order comes first (runtime and forecast tests)."""

SIGNUP_WELCOME = """
journey: welcome
name: Welcome
trigger: {event: customer.signed_up}
steps:
  - id: hello
    send: {template: hello}
"""
"""One marketing message at sign-up."""

BASIC_TEMPLATES = {
    "hello.html": (
        "---\nsubject: Hello {{ customer.first_name }}\n---\n<p>Hi {{ customer.first_name }}</p>\n"
    ),
    "hello.ko.html": (
        "---\nsubject: 안녕하세요 {{ customer.first_name }}\n---\n"
        "<p>안녕 {{ customer.first_name }}</p>\n"
    ),
}


def write_project(
    root: Path,
    journeys: dict[str, str],
    templates: dict[str, str] | None = None,
    lifecycle: str | None = None,
    settings: str | None = None,
) -> Project:
    """Write specs/templates (and ``settings`` as ``journeys.yaml``) under ``root`` and load
    them; fails the test on diagnostics. Without ``settings``, customers who never said
    otherwise count as opted in (``consent: {missing: allow}``): these tests are about
    journeys; consent has its own."""
    specs = root / "journey_specs"
    tdir = root / "templates"
    specs.mkdir(parents=True, exist_ok=True)
    tdir.mkdir(parents=True, exist_ok=True)
    for name, text in journeys.items():
        (specs / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    if lifecycle:
        (specs / "lifecycle.yaml").write_text(textwrap.dedent(lifecycle), encoding="utf-8")
    if settings is None:
        settings = "consent: {missing: allow}\n"
    (root / "journeys.yaml").write_text(textwrap.dedent(settings), encoding="utf-8")
    for name, text in {**BASIC_TEMPLATES, **(templates or {})}.items():
        (tdir / name).write_text(text, encoding="utf-8")
    project = load_project([specs], templates_dir=tdir)
    assert project.ok, "\n".join(map(str, project.diagnostics))
    return project


def open_service(project: Project, url: str, start: datetime = T0) -> JourneyService:
    """A service on a migrated store at ``url`` with a virtual clock at ``start``."""
    db = store_db.open_store(url)
    clock = VirtualClock(start)
    channels = default_channels(NullChannel())
    service = JourneyService(db, project, clock=clock, channels=channels)
    service.start_cursors(start)
    return service


def run_until(service: JourneyService, until: datetime) -> None:
    """Step virtual time through every scheduled instant up to ``until`` (dispatching all)."""
    service.run_until(until, dispatch_all=True)


def event(eid: str, etype: str, cid: str, at: str, **data: Any) -> dict[str, Any]:
    """An event record (docs/events.md)."""
    return {"id": eid, "type": etype, "customer_id": cid, "occurred_at": at, "data": data}


def messages(service: JourneyService) -> list[dict[str, Any]]:
    """Outbox rows, oldest first."""
    with service.db.connect() as conn:
        rows = conn.execute(select(outbox).order_by(outbox.c.due_at, outbox.c.id)).mappings()
        return [dict(r) for r in rows]


def enrollment_rows(service: JourneyService) -> list[dict[str, Any]]:
    """Enrollment rows, by id."""
    with service.db.connect() as conn:
        return [
            dict(r) for r in conn.execute(select(enrollments).order_by(enrollments.c.id)).mappings()
        ]


def step_history(service: JourneyService) -> list[dict[str, Any]]:
    """Step history rows, oldest first."""
    with service.db.connect() as conn:
        rows = conn.execute(select(step_runs).order_by(step_runs.c.id)).mappings()
        return [dict(r) for r in rows]


def customer_row(service: JourneyService, cid: str) -> dict[str, Any]:
    """One customer row."""
    with service.db.connect() as conn:
        row = conn.execute(select(customers).where(customers.c.id == cid)).mappings().one()
        return dict(row)


def journeys_cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``journeys ARGS`` in a subprocess in ``cwd``, on the SQLite file ``cwd/j.db``."""
    env = {**os.environ, "JOURNEYS_DATABASE_URL": f"sqlite:///{cwd / 'j.db'}"}
    return subprocess.run(
        [sys.executable, "-m", "journeys", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
