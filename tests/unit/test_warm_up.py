"""Warm-up ramp: WarmUp.cap_on as properties and date tables, the mailbox's cap, the allocator."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from starlight_sequences import EmailIdentity, WarmUp
from starlight_sequences.calendar import (
    BusinessCalendar,
    SenderLimits,
    SlotRequest,
    allocate_slots,
)
from starlight_sequences.errors import InvalidIdentity, InvalidWarmUp
from tests.strategies import dates

# Countries with Monday–Friday, Friday–Saturday and Sunday-only-ish weekends, and none.
RAMP_COUNTRIES = (None, "US", "GB", "DE", "IL", "AE", "CN", "IN")


@st.composite
def warm_ups(draw: st.DrawFn) -> WarmUp:
    start = draw(st.integers(min_value=1, max_value=60))
    country = draw(st.sampled_from(RAMP_COUNTRIES))
    return WarmUp(
        start=start,
        step=draw(st.integers(min_value=0, max_value=15)),
        ceiling=draw(st.integers(min_value=start, max_value=start + 80)),
        since=draw(st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2080, 12, 31))),
        country=country,
    )


@given(warm_ups(), dates)
def test_the_cap_is_never_below_start_nor_above_the_ceiling(ramp: WarmUp, day: dt.date) -> None:
    assert ramp.start <= ramp.cap_on(day) <= ramp.ceiling


@given(warm_ups(), st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2089, 12, 1)))
def test_the_cap_never_decreases_from_one_day_to_the_next(ramp: WarmUp, day: dt.date) -> None:
    assert ramp.cap_on(day) <= ramp.cap_on(day + dt.timedelta(days=1))


@given(warm_ups(), st.dates(min_value=dt.date(2000, 1, 2), max_value=dt.date(2090, 1, 1)))
def test_a_non_business_day_keeps_the_cap_of_the_day_before(ramp: WarmUp, day: dt.date) -> None:
    if not ramp.is_business_day(day):
        assert ramp.cap_on(day) == ramp.cap_on(day - dt.timedelta(days=1))


@given(warm_ups(), st.dates(min_value=dt.date(2000, 1, 2), max_value=dt.date(2090, 1, 1)))
def test_a_business_day_after_since_adds_one_step_until_the_ceiling(
    ramp: WarmUp, day: dt.date
) -> None:
    before = ramp.cap_on(day - dt.timedelta(days=1))
    if ramp.is_business_day(day) and day > ramp.since:
        assert ramp.cap_on(day) == min(ramp.ceiling, before + ramp.step)


@given(warm_ups())
def test_the_cap_equals_the_ceiling_after_enough_business_days(ramp: WarmUp) -> None:
    needed = ramp.business_days_to_ceiling
    if needed is None:
        assert ramp.step == 0
        assert ramp.cap_on(ramp.since + dt.timedelta(days=3650)) == ramp.start
        return
    day, counted = ramp.since, 0
    while counted < needed:
        day += dt.timedelta(days=1)
        counted += ramp.is_business_day(day)
    assert ramp.cap_on(day) == ramp.ceiling
    if needed > 0:
        assert ramp.cap_on(day - dt.timedelta(days=1)) < ramp.ceiling


@given(warm_ups(), st.integers(min_value=0, max_value=4000))
def test_on_and_before_since_the_cap_is_start(ramp: WarmUp, days_before: int) -> None:
    assert ramp.cap_on(ramp.since - dt.timedelta(days=days_before)) == ramp.start


RAMP = WarmUp(start=10, step=2, ceiling=40, since=dt.date(2026, 11, 27), country="US")


@pytest.mark.parametrize(
    ("day", "cap", "why"),
    [
        (dt.date(2026, 11, 27), 10, "the day the ramp began (a Friday)"),
        (dt.date(2026, 11, 28), 10, "Saturday: no step"),
        (dt.date(2026, 11, 30), 12, "Monday: first business day after since"),
        (dt.date(2026, 12, 24), 40, "past the 15th business day the cap stays at the ceiling"),
        (dt.date(2026, 12, 18), 40, "15th business day after since: 10 + 2 * 15"),
        (dt.date(2026, 12, 17), 38, "14th business day after since"),
    ],
)
def test_the_ramp_of_a_us_mailbox_by_date(day: dt.date, cap: int, why: str) -> None:
    assert RAMP.cap_on(day) == cap, why


def test_a_us_holiday_and_a_year_end_do_not_add_a_step() -> None:
    ramp = WarmUp(start=5, step=1, ceiling=50, since=dt.date(2026, 12, 23), country="US")
    assert ramp.cap_on(dt.date(2026, 12, 24)) == 6  # Thursday
    assert ramp.cap_on(dt.date(2026, 12, 25)) == 6  # Christmas Day
    assert ramp.cap_on(dt.date(2026, 12, 28)) == 7  # Monday
    assert ramp.cap_on(dt.date(2027, 1, 1)) == 10  # New Year's Day: Thu 31 Dec was the last
    assert ramp.cap_on(dt.date(2027, 1, 4)) == 11


def test_a_leap_day_and_a_friday_saturday_weekend_count_as_their_calendar_says() -> None:
    ramp = WarmUp(start=1, step=1, ceiling=30, since=dt.date(2028, 2, 27), country="IL")
    # Sun 27 Feb 2028 began; Mon 28, Tue 29 (leap day), Wed 1 Mar, Thu 2 Mar count; Fri and
    # Sat do not.
    assert ramp.cap_on(dt.date(2028, 2, 29)) == 3
    assert ramp.cap_on(dt.date(2028, 3, 2)) == 5
    assert ramp.cap_on(dt.date(2028, 3, 4)) == 5
    assert ramp.cap_on(dt.date(2028, 3, 5)) == 6


def test_without_a_country_business_days_are_monday_to_friday() -> None:
    ramp = WarmUp(start=10, step=5, ceiling=40, since=dt.date(2026, 12, 24))
    assert ramp.cap_on(dt.date(2026, 12, 25)) == 15  # no holidays without a country
    assert ramp.cap_on(dt.date(2026, 12, 27)) == 15
    assert ramp.cap_on(dt.date(2026, 12, 28)) == 20


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"start": 0}, "start"),
        ({"step": -1}, "step"),
        ({"ceiling": 5}, "ceiling"),
        ({"start": 2.5}, "start"),
        ({"step": True}, "step"),
        ({"since": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}, "since"),
        ({"country": "XX"}, "country"),
        ({"country": "US", "subdivision": "ZZ"}, "subdivision"),
        ({"subdivision": "CA"}, "subdivision"),
    ],
)
def test_a_bad_ramp_is_refused_naming_the_field(fields: dict[str, object], field: str) -> None:
    values: dict[str, object] = {
        "start": 10,
        "step": 2,
        "ceiling": 40,
        "since": dt.date(2026, 1, 1),
    } | fields
    with pytest.raises(InvalidWarmUp) as caught:
        WarmUp(**values)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert f": {field}:" in str(caught.value)


def test_the_country_and_subdivision_are_normalised() -> None:
    ramp = WarmUp(start=1, step=1, ceiling=2, since=dt.date(2026, 1, 1), country="us")
    assert ramp.country == "US"
    assert ramp == WarmUp(start=1, step=1, ceiling=2, since=dt.date(2026, 1, 1), country="US")


def test_a_mailbox_cap_is_its_ramp_and_its_ceiling_may_not_pass_the_daily_cap() -> None:
    mailbox = EmailIdentity(id="m", address="a@example.com", daily_cap=40, warm_up=RAMP)
    assert mailbox.cap_on(dt.date(2026, 11, 30)) == 12
    assert EmailIdentity(id="m", address="a@example.com").cap_on(dt.date(2026, 11, 30)) == 40
    with pytest.raises(InvalidIdentity) as caught:
        EmailIdentity(id="m", address="a@example.com", daily_cap=30, warm_up=RAMP)
    assert caught.value.field == "warm_up"
    with pytest.raises(InvalidIdentity) as zero:
        EmailIdentity(id="m", address="a@example.com", daily_cap=0)
    assert zero.value.field == "daily_cap"


def test_the_allocator_fills_each_mailbox_day_up_to_its_ramped_cap() -> None:
    calendar = BusinessCalendar(country="US", timezone="America/New_York")
    limits = SenderLimits(
        min_spacing=dt.timedelta(minutes=1),
        timezone="America/New_York",
        daily_cap=40,
        warm_up=RAMP,
    )
    start = dt.datetime(2026, 11, 30, 14, 0, tzinfo=dt.UTC)  # Monday 09:00 in New York
    requests = [SlotRequest(key=f"r{i:03}", earliest=start, calendar=calendar) for i in range(100)]
    slots = allocate_slots(requests, limits, seed=1)
    per_day = Counter(s.astimezone(calendar.zone).date() for s in slots.values())
    assert dict(per_day) == {
        dt.date(2026, 11, 30): 12,
        dt.date(2026, 12, 1): 14,
        dt.date(2026, 12, 2): 16,
        dt.date(2026, 12, 3): 18,
        dt.date(2026, 12, 4): 20,
        dt.date(2026, 12, 7): 20,  # 100 - 80 left; Monday's cap is 22
    }


# Zones whose clocks change in March–April 2027 (New York 14 March, London 28 March, Sydney
# 4 April going back), so mailbox-local days of 23 and 25 hours are in play.
DST_ZONES = ("America/New_York", "Europe/London", "Australia/Sydney", "UTC")
RECIPIENTS = (
    BusinessCalendar(country="US", timezone="America/New_York"),
    BusinessCalendar(country="GB", timezone="Europe/London"),
    BusinessCalendar(country="AU", subdivision="NSW", timezone="Australia/Sydney"),
    BusinessCalendar(country="IL", timezone="Asia/Jerusalem"),
)
AROUND_DST = st.datetimes(
    min_value=dt.datetime(2027, 3, 8), max_value=dt.datetime(2027, 4, 8), timezones=st.just(dt.UTC)
)


@given(
    start=st.integers(min_value=1, max_value=3),
    step=st.integers(min_value=0, max_value=2),
    extra=st.integers(min_value=0, max_value=4),
    since=st.dates(min_value=dt.date(2027, 3, 1), max_value=dt.date(2027, 4, 1)),
    country=st.sampled_from((None, "US", "GB", "AU")),
    zone=st.sampled_from(DST_ZONES),
    spacing=st.integers(min_value=0, max_value=1800),
    earliest=st.lists(st.tuples(AROUND_DST, st.sampled_from(RECIPIENTS)), max_size=40),
    booked=st.lists(AROUND_DST, max_size=6),
)
def test_no_sender_local_day_gets_more_than_its_ramped_cap(
    start: int,
    step: int,
    extra: int,
    since: dt.date,
    country: str | None,
    zone: str,
    spacing: int,
    earliest: list[tuple[dt.datetime, BusinessCalendar]],
    booked: list[dt.datetime],
) -> None:
    ramp = WarmUp(start=start, step=step, ceiling=start + extra, since=since, country=country)
    limits = SenderLimits(
        min_spacing=dt.timedelta(seconds=spacing), timezone=zone, daily_cap=10, warm_up=ramp
    )
    requests = [
        SlotRequest(key=f"r{i}", earliest=moment, calendar=calendar)
        for i, (moment, calendar) in enumerate(earliest)
    ]
    slots = allocate_slots(requests, limits, seed="ramp", booked=booked)
    assert slots.keys() == {r.key for r in requests}
    local = BusinessCalendar(country="US", timezone=zone).zone
    placed = Counter(moment.astimezone(local).date() for moment in slots.values())
    already = Counter(moment.astimezone(local).date() for moment in booked)
    for day, count in placed.items():
        assert already[day] + count <= ramp.cap_on(day), (day, already[day], count)
