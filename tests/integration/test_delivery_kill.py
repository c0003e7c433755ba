"""kill -9 of a dispatcher process at random points: under the at-most-once default no message
is ever accepted twice by the provider, and the doubtful ones are ``unknown`` and listed by
``journeys outbox`` (SQLite and PostgreSQL).

Each trial kills the dispatcher once the provider has accepted a random number of that
trial's messages (0 to 80 % of them), so the kill lands while it works whatever the load on
the machine; where exactly (claiming, waiting for the provider, recording) is chance."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import time
from datetime import timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from delivery_helpers import delivery_settings, seed_outbox, statuses
from journeys.clock import SystemClock, VirtualClock
from journeys.delivery.dispatcher import dispatch
from journeys.delivery.factory import build_channels
from journeys.store import outbox as store
from journeys.store.db import create_engine
from journeys.testing.fake_providers import Credentials, FakeProvidersProcess, FaultPlan

pytestmark = pytest.mark.slow

TRIALS = 20
MESSAGES = 120
CREDS = Credentials()
ENV = {"SENDGRID_API_KEY": CREDS.sendgrid_key}


def _settings(url: str) -> Any:
    return delivery_settings({"email": {"provider": "sendgrid", "host": url, "batch": 20}})


def _child(db_url: str, provider_url: str, started: Any) -> None:
    """The dispatcher under test: a process of its own, killed from outside."""
    engine = create_engine(db_url)
    settings = _settings(provider_url)
    channels = build_channels(settings, clock=SystemClock(), env=ENV)
    started.set()
    while dispatch(engine, channels, settings, SystemClock()).handled:
        pass
    os._exit(0)


def test_kill_9_never_sends_a_message_twice(db_url: str) -> None:
    context = multiprocessing.get_context("fork")
    rng = random.Random(20261201)
    engine = create_engine(db_url)
    doubtful_total = 0
    # Each answer takes 10 ms: a run of 120 messages is a few hundred milliseconds of work.
    with FakeProvidersProcess(CREDS, FaultPlan(latency=0.01)) as fake:
        settings = _settings(fake.url)
        for trial in range(TRIALS):
            ids = seed_outbox(engine, MESSAGES, first=1 + trial * MESSAGES)
            kill_after = fake.accepted_count() + rng.randrange(int(MESSAGES * 0.8))
            started = context.Event()
            child = context.Process(target=_child, args=(db_url, fake.url, started))
            child.start()
            assert started.wait(30), "the dispatcher did not start"
            while fake.accepted_count() < kill_after and child.is_alive():
                time.sleep(0.001)
            os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
            child.join(10)
            # Restart later: the stopped dispatcher's lease has long passed.
            later = VirtualClock(SystemClock().now() + timedelta(hours=1))
            channels = build_channels(settings, clock=later, env=ENV)
            while dispatch(engine, channels, settings, later).handled:
                pass
            accepted = fake.stats()["accepted"]
            by_status = statuses(engine, ids)
            assert set(by_status.values()) <= {"sent", "unknown"}, by_status
            for outbox_id, status in by_status.items():
                times = accepted.get(str(outbox_id), 0)
                # Never twice; a sent message exactly once; an unknown one at most once.
                assert times == 1 if status == "sent" else times <= 1, (trial, outbox_id)
            doubtful_total += sum(1 for s in by_status.values() if s == "unknown")
    assert doubtful_total > 0, "no kill landed during a provider call"
    runner = CliRunner()
    args = ["outbox", "--status", "unknown", "--database", db_url, "--limit", "10000"]
    listed = runner.invoke(_app(), [*args, "--json"])
    assert listed.exit_code == 0, listed.output
    unknown = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(unknown) == doubtful_total
    assert {m["error"] for m in unknown} == {store.ABANDONED}
    table = runner.invoke(_app(), args)
    assert f"{doubtful_total} unknown" in table.stderr and "outbox retry" in table.stderr
    engine.dispose()


def _app() -> Any:
    from journeys.cli import _register, app

    _register()
    return app
