"""A worker with several sends in flight and no pass barrier (``continuous``, the worker loop's
default with ``in_flight`` above 1): it claims again while sends are in flight, yet one mailbox
never has two sends in flight, a stop hands back everything, a failed refill is waited out,
and nothing claimed is left behind."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import threading
from collections import Counter
from collections.abc import Sequence

from starlight_sequences.async_service import AsyncCampaignService
from starlight_sequences.async_worker import run_worker_async
from starlight_sequences.campaigns import ScheduledSend, SendStatus
from starlight_sequences.errors import StorageError
from starlight_sequences.ids import CampaignId, WorkspaceId
from starlight_sequences.ports.senders import OutgoingEmail, SendFailure, SendReceipt
from starlight_sequences.reports import DispatchReport
from starlight_sequences.service._dispatch import dispatch_continuously
from starlight_sequences.service._lanes import refills
from starlight_sequences.worker import run_worker
from tests.service_kit import WS, Kit, make_kit
from tests.unit.test_worker_in_flight import all_sends, launch


class Claims:
    """Wraps the kit's ``claim_due`` and email sender: how many sends each claim took, the
    sends in flight when each claim was made, the most sends of one mailbox in flight at once;
    the claims numbered in ``failing`` raise ``StorageError`` (1 is the first)."""

    def __init__(self, kit: Kit, failing: Sequence[int] = ()) -> None:
        self._claim = kit.storage.claim_due
        self._send = kit.email.send_email
        self._lock = threading.Lock()
        self.failing = set(failing)
        self.sizes: list[int] = []
        self.in_flight_at_claims: list[int] = []
        self.now: Counter[str] = Counter()
        self.most: Counter[str] = Counter()
        kit.storage.claim_due = self.claim_due  # type: ignore[method-assign]
        kit.email.send_email = self.send_email  # type: ignore[method-assign]

    def claim_due(self, *args: object, **kwargs: object) -> list[ScheduledSend]:
        with self._lock:
            self.in_flight_at_claims.append(sum(self.now.values()))
            number = len(self.in_flight_at_claims)
        if number in self.failing:
            raise StorageError(f"injected: claim {number} lost its connection")
        claimed: list[ScheduledSend] = self._claim(*args, **kwargs)  # type: ignore[arg-type]
        self.sizes.append(len(claimed))
        return claimed

    def send_email(self, message: OutgoingEmail) -> SendReceipt | SendFailure:
        with self._lock:
            self.now[message.sender_id] += 1
            self.most[message.sender_id] = max(
                self.most[message.sender_id], self.now[message.sender_id]
            )
        try:
            return self._send(message)
        finally:
            with self._lock:
                self.now[message.sender_id] -= 1


def continuous(
    kit: Kit, *, limit: int, in_flight: int, stop: threading.Event | None = None
) -> DispatchReport:
    return dispatch_continuously(
        kit.service._dispatch,
        worker_id="w",
        lease=dt.timedelta(minutes=5),
        limit=limit,
        workspace_id=WorkspaceId(WS),
        should_stop=stop.is_set if stop is not None else None,
        in_flight=in_flight,
    )


def left_claimed(kit: Kit) -> list[ScheduledSend]:
    return [s for s in all_sends(kit) if s.status is SendStatus.CLAIMED or s.lease_owner]


def test_a_run_claims_only_when_a_thread_would_go_idle_and_never_holds_more_than_the_limit() -> (
    None
):
    # (in_flight, limit, held, running, ready) -> sends claimed
    assert refills(4, 100, 0, 0, 0) == 100  # the first claim: the whole batch
    assert refills(4, 100, 50, 4, 10) == 0  # every thread busy
    assert refills(4, 100, 50, 3, 10) == 0  # a free thread has a send to start
    assert refills(4, 100, 50, 3, 0) == 47  # a free thread, nothing startable: refill
    assert refills(4, 10, 8, 1, 0) == 0  # room for 1 < 4 with sends held: wait
    assert refills(4, 10, 0, 3, 0) == 7  # nothing held: whatever room is left
    assert refills(4, 10, 4, 3, 0) == 0  # room for 3 < 4 with sends held: wait
    assert refills(4, 10, 7, 3, 0) == 0  # no room


def test_a_slow_send_does_not_hold_back_the_next_claim() -> None:
    kit = make_kit()
    launch(kit, mailboxes=4, leads_each=2)
    first_done = threading.Event()
    later_sent = threading.Event()
    inner = kit.email.send_email

    def send(message: OutgoingEmail) -> SendReceipt | SendFailure:
        # mbx-0's first send waits for a send that only a later claim can hold: with a pass
        # barrier the run would wait for mbx-0, and this wait would time out.
        if message.sender_id == "mbx-0" and not first_done.is_set():
            first_done.set()
            assert later_sent.wait(10), "no send of a later claim went out meanwhile"
        elif len(claims.sizes) > 1:
            later_sent.set()
        return inner(message)

    kit.email.send_email = send  # type: ignore[method-assign]
    claims = Claims(kit)  # counts the sends in flight around ``send``
    report = continuous(kit, limit=4, in_flight=2)
    assert report.sent == 8
    assert len(claims.sizes) > 2
    assert any(at > 0 for at in claims.in_flight_at_claims[1:])
    assert not left_claimed(kit)


def test_one_mailbox_never_has_two_sends_in_flight_across_refills() -> None:
    kit = make_kit()
    launch(kit, mailboxes=6, leads_each=5)
    claims = Claims(kit)
    report = continuous(kit, limit=8, in_flight=4)
    assert report.sent == 30
    assert len(claims.sizes) > 3  # refilled several times
    assert set(claims.most.values()) == {1}
    assert len(kit.email.sent) == 30
    assert all(s.status is SendStatus.SENT for s in all_sends(kit))


def test_a_mailboxs_sends_from_two_claims_go_out_at_least_its_spacing_apart() -> None:
    kit = make_kit()
    spacing = dt.timedelta(minutes=7)
    launch(kit, mailboxes=3, leads_each=3, spacing=spacing)
    claims = Claims(kit)
    for _ in range(30):
        continuous(kit, limit=2, in_flight=2)
        kit.clock.advance(dt.timedelta(minutes=1))
    assert len(claims.sizes) > 30
    for number in range(3):
        sent = sorted(
            s.sent_at
            for s in kit.storage.list_sends(WS, CampaignId(f"c{number}"))
            if s.sent_at is not None
        )
        assert len(sent) == 3
        assert all(b - a >= spacing for a, b in itertools.pairwise(sent))
    assert set(claims.most.values()) == {1}


def test_a_stop_after_refills_finishes_the_sends_in_flight_and_hands_back_the_rest() -> None:
    kit = make_kit()
    launch(kit, mailboxes=8, leads_each=3)
    stop = threading.Event()
    claims = Claims(kit)
    inner = kit.email.send_email

    def send(message: OutgoingEmail) -> SendReceipt | SendFailure:
        if len(claims.sizes) >= 3:  # two refills made: stop now
            stop.set()
        return inner(message)

    kit.email.send_email = send  # type: ignore[method-assign]
    stats = run_worker(
        kit.service, worker_id="w", stop=stop, handle_signals=False, batch=6, in_flight=3
    )
    assert len(claims.sizes) >= 3
    assert stats.totals.sent < 24
    assert stats.totals.handed_back > 0
    assert stats.totals.sent + stats.totals.handed_back == sum(claims.sizes)
    assert len(kit.email.sent) == stats.totals.sent
    assert not left_claimed(kit)
    assert all(s.attempts == 0 for s in all_sends(kit) if s.status is SendStatus.SCHEDULED)
    kit.email.send_email = inner  # type: ignore[method-assign]
    again = run_worker(kit.service, worker_id="w2", once=True, handle_signals=False, in_flight=3)
    assert again.totals.sent == 24 - stats.totals.sent
    assert len(kit.email.attempts) == 24  # every send reached the sender once


def test_a_failed_refill_is_waited_out_and_the_next_run_sends_the_rest() -> None:
    kit = make_kit()
    launch(kit, mailboxes=4, leads_each=3)
    claims = Claims(kit, failing=[2])
    first = continuous(kit, limit=4, in_flight=2)
    # The first claim's four sends went out; the failed refill ended the claiming.
    assert (first.sent, first.handed_back) == (4, 0)
    assert not left_claimed(kit)
    second = continuous(kit, limit=4, in_flight=2)
    assert second.sent == 8
    assert len(kit.email.sent) == 12
    assert set(claims.most.values()) == {1}


def test_a_failed_first_claim_reaches_the_worker_which_backs_off_and_sends_everything() -> None:
    kit = make_kit()
    launch(kit, mailboxes=4, leads_each=3)
    Claims(kit, failing=[1, 3])
    stop = threading.Event()

    def on_pass(report: DispatchReport) -> None:
        if len(kit.email.sent) == 12:
            stop.set()

    stats = run_worker(
        kit.service,
        worker_id="w",
        stop=stop,
        handle_signals=False,
        batch=4,
        in_flight=2,
        poll_interval=0,
        error_backoff=0.01,
        on_pass=on_pass,
    )
    assert stats.failed_passes == 1  # the first claim; the third, a refill, is waited out
    assert stats.totals.sent == 12
    assert not left_claimed(kit)


def test_a_storage_fault_during_a_send_of_a_run_hands_back_everything_not_sent() -> None:
    kit = make_kit()
    launch(kit, mailboxes=6, leads_each=2)
    claims = Claims(kit)
    get_enrolment = kit.storage.get_enrolment
    calls = itertools.count()

    def failing_once(*args: object, **kwargs: object) -> object:
        if next(calls) == 5:
            raise StorageError("injected: get_enrolment lost its connection")
        return get_enrolment(*args, **kwargs)  # type: ignore[arg-type]

    kit.storage.get_enrolment = failing_once  # type: ignore[method-assign,assignment]
    report = continuous(kit, limit=4, in_flight=2)
    assert report.handed_back > 0
    assert report.sent + report.handed_back + report.errored == sum(claims.sizes)
    assert report.sent == len(kit.email.sent)
    assert not left_claimed(kit)
    again = continuous(kit, limit=4, in_flight=2)
    assert report.sent + again.sent == 12
    assert len(kit.email.attempts) == 12


def test_the_asyncio_worker_refills_and_leaves_nothing_claimed() -> None:
    kit = make_kit()
    launch(kit, mailboxes=4, leads_each=3)
    claims = Claims(kit)
    service = AsyncCampaignService(kit.service, max_threads=1)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_pass(report: DispatchReport) -> None:
            if len(kit.email.sent) == 12:
                loop.call_soon(stop.set)

        try:
            stats = await run_worker_async(
                service,
                worker_id="w",
                stop=stop,
                batch=4,
                in_flight=2,
                poll_interval=0,
                on_pass=on_pass,
            )
            return stats.totals.sent
        finally:
            await service.aclose()

    assert asyncio.run(main()) == 12
    assert len(claims.sizes) > 3
    assert set(claims.most.values()) == {1}
    assert not left_claimed(kit)


def test_a_worker_pass_by_pass_claims_only_with_nothing_in_flight() -> None:
    kit = make_kit()
    launch(kit, mailboxes=4, leads_each=3)
    claims = Claims(kit)
    stop = threading.Event()

    def on_pass(report: DispatchReport) -> None:
        if len(kit.email.sent) == 12:
            stop.set()

    stats = run_worker(
        kit.service,
        worker_id="w",
        stop=stop,
        handle_signals=False,
        batch=4,
        in_flight=2,
        continuous=False,
        poll_interval=0,
        on_pass=on_pass,
    )
    assert stats.totals.sent == 12
    assert stats.passes == 3
    assert set(claims.in_flight_at_claims) == {0}
