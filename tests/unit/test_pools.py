"""The pure sender-pool assignment: deterministic, never splits a lead, spread by remaining
capacity (within one lead of the exact share, and along every prefix of the leads)."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from starlight_sequences.campaigns import Campaign, EmailIdentity
from starlight_sequences.channels import Channel
from starlight_sequences.errors import InvalidSettings
from starlight_sequences.ids import LeadId, SenderId
from starlight_sequences.pools import SenderCapacity, assign_senders, quotas
from starlight_sequences.testing.records import make_campaign

leads_st = st.lists(
    st.integers(min_value=0, max_value=10_000).map(lambda n: LeadId(f"lead-{n}")),
    unique=True,
    max_size=300,
)
pool_st = st.lists(st.integers(min_value=0, max_value=500), min_size=1, max_size=6).map(
    lambda caps: [
        SenderCapacity(sender_id=SenderId(f"mbx-{i}"), remaining=c) for i, c in enumerate(caps)
    ]
)


def _weights(pool: list[SenderCapacity]) -> list[int]:
    weights = [c.remaining for c in pool]
    return weights if sum(weights) else [1] * len(pool)


@given(leads_st, pool_st)
def test_the_same_leads_and_capacities_give_the_same_assignment(
    leads: list[LeadId], pool: list[SenderCapacity]
) -> None:
    assert assign_senders(leads, pool) == assign_senders(list(leads), list(pool))


@given(leads_st, pool_st)
def test_every_lead_gets_exactly_one_sender_of_the_pool(
    leads: list[LeadId], pool: list[SenderCapacity]
) -> None:
    assignment = assign_senders(leads, pool)
    assert list(assignment) == leads
    assert set(assignment.values()) <= {c.sender_id for c in pool}


@given(leads_st, pool_st)
def test_counts_are_within_one_lead_of_the_share_of_remaining_capacity(
    leads: list[LeadId], pool: list[SenderCapacity]
) -> None:
    counts = Counter(assign_senders(leads, pool).values())
    weights = _weights(pool)
    for capacity, weight in zip(pool, weights, strict=True):
        exact = Fraction(len(leads) * weight, sum(weights))
        assert abs(counts[capacity.sender_id] - exact) < 1
    assert [counts[c.sender_id] for c in pool] == list(quotas(len(leads), pool))


@given(leads_st, pool_st)
def test_every_prefix_of_the_leads_is_spread_like_the_whole(
    leads: list[LeadId], pool: list[SenderCapacity]
) -> None:
    assignment = assign_senders(leads, pool)
    shares = quotas(len(leads), pool)
    taken = Counter[SenderId]()
    for k, lead_id in enumerate(leads, start=1):
        taken[assignment[lead_id]] += 1
        for capacity, share in zip(pool, shares, strict=True):
            # Never more than one lead ahead of its share of the first k leads.
            assert taken[capacity.sender_id] - Fraction(share * k, len(leads)) < 1


def test_a_mailbox_with_twice_the_remaining_room_gets_twice_the_leads() -> None:
    pool = [
        SenderCapacity(sender_id=SenderId("small"), remaining=20),
        SenderCapacity(sender_id=SenderId("big"), remaining=40),
    ]
    counts = Counter(assign_senders([LeadId(f"l{i}") for i in range(90)], pool).values())
    assert counts == {SenderId("small"): 30, SenderId("big"): 60}


def test_a_sender_with_no_room_left_gets_no_lead_while_another_has_room() -> None:
    pool = [
        SenderCapacity(sender_id=SenderId("full"), remaining=0),
        SenderCapacity(sender_id=SenderId("free"), remaining=3),
    ]
    assignment = assign_senders([LeadId(f"l{i}") for i in range(10)], pool)
    assert set(assignment.values()) == {SenderId("free")}


def test_when_no_sender_has_room_the_leads_are_split_evenly() -> None:
    pool = [SenderCapacity(sender_id=SenderId(f"s{i}"), remaining=0) for i in range(3)]
    assert quotas(9, pool) == (3, 3, 3)


@pytest.mark.parametrize(
    ("leads", "pool", "message"),
    [
        ([LeadId("a")], [], "no sender"),
        (
            [LeadId("a"), LeadId("a")],
            [SenderCapacity(sender_id=SenderId("s"), remaining=1)],
            "twice",
        ),
        (
            [LeadId("a")],
            [
                SenderCapacity(sender_id=SenderId("s"), remaining=1),
                SenderCapacity(sender_id=SenderId("s"), remaining=2),
            ],
            "twice",
        ),
    ],
)
def test_impossible_pools_are_refused_with_a_reason(
    leads: list[LeadId], pool: list[SenderCapacity], message: str
) -> None:
    with pytest.raises(InvalidSettings, match=message):
        assign_senders(leads, pool)


def test_a_negative_remaining_capacity_is_refused_naming_the_sender() -> None:
    with pytest.raises(InvalidSettings, match=r"'mbx-1'.*negative"):
        SenderCapacity(sender_id=SenderId("mbx-1"), remaining=-1)


A = EmailIdentity(id="a", address="a@acme.example.com")
B = EmailIdentity(id="b", address="b@acme.example.com")


def test_a_campaign_given_only_a_pool_takes_its_first_member_as_the_single_identity() -> None:
    campaign = make_campaign(email_identity=None, email_identities=(A, B))
    assert campaign.email_identity == A


def test_a_campaign_given_one_identity_has_a_pool_of_one() -> None:
    campaign = make_campaign(email_identity=A)
    assert campaign.email_identities == (A,)


def test_a_single_identity_outside_the_pool_is_refused() -> None:
    with pytest.raises(InvalidSettings, match="email_identity 'a' is not in email_identities"):
        make_campaign(email_identity=A, email_identities=(B,))


def test_a_pool_that_repeats_a_sender_id_is_refused() -> None:
    twin = EmailIdentity(id="a", address="other@acme.example.com")
    with pytest.raises(InvalidSettings, match="repeats a sender id"):
        make_campaign(email_identity=A, email_identities=(A, twin))


def test_retired_senders_leave_the_active_pool_but_stay_known() -> None:
    campaign: Campaign = make_campaign(
        email_identity=A, email_identities=(A, B), retired_senders=(SenderId("a"),)
    )
    assert campaign.active_pool(Channel.EMAIL) == (B,)
    assert campaign.email_identity_of(SenderId("a")) == A
