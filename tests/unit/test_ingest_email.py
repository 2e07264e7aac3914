"""ingest_email: raw inbound mail classified, matched to the send or contact, and applied."""

from __future__ import annotations

import datetime as dt

import attrs

from starlight_sequences.campaigns import EnrolmentStatus, SendStatus
from starlight_sequences.events import ActivityKind, EventKind
from starlight_sequences.ids import CampaignId
from starlight_sequences.inbound import InboundKind
from tests.service_kit import MAILBOX, OTHER_WS, WS, Kit, lead, make_kit
from tests.unit._inbound_messages import delivery_report, message, out_of_office

CID = CampaignId("q1")


def launched(*names: str) -> Kit:
    """A three-email campaign whose first emails went out (Tuesday 10:00 in New York)."""
    kit = make_kit()
    kit.service.create_campaign(
        WS,
        name="q1",
        brief="b",
        shape="email-sequence",
        leads=[lead(n) for n in names],
        email_identity=attrs.evolve(MAILBOX, min_spacing=dt.timedelta(0)),
        campaign_id=CID,
    )
    kit.service.approve(WS, CID)
    kit.clock.advance(dt.timedelta(days=1, hours=7))
    kit.service.dispatch_due(worker_id="w")
    return kit


def first_message_id(kit: Kit, name: str) -> str:
    return next(
        s.receipt for s in kit.storage.list_sends(WS, CID) if s.lead_id == name and s.step == 1
    )


def status_of(kit: Kit, name: str) -> EnrolmentStatus:
    return kit.storage.get_enrolment(WS, CID, name).status  # type: ignore[arg-type]


def test_a_reply_in_the_thread_stops_that_lead_and_a_second_copy_changes_nothing() -> None:
    kit = launched("ann", "bob")
    raw = message(
        "Sounds good, call me Thursday.",
        sender="Ann Doe <ANN@ann.example.com>",
        in_reply_to=first_message_id(kit, "ann"),
    )
    result = kit.service.ingest_email(WS, raw)
    assert (result.kind, result.event, result.applied) == (InboundKind.REPLY, EventKind.REPLY, True)
    assert (result.lead_id, result.campaign_id, result.matched_by) == ("ann", CID, "message_id")
    assert status_of(kit, "ann") is EnrolmentStatus.REPLIED
    assert status_of(kit, "bob") is EnrolmentStatus.ACTIVE
    again = kit.service.ingest_email(WS, raw)
    assert again.applied is False
    assert "already ingested" in again.reason


def test_a_reply_without_thread_headers_is_matched_by_the_senders_address() -> None:
    kit = launched("ann", "bob")
    raw = message("Who are you?", sender="Bob <bob@bob.example.com>", in_reply_to=None)
    result = kit.service.ingest_email(WS, raw)
    assert (result.lead_id, result.campaign_id, result.matched_by) == (
        "bob",
        None,
        "sender_address",
    )
    assert status_of(kit, "bob") is EnrolmentStatus.REPLIED


def test_a_hard_bounce_stops_and_suppresses_the_lead_it_names() -> None:
    kit = launched("ann", "bob")
    block = """Final-Recipient: rfc822; bob@bob.example.com
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown"""
    result = kit.service.ingest_email(
        WS, delivery_report(block, original=first_message_id(kit, "bob"))
    )
    assert (result.kind, result.event) == (InboundKind.BOUNCE_HARD, EventKind.BOUNCE)
    assert (result.lead_id, result.matched_by) == ("bob", "message_id")
    assert status_of(kit, "bob") is EnrolmentStatus.BOUNCED
    assert kit.storage.suppressed(WS, {"bob@bob.example.com"}) == {"bob@bob.example.com"}


def test_a_bounce_without_the_original_is_matched_by_its_failed_recipient() -> None:
    kit = launched("ann")
    block = """Final-Recipient: rfc822; ann@ann.example.com
Action: failed
Status: 5.2.1"""
    result = kit.service.ingest_email(WS, delivery_report(block, original="<unknown@x.example>"))
    assert (result.lead_id, result.matched_by) == ("ann", "failed_recipient")
    assert status_of(kit, "ann") is EnrolmentStatus.BOUNCED


