"""A keep-alive transport for the official SendGrid client (``python_http_client``).

The client opens a new connection, and so a new TLS handshake, for every request and builds
a fresh ``urllib`` opener each time: on the real API that costs more than sending the message.
:class:`KeepAliveClient` is the same client (same URLs, headers, versioning and error
classes) whose requests go over one persistent connection per thread. A connection the server
closed while idle is noticed before it is reused, so a request is never written into a dead
connection and then counted as "no answer".
"""

from __future__ import annotations

import http.client
import io
import json
import select
import socket
import threading
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import python_http_client
from python_http_client.client import Response
from python_http_client.exceptions import handle_error


class _Answer:
    """What ``Response`` reads from an answer."""

    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def getcode(self) -> int:
        return self.status

    def read(self) -> bytes:
        return self.body

    def info(self) -> http.client.HTTPMessage:
        return self.headers


class _Pool(threading.local):
    """One open connection per (scheme, host, port), per thread."""

    def __init__(self) -> None:
        self.connections: dict[tuple[str, str, int | None], http.client.HTTPConnection] = {}


class _OneWrite:
    """Sends a request's headers and body in one write (``http.client`` makes two): one
    packet and one wake-up of the server instead of two."""

    def _send_output(self, message_body: Any = None, encode_chunked: bool = False) -> None:
        if isinstance(message_body, bytes) and not encode_chunked:
            self._buffer.extend((b"", b""))  # type: ignore[attr-defined]
            head = b"\r\n".join(self._buffer)  # type: ignore[attr-defined]
            del self._buffer[:]  # type: ignore[attr-defined]
            self.send(head + message_body)  # type: ignore[attr-defined]
            return
        super()._send_output(message_body, encode_chunked)  # type: ignore[misc]


class _HTTPConnection(_OneWrite, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_OneWrite, http.client.HTTPSConnection):
    pass


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle connection was closed by the server (readable means EOF or junk)."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class KeepAliveClient(python_http_client.Client):  # type: ignore[misc]
    """``python_http_client.Client`` over persistent connections (see the module docstring)."""

    def __init__(self, *args: Any, pool: _Pool | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pool = pool or _Pool()

    def _build_client(self, name: str | None = None) -> KeepAliveClient:
        url_path = [*self._url_path, name] if name else self._url_path
        return KeepAliveClient(
            host=self.host,
            version=self._version,
            request_headers=self.request_headers,
            url_path=url_path,
            append_slash=self.append_slash,
            timeout=self.timeout,
            pool=self._pool,
        )

    def __getattr__(self, name: str) -> Any:
        if name not in self.methods:
            return super().__getattr__(name)
        method = name.upper()

        def http_request(
            request_body: Any = None,
            query_params: Any = None,
            request_headers: Any = None,
            timeout: float | None = None,
            **_: Any,
        ) -> Response:
            # As python_http_client's own http_request, without a new opener per call.
            headers = dict(self.request_headers)
            if request_headers:
                headers.update(request_headers)
            data = None
            if request_body is not None:
                if headers.get("Content-Type", "application/json") != "application/json":
                    data = request_body.encode("utf-8")
                else:
                    headers.setdefault("Content-Type", "application/json")
                    data = json.dumps(request_body).encode("utf-8")
            request = urllib.request.Request(
                self._build_url(query_params), headers=headers, data=data, method=method
            )
            return Response(self._make_request(None, request, timeout))

        return http_request

    def _make_request(
        self, opener: Any, request: urllib.request.Request, timeout: Any = None
    ) -> Any:
        timeout = timeout or self.timeout
        parts = urlsplit(request.full_url)
        key = (parts.scheme, parts.hostname or "", parts.port)
        conn = self._pool.connections.get(key)
        if conn is not None and _dropped(conn):
            conn.close()
            conn = None
        try:
            if conn is None:
                factory = _HTTPSConnection if parts.scheme == "https" else _HTTPConnection
                conn = factory(parts.hostname or "", parts.port, timeout=timeout)
                conn.connect()
                # Small requests go out at once instead of waiting for the previous ACK.
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._pool.connections[key] = conn
            elif conn.sock is not None:
                conn.sock.settimeout(timeout)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            conn.request(request.get_method(), path, request.data, dict(request.header_items()))
        except OSError as exc:
            # Connecting or sending failed: the server did not get the whole request (as urllib).
            self._forget(key)
            raise urllib.error.URLError(exc) from None
        try:
            response = conn.getresponse()
            body = response.read()
        except BaseException:
            self._forget(key)
            raise
        if response.will_close:
            self._forget(key)
        if response.status >= 400:
            error = urllib.error.HTTPError(
                request.full_url,
                response.status,
                response.reason,
                response.headers,
                io.BytesIO(body),
            )
            raise handle_error(error)
        return _Answer(response.status, response.headers, body)

    def _forget(self, key: tuple[str, str, int | None]) -> None:
        conn = self._pool.connections.pop(key, None)
        if conn is not None:
            conn.close()
