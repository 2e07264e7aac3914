from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import threading

import attrs
import pytest

from starlight_sequences.campaigns import SendStatus
from starlight_sequences.errors import InvalidSettings, StorageError
from starlight_sequences.ids import CampaignId
from starlight_sequences.worker import run_worker
from tests.service_kit import MAILBOX, WS, Kit, lead, make_kit

CID = CampaignId("c1")


def launch(kit: Kit, count: int) -> None:
    kit.service.create_campaign(
        WS,
        name="w",
        brief="b",
        shape="cold-email",
        leads=[lead(f"lead{i:03d}") for i in range(count)],
        # No spacing, so that one pass can send everything due.
        email_identity=attrs.evolve(MAILBOX, min_spacing=dt.timedelta(0)),
        campaign_id=CID,
    )
    kit.service.approve(WS, CID)
    kit.clock.advance(dt.timedelta(days=1, hours=7))  # Tuesday 10:00 in New York


def test_a_single_pass_sends_everything_due() -> None:
    kit = make_kit()
    launch(kit, 5)
    stats = run_worker(kit.service, worker_id="w", once=True, handle_signals=False)
    assert (stats.passes, stats.totals.sent) == (1, 5)
    assert len(kit.email.sent) == 5


def test_setting_stop_finishes_the_send_in_hand_and_hands_the_rest_back() -> None:
    kit = make_kit()
    launch(kit, 5)
    stop = threading.Event()
    original = kit.email.send_email

    def send_then_stop(message):  # type: ignore[no-untyped-def]
        stop.set()
        return original(message)

    kit.email.send_email = send_then_stop  # type: ignore[method-assign]
    stats = run_worker(kit.service, worker_id="w", stop=stop, handle_signals=False)
    assert (stats.totals.sent, stats.totals.handed_back) == (1, 4)
    sends = kit.storage.list_sends(WS, CID)
    assert sorted(s.status for s in sends) == [SendStatus.SCHEDULED] * 4 + [SendStatus.SENT]
    assert all(s.attempts == 0 for s in sends if s.status is SendStatus.SCHEDULED)
    # Another worker picks the rest up at once, without waiting for a lease to expire.
    again = run_worker(kit.service, worker_id="w2", once=True, handle_signals=False)
    assert again.totals.sent == 4


def test_sigterm_stops_the_loop_gracefully() -> None:
    kit = make_kit()
    launch(kit, 2)
    original = kit.email.send_email

    def send_then_signal(message):  # type: ignore[no-untyped-def]
        os.kill(os.getpid(), signal.SIGTERM)
        return original(message)

    kit.email.send_email = send_then_signal  # type: ignore[method-assign]
    before = signal.getsignal(signal.SIGTERM)
    stats = run_worker(kit.service, worker_id="w", poll_interval=0.01)
    assert stats.totals.sent == 1
    assert stats.totals.handed_back == 1
    assert signal.getsignal(signal.SIGTERM) is before


def test_bad_worker_settings_are_refused() -> None:
    kit = make_kit()
    with pytest.raises(InvalidSettings):
        run_worker(kit.service, worker_id="w", batch=0)


def test_a_stopping_worker_hands_a_waiting_step_back_as_waiting() -> None:
    from starlight_sequences.campaigns import LinkedInIdentity
    from starlight_sequences.ids import LeadId, SenderId

    kit = make_kit()
    kit.service.create_campaign(
        WS,
        name="w",
        brief="b",
        shape="email-linkedin",
        leads=[lead("bob", email=False, linkedin=True)],
        linkedin_identity=LinkedInIdentity(id=SenderId("li")),
        campaign_id=CID,
    )
    kit.service.approve(WS, CID)
    for _ in range(24 * 30):  # a month: the request goes out, the acceptance never comes
        (connect, message) = kit.storage.list_sends(WS, CID, LeadId("bob"))
        if connect.status is SendStatus.SCHEDULED and connect.due_at <= kit.clock.now():
            kit.service.dispatch_due(worker_id="w")
        if message.status is SendStatus.WAITING and message.due_at <= kit.clock.now():
            break
        kit.clock.advance(dt.timedelta(hours=1))
    stats = kit.service.dispatch_due(worker_id="w", should_stop=lambda: True)
    assert stats.handed_back == 1
    (_, message) = kit.storage.list_sends(WS, CID, LeadId("bob"))
    assert message.status is SendStatus.WAITING


