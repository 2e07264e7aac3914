"""Builders shared by the service tests: an in-memory service on a settable clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import attrs

from starlight_sequences.adapters.clock import SettableClock
from starlight_sequences.adapters.memory import (
    InMemoryCreditLedger,
    InMemoryStorage,
    RecordingEmailSender,
    RecordingLinkedInSender,
)
from starlight_sequences.campaigns import EmailIdentity, LinkedInIdentity
from starlight_sequences.ids import LeadId, SenderId, WorkspaceId
from starlight_sequences.leads import Lead
from starlight_sequences.ports.drafter import DraftedMessage, DraftFailure, DraftRequest
from starlight_sequences.service import CampaignService
from starlight_sequences.unsubscribe import UnsubscribeLinks

WS = WorkspaceId("acme")
OTHER_WS = WorkspaceId("globex")
MAILBOX = EmailIdentity(id=SenderId("mbx-1"), address="ada@acme.test", display_name="Ada")
LINKEDIN = LinkedInIdentity(id=SenderId("li-1"), premium=True)
UNSUBSCRIBE = UnsubscribeLinks(base_url="https://app.acme.test/unsubscribe", secret=b"k" * 32)
# Monday 2026-11-30, 08:00 UTC.
START = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)


class ScriptedDrafter:
    """Drafts short valid messages; keys in ``fail`` fail, keys in ``overlong`` are too long."""

    def __init__(self) -> None:
        self.fail: set[str] = set()
        self.overlong: set[str] = set()
        self.requests: list[DraftRequest] = []

    def draft(self, requests: Sequence[DraftRequest]) -> list[DraftedMessage | DraftFailure]:
        results: list[DraftedMessage | DraftFailure] = []
        for request in requests:
            self.requests.append(request)
            if request.key in self.fail:
                results.append(DraftFailure(reason="model timed out"))
                continue
            body = f"Hi {request.lead.first_name}, touch {request.step_index}."
            if request.key in self.overlong:
                body = "x" * 9000
            subject = f"Idea {request.step_index} for {request.lead.company}"
            results.append(
                DraftedMessage(subject=subject if request.limits.needs_subject else None, body=body)
            )
        return results


@attrs.define
class Kit:
    service: CampaignService
    clock: SettableClock
    storage: InMemoryStorage
    ledger: InMemoryCreditLedger
    drafter: ScriptedDrafter
    email: RecordingEmailSender
    linkedin: RecordingLinkedInSender


def make_kit(credits: int = 10_000, start: dt.datetime = START) -> Kit:
    clock = SettableClock(start)
    storage = InMemoryStorage()
    ledger = InMemoryCreditLedger({WS: credits})
    drafter = ScriptedDrafter()
    email = RecordingEmailSender()
    linkedin = RecordingLinkedInSender()
    service = CampaignService(
        storage=storage,
        ledger=ledger,
        drafter=drafter,
        clock=clock,
        email_sender=email,
        linkedin_sender=linkedin,
        unsubscribe_url=UNSUBSCRIBE,
    )
    return Kit(service, clock, storage, ledger, drafter, email, linkedin)


def lead(
    lead_id: str,
    *,
    email: bool = True,
    linkedin: bool = False,
    country: str = "US",
    timezone: str = "America/New_York",
    connected: bool = False,
) -> Lead:
    return Lead(
        id=LeadId(lead_id),
        first_name=lead_id.title(),
        last_name="Doe",
        company=f"{lead_id} Inc",
        title="CTO",
        email=f"{lead_id}@{lead_id}.example.com" if email else None,
        linkedin_url=f"https://www.linkedin.com/in/{lead_id}" if linkedin else None,
        country=country,
        timezone=timezone,
        linkedin_connected=connected,
    )
