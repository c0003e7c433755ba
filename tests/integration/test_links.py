"""Signed links and their secret: strict tokens, expiry, rotation, no public default."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from itsdangerous.encoding import base64_decode

from journeys.runtime.links import (
    SURVEY,
    UNSUBSCRIBE,
    BadToken,
    LinkKeys,
    read_survey_token,
    read_unsubscribe_token,
    sign,
    survey_token,
    survey_url,
    unsubscribe_token,
    unsubscribe_url,
    verify,
)
from journeys.secrets import SECRET_FILE, SecretError, link_keys, weakness
from journeys.settings import Settings
from journeys.web.server import UnsafeBind, check_bind

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
KEYS = LinkKeys("k" * 10 + "Qw7-Zp2_Lm9xYt4Rv8" * 3)


def test_a_token_verifies_only_for_its_purpose_and_secret() -> None:
    token = survey_token(KEYS, 42, "post-purchase", "nps", NOW)
    payload = verify(KEYS, SURVEY, token, max_age=60, now=NOW)
    assert read_survey_token(payload).enrollment_id == 42
    with pytest.raises(BadToken):
        verify(KEYS, UNSUBSCRIBE, token, max_age=None, now=NOW)
    with pytest.raises(BadToken):
        verify(LinkKeys("another-secret-" + "a1" * 20), SURVEY, token, max_age=60, now=NOW)
    with pytest.raises(BadToken):
        read_unsubscribe_token(payload)


def test_tokens_decode_strictly() -> None:
    token = unsubscribe_token(KEYS, "c-1", "email", None, NOW)
    payload, stamp, signature = token.split(".")
    # The signature's last base64 character carries 2 unused bits: another character with the
    # same used bits decodes to the same bytes, so a lax decoder would accept it.
    tail = signature[-1]
    twin = next(
        c
        for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        if c != tail and base64_decode(signature[:-1] + c) == base64_decode(signature)
    )
    forms = [
        token + "==",
        token + "=",
        token + ".",
        token + "%00",
        token + " ",
        "\t" + token,
        f"{payload}.{stamp}.{signature[:-1]}{twin}",
        f"{payload}=.{stamp}.{signature}",
        f"{payload}.{stamp}.{signature}.x",
        token.replace(".", ".."),
        token.upper(),
    ]
    for form in forms:
        with pytest.raises(BadToken):
            verify(KEYS, UNSUBSCRIBE, form, max_age=None, now=NOW)
    assert verify(KEYS, UNSUBSCRIBE, token, max_age=None, now=NOW)["c"] == "c-1"


def test_expiry_keeps_the_payload_for_the_page() -> None:
    token = survey_token(KEYS, 7, "j", "s", NOW)
    assert verify(KEYS, SURVEY, token, max_age=86400, now=NOW + timedelta(hours=23))
    with pytest.raises(BadToken) as expired:
        verify(KEYS, SURVEY, token, max_age=86400, now=NOW + timedelta(days=2))
    assert expired.value.expired
    assert expired.value.payload == {"e": 7, "j": "j", "s": "s"}
    forged = sign(LinkKeys("not-our-secret-" + "b2" * 20), SURVEY, {"e": 7}, NOW)
    with pytest.raises(BadToken) as bad:
        verify(KEYS, SURVEY, forged, max_age=1, now=NOW + timedelta(days=2))
    assert not bad.value.expired and bad.value.payload is None


def test_rotation_signs_with_the_new_secret_and_still_reads_old_links() -> None:
    old = LinkKeys("old-secret-" + "c3" * 20)
    rotated = LinkKeys("new-secret-" + "d4" * 20, previous=(old.current,))
    before = survey_token(old, 1, "j", "s", NOW)
    after = survey_token(rotated, 1, "j", "s", NOW)
    assert verify(rotated, SURVEY, before, max_age=None, now=NOW)["e"] == 1
    with pytest.raises(BadToken):
        verify(old, SURVEY, after, max_age=None, now=NOW)  # signed with the new one
    dropped = LinkKeys(rotated.current)  # the grace period is over
    with pytest.raises(BadToken):
        verify(dropped, SURVEY, before, max_age=None, now=NOW)


def test_links_of_a_project_use_its_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNEYS_SECRET_KEY", raising=False)
    monkeypatch.delenv("JOURNEYS_OLD_SECRET_KEYS", raising=False)
    settings = Settings(base_url="https://crm.example.com/", path=tmp_path / "journeys.yaml")
    url = survey_url(settings, 5, "post-purchase", "nps", at=NOW)
    assert url.startswith("https://crm.example.com/survey?token=")
    keys = link_keys(settings)
    assert keys.current == (tmp_path / SECRET_FILE).read_text().strip()
    token = url.split("token=")[1]
    assert read_survey_token(verify(keys, SURVEY, token, max_age=None, now=NOW)).step == "nps"
    first = unsubscribe_url(settings, "c-1", at=NOW)
    assert first == unsubscribe_url(settings, "c-1", at=NOW + timedelta(hours=5))
    assert first != unsubscribe_url(settings, "c-1", at=NOW + timedelta(days=1))
    assert "c-1@" not in first and "/unsubscribe/" in first
    topic = unsubscribe_url(settings, "c-1", at=NOW, topic="offers")
    payload = verify(keys, UNSUBSCRIBE, topic.rsplit("/", 1)[1], max_age=None, now=NOW)
    assert read_unsubscribe_token(payload).topic == "offers"


def test_the_generated_secret_is_private_random_and_ignored_by_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOURNEYS_SECRET_KEY", raising=False)
    settings = Settings(path=tmp_path / "journeys.yaml")
    keys = link_keys(settings)
    path = tmp_path / SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(keys.current) >= 60 and weakness(keys) is None
    assert (tmp_path / ".journeys" / ".gitignore").read_text().strip().endswith("*")
    other = tmp_path / "other"
    other.mkdir()
    assert link_keys(Settings(path=other / "journeys.yaml")).current != keys.current
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    status = subprocess.run(
        ["git", "-C", str(tmp_path), "status", "--porcelain", "--ignored", "--untracked=all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "!! .journeys/secret" in status


def test_processes_starting_together_share_one_secret(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from journeys.secrets import link_keys;"
        "from journeys.settings import Settings;"
        "print(link_keys(Settings(path=Path(sys.argv[1]) / 'journeys.yaml')).current)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEYS_")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
        )
        for _ in range(6)
    ]
    secrets = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(secrets) == 1 and all(secrets)


def test_environment_secret_wins_and_lists_old_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOURNEYS_SECRET_KEY", "from-the-environment-" + "e5" * 10)
    monkeypatch.setenv("JOURNEYS_OLD_SECRET_KEYS", "old-one, old-two")
    keys = link_keys(Settings(path=tmp_path / "journeys.yaml"))
    assert keys.current.startswith("from-the-environment-")
    assert keys.previous == ("old-one", "old-two")
    assert not (tmp_path / SECRET_FILE).exists()


def test_an_unusable_secret_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOURNEYS_SECRET_KEY", raising=False)
    (tmp_path / ".journeys").mkdir()
    (tmp_path / SECRET_FILE).write_text("\n")
    with pytest.raises(SecretError, match="is empty: delete it"):
        link_keys(Settings(path=tmp_path / "journeys.yaml"))
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / ".journeys").write_text("a file where the folder should be")
    with pytest.raises(SecretError, match="set \\$JOURNEYS_SECRET_KEY instead"):
        link_keys(Settings(path=blocked / "journeys.yaml"))


def test_weak_secrets_may_not_listen_beyond_this_machine() -> None:
    for weak in ("change-me-in-production", "journeys-dev-secret", "short", "a" * 40):
        keys = LinkKeys(weak)
        assert weakness(keys)
        check_bind("127.0.0.1", keys)
        check_bind("::1", keys)
        check_bind("localhost", keys)
        for host in ("0.0.0.0", "192.0.2.10", "::"):
            with pytest.raises(UnsafeBind, match="weak"):
                check_bind(host, keys)
    check_bind("0.0.0.0", KEYS)


def test_signing_is_thread_safe_and_deterministic() -> None:
    tokens: set[str] = set()
    lock = threading.Lock()

    def work() -> None:
        made = {survey_token(KEYS, 1, "j", "s", NOW) for _ in range(200)}
        with lock:
            tokens.update(made)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tokens) == 1
