"""Bounce-breaker state in every storage adapter: holds per (workspace, sender) written through
``Changes.sender_holds`` under the revision rule, read back by sender and listed; and a
sender's recent sent sends (``recent_sends``), the breaker's window."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import attrs
import pytest

from starlight_sequences.bounce_breaker import BounceBreaker, SenderHold
from starlight_sequences.campaigns import SendStatus
from starlight_sequences.errors import ConcurrentUpdate, InvalidInput
from starlight_sequences.ids import SenderId, WorkspaceId
from starlight_sequences.ports.storage import Changes, Storage
from tests.contract.conftest import (
    EMAIL_SENDER,
    OTHER_WS,
    T0,
    WS,
    make_campaign,
    make_send,
)


def _hold(
    workspace: WorkspaceId = WS, sender: str = EMAIL_SENDER, **overrides: object
) -> SenderHold:
    values: dict[str, object] = {
        "workspace_id": workspace,
        "sender_id": SenderId(sender),
        "held_at": T0,
        "sends": 20,
        "hard_bounces": 2,
        "threshold": 0.05,
    }
    values.update(overrides)
    return SenderHold(**values)  # type: ignore[arg-type]


def test_a_stored_hold_reads_back_equal_and_in_utc(storage: Storage) -> None:
    new_york = zoneinfo.ZoneInfo("America/New_York")
    hold = _hold(held_at=T0.astimezone(new_york), threshold=0.075)

    assert storage.commit(WS, Changes(sender_holds=(hold,)))

    stored = storage.get_sender_hold(WS, EMAIL_SENDER)
    assert stored == attrs.evolve(hold, held_at=T0)
    assert stored is not None
    assert stored.held_at.tzinfo is dt.UTC
    assert stored.held
    assert stored.threshold == 0.075


def test_a_sender_never_held_has_no_hold(storage: Storage) -> None:
    assert storage.get_sender_hold(WS, EMAIL_SENDER) is None
    assert storage.list_sender_holds(WS) == []


def test_resuming_a_hold_bumps_its_revision_and_keeps_the_record(storage: Storage) -> None:
    hold = _hold()
    storage.commit(WS, Changes(sender_holds=(hold,)))
    resumed = attrs.evolve(hold, resumed_at=T0 + dt.timedelta(hours=2), revision=1)

    storage.commit(WS, Changes(sender_holds=(resumed,)))

    stored = storage.get_sender_hold(WS, EMAIL_SENDER)
    assert stored == resumed
    assert stored is not None
    assert not stored.held


def test_a_hold_written_twice_as_new_is_a_concurrent_update_and_writes_nothing(
    storage: Storage,
) -> None:
    storage.commit(WS, Changes(sender_holds=(_hold(),)))
    campaign = make_campaign()

    with pytest.raises(ConcurrentUpdate, match="sender hold"):
        storage.commit(WS, Changes(campaigns=(campaign,), sender_holds=(_hold(sends=40),)))

    assert storage.list_campaigns(WS) == []
    stored = storage.get_sender_hold(WS, EMAIL_SENDER)
    assert stored is not None
    assert stored.sends == 20


def test_a_hold_update_from_a_stale_revision_is_refused(storage: Storage) -> None:
    hold = _hold()
    storage.commit(WS, Changes(sender_holds=(hold,)))
    storage.commit(WS, Changes(sender_holds=(attrs.evolve(hold, resumed_at=T0, revision=1),)))

    with pytest.raises(ConcurrentUpdate):
        storage.commit(WS, Changes(sender_holds=(attrs.evolve(hold, sends=30, revision=1),)))


def test_holds_are_listed_by_sender_id_and_kept_per_workspace(storage: Storage) -> None:
    storage.commit(WS, Changes(sender_holds=(_hold(sender="mbx-b"), _hold(sender="mbx-a"))))
    storage.commit(OTHER_WS, Changes(sender_holds=(_hold(OTHER_WS, sender="mbx-a", sends=99),)))

    assert [h.sender_id for h in storage.list_sender_holds(WS)] == ["mbx-a", "mbx-b"]
    mine = storage.get_sender_hold(WS, SenderId("mbx-a"))
    theirs = storage.get_sender_hold(OTHER_WS, SenderId("mbx-a"))
    assert mine is not None
    assert mine.sends == 20
    assert theirs is not None
    assert theirs.sends == 99
    assert storage.get_sender_hold(OTHER_WS, SenderId("mbx-b")) is None


def test_a_hold_of_another_workspace_is_refused(storage: Storage) -> None:
    with pytest.raises(InvalidInput, match="sender hold"):
        storage.commit(WS, Changes(sender_holds=(_hold(OTHER_WS),)))
    assert storage.list_sender_holds(OTHER_WS) == []


def _sent(storage: Storage, workspace: WorkspaceId, sender: str, minutes: list[int]) -> None:
    campaign = make_campaign(workspace_id=workspace)
    storage.commit(
        workspace,
        Changes(
            campaigns=(campaign,),
            sends=tuple(
                make_send(
                    campaign,
                    f"lead-{sender}-{m}",
                    status=SendStatus.SENT,
                    sender_id=SenderId(sender),
                    sent_at=T0 + dt.timedelta(minutes=m),
                    receipt=f"<{sender}-{m}@example.com>",
                )
                for m in minutes
            ),
        ),
    )


def test_recent_sends_are_the_senders_sent_sends_newest_first_up_to_the_limit(
    storage: Storage,
) -> None:
    _sent(storage, WS, EMAIL_SENDER, [5, 1, 9, 3, 7])
    campaign = make_campaign("camp-2")
    storage.commit(
        WS,
        Changes(
            campaigns=(campaign,),
            sends=(
                make_send(campaign, "lead-later", due_at=T0 + dt.timedelta(minutes=8)),
                make_send(
                    campaign,
                    "lead-other",
                    status=SendStatus.SENT,
                    sender_id=SenderId("x"),
                    sent_at=T0 + dt.timedelta(minutes=6),
                ),
            ),
        ),
    )

    recent = storage.recent_sends(WS, EMAIL_SENDER, limit=3)

    assert [s.sent_at for s in recent] == [T0 + dt.timedelta(minutes=m) for m in (9, 7, 5)]
    assert all(s.status is SendStatus.SENT and s.sender_id == EMAIL_SENDER for s in recent)


def test_recent_sends_after_an_instant_leave_out_what_was_sent_until_then(
    storage: Storage,
) -> None:
    _sent(storage, WS, EMAIL_SENDER, [1, 2, 3, 4])

    recent = storage.recent_sends(WS, EMAIL_SENDER, limit=10, after=T0 + dt.timedelta(minutes=2))

    assert [s.sent_at for s in recent] == [T0 + dt.timedelta(minutes=m) for m in (4, 3)]


def test_recent_sends_never_cross_workspaces(storage: Storage) -> None:
    _sent(storage, OTHER_WS, EMAIL_SENDER, [1, 2])

    assert storage.recent_sends(WS, EMAIL_SENDER, limit=10) == []
    assert len(storage.recent_sends(OTHER_WS, EMAIL_SENDER, limit=10)) == 2


def test_a_mailboxs_breaker_settings_are_stored_with_its_campaign(storage: Storage) -> None:
    campaign = make_campaign()
    assert campaign.email_identity is not None
    breaker = BounceBreaker(enabled=False, window=50, minimum_sends=10, threshold=0.025)
    identity = attrs.evolve(campaign.email_identity, bounce_breaker=breaker)
    # The campaign's pool holds the mailbox too (a pool of one): both name the new identity.
    with_breaker = attrs.evolve(campaign, email_identity=identity, email_identities=(identity,))
    storage.commit(WS, Changes(campaigns=(with_breaker,)))

    stored = storage.get_campaign(WS, campaign.id).email_identity

    assert stored is not None
    assert stored.bounce_breaker == breaker
