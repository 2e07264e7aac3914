from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from starlight_sequences import credits as credits_module
from starlight_sequences import shapes
from starlight_sequences.cadence import Cadence, ExclusionReason, resolve_cadence
from starlight_sequences.channels import Action
from starlight_sequences.credits import (
    DEFAULT_PRICES,
    MAX_CREDITS,
    CreditAccount,
    CreditMovement,
    MovementKind,
    PriceTable,
    estimate_credits,
    estimate_lead,
    replay,
)
from starlight_sequences.errors import (
    InsufficientCredits,
    InvalidInput,
    InvalidSettings,
    StarlightError,
)
from starlight_sequences.ids import CampaignId, LeadId, WorkspaceId
from starlight_sequences.leads import Lead
from starlight_sequences.shapes import SendShape
from tests.unit._shape_strategies import lead_lists
from tests.unit._shape_strategies import shapes as any_shapes

WS = WorkspaceId("acme")

prices = st.builds(
    PriceTable,
    draft=st.integers(0, 10),
    email=st.integers(0, 10),
    linkedin_connect=st.integers(0, 10),
    linkedin_message=st.integers(0, 10),
)


def test_credits_module_exports_exactly_its_public_names() -> None:
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions.
    assert credits_module.__all__ == sorted(
        credits_module.__all__, key=lambda name: (not name.isupper(), not name[0].isupper(), name)
    )
    assert set(credits_module.__all__) == {
        "DEFAULT_PRICES",
        "MAX_CREDITS",
        "CreditAccount",
        "CreditEstimate",
        "CreditMovement",
        "LeadEstimate",
        "MovementKind",
        "PriceTable",
        "estimate_credits",
        "estimate_lead",
        "fallback_borrow",
        "replay",
        "send_reservations",
    }


# --- prices ---------------------------------------------------------------------------------


def test_default_prices_are_those_of_the_design() -> None:
    table = PriceTable()
    assert (table.draft, table.email, table.linkedin_connect, table.linkedin_message) == (
        4,
        2,
        2,
        2,
    )
    assert table == DEFAULT_PRICES


def test_price_of_each_action() -> None:
    table = PriceTable(email=3, linkedin_connect=5, linkedin_message=7)
    assert table.price_of(Action.EMAIL) == 3
    assert table.price_of(Action.LINKEDIN_CONNECT) == 5
    assert table.price_of(Action.LINKEDIN_MESSAGE) == 7


def test_a_host_app_can_override_one_price_and_keep_the_others() -> None:
    assert PriceTable(draft=0) == PriceTable(
        draft=0, email=2, linkedin_connect=2, linkedin_message=2
    )


@pytest.mark.parametrize("bad", [-1, 1.5, "2", True, None])
def test_prices_must_be_whole_numbers_of_credits_at_least_zero(bad: object) -> None:
    with pytest.raises(InvalidSettings, match="email") as caught:
        PriceTable(email=bad)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)


def test_a_price_may_be_as_large_as_max_credits_and_no_larger() -> None:
    assert PriceTable(draft=MAX_CREDITS).draft == MAX_CREDITS == 2**53 - 1
    for bad in (MAX_CREDITS + 1, 2**63, 10**5000):
        with pytest.raises(InvalidSettings, match=f"draft must be .* from 0 to {MAX_CREDITS}"):
            PriceTable(draft=bad)


# --- estimates ------------------------------------------------------------------------------


def lead(
    ident: str, *, email: bool = True, linkedin: bool = False, connected: bool = False
) -> Lead:
    return Lead(
        id=LeadId(ident),
        email=f"{ident}@example.com" if email else None,
        linkedin_url=f"https://www.linkedin.com/in/person-{ident}" if linkedin else None,
        linkedin_connected=connected,
    )


def test_email_sequence_costs_three_drafts_and_three_sends_per_lead() -> None:
    estimate = estimate_credits(shapes.get("email-sequence"), [lead("a"), lead("b")])
    line = estimate.leads[0]
    assert (line.drafts, line.drafting_cost, line.sends, line.max_send_cost, line.total) == (
        3,
        12,
        3,
        6,
        18,
    )
    assert (estimate.drafting_cost, estimate.max_send_cost, estimate.total) == (24, 12, 36)
    assert estimate.excluded == ()


