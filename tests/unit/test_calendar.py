"""BusinessCalendar: explicit tables for known cases, and the traps the issue lists."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

import starlight_sequences.calendar as calendar_module
from starlight_sequences.calendar import BusinessCalendar, BusinessHours
from starlight_sequences.errors import (
    InvalidBusinessHours,
    InvalidInput,
    UnknownCountry,
    UnknownSubdivision,
    UnknownTimezone,
)
from starlight_sequences.locations import TZDATA_VERSION

D = dt.date.fromisoformat
UTC = dt.UTC


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_public_surface_is_pinned_and_sorted() -> None:
    exported = calendar_module.__all__
    assert list(exported) == sorted(exported)
    assert set(exported) == {
        "BusinessCalendar",
        "BusinessHours",
        "SenderLimits",
        "SlotRequest",
        "WarmUp",
        "allocate_slots",
    }
    for name in exported:
        assert hasattr(calendar_module, name)


# DESIGN.md 1.4: "n-th business day strictly after" (n = 1), from the holidays data.
@pytest.mark.parametrize(
    ("country", "start", "expected"),
    [
        ("IL", "2026-06-04", "2026-06-07"),  # Friday–Saturday weekend
        ("US", "2026-07-02", "2026-07-06"),  # Fri 3 July is Independence Day (observed)
        ("US", "2026-11-25", "2026-11-27"),  # Thanksgiving
        ("GB", "2026-12-24", "2026-12-29"),  # Christmas; Boxing Day (Sat) observed Mon 28
        ("CN", "2026-09-18", "2026-09-20"),  # a make-up working Sunday
        ("CN", "2026-09-30", "2026-10-08"),  # National Day holidays
    ],
)
def test_design_worked_examples_of_the_next_business_day(
    country: str, start: str, expected: str
) -> None:
    calendar = BusinessCalendar(country=country, timezone="UTC")
    assert calendar.add_business_days(D(start), 1) == D(expected)


@pytest.mark.parametrize(
    ("country", "start", "n", "expected"),
    [
        ("US", "2026-09-04", 1, "2026-09-08"),  # Labor Day, a federal holiday on a Monday
        ("US", "2026-09-04", 0, "2026-09-04"),  # n = 0 on a business day is the day itself
        ("US", "2026-09-05", 0, "2026-09-08"),  # n = 0 on a Saturday is the next business day
        ("US", "2025-12-31", 1, "2026-01-02"),  # 31 Dec → 2 Jan over New Year's Day
        ("US", "2026-12-31", 1, "2027-01-04"),  # New Year's Day 2027 is a Friday
        ("US", "2028-02-28", 1, "2028-02-29"),  # 29 February is a business day
        ("US", "2028-02-29", 1, "2028-03-01"),
        ("US", "2024-02-29", 1, "2024-03-01"),
        ("US", "2026-11-25", 10, "2026-12-10"),
        ("IL", "2026-06-05", 1, "2026-06-07"),  # from a Friday (weekend) in Israel
        ("GB", "2026-12-24", 3, "2026-12-31"),
    ],
)
def test_add_business_days_table(country: str, start: str, n: int, expected: str) -> None:
    calendar = BusinessCalendar(country=country, timezone="UTC")
    assert calendar.add_business_days(D(start), n) == D(expected)


def test_an_observed_holiday_on_a_weekday_is_not_a_business_day() -> None:
    us = BusinessCalendar(country="US", timezone="America/New_York")
    # 4 July 2026 is a Saturday; the federal holiday is observed on Friday 3 July.
    assert not us.is_business_day(D("2026-07-03"))
    assert not us.is_business_day(D("2026-07-04"))
    assert us.is_business_day(D("2026-07-06"))


def test_israel_works_sunday_and_rests_friday_and_saturday() -> None:
    israel = BusinessCalendar(country="IL", timezone="Asia/Jerusalem")
    assert israel.is_business_day(D("2026-06-07"))  # Sunday
    assert not israel.is_business_day(D("2026-06-05"))  # Friday
    assert not israel.is_business_day(D("2026-06-06"))  # Saturday


def test_make_up_working_days_in_china_are_business_days() -> None:
    china = BusinessCalendar(country="CN", timezone="Asia/Shanghai")
    for make_up in ("2026-01-04", "2026-02-14", "2026-02-28", "2026-09-20", "2026-10-10"):
        assert china.is_business_day(D(make_up)), make_up
        assert D(make_up).weekday() >= 5
    assert not china.is_business_day(D("2026-10-01"))
    assert china.business_days_between(D("2026-09-18"), D("2026-09-20")) == 1


def test_weekend_follows_the_year_in_the_united_arab_emirates() -> None:
    uae = BusinessCalendar(country="AE", timezone="Asia/Dubai")
    # Friday–Saturday weekend until the end of 2021, Saturday–Sunday from 2022.
    assert not uae.is_business_day(D("2021-06-04"))  # Friday
    assert uae.is_business_day(D("2021-06-06"))  # Sunday
    assert uae.is_business_day(D("2023-06-02"))  # Friday
    assert not uae.is_business_day(D("2023-06-04"))  # Sunday


def test_weekend_follows_the_subdivision_in_malaysia() -> None:
    kedah = BusinessCalendar(country="MY", subdivision="02", timezone="Asia/Kuala_Lumpur")
    selangor = BusinessCalendar(country="MY", subdivision="10", timezone="Asia/Kuala_Lumpur")
    friday, sunday = D("2026-06-05"), D("2026-06-07")
    assert not kedah.is_business_day(friday)
    assert kedah.is_business_day(sunday)
    assert selangor.is_business_day(friday)
    assert not selangor.is_business_day(sunday)


def test_subdivision_holidays_apply_only_with_a_subdivision() -> None:
    national = BusinessCalendar(country="AU", timezone="Australia/Sydney")
    nsw = BusinessCalendar(country="AU", subdivision="nsw", timezone="Australia/Sydney")
    assert nsw.subdivision == "NSW"
    labour_day = D("2026-10-05")  # NSW Labour Day, first Monday of October
    assert national.is_business_day(labour_day)
    assert not nsw.is_business_day(labour_day)


def test_extra_closures_are_not_business_days() -> None:
    calendar = BusinessCalendar(
        country="DE", timezone="Europe/Berlin", closures={D("2026-12-28"), D("2026-12-29")}
    )
    assert not calendar.is_business_day(D("2026-12-28"))
    assert calendar.add_business_days(D("2026-12-24"), 1) == D("2026-12-30")


def test_business_days_between_counts_the_half_open_interval() -> None:
    us = BusinessCalendar(country="US", timezone="America/New_York")
    assert us.business_days_between(D("2026-11-25"), D("2026-11-27")) == 1
    assert us.business_days_between(D("2026-11-27"), D("2026-11-27")) == 0
    assert us.business_days_between(D("2026-11-27"), D("2026-11-25")) == -1
    # Checked against a day-by-day count with holidays.US().is_working_day.
    assert us.business_days_between(D("2025-12-01"), D("2027-12-01")) == 500


def test_a_date_in_2090_works() -> None:
    calendar = BusinessCalendar(country="FR", timezone="Europe/Paris")
    assert not calendar.is_business_day(D("2090-07-14"))
    assert calendar.add_business_days(D("2090-12-29"), 2) == D("2091-01-03")
    assert calendar.next_business_moment(utc("2090-12-31T20:00")) == utc("2091-01-02T08:00")


# New York and Sydney DST nights: the window after the night has the new offset.
@pytest.mark.parametrize(
    ("zone", "country", "subdivision", "after", "expected"),
    [
        ("America/New_York", "US", None, "2026-03-06T22:00", "2026-03-09T13:00"),  # EST → EDT
        ("America/New_York", "US", None, "2026-10-30T21:00", "2026-11-02T14:00"),  # EDT → EST
        ("Australia/Sydney", "AU", None, "2026-04-03T07:00", "2026-04-06T23:00"),  # AEDT → AEST
        ("Australia/Sydney", "AU", None, "2026-10-02T07:00", "2026-10-04T22:00"),  # AEST → AEDT
        ("Australia/Sydney", "AU", "NSW", "2026-10-02T07:00", "2026-10-05T22:00"),  # + Labour Day
    ],
)
def test_next_business_moment_across_dst_nights(
    zone: str, country: str, subdivision: str | None, after: str, expected: str
) -> None:
    calendar = BusinessCalendar(country=country, subdivision=subdivision, timezone=zone)
    moment = calendar.next_business_moment(utc(after))
    assert moment == utc(expected)
    assert moment.tzinfo is calendar.zone
    assert moment.hour == 9


def test_sydney_good_friday_weekend_is_skipped() -> None:
    # 2026: Good Friday 3 April, Easter Monday 6 April, DST ends on Sunday 5 April.
    sydney = BusinessCalendar(country="AU", timezone="Australia/Sydney")
    assert sydney.next_business_moment(utc("2026-04-02T07:00")) == utc("2026-04-06T23:00")


def test_an_opening_time_inside_a_dst_gap_moves_forward_to_the_end_of_the_gap() -> None:
    # Israel's calendar (Sunday is a business day) in New York's zone: 8 March 2026 is the
    # spring-forward Sunday, when 02:00–03:00 does not exist.
    calendar = BusinessCalendar(
        country="IL",
        timezone="America/New_York",
        hours=BusinessHours(open=dt.time(2, 30), close=dt.time(17)),
    )
    window = calendar.business_window(D("2026-03-08"))
    assert window is not None
    assert window[0] == utc("2026-03-08T07:00")  # 03:00 EDT, when the clocks jump
    assert (window[0].hour, window[0].minute) == (3, 0)
    assert window[1] == utc("2026-03-08T21:00")


def test_an_ambiguous_opening_time_is_its_first_occurrence() -> None:
    # 1 November 2026 (a Sunday) in New York: 01:00–02:00 happens twice.
    calendar = BusinessCalendar(
        country="IL",
        timezone="America/New_York",
        hours=BusinessHours(open=dt.time(1, 30), close=dt.time(17)),
    )
    window = calendar.business_window(D("2026-11-01"))
    assert window is not None
    # Compare in UTC: Python never finds an ambiguous local time equal to another zone's.
    assert window[0].astimezone(UTC) == utc("2026-11-01T05:30")  # 01:30 EDT, fold=0
    assert window[0].fold == 0
    assert window[1] == utc("2026-11-01T22:00")  # 17:00 EST


def test_the_calendar_uses_the_tzdata_package_not_the_operating_system() -> None:
    # tzdata 2026f: British Columbia stays on UTC-7 from 2026-11-01. Older zone data (the
    # OS database on some machines) still says UTC-8.
    assert TZDATA_VERSION >= "2026f"
    calendar = BusinessCalendar(country="CA", subdivision="BC", timezone="America/Vancouver")
    window = calendar.business_window(D("2026-11-30"))
    assert window is not None
    assert window[0].utcoffset() == dt.timedelta(hours=-7)
    assert window[0] == utc("2026-11-30T16:00")
    assert calendar.next_business_moment(utc("2026-11-30T15:59")) == utc("2026-11-30T16:00")


def test_the_operating_system_zone_data_may_differ_and_is_not_used() -> None:
    try:
        system = zoneinfo.ZoneInfo.no_cache("America/Vancouver")
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip("no system zone data on this machine")
    calendar = BusinessCalendar(country="CA", timezone="America/Vancouver")
    system_open = dt.datetime(2026, 11, 30, 9, tzinfo=system)
    window = calendar.business_window(D("2026-11-30"))
    assert window is not None
    # Whatever the OS says, the calendar's answer is the tzdata one.
    assert window[0] == utc("2026-11-30T16:00")
    assert system_open.utcoffset() in (dt.timedelta(hours=-7), dt.timedelta(hours=-8))


def test_next_business_moment_returns_the_same_instant_inside_hours() -> None:
    calendar = BusinessCalendar(country="DE", timezone="Europe/Berlin")
    inside = utc("2026-11-27T10:15:30.123456")
    moment = calendar.next_business_moment(inside)
    assert moment == inside
    assert moment.tzinfo is calendar.zone


def test_closing_time_itself_is_outside_hours() -> None:
    calendar = BusinessCalendar(country="DE", timezone="Europe/Berlin")
    # Friday 27 November 2026, 17:00 CET is 16:00 UTC; the next moment is Monday 09:00.
    assert calendar.next_business_moment(utc("2026-11-27T16:00")) == utc("2026-11-30T08:00")


def test_short_fridays_close_early() -> None:
    hours = BusinessHours(weekdays={4: (dt.time(9), dt.time(13))})
    calendar = BusinessCalendar(country="GB", timezone="Europe/London", hours=hours)
    window = calendar.business_window(D("2026-11-27"))
    assert window is not None
    assert (window[0].hour, window[1].hour) == (9, 13)
    assert calendar.next_business_moment(utc("2026-11-27T13:30")) == utc("2026-11-30T09:00")


def test_business_window_is_none_on_a_holiday() -> None:
    calendar = BusinessCalendar(country="US", timezone="America/New_York")
    assert calendar.business_window(D("2026-11-26")) is None


def test_place_in_business_hours_spreads_over_the_window() -> None:
    calendar = BusinessCalendar(country="US", timezone="America/New_York")
    day = D("2026-11-30")
    assert calendar.place_in_business_hours(day) == utc("2026-11-30T14:00")
    assert calendar.place_in_business_hours(day, 0.5) == utc("2026-11-30T18:00")
    assert calendar.place_in_business_hours(day, 0.9999999) == utc("2026-11-30T21:59:59")
    with pytest.raises(InvalidInput, match="not a business day"):
        calendar.place_in_business_hours(D("2026-11-26"))
    with pytest.raises(InvalidInput, match="fraction"):
        calendar.place_in_business_hours(day, 1.0)


def test_a_wait_counts_business_days_from_the_local_date_of_the_event() -> None:
    calendar = BusinessCalendar(country="US", timezone="America/New_York")
    # Wednesday 25 Nov 2026 15:20 EST; three business days later is Tuesday 1 December.
    event = utc("2026-11-25T20:20:45")
    due = calendar.moment_after_wait(event, 3)
    assert due == utc("2026-12-01T20:20:45")
    assert due.tzinfo is UTC  # the scheduling result is in UTC, what storage keeps
    # A wait of 0 is the next business moment; the same instant inside hours.
    assert calendar.moment_after_wait(event, 0) == event
    # An event outside hours (Saturday) counts from its own local date: Monday, at opening.
    saturday = utc("2026-11-28T23:30")
    assert calendar.moment_after_wait(saturday, 1) == utc("2026-11-30T14:00")


def test_a_wait_keeps_the_clock_time_on_a_day_whose_hours_span_a_dst_jump() -> None:
    # Israel's calendar (Sunday works) in New York's zone, open 01:00–17:00: on Sunday
    # 8 March 2026 the clocks jump from 02:00 to 03:00 inside the window.
    calendar = BusinessCalendar(
        country="IL",
        timezone="America/New_York",
        hours=BusinessHours(open=dt.time(1), close=dt.time(17)),
    )
    event = utc("2026-03-01T15:00")  # Sunday 10:00 EST
    n = calendar.business_days_between(D("2026-03-01"), D("2026-03-08"))
    due = calendar.moment_after_wait(event, n)
    assert due == utc("2026-03-08T14:00")  # 10:00 EDT
    window = calendar.business_window(D("2026-03-08"))
    assert window is not None
    assert window[0] == utc("2026-03-08T06:00")  # 01:00 EST
    assert window[1] == utc("2026-03-08T21:00")  # 17:00 EDT


def test_naive_datetimes_are_refused_with_the_argument_named() -> None:
    calendar = BusinessCalendar(country="US", timezone="America/New_York")
    with pytest.raises(InvalidInput, match=r"'moment'.*naive"):
        calendar.next_business_moment(dt.datetime(2026, 11, 27, 10))
    with pytest.raises(ValueError, match="'event'"):
        calendar.moment_after_wait(dt.datetime(2026, 11, 27, 10), 1)


def test_a_datetime_is_refused_where_a_local_date_is_expected() -> None:
    calendar = BusinessCalendar(country="US", timezone="America/New_York")
    with pytest.raises(InvalidInput, match="'day'"):
        calendar.is_business_day(utc("2026-11-27T10:00"))


def test_negative_waits_are_refused() -> None:
    calendar = BusinessCalendar(country="US", timezone="America/New_York")
    with pytest.raises(InvalidInput, match="n must be >= 0"):
        calendar.add_business_days(D("2026-11-27"), -1)


def test_bad_locations_raise_typed_errors() -> None:
    with pytest.raises(UnknownCountry):
        BusinessCalendar(country="XX", timezone="UTC")
    with pytest.raises(UnknownSubdivision):
        BusinessCalendar(country="US", subdivision="ZZ", timezone="UTC")
    with pytest.raises(UnknownTimezone):
        BusinessCalendar(country="US", timezone="America/Atlantis")


@pytest.mark.parametrize(
    "make",
    [
        lambda: BusinessHours(open=dt.time(17), close=dt.time(9)),
        lambda: BusinessHours(open=dt.time(9), close=dt.time(9)),
        lambda: BusinessHours(open=dt.time(9, tzinfo=dt.UTC), close=dt.time(17)),
        lambda: BusinessHours(weekdays={7: (dt.time(9), dt.time(13))}),
        lambda: BusinessHours(weekdays={4: (dt.time(13), dt.time(9))}),
    ],
)
def test_bad_business_hours_raise_invalid_business_hours(make: object) -> None:
    assert callable(make)
    with pytest.raises(InvalidBusinessHours):
        make()


def test_calendars_are_hashable_values_usable_as_cache_keys() -> None:
    first = BusinessCalendar(country="us", timezone="America/New_York", subdivision="ca")
    second = BusinessCalendar(country="US", timezone="America/New_York", subdivision="CA")
    assert first == second
    assert hash(first) == hash(second)
    assert {first: 1}[second] == 1
    assert first.country == "US"
    other = BusinessCalendar(country="US", timezone="America/Chicago", subdivision="CA")
    assert other != first


def test_hours_wholly_inside_a_dst_gap_leave_that_day_without_a_window() -> None:
    calendar = BusinessCalendar(
        country="IL",
        timezone="America/New_York",
        hours=BusinessHours(open=dt.time(2), close=dt.time(2, 30)),
    )
    gap_day = D("2026-03-08")  # 02:00–03:00 does not exist in New York
    assert calendar.is_business_day(gap_day)
    assert calendar.business_window(gap_day) is None
    # The next business moment skips to Monday 02:00 EDT.
    assert calendar.next_business_moment(utc("2026-03-08T05:00")) == utc("2026-03-09T06:00")
    n = calendar.business_days_between(D("2026-03-05"), gap_day)
    assert calendar.moment_after_wait(utc("2026-03-05T07:10"), n) == utc("2026-03-09T06:00")


def test_weekday_hours_accept_tuples_and_refuse_malformed_rows() -> None:
    hours = BusinessHours(weekdays=[(4, dt.time(9), dt.time(13)), (0, (dt.time(10), dt.time(18)))])
    assert hours.weekdays == ((0, dt.time(10), dt.time(18)), (4, dt.time(9), dt.time(13)))
    assert hours.on(0) == (dt.time(10), dt.time(18))
    assert hours.on(2) == (dt.time(9), dt.time(17))
    for bad in ([(4, dt.time(9), dt.time(13)), (4, dt.time(9), dt.time(12))], [4], [(4, 9)]):
        with pytest.raises(InvalidBusinessHours):
            BusinessHours(weekdays=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidBusinessHours, match=r"datetime\.time"):
        BusinessHours(open="09:00")  # type: ignore[arg-type]


def test_other_bad_arguments_raise_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="closures"):
        BusinessCalendar(country="US", timezone="UTC", closures=[utc("2026-12-24T00:00")])
    with pytest.raises(InvalidInput, match="hours"):
        BusinessCalendar(country="US", timezone="UTC", hours="9-17")  # type: ignore[arg-type]
    calendar = BusinessCalendar(country="US", timezone="UTC")
    with pytest.raises(InvalidInput, match="business_days must be >= 0"):
        calendar.moment_after_wait(utc("2026-11-27T10:00"), -1)
    with pytest.raises(InvalidInput, match="outside"):
        calendar.is_business_day(dt.date(9999, 1, 1))
