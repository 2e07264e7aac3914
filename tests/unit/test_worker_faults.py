"""A running worker survives its faults (DESIGN 1.6): one failing send is a transient failure
of that send, a storage blip is waited out, and nothing is lost or charged twice.

The faults are injected by wrapping the in-memory adapters (fakes, not mocks): the tests assert
on what the recording sender received and what the store and the ledger hold.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import Counter
from typing import Any

import attrs
import pytest

from starlight_sequences.campaigns import SendStatus
from starlight_sequences.credits import MovementKind
from starlight_sequences.errors import StorageError
from starlight_sequences.ids import CampaignId
from starlight_sequences.ports.senders import OutgoingEmail, SendFailure, SendReceipt
from starlight_sequences.worker import run_worker
from tests.service_kit import MAILBOX, WS, Kit, lead, make_kit

CID = CampaignId("faults")


class FlakyStorage:
    """The kit's storage, but the next ``failures[method]`` calls of a method raise
    ``StorageError`` (before doing anything, or — with ``after`` — after doing it, as a
    commit whose answer was lost with its connection)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.failures: Counter[str] = Counter()
        self.after: set[str] = set()
        self.raised = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.failures[name] > 0:
                self.failures[name] -= 1
                self.raised += 1
                if name in self.after:
                    target(*args, **kwargs)
                raise StorageError(f"injected: {name} lost its connection")
            return target(*args, **kwargs)

        return call


def launch(kit: Kit, count: int) -> None:
    kit.service.create_campaign(
        WS,
        name="faults",
        brief="b",
        shape="cold-email",
        leads=[lead(f"lead{i:03d}") for i in range(count)],
        email_identity=attrs.evolve(MAILBOX, min_spacing=dt.timedelta(0)),
        campaign_id=CID,
    )
    kit.service.approve(WS, CID)
    kit.clock.advance(dt.timedelta(days=1, hours=7))  # Tuesday 10:00 in New York


def flaky(kit: Kit) -> FlakyStorage:
    storage = FlakyStorage(kit.storage)
    kit.service.storage = storage  # type: ignore[assignment]
    kit.service._ctx.sleep = lambda seconds: None  # no real waiting in unit tests
    return storage


def charges(kit: Kit) -> Counter[str]:
    return Counter(
        m.key for m in kit.ledger.movements(WS, campaign_id=CID) if m.kind is MovementKind.CHARGE
    )


def drain(kit: Kit, passes: int = 20) -> None:
    """Passes of a worker, an hour apart, until every send is final."""
    for _ in range(passes):
        run_worker(kit.service, worker_id="w", once=True, handle_signals=False)
        if all(s.status.is_final for s in kit.storage.list_sends(WS, CID)):
            return
        kit.clock.advance(dt.timedelta(hours=1))


def test_a_sender_that_raises_fails_that_send_transiently_and_hands_the_batch_back() -> None:
    kit = make_kit()
    launch(kit, 5)
    original = kit.email.send_email
    calls: list[str] = []

    def explode_once(message: OutgoingEmail) -> SendReceipt | SendFailure:
        calls.append(message.idempotency_key)
        if len(calls) == 2:
            raise RuntimeError("the ESP client blew up")
        return original(message)

    kit.email.send_email = explode_once  # type: ignore[method-assign]
    first = run_worker(kit.service, worker_id="w", once=True, handle_signals=False)
    assert (first.totals.sent, first.totals.errored, first.totals.handed_back) == (1, 1, 3)
    sends = {s.idempotency_key: s for s in kit.storage.list_sends(WS, CID)}
    faulty = sends[calls[1]]
    assert faulty.status is SendStatus.SCHEDULED
    assert faulty.attempts == 1, "the fault counts as an attempt"
    assert faulty.reason == "retrying: unexpected error: RuntimeError"
    assert faulty.due_at >= kit.clock.now() + dt.timedelta(minutes=5)
    handed_back = [
        s for s in sends.values() if s.status is SendStatus.SCHEDULED and s is not faulty
    ]
    assert len(handed_back) == 3
    assert all(s.attempts == 0 for s in handed_back)

    drain(kit)
    assert Counter(m.idempotency_key for m in kit.email.sent.values()) == Counter(
        dict.fromkeys(sends, 1)
    )
    assert calls.count(faulty.idempotency_key) == 2, "retried once, with the same key"
    assert all(n == 1 for n in charges(kit).values())
    assert len(charges(kit)) == 5


def test_a_send_that_keeps_raising_fails_for_good_after_max_attempts() -> None:
    kit = make_kit()
    launch(kit, 1)

    def always_explode(message: OutgoingEmail) -> SendReceipt:
        raise ConnectionResetError("peer reset")

    kit.email.send_email = always_explode  # type: ignore[assignment,method-assign]
    for _ in range(12):
        run_worker(kit.service, worker_id="w", once=True, handle_signals=False)
        kit.clock.advance(dt.timedelta(hours=6))
    (send,) = kit.storage.list_sends(WS, CID)
    assert send.status is SendStatus.FAILED
    assert send.reason.startswith(
        "gave up after 5 attempts: unexpected error: ConnectionResetError"
    )
    assert kit.service.balance(WS).reserved == 0, "its reservation was released"