def test_a_bare_connection_request_costs_a_send_but_no_draft() -> None:
    estimate = estimate_credits(shapes.get("email-linkedin"), [lead("a", linkedin=True)])
    (line,) = estimate.leads
    # email + message drafted; email + request + message sent.
    assert (line.drafts, line.drafting_cost, line.max_send_cost, line.total) == (2, 8, 6, 14)


def test_a_connection_note_is_drafted() -> None:
    estimate = estimate_credits(shapes.get("linkedin-note"), [lead("a", linkedin=True)])
    (line,) = estimate.leads
    assert (line.drafts, line.drafting_cost, line.max_send_cost, line.total) == (1, 4, 2, 6)


def test_excluded_leads_are_listed_with_their_reason_and_cost_nothing() -> None:
    estimate = estimate_credits(
        shapes.get("cold-email"), [lead("a"), lead("b", email=False, linkedin=True)]
    )
    assert [line.lead_id for line in estimate.leads] == ["a"]
    assert [(e.lead_id, e.reason) for e in estimate.excluded] == [
        ("b", ExclusionReason.NO_EMAIL_FOR_SHAPE)
    ]
    assert estimate.total == 6


def test_an_estimate_keeps_the_price_table_and_shape_it_used() -> None:
    table = PriceTable(draft=1)
    estimate = estimate_credits(shapes.get("cold-email"), [lead("a")], table)
    assert estimate.prices == table
    assert estimate.shape_key == "cold-email"
    assert estimate.total == 3


def test_an_estimate_of_no_leads_is_zero() -> None:
    estimate = estimate_credits(shapes.get("cold-email"), [])
    assert (estimate.drafts, estimate.sends, estimate.total) == (0, 0, 0)


@given(any_shapes, lead_lists(), prices)
def test_totals_are_the_sums_over_leads(
    shape: SendShape, leads: list[Lead], table: PriceTable
) -> None:
    estimate = estimate_credits(shape, leads, table)
    assert estimate.total == sum(line.total for line in estimate.leads)
    assert estimate.drafting_cost == sum(line.drafting_cost for line in estimate.leads)
    assert estimate.max_send_cost == sum(line.max_send_cost for line in estimate.leads)
    assert estimate.total == estimate.drafting_cost + estimate.max_send_cost
    assert len(estimate.leads) + len(estimate.excluded) == len(leads)


@given(any_shapes, lead_lists(), prices)
def test_drafting_cost_is_drafts_times_the_draft_price(
    shape: SendShape, leads: list[Lead], table: PriceTable
) -> None:
    estimate = estimate_credits(shape, leads, table)
    for line in estimate.leads:
        assert line.drafting_cost == line.drafts * table.draft
    assert estimate.drafting_cost == estimate.drafts * table.draft


@given(any_shapes, lead_lists(), prices)
def test_each_lead_costs_its_resolved_steps(
    shape: SendShape, leads: list[Lead], table: PriceTable
) -> None:
    estimate = estimate_credits(shape, leads, table)
    lines = {line.lead_id: line for line in estimate.leads}
    excluded = {e.lead_id for e in estimate.excluded}
    for one in leads:
        resolved = resolve_cadence(shape, one)
        if not isinstance(resolved, Cadence):
            assert one.id in excluded
            assert one.id not in lines
            continue
        line = lines[one.id]
        # Two paths when the lead keeps a fallback: accepted (every step but the fallback) or
        # not accepted (every step but the gated messages); the dearer one is reserved.
        accepted = [s for s in resolved.steps if not s.is_fallback]
        paths = [accepted]
        if any(s.is_fallback for s in resolved.steps):
            paths.append([s for s in resolved.steps if not s.gated_on_acceptance])
        assert line.max_send_cost == max(
            sum(table.price_of(s.action) for s in path) for path in paths
        )
        assert line.sends == max(len(path) for path in paths)
        assert line.drafts == sum(
            1 for s in resolved.steps if s.action is not Action.LINKEDIN_CONNECT or s.with_note
        )


# --- the ledger rules -----------------------------------------------------------------------


def test_an_account_starts_empty() -> None:
    account = CreditAccount(workspace=WS)
    assert (account.available, account.reserved) == (0, 0)


