"""The async service and the asyncio worker under asyncio, on a real SQLite file.

Plain pytest tests that each run one event loop with :func:`asyncio.run`. Time is simulated (a
settable clock, Tuesday 10:00 in New York once the campaign is approved), so what is due does
not depend on how fast the machine is; real time only passes where a test waits for threads.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import pytest

from starlight_sequences.adapters.clock import SettableClock
from starlight_sequences.adapters.memory import RecordingEmailSender
from starlight_sequences.adapters.sqlite import SQLiteCreditLedger, SQLiteStorage
from starlight_sequences.async_service import AsyncCampaignService
from starlight_sequences.async_worker import run_worker_async
from starlight_sequences.campaigns import CampaignStatus, ScheduledSend, SendStatus
from starlight_sequences.errors import IllegalTransition, StorageError
from starlight_sequences.ids import WorkspaceId
from starlight_sequences.ports.senders import OutgoingEmail, SendFailure, SendReceipt
from starlight_sequences.reports import DispatchReport
from starlight_sequences.service import CampaignService
from tests.service_kit import MAILBOX, START, UNSUBSCRIBE, WS, ScriptedDrafter, lead

CID = "c1"
DUE = dt.timedelta(days=1, hours=7)
"""From START (Monday 08:00 UTC) to Tuesday 10:00 in New York, the leads' zone."""
UNSPACED = attrs.evolve(MAILBOX, min_spacing=dt.timedelta(0))
"""A mailbox without spacing: every send of a campaign is due at once."""
PATIENCE = 60.0
"""Seconds a test waits for threads at most: generous on a loaded machine; what is checked is
what happened, never how fast."""


class SlowEmailSender(RecordingEmailSender):
    """Records like :class:`RecordingEmailSender`, after a short pause (so that sends of two
    workers overlap in time), and calls ``on_send`` first, in the sending thread."""

    def __init__(self, pause: float = 0.0) -> None:
        super().__init__()
        self.pause = pause
        self.on_send: Callable[[OutgoingEmail], None] | None = None

    def send_email(self, message: OutgoingEmail) -> SendReceipt | SendFailure:
        if self.on_send is not None:
            self.on_send(message)
        time.sleep(self.pause)
        return super().send_email(message)


class FlakyStorage(SQLiteStorage):
    """SQLite storage whose first ``failures`` claims fail, as an unreachable database does;
    ``claims`` holds the monotonic time of every claim."""

    failures = 0

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.claims: list[float] = []

    def claim_due(
        self,
        now: dt.datetime,
        *,
        worker_id: str,
        lease: dt.timedelta,
        limit: int,
        workspace_id: WorkspaceId | None = None,
    ) -> list[ScheduledSend]:
        self.claims.append(time.monotonic())
        if len(self.claims) <= self.failures:
            raise StorageError("database unreachable")
        return super().claim_due(
            now, worker_id=worker_id, lease=lease, limit=limit, workspace_id=workspace_id
        )


@attrs.define
class Rig:
    service: AsyncCampaignService
    storage: SQLiteStorage
    clock: SettableClock
    email: SlowEmailSender

    def statuses(self) -> Counter[SendStatus]:
        return Counter(s.status for s in self.storage.list_sends(WS, CID))


@asynccontextmanager
async def rig(
    tmp_path: Path,
    *,
    pause: float = 0.0,
    max_threads: int = 4,
    storage: SQLiteStorage | None = None,
) -> AsyncIterator[Rig]:
    storage = storage if storage is not None else SQLiteStorage(tmp_path / "starlight.db")
    ledger = SQLiteCreditLedger(tmp_path / "starlight.db")
    clock = SettableClock(START)
    email = SlowEmailSender(pause)
    sync = CampaignService(
        storage=storage,
        ledger=ledger,
        drafter=ScriptedDrafter(),
        clock=clock,
        email_sender=email,
        unsubscribe_url=UNSUBSCRIBE,
    )
    try:
        async with AsyncCampaignService(sync, max_threads=max_threads) as service:
            yield Rig(service, storage, clock, email)
    finally:
        storage.close()
        ledger.close()


