"""Nothing review accepts fails at send time: header text is settled when it enters.

The email sender here composes every message with the SMTP adapter's ``compose_email`` (which
refuses control characters in any header field) and, like the SMTP sender, turns a refusal
into a permanent failure. So a test that sends without failures shows that what review
accepted is what a real sender accepts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest

from starlight_sequences.adapters.clock import SettableClock
from starlight_sequences.adapters.memory import (
    InMemoryCreditLedger,
    InMemoryStorage,
    RecordingEmailSender,
)
from starlight_sequences.adapters.smtp import compose_email
from starlight_sequences.campaigns import CampaignStatus, EmailIdentity, SendStatus
from starlight_sequences.drafts import DraftStatus
from starlight_sequences.errors import DraftsNeedAttention, InvalidDraft, InvalidInput
from starlight_sequences.ids import CampaignId, LeadId
from starlight_sequences.leads import Lead
from starlight_sequences.ports.drafter import DraftedMessage, DraftFailure, DraftRequest
from starlight_sequences.ports.senders import OutgoingEmail, SendFailure, SendReceipt
from starlight_sequences.service import CampaignService
from tests.service_kit import START, UNSUBSCRIBE, WS

CID = CampaignId("c1")


class ComposingEmailSender(RecordingEmailSender):
    """Records what ``compose_email`` accepts; what it refuses fails permanently, as in
    :class:`~starlight_sequences.adapters.smtp.SMTPEmailSender`."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[str] = []
        self.headers: dict[str, tuple[str, str, str]] = {}

    def send_email(self, message: OutgoingEmail) -> SendReceipt | SendFailure:
        try:
            composed = compose_email(message, date="Mon, 30 Nov 2026 14:00:00 +0000")
        except InvalidInput as exc:
            self.refused.append(str(exc))
            return SendFailure(permanent=True, reason=str(exc))
        self.headers[message.lead_id] = (composed["From"], composed["To"], composed["Subject"])
        return super().send_email(message)


class SubjectDrafter:
    """Drafts the subject given per lead id, as an LLM might write it."""

    def __init__(self, subjects: dict[str, str]) -> None:
        self.subjects = subjects

    def draft(self, requests: Sequence[DraftRequest]) -> list[DraftedMessage | DraftFailure]:
        return [
            DraftedMessage(subject=self.subjects[r.lead.id], body=f"Hi {r.lead.first_name}.")
            for r in requests
        ]


def service_with(drafter: SubjectDrafter) -> tuple[CampaignService, ComposingEmailSender]:
    sender = ComposingEmailSender()
    clock = SettableClock(START)
    service = CampaignService(
        storage=InMemoryStorage(),
        ledger=InMemoryCreditLedger({WS: 1000}),
        drafter=drafter,
        clock=clock,
        email_sender=sender,
        unsubscribe_url=UNSUBSCRIBE,
    )
    return service, sender


def person(lead_id: str, first_name: str) -> Lead:
    return Lead(
        id=lead_id,
        first_name=first_name,
        last_name="Doe",
        email=f"{lead_id}@example.com",
        country="US",
        timezone="America/New_York",
    )


def run_days(service: CampaignService, days: int) -> None:
    clock = service.clock
    assert isinstance(clock, SettableClock)
    for _ in range(days * 48):
        service.dispatch_due(worker_id="w1")
        clock.advance(dt.timedelta(minutes=30))


def test_tabs_and_trailing_newlines_are_normalised_and_every_email_goes_out() -> None:
    service, sender = service_with(SubjectDrafter({"ann": "Quick\tquestion", "bob": "Hello\n"}))
    mailbox = EmailIdentity(id="mbx", address="ada@nimbus.example.com", display_name="Ada\n")
    service.create_campaign(
        WS,
        name="Q1",
        brief="We cut cloud bills.",
        shape="cold-email",
        leads=[person("ann", "Ann\t"), person("bob", "Bob")],
        email_identity=mailbox,
        campaign_id=CID,
    )
    drafts = {d.lead_id: d for d in service.storage.list_drafts(WS, CID)}
    assert drafts[LeadId("ann")].subject == "Quick question"
    assert drafts[LeadId("bob")].subject == "Hello"
    assert all(d.status is DraftStatus.READY for d in drafts.values())

    assert service.approve(WS, CID).status is CampaignStatus.ACTIVE
    run_days(service, 3)

    assert sender.refused == []
    assert sorted(sender.headers.values()) == [
        ("Ada <ada@nimbus.example.com>", "Ann Doe <ann@example.com>", "Quick question"),
        ("Ada <ada@nimbus.example.com>", "Bob Doe <bob@example.com>", "Hello"),
    ]
    assert {s.status for s in service.storage.list_sends(WS, CID)} == {SendStatus.SENT}


def test_a_drafted_subject_with_a_control_character_needs_attention_not_a_failed_send() -> None:
    service, sender = service_with(
        SubjectDrafter({"ann": "Quick\x07question", "bob": "\u202eQuick question"})
    )
    service.create_campaign(
        WS,
        name="Q1",
        brief="We cut cloud bills.",
        shape="cold-email",
        leads=[person("ann", "Ann"), person("bob", "Bob")],
        email_identity=EmailIdentity(id="mbx", address="ada@nimbus.example.com"),
        campaign_id=CID,
    )
    drafts = {d.lead_id: d for d in service.storage.list_drafts(WS, CID)}
    assert drafts[LeadId("ann")].status is DraftStatus.NEEDS_ATTENTION
    assert "subject contains a control character (U+0007)" in drafts[LeadId("ann")].problem
    assert "bidirectional control (U+202E)" in drafts[LeadId("bob")].problem
    with pytest.raises(DraftsNeedAttention):
        service.approve(WS, CID)

    # The edit path: a tab is normalised, a control character is refused with the reason.
    edited = service.edit_draft(WS, CID, LeadId("ann"), 1, subject="Quick\tquestion")
    assert (edited.subject, edited.status) == ("Quick question", DraftStatus.READY)
    with pytest.raises(InvalidDraft, match=r"subject contains a control character \(U\+001B\)"):
        service.edit_draft(WS, CID, LeadId("bob"), 1, subject="Quick\x1b[2Jquestion")
    service.edit_draft(WS, CID, LeadId("bob"), 1, subject="Quick question")

    service.approve(WS, CID)
    run_days(service, 3)
    assert sender.refused == []
    assert len(sender.sent) == 2
