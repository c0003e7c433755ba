"""A local HTTP server that speaks like SendGrid, Twilio and webhook receivers, with faults.

Routes (what the real clients call):

- ``POST /v3/mail/send`` (SendGrid v3): the ``Authorization: Bearer <key>`` header and the
  body's shape are checked as SendGrid does (a bad key is 401, a missing field 400 with
  SendGrid's error JSON); an accepted message is ``202`` with ``X-Message-Id``. Its key is
  ``custom_args.message_id``. Personal data in ``custom_args`` or ``categories`` is recorded
  as a problem.
- ``POST /2010-04-01/Accounts/<sid>/Messages.json`` (Twilio): HTTP Basic auth with the
  account SID and token, form fields ``To``, ``Body`` and ``From`` or
  ``MessagingServiceSid``; ``To`` must be E.164 (else Twilio's error 21211); ``201`` with a
  message resource. Its key is ``To`` + ``Body``.
- ``POST /hooks/<name>``: a signed JSON webhook (``X-Journeys-Timestamp``,
  ``X-Journeys-Signature: sha256=<hex>`` of ``timestamp.body`` with the shared secret; a bad
  signature is 401). ``POST /slack/<name>``: a Slack incoming webhook (``{"text": …}``, answers
  ``ok``).
- ``GET /_stats``: what happened, as JSON (for a server running in another process);
  ``GET /_count``: just how many requests it accepted.

A :class:`FaultPlan` makes some answers ``429`` (with ``X-RateLimit-Reset`` in the clock's
time), ``500``, a hang (no answer until the client times out and closes) or a drop (the
connection closed without an answer); a hung or dropped request is not accepted. The choice
is a hash of (seed, message key, attempt), so it does not depend on the order concurrent
requests arrive in.

In-process: ``with FakeProviders(...) as fake: fake.url``. In another process (its own
GIL, for load and fault tests): :class:`FakeProvidersProcess`, which runs
``python -m journeys.testing.fake_providers --config JSON``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import math
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

from journeys.testing.shared_clock import SharedClock

SIGNATURE_HEADER = "X-Journeys-Signature"
TIMESTAMP_HEADER = "X-Journeys-Timestamp"
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_REASONS = {200: "OK", 201: "Created", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized"}
_REASONS |= {404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}


@dataclass
class FaultPlan:
    """Which answers fail: ``rates`` maps ``"429"``, ``"500"``, ``"hang"`` (no answer until the
    client gives up) and ``"drop"`` (the connection closed without an answer) to fractions."""

    rates: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    reset: tuple[float, float] = (1.0, 3.0)
    """Seconds from now to the 429's reset (whole epoch seconds, as SendGrid sends)."""
    script: dict[str, list[str]] = field(default_factory=dict)
    """Outcomes by key for its first requests (``{"7": ["429", "500"]}``), before the rates."""
    latency: float = 0.0
    """Seconds (real time) the provider takes to answer."""

    def outcome(self, key: str, attempt: int) -> str:
        """``accept``, ``429``, ``500``, ``hang`` or ``drop`` for the ``attempt``-th request of
        ``key``."""
        scripted = self.script.get(key, [])
        if attempt <= len(scripted):
            return scripted[attempt - 1]
        draw = self._uniform(f"{key}:{attempt}")
        edge = 0.0
        for name in ("429", "500", "hang", "drop"):
            edge += self.rates.get(name, 0.0)
            if draw < edge:
                return name
        return "accept"

    def reset_after(self, key: str, attempt: int) -> float:
        """Seconds a 429 asks the client to wait (at least one)."""
        low, high = self.reset
        return low + (high - low) * self._uniform(f"reset:{key}:{attempt}")

    def _uniform(self, text: str) -> float:
        digest = hashlib.sha256(f"{self.seed}:{text}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class Credentials:
    """What the fake providers accept."""

    sendgrid_key: str = "SG.test-key"
    twilio_sid: str = "AC" + "0" * 32
    twilio_token: str = "twilio-test-token"
    webhook_secret: str = "webhook-test-secret"


class FakeProviders:
    """The server (see the module docstring). Thread-safe to read while it runs."""

    def __init__(
        self,
        credentials: Credentials | None = None,
        plan: FaultPlan | None = None,
        *,
        clock_name: str | None = None,
        hang_limit: float = 60.0,
    ) -> None:
        self.credentials = credentials or Credentials()
        self.plan = plan or FaultPlan()
        self.clock = SharedClock.attach(clock_name) if clock_name else None
        self.hang_limit = hang_limit
        self.accepted: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self._attempts: dict[str, int] = {}
        self._events = itertools.count(1)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._release = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    # ------------------------------------------------------------------ running

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeProviders:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> int:
        """Serve in a background thread; returns the port."""
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._release = asyncio.Event()
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=4096)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-providers", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake providers did not start")
        return self.port

    def stop(self) -> None:
        """Stop serving (hung requests are released without an answer)."""
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def shutdown() -> None:
            self._release.set()
            server.close()
            for task in list(self._tasks):  # keep-alive connections still open
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await server.wait_closed()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        if self.clock is not None:
            self.clock.close()
        self._loop = self._server = None

    def now(self) -> float:
        """Epoch seconds in the shared virtual clock, else wall-clock time."""
        return self.clock.epoch() if self.clock is not None else time.time()

    def stats(self) -> dict[str, Any]:
        """Everything recorded so far (a copy)."""
        with self._lock:
            return {
                "accepted": {k: len(v) for k, v in self.accepted.items()},
                "requests": [dict(r) for r in self.requests],
                "problems": list(self.problems),
            }

    def bodies(self, key: str) -> list[dict[str, Any]]:
        """The accepted requests of ``key`` (their parsed bodies and headers)."""
        with self._lock:
            return list(self.accepted.get(key, []))

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                method, path, headers, body = request
                answer = await self._route(method, path, headers, body, reader)
                if answer is None:  # a hang: the client gave up; nothing to say
                    break
                status, extra, payload, ctype = answer
                close = headers.get("connection", "").lower() == "close"
                writer.write(_response(status, extra, payload, ctype, close))
                await writer.drain()
                if close:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _route(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        reader: asyncio.StreamReader,
    ) -> tuple[int, dict[str, str], bytes, str] | None:
        if method == "GET" and path.split("?")[0] == "/_stats":
            return 200, {}, json.dumps(self.stats()).encode(), "application/json"
        if method == "GET" and path == "/_count":
            with self._lock:
                count = {"accepted": sum(map(len, self.accepted.values()))}
            return 200, {}, json.dumps(count).encode(), "application/json"
        if method != "POST":
            return _json(404, {"errors": [{"message": "not found"}]})
        if path == "/v3/mail/send":
            check = self._sendgrid
        elif re.fullmatch(r"/2010-04-01/Accounts/[^/]+/Messages\.json", path):
            check = self._twilio
        elif path.startswith("/hooks/"):
            check = self._webhook
        elif path.startswith("/slack/"):
            check = self._slack
        else:
            return _json(404, {"errors": [{"message": f"no route {path}"}]})
        refused, key, record = check(path, headers, body)
        if refused is not None:
            return refused
        return await self._decide(path, key, record, reader)

    async def _decide(
        self, route: str, key: str, record: dict[str, Any], reader: asyncio.StreamReader
    ) -> tuple[int, dict[str, str], bytes, str] | None:
        with self._lock:
            attempt = self._attempts.get(key, 0) + 1
            self._attempts[key] = attempt
            outcome = self.plan.outcome(key, attempt)
            entry = {"seq": next(self._events), "route": route.split("/")[1], "key": key}
            entry |= {"attempt": attempt, "at": self.now(), "outcome": outcome}
            self.requests.append(entry)
        if outcome == "hang":
            await self._hang(reader)
            return None
        if outcome == "drop":  # read, then hang up without a word: nothing accepted
            return None
        if self.plan.latency:
            await asyncio.sleep(self.plan.latency)
        with self._lock:
            entry["answered"] = next(self._events)
            if outcome == "accept":
                self.accepted.setdefault(key, []).append(record)
        if outcome == "500":
            return _json(500, {"errors": [{"message": "internal error, try again later"}]})
        if outcome == "429":
            reset = math.ceil(entry["at"] + self.plan.reset_after(key, attempt))
            entry["reset"] = reset
            extra = {
                "X-RateLimit-Limit": "600",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
            }
            return _json(429, {"errors": [{"message": "too many requests"}]}, extra)
        return record["answer"]

    async def _hang(self, reader: asyncio.StreamReader) -> None:
        """No answer until the client closes the connection (its time-out) or the server
        stops."""
        read = asyncio.ensure_future(reader.read(1))
        released = asyncio.ensure_future(self._release.wait())
        await asyncio.wait({read, released}, timeout=self.hang_limit, return_when="FIRST_COMPLETED")
        for task in (read, released):
            task.cancel()

    def _problem(self, text: str) -> None:
        with self._lock:
            self.problems.append(text)

    # ------------------------------------------------------------------ providers

    def _sendgrid(self, path: str, headers: dict[str, str], body: bytes) -> Any:
        if headers.get("authorization") != f"Bearer {self.credentials.sendgrid_key}":
            message = "The provided authorization grant is invalid, expired, or revoked"
            return _json(401, {"errors": [{"message": message, "field": None}]}), "", {}
        try:
            data = json.loads(body)
        except ValueError:
            return _json(400, {"errors": [{"message": "Bad Request", "field": None}]}), "", {}
        missing = _sendgrid_missing(data)
        if missing:
            field_, message = missing
            return _json(400, {"errors": [{"message": message, "field": field_}]}), "", {}
        args = data.get("custom_args") or {}
        key = str(args.get("message_id", ""))
        recipient = data["personalizations"][0]["to"][0]["email"]
        if set(args) != {"message_id"}:
            self._problem(f"custom_args carries more than the message id: {sorted(args)}")
        names = {recipient.lower(), str(data["from"].get("name", "")).lower()} - {""}
        for value in [*args.values(), *(data.get("categories") or [])]:
            text = str(value).lower()
            if "@" in text or text in names:
                self._problem(f"personal data in custom_args or categories: {value!r}")
        provider_id = uuid.uuid4().hex[:22]
        answer = (202, {"X-Message-Id": provider_id}, b"", "text/plain")
        record = {"body": data, "headers": headers, "provider_id": provider_id, "answer": answer}
        return None, key, record

    def _twilio(self, path: str, headers: dict[str, str], body: bytes) -> Any:
        sid = path.split("/")[3]
        creds = self.credentials
        expected = base64.b64encode(f"{creds.twilio_sid}:{creds.twilio_token}".encode()).decode()
        if sid != creds.twilio_sid or headers.get("authorization") != f"Basic {expected}":
            error = {"code": 20003, "message": "Authenticate", "status": 401}
            return _json(401, error), "", {}
        form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        to, text = form.get("To", ""), form.get("Body", "")
        sender = form.get("From") or form.get("MessagingServiceSid")
        if not _E164.match(to):
            message = f"The 'To' number {to} is not a valid phone number."
            return _json(400, {"code": 21211, "message": message, "status": 400}), "", {}
        if not sender or not text:
            message = "A 'From' phone number or 'MessagingServiceSid' and a 'Body' are required."
            return _json(400, {"code": 21603, "message": message, "status": 400}), "", {}
        msid = "SM" + uuid.uuid4().hex
        resource = {
            "sid": msid,
            "account_sid": sid,
            "to": to,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": text,
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "uri": f"/2010-04-01/Accounts/{sid}/Messages/{msid}.json",
        }
        answer = _json(201, resource)
        return None, f"{to}|{text}", {"body": form, "provider_id": msid, "answer": answer}

    def _webhook(self, path: str, headers: dict[str, str], body: bytes) -> Any:
        stamp = headers.get(TIMESTAMP_HEADER.lower(), "")
        given = headers.get(SIGNATURE_HEADER.lower(), "")
        secret = self.credentials.webhook_secret.encode()
        expected = "sha256=" + hmac.new(secret, stamp.encode() + b"." + body, "sha256").hexdigest()
        if not stamp or not hmac.compare_digest(given, expected):
            self._problem(f"bad webhook signature on {path}")
            return _json(401, {"message": "bad signature"}), "", {}
        try:
            data = json.loads(body)
        except ValueError:
            return _json(400, {"message": "not JSON"}), "", {}
        key = str(data.get("message_id", ""))
        return None, key, {"body": data, "path": path, "answer": _json(200, {"ok": True})}

    def _slack(self, path: str, headers: dict[str, str], body: bytes) -> Any:
        try:
            data = json.loads(body)
        except ValueError:
            return (400, {}, b"invalid_payload", "text/plain"), "", {}
        if not isinstance(data, dict) or not data.get("text"):
            return (400, {}, b"no_text", "text/plain"), "", {}
        key = hashlib.sha256(body).hexdigest()[:16]
        return None, key, {"body": data, "path": path, "answer": (200, {}, b"ok", "text/plain")}


