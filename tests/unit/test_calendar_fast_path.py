"""The one-call scheduling path equals the plain definition built from the public primitives.

``BusinessCalendar.moment_after_wait`` is the hot path (one call per lead and step, integer
arithmetic over cached tables). These properties pin it to DESIGN 1.4 written out with
``next_business_moment``, ``add_business_days``, ``business_window`` and ``BusinessHours.on``,
over random countries, zones, hours and instants, and over the nights and days where a
calendar is easiest to get wrong: DST changes in New York and Sydney, year ends, leap days,
Friday–Saturday weekends, holidays that fall on a weekend.
"""

from __future__ import annotations

import datetime as dt
import functools
import warnings

import holidays
from hypothesis import assume, example, given
from hypothesis import strategies as st

from starlight_sequences.calendar import BusinessCalendar, BusinessHours
from tests.strategies import aware_instants, calendars

UTC = dt.UTC
SECOND = dt.timedelta(seconds=1)


def first_instant_at_or_after(
    calendar: BusinessCalendar, day: dt.date, wall: dt.time
) -> dt.datetime:
    """The instant of local wall time ``wall`` on ``day``: its first occurrence when the
    clocks went back, the first instant after the jump when it does not exist."""
    zone = calendar.zone
    naive = dt.datetime.combine(day, wall)
    first = naive.replace(tzinfo=zone)  # fold=0: the earlier of two occurrences
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive:
        return first.astimezone(UTC)
    # A gap: fold=1 reads the wall time with the offset after the jump (an instant before
    # it), fold=0 with the offset before the jump (an instant after it).
    low = int(naive.replace(tzinfo=zone, fold=1).astimezone(UTC).timestamp())
    high = int(first.astimezone(UTC).timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        seen = dt.datetime.fromtimestamp(middle, zone).replace(tzinfo=None)
        if seen >= naive:
            high = middle
        else:
            low = middle
    return dt.datetime.fromtimestamp(high, UTC)


def plain_moment_after_wait(calendar: BusinessCalendar, event: dt.datetime, n: int) -> dt.datetime:
    """DESIGN 1.4 composed from the public primitives, slowly and literally."""
    if n == 0:
        return calendar.next_business_moment(event).astimezone(UTC)
    local = event.astimezone(calendar.zone)
    day = calendar.add_business_days(local.date(), n)
    opens, closes = calendar.hours.on(day.weekday())
    window = calendar.business_window(day)
    if window is None:  # the day's hours fall wholly into a DST gap: the next window
        after_gap = dt.datetime.combine(day, opens, calendar.zone)
        return calendar.next_business_moment(after_gap).astimezone(UTC)
    wall = local.time().replace(microsecond=0)
    if not opens <= wall < closes:
        return window[0].astimezone(UTC)
    at = first_instant_at_or_after(calendar, day, wall)
    # In UTC: subtracting a second from a zone-aware datetime is wall-clock arithmetic.
    last_second = window[1].astimezone(UTC) - SECOND
    return min(max(at, window[0].astimezone(UTC)), last_second)


def check(calendar: BusinessCalendar, event: dt.datetime, n: int) -> None:
    fast = calendar.moment_after_wait(event, n)
    assert fast == plain_moment_after_wait(calendar, event, n)
    assert fast.tzinfo is UTC


waits = st.integers(min_value=0, max_value=60)


@given(calendar=calendars(), event=aware_instants(), n=waits)
def test_the_one_call_equals_the_composition_of_the_public_primitives(
    calendar: BusinessCalendar, event: dt.datetime, n: int
) -> None:
    check(calendar, event, n)


# Mostly countries whose Sunday works (Friday–Saturday weekends), so that the Sunday of a DST
# change in New York or Sydney is a business day; sometimes the zones' own countries.
NIGHT_COUNTRIES = ("IL", "SA", "EG", "IL", "SA", "EG", "US", "AU")
night_hours = st.sampled_from(
    (
        BusinessHours(),
        BusinessHours(open=dt.time(0), close=dt.time(23, 59)),
        BusinessHours(open=dt.time(1), close=dt.time(17)),
        BusinessHours(open=dt.time(2), close=dt.time(2, 30)),  # wholly inside the gap
        BusinessHours(open=dt.time(1, 30), close=dt.time(2, 30)),  # half in the gap
        BusinessHours(open=dt.time(2, 30), close=dt.time(9)),
        BusinessHours(open=dt.time(1), close=dt.time(1, 45)),  # inside the repeated hour
    )
)


def _dst_change_days(zone: str, year: int) -> list[dt.date]:
    """Local dates on which ``zone`` changes its UTC offset in ``year``."""
    calendar_zone = BusinessCalendar(country="US", timezone=zone).zone
    days = []
    day = dt.date(year, 1, 1)
    while day.year == year:
        noon = dt.datetime.combine(day, dt.time(12), calendar_zone)
        before = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(12), calendar_zone)
        if noon.utcoffset() != before.utcoffset():
            days.append(day)
        day += dt.timedelta(days=1)
    return days


