"""Local-time arithmetic: customer time zones, DST, quiet hours and yearly dates.

All inputs and outputs are aware UTC datetimes; local times are computed with :mod:`zoneinfo`.
A local time that does not exist (the spring-forward gap) is moved forward by the gap, and an
ambiguous one (the autumn fold) takes its first occurrence, as calendar apps do.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=1024)
def zone(name: str | None, default: str = "UTC") -> ZoneInfo:
    """The ZoneInfo for ``name``, else ``default`` (unknown names are rejected at import)."""
    for candidate in (name, default, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def is_valid_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this machine knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def local_to_utc(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    """The UTC instant of local ``day`` at ``minutes`` after midnight in ``tz``."""
    naive = datetime.combine(day, time(minutes // 60, minutes % 60))
    # fold=0 reads a gap time with the offset before the change (02:30 → 03:30 after a
    # spring-forward) and an ambiguous time as its first occurrence (PEP 495).
    return naive.replace(tzinfo=tz, fold=0).astimezone(UTC)


def next_local_time(after: datetime, minutes: int, tz: ZoneInfo) -> datetime:
    """The first instant strictly after ``after`` whose local time in ``tz`` is ``minutes``."""
    day = after.astimezone(tz).date()
    for offset in range(0, 3):
        candidate = local_to_utc(day + timedelta(days=offset), minutes, tz)
        if candidate > after:
            return candidate
    raise AssertionError("unreachable: a local time recurs within three days")


def quiet_until(at: datetime, window: tuple[int, int] | None, tz: ZoneInfo) -> datetime | None:
    """If ``at`` falls in the local quiet window ``(start, end)`` minutes, when it ends; else None.

    ``(1260, 540)`` is ``21:00-09:00`` and wraps midnight.
    """
    if window is None:
        return None
    start, end = window
    local = at.astimezone(tz)
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else minute >= start or minute < end
    if not inside:
        return None
    return next_local_time(at, end, tz)


def yearly_date(month_day: str, year: int, feb29: str = "feb28") -> date | None:
    """The date of ``MM-DD`` in ``year``; Feb 29 falls on Feb 28 (or Mar 1) in common years."""
    month, day = int(month_day[:2]), int(month_day[3:5])
    try:
        return date(year, month, day)
    except ValueError:
        if (month, day) != (2, 29):
            return None
        return date(year, 3, 1) if feb29 == "mar1" else date(year, 2, 28)


def month_days_on(day: date, feb29: str = "feb28") -> list[str]:
    """The ``MM-DD`` values whose yearly date is ``day`` (Feb 28 serves Feb 29 in common years)."""
    keys = [day.strftime("%m-%d")]
    leap = day.year % 4 == 0 and (day.year % 100 != 0 or day.year % 400 == 0)
    if not leap and (
        (feb29 == "feb28" and (day.month, day.day) == (2, 28))
        or (feb29 == "mar1" and (day.month, day.day) == (3, 1))
    ):
        keys.append("02-29")
    return keys


def fire_instants(
    tz: ZoneInfo, at_minutes: int, offset_seconds: int, after: datetime, until: datetime
) -> list[tuple[date, datetime]]:
    """Local dates whose yearly fire instant lies in ``(after, until]``, with that instant.

    The fire instant for a date ``d`` is local ``d`` shifted by the whole days of the offset,
    at ``at_minutes`` plus the offset's remainder. Returns ``(d, instant)`` pairs where ``d``
    is the anniversary date itself (the customer's birthday in that year).
    """
    days, rem = divmod(offset_seconds, 86400)
    minutes = at_minutes + rem // 60
    extra_days, minutes = divmod(minutes, 1440)
    days += extra_days
    found: list[tuple[date, datetime]] = []
    first = (after - timedelta(days=2)).astimezone(tz).date()
    last = (until + timedelta(days=2)).astimezone(tz).date()
    current = first
    while current <= last:
        instant = local_to_utc(current, minutes, tz)
        if after < instant <= until:
            found.append((current - timedelta(days=days), instant))
        current += timedelta(days=1)
    return found


def next_fire_instant(
    tz: ZoneInfo, at_minutes: int, offset_seconds: int, after: datetime
) -> datetime:
    """The next instant after ``after`` at which a yearly date trigger could fire in ``tz``."""
    rem = offset_seconds % 86400
    minutes = (at_minutes + rem // 60) % 1440
    return next_local_time(after, minutes, tz)
