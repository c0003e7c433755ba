"""The fake providers' server: an asyncio HTTP server in a background thread that routes each
request to its provider's check and answers as the :class:`FaultPlan` says."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import threading
import time
from typing import Any

from journeys.testing.fake_providers import providers
from journeys.testing.fake_providers.plan import Credentials, FaultPlan
from journeys.testing.fake_providers.wire import Answer, json_answer, read_request, response
from journeys.testing.shared_clock import SharedClock


class FakeProviders:
    """The server (see :mod:`journeys.testing.fake_providers`). Thread-safe to read while it
    runs."""

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
                request = await read_request(reader)
                if request is None:
                    break
                method, path, headers, body = request
                answer = await self._route(method, path, headers, body, reader)
                if answer is None:  # a hang: the client gave up; nothing to say
                    break
                status, extra, payload, ctype = answer
                close = headers.get("connection", "").lower() == "close"
                writer.write(response(status, extra, payload, ctype, close))
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
    ) -> Answer | None:
        if method == "GET" and path.split("?")[0] == "/_stats":
            return 200, {}, json.dumps(self.stats()).encode(), "application/json"
        if method == "GET" and path == "/_count":
            with self._lock:
                count = {"accepted": sum(map(len, self.accepted.values()))}
            return 200, {}, json.dumps(count).encode(), "application/json"
        if method != "POST":
            return json_answer(404, {"errors": [{"message": "not found"}]})
        check = providers.check_for(path)
        if check is None:
            return json_answer(404, {"errors": [{"message": f"no route {path}"}]})
        refused, key, record = check(self.credentials, self._problem, path, headers, body)
        if refused is not None:
            return refused
        return await self._decide(path, key, record, reader)

    async def _decide(
        self, route: str, key: str, record: dict[str, Any], reader: asyncio.StreamReader
    ) -> Answer | None:
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
            return json_answer(500, {"errors": [{"message": "internal error, try again later"}]})
        if outcome == "429":
            reset = math.ceil(entry["at"] + self.plan.reset_after(key, attempt))
            entry["reset"] = reset
            extra = {
                "X-RateLimit-Limit": "600",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
            }
            return json_answer(429, {"errors": [{"message": "too many requests"}]}, extra)
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