def test_the_life_of_a_campaign_in_credits() -> None:
    account = CreditAccount(workspace=WS).top_up(100)
    account = account.charge_draft(24)  # drafting
    account = account.reserve(12)  # approval
    assert (account.available, account.reserved) == (64, 12)
    account = account.charge_reserved(2)  # a send went out
    account = account.release(4)  # a reply stopped two steps
    assert (account.available, account.reserved) == (68, 6)


def test_methods_return_a_new_account_and_leave_the_old_one_alone() -> None:
    before = CreditAccount(workspace=WS, available=10)
    after = before.reserve(4)
    assert (before.available, before.reserved) == (10, 0)
    assert (after.available, after.reserved) == (6, 4)


def test_drafting_more_than_is_available_is_insufficient_credits() -> None:
    account = CreditAccount(workspace=WS, available=7)
    with pytest.raises(InsufficientCredits) as caught:
        account.charge_draft(8)
    error = caught.value
    assert (error.workspace, error.needed, error.available) == ("acme", 8, 7)
    assert "drafting" in str(error)
    assert isinstance(error, StarlightError)


def test_reserving_more_than_is_available_is_insufficient_credits() -> None:
    account = CreditAccount(workspace=WS, available=7, reserved=50)
    with pytest.raises(InsufficientCredits, match="8 credits needed for reserving sends, 7"):
        account.reserve(8)


def test_spending_exactly_what_is_available_leaves_zero() -> None:
    account = CreditAccount(workspace=WS, available=7)
    assert account.charge_draft(7).available == 0
    assert account.reserve(7).available == 0


@pytest.mark.parametrize("method", ["charge_reserved", "release"])
def test_charging_or_releasing_more_than_is_reserved_is_invalid(method: str) -> None:
    account = CreditAccount(workspace=WS, available=100, reserved=3)
    with pytest.raises(InvalidInput, match="only 3 reserved"):
        getattr(account, method)(4)


@pytest.mark.parametrize(
    "method", ["top_up", "charge_draft", "reserve", "charge_reserved", "release"]
)
@pytest.mark.parametrize("amount", [-1, 2.5, True])
def test_negative_or_fractional_amounts_are_invalid(method: str, amount: object) -> None:
    account = CreditAccount(workspace=WS, available=100, reserved=100)
    with pytest.raises(InvalidInput):
        getattr(account, method)(amount)


def test_an_account_cannot_be_built_negative() -> None:
    with pytest.raises(InvalidInput):
        CreditAccount(workspace=WS, available=-1)
    with pytest.raises(InvalidInput):
        CreditAccount(workspace=WS, reserved=-1)


def test_a_movement_cannot_carry_a_negative_amount() -> None:
    with pytest.raises(InvalidInput, match="amount"):
        CreditMovement(kind=MovementKind.TOP_UP, amount=-5)


@pytest.mark.parametrize(
    "amount", [MAX_CREDITS + 1, 2**63, 10**5000], ids=["max+1", "2^63", "1e5000"]
)
def test_a_movement_cannot_carry_more_than_max_credits(amount: int) -> None:
    assert CreditMovement(kind=MovementKind.TOP_UP, amount=MAX_CREDITS).amount == MAX_CREDITS
    with pytest.raises(InvalidInput, match=f"amount must be .* from 0 to {MAX_CREDITS}"):
        CreditMovement(kind=MovementKind.TOP_UP, amount=amount)


@pytest.mark.parametrize(
    "method", ["top_up", "charge_draft", "reserve", "charge_reserved", "release"]
)
def test_an_amount_past_max_credits_is_invalid_for_every_method(method: str) -> None:
    account = CreditAccount(workspace=WS, available=100, reserved=100)
    with pytest.raises(
        InvalidInput, match=f"from 0 to {MAX_CREDITS}, not an integer of more than 40 digits"
    ):
        getattr(account, method)(10**5000)


def test_a_top_up_may_fill_the_account_to_max_credits_and_no_further() -> None:
    account = CreditAccount(workspace=WS, available=10, reserved=5)
    full = account.top_up(MAX_CREDITS - 15)
    assert (full.available, full.reserved) == (MAX_CREDITS - 5, 5)
    with pytest.raises(InvalidInput, match="past the maximum of 9007199254740991 credits"):
        full.top_up(1)
    with pytest.raises(InvalidInput, match="past the maximum"):
        account.top_up(MAX_CREDITS)
    # moving credits between available and reserved never crosses the bound
    assert full.reserve(MAX_CREDITS - 5).release(MAX_CREDITS).available == MAX_CREDITS