def test_a_soft_bounce_is_journalled_and_stops_nothing() -> None:
    kit = launched("ann")
    block = """Final-Recipient: rfc822; ann@ann.example.com
Action: delayed
Status: 4.2.2"""
    result = kit.service.ingest_email(
        WS, delivery_report(block, original=first_message_id(kit, "ann"))
    )
    assert (result.kind, result.event, result.applied) == (InboundKind.BOUNCE_SOFT, None, False)
    assert status_of(kit, "ann") is EnrolmentStatus.ACTIVE
    notes = [a for a in kit.storage.list_activities(WS) if a.kind is ActivityKind.EVENT]
    assert [a.detail for a in notes] == ["soft bounce: 4.2.2"]


def test_an_out_of_office_pauses_the_lead_until_its_stated_return() -> None:
    kit = launched("ann")
    raw = out_of_office("I am out of the office and back on 14 December 2026.")
    raw = raw.replace(b"ada@analytical.example", b"ann@ann.example.com")
    result = kit.service.ingest_email(WS, raw)
    assert (result.kind, result.event) == (InboundKind.AUTO_REPLY, EventKind.OUT_OF_OFFICE)
    assert result.return_date == dt.date(2026, 12, 14)
    enrolment = kit.storage.get_enrolment(WS, CID, "ann")  # type: ignore[arg-type]
    assert enrolment.status is EnrolmentStatus.OUT_OF_OFFICE
    assert enrolment.resume_at is not None
    assert enrolment.resume_at.date() == dt.date(2026, 12, 14)


def test_an_unsubscribe_reply_stops_and_suppresses_the_lead() -> None:
    kit = launched("ann")
    raw = message(
        "Unsubscribe",
        sender="ann@ann.example.com",
        in_reply_to=first_message_id(kit, "ann"),
    )
    result = kit.service.ingest_email(WS, raw)
    assert (result.kind, result.event) == (InboundKind.UNSUBSCRIBE, EventKind.UNSUBSCRIBE)
    assert status_of(kit, "ann") is EnrolmentStatus.UNSUBSCRIBED
    open_steps = [s for s in kit.storage.list_sends(WS, CID) if not s.status.is_final]
    assert open_steps == []
    assert kit.storage.suppressed(WS, {"ann"}) == {"ann"}


def test_junk_and_garbage_are_unmatched_and_change_nothing() -> None:
    kit = launched("ann")
    before = kit.storage.list_sends(WS, CID)
    for raw in (b"", b"\x00\xff garbage", b"Subject: hi\n\nno sender", b"x" * 100):
        result = kit.service.ingest_email(WS, raw)
        assert result.kind is InboundKind.UNMATCHED
        assert result.applied is False
        assert result.reason
    assert kit.storage.list_sends(WS, CID) == before


def test_a_reply_to_another_workspaces_email_is_never_applied_here() -> None:
    kit = launched("ann")
    raw = message(
        "Yes please", sender="someone@else.example", in_reply_to=first_message_id(kit, "ann")
    )
    result = kit.service.ingest_email(OTHER_WS, raw)
    assert result.lead_id is None
    assert result.applied is False
    assert status_of(kit, "ann") is EnrolmentStatus.ACTIVE


def test_find_send_accepts_a_message_id_as_an_esp_reports_it() -> None:
    kit = launched("ann")
    message_id = first_message_id(kit, "ann")
    bare = message_id.strip("<>")
    left, _, domain = bare.partition("@")
    found = kit.service.find_send(WS, message_id=f"  {left}@{domain.upper()} ")
    assert found is not None
    assert (found.lead_id, found.step, found.status) == ("ann", 1, SendStatus.SENT)
    assert kit.service.find_send(OTHER_WS, message_id=message_id) is None
    assert kit.service.find_send(WS, message_id="not an id") is None
