"""Shared hypothesis strategies (calendar section first; other areas add theirs below)."""

from __future__ import annotations

import datetime as dt

import holidays
from hypothesis import strategies as st

from starlight_sequences.calendar import BusinessCalendar, BusinessHours, SenderLimits, SlotRequest
from starlight_sequences.locations import load_timezone, zones_of_country

# --- calendar ---------------------------------------------------------------------------------

SUPPORTED = holidays.list_supported_countries()

# Alpha-2 codes only: the package also registers alpha-3 aliases of the same classes.
COUNTRIES: tuple[str, ...] = tuple(sorted(code for code in SUPPORTED if len(code) == 2))

# Zones with and without DST, southern-hemisphere DST, half-hour and 45-minute offsets, a zone
# whose DST moves around Ramadan, one that skipped a whole day, and one with a midnight gap.
ZONES: tuple[str, ...] = (
    "UTC",
    "America/New_York",
    "America/Vancouver",
    "America/Sao_Paulo",
    "America/Santiago",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Asia/Tehran",
    "Asia/Kathmandu",
    "Asia/Beirut",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Pacific/Apia",
    "Africa/Casablanca",
)

FIRST_DAY = dt.date(1990, 1, 1)
LAST_DAY = dt.date(2090, 12, 31)

dates = st.dates(min_value=FIRST_DAY, max_value=LAST_DAY)
"""Local dates from 1990 to 2090."""

countries = st.sampled_from(COUNTRIES)


@st.composite
def business_hours(draw: st.DrawFn) -> BusinessHours:
    """Default hours, or random opening/closing minutes, sometimes with a short weekday."""
    if draw(st.booleans()):
        return BusinessHours()
    opens = draw(st.integers(min_value=0, max_value=22 * 60))
    closes = draw(st.integers(min_value=opens + 30, max_value=23 * 60 + 59))
    overrides: dict[int, tuple[dt.time, dt.time]] = {}
    if draw(st.booleans()):
        weekday = draw(st.integers(min_value=0, max_value=6))
        short_close = draw(st.integers(min_value=opens + 15, max_value=closes))
        overrides[weekday] = (_minute(opens), _minute(short_close))
    return BusinessHours(open=_minute(opens), close=_minute(closes), weekdays=overrides)


def _minute(minutes: int) -> dt.time:
    return dt.time(minutes // 60, minutes % 60)


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    """A calendar of any supported country, random subdivision, zone, hours and closures."""
    country = draw(countries)
    subdivisions = SUPPORTED[country]
    subdivision = draw(st.none() | st.sampled_from(subdivisions)) if subdivisions else None
    zone = draw(st.sampled_from(ZONES + zones_of_country(country)))
    closures = draw(st.frozensets(dates, max_size=3))
    return BusinessCalendar(
        country=country,
        subdivision=subdivision,
        timezone=zone,
        hours=draw(business_hours()),
        closures=closures,
    )


def aware_instants(
    min_value: dt.datetime = dt.datetime(1990, 1, 2),
    max_value: dt.datetime = dt.datetime(2090, 12, 30),
) -> st.SearchStrategy[dt.datetime]:
    """Aware instants (in UTC or a sample zone) between the given naive UTC bounds."""
    utc = st.datetimes(min_value=min_value, max_value=max_value, timezones=st.just(dt.UTC))
    return utc.flatmap(
        lambda moment: st.sampled_from(ZONES).map(lambda zone: _in_zone(moment, zone))
    )


def _in_zone(moment: dt.datetime, zone: str) -> dt.datetime:
    return moment.astimezone(load_timezone(zone))


# --- staggering -------------------------------------------------------------------------------

# A small pool keeps the tables warm; the calendar itself is covered by the calendar properties.
RECIPIENT_CALENDARS: tuple[BusinessCalendar, ...] = (
    BusinessCalendar(country="US", timezone="America/New_York"),
    BusinessCalendar(country="DE", timezone="Europe/Berlin"),
    BusinessCalendar(country="IL", timezone="Asia/Jerusalem"),
    BusinessCalendar(country="CN", timezone="Asia/Shanghai"),
    BusinessCalendar(
        country="AU",
        subdivision="NSW",
        timezone="Australia/Sydney",
        hours=BusinessHours(weekdays={4: (dt.time(9), dt.time(12))}),
    ),
)


@st.composite
def sender_limits(draw: st.DrawFn) -> SenderLimits:
    """Spacing up to an hour, optional daily and weekly caps, optional jitter."""
    return SenderLimits(
        min_spacing=dt.timedelta(seconds=draw(st.integers(min_value=0, max_value=3600))),
        timezone=draw(st.sampled_from(("UTC", "America/New_York", "Asia/Tokyo"))),
        daily_cap=draw(st.none() | st.integers(min_value=1, max_value=6)),
        weekly_cap=draw(st.none() | st.integers(min_value=1, max_value=15)),
        jitter=dt.timedelta(seconds=draw(st.integers(min_value=0, max_value=900))),
    )


@st.composite
def slot_requests(draw: st.DrawFn, max_size: int = 25) -> list[SlotRequest]:
    """Requests with unique keys, bunched over a few weeks around December 2026."""
    count = draw(st.integers(min_value=0, max_value=max_size))
    earliest = st.datetimes(
        min_value=dt.datetime(2026, 11, 25),
        max_value=dt.datetime(2026, 12, 10),
        timezones=st.just(dt.UTC),
    )
    return [
        SlotRequest(
            key=f"send-{index}",
            earliest=draw(earliest),
            calendar=draw(st.sampled_from(RECIPIENT_CALENDARS)),
            follow_up=draw(st.booleans()),
        )
        for index in range(count)
    ]


# --- header text ------------------------------------------------------------------------------

# Characters the header rule (starlight_sequences.header_text) refuses besides Cc and Cs.
REFUSED_IN_HEADERS = "\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def header_safe_text(*, min_size: int = 0, max_size: int | None = None) -> st.SearchStrategy[str]:
    """Any text the header rule accepts as it is (no control characters, no line breaks, no
    bidirectional controls): names and subjects a lead or a draft may hold."""
    return st.text(
        alphabet=st.characters(
            exclude_categories=("Cc", "Cs"), exclude_characters=REFUSED_IN_HEADERS
        ),
        min_size=min_size,
        max_size=max_size,
    )


# Text that is mostly harmless, with the characters the rule normalises or refuses mixed in.
header_text_inputs = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.sampled_from("\t\r\n\x0b\x0c\x1b\x7f\x85\x9b \u00a0\u3000" + REFUSED_IN_HEADERS),
    ),
    max_size=80,
)
