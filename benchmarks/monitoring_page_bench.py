"""Benchmark: the monitoring page of one big ``email-linkedin`` campaign, a day after approval.

For each size (contacts), an in-memory service with the template drafter creates, approves
and dispatches one simulated day of a campaign (not timed), then builds the page with
:func:`~starlight_sequences.monitoring_page.campaign_page` twice: with the timelines of the
first 50 contacts (what ``starlight status --html`` draws by default) and with every
contact's timeline. It prints the seconds (best of ``--repeat``) and the page's size.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/monitoring_page_bench.py`` (``--sizes 100
1000``, ``--repeat 3``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import time

from starlight_sequences.adapters.clock import SettableClock
from starlight_sequences.adapters.memory import (
    InMemoryCreditLedger,
    InMemoryStorage,
    RecordingEmailSender,
    RecordingLinkedInSender,
)
from starlight_sequences.adapters.template_drafter import TemplateDrafter
from starlight_sequences.campaigns import EmailIdentity, LinkedInIdentity
from starlight_sequences.ids import CampaignId, LeadId, SenderId, WorkspaceId
from starlight_sequences.leads import Lead
from starlight_sequences.monitoring_page import campaign_page
from starlight_sequences.service import CampaignService

START = dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC)
WORKSPACE = WorkspaceId("bench")
CAMPAIGN = CampaignId("big")
ZONES = (
    ("US", "America/New_York"),
    ("GB", "Europe/London"),
    ("DE", "Europe/Berlin"),
    ("IL", "Asia/Jerusalem"),
    ("IN", "Asia/Kolkata"),
    ("AU", "Australia/Sydney"),
)


def _campaign(size: int) -> CampaignService:
    """A service holding one approved campaign of ``size`` leads, one day in."""
    clock = SettableClock(START)
    service = CampaignService(
        storage=InMemoryStorage(),
        ledger=InMemoryCreditLedger({WORKSPACE: size * 20}),
        drafter=TemplateDrafter(),
        clock=clock,
        send_without_unsubscribe=True,  # not what is measured
        email_sender=RecordingEmailSender(),
        linkedin_sender=RecordingLinkedInSender(),
    )
    leads = [
        Lead(
            id=LeadId(f"lead-{n:06d}"),
            first_name="Ada",
            last_name=f"Lovelace {n}",
            company=f"Company {n % 500}",
            email=f"ada.{n}@co{n % 97}.example.com",
            linkedin_url=f"https://www.linkedin.com/in/ada-{n}",
            country=ZONES[n % len(ZONES)][0],
            timezone=ZONES[n % len(ZONES)][1],
        )
        for n in range(size)
    ]
    service.create_campaign(
        WORKSPACE,
        name="Big",
        brief="We cut cloud bills by 30%.",
        shape="email-linkedin",
        leads=leads,
        email_identity=EmailIdentity(
            id=SenderId("mbx"), address="ada@nimbus.example.com", display_name="Ada"
        ),
        linkedin_identity=LinkedInIdentity(id=SenderId("li"), premium=True),
        campaign_id=CAMPAIGN,
    )
    service.approve(WORKSPACE, CAMPAIGN)
    end = clock.now() + dt.timedelta(days=1)
    while clock.now() < end:
        service.dispatch_due(worker_id="bench", limit=size)
        clock.advance(dt.timedelta(minutes=30))
    return service


def _best(service: CampaignService, max_timelines: int | None, repeat: int) -> tuple[float, int]:
    best, size = float("inf"), 0
    for _ in range(repeat):
        started = time.perf_counter()
        page = campaign_page(service, WORKSPACE, CAMPAIGN, max_timelines=max_timelines)
        best = min(best, time.perf_counter() - started)
        size = len(page.encode("utf-8"))
    return best, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}; best of {args.repeat}")
    print(f"{'contacts':>8}  {'timelines':>9}  {'seconds':>8}  {'page KiB':>8}")
    for size in args.sizes:
        service = _campaign(size)
        for limit in (50, None):
            seconds, page = _best(service, limit, args.repeat)
            drawn = min(size, limit) if limit is not None else size
            print(f"{size:>8}  {drawn:>9}  {seconds:>8.3f}  {page / 1024:>8.0f}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
