"""Serving the app with uvicorn: in the foreground (``journeys web``) or in a background thread
of the runner process (``journeys run``), with a clean stop either way.

The access log never shows link tokens: ``/survey?token=…`` and ``/unsubscribe/…`` are logged
with the token cut out.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn

from journeys.runtime.links import LinkKeys
from journeys.secrets import ENV_SECRET, weakness

_TOKEN_IN_QUERY = re.compile(r"(token=)[^&\s]+")
_TOKEN_IN_PATH = re.compile(r"(/unsubscribe/)[^/?\s]+")
STARTUP_TIMEOUT = 30.0


class UnsafeBind(RuntimeError):
    """Listening beyond this machine with a weak link secret; the message says how to fix it."""


class RedactTokens(logging.Filter):
    """Cuts link tokens out of uvicorn's access log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def redact(text: str) -> str:
    """``/survey?token=abc&score=3`` → ``/survey?token=…&score=3``."""
    return _TOKEN_IN_PATH.sub(r"\1…", _TOKEN_IN_QUERY.sub(r"\1…", text))


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, keys: LinkKeys) -> None:
    """Refuse to listen on a non-loopback address while the link secret is weak or a known
    default (anyone could forge survey answers and unsubscribes)."""
    reason = weakness(keys)
    if reason and not is_loopback(host):
        raise UnsafeBind(
            f"refusing to listen on {host}: the link secret is weak ({reason}). Set "
            f"${ENV_SECRET} to a long random value (e.g. `python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'`), or remove it to use the generated "
            ".journeys/secret, or listen on 127.0.0.1 behind a proxy"
        )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port); OSError says what went wrong."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def _server(app: Any, *, log_level: str, access_log: bool) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=access_log,
        lifespan="off",
        server_header=False,
        proxy_headers=True,  # X-Forwarded-For from the proxy on this machine (docs/web.md)
    )
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())
    return uvicorn.Server(config)


@dataclass
class WebServer:
    """A server running in a background thread; :meth:`stop` shuts it down cleanly."""

    server: uvicorn.Server
    thread: threading.Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        """Where it listens, e.g. ``http://127.0.0.1:8000``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the requests in progress and stop; waits up to ``timeout`` seconds."""
        self.server.should_exit = True
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout)


def serve_in_background(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    log_level: str = "warning",
    access_log: bool = False,
) -> WebServer:
    """Start serving ``app`` in a daemon thread and return once it accepts connections."""
    sock = bind(host, port)
    server = _server(app, log_level=log_level, access_log=access_log)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="journeys-web", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    # server.started is set once uvicorn listens on the socket; the thread ends if it fails.
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"the web app did not start on {host}:{port} (see the log)")
        time.sleep(0.01)
    return WebServer(server, thread, host, sock.getsockname()[1])


def serve(
    app: Any,
    host: str,
    port: int,
    *,
    log_level: str = "info",
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``app`` in the foreground until Ctrl-C or SIGTERM (``journeys web``); ``ready``
    is told the URL once the port is bound (port 0 picks a free one)."""
    sock = bind(host, port)
    # uvicorn stops gracefully on SIGINT/SIGTERM and then raises the signal again for the
    # handler that was there before: a SIGTERM is a normal stop here (exit 0), Ctrl-C too.
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        if ready is not None:
            shown = f"[{host}]" if ":" in host else host
            ready(f"http://{shown}:{sock.getsockname()[1]}")
        _server(app, log_level=log_level, access_log=True).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
