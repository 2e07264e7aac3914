"""The bounce breaker's rule (pure): when a mailbox's recent hard-bounce rate trips it."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from starlight_sequences.bounce_breaker import BounceBreaker, evaluate_breaker, window_outcomes
from starlight_sequences.errors import InvalidBreakerSettings, InvalidSettings
from starlight_sequences.ids import CampaignId, LeadId

breakers = st.integers(1, 60).flatmap(
    lambda window: st.builds(
        BounceBreaker,
        window=st.just(window),
        minimum_sends=st.integers(1, window),
        threshold=st.sampled_from([0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.9]),
    )
)
outcome_lists = st.lists(st.booleans(), max_size=80)


def _sends(delivered: int, bounced: int) -> list[bool]:
    return [True] * bounced + [False] * delivered


@pytest.mark.parametrize(
    ("delivered", "bounced", "trips"),
    [
        (19, 1, False),  # 5% of 20: at the threshold, not above it
        (18, 2, True),  # 10% of 20
        (0, 2, False),  # 100%, but only 2 sends: below the minimum of 20
        (18, 1, False),  # 19 sends: below the minimum
        (38, 2, False),  # 5% of 40
        (37, 3, True),  # 7.5% of 40
    ],
)
def test_the_defaults_trip_above_five_percent_of_at_least_twenty_sends(
    delivered: int, bounced: int, trips: bool
) -> None:
    assert evaluate_breaker(BounceBreaker(), _sends(delivered, bounced)).trip is trips


def test_only_the_window_of_newest_sends_counts() -> None:
    breaker = BounceBreaker(window=20)
    old_bounces = [False] * 20 + [True] * 10  # newest first: the bounces are older than 20
    verdict = evaluate_breaker(breaker, old_bounces)
    assert (verdict.trip, verdict.sends, verdict.hard_bounces) == (False, 20, 0)


def test_a_disabled_breaker_never_trips() -> None:
    assert not evaluate_breaker(BounceBreaker(enabled=False), [True] * 100).trip


@given(breakers, outcome_lists)
def test_it_never_trips_below_the_minimum_number_of_sends(
    breaker: BounceBreaker, outcomes: list[bool]
) -> None:
    verdict = evaluate_breaker(breaker, outcomes)
    if min(len(outcomes), breaker.window) < breaker.minimum_sends:
        assert not verdict.trip


@given(breakers, outcome_lists)
def test_it_trips_exactly_when_the_windows_rate_is_above_the_threshold(
    breaker: BounceBreaker, outcomes: list[bool]
) -> None:
    window = outcomes[: breaker.window]
    verdict = evaluate_breaker(breaker, outcomes)
    assert verdict.sends == len(window)
    assert verdict.hard_bounces == sum(window)
    expected = len(window) >= breaker.minimum_sends and Fraction(
        sum(window), max(len(window), 1)
    ) > Fraction(str(breaker.threshold))
    assert verdict.trip is expected


@given(breakers, outcome_lists, st.data())
def test_turning_a_delivered_send_into_a_hard_bounce_never_untrips(
    breaker: BounceBreaker, outcomes: list[bool], data: st.DataObject
) -> None:
    delivered = [i for i, bounced in enumerate(outcomes) if not bounced]
    if not delivered:
        return
    i = data.draw(st.sampled_from(delivered))
    worse = [*outcomes[:i], True, *outcomes[i + 1 :]]
    if evaluate_breaker(breaker, outcomes).trip:
        assert evaluate_breaker(breaker, worse).trip


@given(breakers, st.lists(st.sampled_from(["delivered", "soft", "hard"]), max_size=80))
def test_soft_bounces_count_as_sends_never_as_bounces(
    breaker: BounceBreaker, kinds: list[str]
) -> None:
    as_delivered = [kind == "hard" for kind in kinds]
    verdict = evaluate_breaker(breaker, as_delivered)
    assert verdict.hard_bounces == sum(kind == "hard" for kind in kinds[: breaker.window])
    only_soft = [False for _ in kinds]
    assert not evaluate_breaker(breaker, only_soft).trip


def test_each_bounced_contact_counts_once_on_its_newest_send() -> None:
    a, b, c = (
        (CampaignId("c1"), LeadId("ann")),
        (CampaignId("c1"), LeadId("bob")),
        (CampaignId("c2"), LeadId("ann")),
    )
    # Newest first: ann's step 2, bob's step 1, ann's step 1, ann in another campaign.
    assert window_outcomes([a, b, a, c], {a}) == (True, False, False, False)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"window": 0}, "window"),
        ({"minimum_sends": 0}, "minimum_sends"),
        ({"window": 10, "minimum_sends": 11}, "minimum_sends"),
        ({"threshold": 1.0}, "threshold"),
        ({"threshold": -0.01}, "threshold"),
        ({"threshold": "5%"}, "threshold"),
        ({"window": True}, "window"),
        ({"enabled": "yes"}, "enabled"),
    ],
)
def test_settings_out_of_range_are_a_typed_error_naming_the_field(
    settings: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidBreakerSettings, match=f"bounce breaker: {field}:") as caught:
        BounceBreaker(**settings)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert isinstance(caught.value, InvalidSettings)
    assert isinstance(caught.value, ValueError)