DST_DAYS = {
    zone: [day for year in range(2000, 2041) for day in _dst_change_days(zone, year)]
    for zone in ("America/New_York", "Australia/Sydney")
}


@st.composite
def dst_nights(draw: st.DrawFn) -> tuple[BusinessCalendar, dt.datetime, int]:
    """An event up to ten days before a DST change in New York or Sydney, any time of day,
    with the wait that reaches the change day (or one business day either side)."""
    zone = draw(st.sampled_from(sorted(DST_DAYS)))
    change = draw(st.sampled_from(DST_DAYS[zone]))
    calendar = BusinessCalendar(
        country=draw(st.sampled_from(NIGHT_COUNTRIES)), timezone=zone, hours=draw(night_hours)
    )
    local_day = change - dt.timedelta(days=draw(st.integers(min_value=0, max_value=10)))
    seconds = draw(st.integers(min_value=0, max_value=86_399))
    naive = dt.datetime.combine(local_day, dt.time()) + dt.timedelta(
        seconds=seconds, microseconds=draw(st.integers(min_value=0, max_value=999_999))
    )
    event = naive.replace(tzinfo=calendar.zone, fold=draw(st.integers(0, 1))).astimezone(UTC)
    reach = calendar.business_days_between(event.astimezone(calendar.zone).date(), change)
    n = max(reach + draw(st.sampled_from((0, 0, 0, -1, 1))), 0)
    return calendar, event, n


def _gap_day_case() -> tuple[BusinessCalendar, dt.datetime, int]:
    # Hours wholly inside New York's spring gap on Sunday 8 March 2026, a business day in IL.
    calendar = BusinessCalendar(
        country="IL",
        timezone="America/New_York",
        hours=BusinessHours(open=dt.time(2), close=dt.time(2, 30)),
    )
    return calendar, dt.datetime(2026, 3, 5, 7, 10, tzinfo=UTC), 1


def _half_gap_case() -> tuple[BusinessCalendar, dt.datetime, int]:
    # Sydney's spring gap (02:00 -> 03:00) on Sunday 4 October 2026, hours 01:30–02:30: an event
    # at 02:15 wall time on the Sunday before lands on the last second of the short window.
    calendar = BusinessCalendar(
        country="SA",
        timezone="Australia/Sydney",
        hours=BusinessHours(open=dt.time(1, 30), close=dt.time(2, 30)),
    )
    event = dt.datetime(2026, 9, 27, 2, 15, tzinfo=calendar.zone).astimezone(UTC)
    return (
        calendar,
        event,
        calendar.business_days_between(dt.date(2026, 9, 27), dt.date(2026, 10, 4)),
    )


@given(case=dst_nights())
@example(case=_gap_day_case())
@example(case=_half_gap_case())
def test_the_one_call_equals_the_composition_around_dst_nights_in_new_york_and_sydney(
    case: tuple[BusinessCalendar, dt.datetime, int],
) -> None:
    check(*case)


@st.composite
def year_ends_and_leap_days(draw: st.DrawFn) -> tuple[BusinessCalendar, dt.datetime, int]:
    """An event in the last days of a year or around 29 February of a leap year."""
    country, zone = draw(
        st.sampled_from(
            (
                ("US", "America/New_York"),
                ("AU", "Australia/Sydney"),
                ("IL", "Asia/Jerusalem"),
                ("SA", "Asia/Riyadh"),
                ("JP", "Asia/Tokyo"),
                ("NZ", "Pacific/Auckland"),
                ("GB", "Europe/London"),
            )
        )
    )
    calendar = BusinessCalendar(country=country, timezone=zone)
    year = draw(st.sampled_from((1996, 2000, 2024, 2028, 2048, 2096)))
    anchor = draw(st.sampled_from((dt.datetime(year, 12, 24), dt.datetime(year, 2, 25))))
    offset = dt.timedelta(seconds=draw(st.integers(min_value=0, max_value=10 * 86_400)))
    event = (anchor + offset).replace(tzinfo=UTC)
    return calendar, event, draw(waits)


@given(case=year_ends_and_leap_days())
@example(
    case=(
        BusinessCalendar(country="US", timezone="UTC"),
        dt.datetime(2028, 2, 28, 23, tzinfo=UTC),
        1,
    )
)
def test_the_one_call_equals_the_composition_across_year_ends_and_leap_days(
    case: tuple[BusinessCalendar, dt.datetime, int],
) -> None:
    check(*case)


@functools.cache
def _holidays_on_weekends(country: str, year: int) -> tuple[dt.date, ...]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        entity = holidays.country_holidays(country, years=year)
        return tuple(sorted(day for day in entity if entity.is_weekend(day)))


