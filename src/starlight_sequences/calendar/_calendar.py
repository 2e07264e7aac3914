"""The business-day calendar of one recipient: country, subdivision, timezone, hours, closures."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from bisect import bisect_left, bisect_right
from collections.abc import Iterable

import attrs

from starlight_sequences.calendar._holidays import working_days
from starlight_sequences.calendar._hours import BusinessHours
from starlight_sequences.errors import InvalidInput
from starlight_sequences.locations import load_timezone, validate_country, validate_subdivision

__all__ = ["BusinessCalendar", "window_after_second"]

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_DAY = 86_400
_SECOND = dt.timedelta(seconds=1)
_LAST_YEAR = 9_998
_CALENDARS_CACHED = 4_096


_UTC = dt.UTC
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_MEAN_YEAR = 31_556_952  # seconds in a mean Gregorian year


def _year_at_most(ts: int) -> int:
    """A year no later than the UTC year of ``ts`` minus four days (integer arithmetic)."""
    return max(1970 + (ts - 4 * _DAY) // _MEAN_YEAR, 1)


def _posix_second(moment: dt.datetime) -> int:
    """The whole POSIX second containing the aware instant ``moment`` (floor, no floats).

    Comparing it with whole-second window bounds gives the same answers as comparing the
    exact instant: ``bound <= moment`` iff ``bound <= second``, ``moment < bound`` iff
    ``second < bound``.
    """
    return (moment - _EPOCH) // _SECOND


def _wall_seconds(ordinal: int, second_of_day: int) -> int:
    """Seconds since 1970-01-01T00:00 of a local wall time, as if the zone were UTC."""
    return (ordinal - _EPOCH_ORDINAL) * _DAY + second_of_day


def _seconds(value: dt.time) -> int:
    return value.hour * 3600 + value.minute * 60 + value.second


def _offset_seconds(delta: dt.timedelta | None) -> int:
    return 0 if delta is None else delta // _SECOND


def _resolve(zone: zoneinfo.ZoneInfo, ordinal: int, second_of_day: int) -> int:
    """The POSIX second at which local wall time ``second_of_day`` of day ``ordinal`` happens.

    Ambiguous wall times (a DST overlap) resolve to their first occurrence (``fold=0``).
    Wall times that do not exist (a DST gap) move forward to the first instant after the gap.
    """
    day = dt.date.fromordinal(ordinal)
    local = dt.datetime(
        day.year,
        day.month,
        day.day,
        second_of_day // 3600,
        second_of_day // 60 % 60,
        second_of_day % 60,
        tzinfo=zone,
    )
    wall = _wall_seconds(ordinal, second_of_day)
    first = _offset_seconds(local.utcoffset())
    second = _offset_seconds(local.replace(fold=1).utcoffset())
    if first >= second:
        return wall - first
    # A gap: the clocks jump from `first` to `second`. The jump happens after `wall - second`
    # and no later than `wall - first`; find the instant by bisection on whole seconds.
    low, high = wall - second, wall - first
    while high - low > 1:
        middle = (low + high) // 2
        offset = _offset_seconds(dt.datetime.fromtimestamp(middle, zone).utcoffset())
        if offset >= second:
            high = middle
        else:
            low = middle
    return high


class _Year:
    """One year of one calendar: its business days and their windows as POSIX seconds.

    ``openings`` caches the opening instants as UTC datetimes, filled on first use: most
    scheduled steps land at an opening, and equal instants can share one immutable object.
    """

    __slots__ = ("closes", "day_set", "days", "exact", "offsets", "openings", "opens", "year")

    def __init__(
        self,
        year: int,
        days: list[int],
        opens: list[int],
        closes: list[int],
        offsets: list[int],
        exact: list[bool],
    ) -> None:
        self.year = year
        self.days = days
        self.day_set = frozenset(days)
        self.opens = opens
        self.closes = closes
        self.offsets = offsets
        self.exact = exact
        self.openings: list[dt.datetime | None] = [None] * len(days)

    def opening(self, index: int) -> dt.datetime:
        """The opening of window ``index`` as an aware UTC datetime (cached)."""
        moment = self.openings[index]
        if moment is None:
            moment = self.openings[index] = dt.datetime.fromtimestamp(self.opens[index], _UTC)
        return moment


class _Tables:
    """Per-year tables of one calendar value, built on first use and then shared."""

    __slots__ = ("closures", "country", "hours", "subdivision", "years", "zone")

    def __init__(
        self,
        country: str,
        subdivision: str | None,
        zone: zoneinfo.ZoneInfo,
        hours: tuple[tuple[int, int], ...],
        closures: frozenset[int],
    ) -> None:
        self.country = country
        self.subdivision = subdivision
        self.zone = zone
        self.hours = hours
        self.closures = closures
        self.years: dict[int, _Year] = {}

    def year(self, year: int) -> _Year:
        table = self.years.get(year)
        if table is None:
            if not 1 <= year <= _LAST_YEAR:
                raise InvalidInput(f"calendar: year {year} is outside 1..{_LAST_YEAR}")
            table = self.years[year] = self._build(year)
        return table

    def _build(self, year: int) -> _Year:
        days = [
            o for o in working_days(self.country, self.subdivision, year) if o not in self.closures
        ]
        opens: list[int] = []
        closes: list[int] = []
        offsets: list[int] = []
        exact: list[bool] = []
        zone = self.zone
        hours = self.hours
        first = dt.date(year, 1, 1).toordinal()
        # UTC offset at local midnight (fold=0) of every day of the year and of the next
        # January 1st: a day whose two midnights agree has no transition, and then every wall
        # time of it exists exactly once.
        midnights: list[int] = []
        if year < _LAST_YEAR:
            for ordinal in range(first, dt.date(year + 1, 1, 1).toordinal() + 1):
                day = dt.date.fromordinal(ordinal)
                local = dt.datetime(day.year, day.month, day.day, 0, 0, 0, 0, zone)
                midnights.append(_offset_seconds(local.utcoffset()))
        for ordinal in days:
            open_second, close_second = hours[(ordinal + 6) % 7]
            position = ordinal - first
            base = (ordinal - _EPOCH_ORDINAL) * _DAY
            if midnights and midnights[position] == midnights[position + 1]:
                offset = midnights[position]
                opened = base + open_second - offset
                closed = base + close_second - offset
            else:
                opened = _resolve(zone, ordinal, open_second)
                closed = _resolve(zone, ordinal, close_second)
            opens.append(opened)
            closes.append(max(opened, closed))
            offsets.append(base + close_second - closed)
            exact.append(closed - opened == close_second - open_second)
        return _Year(year, days, opens, closes, offsets, exact)

    def window_after(self, ts: int) -> tuple[_Year, int]:
        """The first non-empty window whose close is after ``ts``: (year table, index)."""
        # Windows close at most a day after their local date, and local dates are at most a
        # day from UTC ones, so no window of an earlier year closes after `ts`.
        year = _year_at_most(ts)
        table = self.years.get(year) or self.year(year)
        while True:
            closes = table.closes
            index = bisect_right(closes, ts)
            size = len(closes)
            while index < size and table.opens[index] >= closes[index]:
                index += 1
            if index < size:
                return table, index
            table = self.year(table.year + 1)

    def nth_after(self, ordinal: int, year: int, n: int) -> tuple[_Year, int]:
        """The n-th business day strictly after ``ordinal`` (n = 0: itself or the next one)."""
        table = self.year(year)
        days = table.days
        index = bisect_left(days, ordinal) if n == 0 else bisect_right(days, ordinal) + n - 1
        while index >= len(days):
            index -= len(days)
            table = self.year(table.year + 1)
            days = table.days
        return table, index


@functools.lru_cache(maxsize=_CALENDARS_CACHED)
def _tables_for(
    country: str,
    subdivision: str | None,
    timezone: str,
    hours: BusinessHours,
    closures: frozenset[dt.date],
) -> _Tables:
    by_weekday = tuple(
        (_seconds(opens), _seconds(closes))
        for opens, closes in (hours.on(weekday) for weekday in range(7))
    )
    return _Tables(
        country,
        subdivision,
        load_timezone(timezone),
        by_weekday,
        frozenset(day.toordinal() for day in closures),
    )


def _freeze_closures(value: Iterable[dt.date]) -> frozenset[dt.date]:
    result = frozenset(value)
    for day in result:
        if isinstance(day, dt.datetime) or not isinstance(day, dt.date):
            raise InvalidInput(f"calendar: closures: {day!r} is not a datetime.date")
    return result


def _day_argument(value: object, name: str, method: str) -> dt.date:
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise InvalidInput(
            f"BusinessCalendar.{method}: argument {name!r} must be a datetime.date "
            f"(a local date), got {type(value).__name__}"
        )
    return value


def _aware_argument(value: object, name: str, method: str) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise InvalidInput(
            f"BusinessCalendar.{method}: argument {name!r} must be an aware datetime, "
            f"got {type(value).__name__}"
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            f"BusinessCalendar.{method}: argument {name!r} is a naive datetime; "
            "pass a timezone-aware one"
        )
    return value


@attrs.frozen(kw_only=True, cache_hash=True)
class BusinessCalendar:
    """Business days and business hours of one recipient.

    A date is a **business day** when the ``holidays`` package calls it a working day for the
    country (and subdivision) on that date — not a weekend day of that country in that year
    unless it is a make-up working day, not a holiday (observed days included) — and it is not
    one of ``closures``. A moment is **inside business hours** when it falls on a business day
    (in ``timezone``) and its local wall time ``t`` satisfies ``open <= t < close``.

    Local times that do not exist (a DST gap) move forward to the first instant after the gap;
    ambiguous ones (a DST overlap) mean their first occurrence (``fold=0``). Zone data comes
    from the ``tzdata`` package (see ``locations.load_timezone``), so every machine computes the
    same instants.

    The calendar is an immutable, hashable value: equal calendars share their precomputed
    tables, so building one per lead is cheap.

    Attributes:
        country: ISO 3166-1 alpha-2 code (case-insensitive; stored upper-case).
        timezone: IANA zone name, e.g. ``"America/New_York"``.
        subdivision: state/region code as the ``holidays`` package names it, or None.
        hours: opening and closing times (default 09:00–17:00, optionally per weekday).
        closures: extra local dates that are not business days (a campaign's own closures).

    Raises:
        UnknownCountry, UnknownSubdivision, UnknownTimezone: bad location codes.
        InvalidInput: closures that are not dates.
    """

    country: str = attrs.field(converter=validate_country)
    timezone: str
    subdivision: str | None = None
    hours: BusinessHours = attrs.field(factory=BusinessHours)
    closures: frozenset[dt.date] = attrs.field(factory=frozenset, converter=_freeze_closures)
    _tables: _Tables = attrs.field(init=False, eq=False, hash=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.subdivision is not None:
            canonical = validate_subdivision(self.country, self.subdivision)
            object.__setattr__(self, "subdivision", canonical)
        if not isinstance(self.hours, BusinessHours):
            raise InvalidInput("calendar: hours must be a BusinessHours value")
        load_timezone(self.timezone)
        tables = _tables_for(
            self.country, self.subdivision, self.timezone, self.hours, self.closures
        )
        object.__setattr__(self, "_tables", tables)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The calendar's timezone as a ``ZoneInfo`` (from the ``tzdata`` package)."""
        return self._tables.zone

    def is_business_day(self, day: dt.date) -> bool:
        """Whether the local date ``day`` is a business day of this calendar.

        Raises:
            InvalidInput: ``day`` is not a ``date`` (a ``datetime`` is refused: its local date
                depends on a timezone).
        """
        day = _day_argument(day, "day", "is_business_day")
        return day.toordinal() in self._tables.year(day.year).day_set

    def add_business_days(self, day: dt.date, n: int) -> dt.date:
        """The n-th business day strictly after the local date ``day``.

        ``n = 0`` gives ``day`` itself when it is a business day, else the next business day.
        The cost does not depend on ``n``.

        Raises:
            InvalidInput: ``day`` is not a ``date``, or ``n`` is negative.
        """
        day = _day_argument(day, "day", "add_business_days")
        if n < 0:
            raise InvalidInput(f"BusinessCalendar.add_business_days: n must be >= 0, got {n}")
        table, index = self._tables.nth_after(day.toordinal(), day.year, n)
        return dt.date.fromordinal(table.days[index])

    def business_days_between(self, start: dt.date, end: dt.date) -> int:
        """How many business days lie in ``(start, end]`` (negative when ``end < start``).

        ``add_business_days(d, n)`` is the first date ``e`` with
        ``business_days_between(d, e) == n`` for ``n >= 1``.
        """
        start = _day_argument(start, "start", "business_days_between")
        end = _day_argument(end, "end", "business_days_between")
        if end < start:
            return -self.business_days_between(end, start)
        low, high = start.toordinal(), end.toordinal()
        total = 0
        for year in range(start.year, end.year + 1):
            days = self._tables.year(year).days
            total += bisect_right(days, high) - bisect_right(days, low)
        return total

    def business_window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """Opening and closing instants of the local date ``day``, in the calendar's zone.

        Returns None when ``day`` is not a business day (or its hours fall wholly into a DST
        gap). The window is half-open: the closing instant itself is outside.
        """
        day = _day_argument(day, "day", "business_window")
        table = self._tables.year(day.year)
        ordinal = day.toordinal()
        index = bisect_left(table.days, ordinal)
        if index == len(table.days) or table.days[index] != ordinal:
            return None
        opened, closed = table.opens[index], table.closes[index]
        if opened >= closed:
            return None
        zone = self._tables.zone
        return (
            dt.datetime.fromtimestamp(opened, zone),
            dt.datetime.fromtimestamp(closed, zone),
        )

    def next_business_moment(self, moment: dt.datetime) -> dt.datetime:
        """The earliest instant at or after ``moment`` inside business hours on a business day.

        Returns the same instant when ``moment`` already is inside, expressed in the calendar's
        timezone; otherwise the opening of the next business window.

        Raises:
            InvalidInput: ``moment`` is naive (or not a datetime).
        """
        moment = _aware_argument(moment, "moment", "next_business_moment")
        ts = _posix_second(moment)
        table, index = self._tables.window_after(ts)
        opened = table.opens[index]
        if opened <= ts:
            return moment.astimezone(self._tables.zone)
        return dt.datetime.fromtimestamp(opened, self._tables.zone)

    def place_in_business_hours(self, day: dt.date, fraction: float = 0.0) -> dt.datetime:
        """The instant ``fraction`` of the way through the business window of ``day``.

        ``fraction = 0`` is the opening instant; the result is truncated to whole seconds and
        is always inside the window. Useful to spread sends over a day deterministically.

        Raises:
            InvalidInput: ``day`` is not a business day, or ``fraction`` is not in [0, 1).
        """
        window = self.business_window(day)
        if not 0.0 <= fraction < 1.0:
            raise InvalidInput(
                f"BusinessCalendar.place_in_business_hours: fraction {fraction} not in [0, 1)"
            )
        if window is None:
            raise InvalidInput(
                f"BusinessCalendar.place_in_business_hours: {day} is not a business day "
                f"in {self.country}"
            )
        opened, closed = window
        span = int((closed - opened).total_seconds())
        return opened + dt.timedelta(seconds=min(int(span * fraction), span - 1))

    def moment_after_wait(self, event: dt.datetime, business_days: int) -> dt.datetime:
        """When a step that waits ``business_days`` after ``event`` is due (DESIGN 1.4), in UTC.

        A wait of 0 is the next business moment at or after ``event``. A wait of ``n >= 1`` is
        the n-th business day strictly after the local date of ``event``, at the event's local
        wall-clock time (whole seconds) when that lies inside the day's hours, else at opening.

        This is the one calendar call per (lead, step): it gives the same instant as composing
        ``next_business_moment`` (n = 0) or ``add_business_days`` and ``business_window``
        (n >= 1), on integers (day ordinals, POSIX seconds, ``bisect``) over the calendar's
        cached year tables. Unlike ``next_business_moment``, the result is an aware datetime in
        **UTC**: its result goes to storage, which keeps UTC instants. The cost does not depend
        on ``n``.

        Raises:
            InvalidInput: ``event`` is naive, or ``business_days`` is negative.
        """
        if type(event) is not dt.datetime or event.tzinfo is None:
            event = _aware_argument(event, "event", "moment_after_wait")
        if business_days <= 0:
            return self._next_moment_utc(event, business_days)
        tables = self._tables
        local = event.astimezone(tables.zone)
        table = tables.years.get(local.year) or tables.year(local.year)
        days = table.days
        index = bisect_right(days, local.toordinal()) + business_days - 1
        while index >= len(days):
            index -= len(days)
            table = tables.year(table.year + 1)
            days = table.days
        opened = table.opens[index]
        closed = table.closes[index]
        if opened >= closed:  # the day's hours fall wholly into a DST gap (rare)
            return self._next_moment_utc(dt.datetime.fromtimestamp(opened, _UTC), 0)
        ordinal = days[index]
        second = local.hour * 3600 + local.minute * 60 + local.second
        open_second, close_second = tables.hours[(ordinal + 6) % 7]
        if open_second < second < close_second:  # (at the opening second: the opening)
            if table.exact[index]:
                ts = (ordinal - _EPOCH_ORDINAL) * _DAY + second - table.offsets[index]
            else:
                ts = min(max(_resolve(tables.zone, ordinal, second), opened), closed - 1)
            return dt.datetime.fromtimestamp(ts, _UTC)
        return table.opening(index)

    def _next_moment_utc(self, event: dt.datetime, business_days: int) -> dt.datetime:
        """``moment_after_wait`` for a wait of 0: the next business moment, in UTC."""
        if business_days < 0:
            raise InvalidInput(
                "BusinessCalendar.moment_after_wait: business_days must be >= 0, "
                f"got {business_days}"
            )
        ts = (event - _EPOCH) // _SECOND  # _posix_second, inlined
        table, index = self._tables.window_after(ts)
        if table.opens[index] <= ts:
            return event if event.tzinfo is _UTC else event.astimezone(_UTC)
        return table.opening(index)


def window_after_second(calendar: BusinessCalendar, second: int) -> tuple[int, int]:
    """(open, close) POSIX seconds of the first business window closing after ``second``.

    For the staggering allocator in this package; public callers use ``next_business_moment``.
    """
    table, index = calendar._tables.window_after(second)
    return table.opens[index], table.closes[index]
