"""A worker with several sends in flight: the setting's validation, sends of different mailboxes
going out at once, one mailbox's sends one after the other and kept apart, a graceful stop
that leaves nothing claimed, and a lease too short for another send."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import threading
from collections import Counter
from collections.abc import Sequence

import attrs
import pytest

from starlight_sequences.async_service import AsyncCampaignService
from starlight_sequences.async_worker import run_worker_async
from starlight_sequences.campaigns import EmailIdentity, ScheduledSend, SendStatus
from starlight_sequences.errors import InvalidSettings
from starlight_sequences.ids import CampaignId, SenderId
from starlight_sequences.ports.senders import OutgoingEmail, SendFailure, SendReceipt
from starlight_sequences.reports import DispatchReport
from starlight_sequences.service._lanes import LanePool, sender_lanes
from starlight_sequences.worker import run_worker
from tests.service_kit import MAILBOX, WS, Kit, lead, make_kit

NO_SPACING = dt.timedelta(0)


def mailbox(number: int, spacing: dt.timedelta = NO_SPACING) -> EmailIdentity:
    return attrs.evolve(
        MAILBOX,
        id=SenderId(f"mbx-{number}"),
        address=f"m{number}@acme.test",
        min_spacing=spacing,
    )


def launch(kit: Kit, mailboxes: int, leads_each: int, spacing: dt.timedelta = NO_SPACING) -> None:
    """One campaign per mailbox, each with ``leads_each`` leads; then the clock moves to long
    after every first step fell due."""
    for number in range(mailboxes):
        campaign_id = CampaignId(f"c{number}")
        kit.service.create_campaign(
            WS,
            name=f"c{number}",
            brief="b",
            shape="cold-email",
            leads=[lead(f"l{number}x{i}") for i in range(leads_each)],
            email_identity=mailbox(number, spacing),
            campaign_id=campaign_id,
        )
        kit.service.approve(WS, campaign_id)
    kit.clock.advance(dt.timedelta(days=1, hours=8))  # Tuesday 11:00 in New York


def all_sends(kit: Kit) -> list[ScheduledSend]:
    return [
        send
        for campaign in kit.storage.list_campaigns(WS)
        for send in kit.storage.list_sends(WS, campaign.id)
    ]


class Watching:
    """Wraps the kit's email sender: counts the sends in flight per mailbox and in all, and
    holds each mailbox's first send at a barrier until ``parties`` first sends are in flight
    (a pass that sends one at a time would break the barrier: every send fails)."""

    def __init__(self, kit: Kit, parties: int) -> None:
        self._send = kit.email.send_email
        self._lock = threading.Lock()
        self._barrier = threading.Barrier(parties, timeout=10)
        self._seen: set[str] = set()
        self.now: Counter[str] = Counter()
        self.most: Counter[str] = Counter()
        self.most_at_once = 0
        kit.email.send_email = self.send_email  # type: ignore[method-assign]

    def send_email(self, message: OutgoingEmail) -> SendReceipt | SendFailure:
        with self._lock:
            first = message.sender_id not in self._seen
            self._seen.add(message.sender_id)
            self.now[message.sender_id] += 1
            self.most[message.sender_id] = max(
                self.most[message.sender_id], self.now[message.sender_id]
            )
            self.most_at_once = max(self.most_at_once, sum(self.now.values()))
        try:
            if first:
                self._barrier.wait()
            return self._send(message)
        finally:
            with self._lock:
                self.now[message.sender_id] -= 1


def test_in_flight_must_be_from_one_to_the_batch() -> None:
    kit = make_kit()
    for in_flight, batch in ((0, 100), (-1, 100), (101, 100), (2, 1)):
        with pytest.raises(InvalidSettings, match="in_flight"):
            run_worker(
                kit.service,
                worker_id="w",
                once=True,
                handle_signals=False,
                batch=batch,
                in_flight=in_flight,
            )


def test_a_dispatch_pass_refuses_fewer_than_one_send_in_flight() -> None:
    kit = make_kit()
    with pytest.raises(InvalidSettings, match="in_flight"):
        kit.service.dispatch_due(worker_id="w", in_flight=0)


def test_one_send_in_flight_and_the_batch_in_flight_are_both_accepted() -> None:
    kit = make_kit()
    for in_flight in (1, 10):
        stats = run_worker(
            kit.service,
            worker_id="w",
            once=True,
            handle_signals=False,
            batch=10,
            in_flight=in_flight,
        )
        assert stats.passes == 1


def test_eight_mailboxes_send_at_once_but_never_two_sends_of_one_mailbox() -> None:
    kit = make_kit()
    launch(kit, mailboxes=8, leads_each=3)
    watching = Watching(kit, parties=8)
    stats = run_worker(kit.service, worker_id="w", once=True, handle_signals=False, in_flight=8)
    assert stats.totals.sent == 24
    assert len(kit.email.sent) == 24
    assert watching.most_at_once == 8
    assert set(watching.most.values()) == {1}
    assert all(s.status is SendStatus.SENT for s in all_sends(kit))


def test_a_mailboxs_sends_due_at_once_go_out_at_least_its_spacing_apart_with_eight_in_flight() -> (
    None
):
    kit = make_kit()
    spacing = dt.timedelta(minutes=7)
    launch(kit, mailboxes=3, leads_each=2, spacing=spacing)
    due = all_sends(kit)
    assert all(s.due_at <= kit.clock.now() for s in due if s.status is SendStatus.SCHEDULED)
    # Each mailbox's first send waits until all three are in flight: a second send of a
    # mailbox sent meanwhile would go out beside its first.
    watching = Watching(kit, parties=3)
    first = kit.service.dispatch_due(worker_id="w", in_flight=8)
    # One send per mailbox now; each mailbox's second is re-timed behind its first.
    assert (first.sent, first.deferred) == (3, 3)
    for _ in range(20):
        kit.clock.advance(dt.timedelta(minutes=1))
        kit.service.dispatch_due(worker_id="w", in_flight=8)
    for number in range(3):
        sent = sorted(
            s.sent_at
            for s in kit.storage.list_sends(WS, CampaignId(f"c{number}"))
            if s.sent_at is not None
        )
        assert len(sent) == 2
        assert all(b - a >= spacing for a, b in itertools.pairwise(sent))
    assert set(watching.most.values()) == {1}


def test_a_graceful_stop_with_sends_in_flight_finishes_them_and_leaves_nothing_claimed() -> None:
    kit = make_kit()
    launch(kit, mailboxes=8, leads_each=3)
    stop = threading.Event()
    original = kit.email.send_email

    def send_then_stop(message: OutgoingEmail) -> SendReceipt | SendFailure:
        stop.set()
        return original(message)

    kit.email.send_email = send_then_stop  # type: ignore[method-assign]
    stats = run_worker(kit.service, worker_id="w", stop=stop, handle_signals=False, in_flight=4)
    assert 1 <= stats.totals.sent <= 4  # the sends in flight when the stop came
    assert stats.totals.sent + stats.totals.handed_back == 24
    assert len(kit.email.sent) == stats.totals.sent
    sends = all_sends(kit)
    assert not [s for s in sends if s.status is SendStatus.CLAIMED or s.lease_owner]
    assert all(s.attempts == 0 for s in sends if s.status is SendStatus.SCHEDULED)
    kit.email.send_email = original  # type: ignore[method-assign]
    again = run_worker(kit.service, worker_id="w2", once=True, handle_signals=False, in_flight=4)
    assert again.totals.sent == 24 - stats.totals.sent
    assert len(kit.email.attempts) == 24  # every send reached the sender once


def test_a_send_whose_lease_ends_before_another_slow_send_would_is_handed_back() -> None:
    kit = make_kit()
    launch(kit, mailboxes=1, leads_each=3)
    original = kit.email.send_email

    def slow(message: OutgoingEmail) -> SendReceipt | SendFailure:
        kit.clock.advance(dt.timedelta(minutes=2))
        return original(message)

    kit.email.send_email = slow  # type: ignore[method-assign]
    report = kit.service.dispatch_due(worker_id="w", lease=dt.timedelta(minutes=5))
    # After two sends of 2 minutes each, 1 minute of lease is left: not enough for a third.
    assert (report.sent, report.handed_back) == (2, 1)
    assert len(kit.email.sent) == 2
    left = [s for s in all_sends(kit) if s.status is SendStatus.SCHEDULED]
    assert len(left) == 1
    assert left[0].lease_owner is None


def test_a_pass_never_has_more_in_flight_than_it_asked_for_after_a_wider_pass() -> None:
    kit = make_kit()
    launch(kit, mailboxes=8, leads_each=2)
    assert kit.service.dispatch_due(worker_id="w", limit=8, in_flight=8).sent == 8
    # The service keeps its eight threads; a later pass asking for two uses two of them.
    watching = Counting(kit)
    report = kit.service.dispatch_due(worker_id="w", in_flight=2)
    assert report.sent == 8
    assert watching.most_at_once == 2


class Counting:
    """Wraps the kit's email sender: the most sends in flight at once (each one waits, up to a
    second, for another to start, so that sends a pass may overlap do overlap here)."""

    def __init__(self, kit: Kit) -> None:
        self._send = kit.email.send_email
        self._lock = threading.Lock()
        self._now = 0
        self.most_at_once = 0
        self._started = threading.Condition(self._lock)
        kit.email.send_email = self.send_email  # type: ignore[method-assign]

    def send_email(self, message: OutgoingEmail) -> SendReceipt | SendFailure:
        with self._lock:
            self._now += 1
            self.most_at_once = max(self.most_at_once, self._now)
            self._started.notify_all()
            self._started.wait(timeout=1.0)
        try:
            return self._send(message)
        finally:
            with self._lock:
                self._now -= 1


def test_a_lane_that_raises_ends_the_pass_only_once_every_other_lane_has_ended() -> None:
    pool = LanePool()
    ended: list[str] = []
    release = threading.Event()

    def work(lane: Sequence[ScheduledSend]) -> DispatchReport:
        if lane[0].lead_id == "l0x0":
            raise RuntimeError("boom")
        release.wait(5)
        ended.append(lane[0].lead_id)
        return DispatchReport(sent=len(lane))

    kit = make_kit()
    launch(kit, mailboxes=3, leads_each=1)
    lanes = sender_lanes(sorted(all_sends(kit), key=lambda s: s.lead_id))
    timer = threading.Timer(0.2, release.set)
    timer.start()
    with pytest.raises(RuntimeError, match="boom"):
        pool.run(3, lanes, work)
    assert sorted(ended) == ["l1x0", "l2x0"]


def test_the_asyncio_worker_refuses_in_flight_above_the_batch() -> None:
    kit = make_kit()
    service = AsyncCampaignService(kit.service, max_threads=1)

    async def main() -> None:
        try:
            with pytest.raises(InvalidSettings, match="in_flight"):
                await run_worker_async(service, worker_id="w", once=True, batch=4, in_flight=5)
        finally:
            await service.aclose()

    asyncio.run(main())


def test_the_asyncio_worker_sends_with_sends_in_flight() -> None:
    kit = make_kit()
    launch(kit, mailboxes=4, leads_each=2)
    service = AsyncCampaignService(kit.service, max_threads=1)

    async def main() -> int:
        try:
            stats = await run_worker_async(service, worker_id="w", once=True, in_flight=4)
            return stats.totals.sent
        finally:
            await service.aclose()

    assert asyncio.run(main()) == 8
    assert not [s for s in all_sends(kit) if s.status is SendStatus.CLAIMED]
