"""``starlight demo``: a whole campaign on the embedded defaults, on a simulated clock.

SQLite storage and ledger in a fresh file, the offline template drafter, the outbox-folder
email sender and the LinkedIn task sender; about three weeks of dispatching in a few seconds.
"""

from __future__ import annotations

import datetime as dt
import email
import email.message
import email.policy
import email.utils
import shlex
import tempfile
from collections.abc import Callable
from pathlib import Path

from starlight_sequences import shapes
from starlight_sequences.adapters.clock import SettableClock
from starlight_sequences.adapters.linkedin_tasks import LinkedInTaskFile, LinkedInTaskSender
from starlight_sequences.adapters.outbox import OutboxEmailSender
from starlight_sequences.adapters.sqlite import SQLiteCreditLedger, SQLiteStorage
from starlight_sequences.adapters.template_drafter import TemplateDrafter
from starlight_sequences.campaigns import EmailIdentity, LinkedInIdentity
from starlight_sequences.events import EventKind, InboundEvent
from starlight_sequences.ids import CampaignId, LeadId, SenderId, WorkspaceId
from starlight_sequences.leads import Lead
from starlight_sequences.locations import load_timezone
from starlight_sequences.monitoring_page import campaign_page
from starlight_sequences.ports.senders import (
    LinkedInAction,
    OutgoingEmail,
    SendFailure,
    SendReceipt,
)
from starlight_sequences.service import CampaignService
from starlight_sequences.timeline import (
    render_svg,
    render_text,
    timeline_of_shape,
)
from starlight_sequences.unsubscribe import UnsubscribeLinks

__all__ = ["SAMPLE_LEADS", "run_demo"]

WORKSPACE = WorkspaceId("demo")
CAMPAIGN = CampaignId("q1-cloud-costs")
BRIEF = (
    "Nimbus cuts cloud bills by 30% for data teams without code changes. "
    "We want a 20-minute call with whoever owns infrastructure spend."
)


def _lead(
    lead_id: str, first: str, last: str, company: str, country: str, tz: str, **kw: object
) -> Lead:
    return Lead(
        id=LeadId(lead_id),
        first_name=first,
        last_name=last,
        company=company,
        title=str(kw.pop("title", "Head of Data")),
        country=country,
        timezone=tz,
        **kw,  # type: ignore[arg-type]
    )


SAMPLE_LEADS: tuple[Lead, ...] = (
    _lead(
        "maya",
        "Maya",
        "Cohen",
        "Tidal Labs",
        "IL",
        "Asia/Jerusalem",
        email="maya@tidal-labs.example.com",
        linkedin_url="https://www.linkedin.com/in/maya-cohen",
    ),
    _lead(
        "james",
        "James",
        "Porter",
        "Quarry Analytics",
        "US",
        "America/New_York",
        email="james@quarry.example.com",
        linkedin_url="https://www.linkedin.com/in/jamesporter",
    ),
    _lead(
        "olivia",
        "Olivia",
        "Hughes",
        "Brightwell",
        "GB",
        "Europe/London",
        email="olivia@brightwell.example.com",
    ),
    _lead(
        "lukas",
        "Lukas",
        "Becker",
        "Fernweh Data",
        "DE",
        "Europe/Berlin",
        subdivision="BY",
        linkedin_url="https://de.linkedin.com/in/lukas-becker/",
    ),
    _lead(
        "wei",
        "Wei",
        "Zhang",
        "Lotus Compute",
        "CN",
        "Asia/Shanghai",
        email="wei@lotus.example.com",
        linkedin_url="https://www.linkedin.com/in/wei-zhang",
        linkedin_connected=True,
    ),
    _lead(
        "chloe",
        "Chloe",
        "Martin",
        "Atelier Cloud",
        "FR",
        "Europe/Paris",
        email="chloe@atelier.example.com",
        linkedin_url="https://www.linkedin.com/in/chloemartin",
    ),
    _lead(
        "priya",
        "Priya",
        "Nair",
        "Monsoon AI",
        "IN",
        "Asia/Kolkata",
        email="priya@monsoon.example.com",
        linkedin_url="https://www.linkedin.com/in/priya-nair",
    ),
    _lead(
        "lucas",
        "Lucas",
        "Silva",
        "Ipê Systems",
        "BR",
        "America/Sao_Paulo",
        email="lucas@ipe.example.com",
        linkedin_url="https://www.linkedin.com/in/lucas-silva",
    ),
    _lead(
        "noah",
        "Noah",
        "Walker",
        "Coral Reef Data",
        "AU",
        "Australia/Sydney",
        email="noah@coralreef.example.com",
        linkedin_url="https://www.linkedin.com/in/noahwalker",
    ),
    _lead("sam", "Sam", "Nobody", "Unreachable Ltd", "US", "America/Chicago"),
)


