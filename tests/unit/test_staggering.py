"""allocate_slots: explicit cases and the invariants as properties."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from starlight_sequences.calendar import (
    BusinessCalendar,
    SenderLimits,
    SlotRequest,
    allocate_slots,
)
from starlight_sequences.errors import InvalidStaggering
from starlight_sequences.locations import load_timezone
from tests.strategies import sender_limits, slot_requests

UTC = dt.UTC
NEW_YORK = BusinessCalendar(country="US", timezone="America/New_York")
BERLIN = BusinessCalendar(country="DE", timezone="Europe/Berlin")


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def request(
    key: str, earliest: str, calendar: BusinessCalendar = NEW_YORK, *, follow_up: bool = False
) -> SlotRequest:
    return SlotRequest(key=key, earliest=utc(earliest), calendar=calendar, follow_up=follow_up)


def test_a_lone_request_gets_the_next_business_moment() -> None:
    limits = SenderLimits(min_spacing=dt.timedelta(minutes=5), timezone="America/New_York")
    # Saturday 28 November 2026 → Monday 30 November, 09:00 EST.
    slots = allocate_slots([request("a", "2026-11-28T15:00")], limits, seed=1)
    assert slots == {"a": utc("2026-11-30T14:00")}
    assert slots["a"].tzinfo is UTC


def test_sends_of_one_sender_are_spaced() -> None:
    limits = SenderLimits(min_spacing=dt.timedelta(minutes=4), timezone="America/New_York")
    requests = [request(f"r{i}", "2026-11-30T14:00") for i in range(4)]
    slots = allocate_slots(requests, limits, seed="campaign-1")
    assert sorted(slots.values()) == [
        utc("2026-11-30T14:00"),
        utc("2026-11-30T14:04"),
        utc("2026-11-30T14:08"),
        utc("2026-11-30T14:12"),
    ]


def test_booked_instants_count_for_spacing_and_caps() -> None:
    limits = SenderLimits(
        min_spacing=dt.timedelta(minutes=10), daily_cap=2, timezone="America/New_York"
    )
    booked = [utc("2026-11-30T14:05")]
    slots = allocate_slots(
        [request("a", "2026-11-30T14:00"), request("b", "2026-11-30T14:00")],
        limits,
        seed=0,
        booked=booked,
    )
    # 14:00 is too close to the booked 14:05; the day then holds one booked and one new send.
    assert slots["a"] == utc("2026-11-30T14:15")
    assert slots["b"] == utc("2026-12-01T14:00")


def test_occupied_instants_count_for_spacing_but_not_for_caps() -> None:
    limits = SenderLimits(
        min_spacing=dt.timedelta(minutes=10), daily_cap=2, timezone="America/New_York"
    )
    occupied = [utc("2026-11-30T14:05"), utc("2026-11-30T14:40"), utc("2026-11-30T15:00")]
    slots = allocate_slots(
        [request("a", "2026-11-30T14:00"), request("b", "2026-11-30T14:00")],
        limits,
        seed=0,
        occupied=occupied,
    )
    # Both fit the same day (the occupied sends are another kind with its own cap), each at
    # least 10 minutes from every occupied instant.
    assert slots == {"a": utc("2026-11-30T14:15"), "b": utc("2026-11-30T14:25")}


def test_a_full_day_rolls_to_the_recipients_next_business_moment() -> None:
    limits = SenderLimits(min_spacing=dt.timedelta(0), daily_cap=1, timezone="America/New_York")
    # Wednesday 25 Nov: one send fits; Thursday is Thanksgiving for a US recipient.
    slots = allocate_slots(
        [request("a", "2026-11-25T15:00"), request("b", "2026-11-25T15:00")], limits, seed=0
    )
    assert slots == {"a": utc("2026-11-25T15:00"), "b": utc("2026-11-27T14:00")}


def test_a_german_recipient_is_written_to_on_american_thanksgiving() -> None:
    limits = SenderLimits(min_spacing=dt.timedelta(0), daily_cap=1, timezone="America/New_York")
    slots = allocate_slots(
        [request("a", "2026-11-25T15:00", BERLIN), request("b", "2026-11-25T15:00", BERLIN)],
        limits,
        seed=0,
    )
    # Berlin closes at 16:00 UTC; b rolls to the next sender day with room, Thursday 26,
    # which opens in Berlin at 08:00 UTC.
    assert slots == {"a": utc("2026-11-25T15:00"), "b": utc("2026-11-26T08:00")}


def test_follow_ups_take_capacity_before_first_touches_when_a_cap_binds() -> None:
    limits = SenderLimits(
        min_spacing=dt.timedelta(minutes=1), daily_cap=2, timezone="America/New_York"
    )
    firsts = [request(f"new{i}", "2026-11-30T14:00") for i in range(3)]
    follow_ups = [request(f"old{i}", "2026-11-30T16:00", follow_up=True) for i in range(2)]
    slots = allocate_slots(firsts + follow_ups, limits, seed=0)
    days = {key: moment.astimezone(NEW_YORK.zone).date() for key, moment in slots.items()}
    assert days["old0"] == days["old1"] == dt.date(2026, 11, 30)
    assert sorted(days[f"new{i}"] for i in range(3)) == [
        dt.date(2026, 12, 1),
        dt.date(2026, 12, 1),
        dt.date(2026, 12, 2),
    ]


def test_the_weekly_cap_counts_the_senders_iso_week() -> None:
    limits = SenderLimits(
        min_spacing=dt.timedelta(minutes=1), weekly_cap=3, timezone="America/New_York"
    )
    # Friday 27 Nov: the week (Mon 23 – Sun 29) already holds two booked sends.
    booked = [utc("2026-11-23T15:00"), utc("2026-11-24T15:00")]
    requests = [request(f"r{i}", "2026-11-27T15:00") for i in range(3)]
    slots = allocate_slots(requests, limits, seed=0, booked=booked)
    assert sorted(slots.values()) == [
        utc("2026-11-27T15:00"),
        utc("2026-11-30T14:00"),
        utc("2026-11-30T14:01"),
    ]


def test_jitter_is_seeded_and_bounded() -> None:
    limits = SenderLimits(
        min_spacing=dt.timedelta(0),
        timezone="America/New_York",
        jitter=dt.timedelta(minutes=10),
    )
    requests = [request(f"r{i}", "2026-11-30T15:00") for i in range(20)]
    first = allocate_slots(requests, limits, seed=42)
    assert first == allocate_slots(requests, limits, seed=42)
    assert first != allocate_slots(requests, limits, seed=43)
    for moment in first.values():
        assert utc("2026-11-30T15:00") <= moment <= utc("2026-11-30T15:10")
    assert len(set(first.values())) > 1


def test_duplicate_keys_are_refused() -> None:
    limits = SenderLimits(min_spacing=dt.timedelta(0), timezone="UTC")
    with pytest.raises(InvalidStaggering, match="'a'"):
        allocate_slots([request("a", "2026-11-30T15:00")] * 2, limits, seed=0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_spacing": dt.timedelta(minutes=-1)},
        {"daily_cap": 0},
        {"weekly_cap": -3},
        {"jitter": dt.timedelta(seconds=-1)},
        {"timezone": "Mars/Olympus_Mons"},
    ],
)
def test_impossible_limits_are_refused(kwargs: dict[str, object]) -> None:
    values: dict[str, Any] = {"min_spacing": dt.timedelta(minutes=1), "timezone": "UTC"}
    values.update(kwargs)
    with pytest.raises(InvalidStaggering):
        SenderLimits(**values)


def test_naive_instants_are_refused() -> None:
    with pytest.raises(InvalidStaggering, match="'earliest'"):
        SlotRequest(key="a", earliest=dt.datetime(2026, 11, 30, 9), calendar=NEW_YORK)
    limits = SenderLimits(min_spacing=dt.timedelta(0), timezone="UTC")
    with pytest.raises(InvalidStaggering, match="'booked'"):
        allocate_slots([], limits, seed=0, booked=[dt.datetime(2026, 11, 30, 9)])


@given(
    requests=slot_requests(),
    limits=sender_limits(),
    seed=st.integers(min_value=0, max_value=2**32),
    booked=st.lists(
        st.datetimes(
            min_value=dt.datetime(2026, 11, 20),
            max_value=dt.datetime(2026, 12, 20),
            timezones=st.just(UTC),
        ),
        max_size=10,
    ),
    data=st.data(),
)
def test_allocated_slots_keep_every_invariant(
    requests: list[SlotRequest],
    limits: SenderLimits,
    seed: int,
    booked: list[dt.datetime],
    data: st.DataObject,
) -> None:
    slots = allocate_slots(requests, limits, seed=seed, booked=booked)
    assert set(slots) == {r.key for r in requests}

    # Each at or after its request, inside its recipient's business hours.
    for r in requests:
        moment = slots[r.key]
        assert moment.tzinfo is UTC
        assert moment >= r.earliest
        assert r.calendar.next_business_moment(moment) == moment

    # Spacing: every new send is at least min_spacing from every other send, booked included.
    timeline = sorted([(m, True) for m in slots.values()] + [(m, False) for m in booked])
    for (left, left_new), (right, right_new) in itertools.pairwise(timeline):
        if left_new or right_new:
            assert right - left >= limits.min_spacing

    # Caps per sender-local day and ISO week, booked included, wherever a new send landed.
    zone = load_timezone(limits.timezone)
    days = Counter(m.astimezone(zone).date() for m, _ in timeline)
    weeks = Counter(m.astimezone(zone).isocalendar()[:2] for m, _ in timeline)
    for moment in slots.values():
        local = moment.astimezone(zone)
        if limits.daily_cap is not None:
            assert days[local.date()] <= limits.daily_cap
        if limits.weekly_cap is not None:
            assert weeks[local.isocalendar()[:2]] <= limits.weekly_cap

    # Same inputs, same output, whatever the order of the requests.
    shuffled = data.draw(st.permutations(requests))
    assert allocate_slots(shuffled, limits, seed=seed, booked=reversed(booked)) == slots