async def launch(rig: Rig, count: int) -> None:
    """Create, approve and make due a cold-email campaign to ``count`` leads."""
    service = rig.service
    await service.top_up(WS, 10_000)
    await service.create_campaign(
        WS,
        name="async",
        brief="b",
        shape="cold-email",
        leads=[lead(f"lead{i:03d}") for i in range(count)],
        email_identity=UNSPACED,
        campaign_id=CID,
    )
    await service.approve(WS, CID)
    rig.clock.advance(DUE)


async def eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


def test_a_campaign_is_created_previewed_approved_and_dispatched_through_the_async_api(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with rig(tmp_path) as r:
            service = r.service
            await service.top_up(WS, 1_000)
            estimate = await service.estimate("cold-email", [lead("ada"), lead("bob")])
            created = await service.create_campaign(
                WS,
                name="async",
                brief="Say hello",
                shape="cold-email",
                leads=[lead("ada"), lead("bob")],
                email_identity=UNSPACED,
                campaign_id=CID,
            )
            assert created.enrolled == 2
            preview = await service.preview(WS, CID)
            assert [p.lead.id for p in preview.recipients] == ["ada", "bob"]
            approved = await service.approve(WS, CID)
            assert approved.status is CampaignStatus.ACTIVE
            assert (await service.dispatch_due(worker_id="w")).sent == 0  # nothing due yet
            r.clock.advance(DUE)
            report = await service.dispatch_due(worker_id="w")
            assert report.sent == 2
            assert len(r.email.sent) == 2
            assert {s.status for s in await service.sends(WS, CID)} == {SendStatus.SENT}
            status = await service.status(WS, CID)
            assert status.campaign.status is CampaignStatus.COMPLETED
            balance = await service.balance(WS)
            assert balance.available == 1_000 - estimate.total

    asyncio.run(scenario())


def test_two_coroutines_dispatching_at_once_never_send_one_message_twice(tmp_path: Path) -> None:
    count = 30

    async def scenario() -> None:
        async with rig(tmp_path, pause=0.005) as r:
            await launch(r, count)

            async def worker(name: str) -> int:
                sent = 0
                while True:
                    report = await r.service.dispatch_due(worker_id=name, limit=4)
                    sent += report.sent
                    if report.handled == 0:
                        return sent

            sent = await asyncio.gather(worker("a"), worker("b"))
            assert sum(sent) == count
            assert all(n > 0 for n in sent), sent  # both really dispatched
            attempts = Counter(r.email.attempts)
            assert len(attempts) == count
            assert max(attempts.values()) == 1
            assert r.statuses() == {SendStatus.SENT: count}

    asyncio.run(scenario())


def test_the_worker_runs_until_its_stop_event_is_set(tmp_path: Path) -> None:
    count = 6

    async def scenario() -> None:
        async with rig(tmp_path) as r:
            await launch(r, count)
            stop = asyncio.Event()
            reports: list[DispatchReport] = []
            worker = asyncio.create_task(
                run_worker_async(
                    r.service, worker_id="w", poll_interval=0.01, stop=stop, on_pass=reports.append
                )
            )
            await eventually(lambda: len(r.email.sent) == count)
            await eventually(lambda: len(reports) >= 2)  # it keeps polling when idle
            stop.set()
            stats = await asyncio.wait_for(worker, PATIENCE)
            assert stats.totals.sent == count
            assert stats.passes == len(reports)
            assert stats.failed_passes == 0
            assert r.statuses() == {SendStatus.SENT: count}

    asyncio.run(scenario())


def test_setting_stop_during_a_pass_finishes_the_send_in_hand_and_hands_the_rest_back(
    tmp_path: Path,
) -> None:
    count = 5

    async def scenario() -> None:
        async with rig(tmp_path) as r:
            await launch(r, count)
            loop = asyncio.get_running_loop()
            stop = asyncio.Event()

            async def set_stop() -> None:
                stop.set()
                await asyncio.sleep(0)  # the worker's relay runs before this returns
                await asyncio.sleep(0)

            def stop_from_the_sending_thread(message: OutgoingEmail) -> None:
                asyncio.run_coroutine_threadsafe(set_stop(), loop).result(PATIENCE)

            r.email.on_send = stop_from_the_sending_thread
            stats = await run_worker_async(r.service, worker_id="w", stop=stop)
            assert (stats.totals.sent, stats.totals.handed_back) == (1, count - 1)
            assert r.statuses() == {SendStatus.SENT: 1, SendStatus.SCHEDULED: count - 1}

    asyncio.run(scenario())


def test_cancelling_the_worker_mid_pass_hands_back_unsent_claims_and_raises(
    tmp_path: Path,
) -> None:
    count = 5

    async def scenario() -> None:
        async with rig(tmp_path) as r:
            await launch(r, count)
            loop = asyncio.get_running_loop()
            sending = asyncio.Event()
            release = threading.Event()

            def hold_the_first_send(message: OutgoingEmail) -> None:
                loop.call_soon_threadsafe(sending.set)
                assert release.wait(PATIENCE)

            r.email.on_send = hold_the_first_send
            worker = asyncio.create_task(run_worker_async(r.service, worker_id="w"))
            await asyncio.wait_for(sending.wait(), PATIENCE)
            assert r.statuses() == {SendStatus.CLAIMED: count}  # the whole batch is held
            worker.cancel()
            try:
                for _ in range(3):  # the worker takes the cancellation, tells the pass to stop
                    await asyncio.sleep(0)
                assert not worker.done()  # and waits for the send in hand
            finally:
                release.set()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(worker, PATIENCE)
            assert worker.cancelled()
            # The send in hand went out and was recorded; the rest are back, none stuck claimed.
            assert r.email.attempts == list(r.email.sent)
            assert len(r.email.sent) == 1
            assert r.statuses() == {SendStatus.SENT: 1, SendStatus.SCHEDULED: count - 1}
            # Handed back, not leased: another worker sends them at once.
            r.email.on_send = None
            assert (await r.service.dispatch_due(worker_id="w2")).sent == count - 1

    asyncio.run(scenario())


def test_cancelling_a_dispatch_call_stops_its_pass_after_the_send_in_hand(tmp_path: Path) -> None:
    count = 5

    async def scenario() -> None:
        async with rig(tmp_path) as r:
            await launch(r, count)
            loop = asyncio.get_running_loop()
            sending = asyncio.Event()
            release = threading.Event()

            def hold_the_first_send(message: OutgoingEmail) -> None:
                loop.call_soon_threadsafe(sending.set)
                assert release.wait(PATIENCE)

            r.email.on_send = hold_the_first_send
            call = asyncio.create_task(r.service.dispatch_due(worker_id="w"))
            await asyncio.wait_for(sending.wait(), PATIENCE)
            call.cancel()
            try:
                with pytest.raises(asyncio.CancelledError):
                    await call
            finally:
                release.set()  # the thread finishes its send and hands the rest back on its own
            await eventually(lambda: SendStatus.CLAIMED not in r.statuses())
            assert r.statuses() == {SendStatus.SENT: 1, SendStatus.SCHEDULED: count - 1}

    asyncio.run(scenario())


def test_a_failing_pass_is_retried_after_a_backoff_that_doubles(tmp_path: Path) -> None:
    count = 3

    async def scenario() -> None:
        storage = FlakyStorage(tmp_path / "starlight.db")
        async with rig(tmp_path, storage=storage) as r:
            await launch(r, count)
            storage.failures = 2
            stop = asyncio.Event()

            def stop_when_done(report: DispatchReport) -> None:
                if report.sent:
                    stop.set()

            stats = await run_worker_async(
                r.service,
                worker_id="w",
                stop=stop,
                on_pass=stop_when_done,
                error_backoff=0.05,
                max_error_backoff=0.08,
            )
            assert (stats.failed_passes, stats.passes, stats.totals.sent) == (2, 1, count)
            first, second, third = storage.claims[:3]
            assert second - first >= 0.05
            assert third - second >= 0.08  # doubled, then capped
            assert r.statuses() == {SendStatus.SENT: count}

    asyncio.run(scenario())


def test_a_single_failing_pass_is_raised_with_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        storage = FlakyStorage(tmp_path / "starlight.db")
        async with rig(tmp_path, storage=storage) as r:
            storage.failures = 1
            with pytest.raises(StorageError, match="unreachable"):
                await run_worker_async(r.service, worker_id="w", once=True)

    asyncio.run(scenario())


def test_calls_see_the_callers_context_and_a_closed_service_refuses_calls(
    tmp_path: Path,
) -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
    seen: list[tuple[str, str]] = []

    async def scenario() -> None:
        async with rig(tmp_path) as r:
            service = r.service
            await service.top_up(WS, 1_000)
            request_id.set("req-1")
            await service.create_campaign(
                WS,
                name="async",
                brief="b",
                shape="cold-email",
                leads=[lead("ada")],
                email_identity=MAILBOX,
                campaign_id=CID,
                progress=lambda done, total: seen.append(
                    (request_id.get(), threading.current_thread().name)
                ),
            )
        assert seen
        assert all(rid == "req-1" and name.startswith("starlight-async") for rid, name in seen)
        with pytest.raises(IllegalTransition, match="closed"):
            await service.balance(WS)
        await service.aclose()  # closing twice does nothing more

    asyncio.run(scenario())


def test_closing_waits_for_the_calls_in_flight(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with rig(tmp_path, pause=0.2, max_threads=1) as r:
            await launch(r, 2)
            calls = [
                asyncio.create_task(r.service.dispatch_due(worker_id=name, limit=1))
                for name in ("a", "b")
            ]
            await asyncio.sleep(0)  # both submitted: one running, one queued
            await r.service.aclose()
            assert len(r.email.sent) == 2  # neither was cut short, nor left in the queue
            assert [report.sent for report in await asyncio.gather(*calls)] == [1, 1]

    asyncio.run(scenario())


def test_a_second_cancellation_stops_waiting_and_the_pass_still_hands_back(
    tmp_path: Path,
) -> None:
    count = 4

    async def scenario() -> None:
        async with rig(tmp_path) as r:
            await launch(r, count)
            loop = asyncio.get_running_loop()
            sending = asyncio.Event()
            release = threading.Event()

            def hold_the_first_send(message: OutgoingEmail) -> None:
                loop.call_soon_threadsafe(sending.set)
                assert release.wait(PATIENCE)

            r.email.on_send = hold_the_first_send
            worker = asyncio.create_task(run_worker_async(r.service, worker_id="w"))
            await asyncio.wait_for(sending.wait(), PATIENCE)
            try:
                worker.cancel()
                for _ in range(3):
                    await asyncio.sleep(0)
                worker.cancel()  # do not wait for the send in hand
                with pytest.raises(asyncio.CancelledError):
                    await asyncio.wait_for(worker, PATIENCE)
                assert r.email.sent == {}  # the send in hand is still held
            finally:
                release.set()
            await eventually(lambda: SendStatus.CLAIMED not in r.statuses())
            assert r.statuses() == {SendStatus.SENT: 1, SendStatus.SCHEDULED: count - 1}

    asyncio.run(scenario())


def test_a_worker_cancelled_between_passes_ends_at_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with rig(tmp_path) as r:
            passes: list[DispatchReport] = []
            worker = asyncio.create_task(
                run_worker_async(
                    r.service, worker_id="w", poll_interval=3600, on_pass=passes.append
                )
            )
            await eventually(lambda: len(passes) == 1)  # now waiting an hour for the next
            worker.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(worker, PATIENCE)

    asyncio.run(scenario())
