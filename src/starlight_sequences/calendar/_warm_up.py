"""Warm-up ramp: a new mailbox's daily cap grows by business day up to a ceiling (pure)."""

from __future__ import annotations

import datetime as dt

import attrs

from starlight_sequences.calendar._calendar import BusinessCalendar
from starlight_sequences.errors import InvalidInput, InvalidWarmUp, UnknownSubdivision

__all__ = ["WarmUp"]


def _positive_int(field: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidWarmUp(field, f"{value!r} is not a whole number")
    if value < minimum:
        raise InvalidWarmUp(field, f"{value} must be at least {minimum}")
    return value


@attrs.frozen(kw_only=True)
class WarmUp:
    """A mailbox's daily cap that ramps: ``start`` sends a day, ``step`` more each business
    day, never more than ``ceiling`` (e.g. 10 → +2 a day → 40).

    The ramp counts from ``since``, the mailbox-local date it began: on ``since`` (and on any
    earlier date) the cap is ``start``; on a later date ``d`` it is
    ``min(ceiling, start + step * n)`` where ``n`` is the number of the mailbox's business days
    in ``(since, d]`` — strictly after ``since``, up to and including ``d``. So the cap grows
    on the morning of each business day and holds over weekends and holidays (a non-business
    day has the cap of the day before it).

    The mailbox's business days are those of ``country`` (and ``subdivision``) as the
    ``holidays`` package has them; with no country (the default) they are Monday to Friday,
    with no holidays.

    Attributes:
        start: the cap on the first day (at least 1).
        step: how many more sends each business day allows (0 keeps the cap at ``start``).
        ceiling: the highest cap the ramp reaches (at least ``start``).
        since: the mailbox-local date the ramp began (a ``date``, not a ``datetime``).
        country: ISO 3166-1 alpha-2 code of the mailbox's business days, or None.
        subdivision: the country's region code as the ``holidays`` package names it, or None.

    Raises:
        InvalidWarmUp: naming the field (``start``, ``step``, ``ceiling``, ``since``,
            ``country``, ``subdivision``).
    """

    start: int
    step: int
    ceiling: int
    since: dt.date
    country: str | None = None
    subdivision: str | None = None
    _calendar: BusinessCalendar | None = attrs.field(
        init=False, eq=False, hash=False, repr=False, default=None
    )

    def __attrs_post_init__(self) -> None:
        _positive_int("start", self.start, 1)
        _positive_int("step", self.step, 0)
        _positive_int("ceiling", self.ceiling, 1)
        if self.ceiling < self.start:
            raise InvalidWarmUp("ceiling", f"{self.ceiling} is below start {self.start}")
        if isinstance(self.since, dt.datetime) or not isinstance(self.since, dt.date):
            raise InvalidWarmUp("since", f"{self.since!r} is not a date")
        if self.subdivision is not None and self.country is None:
            raise InvalidWarmUp("subdivision", "a subdivision needs a country")
        if self.country is not None:
            try:
                calendar = BusinessCalendar(
                    country=self.country, timezone="UTC", subdivision=self.subdivision
                )
            except UnknownSubdivision as exc:
                raise InvalidWarmUp("subdivision", str(exc)) from None
            except InvalidInput as exc:
                raise InvalidWarmUp("country", str(exc)) from None
            # Frozen class: attrs documents object.__setattr__ as the way to normalise on init.
            object.__setattr__(self, "country", calendar.country)
            object.__setattr__(self, "subdivision", calendar.subdivision)
            object.__setattr__(self, "_calendar", calendar)

    def is_business_day(self, day: dt.date) -> bool:
        """Whether the mailbox-local date ``day`` is a business day of the mailbox."""
        if self._calendar is None:
            return day.weekday() < 5
        return self._calendar.is_business_day(day)

    @property
    def business_days_to_ceiling(self) -> int | None:
        """How many business days after ``since`` the cap first equals ``ceiling``: 0 when
        ``start == ceiling``, None when it never does (``step == 0`` below the ceiling)."""
        if self.start == self.ceiling:
            return 0
        if self.step == 0:
            return None
        return -(-(self.ceiling - self.start) // self.step)

    def cap_on(self, day: dt.date) -> int:
        """The most emails the mailbox may send on the mailbox-local date ``day``.

        Pure: depends only on the ramp and ``day``. The cost grows with the business days
        until the ceiling, never with how long ago ``since`` was beyond that.

        Raises:
            InvalidWarmUp: ``day`` is not a ``date`` (a ``datetime`` is refused: its local
                date depends on a timezone).
        """
        if isinstance(day, dt.datetime) or not isinstance(day, dt.date):
            raise InvalidWarmUp("cap_on", f"{day!r} is not a date")
        needed = self.business_days_to_ceiling
        if needed is None or needed == 0 or day <= self.since:
            return self.start
        counted = 0
        current = self.since
        while current < day and counted < needed:
            current += dt.timedelta(days=1)
            if self.is_business_day(current):
                counted += 1
        return min(self.ceiling, self.start + self.step * counted)