class _Narrating:
    """Wraps the real senders and prints each send in the recipient's local time."""

    def __init__(
        self,
        email: OutboxEmailSender,
        linkedin: LinkedInTaskSender,
        clock: SettableClock,
        say: Callable[[str], None],
    ) -> None:
        self.email, self.linkedin, self.clock, self.say = email, linkedin, clock, say
        self.zones: dict[str, str] = {lead.id: lead.timezone or "UTC" for lead in SAMPLE_LEADS}

    def _local(self, lead_id: str) -> str:
        zone = self.zones.get(lead_id, "UTC")
        return f"{self.clock.now().astimezone(load_timezone(zone)):%a %d %b %H:%M} {zone}"

    def send_email(self, message: OutgoingEmail) -> SendReceipt | SendFailure:
        result = self.email.send_email(message)
        if isinstance(result, SendReceipt):
            self.say(
                f"  ✉  {self._local(message.lead_id):<40} email #{message.step} to "
                f"{message.to_name}: “{message.subject}”"
            )
        return result

    def send_linkedin(self, action: LinkedInAction) -> SendReceipt | SendFailure:
        result = self.linkedin.send_linkedin(action)
        if isinstance(result, SendReceipt):
            what = (
                "connection request"
                if action.text is None
                else (
                    "connection request with note"
                    if action.action == "linkedin_connect"
                    else "LinkedIn message"
                )
            )
            self.say(f"  in {self._local(action.lead_id):<40} {what} to {action.recipient_name}")
        return result


def _say_waiting(service: CampaignService, say: Callable[[str], None]) -> None:
    """The tasks view: who waits on a connection, since when, and when it times out."""
    tasks = service.waiting_on_connections(WORKSPACE)
    say(f"\n  Waiting on connections: {len(tasks) or 'none'}")
    for task in tasks:
        zone = load_timezone(task.lead.timezone or "UTC")
        since = f"{task.since.astimezone(zone):%a %d %b %H:%M}" if task.since else "-"
        say(
            f"    {task.lead.id:<8} request sent {since}, "
            f"times out {task.times_out_at.astimezone(zone):%a %d %b %H:%M} {zone.key}"
        )
    say("")


def run_demo(folder: Path | None = None, say: Callable[[str], None] = print) -> Path:
    """Run the demo campaign; returns the folder holding the database, outbox, SVG timeline
    and HTML monitoring page (``monitoring.html``)."""
    out = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="starlight-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    database = out / "starlight.sqlite3"
    database.unlink(missing_ok=True)
    clock = SettableClock(dt.datetime(2026, 11, 30, 6, 0, tzinfo=dt.UTC))
    storage = SQLiteStorage(database)
    senders = _Narrating(
        # The Date: headers follow the simulated clock, like the narration.
        OutboxEmailSender(out / "outbox", clock=clock),
        LinkedInTaskSender(LinkedInTaskFile(out / "linkedin-tasks.jsonl")),
        clock,
        say,
    )
    service = CampaignService(
        storage=storage,
        ledger=SQLiteCreditLedger(database),
        drafter=TemplateDrafter(),
        clock=clock,
        email_sender=senders,
        linkedin_sender=senders,
        # Every email carries a signed one-click unsubscribe link to this (demo) endpoint.
        unsubscribe_url=UnsubscribeLinks(
            base_url="https://nimbus.example.com/unsubscribe",
            secret=b"demo-secret-not-for-production",
        ),
    )
    service.top_up(WORKSPACE, 500, "demo credits")
    _create(service, say)
    service.approve(WORKSPACE, CAMPAIGN)
    say(f"\nApproved. Reserved {service.balance(WORKSPACE).reserved} credits. Dispatching…\n")
    _dispatch_four_weeks(service, storage, senders.email, clock, say, out)
    _report(service, out, say)
    _say_next_steps(database, say)
    return out


