"""Benchmark: messages per second through the official SendGrid client into a local server.

``run(scale)`` measures, against ``journeys.testing.fake_providers`` running in its own
process (it speaks ``/v3/mail/send``, checks the key and the body, answers 202):

- **client**: :class:`~journeys.channels.sendgrid_email.SendGridChannel` alone, sending
  ``20,000 × scale`` real composed messages (the example ``cart_reminder`` in its layout,
  CSS inlined, 2.5 KB of HTML and text) in batches of 50, at 8 (the default), 16 and 32
  calls at once, with the CPU time per message of the client and of the server;
- **dispatch**: the whole dispatcher on a SQLite file: claim a batch and commit it as
  ``sending``, send, record each answer and commit, for ``10,000 × scale`` outbox rows,
  with the default settings (batches of 50, 8 calls at once).

Run alone: ``python bench/delivery.py [--scale 0.2]``. ``bench/run.py --only delivery``
calls :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
CLIENT_MESSAGES = 20_000
DISPATCH_MESSAGES = 10_000
BATCH = 50
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _message_parts() -> tuple[str, str, str, dict[str, str]]:
    """A real composed marketing email: subject, HTML, text, headers."""
    from journeys.delivery.email import Composer
    from journeys.settings import Settings
    from journeys.templates import TemplateStore

    settings = Settings(sender_name="Example Shop", sender_address="1 Main St, Springfield")
    template = TemplateStore(ROOT / "templates").for_locale("cart_reminder", "en")
    ctx = {
        "customer": {"id": "c-1", "first_name": "Ann", "locale": "en"},
        "event": {
            "data": {
                "items": [{"name": "Mug", "price": 12.5, "quantity": 2}],
                "cart_total": 25.0,
                "currency": "USD",
            }
        },
    }
    message = Composer(settings).compose(
        template, ctx, customer_id="c-1", channel="email", at=START
    )
    return message.subject, message.html or "", message.text, message.headers


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process ``pid`` so far, from /proc (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _client(url: str, key: str, count: int, concurrency: int, server_pid: int) -> dict[str, Any]:
    from journeys.channels.base import OutboundMessage, SendResult
    from journeys.channels.sendgrid_email import SendGridChannel

    subject, html, text, headers = _message_parts()
    channel = SendGridChannel(key, host=url, concurrency=concurrency, timeout=30)
    messages = [
        OutboundMessage(
            i,
            f"c-{i}",
            "cart",
            "remind",
            "cart_reminder",
            "email",
            f"p{i}@example.com",
            subject,
            html,
            text,
            "en",
            START,
            headers,
        )
        for i in range(1, count + 1)
    ]
    channel.send_batch(messages[:BATCH])  # connections up before the clock starts
    sent = 0
    server_cpu, client_cpu = _cpu_seconds(server_pid), time.process_time()
    started = time.perf_counter()
    for offset in range(BATCH, count, BATCH):
        results = channel.send_batch(messages[offset : offset + BATCH])
        sent += sum(1 for r in results if isinstance(r, SendResult))
    seconds = time.perf_counter() - started
    client_cpu = time.process_time() - client_cpu
    server_cpu = _cpu_seconds(server_pid) - server_cpu
    channel.close()
    total = count - BATCH
    return {
        "messages": total,
        "accepted": sent,
        "seconds": round(seconds, 2),
        "messages_per_s": round(total / seconds, 1),
        "client_cpu_ms_per_message": round(client_cpu / total * 1000, 3),
        "server_cpu_ms_per_message": round(server_cpu / total * 1000, 3),
        "bytes_per_message": len(html) + len(text),
    }


def _dispatch(url: str, key: str, count: int, workdir: Path) -> dict[str, Any]:
    from journeys.channels.sendgrid_email import SendGridChannel
    from journeys.clock import VirtualClock
    from journeys.delivery.dispatcher import dispatch
    from journeys.delivery.factory import build_channels
    from journeys.settings import Settings
    from journeys.store.db import open_store
    from journeys.store.tables import outbox
    from journeys.testing.seed import seed_outbox

    subject, html, text, headers = _message_parts()
    engine = open_store(f"sqlite:///{workdir / 'delivery.db'}")
    body = {"subject": subject, "html": html, "text": text, "headers": headers}
    seed_outbox(engine, count, message=body)
    settings = Settings(channels={"email": {"provider": "sendgrid", "host": url}})
    channels = build_channels(settings, env={"SENDGRID_API_KEY": key})
    clock = VirtualClock(START)
    started = time.perf_counter()
    report = dispatch(engine, channels, settings, clock, limit=count)
    seconds = time.perf_counter() - started
    with engine.connect() as conn:
        sent = conn.scalar(sa.select(sa.func.count()).where(outbox.c.status == "sent"))
    channel = channels["email"]
    if isinstance(channel, SendGridChannel):
        channel.close()
    engine.dispose()
    return {
        "messages": count,
        "sent": int(sent or 0),
        "claims": report.handled // BATCH,
        "seconds": round(seconds, 2),
        "messages_per_s": round(count / seconds, 1),
    }


def run(scale: float = 1.0) -> dict[str, Any]:
    """Both measurements (see the module docstring)."""
    from journeys.testing.fake_providers import Credentials, FakeProvidersProcess

    credentials = Credentials()
    key = credentials.sendgrid_key
    result: dict[str, Any] = {"cores": os.cpu_count()}
    with FakeProvidersProcess(credentials) as fake:
        result["client"] = {
            f"concurrency_{n}": _client(
                fake.url, key, max(500, int(CLIENT_MESSAGES * scale)), n, fake.pid
            )
            for n in (8, 16, 32)
        }
        with tempfile.TemporaryDirectory(prefix="journeys-delivery-") as tmp:
            result["dispatch"] = _dispatch(
                fake.url, key, max(500, int(DISPATCH_MESSAGES * scale)), Path(tmp)
            )
    best = max(v["messages_per_s"] for v in result["client"].values())
    result["client_messages_per_s"] = best
    result["dispatch_messages_per_s"] = result["dispatch"]["messages_per_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--scale", type=float, default=float(os.environ.get("BENCH_SCALE", 1.0)))
    args = parser.parse_args()
    print(json.dumps(run(args.scale), indent=2))


if __name__ == "__main__":
    main()