def test_an_account_cannot_hold_more_than_max_credits_in_all() -> None:
    assert CreditAccount(workspace=WS, available=MAX_CREDITS).available == MAX_CREDITS
    with pytest.raises(InvalidInput, match="available plus reserved must be at most"):
        CreditAccount(workspace=WS, available=MAX_CREDITS, reserved=1)
    with pytest.raises(InvalidInput, match="reserved must be"):
        CreditAccount(workspace=WS, reserved=MAX_CREDITS + 1)


def test_apply_follows_the_movement_kind() -> None:
    account = CreditAccount(workspace=WS)
    journal = [
        CreditMovement(kind=MovementKind.TOP_UP, amount=50, note="bought"),
        CreditMovement(kind=MovementKind.DRAFT, amount=8, campaign_id=CampaignId("c")),
        CreditMovement(kind=MovementKind.RESERVE, amount=6, campaign_id=CampaignId("c")),
        CreditMovement(
            kind=MovementKind.CHARGE, amount=2, campaign_id=CampaignId("c"), lead_id=LeadId("a")
        ),
        CreditMovement(kind=MovementKind.RELEASE, amount=2, key="c:a:3"),
    ]
    for movement in journal:
        account = account.apply(movement)
    assert (account.available, account.reserved) == (38, 2)
    assert replay(WS, journal) == account


# A random walk of ledger events: (kind, amount). Some would overdraw; those must raise and
# leave the account as it was.
events = st.lists(
    st.tuples(st.sampled_from(MovementKind), st.integers(min_value=0, max_value=30)),
    max_size=40,
)


@given(events)
def test_reserved_is_reserves_minus_charges_minus_releases_and_nothing_goes_negative(
    walk: list[tuple[MovementKind, int]],
) -> None:
    account = CreditAccount(workspace=WS)
    applied: dict[MovementKind, int] = dict.fromkeys(MovementKind, 0)
    for kind, amount in walk:
        movement = CreditMovement(kind=kind, amount=amount)
        spends = kind in {MovementKind.DRAFT, MovementKind.RESERVE}
        settles = kind in {MovementKind.CHARGE, MovementKind.RELEASE}
        if spends and amount > account.available:
            with pytest.raises(InsufficientCredits) as caught:
                account.apply(movement)
            assert (caught.value.needed, caught.value.available) == (amount, account.available)
        elif settles and amount > account.reserved:
            with pytest.raises(InvalidInput):
                account.apply(movement)
        else:
            account = account.apply(movement)
            applied[kind] += amount
        assert account.available >= 0
        assert account.reserved >= 0
    assert account.reserved == (
        applied[MovementKind.RESERVE] - applied[MovementKind.CHARGE] - applied[MovementKind.RELEASE]
    )
    assert account.available == (
        applied[MovementKind.TOP_UP]
        - applied[MovementKind.DRAFT]
        - applied[MovementKind.RESERVE]
        + applied[MovementKind.RELEASE]
    )


@given(events)
def test_when_every_reservation_is_settled_charges_plus_releases_equal_reserves(
    walk: list[tuple[MovementKind, int]],
) -> None:
    account = CreditAccount(workspace=WS, available=10_000)
    reserved = charged = released = 0
    for kind, amount in walk:
        if kind is MovementKind.RESERVE:
            account, reserved = account.reserve(amount), reserved + amount
        elif kind is MovementKind.CHARGE and amount <= account.reserved:
            account, charged = account.charge_reserved(amount), charged + amount
        elif kind is MovementKind.RELEASE and amount <= account.reserved:
            account, released = account.release(amount), released + amount
    # The campaign ends: whatever is still held is released.
    released += account.reserved
    account = account.release(account.reserved)
    assert account.reserved == 0
    assert reserved - released == charged
    assert account.available == 10_000 - charged


def test_one_cadence_can_be_priced_on_its_own() -> None:
    resolved = resolve_cadence(shapes.get("email-linkedin"), lead("a", linkedin=True))
    assert isinstance(resolved, Cadence)
    line = estimate_lead(resolved, PriceTable(linkedin_message=5))
    assert (line.lead_id, line.drafts, line.max_send_cost, line.total) == ("a", 2, 9, 17)
