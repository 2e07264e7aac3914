"""A new mailbox on a warm-up ramp: 1,000 leads, 10 emails on day one, +2 each business day, 40
at most. Prints the preview's forecast of the last send, then what approval planned per
mailbox-local day. In memory, offline, on a fixed clock: the output never changes.

    PYTHONPATH=src python examples/warm_up_ramp.py

``docs/settings.md`` shows its output; ``tests/examples/test_warm_up_ramp.py`` checks they agree.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import starlight_sequences as sl
from starlight_sequences.adapters.clock import SettableClock
from starlight_sequences.adapters.memory import (
    InMemoryCreditLedger,
    InMemoryStorage,
    RecordingEmailSender,
)
from starlight_sequences.adapters.template_drafter import TemplateDrafter

NEW_YORK = "America/New_York"


def main() -> None:
    """Create, preview and approve the campaign; print the forecast and the plan."""
    clock = SettableClock(dt.datetime(2026, 3, 2, 13, 0, tzinfo=dt.UTC))  # Mon 08:00 New York
    service = sl.CampaignService(
        storage=InMemoryStorage(),
        ledger=InMemoryCreditLedger({sl.WorkspaceId("acme"): 100_000}),
        drafter=TemplateDrafter(),
        clock=clock,
        email_sender=RecordingEmailSender(),
        unsubscribe_url=sl.UnsubscribeLinks(
            base_url="https://app.nimbus.example.com/unsubscribe", secret=b"example" * 5
        ),
    )
    mailbox = sl.EmailIdentity(
        id="new-box",
        address="ada@nimbus.example.com",
        timezone=NEW_YORK,
        daily_cap=40,
        warm_up=sl.WarmUp(start=10, step=2, ceiling=40, since=dt.date(2026, 3, 2), country="US"),
    )
    leads = [
        sl.Lead(
            id=sl.LeadId(f"lead-{i:04}"),
            first_name="Sam",
            company=f"Company {i}",
            email=f"sam{i}@company{i}.example.com",
            country="US",
            timezone=NEW_YORK,
        )
        for i in range(1000)
    ]
    service.create_campaign(
        "acme",
        name="Spring outreach",
        brief="We cut cloud bills by 30% for data teams. Ask for a 20-minute call.",
        shape="cold-email",
        leads=leads,
        email_identity=mailbox,
        campaign_id="spring",
    )
    forecast = service.preview("acme", "spring").last_send_at
    assert forecast is not None
    print(f"preview: last send forecast {forecast:%Y-%m-%d %H:%M} UTC")
    service.approve("acme", "spring")
    sends = service.sends("acme", "spring")
    per_day = Counter(s.due_utc.astimezone(ZoneInfo(NEW_YORK)).date() for s in sends)
    print("mailbox-local day   cap  planned  total")
    total = 0
    for day in sorted(per_day):
        total += per_day[day]
        print(f"{day:%a %Y-%m-%d}  {mailbox.cap_on(day):>4}  {per_day[day]:>7}  {total:>5}")
    last = max(s.due_utc for s in sends)
    print(f"approved: last send planned {last:%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    main()
