"""Email over SMTP (standard library ``smtplib``) for self-hosted mail servers.

``security``: ``starttls`` (default, port 587: upgrade the connection before logging in),
``ssl`` (port 465: TLS from the first byte) or ``none`` (a relay on this machine). The user
logs in when ``user`` is set, with the password from the environment. One connection serves a
whole batch; each message is its own SMTP transaction, so each gets its own answer: a 4xx
reply may succeed later, a 5xx never will, and a connection lost after the message data went
out leaves it in doubt (the server may have queued it).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from journeys.channels.base import ChannelError, OutboundMessage, SendResult
from journeys.clock import Clock, SystemClock

MESSAGE_ID_HEADER = "X-Journeys-Message-Id"


def build_message(message: OutboundMessage, *, now_clock: Clock) -> EmailMessage:
    """The MIME message: text and HTML alternatives, our headers, our message id."""
    mail = EmailMessage()
    sender = message.headers.get("From", "")
    _, address = parseaddr(sender)
    mail["From"] = sender
    mail["To"] = message.recipient or ""
    mail["Subject"] = message.subject
    mail["Date"] = format_datetime(now_clock.now())
    mail["Message-ID"] = make_msgid(f"journeys.{message.outbox_id}", address.split("@")[-1] or None)
    mail[MESSAGE_ID_HEADER] = str(message.outbox_id)
    for name, value in message.headers.items():
        if name.lower() not in ("from", "to", "subject", "date", "message-id"):
            mail[name] = value
    mail.set_content(message.text or " ")
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    return mail


def _reply(code: int, text: bytes | str) -> str:
    detail = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(detail.split())}"


def _answer_error(phase: str, code: int, text: bytes | str) -> ChannelError:
    """A refused MAIL, RCPT or DATA: 4xx is temporary, 5xx permanent."""
    return ChannelError(
        f"SMTP server refused {phase}: {_reply(code, text)}",
        retryable=400 <= code < 500,
        status_code=code,
    )


class SmtpChannel:
    """Sends email through an SMTP server; the password comes from the environment."""

    provider = "smtp"

    def __init__(
        self,
        host: str,
        port: int = 587,
        *,
        user: str | None = None,
        password: str | None = None,
        security: str = "starttls",
        timeout: float = 10.0,
        clock: Clock | None = None,
        tls_context: ssl.SSLContext | None = None,
        name: str = "email",
    ) -> None:
        self.name = name
        self.host, self.port = host, port
        self.user, self._password = user, password
        self.security = security
        self.timeout = timeout
        self.clock = clock or SystemClock()
        self.tls_context = tls_context or ssl.create_default_context()

    def __repr__(self) -> str:  # never the password
        return f"SmtpChannel({self.host!r}, {self.port}, user={self.user!r}, {self.security})"

    def _connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            server: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self.tls_context
            )
        else:
            server = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.security == "starttls":
                server.starttls(context=self.tls_context)
        if self.user:
            server.login(self.user, self._password or "")
        server.ehlo_or_helo_if_needed()  # mail() below does not greet on its own
        return server

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult | ChannelError]:
        """One connection for the batch, one SMTP transaction per message."""
        if not messages:
            return []
        try:
            server = self._connect()
        except smtplib.SMTPAuthenticationError as exc:
            error = _answer_error("the login", exc.smtp_code, exc.smtp_error)
            error.retryable = False
            return [error for _ in messages]
        except (smtplib.SMTPException, OSError) as exc:
            reason = f"cannot connect to SMTP server {self.host}:{self.port}: {exc}"
            return [ChannelError(reason, retryable=True, attempted=False) for _ in messages]
        results: list[SendResult | ChannelError] = []
        try:
            for message in messages:
                results.append(self._send_one(server, message))
                if isinstance(results[-1], ChannelError) and results[-1].ambiguous:
                    break  # the connection is gone
        finally:
            try:
                server.quit()
            except (smtplib.SMTPException, OSError):
                server.close()
        lost = "not sent: the SMTP connection was lost earlier in the batch"
        results += [
            ChannelError(lost, retryable=True, attempted=False) for _ in messages[len(results) :]
        ]
        return results

    def _send_one(
        self, server: smtplib.SMTP, message: OutboundMessage
    ) -> SendResult | ChannelError:
        if not message.recipient:
            return ChannelError("no recipient address", retryable=False)
        mail = build_message(message, now_clock=self.clock)
        _, sender = parseaddr(mail["From"])
        try:
            code, text = server.mail(sender)
            if code != 250:
                server.rset()
                return _answer_error("the sender", code, text)
            code, text = server.rcpt(message.recipient)
            if code not in (250, 251):
                server.rset()
                return _answer_error("the recipient", code, text)
        except (smtplib.SMTPException, OSError) as exc:
            # Nothing was queued before DATA.
            return ChannelError(f"SMTP error before the message: {exc}", retryable=True)
        try:
            code, text = server.data(mail.as_bytes())
        except smtplib.SMTPDataError as exc:
            return _answer_error("the message", exc.smtp_code, exc.smtp_error)
        except (smtplib.SMTPException, OSError) as exc:
            return ChannelError(
                f"SMTP connection lost while sending the message ({exc}): it may have been queued",
                retryable=True,
                ambiguous=True,
            )
        if code != 250:
            return _answer_error("the message", code, text)
        return SendResult(provider_id=mail["Message-ID"], detail=_reply(code, text))
