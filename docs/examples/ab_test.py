"""The worked A/B example of docs/shapes.md and docs/monitoring.md, on a simulated clock.

Run from the repository root: ``python docs/examples/ab_test.py``. Forty leads in New York get
a two-step email shape whose first step is an A/B test (``roi`` against ``peer``) with a
winner rule (after 20 sends and 1 day). The mailbox sends 8 emails a day, so the test runs
over days. Replies are simulated deterministically: a lead replies one day after its first
email when a hash of its id falls under its variant's rate (``peer`` 30%, ``roi`` 10%).
Everything runs in memory; the output is the same on every run.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from starlight_sequences import CampaignService, CampaignSettings, EmailIdentity, Lead
from starlight_sequences.adapters.clock import SettableClock
from starlight_sequences.adapters.memory import (
    InMemoryCreditLedger,
    InMemoryStorage,
    RecordingEmailSender,
)
from starlight_sequences.adapters.template_drafter import TemplateDrafter
from starlight_sequences.campaigns import SendStatus
from starlight_sequences.events import ActivityKind, EventKind, InboundEvent
from starlight_sequences.shapes import SendShape

SHAPE = {
    "schema_version": 1,
    "key": "ab-cold",
    "name": "A/B cold email",
    "description": "one email, two angles, then a nudge",
    "steps": [
        {
            "number": 1,
            "action": "email",
            "guidance": "One ask: a 15-minute call.",
            "variants": [
                {"key": "roi", "guidance": "Lead with the cost saving, in numbers."},
                {"key": "peer", "guidance": "Lead with how a peer company did it."},
            ],
            "winner": {"after_sends": 20, "after_days": 1},
        },
        {"number": 2, "action": "email", "wait_days": 3, "guidance": "A short nudge."},
    ],
}
REPLY_RATE = {"roi": 0.10, "peer": 0.30}
START = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC)  # Monday


def _replies(lead_id: str, variant: str) -> bool:
    draw = int(hashlib.sha256(lead_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return draw < REPLY_RATE[variant]


def _table(service: CampaignService) -> None:
    print("STEP  VARIANT  LEADS  SENT  REPLIED  BOUNCED   RATE  95% CI")
    for r in service.status("acme", "q1").variants:
        low, high = r.interval
        print(
            f"{r.step:>4}  {r.key:<7}  {r.leads:>5}  {r.sent:>4}  {r.replied:>7}  {r.bounced:>7}"
            f"  {r.reply_rate:>5.1%}  {low:.1%}–{high:.1%}" + ("  winner" if r.winner else "")
        )


def main() -> None:
    """Run the campaign to its end and print the split, the pick and the results."""
    clock = SettableClock(START)
    storage = InMemoryStorage()
    service = CampaignService(
        storage=storage,
        ledger=InMemoryCreditLedger({"acme": 1_000}),
        drafter=TemplateDrafter(),
        clock=clock,
        email_sender=RecordingEmailSender(),
        send_without_unsubscribe=True,
    )
    shape = SendShape.from_dict(SHAPE)
    leads = [
        Lead(
            id=f"lead-{n:02d}",
            first_name="Sam",
            company=f"Company {n:02d}",
            email=f"sam@company{n:02d}.example.com",
            country="US",
            timezone="America/New_York",
        )
        for n in range(40)
    ]
    estimate = service.estimate(shape, leads)
    service.create_campaign(
        "acme",
        name="Q1 A/B",
        brief="We cut cloud bills by 30%.",
        shape=shape,
        leads=leads,
        email_identity=EmailIdentity(id="mbx", address="ada@nimbus.example.com", daily_cap=8),
        settings=CampaignSettings(seed="q1-2026"),
        campaign_id="q1",
    )
    split = [r.steps[0].variant for r in service.preview("acme", "q1").recipients]
    print(
        f"estimate: {estimate.total} credits; split: roi {split.count('roi')}, peer "
        f"{split.count('peer')}"
    )
    service.approve("acme", "q1")
    decided: set[str] = set()
    while clock.now() < START + dt.timedelta(days=21):
        service.dispatch_due(worker_id="w1")
        for send in storage.list_sends("acme", "q1"):
            if send.step != 1 or send.status is not SendStatus.SENT or send.lead_id in decided:
                continue
            assert send.sent_at is not None
            if clock.now() >= send.sent_at + dt.timedelta(days=1):
                decided.add(send.lead_id)
                variant = storage.get_enrolment("acme", "q1", send.lead_id).steps[0].variant
                if _replies(send.lead_id, variant):
                    event = InboundEvent(kind=EventKind.REPLY, lead_id=send.lead_id, at=clock.now())
                    service.report_event("acme", event)
        clock.advance(dt.timedelta(minutes=30))
    for line in storage.list_activities("acme", campaign_id="q1"):
        if line.kind is ActivityKind.VARIANT_PICKED:
            print(f"journal {line.at:%a %Y-%m-%d %H:%M} UTC: {line.detail}")
    _table(service)
    credits = service.campaign_credits("acme", "q1")
    print(
        f"spent: {credits.spent} credits (estimate {estimate.total}); outstanding: "
        f"{credits.outstanding}"
    )


if __name__ == "__main__":
    main()
