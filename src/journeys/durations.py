"""Durations (``30m``, ``24h``, ``3d``, ``2w``, ISO 8601 ``P3D``) and times of day (``09:00``)."""

from __future__ import annotations

import re

_COMPOUND = re.compile(r"^(?:\d+[smhdw])+$")
_ISO = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$"
)
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")

DURATION_HELP = "use a number and a unit (30m, 24h, 3d, 2w) or ISO 8601 (P3D, PT12H)"
TIME_HELP = "use a 24-hour local time HH:MM, for example 09:00"
MAX_DAYS = 3650
"""The longest duration a journey may use (ten years): longer is a typo, and far enough out
it would not fit in a date at all."""


class DurationError(ValueError):
    """A duration or time of day that cannot be read; the message says how to write it."""


def parse_duration(text: str | int) -> int:
    """Return the number of seconds in ``text``; raise :class:`DurationError` when malformed.

    Accepts ``30m``, ``24h``, ``3d``, ``2w``, compounds such as ``1d12h``, and ISO 8601
    durations without years or months (their length varies).
    """
    if isinstance(text, bool):
        raise DurationError(f"{text!r} is not a duration; {DURATION_HELP}")
    if isinstance(text, int):
        raise DurationError(f"{text!r} has no unit; {DURATION_HELP}")
    raw = str(text).strip()
    seconds = _seconds(raw)
    if seconds > MAX_DAYS * 86400:
        raise DurationError(f"duration {raw!r} is longer than {MAX_DAYS}d (ten years)")
    return seconds


def _seconds(raw: str) -> int:
    compact = raw.replace(" ", "")
    if compact and _COMPOUND.match(compact):
        seconds = sum(int(n) * _UNIT[u] for n, u in re.findall(r"(\d+)([smhdw])", compact))
        if seconds > 0:
            return seconds
        raise DurationError(f"duration {raw!r} is zero; a wait must be positive")
    iso = _ISO.match(raw.upper())
    if iso and raw.upper() not in ("P", "PT") and any(iso.groupdict().values()):
        parts = {k: int(v or 0) for k, v in iso.groupdict().items()}
        seconds = (
            parts["w"] * 604800
            + parts["d"] * 86400
            + parts["h"] * 3600
            + parts["m"] * 60
            + parts["s"]
        )
        if seconds > 0:
            return seconds
        raise DurationError(f"duration {raw!r} is zero; a wait must be positive")
    raise DurationError(f"{raw!r} is not a duration; {DURATION_HELP}")


def parse_time_of_day(text: str) -> int:
    """Return minutes after midnight for ``HH:MM``; raise :class:`DurationError` when malformed."""
    match = _TIME.match(str(text).strip())
    if not match:
        raise DurationError(f"{text!r} is not a time of day; {TIME_HELP}")
    return int(match.group(1)) * 60 + int(match.group(2))


def format_duration(seconds: int) -> str:
    """Seconds as a marketer writes them: ``24h``, ``48h``, ``3d``, ``7d``, ``2w``, ``90m``."""
    if seconds % 604800 == 0 and seconds >= 14 * 86400:
        return f"{seconds // 604800}w"
    if seconds % 86400 == 0 and seconds >= 3 * 86400:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def format_time_of_day(minutes: int) -> str:
    """``540`` → ``09:00``."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
