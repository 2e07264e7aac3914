"""Staggering: assign send instants for one sender identity, respecting spacing and caps.

The allocator is pure and deterministic: the same requests, limits, seed and booked instants
give the same slots, whatever order the requests come in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zoneinfo
from bisect import bisect_right, insort
from collections.abc import Iterable

import attrs

from starlight_sequences.calendar._calendar import BusinessCalendar, window_after_second
from starlight_sequences.calendar._warm_up import WarmUp
from starlight_sequences.errors import InvalidStaggering, UnknownTimezone
from starlight_sequences.locations import load_timezone

__all__ = ["SenderLimits", "SlotRequest", "allocate_slots"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICRO = dt.timedelta(microseconds=1)
_SECOND_US = 1_000_000
_DAY_US = 86_400 * _SECOND_US


def _micros(moment: dt.datetime) -> int:
    return (moment - _EPOCH) // _MICRO


@attrs.frozen(kw_only=True)
class SenderLimits:
    """How fast one sender identity (a mailbox, a LinkedIn account) may send.

    Attributes:
        min_spacing: no two sends of this sender are closer than this (e.g. 4 minutes).
        timezone: IANA zone in which the sender's days and ISO weeks are counted.
        daily_cap: at most this many sends per sender-local calendar day, or None.
        weekly_cap: at most this many sends per sender-local ISO week (Monday to Sunday),
            or None (about 100 LinkedIn connection requests a week is typical).
        jitter: each request starts its search up to this much after its earliest moment, by a
            seeded pseudo-random amount, so sends do not all land on round minutes.
        warm_up: a ramp of the daily cap (a new mailbox), or None: a sender-local day then
            holds at most ``warm_up.cap_on(day)`` sends (and never more than ``daily_cap``).

    Raises:
        InvalidStaggering: negative spacing or jitter, a cap below one, an unknown zone.
    """

    min_spacing: dt.timedelta
    timezone: str
    daily_cap: int | None = None
    weekly_cap: int | None = None
    jitter: dt.timedelta = dt.timedelta(0)
    warm_up: WarmUp | None = None

    def cap_on(self, day: dt.date) -> int | None:
        """The most sends on the sender-local date ``day`` (None: no daily limit)."""
        if self.warm_up is None:
            return self.daily_cap
        ramped = self.warm_up.cap_on(day)
        return ramped if self.daily_cap is None else min(ramped, self.daily_cap)

    def __attrs_post_init__(self) -> None:
        if self.min_spacing < dt.timedelta(0):
            raise InvalidStaggering(f"sender limits: min_spacing {self.min_spacing} is negative")
        if self.jitter < dt.timedelta(0):
            raise InvalidStaggering(f"sender limits: jitter {self.jitter} is negative")
        for name, cap in (("daily_cap", self.daily_cap), ("weekly_cap", self.weekly_cap)):
            if cap is not None and cap < 1:
                raise InvalidStaggering(f"sender limits: {name} {cap} must be at least 1")
        try:
            load_timezone(self.timezone, subject="sender limits")
        except UnknownTimezone as exc:
            raise InvalidStaggering(str(exc)) from exc


@attrs.frozen(kw_only=True)
class SlotRequest:
    """One send to place: not before ``earliest``, inside the recipient's business hours.

    Attributes:
        key: unique among the requests of one call (e.g. the send id); results are keyed by it.
        earliest: aware instant the send may not precede (the step's computed due moment).
        calendar: the recipient's business calendar.
        follow_up: True for a later step of a lead already in the campaign; these take
            capacity before first touches of new leads when a cap binds.
    """

    key: str
    earliest: dt.datetime
    calendar: BusinessCalendar
    follow_up: bool = False

    def __attrs_post_init__(self) -> None:
        if self.earliest.tzinfo is None or self.earliest.utcoffset() is None:
            raise InvalidStaggering(
                f"slot request {self.key!r}: argument 'earliest' is a naive datetime"
            )


class _Sender:
    """Bookkeeping of one allocation: taken instants, runs without room, full days/weeks."""

    def __init__(self, limits: SenderLimits) -> None:
        self.zone: zoneinfo.ZoneInfo = load_timezone(limits.timezone)
        self.spacing = limits.min_spacing // _MICRO
        self.limits = limits
        self.caps: dict[int, int | None] = {}
        self.weekly_cap = limits.weekly_cap
        self.taken: list[int] = []
        # Union-find over taken instants: consecutive instants closer than two spacings leave
        # no room between them; `run[x]` leads to the last instant of x's run.
        self.run: dict[int, int] = {}
        self.per_day: dict[int, int] = {}
        self.per_week: dict[int, int] = {}
        # Union-find over full days / weeks (ordinals of the day / of the week's Monday).
        self.skip_day: dict[int, int] = {}
        self.skip_week: dict[int, int] = {}
        self.midnights: dict[int, int] = {}
        # Per recipient calendar, union-find over its windows (by opening micros) that are
        # exhausted; each leads to a later window that may still have room.
        self.dead: dict[BusinessCalendar, dict[int, int]] = {}

    def cap_of(self, ordinal: int) -> int | None:
        """The daily cap of the sender-local day ``ordinal`` (ramped when warming up)."""
        if ordinal not in self.caps:
            self.caps[ordinal] = self.limits.cap_on(dt.date.fromordinal(ordinal))
        return self.caps[ordinal]

    def day_of(self, micros: int) -> int:
        return dt.datetime.fromtimestamp(micros // _SECOND_US, self.zone).toordinal()

    def start_of_day(self, ordinal: int) -> int:
        """Micros of the first instant of the sender-local day ``ordinal``."""
        start = self.midnights.get(ordinal)
        if start is None:
            day = dt.date.fromordinal(ordinal)
            midnight = dt.datetime(day.year, day.month, day.day, tzinfo=self.zone)
            # fold=0: an ambiguous midnight is its first occurrence, and a midnight inside a
            # DST gap resolves to the instant the clocks jump, the first instant of the day.
            start = _micros(midnight)
            self.midnights[ordinal] = start
        return start

    @staticmethod
    def _find(skip: dict[int, int], key: int) -> int:
        root = key
        while root in skip:
            root = skip[root]
        while key != root:
            following = skip[key]
            skip[key] = root
            key = following
        return root

    def _run_end(self, instant: int) -> int:
        return self._find(self.run, instant)

    def take(self, instant: int, *, day: int | None = None, counted: bool = True) -> None:
        """Record a send at ``instant`` (allocated or booked); ``counted=False`` for one that
        only keeps its distance (another kind of action of the same account)."""
        if counted:
            if day is None:
                day = self.day_of(instant)
            week = day - (day + 6) % 7
            self.per_day[day] = count = self.per_day.get(day, 0) + 1
            cap = self.cap_of(day)
            if cap is not None and count >= cap:
                self.skip_day[day] = day + 1
            self.per_week[week] = count = self.per_week.get(week, 0) + 1
            if self.weekly_cap is not None and count >= self.weekly_cap:
                self.skip_week[week] = week + 7
        taken = self.taken
        index = bisect_right(taken, instant)
        if index and taken[index - 1] == instant:
            return
        insort(taken, instant, lo=index, hi=index)
        room = 2 * self.spacing
        # Runs always point to later instants, so the union-find has no cycles.
        if index + 1 < len(taken) and taken[index + 1] - instant < room:
            self.run[instant] = self._run_end(taken[index + 1])
        if index and instant - taken[index - 1] < room:
            left_end = self._run_end(taken[index - 1])
            if left_end < instant:
                self.run[left_end] = self._run_end(instant)

    def place(self, start: int, calendar: BusinessCalendar) -> tuple[int, int]:
        """The earliest instant >= ``start`` that fits every rule, and its sender day."""
        candidate = start
        spacing = self.spacing
        taken = self.taken
        skip_day, skip_week = self.skip_day, self.skip_week
        find = self._find
        # The current recipient window and sender day stay valid while the candidate (which
        # only grows) is inside them, so each is looked up again only when it is left.
        opened = closed = -1
        day = day_start = day_end = -1
        # Windows of this recipient calendar in which no slot is left: a search that entered a
        # window at its opening and left it past its close found every instant of it taken,
        # too close to a taken one, or in a full day or week — all of which stay so.
        dead = self.dead.setdefault(calendar, {})
        exhausted = -1
        while True:
            if candidate >= closed:
                # The first window closing after `second` also closes after `candidate`.
                window_open, window_close = window_after_second(calendar, candidate // _SECOND_US)
                if window_open * _SECOND_US in dead:
                    alive = find(dead, window_open * _SECOND_US)
                    window_open, window_close = window_after_second(calendar, alive // _SECOND_US)
                if exhausted >= 0:
                    dead[exhausted] = window_open * _SECOND_US
                opened, closed = window_open * _SECOND_US, window_close * _SECOND_US
                exhausted = opened if candidate <= opened else -1
            if candidate < opened:
                candidate = opened
            if not day_start <= candidate < day_end:
                day = self.day_of(candidate)
                day_start, day_end = self.start_of_day(day), self.start_of_day(day + 1)
            free_day = find(skip_day, day) if skip_day else day
            if skip_week:
                week = free_day - (free_day + 6) % 7
                free_week = find(skip_week, week)
                if free_week != week:
                    free_day = free_week
            if free_day != day:
                candidate = max(candidate, self.start_of_day(free_day))
                continue
            if spacing and taken:
                index = bisect_right(taken, candidate)
                if index and candidate - taken[index - 1] < spacing:
                    candidate = self._run_end(taken[index - 1]) + spacing
                    continue
                if index < len(taken) and taken[index] - candidate < spacing:
                    candidate = self._run_end(taken[index]) + spacing
                    continue
            return candidate, day


def _jitter(seed: int | str, key: str, jitter: int) -> int:
    if jitter <= 0:
        return 0
    digest = hashlib.blake2b(f"{seed}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (jitter + 1)


def allocate_slots(
    requests: Iterable[SlotRequest],
    limits: SenderLimits,
    *,
    seed: int | str,
    booked: Iterable[dt.datetime] = (),
    occupied: Iterable[dt.datetime] = (),
) -> dict[str, dt.datetime]:
    """Assign each request of one sender an instant, honouring spacing, caps and hours.

    Every assigned instant is at or after its request's ``earliest`` (plus its jitter), inside
    its recipient's business hours on a business day; no two sends of the sender, counting
    ``booked``, are closer than ``limits.min_spacing``; no sender-local day holds more than
    ``daily_cap`` (on a warm-up ramp: its cap of that day) and no sender-local ISO week more
    than ``weekly_cap`` sends, ``booked`` included. A send that does not fit moves to the next
    moment that does (the recipient's next business moment, or the next day or week with
    room).

    Follow-ups are placed before first touches, then earlier requests before later ones
    (ties by key), each at its earliest fitting instant. So when a cap binds, follow-ups keep
    their day and first touches roll. The result depends only on the set of requests, the
    limits, the seed and the booked instants, never on the order of ``requests``; jitter is
    derived from ``(seed, key)`` with a hash, never from global randomness.

    Args:
        requests: the sends to place; keys must be unique.
        limits: the sender's spacing, caps, timezone and jitter.
        seed: makes the jitter reproducible (e.g. the campaign id).
        booked: aware instants this sender already has scheduled (earlier campaigns, earlier
            steps); they count toward spacing and caps and are not moved.
        occupied: aware instants of the same sender that count toward spacing only, not
            toward the caps (e.g. a LinkedIn account's messages when placing its connection
            requests, which have a weekly cap of their own).

    Returns:
        key → assigned instant, as an aware datetime in UTC.

    Raises:
        InvalidStaggering: duplicate keys, or a naive booked instant.
    """
    sender = _Sender(limits)
    for moment in booked:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise InvalidStaggering("allocate_slots: argument 'booked' holds a naive datetime")
        sender.take(_micros(moment))
    for moment in occupied:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise InvalidStaggering("allocate_slots: argument 'occupied' holds a naive datetime")
        sender.take(_micros(moment), counted=False)
    jitter = limits.jitter // _MICRO
    ordered: list[tuple[bool, int, str, SlotRequest]] = []
    seen: set[str] = set()
    for request in requests:
        if request.key in seen:
            raise InvalidStaggering(f"allocate_slots: request key {request.key!r} is repeated")
        seen.add(request.key)
        start = _micros(request.earliest) + _jitter(seed, request.key, jitter)
        ordered.append((not request.follow_up, start, request.key, request))
    ordered.sort(key=lambda row: row[:3])
    result: dict[str, dt.datetime] = {}
    for _, start, key, request in ordered:
        instant, day = sender.place(start, request.calendar)
        sender.take(instant, day=day)
        result[key] = _EPOCH + dt.timedelta(microseconds=instant)
    return result