class _ClockStop(threading.Event):
    """A stop event whose waits move the settable clock instead of sleeping, and that stops
    the loop after ``max_waits`` waits (so a regression fails instead of hanging)."""

    def __init__(self, kit: Kit, max_waits: int = 500) -> None:
        super().__init__()
        self.kit = kit
        self.waits: list[float] = []
        self.max_waits = max_waits

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.waits.append(timeout)
        self.kit.clock.advance(dt.timedelta(seconds=timeout))
        if len(self.waits) >= self.max_waits:
            self.set()
        return self.is_set()


def _spaced_campaign(kit: Kit, count: int) -> dict[str, dt.datetime]:
    """``count`` leads of one mailbox (3 minutes' spacing); the planned instant of each send."""
    kit.service.create_campaign(
        WS,
        name="spaced",
        brief="b",
        shape="cold-email",
        leads=[lead(f"lead{i:03d}") for i in range(count)],
        email_identity=MAILBOX,
        campaign_id=CID,
    )
    kit.service.approve(WS, CID)
    return {s.id: s.due_at for s in kit.storage.list_sends(WS, CID)}


def _run_until_sent(kit: Kit, count: int, poll_interval: float) -> _ClockStop:
    stop = _ClockStop(kit)

    def after_pass(report: object) -> None:
        if len(kit.email.sent) == count:
            stop.set()

    run_worker(
        kit.service,
        worker_id="w",
        poll_interval=poll_interval,
        stop=stop,
        handle_signals=False,
        on_pass=after_pass,  # type: ignore[arg-type]
    )
    return stop


def test_a_worker_polling_hourly_sends_each_send_at_its_planned_slot() -> None:
    kit = make_kit()
    planned = _spaced_campaign(kit, 25)
    _run_until_sent(kit, 25, poll_interval=3600.0)
    sent = {s.id: s.sent_at for s in kit.storage.list_sends(WS, CID)}
    assert len(kit.email.sent) == 25
    lags = [sent[key] - due for key, due in planned.items()]  # type: ignore[operator]
    assert max(lags) < dt.timedelta(seconds=1)
    assert min(lags) >= dt.timedelta(0)


def test_sends_of_one_mailbox_found_due_together_go_out_at_its_spacing_not_an_hour_apart() -> None:
    kit = make_kit()
    planned = _spaced_campaign(kit, 25)
    # The worker starts after every planned slot has passed: one pass finds all 25 due.
    kit.clock.set(max(planned.values()) + dt.timedelta(minutes=30))
    started = kit.clock.now()
    _run_until_sent(kit, 25, poll_interval=3600.0)
    instants = sorted(s.sent_at for s in kit.storage.list_sends(WS, CID) if s.sent_at)
    assert len(instants) == 25
    gaps = [later - earlier for earlier, later in itertools.pairwise(instants)]
    assert min(gaps) >= MAILBOX.min_spacing
    # Spaced, not left a poll interval (an hour) apart: all out within about 25 spacings.
    assert max(gaps) < dt.timedelta(minutes=10)
    assert instants[-1] - started < dt.timedelta(hours=2)


def test_the_worker_sleeps_its_poll_interval_when_nothing_is_scheduled() -> None:
    kit = make_kit()
    stop = _ClockStop(kit, max_waits=3)
    run_worker(kit.service, worker_id="w", poll_interval=7.0, stop=stop, handle_signals=False)
    assert stop.waits == [7.0, 7.0, 7.0]


def test_a_failing_read_of_the_next_due_instant_falls_back_to_the_poll_interval() -> None:
    kit = make_kit()

    def unreachable(*args: object, **kwargs: object) -> None:
        raise StorageError("database unreachable")

    kit.storage.next_due = unreachable  # type: ignore[method-assign,assignment]
    stop = _ClockStop(kit, max_waits=2)
    stats = run_worker(
        kit.service, worker_id="w", poll_interval=5.0, stop=stop, handle_signals=False
    )
    assert stop.waits == [5.0, 5.0]
    assert stats.failed_passes == 0
