"""The credit ledger contract: every promise of ``ports.CreditLedger``."""

from __future__ import annotations

import threading

import pytest

from starlight_sequences.credits import MAX_CREDITS, CreditAccount, CreditMovement, MovementKind
from starlight_sequences.errors import InsufficientCredits, InvalidInput
from starlight_sequences.ids import CampaignId, LeadId
from starlight_sequences.ports.credits import CreditLedger
from starlight_sequences.testing.records import OTHER_WS, WS

CAMP = CampaignId("camp-1")


def _move(kind: MovementKind, amount: int, **kw: str) -> CreditMovement:
    return CreditMovement(kind=kind, amount=amount, **kw)  # type: ignore[arg-type]


def top_up(amount: int, **kw: str) -> CreditMovement:
    return _move(MovementKind.TOP_UP, amount, **kw)


class LedgerContract:
    """Every promise of :class:`~starlight_sequences.ports.credits.CreditLedger`, as tests.

    Subclass it in a test module (the subclass's name starts with ``Test``) and override the
    :meth:`ledger` fixture with one that gives each test a fresh, empty ledger.
    """

    @pytest.fixture
    def ledger(self) -> CreditLedger:
        """The ledger under test: a subclass overrides this fixture."""
        pytest.fail(
            f"{type(self).__name__} needs a `ledger` fixture that returns a fresh, empty "
            "CreditLedger (define it on the class: see starlight_sequences.testing)",
            pytrace=False,
        )

    def test_a_workspace_never_seen_has_a_zero_balance(self, ledger: CreditLedger) -> None:
        assert ledger.balance(WS) == CreditAccount(workspace=WS)
        assert ledger.movements(WS) == []

    def test_top_up_reserve_charge_and_release_move_credits(self, ledger: CreditLedger) -> None:
        assert ledger.post(WS, top_up(100)) == CreditAccount(workspace=WS, available=100)
        assert ledger.post(WS, _move(MovementKind.DRAFT, 12)) == CreditAccount(
            workspace=WS, available=88
        )
        assert ledger.post(WS, _move(MovementKind.RESERVE, 30, campaign_id=CAMP)) == CreditAccount(
            workspace=WS, available=58, reserved=30
        )
        assert ledger.post(WS, _move(MovementKind.CHARGE, 2, campaign_id=CAMP)) == CreditAccount(
            workspace=WS, available=58, reserved=28
        )
        after = ledger.post(WS, _move(MovementKind.RELEASE, 8, campaign_id=CAMP))
        assert after == CreditAccount(workspace=WS, available=66, reserved=20)
        assert ledger.balance(WS) == after

    def test_post_applies_several_movements_in_order(self, ledger: CreditLedger) -> None:
        account = ledger.post(
            WS, top_up(10), _move(MovementKind.RESERVE, 10), _move(MovementKind.RELEASE, 4)
        )
        assert account == CreditAccount(workspace=WS, available=4, reserved=6)
        assert [m.kind for m in ledger.movements(WS)] == [
            MovementKind.TOP_UP,
            MovementKind.RESERVE,
            MovementKind.RELEASE,
        ]

    @pytest.mark.parametrize("kind", [MovementKind.DRAFT, MovementKind.RESERVE])
    def test_insufficient_credits_changes_nothing(
        self, ledger: CreditLedger, kind: MovementKind
    ) -> None:
        ledger.post(WS, top_up(10))
        with pytest.raises(InsufficientCredits) as caught:
            ledger.post(WS, _move(kind, 11))
        assert (caught.value.needed, caught.value.available) == (11, 10)
        assert ledger.balance(WS) == CreditAccount(workspace=WS, available=10)
        assert ledger.movements(WS) == [top_up(10)]

    def test_a_post_that_fails_part_way_changes_nothing(self, ledger: CreditLedger) -> None:
        ledger.post(WS, top_up(10))
        with pytest.raises(InsufficientCredits):
            ledger.post(
                WS,
                top_up(5, key="grant-1"),
                _move(MovementKind.RESERVE, 10, key="reserve-1"),
                _move(MovementKind.DRAFT, 6, key="draft-1"),
            )
        assert ledger.balance(WS) == CreditAccount(workspace=WS, available=10)
        assert ledger.movements(WS) == [top_up(10)]
        # none of the keys of the failed post counts as posted
        assert ledger.post(WS, top_up(5, key="grant-1")).available == 15

    @pytest.mark.parametrize("kind", [MovementKind.CHARGE, MovementKind.RELEASE])
    def test_charging_or_releasing_more_than_is_reserved_is_invalid_and_changes_nothing(
        self, ledger: CreditLedger, kind: MovementKind
    ) -> None:
        ledger.post(WS, top_up(10), _move(MovementKind.RESERVE, 4))
        with pytest.raises(InvalidInput):
            ledger.post(WS, _move(kind, 5))
        assert ledger.balance(WS) == CreditAccount(workspace=WS, available=6, reserved=4)
        assert len(ledger.movements(WS)) == 2

    def test_a_balance_of_max_credits_is_stored_and_read_back_exactly(
        self, ledger: CreditLedger
    ) -> None:
        ledger.post(WS, top_up(MAX_CREDITS - 1), _move(MovementKind.RESERVE, MAX_CREDITS - 2))
        full = ledger.post(WS, top_up(1))
        assert full == CreditAccount(workspace=WS, available=2, reserved=MAX_CREDITS - 2)
        assert ledger.balance(WS) == full
        assert [m.amount for m in ledger.movements(WS)] == [MAX_CREDITS - 1, MAX_CREDITS - 2, 1]

    def test_a_post_that_would_take_the_balance_past_max_credits_is_refused_and_changes_nothing(
        self,
        ledger: CreditLedger,
    ) -> None:
        ledger.post(WS, top_up(MAX_CREDITS - 10), _move(MovementKind.RESERVE, 4))
        before, journal = ledger.balance(WS), ledger.movements(WS)
        with pytest.raises(InvalidInput, match="past the maximum"):
            ledger.post(WS, top_up(11))
        with pytest.raises(InvalidInput, match="past the maximum"):
            ledger.post(WS, _move(MovementKind.RELEASE, 4), top_up(5, key="grant"), top_up(6))
        assert ledger.balance(WS) == before
        assert ledger.movements(WS) == journal
        # the refused post's key was not recorded, and the account still takes what fits
        assert ledger.post(WS, top_up(10, key="grant")).available == MAX_CREDITS - 4

    def test_a_movement_key_already_posted_is_skipped(self, ledger: CreditLedger) -> None:
        charge = _move(MovementKind.DRAFT, 4, key="draft:camp-1:lead-a:1")
        ledger.post(WS, top_up(10))
        assert ledger.post(WS, charge).available == 6
        assert ledger.post(WS, charge, top_up(1)).available == 7
        assert ledger.movements(WS) == [top_up(10), charge, top_up(1)]

    def test_movements_without_a_key_are_never_skipped(self, ledger: CreditLedger) -> None:
        ledger.post(WS, top_up(1), top_up(1))
        ledger.post(WS, top_up(1))
        assert ledger.balance(WS).available == 3

    def test_a_key_repeated_within_one_post_is_applied_once(self, ledger: CreditLedger) -> None:
        ledger.post(WS, top_up(10))
        first = _move(MovementKind.DRAFT, 4, key="draft-1")
        assert ledger.post(WS, first, first).available == 6
        assert ledger.movements(WS) == [top_up(10), first]

    def test_a_key_repeated_within_one_post_with_another_amount_is_skipped(
        self,
        ledger: CreditLedger,
    ) -> None:
        ledger.post(WS, top_up(10))
        assert ledger.post(WS, top_up(5, key="k"), top_up(7, key="k")).available == 15

    def test_keys_are_per_workspace(self, ledger: CreditLedger) -> None:
        grant = top_up(5, key="welcome")
        ledger.post(WS, grant)
        ledger.post(OTHER_WS, grant)
        assert ledger.balance(OTHER_WS).available == 5

    def test_workspaces_have_separate_accounts_and_journals(self, ledger: CreditLedger) -> None:
        ledger.post(WS, top_up(10))
        ledger.post(OTHER_WS, top_up(3))
        with pytest.raises(InsufficientCredits):
            ledger.post(OTHER_WS, _move(MovementKind.RESERVE, 4))
        assert ledger.balance(WS) == CreditAccount(workspace=WS, available=10)
        assert ledger.balance(OTHER_WS) == CreditAccount(workspace=OTHER_WS, available=3)
        assert ledger.movements(OTHER_WS) == [top_up(3)]

    def test_movements_come_back_equal_oldest_first_and_filtered_by_campaign(
        self,
        ledger: CreditLedger,
    ) -> None:
        journal = [
            top_up(100, note="bought 100 credits ✓"),
            _move(MovementKind.DRAFT, 8, campaign_id=CAMP, lead_id="lead-a", key="d1"),
            _move(MovementKind.RESERVE, 6, campaign_id="camp-2"),
            _move(MovementKind.RESERVE, 4, campaign_id=CAMP),
            _move(MovementKind.CHARGE, 2, campaign_id=CAMP, lead_id="lead-a", note="step 1 sent"),
        ]
        ledger.post(WS, *journal[:2])
        for movement in journal[2:]:
            ledger.post(WS, movement)
        assert ledger.movements(WS) == journal
        assert ledger.movements(WS, campaign_id=CAMP) == [journal[1], journal[3], journal[4]]
        assert ledger.movements(WS, campaign_id=CampaignId("camp-none")) == []
        assert ledger.movements(WS)[1].lead_id == LeadId("lead-a")

    def test_post_with_no_movements_returns_the_balance(self, ledger: CreditLedger) -> None:
        ledger.post(WS, top_up(3))
        assert ledger.post(WS) == CreditAccount(workspace=WS, available=3)

    def test_concurrent_reservations_never_take_the_balance_below_zero(
        self, ledger: CreditLedger
    ) -> None:
        ledger.post(WS, top_up(100))
        refused: list[int] = []
        lock = threading.Lock()

        def reserve() -> None:
            for _ in range(10):
                try:
                    ledger.post(WS, _move(MovementKind.RESERVE, 3))
                except InsufficientCredits:
                    with lock:
                        refused.append(1)

        threads = [threading.Thread(target=reserve) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert ledger.balance(WS) == CreditAccount(workspace=WS, available=1, reserved=99)
        assert len(refused) == 40 - 33
