"""The secret that signs links, and nothing else: where it comes from and whether it is weak.

There is no public default. In order:

1. ``$JOURNEYS_SECRET_KEY`` (and ``$JOURNEYS_OLD_SECRET_KEYS``: older secrets, separated by
   commas or blanks, that still verify links sent before a rotation);
2. else ``.journeys/secret`` at the project root (beside ``journeys.yaml``; the working directory
   when there is none): its first line is the secret, further lines are older secrets. The file
   is generated with a random secret on first use, readable by its owner only, in a folder that
   tells git to ignore it.

Several machines that sign or read links (workers, ``journeys web``) must share one secret:
set ``$JOURNEYS_SECRET_KEY`` on all of them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import secrets as stdlib_secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path

from journeys.runtime.links import LinkKeys
from journeys.settings import Settings

ENV_SECRET = "JOURNEYS_SECRET_KEY"
"""The environment variable holding the link secret."""
ENV_OLD_SECRETS = "JOURNEYS_OLD_SECRET_KEYS"
"""Older secrets that still verify links during a rotation's grace period."""
SECRET_FILE = Path(".journeys") / "secret"
"""Where a generated secret is kept, relative to the project root."""
MIN_LENGTH = 32
"""Shorter secrets are weak: ``journeys web`` refuses to listen beyond loopback with one."""

KNOWN_DEFAULTS = frozenset(
    {
        "change-me-in-production",
        "journeys-dev-secret",
        "change-me",
        "changeme",
        "secret",
        "password",
        "development",
    }
)
"""Secrets that were public defaults once, or that anyone would guess."""


class SecretError(RuntimeError):
    """The secret file cannot be read or written; the message names the file and the fix."""


def project_root(settings: Settings) -> Path:
    """The folder of ``journeys.yaml``, else the working directory."""
    return settings.path.parent if settings.path is not None else Path.cwd()


def link_keys(settings: Settings, environ: Mapping[str, str] | None = None) -> LinkKeys:
    """The link secrets of the project of ``settings`` (see the module docstring)."""
    env = os.environ if environ is None else environ
    # Called for every message rendered: the cache key is cheap (no path resolution).
    return _keys(project_root(settings), env.get(ENV_SECRET, ""), env.get(ENV_OLD_SECRETS, ""))


@functools.lru_cache(maxsize=32)
def _keys(root: Path, current: str, old: str) -> LinkKeys:
    previous = tuple(s for s in re.split(r"[\s,]+", old) if s)
    if current.strip():
        return LinkKeys(current.strip(), previous)
    lines = _read_or_create(root.resolve() / SECRET_FILE)
    return LinkKeys(lines[0], tuple(lines[1:]) + previous)


def _read_or_create(path: Path) -> list[str]:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        ignore = path.parent / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# journeys' local secrets: never commit them\n*\n")
        if not path.exists():
            _create(path)
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise SecretError(
            f"{path}: cannot read or create the link secret ({exc.strerror or exc}); "
            f"set ${ENV_SECRET} instead"
        ) from None
    if not lines:
        raise SecretError(f"{path} is empty: delete it to generate a new secret")
    return lines


def _create(path: Path) -> None:
    """Write a new random secret to ``path`` unless another process got there first: the
    secret is written to a private temporary file that is then hard-linked into place, so no
    reader ever sees a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret-")  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(stdlib_secrets.token_urlsafe(48) + "\n")
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(tmp, path)
    finally:
        os.unlink(tmp)


def weakness(keys: LinkKeys) -> str | None:
    """Why the current secret is weak (a known default, too short, one repeated character), or
    None when it is fine."""
    secret = keys.current
    if secret.lower() in KNOWN_DEFAULTS:
        return "it is a well-known default"
    if len(secret) < MIN_LENGTH:
        return f"it is shorter than {MIN_LENGTH} characters"
    if len(set(secret)) < 8:
        return "it repeats too few different characters"
    return None
