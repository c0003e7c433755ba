"""Channel interface, registry, console and file channels."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from journeys.channels import (
    Channel,
    ChannelError,
    ChannelRegistry,
    ConsoleChannel,
    FileChannel,
    OutboundMessage,
    SendResult,
    UnknownChannelError,
)
from journeys.channels.base import LOGGED

DUE = datetime(2026, 3, 1, 10, 15, tzinfo=UTC)


def _message(outbox_id: int = 1, **changes: object) -> OutboundMessage:
    message = OutboundMessage(
        outbox_id=outbox_id,
        customer_id="c-1001",
        journey="abandoned-cart",
        step="remind",
        template="cart_reminder",
        channel="email",
        recipient="ann@example.com",
        subject="Your cart misses you",
        html="<p>Come back, <b>Ann</b></p>",
        text="Come back, Ann",
        locale="ko",
        due_at=DUE,
    )
    return replace(message, **changes)  # type: ignore[arg-type]


class _Recording:
    """A minimal channel written against the protocol only."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[OutboundMessage] = []

    def send_batch(self, messages: Sequence[OutboundMessage]) -> list[SendResult | ChannelError]:
        self.sent.extend(messages)
        return [SendResult() for _ in messages]


# ----------------------------------------------------------------------------------- base


def test_outbound_message_is_frozen_and_serialisable() -> None:
    message = _message(headers={"List-Unsubscribe": "<https://x/u>"})
    with pytest.raises(AttributeError):
        message.subject = "changed"  # type: ignore[misc]
    data = message.to_dict()
    assert data["due_at"] == "2026-03-01T10:15:00Z"
    assert data["headers"] == {"List-Unsubscribe": "<https://x/u>"}
    assert set(data) == {
        "outbox_id",
        "customer_id",
        "journey",
        "step",
        "template",
        "channel",
        "recipient",
        "subject",
        "html",
        "text",
        "locale",
        "due_at",
        "headers",
        "message_kind",
    }
    assert _message().headers == {} and _message().headers is not _message().headers


def test_to_dict_converts_due_at_to_utc() -> None:
    seoul = timezone(timedelta(hours=9))
    assert _message(due_at=DUE.astimezone(seoul)).to_dict()["due_at"] == "2026-03-01T10:15:00Z"


def test_channel_error_carries_retryable() -> None:
    assert ChannelError("rate limited", retryable=True).retryable is True
    assert ChannelError("bad address").retryable is False
    assert "retryable=True" in repr(ChannelError("x", retryable=True))


def test_channel_error_carries_what_the_provider_said() -> None:
    limited = ChannelError("429", retryable=True, retry_after=2.5, status_code=429)
    assert limited.rate_limited and limited.retry_after == 2.5 and limited.attempted
    assert "retry_after=2.5" in repr(limited)
    timeout = ChannelError("no answer", retryable=True, ambiguous=True)
    assert timeout.ambiguous and not timeout.rate_limited and "ambiguous=True" in repr(timeout)
    skipped = ChannelError("not sent", retryable=True, attempted=False)
    assert "attempted=False" in repr(skipped)


def test_builtin_channels_satisfy_the_protocol(tmp_path: Path) -> None:
    for channel in (ConsoleChannel(), FileChannel(tmp_path / "out.jsonl"), _Recording("x")):
        assert isinstance(channel, Channel)


# ------------------------------------------------------------------------------- registry


def test_registry_maps_names_to_channels() -> None:
    email = _Recording("email")
    console = ConsoleChannel()
    registry = ChannelRegistry({"email": email, "console": console})
    registry.register("support", email)  # a team routed to the email channel
    assert registry["email"] is email
    assert registry.get_channel("support") is email
    assert registry.names() == ["console", "email", "support"]
    assert "sms" not in registry and registry.get("sms") is None
    assert len(registry) == 3


def test_registry_unknown_name_lists_configured_channels() -> None:
    registry = ChannelRegistry({"email": _Recording("email"), "console": ConsoleChannel()})
    with pytest.raises(UnknownChannelError) as caught:
        registry.get_channel("sms")
    error = caught.value
    assert str(error) == "unknown channel 'sms'; configured channels: console, email"
    assert error.retryable is False
    assert isinstance(error, ChannelError) and isinstance(error, KeyError)
    assert error.configured == ("console", "email")

    with pytest.raises(UnknownChannelError, match="configured channels: none"):
        ChannelRegistry().get_channel("email")


def test_registry_rejects_duplicates_and_non_channels() -> None:
    registry = ChannelRegistry({"email": _Recording("email")})
    with pytest.raises(ValueError, match="already registered"):
        registry.register("email", _Recording("email"))
    replacement = _Recording("email")
    registry.register("email", replacement, replace=True)
    assert registry["email"] is replacement
    with pytest.raises(TypeError, match="send_batch"):
        registry.register("sms", object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        registry.register("", _Recording(""))


# -------------------------------------------------------------------------------- console


def test_console_prints_one_line_per_message_without_html() -> None:
    stream = io.StringIO()
    channel = ConsoleChannel(stream)
    results = channel.send_batch([_message(1), _message(2, recipient=None, locale="")])
    assert [r.provider_id for r in results if isinstance(r, SendResult)] == [
        "console:1",
        "console:2",
    ]
    # A console reaches nobody: it logs, it never "sends".
    assert {r.status for r in results if isinstance(r, SendResult)} == {LOGGED}
    lines = stream.getvalue().splitlines()
    assert lines == [
        "2026-03-01T10:15:00Z  #1 abandoned-cart/remind  cart_reminder -> c-1001 <ann@example.com>"
        ' [email, ko]  "Your cart misses you"',
        "2026-03-01T10:15:00Z  #2 abandoned-cart/remind  cart_reminder -> c-1001 [email, -]"
        '  "Your cart misses you"',
    ]
    assert "<p>" not in stream.getvalue()


def test_console_defaults_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    ConsoleChannel().send_batch([_message(subject="Multi\nline   subject")])
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and '"Multi line subject"' in out


def test_console_write_failure_is_retryable() -> None:
    stream = io.StringIO()
    stream.close()
    results = ConsoleChannel(stream).send_batch([_message(1), _message(2)])
    assert all(isinstance(r, ChannelError) and r.retryable for r in results)
    assert len(results) == 2


# ----------------------------------------------------------------------------------- file


def test_file_channel_appends_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "outbox.jsonl"
    channel = FileChannel(path)
    assert channel.name == "file"
    first = channel.send_batch([_message(1), _message(2, subject="안녕하세요")])
    second = channel.send_batch([_message(3)])
    assert channel.send_batch([]) == []
    assert [r.provider_id for r in [*first, *second] if isinstance(r, SendResult)] == [
        "file:1",
        "file:2",
        "file:3",
    ]
    assert {r.status for r in [*first, *second] if isinstance(r, SendResult)} == {LOGGED}
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["outbox_id"] for r in records] == [1, 2, 3]
    assert records[0] == _message(1).to_dict()
    assert records[0]["html"] == "<p>Come back, <b>Ann</b></p>"
    assert records[1]["subject"] == "안녕하세요"
    assert records[2]["due_at"] == "2026-03-01T10:15:00Z"


def test_file_channel_unwritable_path_is_retryable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    results = FileChannel(blocker / "outbox.jsonl").send_batch([_message(1), _message(2)])
    assert len(results) == 2
    assert all(isinstance(r, ChannelError) and r.retryable for r in results)
