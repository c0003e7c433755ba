"""Email through SendGrid's v3 API (``POST /v3/mail/send``) with the official ``sendgrid`` client.

One request per message, so that each message's answer is its own: ``202`` (accepted; the
``X-Message-Id`` header is the provider id), ``429`` (rate limited: the wait comes from
``X-RateLimit-Reset``), ``5xx`` (retry later), other ``4xx`` (refused, with SendGrid's message).
The request carries ``categories`` (journey and step) and ``custom_args`` with only our
message id, so SendGrid's event webhook maps back to the outbox row without any personal data
leaving in metadata. ``sandbox: true`` turns on SendGrid's sandbox mode (validated, not
delivered). ``host`` points the client elsewhere: the EU data-residency endpoint
(``https://api.eu.sendgrid.com``) or a local test server.
"""

from __future__ import annotations

import functools
import http.client
import urllib.error
from collections.abc import Sequence
from email.utils import parseaddr
from typing import Any

import sendgrid
from python_http_client import exceptions as http_errors

from journeys.channels.base import ChannelError, OutboundMessage, SendResult
from journeys.channels.http import Parallel, Result, status_error
from journeys.channels.keepalive import KeepAliveClient
from journeys.clock import Clock, SystemClock

DEFAULT_HOST = "https://api.sendgrid.com"
_NOT_HEADERS = frozenset({"from", "reply-to", "to", "subject", "x-journeys-test"})
"""Headers SendGrid wants as fields of the request instead (it refuses them in ``headers``)."""


@functools.lru_cache(maxsize=256)
def _address(header: str) -> tuple[str, str]:
    """``Name <email>`` → (name, email); the same few senders are parsed once."""
    return parseaddr(header)


def mail_body(message: OutboundMessage, *, sandbox: bool = False) -> dict[str, Any]:
    """The v3 ``mail/send`` request for one message."""
    name, email = _address(message.headers.get("From", ""))
    body: dict[str, Any] = {
        "personalizations": [{"to": [{"email": message.recipient}]}],
        "from": {"email": email, **({"name": name} if name else {})},
        "subject": message.subject,
        "content": [{"type": "text/plain", "value": message.text or " "}]
        + ([{"type": "text/html", "value": message.html}] if message.html else []),
        "categories": list(dict.fromkeys([message.journey, message.step])),
        "custom_args": {"message_id": str(message.outbox_id)},
    }
    reply_name, reply_email = _address(message.headers.get("Reply-To", ""))
    if reply_email:
        body["reply_to"] = {"email": reply_email, **({"name": reply_name} if reply_name else {})}
    headers = {k: v for k, v in message.headers.items() if k.lower() not in _NOT_HEADERS}
    if message.headers.get("X-Journeys-Test"):
        headers["X-Journeys-Test"] = message.headers["X-Journeys-Test"]
        body["categories"].append("test")
    if headers:
        body["headers"] = headers
    if sandbox:
        body["mail_settings"] = {"sandbox_mode": {"enable": True}}
    return body


class SendGridChannel:
    """Sends email through SendGrid; ``api_key`` comes from the environment (never stored)."""

    provider = "sendgrid"

    def __init__(
        self,
        api_key: str,
        *,
        host: str = DEFAULT_HOST,
        sandbox: bool = False,
        timeout: float = 10.0,
        concurrency: int = 8,
        clock: Clock | None = None,
        name: str = "email",
    ) -> None:
        self.name = name
        self.host = host.rstrip("/")
        self.sandbox = sandbox
        self.timeout = timeout
        self.concurrency = concurrency
        self._parallel = Parallel(concurrency, "sendgrid")
        self.clock = clock or SystemClock()
        self._client = sendgrid.SendGridAPIClient(api_key=api_key, host=self.host)
        # The same client over persistent connections (see channels.keepalive).
        self._client.client = KeepAliveClient(
            host=self.host, request_headers=self._client._default_headers, version=3
        )

    def __repr__(self) -> str:  # never the key
        return f"SendGridChannel(host={self.host!r}, sandbox={self.sandbox})"

    def close(self) -> None:
        """Stop the sending threads and close their connections."""
        self._parallel.close()

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult | ChannelError]:
        """One ``mail/send`` request per message, ``concurrency`` in flight."""
        return self._parallel.run(messages, self._send_one)

    def _send_one(self, message: OutboundMessage) -> Result:
        if not message.recipient:
            return ChannelError("no recipient address", retryable=False)
        body = mail_body(message, sandbox=self.sandbox)
        try:
            response = self._client.client.mail.send.post(request_body=body, timeout=self.timeout)
        except http_errors.HTTPError as exc:
            return status_error(
                "SendGrid", exc.status_code, exc.body, exc.headers, self.clock.now().timestamp()
            )
        except urllib.error.URLError as exc:
            # Raised while connecting or sending the request: SendGrid never got all of it.
            return ChannelError(
                f"cannot reach SendGrid at {self.host}: {exc.reason}", retryable=True
            )
        except (TimeoutError, http.client.HTTPException, ConnectionError) as exc:
            # The request went out; the answer did not come back: it may have been accepted.
            what = "no answer" if isinstance(exc, TimeoutError) else type(exc).__name__
            return ChannelError(
                f"{what} from SendGrid within {self.timeout:g}s: it may have been accepted",
                retryable=True,
                ambiguous=True,
            )
        headers = response.headers
        provider_id = headers.get("X-Message-Id") if headers is not None else None
        return SendResult(provider_id=provider_id, detail=str(response.status_code))