@st.composite
def holidays_on_weekends(draw: st.DrawFn) -> tuple[BusinessCalendar, dt.datetime, int]:
    """An event in the week before a holiday that falls on a weekend (its observed day, when
    the country has one, is a weekday nearby)."""
    country, zone = draw(
        st.sampled_from(
            (
                ("US", "America/New_York"),
                ("GB", "Europe/London"),
                ("AU", "Australia/Sydney"),
                ("NZ", "Pacific/Auckland"),
                ("IL", "Asia/Jerusalem"),
                ("SA", "Asia/Riyadh"),
            )
        )
    )
    days = _holidays_on_weekends(country, draw(st.integers(min_value=2000, max_value=2040)))
    assume(days)
    holiday = draw(st.sampled_from(days))
    calendar = BusinessCalendar(country=country, timezone=zone)
    start = dt.datetime.combine(holiday - dt.timedelta(days=7), dt.time(), UTC)
    event = start + dt.timedelta(seconds=draw(st.integers(min_value=0, max_value=8 * 86_400)))
    return calendar, event, draw(st.integers(min_value=0, max_value=6))


@given(case=holidays_on_weekends())
def test_the_one_call_equals_the_composition_around_holidays_on_weekends(
    case: tuple[BusinessCalendar, dt.datetime, int],
) -> None:
    check(*case)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_friday_saturday_weekend_is_skipped_in_israel_and_saudi_arabia() -> None:
    israel = BusinessCalendar(country="IL", timezone="Asia/Jerusalem")
    # Thursday 3 December 2026 12:00 in Jerusalem (UTC+2); one business day on is Sunday.
    event = utc("2026-12-03T10:00")
    assert israel.moment_after_wait(event, 1) == utc("2026-12-06T10:00")
    check(israel, event, 1)
    saudi = BusinessCalendar(country="SA", timezone="Asia/Riyadh")
    # Thursday 3 December 2026 13:00 in Riyadh (UTC+3): Sunday 6 December at the same time.
    event = utc("2026-12-03T10:00")
    assert saudi.moment_after_wait(event, 1) == utc("2026-12-06T10:00")
    check(saudi, event, 1)


def test_a_holiday_on_a_saturday_closes_the_friday_it_is_observed_on() -> None:
    us = BusinessCalendar(country="US", timezone="America/New_York")
    # Independence Day 2026 is a Saturday, observed on Friday 3 July: Thursday 2 July 10:00
    # EDT plus one business day is Monday 6 July 10:00 EDT.
    event = utc("2026-07-02T14:00")
    assert us.moment_after_wait(event, 1) == utc("2026-07-06T14:00")
    check(us, event, 1)
    # A wait of 0 on the observed Friday is Monday's opening.
    friday = utc("2026-07-03T14:00")
    assert us.moment_after_wait(friday, 0) == utc("2026-07-06T13:00")
    check(us, friday, 0)


def test_an_ambiguous_wall_time_is_always_its_first_occurrence() -> None:
    # Israel's calendar in New York, open 01:00–17:00: Sunday 1 November 2026 is a business day
    # whose 01:00–02:00 happens twice. An event at 01:30 EDT a week earlier, waiting until
    # that Sunday, lands on the first 01:30 (EDT, 05:30 UTC), whichever occurrence it came
    # from.
    calendar = BusinessCalendar(
        country="IL",
        timezone="America/New_York",
        hours=BusinessHours(open=dt.time(1), close=dt.time(17)),
    )
    event = utc("2026-10-25T05:30")  # Sunday 25 October 01:30 EDT
    n = calendar.business_days_between(dt.date(2026, 10, 25), dt.date(2026, 11, 1))
    assert calendar.moment_after_wait(event, n) == utc("2026-11-01T05:30")
    check(calendar, event, n)
    second_occurrence = utc("2026-11-01T06:30")  # 01:30 EST, the repeated hour
    week = calendar.business_days_between(dt.date(2026, 11, 1), dt.date(2026, 11, 8))
    assert calendar.moment_after_wait(second_occurrence, week) == utc("2026-11-08T06:30")
    check(calendar, second_occurrence, week)


def test_the_edges_of_the_hours_are_half_open_to_the_second() -> None:
    us = BusinessCalendar(country="US", timezone="America/New_York")
    # Monday 7 December 2026: opens 14:00 UTC (09:00 EST), closes 22:00 UTC (17:00 EST).
    just_after_opening = utc("2026-12-07T14:00:00.500000")
    assert us.moment_after_wait(just_after_opening, 0) == just_after_opening
    check(us, just_after_opening, 0)
    at_closing = utc("2026-12-07T22:00")  # outside: Tuesday's opening
    assert us.moment_after_wait(at_closing, 0) == utc("2026-12-08T14:00")
    check(us, at_closing, 0)
    # A wait from the closing second itself lands at opening, not at 17:00.
    assert us.moment_after_wait(at_closing, 1) == utc("2026-12-08T14:00")
    check(us, at_closing, 1)
    last_second = utc("2026-12-07T21:59:59.999999")  # inside, whole seconds kept
    assert us.moment_after_wait(last_second, 1) == utc("2026-12-08T21:59:59")
    check(us, last_second, 1)
