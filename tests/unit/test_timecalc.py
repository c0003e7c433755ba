"""Local time: DST, quiet hours, yearly dates."""

from datetime import UTC, date, datetime

from journeys.runtime.timecalc import (
    fire_instants,
    local_to_utc,
    month_days_on,
    next_local_time,
    quiet_until,
    yearly_date,
    zone,
)

NY = zone("America/New_York")
SEOUL = zone("Asia/Seoul")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_next_local_time_is_strictly_after() -> None:
    # 09:00 Seoul is 00:00 UTC.
    assert next_local_time(utc(2026, 3, 1, 12), 540, SEOUL) == utc(2026, 3, 2, 0)
    assert next_local_time(utc(2026, 3, 2, 0), 540, SEOUL) == utc(2026, 3, 3, 0)
    assert next_local_time(utc(2026, 3, 1, 23, 59), 540, SEOUL) == utc(2026, 3, 2, 0)


def test_next_local_time_across_dst_start_and_end() -> None:
    # New York springs forward on 2026-03-08: 09:00 EST is 14:00Z, 09:00 EDT is 13:00Z.
    assert next_local_time(utc(2026, 3, 7, 15), 540, NY) == utc(2026, 3, 8, 13)
    assert next_local_time(utc(2026, 3, 6, 15), 540, NY) == utc(2026, 3, 7, 14)
    # Falls back on 2026-11-01.
    assert next_local_time(utc(2026, 10, 31, 14), 540, NY) == utc(2026, 11, 1, 14)


def test_nonexistent_local_time_moves_forward() -> None:
    # 02:30 does not exist in New York on 2026-03-08; it becomes 03:30 EDT (07:30Z).
    assert local_to_utc(date(2026, 3, 8), 150, NY) == utc(2026, 3, 8, 7, 30)


def test_ambiguous_local_time_takes_first_occurrence() -> None:
    # 01:30 happens twice on 2026-11-01 in New York; the first is EDT (05:30Z).
    assert local_to_utc(date(2026, 11, 1), 90, NY) == utc(2026, 11, 1, 5, 30)


def test_quiet_hours_wrapping_midnight() -> None:
    window = (21 * 60, 9 * 60)
    # 22:00 Seoul (13:00Z) is quiet until 09:00 Seoul (00:00Z next day).
    assert quiet_until(utc(2026, 3, 1, 13), window, SEOUL) == utc(2026, 3, 2, 0)
    # 03:00 Seoul (18:00Z) is quiet until 09:00 the same local day.
    assert quiet_until(utc(2026, 3, 1, 18), window, SEOUL) == utc(2026, 3, 2, 0)
    assert quiet_until(utc(2026, 3, 2, 0), window, SEOUL) is None
    assert quiet_until(utc(2026, 3, 1, 11, 59), window, SEOUL) is None
    assert quiet_until(utc(2026, 3, 1, 12), window, SEOUL) == utc(2026, 3, 2, 0)


def test_feb29_in_common_years() -> None:
    assert yearly_date("02-29", 2027) == date(2027, 2, 28)
    assert yearly_date("02-29", 2027, "mar1") == date(2027, 3, 1)
    assert yearly_date("02-29", 2028) == date(2028, 2, 29)
    assert month_days_on(date(2027, 2, 28)) == ["02-28", "02-29"]
    assert month_days_on(date(2028, 2, 28)) == ["02-28"]
    assert month_days_on(date(2027, 3, 1), "mar1") == ["03-01", "02-29"]


def test_fire_instants_with_offset() -> None:
    # Birthday 09:00 Seoul, three days early: the fire on Mar 2 00:00Z is for a Mar 5 birthday.
    found = fire_instants(SEOUL, 540, -3 * 86400, utc(2026, 3, 1, 12), utc(2026, 3, 2, 12))
    assert found == [(date(2026, 3, 5), utc(2026, 3, 2, 0))]
