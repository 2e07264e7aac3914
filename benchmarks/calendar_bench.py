"""Benchmark: one (lead, step) timing operation, ours against reference implementations.

One operation takes a lead's event instant (UTC) and a wait of ``n`` business days and returns
the UTC instant the step is due, by DESIGN.md 1.4: convert to the lead's local time; a wait of
0 is the next business moment; a wait of ``n >= 1`` is the n-th business day strictly after
the event's local date, at the event's wall-clock time when that is inside business hours
(09:00–17:00), else at opening; back to UTC.

Implementations, measured in the same run on the same inputs:

* ours: ``BusinessCalendar.moment_after_wait``, one call per operation (its result is UTC);
* minimal (the reference): a minimal hand-written loop over a frozenset of holiday dates and
  one weekmask per country, with ``zoneinfo.ZoneInfo`` (the operating system's zone data
  first);
* workalendar: ``add_working_days`` / ``is_working_day`` of its country calendars;
* numpy: ``numpy.busday_offset`` / ``is_busday`` with pandas timezone conversion, vectorised
  per country.

It prints µs per operation of ours and of the minimal loop (medians of ``--repeat`` rounds,
each round timing ours then the minimal loop on the same inputs, so a change in the machine's
load hits both), **ours ÷ minimal** (the ratio of the medians, and the median of the per-round
ratios), the same per wait n, the other references' µs per operation and their ratio to the
minimal loop, the cold set-up of our calendar per country, the staggering allocator on
100,000 requests, and every input where a reference disagrees with ours, grouped by reason
(``--all`` lists each input). ``--cpu-time`` times with the process's CPU time instead of
wall time, which leaves out the waits for a core on a busy machine.

Run: ``.venv/bin/pip install --group bench`` (pip >= 25.1), then
``.venv/bin/python benchmarks/calendar_bench.py``.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import functools
import platform
import random
import statistics
import sys
import time
import warnings
import zoneinfo
from collections.abc import Callable
from typing import Any

import holidays

from starlight_sequences.calendar import (
    BusinessCalendar,
    SenderLimits,
    SlotRequest,
    allocate_slots,
)
from starlight_sequences.calendar._holidays import _entity
from starlight_sequences.locations import TZDATA_VERSION, load_timezone

UTC = dt.UTC
OPEN, CLOSE = dt.time(9), dt.time(17)
OPEN_S, CLOSE_S = 9 * 3600, 17 * 3600

# 40 countries, each with its main zone. CA/Vancouver is where the OS zone data (older) and
# tzdata 2026f disagree from 2026-11-01; CN and TW have make-up working days; IL, SA, EG, AE
# have other weekends.
COUNTRIES: tuple[tuple[str, str], ...] = (
    ("US", "America/New_York"),
    ("CA", "America/Vancouver"),
    ("MX", "America/Mexico_City"),
    ("BR", "America/Sao_Paulo"),
    ("AR", "America/Argentina/Buenos_Aires"),
    ("CL", "America/Santiago"),
    ("CO", "America/Bogota"),
    ("GB", "Europe/London"),
    ("IE", "Europe/Dublin"),
    ("DE", "Europe/Berlin"),
    ("FR", "Europe/Paris"),
    ("ES", "Europe/Madrid"),
    ("IT", "Europe/Rome"),
    ("NL", "Europe/Amsterdam"),
    ("BE", "Europe/Brussels"),
    ("CH", "Europe/Zurich"),
    ("AT", "Europe/Vienna"),
    ("SE", "Europe/Stockholm"),
    ("NO", "Europe/Oslo"),
    ("DK", "Europe/Copenhagen"),
    ("FI", "Europe/Helsinki"),
    ("PL", "Europe/Warsaw"),
    ("CZ", "Europe/Prague"),
    ("PT", "Europe/Lisbon"),
    ("TR", "Europe/Istanbul"),
    ("IL", "Asia/Jerusalem"),
    ("AE", "Asia/Dubai"),
    ("SA", "Asia/Riyadh"),
    ("EG", "Africa/Cairo"),
    ("ZA", "Africa/Johannesburg"),
    ("NG", "Africa/Lagos"),
    ("IN", "Asia/Kolkata"),
    ("CN", "Asia/Shanghai"),
    ("TW", "Asia/Taipei"),
    ("JP", "Asia/Tokyo"),
    ("KR", "Asia/Seoul"),
    ("SG", "Asia/Singapore"),
    ("MY", "Asia/Kuala_Lumpur"),
    ("AU", "Australia/Sydney"),
    ("NZ", "Pacific/Auckland"),
)
FIRST = dt.datetime(2026, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 3 * 365 * 86_400
YEARS = range(2025, 2031)  # data for every reference; results can run past the inputs' years

Input = tuple[str, str, dt.datetime, int]


def make_inputs(count: int, seed: int) -> list[Input]:
    rng = random.Random(seed)
    inputs: list[Input] = []
    for _ in range(count):
        country, zone = rng.choice(COUNTRIES)
        start = FIRST + dt.timedelta(seconds=rng.randrange(SPAN_SECONDS))
        n = rng.choice((0, 0, 1, 2, 3, 4, 5, 7, 10, 15, 30, 60))
        inputs.append((country, zone, start, n))
    return inputs


# --- ours ------------------------------------------------------------------------------------


OURS: dict[tuple[str, str], BusinessCalendar] = {}


def run_ours(inputs: list[Input]) -> list[dt.datetime]:
    calendars = OURS  # built once, outside the timed runs
    out: list[dt.datetime] = []
    append = out.append
    for country, zone, start, n in inputs:
        append(calendars[country, zone].moment_after_wait(start, n))
    return out


# --- minimal hand-written loop ---------------------------------------------------------------


class LoopCalendar:
    """What a careful engineer writes in an afternoon: one weekmask, a frozenset of dates."""

    def __init__(self, country: str, zone: str) -> None:
        entity = _entity(country, None, YEARS[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.holidays = frozenset(holidays.country_holidays(country, years=YEARS))
        self.weekend = frozenset(entity.weekend)
        self.zone = zoneinfo.ZoneInfo(zone)

    def is_business_day(self, day: dt.date) -> bool:
        return day.weekday() not in self.weekend and day not in self.holidays

    def op(self, start: dt.datetime, n: int) -> dt.datetime:
        local = start.astimezone(self.zone)
        day = local.date()
        wall = local.time().replace(tzinfo=None)
        one = dt.timedelta(days=1)
        if n == 0:
            if self.is_business_day(day) and wall < CLOSE:
                if wall >= OPEN:
                    return start
                return dt.datetime.combine(day, OPEN, self.zone).astimezone(UTC)
            day += one
            while not self.is_business_day(day):
                day += one
            return dt.datetime.combine(day, OPEN, self.zone).astimezone(UTC)
        left = n
        while left:
            day += one
            if self.is_business_day(day):
                left -= 1
        at = wall.replace(microsecond=0) if OPEN <= wall < CLOSE else OPEN
        return dt.datetime.combine(day, at, self.zone).astimezone(UTC)


def run_loop(inputs: list[Input]) -> list[dt.datetime]:
    calendars = LOOP_DATA  # built once, outside the timed runs, like our calendars
    return [calendars[c, z].op(start, n) for c, z, start, n in inputs]


# --- workalendar -----------------------------------------------------------------------------


def workalendar_calendars() -> dict[str, Any]:
    from workalendar.registry import registry

    found: dict[str, Any] = {}
    for country, _ in COUNTRIES:
        cls = registry.get(country)
        if cls is not None:
            found[country] = cls()
    return found


def run_workalendar(inputs: list[Input], calendars: dict[str, Any]) -> list[object]:
    zones = {z: zoneinfo.ZoneInfo(z) for _, z, _, _ in inputs}
    one = dt.timedelta(days=1)
    out: list[object] = []
    for country, zone_name, start, n in inputs:
        cal = calendars.get(country)
        if cal is None:
            out.append(None)
            continue
        zone = zones[zone_name]
        try:
            local = start.astimezone(zone)
            day = local.date()
            wall = local.time().replace(tzinfo=None)
            if n == 0:
                if cal.is_working_day(day) and wall < CLOSE:
                    result = (
                        start
                        if wall >= OPEN
                        else dt.datetime.combine(day, OPEN, zone).astimezone(UTC)
                    )
                else:
                    day += one
                    while not cal.is_working_day(day):
                        day += one
                    result = dt.datetime.combine(day, OPEN, zone).astimezone(UTC)
            else:
                target = cal.add_working_days(day, n)
                at = wall.replace(microsecond=0) if OPEN <= wall < CLOSE else OPEN
                result = dt.datetime.combine(target, at, zone).astimezone(UTC)
            out.append(result)
        except Exception as exc:  # a reference library failing is a finding, not a crash
            out.append(exc)
    return out


# --- numpy + pandas --------------------------------------------------------------------------


def run_numpy(inputs: list[Input]) -> list[dt.datetime]:
    import numpy as np
    import pandas as pd

    groups: dict[tuple[str, str], list[int]] = collections.defaultdict(list)
    for index, (country, zone, _, _) in enumerate(inputs):
        groups[country, zone].append(index)
    out: list[dt.datetime] = [FIRST] * len(inputs)
    for (country, zone), rows in groups.items():
        loop = LOOP_DATA[country, zone]
        weekmask = "".join("0" if d in loop.weekend else "1" for d in range(7))
        hols = np.array(sorted(loop.holidays), dtype="datetime64[D]")
        starts = pd.DatetimeIndex([inputs[i][2] for i in rows])
        waits = np.array([inputs[i][3] for i in rows])
        local = starts.tz_convert(zone).tz_localize(None).values
        days = local.astype("datetime64[D]")
        secs = (local - days.astype("datetime64[ns]")).astype("int64") // 1_000_000_000
        business = np.is_busday(days, weekmask=weekmask, holidays=hols)
        following = np.busday_offset(
            days, np.maximum(waits, 1), roll="backward", weekmask=weekmask, holidays=hols
        )
        inside = (secs >= OPEN_S) & (secs < CLOSE_S)
        zero = waits == 0
        same_day = zero & business & (secs < CLOSE_S)
        target_day = np.where(same_day, days, following)
        at = np.where(inside & (zero & same_day | ~zero), secs, OPEN_S)
        naive = target_day.astype("datetime64[ns]") + at.astype("timedelta64[s]")
        result = (
            pd.DatetimeIndex(naive)
            .tz_localize(
                zone, ambiguous=np.ones(len(rows), dtype=bool), nonexistent="shift_forward"
            )
            .tz_convert("UTC")
        )
        for i, value in zip(rows, result, strict=True):
            out[i] = value.to_pydatetime()
    return out


LOOP_DATA: dict[tuple[str, str], LoopCalendar] = {}


# --- mismatches ------------------------------------------------------------------------------


def reason(
    library: str,
    item: Input,
    ours: dt.datetime,
    theirs: object,
    is_business: Callable[[dt.date], bool] | None,
) -> tuple[str, dt.date | None]:
    """Why ``theirs`` differs from ours, and the first date where the calendars disagree."""
    country, zone, start, _ = item
    if theirs is None:
        return f"{library} has no calendar for {country}", None
    if isinstance(theirs, Exception):
        return f"{library} raised {type(theirs).__name__}: {str(theirs)[:60]}", None
    assert isinstance(theirs, dt.datetime)
    system, ours_zone = zoneinfo.ZoneInfo(zone), load_timezone(zone)
    for instant in (start, ours, theirs):
        os_offset = instant.astimezone(system).utcoffset()
        tzdata_offset = instant.astimezone(ours_zone).utcoffset()
        if os_offset != tzdata_offset:
            return (
                f"zone data: the OS gives {zone} UTC{_hours(os_offset)}, "
                f"tzdata {TZDATA_VERSION} gives UTC{_hours(tzdata_offset)}",
                None,
            )
    calendar = BusinessCalendar(country=country, timezone=zone)
    day = start.astimezone(calendar.zone).date() - dt.timedelta(days=1)
    last = max(ours, theirs).astimezone(calendar.zone).date()
    while is_business is not None and day <= last:
        if calendar.is_business_day(day) != is_business(day):
            year_entity = _entity(country, None, day.year)
            if calendar.is_business_day(day) and year_entity.is_weekend(day):
                if day in year_entity.weekend_workdays:
                    return "make-up working day (holidays weekend_workdays) on a weekend", day
                return "weekend of that date differs from the country's usual weekmask", day
            if not calendar.is_business_day(day):
                name = year_entity.get(day)
                if name:
                    return f"holiday in the holidays package, a working day for {library}", day
                return "weekend day in the holidays package, a working day for " + library, day
            return f"holiday for {library}, a working day in the holidays package", day
        day += dt.timedelta(days=1)
    return "other", None


def _hours(delta: dt.timedelta | None) -> str:
    total = int(delta.total_seconds()) if delta is not None else 0
    sign = "+" if total >= 0 else "-"
    return f"{sign}{abs(total) // 3600}"


def report(
    library: str,
    inputs: list[Input],
    ours: list[dt.datetime],
    theirs: list[object],
    is_business: Callable[[str, str], Callable[[dt.date], bool] | None],
    show_all: bool,
) -> int:
    groups: dict[tuple[str, str], list[int]] = collections.defaultdict(list)
    details: dict[int, dt.date | None] = {}
    for index, (item, mine, other) in enumerate(zip(inputs, ours, theirs, strict=True)):
        if other == mine:
            continue
        why, day = reason(library, item, mine, other, is_business(item[0], item[1]))
        groups[item[0], why].append(index)
        details[index] = day
    total = sum(len(rows) for rows in groups.values())
    print(
        f"\n{library}: {total} of {len(inputs)} inputs differ from ours "
        f"({100 * total / len(inputs):.2f} %)"
    )
    for (country, why), rows in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        first = rows[0]
        _, _, start, n = inputs[first]
        print(f"  {country}: {len(rows):6d}  {why}")
        print(
            f"      e.g. {start:%Y-%m-%d %H:%M}Z n={n}: ours {ours[first]:%Y-%m-%d %H:%M}Z, "
            f"{library} {_show(theirs[first])}{_day(country, details[first])}"
        )
        if show_all:
            for row in rows[1:]:
                _c, _z, start, n = inputs[row]
                print(
                    f"      {start.isoformat()} n={n}: ours {ours[row].isoformat()}, "
                    f"{library} {_show(theirs[row])}{_day(country, details[row])}"
                )
    return total


def _day(country: str, day: dt.date | None) -> str:
    if day is None:
        return ""
    name = _entity(country, None, day.year).get(day)
    return f" [first disagreement {day:%a %Y-%m-%d}{f': {name}' if name else ''}]"


def _show(value: object) -> str:
    if isinstance(value, dt.datetime):
        return f"{value.astimezone(UTC):%Y-%m-%d %H:%M}Z"
    return repr(value)[:60]


# --- main ------------------------------------------------------------------------------------


# The clock of the timed runs: wall time, or with --cpu-time the process's CPU time, which
# leaves out the time the process waits for a core on a shared machine.
CLOCK: list[Callable[[], float]] = [time.perf_counter]


def timed(function: Callable[[], object], repeat: int) -> tuple[float, object]:
    runs: list[float] = []
    result: object = None
    for _ in range(repeat):
        began = CLOCK[0]()
        result = function()
        runs.append(CLOCK[0]() - began)
    return statistics.median(runs), result


def timed_pair(
    ours: Callable[[], object], minimal: Callable[[], object], repeat: int
) -> tuple[float, float, float]:
    """Seconds of ours and of the minimal loop (medians), and the median per-round ratio.

    Each round times ours, then the minimal loop, on the same inputs.
    """
    ours_runs: list[float] = []
    minimal_runs: list[float] = []
    for _ in range(repeat):
        began = CLOCK[0]()
        ours()
        middle = CLOCK[0]()
        minimal()
        ours_runs.append(middle - began)
        minimal_runs.append(CLOCK[0]() - middle)
    ratios = [o / m for o, m in zip(ours_runs, minimal_runs, strict=True)]
    return statistics.median(ours_runs), statistics.median(minimal_runs), statistics.median(ratios)


def by_wait(inputs: list[Input], repeat: int) -> None:
    """Ours ÷ minimal on the inputs of each wait n (the minimal loop's cost grows with n)."""
    print(
        f"\n{'per wait n':<12}{'inputs':>8}{'ours µs':>10}{'minimal µs':>12}{'ours ÷ minimal':>16}"
    )
    for n in sorted({n for *_, n in inputs}):
        subset = [item for item in inputs if item[3] == n]
        ours, minimal, _ = timed_pair(
            functools.partial(run_ours, subset), functools.partial(run_loop, subset), repeat
        )
        size = len(subset)
        print(
            f"{'n = ' + str(n):<12}{size:8d}{ours / size * 1e6:10.2f}"
            f"{minimal / size * 1e6:12.2f}{ours / minimal:16.2f}"
        )


def cold_setup() -> list[float]:
    """Milliseconds to build one country's first year table (holidays already imported)."""
    costs: list[float] = []
    for country, zone in COUNTRIES:
        # Import the country's holidays module first: that is Python start-up, not set-up.
        holidays.country_holidays(country, years=1999)
        began = time.perf_counter()
        BusinessCalendar(country=country, timezone=zone).is_business_day(dt.date(2031, 6, 2))
        costs.append((time.perf_counter() - began) * 1000)
    return costs


def staggering(count: int) -> list[tuple[str, float, dt.datetime]]:
    rng = random.Random(7)
    calendars = [BusinessCalendar(country=c, timezone=z) for c, z in COUNTRIES]
    start = dt.datetime(2026, 12, 1, tzinfo=UTC)
    requests = [
        SlotRequest(
            key=f"send-{i}",
            earliest=start + dt.timedelta(seconds=rng.randrange(7 * 86_400)),
            calendar=rng.choice(calendars),
            follow_up=rng.random() < 0.3,
        )
        for i in range(count)
    ]
    scenarios = {
        "mailbox: 2 min spacing, 50/day": SenderLimits(
            min_spacing=dt.timedelta(minutes=2),
            daily_cap=50,
            timezone="Europe/London",
            jitter=dt.timedelta(minutes=1),
        ),
        "LinkedIn: 5 min spacing, 100/week": SenderLimits(
            min_spacing=dt.timedelta(minutes=5),
            weekly_cap=100,
            timezone="America/New_York",
        ),
        "spacing only: 10 s": SenderLimits(
            min_spacing=dt.timedelta(seconds=10),
            timezone="UTC",
        ),
    }
    rows = []
    for name, limits in scenarios.items():
        began = time.perf_counter()
        slots = allocate_slots(requests, limits, seed="bench")
        rows.append((name, time.perf_counter() - began, max(slots.values())))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--all", action="store_true", help="list every mismatching input")
    parser.add_argument("--no-references", action="store_true")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time with the process's CPU time instead of wall time (steadier on a busy machine)",
    )
    args = parser.parse_args()
    if args.cpu_time:
        CLOCK[0] = time.process_time

    print(
        f"python {platform.python_version()} on {platform.machine()} "
        f"({platform.processor() or 'unknown cpu'}), tzdata {TZDATA_VERSION}, "
        f"holidays {holidays.__version__}"
    )
    costs = cold_setup()
    print(
        f"cold set-up per country (first year table): median {statistics.median(costs):.2f} ms, "
        f"max {max(costs):.2f} ms over {len(costs)} countries"
    )

    inputs = make_inputs(args.count, args.seed)
    print(
        f"{len(inputs)} inputs, {len({c for c, *_ in inputs})} countries, "
        f"{FIRST:%Y-%m-%d} + 3 years, n in 0..60"
    )
    for c, z, _, _ in inputs:
        if (c, z) not in OURS:
            OURS[c, z] = BusinessCalendar(country=c, timezone=z)
    for c, z in {(c, z) for c, z, _, _ in inputs}:
        LOOP_DATA[c, z] = LoopCalendar(c, z)
    run_ours(inputs)  # warm the year tables: the steady state is what a service sees
    ours = run_ours(inputs)
    loop_out = run_loop(inputs)
    ours_time, loop_time, ratio = timed_pair(
        lambda: run_ours(inputs), lambda: run_loop(inputs), args.repeat
    )
    per_op = ours_time / len(inputs) * 1e6
    minimal = loop_time / len(inputs) * 1e6
    clock = "CPU time" if args.cpu_time else "wall time"
    print(f"\nmedians of {args.repeat} rounds of {clock} (each round: ours, then the minimal loop)")
    print(f"{'implementation':<34}{'µs/op':>8}{'÷ minimal':>11}")
    print(f"{'ours (moment_after_wait)':<34}{per_op:8.2f}{per_op / minimal:11.2f}")
    print(f"{'minimal loop (frozenset, zoneinfo)':<34}{minimal:8.2f}{1.0:11.2f}")
    print(
        f"ours ÷ minimal: {per_op / minimal:.2f} (ratio of the medians), "
        f"{ratio:.2f} (median of the per-round ratios)"
    )
    build_time, _ = timed(
        lambda: [BusinessCalendar(country=c, timezone=z) for c, z, _, _ in inputs], args.repeat
    )
    build = build_time / len(inputs) * 1e6
    print(
        f"{'  + a BusinessCalendar per lead':<34}{build:8.2f}   (value construction, tables shared)"
    )
    by_wait(inputs, args.repeat)
    if args.no_references:
        return 0

    results: dict[str, tuple[float, list[object]]] = {}
    results["hand-written loop + zoneinfo"] = (loop_time, list(loop_out))
    try:
        import numpy  # noqa: F401
        import pandas  # noqa: F401

        numpy_time, numpy_out = timed(lambda: run_numpy(inputs), args.repeat)
        results["numpy.busday_offset + pandas"] = (numpy_time, numpy_out)
    except ImportError as exc:
        print(f"numpy/pandas not installed: {exc}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcal = workalendar_calendars()
            run_workalendar(inputs[:2000], wcal)
            w_time, w_out = timed(lambda: run_workalendar(inputs, wcal), max(1, args.repeat // 2))
        results["workalendar.add_working_days"] = (w_time, w_out)
    except ImportError as exc:
        print(f"workalendar not installed: {exc}")
    print(f"\n{'other references':<34}{'µs/op':>8}{'÷ minimal':>11}")
    for name, (seconds, _) in list(results.items())[1:]:
        theirs = seconds / len(inputs) * 1e6
        print(f"{name:<34}{theirs:8.2f}{theirs / minimal:11.2f}")

    def loop_days(country: str, zone: str) -> Callable[[dt.date], bool]:
        return LOOP_DATA[country, zone].is_business_day

    def workalendar_days(country: str, zone: str) -> Callable[[dt.date], bool] | None:
        cal = wcal.get(country)
        if cal is None:
            return None

        def check(day: dt.date) -> bool:
            try:
                return bool(cal.is_working_day(day))
            except Exception:
                return True

        return check

    for name, (_, out) in results.items():
        days = workalendar_days if name.startswith("workalendar") else loop_days
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report(name, inputs, ours, out, days, args.all)

    print("\nstaggering (allocate_slots), one sender:")
    for name, seconds, last in staggering(args.count):
        print(f"  {args.count} requests, {name:<36} {seconds:6.2f} s  (last slot {last:%Y-%m-%d})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
