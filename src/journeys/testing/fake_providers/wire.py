"""Just enough HTTP/1.1 for the fake providers: read a request, write an answer."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import unquote

Answer = tuple[int, dict[str, str], bytes, str]
"""An answer: (status, extra headers, body, content type)."""

_REASONS = {200: "OK", 201: "Created", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized"}
_REASONS |= {404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}


def json_answer(status: int, data: Any, extra: dict[str, str] | None = None) -> Answer:
    """An answer with ``data`` as its JSON body."""
    return status, dict(extra or {}), json.dumps(data).encode(), "application/json"


def response(status: int, extra: dict[str, str], body: bytes, ctype: str, close: bool) -> bytes:
    """The bytes of an HTTP/1.1 response."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines += [f"Content-Type: {ctype}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    lines.append(f"Connection: {'close' if close else 'keep-alive'}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, str, dict[str, str], bytes] | None:
    """(method, path, lower-cased headers, body) of the next request; None at end of stream."""
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
