"""SMS through Twilio's Messages API with the official ``twilio`` client.

The sender is a number (``from``) or a Messaging Service (``messaging_service_sid``).
Recipients are checked and normalised to E.164 before the call (a number Twilio cannot take
fails at once, without a request). Twilio answers ``201`` with a message SID (the provider id)
and a status such as ``queued``; ``429`` and ``5xx`` may succeed later; other ``4xx`` carry
Twilio's error code and message. ``host`` points the client at another API base URL (a local
test server); the account SID and auth token come from the environment.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from journeys.channels.base import ChannelError, OutboundMessage, SendResult
from journeys.channels.http import Parallel, Result, retry_after_seconds
from journeys.clock import Clock, SystemClock
from journeys.delivery.recipients import NoAddress, e164

API_HOST = "https://api.twilio.com"


class _HttpClient(TwilioHttpClient):  # type: ignore[misc]
    """Twilio's own HTTP client, sending to ``host`` instead of api.twilio.com and keeping
    the last answer's headers (a 429's ``Retry-After``)."""

    def __init__(self, host: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.host = host.rstrip("/")
        self.last_headers: Any = None

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        if self.host != API_HOST and url.startswith(API_HOST):
            url = self.host + url[len(API_HOST) :]
        response = super().request(method, url, *args, **kwargs)
        self.last_headers = response.headers
        return response


class TwilioChannel:
    """Sends SMS through Twilio; credentials come from the environment (never stored)."""

    provider = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        host: str = API_HOST,
        timeout: float = 10.0,
        concurrency: int = 4,
        clock: Clock | None = None,
        name: str = "sms",
    ) -> None:
        if bool(from_number) == bool(messaging_service_sid):
            raise ValueError("give exactly one of from_number or messaging_service_sid")
        self.name = name
        self.host = host
        self.timeout = timeout
        self.concurrency = concurrency
        self._parallel = Parallel(concurrency, "twilio")
        self.clock = clock or SystemClock()
        self._sender = (
            {"from_": from_number}
            if from_number
            else {"messaging_service_sid": messaging_service_sid}
        )
        self._credentials = (account_sid, auth_token)
        self._local = threading.local()  # one client (and HTTP session) per thread

    def __repr__(self) -> str:  # never the token
        return f"TwilioChannel(host={self.host!r}, sender={next(iter(self._sender.values()))!r})"

    def _client(self) -> tuple[Client, _HttpClient]:
        found = getattr(self._local, "client", None)
        if found is None:
            http = _HttpClient(self.host, self.timeout)
            found = (Client(*self._credentials, http_client=http), http)
            self._local.client = found
        return found

    def close(self) -> None:
        """Stop the sending threads and close their connections."""
        self._parallel.close()

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult | ChannelError]:
        """One ``Messages.create`` per message, ``concurrency`` in flight."""
        return self._parallel.run(messages, self._send_one)

    def _send_one(self, message: OutboundMessage) -> Result:
        try:
            to = e164(message.recipient or "", None)
        except NoAddress as exc:
            return ChannelError(f"skipped: {exc}", retryable=False)
        client, http = self._client()
        try:
            sent = client.messages.create(to=to, body=message.text, **self._sender)
        except TwilioRestException as exc:
            code = f" (Twilio error {exc.code})" if exc.code else ""
            text = f"Twilio answered {exc.status}: {exc.msg}{code}"
            if exc.status == 429:
                wait = retry_after_seconds(http.last_headers, self.clock.now().timestamp())
                return ChannelError(text, retryable=True, retry_after=wait, status_code=429)
            return ChannelError(
                text, retryable=exc.status >= 500 or exc.status == 408, status_code=exc.status
            )
        except requests.ConnectTimeout as exc:
            return ChannelError(f"cannot reach Twilio at {self.host}: {exc}", retryable=True)
        except (requests.ReadTimeout, requests.exceptions.ChunkedEncodingError):
            return _no_answer(self.timeout)
        except requests.ConnectionError as exc:
            if _never_connected(exc):
                return ChannelError(f"cannot reach Twilio at {self.host}: {exc}", retryable=True)
            return _no_answer(self.timeout)  # the connection broke after the request went out
        return SendResult(provider_id=sent.sid, detail=str(sent.status))


def _never_connected(exc: requests.ConnectionError) -> bool:
    """Whether the request failed before a connection existed (refused, unknown host)."""
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def _no_answer(timeout: float) -> ChannelError:
    return ChannelError(
        f"no answer from Twilio within {timeout:g}s: it may have been accepted",
        retryable=True,
        ambiguous=True,
    )
