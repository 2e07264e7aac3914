"""A campaign dispatched through the real SMTP sender to a real SMTP server (aiosmtpd) that
answers 451, 550 and 421 and disappears mid-run: every transient failure is retried inside
business hours and delivered once, a permanent one stops only its lead, the worker never dies,
and every repeat of a message carries its Message-ID — with one send in flight, and with four
in flight over four mailboxes."""

from __future__ import annotations

import collections
import datetime as dt
import logging
import zoneinfo
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

pytest.importorskip("aiosmtpd.controller")

from starlight_sequences.adapters.clock import SettableClock
from starlight_sequences.adapters.memory import InMemoryCreditLedger, InMemoryStorage
from starlight_sequences.adapters.smtp import SMTPEmailSender, SMTPSecurity
from starlight_sequences.campaigns import EnrolmentStatus, SendStatus
from starlight_sequences.ids import CampaignId, LeadId, SenderId
from starlight_sequences.ports.senders import OutgoingEmail, SendFailure
from starlight_sequences.service import CampaignService
from starlight_sequences.worker import WorkerStats, run_worker
from tests.integration.test_smtp_sender import Handler, Server, _free_port
from tests.service_kit import MAILBOX, START, UNSUBSCRIBE, WS, ScriptedDrafter, lead

CID = CampaignId("smtp-faults")


class FlakyHandler(Handler):
    """Also answers ``451`` to the first ``flaky[local part]`` RCPTs of an address."""

    def __init__(self) -> None:
        super().__init__()
        self.flaky: collections.Counter[str] = collections.Counter()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        local = address.split("@")[0]
        if self.flaky[local] > 0:
            self.flaky[local] -= 1
            self.peers.append(session.peer)
            return "451 4.3.0 Try again later"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


@pytest.fixture
def relay() -> Iterator[Server]:
    server = Server(handler=FlakyHandler(), port=_free_port(), options={})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _launch(service: CampaignService, names: list[str], mailboxes: int) -> list[CampaignId]:
    """One campaign per mailbox (no spacing), the leads dealt out over them; approved."""
    campaign_ids = [CID if n == 0 else CampaignId(f"{CID}-{n}") for n in range(mailboxes)]
    for n, campaign_id in enumerate(campaign_ids):
        service.create_campaign(
            WS,
            name=f"smtp {n}",
            brief="b",
            shape="email-sequence",
            leads=[lead(name) for name in names[n::mailboxes]],
            email_identity=attrs.evolve(
                MAILBOX,
                id=SenderId(f"mbx-{n}"),
                address=f"ada{n}@acme.test",
                min_spacing=dt.timedelta(0),
            ),
            campaign_id=campaign_id,
        )
        service.approve(WS, campaign_id)
    return campaign_ids


@pytest.mark.parametrize("in_flight", [1, 4], ids=["one-in-flight", "four-in-flight"])
def test_a_campaign_survives_451_550_421_and_a_server_that_goes_away(
    relay: Server, in_flight: int
) -> None:
    handler = relay.handler
    assert isinstance(handler, FlakyHandler)
    handler.flaky["slow"] = 2  # 451 twice, then accepted
    clock = SettableClock(START)
    sender = SMTPEmailSender(host="127.0.0.1", port=relay.port, security=SMTPSecurity.PLAIN)
    storage = InMemoryStorage()
    service = CampaignService(
        storage=storage,
        ledger=InMemoryCreditLedger({WS: 1_000}),
        drafter=ScriptedDrafter(),
        clock=clock,
        email_sender=sender,
        unsubscribe_url=UNSUBSCRIBE,
    )
    names = ["ann", "bob", "slow", "reject", "closing", "dan", "eve"]
    campaign_ids = _launch(service, names, mailboxes=in_flight)
    clock.advance(dt.timedelta(days=1, hours=7))  # Tuesday 10:00 in New York

    def run_once() -> WorkerStats:
        return run_worker(
            service, worker_id="w", once=True, handle_signals=False, in_flight=in_flight
        )

    first = run_once()
    assert first.totals.sent == 4  # ann, bob, dan, eve
    assert first.totals.failed == 1  # reject: 550
    assert first.totals.retried == 2  # slow: 451; closing: 421

    relay.stop()  # the server goes away with the next passes due
    clock.advance(dt.timedelta(minutes=30))
    gone = run_once()
    assert gone.totals.sent == 0
    assert gone.totals.retried >= 1, "a refused connection is a transient failure"
    relay.start()
    for _ in range(24 * 20):  # three weeks of hourly passes; the worker never raises
        run_once()
        clock.advance(dt.timedelta(hours=1))

    enrolments = {e.lead_id: e for c in campaign_ids for e in storage.list_enrolments(WS, c)}
    assert enrolments["reject"].status is EnrolmentStatus.FAILED
    assert "550" in enrolments["reject"].reason
    assert enrolments["closing"].status is EnrolmentStatus.FAILED
    assert "gave up after" in enrolments["closing"].reason
    for name in ("ann", "bob", "slow", "dan", "eve"):
        assert enrolments[name].status is EnrolmentStatus.COMPLETED, name
    sends = [s for c in campaign_ids for s in storage.list_sends(WS, c)]
    assert collections.Counter(s.status for s in sends)[SendStatus.SENT] == 15
    # Delivered once each: one message per (lead, step), each with its key's Message-ID.
    received = collections.Counter(str(m["Message-ID"]) for m in handler.messages)
    assert len(received) == 15
    assert set(received.values()) == {1}
    new_york = zoneinfo.ZoneInfo("America/New_York")
    for send in sends:
        if send.status is SendStatus.SENT:
            assert send.receipt in received
            assert send.sent_at is not None
            assert 9 <= send.sent_at.astimezone(new_york).hour < 17, "retried inside hours"
    assert handler.max_in_flight_per_mailbox == 1
    sender.close()


