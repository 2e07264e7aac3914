"""The dispatcher's half of ``Storage``: ``next_due``, ``claim_due`` and ``finish_send``."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import attrs
import pytest

from starlight_sequences.campaigns import (
    CampaignStatus,
    ScheduledSend,
    SendStatus,
)
from starlight_sequences.errors import (
    ConcurrentUpdate,
    InvalidInput,
    LeaseLost,
)
from starlight_sequences.events import ActivityKind
from starlight_sequences.ports.storage import Changes, Storage
from starlight_sequences.testing._storage_base import HOUR, LEASE, NEW_YORK, StorageSection, claim
from starlight_sequences.testing.records import (
    OTHER_WS,
    T0,
    WS,
    bumped,
    make_activity,
    make_campaign,
    make_enrolment,
    make_lead,
    make_send,
)


def _claimed(storage: Storage) -> tuple[ScheduledSend, ScheduledSend]:
    """A campaign with two sends of one lead; step 1 claimed by worker-a; (claimed, step 2)."""
    campaign = make_campaign()
    step1 = make_send(campaign, step=1)
    step2 = make_send(campaign, step=2, status=SendStatus.PENDING, due_at=T0 + 72 * HOUR)
    storage.commit(
        WS,
        Changes(
            campaigns=(campaign,),
            enrolments=(make_enrolment(campaign, make_lead()),),
            sends=(step1, step2),
        ),
    )
    (claimed,) = claim(storage, worker="worker-a", limit=1)
    return claimed, step2


def _assert_lease_lost_writes_nothing(
    storage: Storage, send: ScheduledSend, worker: str, now: dt.datetime
) -> None:
    before = storage.list_sends(WS, send.campaign_id)
    sent = bumped(send, status=SendStatus.SENT, sent_at=now)
    with pytest.raises(LeaseLost):
        storage.finish_send(
            sent,
            worker_id=worker,
            now=now,
            changes=Changes(activities=(make_activity(),), suppress=("x",)),
        )
    assert storage.list_sends(WS, send.campaign_id) == before
    assert storage.list_activities(WS) == []
    assert storage.suppressed(WS, ["x"]) == set()


class StorageClaims(StorageSection):
    """``next_due`` and ``claim_due``: what is due, in which order, and one worker per send."""

    # --- claiming ---------------------------------------------------------------------------------

    def test_next_due_is_the_earliest_later_instant_a_claim_would_find(
        self, storage: Storage
    ) -> None:
        active = make_campaign("camp-active")
        paused = make_campaign("camp-paused", status=CampaignStatus.PAUSED)
        sends = (
            make_send(active, "lead-due", due_at=T0 - HOUR),
            make_send(active, "lead-now", due_at=T0),
            make_send(paused, "lead-paused", due_at=T0 + HOUR),
            make_send(active, "lead-pending", due_at=T0 + HOUR, status=SendStatus.PENDING),
            make_send(active, "lead-later", due_at=T0 + 3 * HOUR),
            make_send(active, "lead-waiting", due_at=T0 + 2 * HOUR, status=SendStatus.WAITING),
        )
        storage.commit(WS, Changes(campaigns=(active, paused), sends=sends))
        assert storage.next_due(T0) == T0 + 2 * HOUR
        assert storage.next_due(T0 + 2 * HOUR) == T0 + 3 * HOUR
        assert storage.next_due(T0 + 3 * HOUR) is None
        assert storage.next_due(T0, workspace_id=OTHER_WS) is None
        assert storage.next_due(T0.astimezone(NEW_YORK), workspace_id=WS) == T0 + 2 * HOUR

    def test_next_due_counts_the_expiry_of_a_live_lease(self, storage: Storage) -> None:
        campaign = make_campaign()
        storage.commit(
            WS,
            Changes(
                campaigns=(campaign,),
                sends=(
                    make_send(campaign, "lead-ann", due_at=T0),
                    make_send(campaign, "lead-bob", due_at=T0 + HOUR),
                ),
            ),
        )
        assert len(claim(storage, limit=1)) == 1
        assert storage.next_due(T0) == T0 + LEASE
        assert storage.next_due(T0 + LEASE) == T0 + HOUR

    def test_next_due_is_scoped_to_a_workspace_when_one_is_given(self, storage: Storage) -> None:
        mine, theirs = make_campaign("camp-1"), make_campaign("camp-2", workspace_id=OTHER_WS)
        storage.commit(WS, Changes(campaigns=(mine,), sends=(make_send(mine, due_at=T0 + HOUR),)))
        storage.commit(
            OTHER_WS, Changes(campaigns=(theirs,), sends=(make_send(theirs, due_at=T0 + 2 * HOUR),))
        )
        assert storage.next_due(T0, workspace_id=OTHER_WS) == T0 + 2 * HOUR
        assert storage.next_due(T0, workspace_id=WS) == T0 + HOUR
        assert storage.next_due(T0) == T0 + HOUR

    def test_claim_takes_due_scheduled_and_waiting_sends_of_active_campaigns_only(
        self,
        storage: Storage,
    ) -> None:
        active = make_campaign("camp-active")
        paused = make_campaign("camp-paused", status=CampaignStatus.PAUSED)
        draft = make_campaign("camp-draft", status=CampaignStatus.DRAFT)
        cancelled = make_campaign("camp-cancelled", status=CampaignStatus.CANCELLED)
        sends = (
            make_send(active, "lead-due", due_at=T0 - HOUR),
            make_send(active, "lead-now", due_at=T0),
            make_send(active, "lead-waiting", due_at=T0 - HOUR, status=SendStatus.WAITING),
            make_send(active, "lead-future", due_at=T0 + dt.timedelta(microseconds=1)),
            make_send(active, "lead-pending", due_at=T0 - HOUR, status=SendStatus.PENDING),
            make_send(active, "lead-sent", due_at=T0 - HOUR, status=SendStatus.SENT, sent_at=T0),
            make_send(active, "lead-skipped", due_at=T0 - HOUR, status=SendStatus.SKIPPED),
            make_send(active, "lead-failed", due_at=T0 - HOUR, status=SendStatus.FAILED),
            make_send(paused, "lead-p", due_at=T0 - HOUR),
            make_send(draft, "lead-d", due_at=T0 - HOUR),
            make_send(cancelled, "lead-c", due_at=T0 - HOUR),
        )
        storage.commit(WS, Changes(campaigns=(active, paused, draft, cancelled), sends=sends))
        claimed = claim(storage)
        assert sorted(s.lead_id for s in claimed) == ["lead-due", "lead-now", "lead-waiting"]

    def test_a_send_of_a_campaign_never_stored_is_not_claimed(self, storage: Storage) -> None:
        storage.commit(
            WS, Changes(sends=(make_send(make_campaign("camp-ghost"), due_at=T0 - HOUR),))
        )
        assert claim(storage) == []

    def test_claim_returns_the_oldest_first_up_to_the_limit(self, storage: Storage) -> None:
        campaign = make_campaign()
        dues = {"lead-c": T0 - HOUR, "lead-a": T0 - 3 * HOUR, "lead-b": T0 - 2 * HOUR, "lead-d": T0}
        storage.commit(
            WS,
            Changes(
                campaigns=(campaign,),
                sends=tuple(make_send(campaign, lead, due_at=due) for lead, due in dues.items()),
            ),
        )
        assert [s.lead_id for s in claim(storage, limit=2)] == ["lead-a", "lead-b"]
        assert [s.lead_id for s in claim(storage, limit=5)] == ["lead-c", "lead-d"]
        assert claim(storage, limit=5) == []

    def test_claim_with_a_limit_of_zero_claims_nothing(self, storage: Storage) -> None:
        campaign = make_campaign()
        storage.commit(WS, Changes(campaigns=(campaign,), sends=(make_send(campaign),)))
        assert claim(storage, limit=0) == []
        assert len(claim(storage, limit=1)) == 1

    def test_a_claimed_send_is_stored_and_returned_as_held_by_the_worker(
        self, storage: Storage
    ) -> None:
        campaign = make_campaign()
        send = make_send(campaign, due_at=T0 - HOUR, attempts=1, revision=0)
        storage.commit(WS, Changes(campaigns=(campaign,), sends=(send,)))
        now = T0.astimezone(NEW_YORK)
        (claimed,) = claim(storage, now=now, worker="worker-a")
        expected = attrs.evolve(
            send,
            status=SendStatus.CLAIMED,
            lease_owner="worker-a",
            lease_expires_at=T0 + LEASE,
            attempts=2,
            revision=1,
        )
        assert claimed == expected
        assert storage.list_sends(WS, campaign.id) == [expected]
        assert claimed.idempotency_key == send.idempotency_key

    def test_a_live_lease_is_not_claimed_again(self, storage: Storage) -> None:
        campaign = make_campaign()
        storage.commit(WS, Changes(campaigns=(campaign,), sends=(make_send(campaign),)))
        assert len(claim(storage, worker="worker-a")) == 1
        assert (
            claim(storage, now=T0 + LEASE - dt.timedelta(microseconds=1), worker="worker-b") == []
        )

    def test_an_expired_lease_is_reclaimed_with_attempts_bumped(self, storage: Storage) -> None:
        campaign = make_campaign()
        storage.commit(WS, Changes(campaigns=(campaign,), sends=(make_send(campaign),)))
        (first,) = claim(storage, worker="worker-a")
        (second,) = claim(storage, now=T0 + LEASE, worker="worker-b")
        assert second.id == first.id
        assert second.lease_owner == "worker-b"
        assert second.lease_expires_at == T0 + 2 * LEASE
        assert (second.attempts, second.revision) == (2, 2)
        assert second.idempotency_key == first.idempotency_key

    def test_an_expired_lease_is_reclaimed_even_when_the_campaign_was_paused(
        self, storage: Storage
    ) -> None:
        campaign = make_campaign()
        storage.commit(WS, Changes(campaigns=(campaign,), sends=(make_send(campaign),)))
        claim(storage, worker="worker-a")
        storage.commit(WS, Changes(campaigns=(bumped(campaign, status=CampaignStatus.PAUSED),)))
        assert [s.lease_owner for s in claim(storage, now=T0 + LEASE, worker="worker-b")] == [
            "worker-b"
        ]

    def test_claim_is_scoped_to_a_workspace_when_one_is_given(self, storage: Storage) -> None:
        mine, theirs = make_campaign("camp-1"), make_campaign("camp-2", workspace_id=OTHER_WS)
        storage.commit(WS, Changes(campaigns=(mine,), sends=(make_send(mine, due_at=T0 - HOUR),)))
        storage.commit(OTHER_WS, Changes(campaigns=(theirs,), sends=(make_send(theirs),)))
        assert [s.workspace_id for s in claim(storage, workspace_id=OTHER_WS)] == [OTHER_WS]
        assert [s.workspace_id for s in claim(storage, workspace_id=OTHER_WS)] == []
        assert [s.workspace_id for s in claim(storage)] == [WS]

    def test_claim_without_a_workspace_takes_from_every_workspace_oldest_first(
        self,
        storage: Storage,
    ) -> None:
        mine, theirs = make_campaign("camp-1"), make_campaign("camp-2", workspace_id=OTHER_WS)
        storage.commit(WS, Changes(campaigns=(mine,), sends=(make_send(mine, due_at=T0 - HOUR),)))
        storage.commit(
            OTHER_WS, Changes(campaigns=(theirs,), sends=(make_send(theirs, due_at=T0 - 2 * HOUR),))
        )
        assert [s.workspace_id for s in claim(storage)] == [OTHER_WS, WS]

    def test_concurrent_claimers_never_receive_the_same_send(self, storage: Storage) -> None:
        campaign = make_campaign()
        sends = tuple(
            make_send(campaign, f"lead-{n:03}", due_at=T0 - dt.timedelta(seconds=n))
            for n in range(200)
        )
        storage.commit(WS, Changes(campaigns=(campaign,), sends=sends))
        taken: list[str] = []
        lock = threading.Lock()

        def work(worker: str) -> None:
            while batch := claim(storage, worker=worker, limit=7):
                with lock:
                    taken.extend(s.id for s in batch)

        threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert Counter(taken) == Counter(s.id for s in sends)


class StorageFinishing(StorageSection):
    """``finish_send``: the outcome lands with its changes, only under a live lease."""

    # --- finishing --------------------------------------------------------------------------------

    def test_finish_send_records_the_outcome_with_its_changes(self, storage: Storage) -> None:
        claimed, step2 = _claimed(storage)
        sent = bumped(
            claimed, status=SendStatus.SENT, sent_at=T0 + dt.timedelta(seconds=2), receipt="r1"
        )
        retimed = bumped(step2, status=SendStatus.SCHEDULED, due_at=T0 + 80 * HOUR)
        enrolment = storage.get_enrolment(WS, claimed.campaign_id, claimed.lead_id)
        line = make_activity(ActivityKind.SENT, step=1)
        storage.finish_send(
            sent,
            worker_id="worker-a",
            now=T0 + dt.timedelta(seconds=3),
            changes=Changes(
                sends=(retimed,),
                enrolments=(bumped(enrolment, reason="step 1 sent"),),
                activities=(line,),
            ),
        )
        assert storage.list_sends(WS, claimed.campaign_id) == [sent, retimed]
        assert (
            storage.get_enrolment(WS, claimed.campaign_id, claimed.lead_id).reason == "step 1 sent"
        )
        assert storage.list_activities(WS) == [line]

    def test_finish_send_without_changes_records_the_send(self, storage: Storage) -> None:
        claimed, _ = _claimed(storage)
        retry = bumped(claimed, status=SendStatus.SCHEDULED, due_at=T0 + HOUR, reason="451 busy")
        storage.finish_send(retry, worker_id="worker-a", now=T0)
        assert storage.list_sends(WS, claimed.campaign_id)[0] == retry

    def test_finish_send_just_before_the_lease_ends_succeeds(self, storage: Storage) -> None:
        claimed, _ = _claimed(storage)
        sent = bumped(claimed, status=SendStatus.SENT, sent_at=T0)
        storage.finish_send(
            sent, worker_id="worker-a", now=T0 + LEASE - dt.timedelta(microseconds=1)
        )
        assert storage.list_sends(WS, claimed.campaign_id)[0].status is SendStatus.SENT

    def test_finish_send_at_the_instant_the_lease_ends_is_lease_lost(
        self, storage: Storage
    ) -> None:
        # The same rule as claim_due: at lease_expires_at another worker may take the send.
        claimed, _ = _claimed(storage)
        _assert_lease_lost_writes_nothing(storage, claimed, "worker-a", T0 + LEASE)

    def test_finish_send_refuses_inbound_event_keys_and_writes_nothing(
        self, storage: Storage
    ) -> None:
        claimed, _ = _claimed(storage)
        sent = bumped(claimed, status=SendStatus.SENT, sent_at=T0)
        with pytest.raises(InvalidInput, match="event keys"):
            storage.finish_send(
                sent,
                worker_id="worker-a",
                now=T0,
                changes=Changes(activities=(make_activity(key="reply:m1"),)),
            )
        assert storage.list_sends(WS, claimed.campaign_id)[0].status is SendStatus.CLAIMED
        assert storage.list_activities(WS) == []

    def test_finish_send_by_another_worker_is_lease_lost(self, storage: Storage) -> None:
        claimed, _ = _claimed(storage)
        _assert_lease_lost_writes_nothing(storage, claimed, "worker-b", T0)

    def test_finish_send_after_the_lease_expired_is_lease_lost(self, storage: Storage) -> None:
        claimed, _ = _claimed(storage)
        _assert_lease_lost_writes_nothing(
            storage, claimed, "worker-a", T0 + LEASE + dt.timedelta(microseconds=1)
        )

    def test_finish_send_after_another_worker_reclaimed_it_is_lease_lost(
        self, storage: Storage
    ) -> None:
        claimed, _ = _claimed(storage)
        claim(storage, now=T0 + LEASE, worker="worker-b")
        _assert_lease_lost_writes_nothing(storage, claimed, "worker-a", T0 + LEASE)

    def test_finish_send_of_a_send_never_claimed_is_lease_lost(self, storage: Storage) -> None:
        _, step2 = _claimed(storage)
        _assert_lease_lost_writes_nothing(storage, step2, "worker-a", T0)
        ghost = make_send(make_campaign(), "lead-ghost")
        with pytest.raises(LeaseLost):
            storage.finish_send(bumped(ghost), worker_id="worker-a", now=T0)

    def test_finish_send_twice_is_lease_lost_the_second_time(self, storage: Storage) -> None:
        claimed, _ = _claimed(storage)
        sent = bumped(claimed, status=SendStatus.SENT, sent_at=T0)
        storage.finish_send(sent, worker_id="worker-a", now=T0)
        with pytest.raises(LeaseLost):
            storage.finish_send(bumped(sent), worker_id="worker-a", now=T0)

    def test_finish_send_with_a_stale_change_writes_nothing(self, storage: Storage) -> None:
        claimed, step2 = _claimed(storage)
        sent = bumped(claimed, status=SendStatus.SENT, sent_at=T0)
        with pytest.raises(ConcurrentUpdate):
            storage.finish_send(
                sent,
                worker_id="worker-a",
                now=T0,
                changes=Changes(sends=(bumped(bumped(step2)),), activities=(make_activity(),)),
            )
        assert storage.list_sends(WS, claimed.campaign_id) == [claimed, step2]
        assert storage.list_activities(WS) == []

    def test_finish_send_with_an_unbumped_revision_is_a_concurrent_update(
        self, storage: Storage
    ) -> None:
        claimed, _ = _claimed(storage)
        with pytest.raises(ConcurrentUpdate):
            storage.finish_send(
                attrs.evolve(claimed, status=SendStatus.SENT), worker_id="worker-a", now=T0
            )
        assert storage.list_sends(WS, claimed.campaign_id)[0] == claimed
