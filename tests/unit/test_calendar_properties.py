"""Property tests of the calendar over every country the holidays package supports."""

from __future__ import annotations

import datetime as dt
import warnings

import holidays
from hypothesis import given
from hypothesis import strategies as st

from starlight_sequences.calendar import BusinessCalendar
from tests.strategies import aware_instants, calendars, dates

waits = st.integers(min_value=0, max_value=60)


@given(calendar=calendars(), day=dates, n=waits)
def test_add_business_days_returns_a_business_day(
    calendar: BusinessCalendar, day: dt.date, n: int
) -> None:
    result = calendar.add_business_days(day, n)
    assert calendar.is_business_day(result)
    assert result >= day


@given(calendar=calendars(), day=dates, n=waits, m=waits)
def test_add_business_days_is_monotonic_in_n(
    calendar: BusinessCalendar, day: dt.date, n: int, m: int
) -> None:
    low, high = sorted((n, m))
    first, second = calendar.add_business_days(day, low), calendar.add_business_days(day, high)
    assert first <= second
    if 1 <= low < high:
        assert first < second


@given(calendar=calendars(), day=dates, n=st.integers(min_value=1, max_value=60))
def test_exactly_n_business_days_lie_between_the_date_and_the_result(
    calendar: BusinessCalendar, day: dt.date, n: int
) -> None:
    result = calendar.add_business_days(day, n)
    assert calendar.business_days_between(day, result) == n
    # ... and the result is the first such day: the day before it has one fewer.
    assert calendar.business_days_between(day, result - dt.timedelta(days=1)) == n - 1


@given(calendar=calendars(), day=dates)
def test_wait_of_zero_means_the_day_itself_or_the_next_business_day(
    calendar: BusinessCalendar, day: dt.date
) -> None:
    result = calendar.add_business_days(day, 0)
    if calendar.is_business_day(day):
        assert result == day
    else:
        assert result == calendar.add_business_days(day, 1)


@given(calendar=calendars(), day=dates)
def test_business_days_agree_with_the_holidays_package_day_by_day(
    calendar: BusinessCalendar, day: dt.date
) -> None:
    with warnings.catch_warnings():
        # India's data warns outside 2001–2035; the calendar ignores that warning too.
        warnings.simplefilter("ignore", UserWarning)
        entity = holidays.country_holidays(
            calendar.country, subdiv=calendar.subdivision, years=range(day.year - 1, day.year + 2)
        )
        expected = entity.is_working_day(day) and day not in calendar.closures
    assert calendar.is_business_day(day) == expected


def _inside(calendar: BusinessCalendar, moment: dt.datetime) -> bool:
    local = moment.astimezone(calendar.zone)
    window = calendar.business_window(local.date())
    return (
        window is not None and window[0].timestamp() <= moment.timestamp() < window[1].timestamp()
    )


@given(calendar=calendars(), moment=aware_instants())
def test_next_business_moment_is_the_earliest_moment_inside_hours(
    calendar: BusinessCalendar, moment: dt.datetime
) -> None:
    result = calendar.next_business_moment(moment)
    assert result.tzinfo is calendar.zone
    assert result.timestamp() >= moment.timestamp()
    assert _inside(calendar, result)
    if _inside(calendar, moment):
        assert result == moment
    # No business window intersects [moment, result).
    start = moment.astimezone(calendar.zone).date() - dt.timedelta(days=1)
    end = result.astimezone(calendar.zone).date()
    day = start
    while day <= end:
        window = calendar.business_window(day)
        if window is not None:
            opens, closes = window[0].timestamp(), window[1].timestamp()
            assert not (opens < result.timestamp() and closes > moment.timestamp()) or (
                opens <= moment.timestamp() and result == moment
            )
        day += dt.timedelta(days=1)


@given(calendar=calendars(), moment=aware_instants(), n=waits)
def test_moment_after_wait_lands_inside_hours_n_business_days_on(
    calendar: BusinessCalendar, moment: dt.datetime, n: int
) -> None:
    result = calendar.moment_after_wait(moment, n)
    assert result.timestamp() >= moment.timestamp()
    assert _inside(calendar, result)
    if n >= 1:
        local_day = moment.astimezone(calendar.zone).date()
        assert result.astimezone(calendar.zone).date() == calendar.add_business_days(local_day, n)
