"""What HTTP providers' channels share: reading answers into errors, and sending in parallel.

- :func:`status_error`: an HTTP status becomes a :class:`ChannelError` that says whether a
  retry may help (429, 408 and 5xx yes; other 4xx no) and, for 429, how long the provider
  asked to wait (``Retry-After`` seconds or date, ``X-RateLimit-Reset`` epoch seconds).
- :class:`Parallel`: one provider call per message, ``concurrency`` at a time, results in
  order; once the provider says 429, the calls not yet started are not made (they come back
  ``attempted=False``) so a rate limit is not hammered.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from journeys.channels.base import ChannelError, SendResult

log = logging.getLogger("journeys.channels")

Result = SendResult | ChannelError
M = TypeVar("M")

_EPOCH_FLOOR = 1_000_000_000.0  # X-RateLimit-Reset values below this are seconds, not epochs


def _header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    value = getter(name)
    if value is None and isinstance(headers, Mapping):
        lowered = {str(k).lower(): v for k, v in headers.items()}
        value = lowered.get(name.lower())
    return None if value is None else str(value)


def retry_after_seconds(headers: Any, now_epoch: float) -> float | None:
    """How long the provider asked to wait: ``Retry-After`` (seconds or an HTTP date) or
    ``X-RateLimit-Reset`` (the epoch second the window resets, as SendGrid sends it)."""
    retry_after = _header(headers, "Retry-After")
    if retry_after:
        text = retry_after.strip()
        try:
            return max(0.0, float(text))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(text).timestamp() - now_epoch)
            except (TypeError, ValueError):
                pass
    reset = _header(headers, "X-RateLimit-Reset")
    if reset:
        try:
            value = float(reset.strip())
        except ValueError:
            return None
        return max(0.0, value - now_epoch) if value >= _EPOCH_FLOOR else max(0.0, value)
    return None


def provider_message(body: Any) -> str:
    """The provider's own explanation from an error body (SendGrid's ``errors[].message``,
    Twilio's ``message``), else the body's start."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:300]
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list):
            parts = []
            for error in errors:
                if isinstance(error, dict) and error.get("message"):
                    where = f" ({error['field']})" if error.get("field") else ""
                    parts.append(f"{error['message']}{where}")
            if parts:
                return "; ".join(parts)[:300]
        if data.get("message"):
            return str(data["message"])[:300]
    return " ".join(text.split())[:300]


def status_error(
    provider: str, status: int, body: Any, headers: Any, now_epoch: float
) -> ChannelError:
    """The :class:`ChannelError` for an HTTP error answer."""
    detail = provider_message(body)
    message = f"{provider} answered {status}" + (f": {detail}" if detail else "")
    if status == 429:
        wait = retry_after_seconds(headers, now_epoch)
        return ChannelError(message, retryable=True, retry_after=wait, status_code=status)
    retryable = status >= 500 or status == 408
    return ChannelError(message, retryable=retryable, status_code=status)


class Parallel:
    """Provider calls ``concurrency`` at a time on threads that live as long as the channel,
    so each keeps its connection to the provider open between batches."""

    def __init__(self, concurrency: int, name: str) -> None:
        self.concurrency = max(1, concurrency)
        self._name = name
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def run(self, messages: Sequence[M], send_one: Callable[[M], Result]) -> list[Result]:
        """``send_one`` for every message; results in order. After a rate-limited answer,
        calls not yet started are skipped (``attempted=False``)."""
        if not messages:
            return []
        stop: list[ChannelError] = []
        lock = threading.Lock()

        def run(message: M) -> Result:
            with lock:
                if stop:
                    limited = stop[0]
                    return ChannelError(
                        f"not sent: the provider rate-limited this batch ({limited})",
                        retryable=True,
                        retry_after=limited.retry_after,
                        attempted=False,
                    )
            try:
                result = send_one(message)
            except Exception as exc:  # a bug in one call must not lose the others' results
                log.exception("provider call failed unexpectedly")
                result = ChannelError(
                    f"{type(exc).__name__}: {exc}", retryable=True, ambiguous=True
                )
            if isinstance(result, ChannelError) and result.rate_limited:
                with lock:
                    stop.append(result)
            return result

        if self.concurrency == 1 or len(messages) == 1:
            return [run(m) for m in messages]
        return list(self._executor().map(run, messages))

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=self._name)
            return self._pool

    def close(self) -> None:
        """Stop the threads (their connections close with them)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