def test_a_worker_with_eight_in_flight_sends_eight_mailboxes_at_once_one_message_each(
    relay: Server,
) -> None:
    handler = relay.handler
    handler.data_delay = 0.05  # DATA is slow: sends of different mailboxes overlap there
    clock = SettableClock(START)
    sender = SMTPEmailSender(host="127.0.0.1", port=relay.port, security=SMTPSecurity.PLAIN)
    storage = InMemoryStorage()
    service = CampaignService(
        storage=storage,
        ledger=InMemoryCreditLedger({WS: 1_000}),
        drafter=ScriptedDrafter(),
        clock=clock,
        email_sender=sender,
        unsubscribe_url=UNSUBSCRIBE,
    )
    campaign_ids = _launch(service, [f"lead{n:02d}" for n in range(32)], mailboxes=8)
    clock.advance(dt.timedelta(days=1, hours=7))  # Tuesday 10:00 in New York
    stats = run_worker(service, worker_id="w", once=True, handle_signals=False, in_flight=8)
    sender.close()
    assert stats.totals.sent == 32
    received = collections.Counter(str(m["Message-ID"]) for m in handler.messages)
    assert len(received) == 32
    assert set(received.values()) == {1}
    assert handler.max_in_flight_per_mailbox == 1
    assert handler.max_in_flight >= 2  # mailboxes do not wait for each other
    assert handler.connections == 8  # one kept connection per mailbox
    assert {s.status for c in campaign_ids for s in storage.list_sends(WS, c) if s.step == 1} == {
        SendStatus.SENT
    }


def test_the_smtp_sender_logs_refusals_with_ids_but_never_the_message_or_password(
    relay: Server, caplog: pytest.LogCaptureFixture
) -> None:
    sender = SMTPEmailSender(host="127.0.0.1", port=relay.port, security=SMTPSecurity.PLAIN)
    message = OutgoingEmail(
        idempotency_key="stl-log-test",
        sender_id=SenderId("mbx"),
        from_address="ada@acme.example",
        from_name="Ada",
        to_address="reject@initech.example",
        to_name="Rex",
        subject="A very particular subject",
        body="A body nobody may read in a log",
        campaign_id=CampaignId("c"),
        lead_id=LeadId("rex"),
        step=2,
    )
    with caplog.at_level(logging.DEBUG, logger="starlight_sequences"):
        result = sender.send_email(message)
        sender.send_email(attrs.evolve(message, idempotency_key="ok", to_address="ok@x.example"))
    sender.close()
    assert isinstance(result, SendFailure)
    (refusal,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert refusal.name == "starlight_sequences.adapters.smtp"
    assert (refusal.lead_id, refusal.step) == ("rex", 2)  # type: ignore[attr-defined]
    for record in caplog.records:
        text = record.getMessage()
        assert "particular subject" not in text
        assert "nobody may read" not in text


def test_an_applied_reply_is_logged_by_the_inbound_logger(caplog: pytest.LogCaptureFixture) -> None:
    from starlight_sequences.events import EventKind, InboundEvent
    from tests.service_kit import make_kit

    kit = make_kit()
    kit.service.create_campaign(
        WS,
        name="x",
        brief="b",
        shape="cold-email",
        leads=[lead("ann")],
        email_identity=MAILBOX,
        campaign_id=CID,
    )
    with caplog.at_level(logging.INFO, logger="starlight_sequences.inbound"):
        event = InboundEvent(kind=EventKind.REPLY, lead_id="ann", at=kit.clock.now(), key="r1")
        kit.service.report_event(WS, event)
    (record,) = caplog.records
    assert record.getMessage().startswith("reply for lead ann: 1 enrolments changed")
    assert record.campaign_id is None  # type: ignore[attr-defined]


def test_follow_ups_reach_the_server_threaded_to_the_first_email(relay: Server) -> None:
    handler = relay.handler
    clock = SettableClock(START)
    sender = SMTPEmailSender(host="127.0.0.1", port=relay.port, security=SMTPSecurity.PLAIN)
    service = CampaignService(
        storage=InMemoryStorage(),
        ledger=InMemoryCreditLedger({WS: 1_000}),
        drafter=ScriptedDrafter(),
        clock=clock,
        email_sender=sender,
        unsubscribe_url=UNSUBSCRIBE,
    )
    service.create_campaign(
        WS,
        name="threads",
        brief="b",
        shape="email-sequence",
        leads=[lead("ann")],
        email_identity=MAILBOX,
        campaign_id=CID,
    )
    service.approve(WS, CID)
    for _ in range(24 * 14):
        run_worker(service, worker_id="w", once=True, handle_signals=False)
        clock.advance(dt.timedelta(hours=1))
    sender.close()
    first, second, third = handler.messages  # as the server received and parsed the bytes
    assert not first["In-Reply-To"]
    assert second["In-Reply-To"] == first["Message-ID"]
    assert second["References"] == first["Message-ID"]
    assert third["In-Reply-To"] == second["Message-ID"]
    assert third["References"].split() == [first["Message-ID"], second["Message-ID"]]
    assert second["Subject"] == third["Subject"] == f"Re: {first['Subject']}"
    found = service.find_send(WS, message_id=str(third["Message-ID"]))
    assert found is not None
    assert (found.lead_id, found.step) == ("ann", 3)