def _create(service: CampaignService, say: Callable[[str], None]) -> None:
    """Estimate, create and preview the demo campaign, narrating each."""
    say("starlight demo — the email → LinkedIn shape, 10 leads in 9 countries\n")
    say(render_text(timeline_of_shape(shapes.get("email-linkedin"))))
    estimate = service.estimate("email-linkedin", SAMPLE_LEADS)
    say(
        f"\nCredit estimate: {estimate.drafting_cost} drafting + {estimate.max_send_cost} "
        f"sends (max) = {estimate.total} credits; balance {service.balance(WORKSPACE).available}"
    )
    report = service.create_campaign(
        WORKSPACE,
        name="Q1 cloud costs",
        brief=BRIEF,
        shape="email-linkedin",
        leads=SAMPLE_LEADS,
        email_identity=EmailIdentity(
            id=SenderId("ada-mailbox"),
            address="ada@nimbus.example.com",
            display_name="Ada from Nimbus",
        ),
        linkedin_identity=LinkedInIdentity(id=SenderId("ada-linkedin"), premium=True),
        campaign_id=CAMPAIGN,
    )
    say(
        f"\nCreated: {report.enrolled} enrolled, {report.drafts} drafts "
        f"({report.drafting_credits} credits), {len(report.excluded)} excluded:"
    )
    for excluded in report.excluded:
        say(f"  - {excluded.lead_id}: {excluded.message}")
    preview = service.preview(WORKSPACE, CAMPAIGN, LeadId("maya"))
    say("\nPreview for Maya (Israel, Sunday–Thursday week):")
    for step in preview.recipients[0].steps:
        when = f"{step.due_local:%a %d %b %H:%M}" if step.due_local else "after acceptance"
        text = step.draft.subject or step.draft.body[:60] if step.draft else "(no note)"
        say(f"  {step.step}. {step.action.value:<17} {when:<18} {text}")


def _dispatch_four_weeks(
    service: CampaignService,
    storage: SQLiteStorage,
    outbox: OutboxEmailSender,
    clock: SettableClock,
    say: Callable[[str], None],
    out: Path,
) -> None:
    """A worker polling every 20 simulated minutes for four weeks; James replies after his
    first send, Lukas and Maya accept their connection requests once they wait on them. A
    week in, the tasks view is printed and the monitoring page of that moment is written to
    ``out/monitoring-week-1.html``."""
    accepted = {LeadId("lukas"), LeadId("maya")}
    replied = False
    end = clock.now() + dt.timedelta(days=28)
    week_later = clock.now() + dt.timedelta(days=7)
    shown_tasks = False
    while clock.now() < end:
        service.dispatch_due(worker_id="demo")
        sent = {s.lead_id for s in storage.list_sends(WORKSPACE, CAMPAIGN) if s.sent_at}
        if not replied and LeadId("james") in sent:
            replied = True
            reply = _reply_to_first_email(storage, outbox, LeadId("james"), clock.now())
            result = service.ingest_email(WORKSPACE, reply.read_bytes())
            say(
                f"  ↩  James replied ({reply.name}); ingest_email read it as a {result.kind.value} "
                f"matched by {result.matched_by.value}: his remaining steps are stopped."
            )
        for lead_id in list(accepted):
            waiting = {t.lead.id for t in service.waiting_on_connections(WORKSPACE)}
            if lead_id in waiting:
                accepted.discard(lead_id)
                service.report_event(
                    WORKSPACE,
                    InboundEvent(
                        kind=EventKind.CONNECTION_ACCEPTED,
                        lead_id=lead_id,
                        at=clock.now(),
                        key=f"accept-{lead_id}",
                    ),
                )
                say(f"  ✓  {lead_id} accepted the connection request.")
        if not shown_tasks and clock.now() >= week_later:
            shown_tasks = True
            _say_waiting(service, say)
            page = out / "monitoring-week-1.html"
            page.write_text(campaign_page(service, WORKSPACE, CAMPAIGN), encoding="utf-8")
            say(f"  The monitoring page of this moment: {page}\n")
        clock.advance(dt.timedelta(minutes=20))


