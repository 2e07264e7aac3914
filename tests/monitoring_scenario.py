"""A campaign a day in, with hostile lead names: what the monitoring page tests render."""

from __future__ import annotations

import datetime as dt
from typing import Final

import attrs

from starlight_sequences.events import EventKind, InboundEvent
from starlight_sequences.ids import CampaignId, LeadId
from starlight_sequences.leads import Lead
from tests.service_kit import LINKEDIN, MAILBOX, WS, Kit, lead, make_kit

CID: Final = CampaignId("c1")
SCRIPT_NAME: Final = "<script>alert(1)</script>"
IMG_NAME: Final = '"><img src=x onerror=alert(2)>'
TABLE_COMPANY: Final = "</td></tr></table><b>Evil Corp"


def hostile_lead() -> Lead:
    """A lead whose name and company are markup (a name cannot hold control characters)."""
    return attrs.evolve(
        lead("evil", linkedin=True),
        first_name=SCRIPT_NAME,
        last_name=IMG_NAME,
        company=TABLE_COMPANY,
    )


def campaign_a_day_in() -> Kit:
    """Four leads on the email → LinkedIn shape, a day after approval (Monday 08:00 UTC):
    ann's connection request is scheduled, bob waits on his, carl replied, evil is hostile."""
    kit = make_kit()
    kit.service.create_campaign(
        WS,
        name="Q4 <b>push</b>",
        brief="We cut cloud bills by 30%.",
        shape="email-linkedin",
        leads=[
            lead("ann", linkedin=True),
            lead("bob", email=False, linkedin=True, country="DE", timezone="Europe/Berlin"),
            lead("carl", linkedin=True, country="IL", timezone="Asia/Jerusalem"),
            hostile_lead(),
        ],
        email_identity=MAILBOX,
        linkedin_identity=LINKEDIN,
        campaign_id=CID,
    )
    kit.service.approve(WS, CID)
    end = kit.clock.now() + dt.timedelta(days=1)
    while kit.clock.now() < end:
        kit.service.dispatch_due(worker_id="w1")
        kit.clock.advance(dt.timedelta(minutes=30))
    kit.service.report_event(
        WS, InboundEvent(kind=EventKind.REPLY, lead_id=LeadId("carl"), at=kit.clock.now())
    )
    return kit