def _sendgrid_missing(data: Any) -> tuple[str, str] | None:
    if not isinstance(data, dict):
        return "body", "The request body must be a JSON object"
    try:
        email = data["personalizations"][0]["to"][0]["email"]
    except (KeyError, IndexError, TypeError):
        return "personalizations", "The personalizations field is required"
    if not email or "@" not in email:
        return "personalizations.0.to.0.email", "Does not contain a valid address."
    if not isinstance(data.get("from"), dict) or "@" not in str(data["from"].get("email", "")):
        return "from.email", "The from email does not contain a valid address."
    if not data.get("subject"):
        return "subject", "The subject is required."
    content = data.get("content")
    if not isinstance(content, list) or not content:
        return (
            "content",
            "Unless a valid template_id is provided, the content parameter is required.",
        )
    if len(content) > 1 and content[0].get("type") != "text/plain":
        return "content.0.type", "The text/plain content type must be first."
    return None


def _json(
    status: int, data: Any, extra: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes, str]:
    return status, dict(extra or {}), json.dumps(data).encode(), "application/json"


def _response(status: int, extra: dict[str, str], body: bytes, ctype: str, close: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines += [f"Content-Type: {ctype}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    lines.append(f"Connection: {'close' if close else 'keep-alive'}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, str, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = await reader.readexactly(length) if length else b""
    return method, unquote(target), headers, body


# --------------------------------------------------------------------------- subprocess


class FakeProvidersProcess:
    """:class:`FakeProviders` in a child process (its own interpreter and GIL)."""

    def __init__(
        self,
        credentials: Credentials | None = None,
        plan: FaultPlan | None = None,
        *,
        clock_name: str | None = None,
    ) -> None:
        self.config = {
            "credentials": asdict(credentials or Credentials()),
            "plan": asdict(plan or FaultPlan()),
            "clock_name": clock_name,
        }
        self.credentials = credentials or Credentials()
        self._proc: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The child's process id (0 when not running)."""
        return self._proc.pid if self._proc is not None else 0

    def __enter__(self) -> FakeProvidersProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> int:
        """Start the child and wait for its port."""
        command = [sys.executable, "-m", "journeys.testing.fake_providers"]
        self._proc = subprocess.Popen(
            [*command, "--config", json.dumps(self.config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.startswith("{"):
            self.stop()
            raise RuntimeError(f"the fake providers did not start: {line!r}")
        self.port = int(json.loads(line)["port"])
        return self.port

    def stats(self) -> dict[str, Any]:
        """``GET /_stats`` of the child."""
        import httpx

        return dict(httpx.get(f"{self.url}/_stats", timeout=30).json())

    def accepted_count(self) -> int:
        """``GET /_count``: requests accepted so far."""
        import httpx

        return int(httpx.get(f"{self.url}/_count", timeout=30).json()["accepted"])

    def stop(self) -> None:
        """Stop the child (closing its stdin ends it)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(Exception):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _serve(config: dict[str, Any]) -> None:
    plan = dict(config.get("plan") or {})
    if "reset" in plan:
        plan["reset"] = tuple(plan["reset"])
    server = FakeProviders(
        Credentials(**(config.get("credentials") or {})),
        FaultPlan(**plan),
        clock_name=config.get("clock_name"),
    )
    server.start()
    print(json.dumps({"port": server.port}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sys.stdin.read()  # until the parent closes our stdin (or dies)
    server.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m journeys.testing.fake_providers --config JSON``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--config", default="{}")
    args = parser.parse_args(argv)
    _serve(json.loads(args.config))


if __name__ == "__main__":  # pragma: no cover
    main()
