"""Webhooks: an HTTPS POST per message, signed, for integrations and team notifications.

``format: json`` (default) posts :func:`webhook_body` (the message id, journey, step,
template, customer id, subject, text …) with two headers the receiver checks::

    X-Journeys-Timestamp: 1767225600
    X-Journeys-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret>

(:func:`signature`; reject a timestamp more than a few minutes old to stop replays).
``format: slack`` posts Slack incoming-webhook JSON (``{"text": …}``), so that a
``notify: {to: support}`` step alerts a Slack channel.

A webhook channel only posts to the URLs it was configured with: the ``channels.webhook``
URL and the URL of each webhook team (a team message names its team's URL as recipient).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from journeys.channels.base import ChannelError, OutboundMessage, SendResult
from journeys.channels.http import Parallel, Result, status_error
from journeys.clock import Clock, SystemClock

SIGNATURE_HEADER = "X-Journeys-Signature"
TIMESTAMP_HEADER = "X-Journeys-Timestamp"


@dataclass(frozen=True)
class WebhookTarget:
    """Where and how to post: the URL, ``json`` or ``slack``, and the signing secret."""

    url: str
    format: str = "json"
    secret: str | None = None


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 over ``timestamp.body`` with ``secret``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def webhook_body(message: OutboundMessage) -> dict[str, Any]:
    """The JSON a ``json`` webhook receives; ``message_id`` is the outbox id as text (the
    same id SendGrid events carry in ``custom_args``)."""
    return {
        "message_id": str(message.outbox_id),
        "journey": message.journey,
        "step": message.step,
        "template": message.template,
        "customer_id": message.customer_id,
        "kind": message.message_kind,
        "locale": message.locale,
        "subject": message.subject,
        "text": message.text,
        "due_at": message.to_dict()["due_at"],
    }


def slack_body(message: OutboundMessage) -> dict[str, Any]:
    """Slack incoming-webhook JSON: the subject in bold, then the text."""
    subject = " ".join(message.subject.split())
    text = f"*{subject}*\n{message.text.strip()}" if subject else message.text.strip()
    return {"text": text[:39000]}


class WebhookChannel:
    """Posts messages to configured webhook URLs (see the module docstring)."""

    provider = "webhook"

    def __init__(
        self,
        default: WebhookTarget | None = None,
        teams: Mapping[str, WebhookTarget] | None = None,
        *,
        timeout: float = 10.0,
        concurrency: int = 4,
        clock: Clock | None = None,
        name: str = "webhook",
    ) -> None:
        self.name = name
        self.default = default
        self.targets = {t.url: t for t in (teams or {}).values()}
        if default is not None:
            self.targets.setdefault(default.url, default)
        self.timeout = timeout
        self.concurrency = concurrency
        self._parallel = Parallel(concurrency, "webhook")
        self.clock = clock or SystemClock()
        self._client = httpx.Client(timeout=timeout)

    def __repr__(self) -> str:  # never the secrets
        return f"WebhookChannel(urls={sorted(self.targets)})"

    def close(self) -> None:
        """Stop the sending threads and close the connection pool."""
        self._parallel.close()
        self._client.close()

    def target_for(self, message: OutboundMessage) -> WebhookTarget | None:
        """The configured target a message goes to: its recipient when that is a configured
        URL (a team's), else the channel's own URL."""
        if message.recipient and message.recipient in self.targets:
            return self.targets[message.recipient]
        return self.default

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult | ChannelError]:
        """One POST per message, ``concurrency`` in flight."""
        return self._parallel.run(messages, self._send_one)

    def _send_one(self, message: OutboundMessage) -> Result:
        target = self.target_for(message)
        if target is None:
            where = message.recipient or "no URL"
            return ChannelError(f"{where} is not a configured webhook URL", retryable=False)
        data = slack_body(message) if target.format == "slack" else webhook_body(message)
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if target.secret:
            stamp = str(int(self.clock.now().timestamp()))
            headers[TIMESTAMP_HEADER] = stamp
            headers[SIGNATURE_HEADER] = signature(target.secret, stamp, body)
        try:
            response = self._client.post(target.url, content=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            return ChannelError(f"cannot reach {target.url}: {exc}", retryable=True)
        except (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            return ChannelError(
                f"no answer from {target.url} ({type(exc).__name__}): it may have been received",
                retryable=True,
                ambiguous=True,
            )
        except httpx.HTTPError as exc:
            return ChannelError(f"cannot post to {target.url}: {exc}", retryable=True)
        if response.status_code >= 300:
            now = self.clock.now().timestamp()
            return status_error(
                "the webhook", response.status_code, response.content, response.headers, now
            )
        return SendResult(provider_id=None, detail=str(response.status_code))
