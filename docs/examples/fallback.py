"""The worked fallback example of docs/shapes.md: an email when the connection request is not
accepted. Run it with ``python docs/examples/fallback.py``; the page shows what it prints.

Three leads get ``email-linkedin`` plus a fallback email: Ann accepts, Bea declines, Cal never
answers (the request times out after 15 business days); Dan has no email address, so his
fallback is dropped. Everything runs in memory on a settable clock.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from starlight_sequences import Action, SendShape, Step, WaitAnchor, shapes
from starlight_sequences.adapters.clock import SettableClock
from starlight_sequences.adapters.memory import (
    InMemoryCreditLedger,
    InMemoryStorage,
    RecordingEmailSender,
    RecordingLinkedInSender,
)
from starlight_sequences.adapters.template_drafter import TemplateDrafter
from starlight_sequences.campaigns import EmailIdentity, LinkedInIdentity
from starlight_sequences.credits import PriceTable, estimate_credits
from starlight_sequences.events import EventKind, InboundEvent
from starlight_sequences.ids import CampaignId, LeadId, SenderId, WorkspaceId
from starlight_sequences.leads import Lead
from starlight_sequences.service import CampaignService
from starlight_sequences.timeline import render_text, timeline_of_shape
from starlight_sequences.unsubscribe import UnsubscribeLinks

SHAPE = SendShape(
    key="email-linkedin-fallback",
    name="Email + LinkedIn, email if not accepted",
    description="email-linkedin, and an email to those who do not accept the request.",
    steps=(
        *shapes.get("email-linkedin").steps,
        Step(
            number=4,
            action=Action.EMAIL,
            wait_days=2,
            counts_from=WaitAnchor.CONNECTION_NOT_ACCEPTED,
            guidance="They did not connect: one short email, a new angle, the same easy ask.",
        ),
    ),
)
PRICES = PriceTable(draft=4, email=3, linkedin_connect=2, linkedin_message=2)
WS, CID = WorkspaceId("acme"), CampaignId("q4")
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def person(name: str, *, email: bool = True) -> Lead:
    return Lead(
        id=LeadId(name.lower()),
        first_name=name,
        company=f"{name} GmbH",
        email=f"{name.lower()}@{name.lower()}.example.com" if email else None,
        linkedin_url=f"https://www.linkedin.com/in/{name.lower()}-doe",
        country="DE",
        timezone="Europe/Berlin",
    )


def main() -> None:
    leads = [person("Ann"), person("Bea"), person("Cal"), person("Dan", email=False)]
    print(render_text(timeline_of_shape(SHAPE)), end="")
    estimate = estimate_credits(SHAPE, leads, PRICES)
    print(f"estimate: drafting {estimate.drafting_cost}, sends at most {estimate.max_send_cost}")
    for line in estimate.leads:
        print(f"  {line.lead_id}: {line.drafts} drafts, sends reserved {line.max_send_cost}")

    clock = SettableClock(dt.datetime(2026, 11, 30, 7, 0, tzinfo=dt.UTC))  # a Monday
    storage, ledger = InMemoryStorage(), InMemoryCreditLedger({WS: 1_000})
    service = CampaignService(
        storage=storage,
        ledger=ledger,
        drafter=TemplateDrafter(),
        clock=clock,
        email_sender=RecordingEmailSender(),
        linkedin_sender=RecordingLinkedInSender(),
        unsubscribe_url=UnsubscribeLinks(base_url="https://acme.test/u", secret=b"k" * 32),
        prices=PRICES,
    )
    service.create_campaign(
        WS,
        name="Q4",
        brief="We cut cloud bills by 30%.",
        shape=SHAPE,
        leads=leads,
        email_identity=EmailIdentity(id=SenderId("mbx"), address="ada@acme.test"),
        linkedin_identity=LinkedInIdentity(id=SenderId("li")),
        campaign_id=CID,
    )
    for recipient in service.preview(WS, CID).recipients:
        if recipient.fallback_dropped:
            print(f"preview {recipient.lead.id}: {recipient.fallback_dropped}")
    service.approve(WS, CID)
    print(f"approved: reserved {ledger.balance(WS).reserved}")
    for day in range(40):
        if day == 5:
            for name, kind in (
                ("ann", EventKind.CONNECTION_ACCEPTED),
                ("bea", EventKind.CONNECTION_DECLINED),
            ):
                service.report_event(
                    WS, InboundEvent(kind=kind, lead_id=LeadId(name), at=clock.now())
                )
        for _ in range(24):
            service.dispatch_due(worker_id="w1")
            clock.advance(dt.timedelta(hours=1))
    for lead in leads:
        steps = []
        for send in storage.list_sends(WS, CID, lead.id):
            when = f" {send.sent_at.astimezone(BERLIN):%a %Y-%m-%d}" if send.sent_at else ""
            steps.append(f"{send.step} {send.status.value}{when}")
        print(f"{lead.id}: " + ", ".join(steps))
    balance = ledger.balance(WS)
    print(f"credits: available {balance.available}, reserved {balance.reserved}")


if __name__ == "__main__":
    main()
