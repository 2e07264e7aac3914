"""Regression tests for the bugs a review of the service found (each failed before its fix)."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest

from starlight_sequences.campaigns import EnrolmentStatus, SendStatus
from starlight_sequences.channels import Action
from starlight_sequences.errors import InsufficientCredits
from starlight_sequences.events import EventKind, InboundEvent
from starlight_sequences.ids import CampaignId, LeadId
from starlight_sequences.ports.drafter import DraftRequest
from starlight_sequences.ports.senders import OutgoingEmail, SendFailure, SendReceipt
from starlight_sequences.shapes import SendShape, Step, WaitAnchor
from tests.service_kit import LINKEDIN, MAILBOX, WS, Kit, lead, make_kit

CID = CampaignId("c1")
C2 = CampaignId("c2")


def create(kit: Kit, leads, shape="email-sequence", cid=CID, approve=True):  # type: ignore[no-untyped-def]
    kit.service.create_campaign(
        WS,
        name="r",
        brief="b",
        shape=shape,
        leads=leads,
        email_identity=MAILBOX,
        linkedin_identity=LINKEDIN,
        campaign_id=cid,
    )
    if approve:
        kit.service.approve(WS, cid)


def run_for(kit: Kit, days: float) -> None:
    end = kit.clock.now() + dt.timedelta(days=days)
    while kit.clock.now() < end:
        kit.service.dispatch_due(worker_id="w1")
        kit.clock.advance(dt.timedelta(minutes=30))


def statuses(kit: Kit, lead_id: str, cid: CampaignId = CID) -> list[SendStatus]:
    return [s.status for s in kit.storage.list_sends(WS, cid, LeadId(lead_id))]


def event(kit: Kit, kind: EventKind, lead_id: str, **kw) -> None:  # type: ignore[no-untyped-def]
    kit.service.report_event(
        WS, InboundEvent(kind=kind, lead_id=LeadId(lead_id), at=kit.clock.now(), **kw)
    )


def test_a_lead_out_of_office_during_review_is_scheduled_from_its_return() -> None:
    kit = make_kit()
    create(kit, [lead("ann"), lead("bob")], approve=False)
    event(kit, EventKind.OUT_OF_OFFICE, "ann", campaign_id=CID, return_date=dt.date(2026, 12, 7))
    kit.service.approve(WS, CID)
    run_for(kit, 30)
    assert statuses(kit, "ann") == [SendStatus.SENT] * 3
    first = kit.storage.list_sends(WS, CID, LeadId("ann"))[0]
    assert first.sent_at is not None
    assert first.sent_at.date() >= dt.date(2026, 12, 7)


def test_a_lead_paused_during_review_is_sent_to_once_resumed() -> None:
    kit = make_kit()
    create(kit, [lead("ann"), lead("bob")], approve=False)
    kit.service.pause_enrolment(WS, CID, LeadId("ann"))
    kit.service.approve(WS, CID)
    run_for(kit, 2)
    assert statuses(kit, "ann")[0] is SendStatus.SCHEDULED
    kit.service.resume_enrolment(WS, CID, LeadId("ann"))
    run_for(kit, 30)
    assert statuses(kit, "ann") == [SendStatus.SENT] * 3


MIXED = SendShape(
    key="mixed",
    name="Mixed",
    description="email, LinkedIn, email",
    steps=(
        Step(number=1, action=Action.EMAIL, guidance="g"),
        Step(number=2, action=Action.LINKEDIN_CONNECT, wait_days=1),
        Step(
            number=3,
            action=Action.LINKEDIN_MESSAGE,
            wait_days=1,
            counts_from=WaitAnchor.CONNECTION_ACCEPTED,
            guidance="g",
        ),
        Step(number=4, action=Action.EMAIL, wait_days=3, guidance="g"),
    ),
)


def test_the_steps_after_a_declined_or_timed_out_connection_still_go_out() -> None:
    kit = make_kit()
    create(kit, [lead("ann", linkedin=True), lead("bob", linkedin=True)], shape=MIXED)
    run_for(kit, 3)
    event(kit, EventKind.CONNECTION_DECLINED, "ann")
    run_for(kit, 40)
    sent, skipped = SendStatus.SENT, SendStatus.SKIPPED
    assert statuses(kit, "ann") == [sent, sent, skipped, sent]
    assert statuses(kit, "bob") == [sent, sent, skipped, sent]
    for who in ("ann", "bob"):
        enrolment = kit.storage.get_enrolment(WS, CID, LeadId(who))
        assert enrolment.status is EnrolmentStatus.COMPLETED
    assert kit.ledger.balance(WS).reserved == 0


def test_deferrals_are_not_send_attempts() -> None:
    kit = make_kit()
    create(kit, [lead("ann")])
    run_for(kit, 1)
    kit.service.pause_enrolment(WS, CID, LeadId("ann"))
    run_for(kit, 10)
    kit.service.resume_enrolment(WS, CID, LeadId("ann"))
    kit.email.fail_next.append(SendFailure(permanent=False, reason="421 try again later"))
    run_for(kit, 20)
    assert statuses(kit, "ann") == [SendStatus.SENT] * 3


def test_a_reply_while_a_send_is_in_flight_records_it_sent_and_charges_it_once() -> None:
    kit = make_kit()
    create(kit, [lead("ann")], shape="cold-email")
    create(kit, [lead("bob")], cid=C2)
    kit.clock.set(dt.datetime(2026, 11, 30, 14, 0, tzinfo=dt.UTC))
    real = kit.email.send_email

    def reply_while_sending(message: OutgoingEmail) -> SendReceipt | SendFailure:
        kit.email.send_email = real  # type: ignore[method-assign]
        event(kit, EventKind.REPLY, "ann")
        return real(message)

    kit.email.send_email = reply_while_sending  # type: ignore[method-assign]
    run_for(kit, 15)
    assert statuses(kit, "ann") == [SendStatus.SENT]
    credits = kit.service.campaign_credits(WS, CID)
    assert (credits.charged, credits.released) == (2, 0)
    assert statuses(kit, "bob", C2) == [SendStatus.SENT] * 3
    assert kit.ledger.balance(WS).reserved == 0


def test_an_unsubscribed_address_is_not_mailed_under_another_lead_id() -> None:
    kit = make_kit()
    ann = lead("ann")
    create(kit, [ann])
    create(kit, [attrs.evolve(lead("ann-crm2"), email=ann.email)], cid=C2)
    run_for(kit, 1)
    event(kit, EventKind.UNSUBSCRIBE, "ann")
    run_for(kit, 20)
    assert statuses(kit, "ann-crm2", C2) == [
        SendStatus.SENT,
        SendStatus.SKIPPED,
        SendStatus.SKIPPED,
    ]
    assert kit.ledger.balance(WS).reserved == 0


def test_retrying_a_failed_creation_checks_and_charges_credits_again() -> None:
    kit = make_kit(credits=20)
    real = kit.drafter.draft

    def timing_out(requests: list[DraftRequest]):  # type: ignore[no-untyped-def]
        raise TimeoutError("LLM timed out")

    kit.drafter.draft = timing_out  # type: ignore[method-assign]
    with pytest.raises(TimeoutError):
        create(kit, [lead("ann")], approve=False)
    kit.drafter.draft = real  # type: ignore[method-assign]
    with pytest.raises(InsufficientCredits):
        create(kit, [lead(f"lead{i:02d}") for i in range(10)], approve=False)
    report = kit.service.create_campaign(
        WS,
        name="r",
        brief="b",
        shape="cold-email",
        leads=[lead("ann")],
        email_identity=MAILBOX,
        campaign_id=CID,
    )
    assert report.drafting_credits == 4
    assert kit.ledger.balance(WS).available == 16


def test_a_waiting_message_claimed_during_a_pause_keeps_its_wait_after_acceptance() -> None:
    kit = make_kit()
    create(kit, [lead("ann", email=False, linkedin=True)], shape="email-linkedin")
    run_for(kit, 1)
    (_, message) = kit.storage.list_sends(WS, CID, LeadId("ann"))
    kit.clock.set(message.due_at)
    claimed = kit.storage.claim_due(
        kit.clock.now(), worker_id="w1", lease=dt.timedelta(minutes=5), limit=10
    )
    kit.service.pause_campaign(WS, CID)
    kit.service._dispatch.dispatch_one(claimed[0], "w1")  # the worker carries on after the pause
    assert statuses(kit, "ann")[1] is SendStatus.WAITING
    kit.clock.set(dt.datetime(2026, 12, 23, 15, 0, tzinfo=dt.UTC))  # Wed 10:00 in New York
    accepted = kit.clock.now()
    event(kit, EventKind.CONNECTION_ACCEPTED, "ann")
    kit.service.resume_campaign(WS, CID)
    run_for(kit, 3)
    (_, message) = kit.storage.list_sends(WS, CID, LeadId("ann"))
    assert message.status is SendStatus.SENT
    assert message.sent_at is not None
    assert message.sent_at.date() > accepted.date()


def test_a_send_claimed_while_its_campaign_is_cancelled_is_skipped_and_released() -> None:
    kit = make_kit()
    create(kit, [lead("ann"), lead("bob")])
    kit.clock.set(dt.datetime(2026, 11, 30, 14, 5, tzinfo=dt.UTC))
    claimed = kit.storage.claim_due(
        kit.clock.now(), worker_id="w1", lease=dt.timedelta(minutes=5), limit=1
    )
    kit.service.cancel_campaign(WS, CID)
    kit.service._dispatch.dispatch_one(claimed[0], "w1")
    assert statuses(kit, "ann")[0] is SendStatus.SKIPPED
    assert kit.ledger.balance(WS).reserved == 0
