"""The period a report covers, and the calendar buckets its trends use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from journeys.clock import as_utc, iso, parse_instant
from journeys.store.kpis import Scope

Unit = Literal["day", "week", "month"]


class PeriodError(ValueError):
    """A --from/--to that is not a date or time, or an empty period."""


@dataclass(frozen=True)
class Period:
    """``start <= t < end`` (UTC)."""

    start: datetime
    end: datetime

    @property
    def unit(self) -> Unit:
        """Trend buckets: days up to about two months, weeks up to a year, then months."""
        days = (self.end - self.start).total_seconds() / 86400
        if days <= 62:
            return "day"
        return "week" if days <= 366 else "month"

    def scope(self, journey: str | None = None) -> Scope:
        """The store's view of this period."""
        return Scope(self.start, self.end, journey)

    def as_dict(self) -> dict[str, str | None]:
        """``{"from": "…Z", "to": "…Z", "bucket": unit}``."""
        return {"from": iso(self.start), "to": iso(self.end), "bucket": self.unit}


def parse_bound(text: str, name: str, *, end: bool = False) -> datetime:
    """``2026-03-01`` (midnight UTC; as an end, the whole day is included) or an ISO time."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        return parse_instant(text)
    except ValueError:
        raise PeriodError(
            f"{name} {text!r} is not a date or time; write e.g. 2026-03-01 or 2026-03-01T09:00:00Z"
        ) from None


def make_period(
    start: datetime | None,
    end: datetime | None,
    *,
    first: datetime | None,
    last: datetime | None,
    now: datetime,
) -> Period:
    """The period from the given bounds; a missing bound is taken from the recorded activity
    (``first``, and just after ``last``), so a report without bounds covers everything. With
    nothing recorded, the 30 days up to ``now``."""
    hi = end or (last + timedelta(seconds=1) if last else now)
    lo = start or (first if first and first < hi else hi - timedelta(days=30))
    if hi <= lo:
        raise PeriodError(f"the period is empty: --to {iso(hi)} is not after --from {iso(lo)}")
    return Period(as_utc(lo), as_utc(hi))


DEFAULT_DAYS = 30
PRESETS = ("7", "30", "90", "all")


def choose_period(
    days: str | None,
    start: str | None,
    end: str | None,
    *,
    first: datetime | None,
    last: datetime | None,
    now: datetime,
) -> tuple[Period, str]:
    """The dashboard's period and its preset name: ``from``/``to`` dates when given, else the
    last ``days`` (7, 30, 90) or ``all`` recorded activity. Days count back from the latest
    activity (from ``now`` when nothing is recorded), so a quiet shop still sees its last
    month rather than an empty one. PeriodError for anything else."""
    if start or end:
        t0 = parse_bound(start, "from") if start else None
        t1 = parse_bound(end, "to", end=True) if end else None
        return make_period(t0, t1, first=first, last=last, now=now), ""
    preset = days or str(DEFAULT_DAYS)
    if preset not in PRESETS:
        raise PeriodError(f"days {preset!r} is not one of {', '.join(PRESETS)}")
    if preset == "all":
        return make_period(None, None, first=first, last=last, now=now), preset
    hi = last + timedelta(seconds=1) if last else now
    return make_period(
        hi - timedelta(days=int(preset)), hi, first=first, last=last, now=now
    ), preset


def roll_up(day: str, unit: Unit) -> str:
    """The bucket of a ``YYYY-MM-DD`` day: itself, the Monday of its week, or the first of
    its month."""
    if unit == "day":
        return day
    if unit == "month":
        return day[:8] + "01"
    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat()
