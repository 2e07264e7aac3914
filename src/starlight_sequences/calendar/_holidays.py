"""Working days of a country (and subdivision) per year, read from the ``holidays`` package.

The package is the single source of weekends, holidays and make-up working days. Each
(country, subdivision, year) is built once and kept in a bounded module-level cache, so
thousands of leads in the same countries share the tables.
"""

from __future__ import annotations

import datetime as dt
import functools
import warnings

import holidays

__all__ = ["working_days"]

_HOLIDAY_YEARS_CACHED = 16_384


@functools.lru_cache(maxsize=_HOLIDAY_YEARS_CACHED)
def _entity(country: str, subdivision: str | None, year: int) -> holidays.HolidayBase:
    with warnings.catch_warnings():
        # Some countries (IN, MH, ...) warn that their data covers only a range of years;
        # outside it the package still gives weekends and fixed-date holidays, which is what we
        # use. The category differs between releases (UserWarning, plain Warning), so all go.
        warnings.simplefilter("ignore")
        return holidays.country_holidays(country, subdiv=subdivision, years=year)


@functools.lru_cache(maxsize=_HOLIDAY_YEARS_CACHED)
def working_days(country: str, subdivision: str | None, year: int) -> tuple[int, ...]:
    """Ordinals (``date.toordinal()``) of the working days of ``year``, ascending.

    A day is a working day exactly when ``holidays`` says so: a weekend day of that country on
    that date is not, unless it is a make-up working day (``weekend_workdays``); a holiday
    (observed days included) is not.

    Args:
        country: canonical code (see ``locations.validate_country``).
        subdivision: canonical subdivision code, or None for national holidays only.
        year: any year; the package computes far-future years on demand.
    """
    entity = _entity(country, subdivision, year)
    closed = {day.toordinal() for day in entity if day.year == year}
    make_up: set[int] = {day.toordinal() for day in entity.weekend_workdays if day.year == year}
    if getattr(entity, "has_substituted_holidays", False):
        # A make-up day can be declared by the neighbouring year's data (a Saturday in late
        # December that compensates for a bridge day in January).
        for other in (year - 1, year + 1):
            make_up.update(
                day.toordinal()
                for day in _entity(country, subdivision, other).weekend_workdays
                if day.year == year
            )
    first = dt.date(year, 1, 1).toordinal()
    last = dt.date(year, 12, 31).toordinal()
    result: list[int] = []
    # Asked date by date through the public ``is_weekend``: countries whose weekend changed
    # over time (AE, SA, ...) or differs per subdivision (MY) answer per date. It costs about
    # a millisecond per (country, subdivision, year), once, thanks to the cache.
    for ordinal in range(first, last + 1):
        if entity.is_weekend(dt.date.fromordinal(ordinal)):
            if ordinal in make_up:
                result.append(ordinal)
        elif ordinal not in closed:
            result.append(ordinal)
    return tuple(result)
