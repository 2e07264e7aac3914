from __future__ import annotations

import datetime as dt
import os
import signal
import threading

import attrs
import pytest

from starlight_sequences.campaigns import SendStatus
from starlight_sequences.errors import InvalidSettings
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