def test_the_worker_backs_off_while_storage_is_unreachable_and_resumes_by_itself() -> None:
    kit = make_kit()
    launch(kit, 4)
    storage = flaky(kit)
    storage.failures["claim_due"] = 5
    stop = threading.Event()
    waits: list[float] = []

    def on_pass(report: Any) -> None:
        if all(s.status.is_final for s in kit.storage.list_sends(WS, CID)):
            stop.set()

    real_wait = stop.wait

    def recording_wait(timeout: float | None = None) -> bool:
        waits.append(timeout or 0.0)
        return real_wait(0)

    stop.wait = recording_wait  # type: ignore[method-assign]
    stats = run_worker(
        kit.service,
        worker_id="w",
        stop=stop,
        handle_signals=False,
        on_pass=on_pass,
        error_backoff=0.5,
        max_error_backoff=4.0,
    )
    assert stats.failed_passes == 5
    assert waits[:5] == [0.5, 1.0, 2.0, 4.0, 4.0], "exponential, capped"
    assert stats.totals.sent == 4
    assert len(kit.email.sent) == 4


def test_a_record_that_fails_after_the_send_is_retried_and_the_message_counted_once() -> None:
    kit = make_kit()
    launch(kit, 3)
    storage = flaky(kit)
    storage.failures["finish_send"] = 2  # the first record fails twice before it lands
    stats = run_worker(kit.service, worker_id="w", once=True, handle_signals=False)
    assert stats.totals.sent == 3
    assert storage.raised == 2
    assert all(s.status is SendStatus.SENT for s in kit.storage.list_sends(WS, CID))
    assert len(kit.email.sent) == 3
    assert len(charges(kit)) == 3
    assert set(charges(kit).values()) == {1}


def test_a_commit_whose_answer_was_lost_is_recognised_as_recorded_not_as_a_lost_lease() -> None:
    kit = make_kit()
    launch(kit, 2)
    storage = flaky(kit)
    storage.failures["finish_send"] = 1
    storage.after.add("finish_send")  # the write lands, then the connection drops
    stats = run_worker(kit.service, worker_id="w", once=True, handle_signals=False)
    assert (stats.totals.sent, stats.totals.lease_lost, stats.totals.errored) == (2, 0, 0)
    assert len(charges(kit)) == 2
    assert set(charges(kit).values()) == {1}


def test_a_charge_that_cannot_be_posted_leaves_the_send_recorded_for_reconcile() -> None:
    kit = make_kit()
    launch(kit, 1)

    class DownLedger:
        def __init__(self, inner: Any) -> None:
            self.inner, self.down = inner, True

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def post(self, workspace_id: Any, *movements: Any) -> Any:
            if self.down:
                raise StorageError("injected: ledger unreachable")
            return self.inner.post(workspace_id, *movements)

    ledger = DownLedger(kit.ledger)
    kit.service.ledger = ledger  # type: ignore[assignment]
    kit.service._ctx.sleep = lambda seconds: None
    stats = run_worker(kit.service, worker_id="w", once=True, handle_signals=False)
    assert stats.totals.sent == 1
    assert [s.status for s in kit.storage.list_sends(WS, CID)] == [SendStatus.SENT]
    assert not charges(kit)
    ledger.down = False
    posted = kit.service.reconcile_credits(WS, CID)
    assert [m.kind for m in posted] == [MovementKind.CHARGE]
    assert kit.service.balance(WS).reserved == 0


def test_dispatch_logs_name_campaign_lead_step_and_key_but_never_the_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kit = make_kit()
    launch(kit, 2)
    kit.email.fail_next = [SendFailure(permanent=False, reason="451 try later")]
    with caplog.at_level(logging.DEBUG, logger="starlight_sequences"):
        run_worker(kit.service, worker_id="w", once=True, handle_signals=False)
    sent = [
        r
        for r in caplog.records
        if r.name == "starlight_sequences.dispatch" and r.levelno == logging.INFO
    ]
    retried = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert sent
    assert retried
    for record in sent + retried:
        assert record.campaign_id == CID  # type: ignore[attr-defined]
        assert record.step == 1  # type: ignore[attr-defined]
        assert record.idempotency_key  # type: ignore[attr-defined]
        assert record.lead_id in {"lead000", "lead001"}  # type: ignore[attr-defined]
    bodies = [d.body for d in kit.storage.list_drafts(WS, CID)]
    subjects = [d.subject for d in kit.storage.list_drafts(WS, CID) if d.subject]
    for record in caplog.records:
        text = record.getMessage()
        assert not any(body in text for body in bodies)
        assert not any(subject in text for subject in subjects)
    assert {r.name for r in caplog.records} <= {
        "starlight_sequences.dispatch",
        "starlight_sequences.worker",
    }


def test_a_storage_blip_before_anything_is_sent_hands_the_batch_back_without_an_attempt() -> None:
    kit = make_kit()
    launch(kit, 3)
    storage = flaky(kit)
    storage.failures["get_enrolment"] = 1
    first = run_worker(kit.service, worker_id="w", once=True, handle_signals=False)
    assert (first.totals.sent, first.totals.handed_back, first.totals.errored) == (0, 3, 0)
    sends = kit.storage.list_sends(WS, CID)
    assert all(s.status is SendStatus.SCHEDULED and s.attempts == 0 for s in sends)
    again = run_worker(kit.service, worker_id="w", once=True, handle_signals=False)
    assert again.totals.sent == 3
    assert len(kit.email.sent) == 3