def _reply_to_first_email(
    storage: SQLiteStorage, outbox: OutboxEmailSender, lead_id: LeadId, now: dt.datetime
) -> Path:
    """A real reply, as a mail client writes one, to the lead's first email in the outbox:
    threaded to it by In-Reply-To and References, with the original quoted. Written beside
    the outbox (``inbox/``) and returned."""
    first = next(s for s in storage.list_sends(WORKSPACE, CAMPAIGN, lead_id) if s.step == 1)
    original = email.message_from_bytes(
        outbox.path_for(first.idempotency_key).read_bytes(), policy=email.policy.default
    )
    assert isinstance(original, email.message.EmailMessage)
    reply = email.message.EmailMessage()
    reply["From"] = original["To"]
    reply["To"] = original["From"]
    reply["Subject"] = f"Re: {original['Subject']}"
    reply["Date"] = email.utils.format_datetime(now)
    reply["Message-ID"] = email.utils.make_msgid(domain="mail.example.com")
    reply["In-Reply-To"] = original["Message-ID"]
    reply["References"] = original["Message-ID"]
    body = original.get_body(preferencelist=("plain",))
    quoted = "\n".join(f"> {line}" for line in (body.get_content() if body else "").splitlines())
    reply.set_content(
        "Good timing: we are reviewing our cloud spend this quarter. Can you do Thursday?\n\n"
        f"On {original['Date']}, {original['From']} wrote:\n{quoted}\n"
    )
    inbox = outbox.folder.parent / "inbox"
    inbox.mkdir(exist_ok=True)
    path = inbox / f"{lead_id}-reply.eml"
    path.write_bytes(reply.as_bytes())
    return path


def _report(service: CampaignService, out: Path, say: Callable[[str], None]) -> None:
    """Status, tasks, credits and Maya's timeline (text, and SVG into ``out``), and the
    monitoring page of the campaign (``out/monitoring.html``)."""
    status = service.status(WORKSPACE, CAMPAIGN)
    say("\nStatus:")
    for row in status.contacts:
        say(f"  {row.lead.id:<8} step {row.step}  {row.status.value:<22} {row.reason}")
    _say_waiting(service, say)
    account = service.balance(WORKSPACE)
    say(f"Credits: {account.available} available, {account.reserved} reserved")
    for movement in service.movements(WORKSPACE, CAMPAIGN):
        say(f"  {movement.kind.value:<8} {movement.amount:>4}  {movement.note}")
    lead_timeline = service.lead_timeline(WORKSPACE, CAMPAIGN, LeadId("maya"))
    say("\n" + render_text(lead_timeline))
    (out / "timeline-maya.svg").write_text(render_svg(lead_timeline), encoding="utf-8")
    page = out / "monitoring.html"
    page.write_text(campaign_page(service, WORKSPACE, CAMPAIGN), encoding="utf-8")
    say(f"\nMonitoring page (open it in a browser): {page}")
    say(
        f"\nEverything is in {out}\n"
        "  (outbox/, inbox/, linkedin-tasks.jsonl, timeline-maya.svg, monitoring.html,\n"
        "  monitoring-week-1.html, starlight.sqlite3)"
    )


def _say_next_steps(database: Path, say: Callable[[str], None]) -> None:
    """How to look at the result with the ``starlight`` command: the demo's database is not
    the default one, and its workspace is ``demo``, not ``default``."""
    where = f"--db {shlex.quote(str(database))} --workspace {WORKSPACE}"
    say(f"\nLook at it with the starlight command (workspace {WORKSPACE!r} of that database):")
    say(f"  starlight campaigns {where}")
    say(f"  starlight status {CAMPAIGN} {where}")
    say(f"  starlight status {CAMPAIGN} --html status.html {where}")
    say(f"  starlight timeline {CAMPAIGN} --lead maya {where}")
    say(f"  starlight credits {where}")
